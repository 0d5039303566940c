//! The resolvers' I/O: a `remoteTask`/`remotePipeline` fetched from the
//! cluster (the watch-fed stores) or from git (libgit2, as the git-clone
//! tool clones). What the request may ask for is checked first by the
//! pure `remote` module; this module only fetches.
//!
//! A git fetch can take seconds (or a whole timeout, for a server that
//! does not answer), so it never runs inside a reconcile: the first
//! reconcile starts it in the background and returns, and the run is
//! woken when the fetch is done. A slow repository therefore holds no
//! worker that other tenants' runs are waiting for.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use cicd_git_clone::args::Settings as CloneSettings;
use cicd_git_clone::clone::CloneError;
use git2::{ObjectType, Oid, Repository};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::Api;
use tracing::{debug, info};

use crate::api::{PipelineSpec, RemoteRef, ResolvedFrom, StepActionSpec, TaskSpec};
use crate::error::Result;
use crate::remote::{
    BundleLogin, GIT_TOKEN_USER, MAX_FILE_BYTES, RefKind, Request, Scope, SecretKey, parse_request, pipeline_from_file,
    step_action_from_file, task_from_file,
};

use super::context::Context;
use super::registry::BundleCredentials;

/// An outcome kept this long for a run that never came back for it (it
/// was deleted meanwhile) is dropped.
const FORGOTTEN_AFTER: Duration = Duration::from_secs(600);

/// What an administrator sets for the resolvers.
#[derive(Debug, Clone)]
pub struct ResolverSettings {
    /// `--resolver-timeout`: the longest one fetch may take.
    pub timeout: Duration,
    /// `--cluster-resolver-namespaces`: namespaces besides the run's own
    /// that the cluster resolver may read from (a shared catalog).
    pub cluster_namespaces: Vec<String>,
    /// `--resolver-allowed-hosts`: the hosts the git and http resolvers
    /// may fetch from; empty for any.
    pub allowed_hosts: Vec<String>,
}

impl Default for ResolverSettings {
    fn default() -> Self {
        ResolverSettings {
            timeout: Duration::from_secs(60),
            cluster_namespaces: Vec::new(),
            allowed_hosts: Vec::new(),
        }
    }
}

/// A definition a resolver found, and where.
#[derive(Debug, Clone)]
pub struct Fetched<S> {
    pub spec: S,
    pub from: ResolvedFrom,
}

/// What a reconcile learns about its remote reference.
#[derive(Debug)]
pub enum Resolution<S> {
    /// Found: the reconcile goes on with it (and snapshots it).
    Found(Fetched<S>),
    /// Cannot be had; the message says why, naming the field or source.
    Failed(String),
    /// A git fetch is running; the run is woken when it ends.
    Fetching(String),
}

/// A file a resolver read: from a repository at a commit (git), from a
/// url (http, no commit), or from a bundle (its manifest's digest).
#[derive(Debug, Clone)]
pub struct FetchedFile {
    pub text: String,
    pub commit: Option<String>,
}

enum Slot {
    Fetching,
    Done(std::result::Result<FetchedFile, String>),
}

/// The fetches started by reconciles, by run uid (and step, for step
/// actions), kept once done until the run has used the outcome (`forget`),
/// or FORGOTTEN_AFTER: a run waiting for several fetches reads each outcome
/// as often as it needs until the last one is done.
#[derive(Default)]
pub struct Resolutions {
    slots: Mutex<HashMap<String, (Instant, Slot)>>,
}

impl Resolutions {
    /// Drops `key`'s outcome: the run has what it needed of it.
    pub fn forget(&self, key: &str) {
        let mut slots = self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if matches!(slots.get(key), Some((_, Slot::Done(_)))) {
            slots.remove(key);
        }
    }

    /// The outcome of `key`'s fetch if it is done, None while it runs; a
    /// fetch not yet started is started (`job`), and `wake` is called when
    /// it ends.
    fn fetch<J>(
        self: &Arc<Self>,
        key: &str,
        job: impl FnOnce() -> J,
        wake: impl FnOnce() + Send + 'static,
    ) -> Option<std::result::Result<FetchedFile, String>>
    where
        J: std::future::Future<Output = std::result::Result<FetchedFile, String>> + Send + 'static,
    {
        let mut slots = self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match slots.get(key) {
            Some((_, Slot::Done(outcome))) => return Some(outcome.clone()),
            Some((_, Slot::Fetching)) => return None,
            None => {}
        }
        slots.retain(|_, (since, _)| since.elapsed() < FORGOTTEN_AFTER);
        slots.insert(key.to_string(), (Instant::now(), Slot::Fetching));
        let resolutions = Arc::clone(self);
        let key = key.to_string();
        let job = job();
        tokio::spawn(async move {
            let outcome = job.await;
            let mut slots = resolutions
                .slots
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            slots.insert(key, (Instant::now(), Slot::Done(outcome)));
            drop(slots);
            wake();
        });
        None
    }
}

