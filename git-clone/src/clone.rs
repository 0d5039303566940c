//! The clone itself: list the remote's refs, fetch only what the revision
//! needs (shallow when asked), check it out detached. Every failure names
//! the url and, where it matters, the revision.

use std::cell::RefCell;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use git2::build::CheckoutBuilder;
use git2::{
    AutotagOption, CertificateCheckStatus, Cred, CredentialType, Direction, ErrorClass, ErrorCode, FetchOptions, Oid,
    RemoteCallbacks, Repository,
};

use crate::args::Settings;
use crate::revision::{FetchPlan, PlanError, RemoteRef, Revision, plan_fetch};
use crate::ssh::{HostKeyCheck, check_host_key, ssh_endpoint};

/// Private key file names looked for in the ssh directory, in this order.
pub const SSH_KEY_NAMES: [&str; 3] = ["id_ed25519", "id_ecdsa", "id_rsa"];

#[derive(Debug, thiserror::Error)]
pub enum CloneError {
    #[error("cannot prepare {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("bad repository url {url:?}: {message}")]
    BadUrl { url: String, message: String },
    #[error("cannot reach repository {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("authentication to {url} failed: {message}")]
    Auth { url: String, message: String },
    #[error("host key of {url} refused: {message}")]
    HostKey { url: String, message: String },
    #[error("revision {revision:?} not found in {url} (branches and tags there: {known})")]
    UnknownRevision {
        url: String,
        revision: String,
        known: String,
    },
    #[error("commit {commit} not found in {url} (it is on no branch or tag there)")]
    UnknownCommit { url: String, commit: String },
    #[error("{url} has no default branch (empty repository?); set a revision")]
    NoDefaultBranch { url: String },
    #[error("ssh directory {path}: {message}")]
    SshDirectory { path: PathBuf, message: String },
    #[error("basic-auth directory {path}: {source}")]
    BasicAuth { path: PathBuf, source: std::io::Error },
    #[error("git failed while {action} {url}: {source}")]
    Git {
        action: &'static str,
        url: String,
        source: git2::Error,
    },
}

/// What a successful clone reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cloned {
    pub commit: String,
    /// The ref that was fetched, or None for a commit id.
    pub fetched_ref: Option<String>,
}

/// Credentials and host keys read once, before any network traffic.
#[derive(Debug, Default, Clone)]
struct Secrets {
    ssh_keys: Vec<PathBuf>,
    known_hosts: Option<String>,
    user_pass: Option<(String, String)>,
}

/// Clones as [`clone_logging`] does, progress on stderr.
pub fn clone(settings: &Settings) -> Result<Cloned, CloneError> {
    clone_logging(settings, &|line| eprintln!("cicd-git-clone: {line}"))
}