/// Resolves a MyTaskRun's `remoteTask`.
pub async fn task(ctx: &Context, run: RunKey<'_>, remote: &RemoteRef) -> Result<Resolution<TaskSpec>> {
    let found = resolve(ctx, run, remote, RefKind::Task, "spec.remoteTask").await?;
    if found.is_some() {
        // The run snapshots what was found (or fails) in this reconcile.
        ctx.resolutions.forget(run.uid);
    }
    Ok(into_resolution(found.map(|found| {
        found.and_then(|(definition, from)| match definition {
            Definition::Text(text) => task_from_file(&text, &origin(&from)).map(|(name, spec)| (spec, name, from)),
            Definition::Task(spec) => Ok((*spec, from.name.clone(), from)),
            _ => Err("the cluster resolver found another kind".to_string()),
        })
    })))
}

/// Resolves a MyPipelineRun's `remotePipeline`.
pub async fn pipeline(ctx: &Context, run: RunKey<'_>, remote: &RemoteRef) -> Result<Resolution<PipelineSpec>> {
    let found = resolve(ctx, run, remote, RefKind::Pipeline, "spec.remotePipeline").await?;
    if found.is_some() {
        ctx.resolutions.forget(run.uid);
    }
    Ok(into_resolution(found.map(|found| {
        found.and_then(|(definition, from)| match definition {
            Definition::Text(text) => pipeline_from_file(&text, &origin(&from)).map(|(name, spec)| (spec, name, from)),
            Definition::Pipeline(spec) => Ok((*spec, from.name.clone(), from)),
            _ => Err("the cluster resolver found another kind".to_string()),
        })
    })))
}

/// Resolves the action of a step's `ref: {resolver, params}` (`field`
/// names the reference). `run.uid` must tell the run's steps apart (a
/// fetch is kept per key until the caller `forget`s it).
pub async fn step_action(
    ctx: &Context,
    run: RunKey<'_>,
    remote: &RemoteRef,
    field: &str,
) -> Result<Resolution<StepActionSpec>> {
    let found = resolve(ctx, run, remote, RefKind::StepAction, field).await?;
    Ok(into_resolution(found.map(|found| {
        found.and_then(|(definition, from)| match definition {
            Definition::Text(text) => {
                step_action_from_file(&text, &origin(&from)).map(|(name, spec)| (spec, name, from))
            }
            Definition::StepAction(spec) => Ok((*spec, from.name.clone(), from)),
            _ => Err("the cluster resolver found another kind".to_string()),
        })
    })))
}

/// The run a resolution is for.
#[derive(Debug, Clone, Copy)]
pub struct RunKey<'a> {
    pub kind: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
}

enum Definition {
    /// A git file, not decoded yet.
    Text(String),
    Task(Box<TaskSpec>),
    Pipeline(Box<PipelineSpec>),
    StepAction(Box<StepActionSpec>),
}

/// Ok(None): a git fetch is running. Inner Err: the reference cannot be
/// resolved (final).
type Found = std::result::Result<(Definition, ResolvedFrom), String>;

fn into_resolution<S>(found: Option<std::result::Result<(S, String, ResolvedFrom), String>>) -> Resolution<S> {
    match found {
        None => Resolution::Fetching("fetching the definition with its resolver".to_string()),
        Some(Ok((spec, name, from))) => Resolution::Found(Fetched {
            spec,
            from: ResolvedFrom { name, ..from },
        }),
        Some(Err(why)) => Resolution::Failed(why),
    }
}

async fn resolve(
    ctx: &Context,
    run: RunKey<'_>,
    remote: &RemoteRef,
    kind: RefKind,
    field: &str,
) -> Result<Option<Found>> {
    let scope = Scope {
        run_namespace: run.namespace,
        allowed_namespaces: &ctx.resolver.cluster_namespaces,
        allowed_hosts: &ctx.resolver.allowed_hosts,
    };
    let request = match parse_request(remote, kind, scope, field) {
        Ok(request) => request,
        Err(why) => return Ok(Some(Err(why))),
    };
    match request {
        Request::Cluster { name, namespace } => cluster(ctx, kind, &name, &namespace).await.map(Some),
        Request::Http { url, login } => {
            let secrets = secrets_of(ctx, run);
            let (target, timeout) = (url.clone(), ctx.resolver.timeout);
            let job = || async move {
                let authorization = match login {
                    Some(login) => {
                        let password = read_secret_key(&secrets, &login.password).await?;
                        Some(super::http_fetch::basic_authorization(&login.username, &password))
                    }
                    None => None,
                };
                super::http_fetch::fetch_file(target, authorization, timeout).await
            };
            Ok(fetch_in_background(ctx, run, job, ("http", url, None)))
        }
        Request::Git {
            url,
            revision,
            path,
            token,
        } => {
            let secrets = secrets_of(ctx, run);
            let (target, timeout) = ((url.clone(), revision, path.clone()), ctx.resolver.timeout);
            let job = || async move {
                let login = match token {
                    Some(token) => Some((GIT_TOKEN_USER.to_string(), read_secret_key(&secrets, &token).await?)),
                    None => None,
                };
                fetch_git_file(target, login, timeout).await
            };
            Ok(fetch_in_background(ctx, run, job, ("git", url, Some(path))))
        }
        Request::Bundle { image, name, login } => {
            let secrets = secrets_of(ctx, run);
            let credentials = bundle_credentials(ctx, run, login).await;
            let (target, settings, timeout) = (image.clone(), ctx.registry.clone(), ctx.resolver.timeout);
            let job = || async move {
                let fetch = super::registry::fetch_bundle_file(
                    &secrets,
                    credentials?,
                    &target,
                    (kind.word(), &name),
                    &settings,
                );
                super::http_fetch::within(timeout, fetch)
                    .await
                    .map_err(|why| format!("bundles resolver: {target}: {why}"))
            };
            Ok(fetch_in_background(ctx, run, job, ("bundles", image, None)))
        }
    }
}

/// Where the bundles resolver's login comes from: the named Secret, or the
/// pull Secrets of the named ServiceAccount of the run's namespace (from
/// the watch-fed cache), which must exist.
async fn bundle_credentials(
    ctx: &Context,
    run: RunKey<'_>,
    login: BundleLogin,
) -> std::result::Result<BundleCredentials, String> {
    let account = match login {
        BundleLogin::Secret(secret) => return Ok(BundleCredentials::Secret(secret)),
        BundleLogin::ServiceAccount(account) => account,
    };
    let accounts: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), run.namespace);
    let found = ctx
        .stores
        .service_account(&accounts, run.namespace, &account)
        .await
        .map_err(|e| format!("reading ServiceAccount {account:?} (serviceAccount) failed: {e}"))?
        .ok_or_else(|| format!("ServiceAccount {account:?} (serviceAccount) does not exist in the run's namespace"))?;
    let names = super::registry::pull_secret_names(found.image_pull_secrets.iter().flatten());
    Ok(BundleCredentials::PullSecrets(names))
}

/// The run's own namespace's Secrets: a resolver reads no other tenant's.
fn secrets_of(ctx: &Context, run: RunKey<'_>) -> Api<Secret> {
    Api::namespaced(ctx.client.clone(), run.namespace)
}

/// A resolver login's Secret key, as text; the error names the Secret, the
/// key and the params that gave them, never the value.
async fn read_secret_key(secrets: &Api<Secret>, wanted: &SecretKey) -> std::result::Result<String, String> {
    let (name, key) = (&wanted.secret, &wanted.key);
    let (secret_param, key_param) = wanted.params;
    let secret = secrets
        .get_opt(name)
        .await
        .map_err(|e| format!("reading Secret {name:?} ({secret_param}) failed: {e}"))?
        .ok_or_else(|| format!("Secret {name:?} ({secret_param}) does not exist in the run's namespace"))?;
    let value = secret
        .data
        .as_ref()
        .and_then(|data| data.get(key))
        .ok_or_else(|| format!("Secret {name:?} has no key {key:?} ({key_param})"))?;
    String::from_utf8(value.0.clone()).map_err(|_| format!("Secret {name:?} key {key:?} is not UTF-8 text"))
}

/// A git or http fetch for `run`: started by `job` in the background the
/// first time (the run is woken when it ends), its file taken once done,
/// recorded as fetched by `resolver` from `uri` (and `path`, for git).
fn fetch_in_background<J>(
    ctx: &Context,
    run: RunKey<'_>,
    job: impl FnOnce() -> J,
    (resolver, uri, path): (&str, String, Option<String>),
) -> Option<Found>
where
    J: std::future::Future<Output = std::result::Result<FetchedFile, String>> + Send + 'static,
{
    let wake = super::admission::waker(ctx, run.kind, run.namespace, run.name);
    let outcome = ctx.resolutions.fetch(run.uid, job, wake)?;
    Some(outcome.map(|file| {
        let from = ResolvedFrom {
            resolver: resolver.to_string(),
            name: String::new(),
            uri,
            commit: file.commit,
            path,
        };
        (Definition::Text(file.text), from)
    }))
}