/// Clones `settings.url` at `settings.revision` into `settings.target`;
/// `log` gets one line per phase (refs listed, objects fetched), so a
/// caller with its own logging (the controller's git resolver) keeps it.
pub fn clone_logging(settings: &Settings, log: &dyn Fn(&str)) -> Result<Cloned, CloneError> {
    let url = settings.url.as_str();
    let secrets = read_secrets(settings)?;
    // libgit2 gives the callbacks' reasons a generic message; keep ours.
    let refusal = RefCell::new(None);
    let classify = |action, error| with_refusal(classify(url, action, error), &refusal);
    prepare_target(&settings.target, settings.delete_existing)?;
    let repo = Repository::init(&settings.target).map_err(|e| git(url, "initialising a repository for", e))?;
    let mut remote = repo.remote_anonymous(url).map_err(|e| classify("reading the url", e))?;

    // Ask the remote for its refs first: an unknown revision then fails
    // before any download, and the error can list what exists.
    let started = Instant::now();
    let (remote_refs, default_branch) = {
        let connection = remote
            .connect_auth(Direction::Fetch, Some(callbacks(settings, &secrets, &refusal)), None)
            .map_err(|e| classify("connecting to", e))?;
        let heads = connection.list().map_err(|e| classify("listing the refs of", e))?;
        let refs: Vec<RemoteRef> = heads
            .iter()
            .map(|h| RemoteRef {
                name: h.name().to_string(),
                oid: h.oid().to_string(),
            })
            .collect();
        let default = connection
            .default_branch()
            .ok()
            .and_then(|b| b.as_str().ok().map(str::to_string));
        (refs, default)
    };
    log(&format!(
        "{url} lists {} refs ({:.1}s)",
        remote_refs.len(),
        started.elapsed().as_secs_f64()
    ));

    let revision = Revision::classify(&settings.revision);
    let plan = plan_fetch(&revision, &remote_refs, default_branch.as_deref()).map_err(|e| match e {
        PlanError::NotFound { known } => CloneError::UnknownRevision {
            url: url.to_string(),
            revision: settings.revision.clone(),
            known: if known.is_empty() {
                "none".into()
            } else {
                known.join(", ")
            },
        },
        PlanError::NoDefaultBranch => CloneError::NoDefaultBranch { url: url.to_string() },
    })?;

    let mut options = FetchOptions::new();
    options.remote_callbacks(callbacks(settings, &secrets, &refusal));
    options.download_tags(AutotagOption::None);
    let (refspecs, depth) = match &plan {
        FetchPlan::Ref { remote, local } => (vec![format!("+{remote}:{local}")], settings.depth),
        FetchPlan::Everything { .. } => {
            if settings.depth.is_some() {
                log("revision is a commit id: fetching full history (depth ignored)");
            }
            (
                vec![
                    "+refs/heads/*:refs/remotes/origin/*".to_string(),
                    "+refs/tags/*:refs/tags/*".to_string(),
                ],
                None,
            )
        }
    };
    // libgit2's local transport cannot fetch shallow.
    let depth = depth.filter(|_| !is_local_path(url));
    if let Some(depth) = depth {
        options.depth(i32::try_from(depth).unwrap_or(i32::MAX));
    }
    let started = Instant::now();
    remote
        .fetch(&refspecs, Some(&mut options), None)
        .map_err(|e| classify("fetching from", e))?;
    let stats = remote.stats();
    log(&format!(
        "fetched {} objects, {} KiB ({:.1}s)",
        stats.received_objects(),
        stats.received_bytes() / 1024,
        started.elapsed().as_secs_f64()
    ));

    let (commit, fetched_ref) = match &plan {
        FetchPlan::Ref { remote, local } => {
            let commit = repo
                .find_reference(local)
                .and_then(|r| r.peel_to_commit())
                .map_err(|e| git(url, "resolving the fetched ref of", e))?;
            (commit, Some(remote.clone()))
        }
        FetchPlan::Everything { commit } => {
            let unknown = || CloneError::UnknownCommit {
                url: url.to_string(),
                commit: commit.clone(),
            };
            let oid = Oid::from_str(commit).map_err(|_| unknown())?;
            (repo.find_commit(oid).map_err(|_| unknown())?, None)
        }
    };
    repo.checkout_tree(commit.as_object(), Some(CheckoutBuilder::new().force()))
        .map_err(|e| git(url, "checking out", e))?;
    repo.set_head_detached(commit.id())
        .map_err(|e| git(url, "checking out", e))?;
    Ok(Cloned {
        commit: commit.id().to_string(),
        fetched_ref,
    })
}

/// A plain path or file:// URL (libgit2's local transport).
pub fn is_local_path(url: &str) -> bool {
    url.starts_with("file://") || (!url.contains("://") && ssh_endpoint(url).is_none())
}

/// Puts the reason a callback recorded into an auth or host key error.
fn with_refusal(error: CloneError, refusal: &RefCell<Option<String>>) -> CloneError {
    match (error, refusal.borrow_mut().take()) {
        (CloneError::HostKey { url, .. }, Some(message)) => CloneError::HostKey { url, message },
        (CloneError::Auth { url, .. }, Some(message)) => CloneError::Auth { url, message },
        (error, _) => error,
    }
}

fn git(url: &str, action: &'static str, source: git2::Error) -> CloneError {
    CloneError::Git {
        action,
        url: url.to_string(),
        source,
    }
}