/// A MyTask or MyPipeline from the stores (the API server if they lack it).
async fn cluster(ctx: &Context, kind: RefKind, name: &str, namespace: &str) -> Result<Found> {
    let from = ResolvedFrom {
        resolver: "cluster".to_string(),
        name: name.to_string(),
        uri: format!("{namespace}/{name}"),
        commit: None,
        path: None,
    };
    let our_kind = kind.our_kind();
    let found = match kind {
        RefKind::Task => ctx
            .stores
            .task(&ctx.client, namespace, name)
            .await?
            .map(|t| t.map(|t| Definition::Task(Box::new(t.spec)))),
        RefKind::Pipeline => ctx
            .stores
            .pipeline(&ctx.client, namespace, name)
            .await?
            .map(|p| p.map(|p| Definition::Pipeline(Box::new(p.spec)))),
        RefKind::StepAction => ctx
            .stores
            .step_action(&ctx.client, namespace, name)
            .await?
            .map(|a| a.map(|a| Definition::StepAction(Box::new(a.spec)))),
    };
    Ok(match found {
        Some(Ok(definition)) => Ok((definition, from)),
        Some(Err(problem)) => Err(format!(
            "{our_kind} {name:?} in namespace {namespace:?} cannot be read: {problem}"
        )),
        None => Err(format!(
            "the cluster resolver found no {our_kind} {name:?} in namespace {namespace:?}"
        )),
    })
}

/// How a git source is named in messages: `url@revision:path`.
fn origin(from: &ResolvedFrom) -> String {
    format!(
        "{}@{}:{}",
        from.uri,
        from.commit.as_deref().unwrap_or_default(),
        from.path.as_deref().unwrap_or_default()
    )
}

/// Clones in a blocking thread, bounded by `timeout`. A fetch past its
/// timeout is abandoned (libgit2's own timeouts end it soon after) and
/// its directory removed when it ends.
async fn fetch_git_file(
    (url, revision, path): (String, String, String),
    login: Option<(String, String)>,
    timeout: Duration,
) -> std::result::Result<FetchedFile, String> {
    static SCRATCH: AtomicU64 = AtomicU64::new(0);
    let started = Instant::now();
    let dir = std::env::temp_dir().join(format!(
        "cicd-resolver-{}-{}",
        std::process::id(),
        SCRATCH.fetch_add(1, Ordering::Relaxed)
    ));
    let what = format!("{url} at {:?}", if revision.is_empty() { "HEAD" } else { &revision });
    let job = {
        let (url, what) = (url.clone(), what.clone());
        tokio::task::spawn_blocking(move || {
            let outcome = read_at_revision((&url, &revision, &path), login, &dir);
            let _ = std::fs::remove_dir_all(&dir);
            outcome.map_err(|why| format!("git resolver: {what}: {why}"))
        })
    };
    let joined = async { job.await.map_err(|join| format!("the fetch stopped: {join}")) };
    let outcome = match super::http_fetch::within(timeout, joined).await {
        Err(why) => Err(format!("git resolver: {what}: {why}")),
        Ok(outcome) => outcome,
    };
    info!(%url, ok = outcome.is_ok(), seconds = started.elapsed().as_secs_f64(), "git resolver fetch ended");
    outcome
}

/// libgit2's network timeouts, so a silent server ends a fetch rather
/// than holding a thread for good. Set once, before the first fetch.
fn set_git_timeouts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: libgit2's global options are set once, inside `call_once`,
        // before this process makes any libgit2 call (only this module does).
        unsafe {
            let _ = git2::opts::set_server_connect_timeout_in_milliseconds(10_000);
            let _ = git2::opts::set_server_timeout_in_milliseconds(30_000);
        }
    });
}