/// Turns a libgit2 error into the failure a user can act on.
pub fn classify(url: &str, action: &'static str, error: git2::Error) -> CloneError {
    let url_owned = url.to_string();
    let message = error.message().to_string();
    let lower = message.to_ascii_lowercase();
    match error.code() {
        ErrorCode::Auth => {
            return CloneError::Auth {
                url: url_owned,
                message,
            };
        }
        ErrorCode::Certificate => {
            return CloneError::HostKey {
                url: url_owned,
                message,
            };
        }
        _ => {}
    }
    if lower.contains("unsupported url protocol")
        || lower.contains("malformed url")
        || lower.contains("invalid url")
        || lower.contains("failed to resolve path")
        || lower.contains("failed to parse")
    {
        CloneError::BadUrl {
            url: url_owned,
            message,
        }
    } else if lower.contains("authentication")
        || lower.contains("unable to authenticate")
        || lower.contains("permission denied")
    {
        CloneError::Auth {
            url: url_owned,
            message,
        }
    } else if matches!(
        error.class(),
        ErrorClass::Net | ErrorClass::Os | ErrorClass::Ssh | ErrorClass::Http
    ) || lower.contains("repository not exported")
        || lower.contains("not found")
    {
        CloneError::Unreachable {
            url: url_owned,
            message,
        }
    } else {
        git(url, action, error)
    }
}

fn read_secrets(settings: &Settings) -> Result<Secrets, CloneError> {
    let mut secrets = Secrets::default();
    if let Some(dir) = &settings.ssh_directory {
        let dir_error = |message: String| CloneError::SshDirectory {
            path: dir.clone(),
            message,
        };
        if !dir.is_dir() {
            return Err(dir_error("not a directory".into()));
        }
        secrets.ssh_keys = SSH_KEY_NAMES
            .iter()
            .map(|n| dir.join(n))
            .filter(|p| p.is_file())
            .collect();
        if secrets.ssh_keys.is_empty() {
            return Err(dir_error(format!("holds none of {}", SSH_KEY_NAMES.join(", "))));
        }
        let known_hosts = dir.join("known_hosts");
        if known_hosts.is_file() {
            secrets.known_hosts =
                Some(fs::read_to_string(&known_hosts).map_err(|e| dir_error(format!("reading known_hosts: {e}")))?);
        } else {
            eprintln!(
                "cicd-git-clone: WARNING: no known_hosts in {}: any SSH host key is accepted",
                dir.display()
            );
        }
    }
    if let Some(dir) = &settings.basic_auth {
        let read = |name: &str| {
            fs::read_to_string(dir.join(name))
                .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
                .map_err(|source| CloneError::BasicAuth {
                    path: dir.join(name),
                    source,
                })
        };
        secrets.user_pass = Some((read("username")?, read("password")?));
    } else if let Some(login) = &settings.login {
        secrets.user_pass = Some(login.clone());
    } else if let Some(store) = &settings.git_credentials {
        let text = fs::read_to_string(store).map_err(|source| CloneError::BasicAuth {
            path: store.clone(),
            source,
        })?;
        secrets.user_pass = crate::credential_store::lookup(&text, &settings.url);
    }
    Ok(secrets)
}

/// Creates the target directory, emptied unless told to keep its content.
/// The directory itself is kept: it is often a volume mount point.
fn prepare_target(target: &Path, delete_existing: bool) -> Result<(), CloneError> {
    let io = |source| CloneError::Io {
        path: target.to_path_buf(),
        source,
    };
    fs::create_dir_all(target).map_err(io)?;
    if delete_existing {
        for entry in fs::read_dir(target).map_err(io)? {
            let path = entry.map_err(io)?.path();
            let removed = if path.is_dir() && !path.is_symlink() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            removed.map_err(|source| CloneError::Io {
                path: path.clone(),
                source,
            })?;
        }
    }
    Ok(())
}