/// Clones `url` at `revision` (shallow for a branch or tag) into `dir` and
/// reads `path` from the commit's tree, not from the checkout, so a
/// symlink in the repository cannot make the controller read its own
/// files.
fn read_at_revision(
    (url, revision, path): (&str, &str, &str),
    login: Option<(String, String)>,
    dir: &Path,
) -> std::result::Result<FetchedFile, String> {
    set_git_timeouts();
    let settings = CloneSettings {
        url: url.to_string(),
        revision: revision.to_string(),
        depth: Some(1),
        target: PathBuf::from(dir),
        ssl_verify: true,
        ssh_directory: None,
        basic_auth: None,
        login,
        git_credentials: None,
        delete_existing: false,
        result_commit: None,
        result_url: None,
    };
    let cloned = cicd_git_clone::clone::clone_logging(&settings, &|line| debug!(%line, "git resolver")).map_err(
        |e| match e {
            // The tool's own advice (workspaces, ServiceAccount Secrets) is not the resolver's.
            CloneError::Auth { url, .. } if settings.login.is_none() => format!(
                "authentication to {url} failed: the repository wants a login; give the git resolver gitToken \
                 (a Secret of the run's namespace) and gitTokenKey (its key, default \"token\")"
            ),
            other => other.to_string(),
        },
    )?;
    let repo = Repository::open(dir).map_err(|e| format!("cannot open the clone: {}", e.message()))?;
    let commit = Oid::from_str(&cloned.commit)
        .and_then(|oid| repo.find_commit(oid))
        .map_err(|e| format!("cannot read commit {}: {}", cloned.commit, e.message()))?;
    let tree = commit.tree().map_err(|e| e.message().to_string())?;
    let entry = tree
        .get_path(Path::new(path))
        .map_err(|_| format!("pathInRepo {path:?} is not in commit {}", cloned.commit))?;
    const SYMLINK_MODE: i32 = 0o120000;
    if entry.kind() != Some(ObjectType::Blob) || entry.filemode() == SYMLINK_MODE {
        return Err(format!(
            "pathInRepo {path:?} is not a file (a directory or a symbolic link)"
        ));
    }
    let blob = repo.find_blob(entry.id()).map_err(|e| e.message().to_string())?;
    if blob.size() > MAX_FILE_BYTES {
        return Err(format!(
            "pathInRepo {path:?} has {} bytes, at most {MAX_FILE_BYTES} are read",
            blob.size()
        ));
    }
    let text =
        String::from_utf8(blob.content().to_vec()).map_err(|_| format!("pathInRepo {path:?} is not UTF-8 text"))?;
    Ok(FetchedFile {
        text,
        commit: Some(cloned.commit),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) {
        let status = Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(dir)
            .status()
            .expect("git runs");
        assert!(status.success(), "git {args:?}");
    }

    /// A repository with a task file, a symlink to a file outside it and
    /// a directory; its path serves as the url (libgit2's local transport).
    fn repository() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        let work = dir.path();
        git(work, &["init", "-q"]);
        std::fs::create_dir(work.join("ci")).expect("mkdir");
        std::fs::write(work.join("ci/task.yaml"), "kind: MyTask\n").expect("write");
        std::os::unix::fs::symlink("/etc/hostname", work.join("ci/link.yaml")).expect("symlink");
        git(work, &["add", "-A"]);
        git(work, &["commit", "-q", "-m", "catalog"]);
        dir
    }

    #[test]
    fn a_file_is_read_from_the_commit_and_links_and_directories_are_refused() {
        let repo = repository();
        let url = repo.path().to_string_lossy().to_string();
        let scratch = tempfile::tempdir().expect("temp dir");
        let read =
            |path: &str, n: u32| read_at_revision((&url, "main", path), None, &scratch.path().join(n.to_string()));

        let file = read("ci/task.yaml", 1).expect("the file");
        assert_eq!(file.text, "kind: MyTask\n");
        assert_eq!(file.commit.as_deref().map(str::len), Some(40));
        let link = read("ci/link.yaml", 2).expect_err("a symlink");
        assert!(link.contains("is not a file"), "{link}");
        let directory = read("ci", 3).expect_err("a directory");
        assert!(directory.contains("is not a file"), "{directory}");
        let missing = read("ci/nope.yaml", 4).expect_err("missing");
        assert!(missing.contains("\"ci/nope.yaml\" is not in commit"), "{missing}");
        let revision = read_at_revision(
            (&url, "no-such-branch", "ci/task.yaml"),
            None,
            &scratch.path().join("5"),
        )
        .expect_err("unknown revision");
        assert!(revision.contains("no-such-branch"), "{revision}");
    }

    #[test]
    fn a_server_that_never_answers_ends_at_the_timeout() {
        // Accepts connections and says nothing.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        std::thread::spawn(move || {
            let _held: Vec<_> = listener.incoming().take(4).collect();
        });
        let request = (
            format!("git://127.0.0.1:{port}/r.git"),
            String::new(),
            "t.yaml".to_string(),
        );
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let started = Instant::now();
        let outcome = runtime.block_on(fetch_git_file(request, None, Duration::from_secs(1)));
        let error = outcome.expect_err("times out");
        assert!(error.contains("no answer within 1s"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        // The abandoned clone ends at libgit2's own timeout; not waited for here.
        runtime.shutdown_background();
    }
}