/// Callbacks for one connection: credentials are offered one at a time (each
/// key once, then basic auth once) so a wrong key ends in a clear error
/// instead of libgit2 asking again forever.
fn callbacks<'a>(
    settings: &'a Settings,
    secrets: &'a Secrets,
    refusal: &'a RefCell<Option<String>>,
) -> RemoteCallbacks<'a> {
    let mut callbacks = RemoteCallbacks::new();
    let endpoint = ssh_endpoint(&settings.url);
    let user_from_endpoint = endpoint.as_ref().and_then(|e| e.user.clone());
    let mut keys_tried = 0usize;
    let mut user_pass_tried = false;
    callbacks.credentials(move |_url, user_from_url, allowed| {
        let user = user_from_url
            .map(str::to_string)
            .or_else(|| user_from_endpoint.clone())
            .unwrap_or_else(|| "git".into());
        if allowed.contains(CredentialType::USERNAME) {
            return Cred::username(&user);
        }
        if allowed.contains(CredentialType::SSH_KEY)
            && let Some(key) = secrets.ssh_keys.get(keys_tried)
        {
            keys_tried += 1;
            return Cred::ssh_key(&user, None, key, None);
        }
        if allowed.contains(CredentialType::USER_PASS_PLAINTEXT)
            && !user_pass_tried
            && let Some((name, password)) = &secrets.user_pass
        {
            user_pass_tried = true;
            return Cred::userpass_plaintext(name, password);
        }
        let offered = match (keys_tried, user_pass_tried) {
            (0, false) => "no credentials were given (bind the ssh-directory or basic-auth workspace, or list a basic-auth Secret annotated tekton.dev/git-0 on the run's ServiceAccount)".to_string(),
            _ => format!(
                "the server refused them (tried {keys_tried} ssh key(s){})",
                if user_pass_tried { " and basic auth" } else { "" }
            ),
        };
        let message = format!("as user {user:?}: {offered}");
        *refusal.borrow_mut() = Some(message.clone());
        Err(git2::Error::new(ErrorCode::Auth, ErrorClass::Callback, message))
    });
    callbacks.certificate_check(move |cert, host| {
        if let Some(hostkey) = cert.as_hostkey() {
            let (Some(known_hosts), Some(key)) = (&secrets.known_hosts, hostkey.hostkey()) else {
                return Ok(CertificateCheckStatus::CertificateOk);
            };
            let port = endpoint.as_ref().map_or(22, |e| e.port);
            let message = match check_host_key(known_hosts, host, port, key) {
                HostKeyCheck::Match => return Ok(CertificateCheckStatus::CertificateOk),
                HostKeyCheck::Mismatch => format!("the key of {host}:{port} differs from known_hosts"),
                HostKeyCheck::Unknown => format!("{host}:{port} is not in known_hosts"),
            };
            *refusal.borrow_mut() = Some(message.clone());
            return Err(host_key_error(message));
        }
        if settings.ssl_verify {
            Ok(CertificateCheckStatus::CertificatePassthrough)
        } else {
            Ok(CertificateCheckStatus::CertificateOk)
        }
    });
    callbacks
}

fn host_key_error(message: String) -> git2::Error {
    git2::Error::new(ErrorCode::Certificate, ErrorClass::Ssh, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified_for_users() {
        let url = "ssh://git@127.0.0.1:2222/app.git";
        let auth = git2::Error::new(ErrorCode::Auth, ErrorClass::Callback, "refused");
        assert!(matches!(classify(url, "x", auth), CloneError::Auth { .. }));
        let key = git2::Error::new(ErrorCode::Certificate, ErrorClass::Ssh, "unknown host");
        assert!(matches!(classify(url, "x", key), CloneError::HostKey { .. }));
        let proto = git2::Error::new(ErrorCode::GenericError, ErrorClass::Net, "unsupported URL protocol");
        assert!(matches!(classify("ftp://x/y", "x", proto), CloneError::BadUrl { .. }));
        let refused = git2::Error::new(
            ErrorCode::GenericError,
            ErrorClass::Os,
            "failed to connect to 127.0.0.1: Connection refused",
        );
        let error = classify(url, "x", refused);
        assert!(matches!(error, CloneError::Unreachable { .. }));
        assert!(error.to_string().contains(url), "{error}");
    }

    #[test]
    fn local_paths_are_recognised() {
        assert!(is_local_path("/srv/git/app.git"));
        assert!(is_local_path("file:///srv/git/app.git"));
        assert!(is_local_path("./app"));
        assert!(!is_local_path("git://127.0.0.1/app.git"));
        assert!(!is_local_path("git@host:app.git"));
    }

    #[test]
    fn the_target_is_emptied_but_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("out");
        fs::create_dir_all(target.join("old/deep")).expect("mkdir");
        fs::write(target.join(".hidden"), "x").expect("write");
        prepare_target(&target, true).expect("prepare");
        assert!(target.is_dir());
        assert_eq!(fs::read_dir(&target).expect("read").count(), 0);
        fs::write(target.join("keep"), "x").expect("write");
        prepare_target(&target, false).expect("prepare");
        assert!(target.join("keep").exists());
    }
}
