//! Remote tasks and pipelines (`remoteTask`, `remotePipeline`): what a
//! resolver is asked for, checked before anything is fetched, and reading
//! what it fetched. Pure; the fetching itself is `controller::resolver`.
//!
//! Every param comes from a tenant, so each is checked: strings only, no
//! unknown or repeated names, urls the controller may open (never a local
//! path: that would read the controller's own files), a path inside the
//! repository, a namespace the administrator allows.

use std::collections::BTreeMap;

use crate::api::{ParamValue, PipelineSpec, RemoteRef, ResolverName, StepActionSpec, TaskSpec};
use crate::engine::errors::ValidationErrors;
use crate::manifests::{Manifests, check_name};

/// Longest url, revision or path a resolver param may hold.
pub const MAX_PARAM_BYTES: usize = 4096;

/// Largest file the git resolver reads.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// What a remote reference must turn out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    Task,
    Pipeline,
    /// A step's `ref: {resolver, params}`.
    StepAction,
}

impl RefKind {
    /// `task` or `pipeline`, as resolver params spell kinds.
    pub fn word(self) -> &'static str {
        match self {
            RefKind::Task => "task",
            RefKind::Pipeline => "pipeline",
            RefKind::StepAction => "stepaction",
        }
    }

    /// Our kind of this sort.
    pub fn our_kind(self) -> &'static str {
        match self {
            RefKind::Task => "MyTask",
            RefKind::Pipeline => "MyPipeline",
            RefKind::StepAction => "MyStepAction",
        }
    }

    /// Tekton's kind of this sort.
    fn tekton_kind(self) -> &'static str {
        match self {
            RefKind::Task => "Task",
            RefKind::Pipeline => "Pipeline",
            RefKind::StepAction => "StepAction",
        }
    }
}

/// A checked resolver request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A MyTask or MyPipeline `name` in `namespace`.
    Cluster { name: String, namespace: String },
    /// The file `path` of repository `url` at `revision` (empty: the default branch).
    Git {
        url: String,
        revision: String,
        path: String,
        /// `gitToken` / `gitTokenKey`: a token to clone with.
        token: Option<SecretKey>,
    },
    /// The file at `url` (http:// or https://), with a login when given.
    Http { url: String, login: Option<HttpLogin> },
    /// The layer of image `image` that holds the task or pipeline `name`,
    /// logged in as `login` says.
    Bundle {
        image: String,
        name: String,
        login: BundleLogin,
    },
}

/// How the bundles resolver logs in to the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleLogin {
    /// `secret`: this dockerconfigjson Secret, which must hold a login for
    /// the registry.
    Secret(String),
    /// `serviceAccount` (Tekton's older param; `default` when neither is
    /// given): the pull Secrets this ServiceAccount lists, as the kubelet
    /// would use them; none that fits means no login.
    ServiceAccount(String),
}

/// Tekton's http resolver login: `http-username`, and the password in key
/// `http-password-secret-key` of Secret `http-password-secret`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLogin {
    pub username: String,
    pub password: SecretKey,
}

/// A key of a Secret of the run's namespace, read only when the fetch
/// starts and never kept; `params` name the resolver params that gave it,
/// for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretKey {
    pub secret: String,
    pub key: String,
    pub params: (&'static str, &'static str),
}

/// The username the git resolver clones with a `gitToken` as (hosts that
/// take a token as the password ignore the name).
pub const GIT_TOKEN_USER: &str = "git";

/// Who may be read from where: the run's namespace, and the namespaces
/// an administrator lists for the cluster resolver.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub run_namespace: &'a str,
    pub allowed_namespaces: &'a [String],
    /// The hosts the git, http and bundles resolvers may fetch from (`host`,
    /// `host:port`, `*.domain`); empty for any.
    pub allowed_hosts: &'a [String],
}

/// The params each resolver takes (`convert` reports any other).
pub const CLUSTER_PARAMS: [&str; 3] = ["kind", "name", "namespace"];
pub const GIT_PARAMS: [&str; 5] = ["url", "revision", "pathInRepo", "gitToken", "gitTokenKey"];
pub const HTTP_PARAMS: [&str; 4] = [
    "url",
    "http-username",
    "http-password-secret",
    "http-password-secret-key",
];
pub const BUNDLES_PARAMS: [&str; 6] = ["bundle", "name", "kind", "secret", "serviceAccount", "cache"];
const HTTP_LOGIN_PARAMS: [&str; 3] = ["http-username", "http-password-secret", "http-password-secret-key"];

/// Checks a `remoteTask`/`remotePipeline` (at `field`) and turns it into a
/// request, or lists every problem, each naming its field.
pub fn parse_request(remote: &RemoteRef, expected: RefKind, scope: Scope<'_>, field: &str) -> Result<Request, String> {
    let mut errors = ValidationErrors::default();
    let known: &[&str] = match remote.resolver {
        ResolverName::Cluster => &CLUSTER_PARAMS,
        ResolverName::Git => &GIT_PARAMS,
        ResolverName::Http => &HTTP_PARAMS,
        ResolverName::Bundles => &BUNDLES_PARAMS,
    };
    let params = string_params(remote, known, field, &mut errors);
    let request = match remote.resolver {
        ResolverName::Cluster => cluster_request(&params, expected, scope, field, &mut errors),
        ResolverName::Git => git_request(&params, field, &mut errors),
        ResolverName::Http => http_request(&params, field, &mut errors),
        ResolverName::Bundles => bundle_request(&params, expected, field, &mut errors),
    };
    match &request {
        Request::Git { url, .. } | Request::Http { url, .. } => {
            check_host(url, scope.allowed_hosts, field, &mut errors)
        }
        Request::Bundle { image, .. } => {
            // A bundle's registry is where the resolver fetches from.
            let registry = crate::image::parse_image_ref(image)
                .map(|r| r.registry)
                .unwrap_or_default();
            check_host(&format!("oci://{registry}"), scope.allowed_hosts, field, &mut errors);
        }
        Request::Cluster { .. } => {}
    }
    errors.into_result(request).map_err(|e| e.to_string())
}

/// The params as strings by name; a value of another type, a name the
/// resolver does not take, a name given twice or a huge value is an error.
fn string_params<'a>(
    remote: &'a RemoteRef,
    known: &[&str],
    field: &str,
    errors: &mut ValidationErrors,
) -> BTreeMap<&'a str, &'a str> {
    let mut params = BTreeMap::new();
    for (index, param) in remote.params.iter().enumerate() {
        let at = format!("{field}.params[{index}]");
        if !known.contains(&param.name.as_str()) {
            errors.push(
                format!("{at}.name"),
                format!(
                    "the {} resolver takes no param {:?} (it takes {})",
                    resolver_word(remote.resolver),
                    param.name,
                    known.join(", ")
                ),
            );
            continue;
        }
        let ParamValue::String(value) = &param.value else {
            errors.push(
                format!("{at}.value"),
                format!("param {:?} must be a string", param.name),
            );
            continue;
        };
        if value.len() > MAX_PARAM_BYTES {
            errors.push(
                format!("{at}.value"),
                format!("{} bytes, at most {MAX_PARAM_BYTES} are allowed", value.len()),
            );
        } else if params.insert(param.name.as_str(), value.as_str()).is_some() {
            errors.push(format!("{at}.name"), format!("param {:?} is given twice", param.name));
        }
    }
    params
}

fn resolver_word(resolver: ResolverName) -> &'static str {
    match resolver {
        ResolverName::Cluster => "cluster",
        ResolverName::Git => "git",
        ResolverName::Http => "http",
        ResolverName::Bundles => "bundles",
    }
}

fn required<'a>(params: &BTreeMap<&str, &'a str>, name: &str, field: &str, errors: &mut ValidationErrors) -> &'a str {
    match params.get(name).copied().filter(|v| !v.trim().is_empty()) {
        Some(value) => value,
        None => {
            errors.push(format!("{field}.params"), format!("param {name:?} is required"));
            ""
        }
    }
}

fn cluster_request(
    params: &BTreeMap<&str, &str>,
    expected: RefKind,
    scope: Scope<'_>,
    field: &str,
    errors: &mut ValidationErrors,
) -> Request {
    let kind = params.get("kind").copied().unwrap_or(expected.word());
    if kind != expected.word() {
        errors.push(
            format!("{field}.params"),
            format!("kind {kind:?}: this reference needs a {:?}", expected.word()),
        );
    }
    let name = required(params, "name", field, errors);
    if !name.is_empty()
        && let Err(why) = check_name(name)
    {
        errors.push(
            format!("{field}.params"),
            format!("name: {}", why.trim_start_matches("metadata.name: ")),
        );
    }
    let namespace = params.get("namespace").copied().unwrap_or(scope.run_namespace);
    let allowed = namespace == scope.run_namespace || scope.allowed_namespaces.iter().any(|n| n == namespace);
    if !allowed {
        errors.push(
            format!("{field}.params"),
            format!(
                "namespace {namespace:?} is not the run's ({:?}) and the administrator allows the cluster resolver no \
                 other namespace by that name (--cluster-resolver-namespaces: {})",
                scope.run_namespace,
                if scope.allowed_namespaces.is_empty() {
                    "none".to_string()
                } else {
                    scope.allowed_namespaces.join(", ")
                }
            ),
        );
    }
    Request::Cluster {
        name: name.to_string(),
        namespace: namespace.to_string(),
    }
}

fn git_request(params: &BTreeMap<&str, &str>, field: &str, errors: &mut ValidationErrors) -> Request {
    let url = required(params, "url", field, errors).trim();
    if !url.is_empty() && !["git://", "http://", "https://"].iter().any(|s| url.starts_with(s)) {
        errors.push(
            format!("{field}.params"),
            format!(
                "url {url:?}: the git resolver opens git://, http:// and https:// urls only (a local path or \
                 file:// url would read the controller's own files)"
            ),
        );
    }
    let given = required(params, "pathInRepo", field, errors).trim();
    // A leading `/` means the repository's root, as in Tekton's git resolver.
    let path = given.trim_start_matches('/');
    if !given.is_empty() && (path.is_empty() || path.split('/').any(|part| part == "..")) {
        errors.push(
            format!("{field}.params"),
            format!("pathInRepo {given:?} must name a file inside the repository (no \"..\")"),
        );
    }
    let revision = params.get("revision").copied().unwrap_or_default().trim();
    if revision.chars().any(|c| c.is_whitespace() || c.is_control()) {
        errors.push(
            format!("{field}.params"),
            format!("revision {revision:?} must be a branch, tag or commit (no spaces)"),
        );
    }
    let token = params.get("gitToken").map(|secret| {
        let key = params.get("gitTokenKey").copied().unwrap_or("token");
        secret_key(secret, key, ("gitToken", "gitTokenKey"), field, errors)
    });
    if token.is_none() && params.contains_key("gitTokenKey") {
        errors.push(format!("{field}.params"), "gitTokenKey is given without gitToken");
    }
    Request::Git {
        url: url.to_string(),
        revision: revision.to_string(),
        path: path.to_string(),
        token,
    }
}

/// A Secret's name and key as resolver params `params` give them, checked.
fn secret_key(
    secret: &str,
    key: &str,
    params: (&'static str, &'static str),
    field: &str,
    errors: &mut ValidationErrors,
) -> SecretKey {
    if let Err(why) = check_name(secret) {
        errors.push(
            format!("{field}.params"),
            format!("{}: {}", params.0, why.trim_start_matches("metadata.name: ")),
        );
    }
    if key.is_empty()
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        errors.push(
            format!("{field}.params"),
            format!("{} {key:?} is not a Secret key (A-Z a-z 0-9 - _ .)", params.1),
        );
    }
    SecretKey {
        secret: secret.to_string(),
        key: key.to_string(),
        params,
    }
}

/// `host[:port]` of a url, lowercased, without any user part.
fn url_host(url: &str) -> Option<String> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// Whether `host` (`name[:port]`) is one an administrator allows: an
/// entry naming it with its port, or without one (any port), or `*.domain`.
pub fn host_allowed(host: &str, allowed: &[String]) -> bool {
    // An IPv6 literal (`[::1]:80`) is matched only as written.
    let name = host
        .rsplit_once(':')
        .filter(|(name, port)| {
            !name.contains(['[', ':']) && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
        })
        .map_or(host, |(name, _)| name);
    allowed.iter().any(|entry| {
        entry == host
            || entry == name
            || entry
                .strip_prefix("*.")
                .is_some_and(|domain| name.ends_with(&format!(".{domain}")))
    })
}

/// A git or http url's (or a bundle's registry's) host must be one the administrator allows
/// (`--resolver-allowed-hosts`), when a list is set.
fn check_host(url: &str, allowed: &[String], field: &str, errors: &mut ValidationErrors) {
    if allowed.is_empty() || url.is_empty() {
        return;
    }
    match url_host(url) {
        Some(host) if host_allowed(&host, allowed) => {}
        found => errors.push(
            format!("{field}.params"),
            format!(
                "url {url:?}: host {:?} is not among the hosts the resolvers may fetch from ({}; --resolver-allowed-hosts)",
                found.unwrap_or_default(),
                allowed.join(", ")
            ),
        ),
    }
}

fn http_request(params: &BTreeMap<&str, &str>, field: &str, errors: &mut ValidationErrors) -> Request {
    let url = required(params, "url", field, errors).trim();
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
    match rest {
        None if !url.is_empty() => errors.push(
            format!("{field}.params"),
            format!("url {url:?}: the http resolver opens http:// and https:// urls only"),
        ),
        // Credentials in the url would end up in the run's status.
        Some(rest) if rest.split('/').next().is_some_and(|authority| authority.contains('@')) => errors.push(
            format!("{field}.params"),
            format!(
                "url {url:?}: a url with a user or password is not accepted (it would be kept in the run's status)"
            ),
        ),
        _ => {}
    }
    Request::Http {
        url: url.to_string(),
        login: http_login(params, field, errors),
    }
}

/// A bundle: an image reference (with a tag or digest), the name and kind
/// of what to take from it, and perhaps a pull Secret to log in with.
fn bundle_request(
    params: &BTreeMap<&str, &str>,
    expected: RefKind,
    field: &str,
    errors: &mut ValidationErrors,
) -> Request {
    let image = required(params, "bundle", field, errors).trim();
    if !image.is_empty()
        && let Err(why) = crate::image::parse_image_ref(image)
    {
        errors.push(format!("{field}.params"), format!("bundle {image:?}: {why}"));
    }
    let name = required(params, "name", field, errors).trim();
    let kind = required(params, "kind", field, errors).trim();
    if !kind.is_empty() && !kind.eq_ignore_ascii_case(expected.word()) {
        errors.push(
            format!("{field}.params"),
            format!("kind {kind:?}: this reference needs a {:?}", expected.word()),
        );
    }
    let login = bundle_login(params, field, errors);
    if let Some(cache) = params.get("cache")
        && !["always", "never", "auto"].contains(cache)
    {
        errors.push(
            format!("{field}.params"),
            format!(
                "cache {cache:?}: one of always, never, auto (every run reads the bundle once and keeps what it read)"
            ),
        );
    }
    Request::Bundle {
        image: image.to_string(),
        name: name.to_string(),
        login,
    }
}

/// `secret` or `serviceAccount` (not both), each a valid object name.
fn bundle_login(params: &BTreeMap<&str, &str>, field: &str, errors: &mut ValidationErrors) -> BundleLogin {
    let named = |param: &str| params.get(param).map(|value| value.trim().to_string());
    let login = match (named("secret"), named("serviceAccount")) {
        (Some(secret), Some(account)) => {
            errors.push(
                format!("{field}.params"),
                format!("secret {secret:?} and serviceAccount {account:?}: give one of them"),
            );
            BundleLogin::Secret(secret)
        }
        (Some(secret), None) => BundleLogin::Secret(secret),
        (None, account) => BundleLogin::ServiceAccount(account.unwrap_or_else(|| "default".to_string())),
    };
    let (param, name) = match &login {
        BundleLogin::Secret(name) => ("secret", name),
        BundleLogin::ServiceAccount(name) => ("serviceAccount", name),
    };
    if let Err(why) = check_name(name) {
        errors.push(
            format!("{field}.params"),
            format!("{param}: {}", why.trim_start_matches("metadata.name: ")),
        );
    }
    login
}

/// The login, when any of its params is given: then all three must be.
fn http_login(params: &BTreeMap<&str, &str>, field: &str, errors: &mut ValidationErrors) -> Option<HttpLogin> {
    if !HTTP_LOGIN_PARAMS.iter().any(|name| params.contains_key(name)) {
        return None;
    }
    let [username, secret, key] = HTTP_LOGIN_PARAMS.map(|name| required(params, name, field, errors));
    let password = if secret.is_empty() || key.is_empty() {
        // Already reported as missing.
        SecretKey {
            secret: secret.to_string(),
            key: key.to_string(),
            params: ("http-password-secret", "http-password-secret-key"),
        }
    } else {
        secret_key(
            secret,
            key,
            ("http-password-secret", "http-password-secret-key"),
            field,
            errors,
        )
    };
    Some(HttpLogin {
        username: username.to_string(),
        password,
    })
}

/// The one MyTask (or Tekton Task) of a fetched file, with its name.
pub fn task_from_file(text: &str, origin: &str) -> Result<(String, TaskSpec), String> {
    the_one(text, origin, RefKind::Task, |m| {
        m.tasks.drain(..).map(|t| (t.metadata.name, t.spec)).collect()
    })
}

/// The one MyStepAction (or Tekton StepAction) of a fetched file, with its name.
pub fn step_action_from_file(text: &str, origin: &str) -> Result<(String, StepActionSpec), String> {
    the_one(text, origin, RefKind::StepAction, |m| {
        m.step_actions.drain(..).map(|a| (a.metadata.name, a.spec)).collect()
    })
}

/// The one MyPipeline (or Tekton Pipeline) of a fetched file, with its name.
pub fn pipeline_from_file(text: &str, origin: &str) -> Result<(String, PipelineSpec), String> {
    the_one(text, origin, RefKind::Pipeline, |m| {
        m.pipelines.drain(..).map(|p| (p.metadata.name, p.spec)).collect()
    })
}

/// The one document of `kind` in a fetched file (`take` moves the file's
/// documents of that kind out, as (name, spec)).
fn the_one<S>(
    text: &str,
    origin: &str,
    kind: RefKind,
    take: impl FnOnce(&mut Manifests) -> Vec<(Option<String>, S)>,
) -> Result<(String, S), String> {
    let mut manifests = read_file(text, origin)?;
    let mut found = take(&mut manifests);
    if found.len() == 1 {
        let (name, spec) = found.remove(0);
        return Ok((name.unwrap_or_default(), spec));
    }
    Err(one_expected(kind, found.len(), &manifests, origin))
}

/// Every document of the file with the strict decoder; Tekton documents
/// are converted first, as `convert` would, and refused if that loses
/// anything (the run would not mean what its author wrote).
fn read_file(text: &str, origin: &str) -> Result<Manifests, String> {
    let ours;
    let text = if text.contains("tekton.dev/") {
        let inputs = [(origin.to_string(), text.to_string())];
        ours = crate::convert::convert_yaml(&inputs, false)
            .map_err(|e| format!("{origin}: converting from Tekton: {e}"))?
            .yaml;
        ours.as_str()
    } else {
        text
    };
    let mut manifests = Manifests::default();
    manifests.add_yaml(origin, text).map_err(|e| e.to_string())?;
    Ok(manifests)
}

fn one_expected(kind: RefKind, found: usize, manifests: &Manifests, origin: &str) -> String {
    // The documents of `kind` were taken out: what is left is the others.
    let others = manifests.tasks.len() + manifests.pipelines.len() + manifests.task_runs.len();
    let others = others + manifests.pipeline_runs.len() + manifests.step_actions.len();
    format!(
        "{origin}: expected one {} (or Tekton {}) and found {found}{}",
        kind.our_kind(),
        kind.tekton_kind(),
        if others > 0 {
            format!(" (and {others} document(s) of other kinds)")
        } else {
            String::new()
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Param;

    fn remote(resolver: ResolverName, params: &[(&str, &str)]) -> RemoteRef {
        RemoteRef {
            resolver,
            params: params
                .iter()
                .map(|(name, value)| Param {
                    name: name.to_string(),
                    value: ParamValue::String(value.to_string()),
                })
                .collect(),
        }
    }

    const SCOPE: Scope<'static> = Scope {
        run_namespace: "team-a",
        allowed_namespaces: &[],
        allowed_hosts: &[],
    };

    #[test]
    fn with_an_allow_list_only_its_hosts_are_fetched_from() {
        let allowed = [
            "git.corp:8443".to_string(),
            "*.catalog.example".to_string(),
            "10.0.0.1".to_string(),
        ];
        let scope = Scope {
            allowed_hosts: &allowed,
            ..SCOPE
        };
        let http = |url: &str| {
            parse_request(
                &remote(ResolverName::Http, &[("url", url)]),
                RefKind::Task,
                scope,
                "spec.remoteTask",
            )
        };
        for url in [
            "https://git.corp:8443/t.yaml",
            "https://eu.catalog.example/t.yaml",
            "http://10.0.0.1:8080/t.yaml",
            "http://10.0.0.1/t.yaml",
        ] {
            assert!(http(url).is_ok(), "{url}: {:?}", http(url));
        }
        for (url, host) in [
            ("https://git.corp/t.yaml", "git.corp"),
            ("https://catalog.example/t.yaml", "catalog.example"),
            ("http://evilcatalog.example/t.yaml", "evilcatalog.example"),
            ("http://169.254.169.254/latest/meta-data", "169.254.169.254"),
        ] {
            let error = http(url).expect_err(url);
            assert!(
                error.contains(&format!("host {host:?} is not among")) && error.contains("--resolver-allowed-hosts"),
                "{url}: {error}"
            );
        }
        let git = remote(
            ResolverName::Git,
            &[("url", "git://elsewhere/app.git"), ("pathInRepo", "t.yaml")],
        );
        assert!(parse_request(&git, RefKind::Task, scope, "f").is_err());
    }

    #[test]
    fn a_git_request_takes_url_path_and_revision() {
        let git = remote(
            ResolverName::Git,
            &[
                ("url", "git://10.0.0.1/app.git"),
                ("pathInRepo", "ci/task.yaml"),
                ("revision", "v1"),
            ],
        );
        assert_eq!(
            parse_request(&git, RefKind::Task, SCOPE, "spec.remoteTask"),
            Ok(Request::Git {
                url: "git://10.0.0.1/app.git".into(),
                revision: "v1".into(),
                path: "ci/task.yaml".into(),
                token: None,
            })
        );
    }

    #[test]
    fn a_leading_slash_in_path_in_repo_means_the_repository_root() {
        let request = |path: &str| {
            let git = remote(
                ResolverName::Git,
                &[("url", "git://10.0.0.1/app.git"), ("pathInRepo", path)],
            );
            parse_request(&git, RefKind::Task, SCOPE, "f")
        };
        let Ok(Request::Git { path, .. }) = request("/ci/task.yaml") else {
            panic!("a leading slash is accepted: {:?}", request("/ci/task.yaml"));
        };
        assert_eq!(path, "ci/task.yaml");
        for escaping in ["/", "/../etc/passwd", "ci/../../x"] {
            let error = request(escaping).expect_err(escaping);
            assert!(
                error.contains(&format!(
                    "pathInRepo {escaping:?} must name a file inside the repository"
                )),
                "{escaping}: {error}"
            );
        }
    }

    #[test]
    fn a_bundle_request_takes_an_image_a_name_a_kind_and_perhaps_a_secret() {
        let bundle = |params: &[(&str, &str)], kind: RefKind| {
            parse_request(&remote(ResolverName::Bundles, params), kind, SCOPE, "spec.remoteTask")
        };
        let params = [
            ("bundle", "127.0.0.1:5000/catalog/tasks:1"),
            ("name", "build"),
            ("kind", "task"),
            ("secret", "pull"),
            ("cache", "always"),
        ];
        assert_eq!(
            bundle(&params, RefKind::Task),
            Ok(Request::Bundle {
                image: "127.0.0.1:5000/catalog/tasks:1".into(),
                name: "build".into(),
                login: BundleLogin::Secret("pull".into()),
            })
        );
        let with_account = |account: Option<&str>| {
            let mut params = vec![
                ("bundle", "127.0.0.1:5000/catalog/tasks:1"),
                ("name", "build"),
                ("kind", "task"),
            ];
            params.extend(account.map(|account| ("serviceAccount", account)));
            match bundle(&params, RefKind::Task) {
                Ok(Request::Bundle { login, .. }) => Ok(login),
                other => Err(format!("{other:?}")),
            }
        };
        assert_eq!(
            with_account(Some("builder")),
            Ok(BundleLogin::ServiceAccount("builder".into()))
        );
        assert_eq!(
            with_account(None),
            Ok(BundleLogin::ServiceAccount("default".into())),
            "Tekton's default"
        );
        let both = bundle(
            &[
                ("bundle", "127.0.0.1:5000/catalog/tasks:1"),
                ("name", "build"),
                ("kind", "task"),
                ("secret", "pull"),
                ("serviceAccount", "Bad_Account"),
            ],
            RefKind::Task,
        )
        .expect_err("both");
        assert!(
            both.contains(
                "spec.remoteTask.params: secret \"pull\" and serviceAccount \"Bad_Account\": give one of them"
            ),
            "{both}"
        );
        let error = bundle(&params, RefKind::Pipeline).expect_err("a task is not a pipeline");
        assert!(
            error.contains("kind \"task\": this reference needs a \"pipeline\""),
            "{error}"
        );
        let error = bundle(
            &[
                ("bundle", "Not/An/Image"),
                ("kind", "task"),
                ("secret", "Bad_Name"),
                ("cache", "sometimes"),
            ],
            RefKind::Task,
        )
        .expect_err("bad params");
        for expected in [
            "bundle \"Not/An/Image\"",
            "param \"name\" is required",
            "secret:",
            "cache \"sometimes\"",
        ] {
            assert!(error.contains(expected), "{expected} in {error}");
        }
        let scope = Scope {
            allowed_hosts: &["git.example".to_string()],
            ..SCOPE
        };
        let refused = parse_request(
            &remote(ResolverName::Bundles, &params),
            RefKind::Task,
            scope,
            "spec.remoteTask",
        )
        .expect_err("a registry not allowed");
        assert!(
            refused.contains("host \"127.0.0.1:5000\" is not among the hosts"),
            "{refused}"
        );
    }

    #[test]
    fn a_git_token_names_a_secret_and_a_key_that_defaults_to_token() {
        let git = |extra: &[(&str, &str)]| {
            let mut params = vec![("url", "https://git.example/app.git"), ("pathInRepo", "task.yaml")];
            params.extend_from_slice(extra);
            parse_request(
                &remote(ResolverName::Git, &params),
                RefKind::Task,
                SCOPE,
                "spec.remoteTask",
            )
        };
        let Ok(Request::Git { token, .. }) = git(&[("gitToken", "repo-token")]) else {
            panic!("a request")
        };
        assert_eq!(
            token.map(|t| (t.secret, t.key)),
            Some(("repo-token".to_string(), "token".to_string()))
        );
        let error = git(&[("gitToken", "Bad_Name"), ("gitTokenKey", "a/b")]).expect_err("refused");
        assert!(
            error.contains("gitToken:") && error.contains("gitTokenKey \"a/b\" is not a Secret key"),
            "{error}"
        );
        let error = git(&[("gitTokenKey", "t")]).expect_err("key alone");
        assert!(error.contains("gitTokenKey is given without gitToken"), "{error}");
    }

    #[test]
    fn an_http_request_takes_an_http_or_https_url_without_credentials() {
        let http = |url: &str| {
            parse_request(
                &remote(ResolverName::Http, &[("url", url)]),
                RefKind::Task,
                SCOPE,
                "spec.remoteTask",
            )
        };
        assert_eq!(
            http("https://catalog.example/tasks/build.yaml"),
            Ok(Request::Http {
                url: "https://catalog.example/tasks/build.yaml".into(),
                login: None,
            })
        );
        for (url, needle) in [
            ("file:///etc/passwd", "http:// and https:// urls only"),
            ("git://host/repo.git", "http:// and https:// urls only"),
            (
                "https://user:token@catalog.example/t.yaml",
                "user or password is not accepted",
            ),
            ("", "url"),
        ] {
            let error = http(url).expect_err(url);
            assert!(
                error.contains("spec.remoteTask") && error.contains(needle),
                "{url}: {error}"
            );
        }
        let extra = remote(ResolverName::Http, &[("url", "http://x/t.yaml"), ("pathInRepo", "a")]);
        let error = parse_request(&extra, RefKind::Task, SCOPE, "spec.remoteTask").expect_err("git's param");
        assert!(
            error.contains("the http resolver takes no param \"pathInRepo\""),
            "{error}"
        );
    }

    #[test]
    fn an_http_login_needs_all_three_params_and_a_secret_name_and_key() {
        let http = |params: &[(&str, &str)]| {
            parse_request(
                &remote(ResolverName::Http, params),
                RefKind::Task,
                SCOPE,
                "spec.remoteTask",
            )
        };
        let url = ("url", "http://catalog.example/t.yaml");
        assert_eq!(
            http(&[
                url,
                ("http-username", "ci"),
                ("http-password-secret", "catalog-login"),
                ("http-password-secret-key", "token"),
            ]),
            Ok(Request::Http {
                url: url.1.into(),
                login: Some(HttpLogin {
                    username: "ci".into(),
                    password: SecretKey {
                        secret: "catalog-login".into(),
                        key: "token".into(),
                        params: ("http-password-secret", "http-password-secret-key"),
                    },
                }),
            })
        );
        let error = http(&[url, ("http-password-secret", "catalog-login")]).expect_err("incomplete");
        assert!(
            error.contains("\"http-username\" is required")
                && error.contains("\"http-password-secret-key\" is required"),
            "{error}"
        );
        let error = http(&[
            url,
            ("http-username", "ci"),
            ("http-password-secret", "Not_A_Name"),
            ("http-password-secret-key", "../token"),
        ])
        .expect_err("bad names");
        assert!(
            error.contains("http-password-secret:")
                && error.contains("http-password-secret-key \"../token\" is not a Secret key"),
            "{error}"
        );
    }

    #[test]
    fn local_urls_escaping_paths_and_unknown_params_are_refused() {
        let git = remote(
            ResolverName::Git,
            &[
                ("url", "file:///var/run/secrets"),
                ("pathInRepo", "../token"),
                ("branch", "x"),
            ],
        );
        let error = parse_request(&git, RefKind::Task, SCOPE, "spec.remoteTask").expect_err("refused");
        assert!(
            error.contains("spec.remoteTask.params: url \"file:///var/run/secrets\""),
            "{error}"
        );
        assert!(
            error.contains("pathInRepo \"../token\" must name a file inside"),
            "{error}"
        );
        assert!(
            error.contains("spec.remoteTask.params[2].name: the git resolver takes no param \"branch\""),
            "{error}"
        );
        let missing = parse_request(&remote(ResolverName::Git, &[]), RefKind::Task, SCOPE, "f").expect_err("refused");
        assert!(missing.contains("f.params: param \"url\" is required"), "{missing}");
        assert!(
            missing.contains("f.params: param \"pathInRepo\" is required"),
            "{missing}"
        );
    }

    #[test]
    fn the_cluster_resolver_stays_in_allowed_namespaces() {
        let same = remote(ResolverName::Cluster, &[("name", "build")]);
        assert_eq!(
            parse_request(&same, RefKind::Task, SCOPE, "f"),
            Ok(Request::Cluster {
                name: "build".into(),
                namespace: "team-a".into()
            })
        );
        let other = remote(ResolverName::Cluster, &[("name", "build"), ("namespace", "shared")]);
        let error = parse_request(&other, RefKind::Task, SCOPE, "f").expect_err("not allowed");
        assert!(
            error.contains("namespace \"shared\" is not the run's (\"team-a\")"),
            "{error}"
        );
        let allowed = vec!["shared".to_string()];
        let scope = Scope {
            allowed_namespaces: &allowed,
            ..SCOPE
        };
        assert!(parse_request(&other, RefKind::Task, scope, "f").is_ok());
        let wrong_kind = remote(ResolverName::Cluster, &[("name", "build"), ("kind", "pipeline")]);
        let error = parse_request(&wrong_kind, RefKind::Task, SCOPE, "f").expect_err("wrong kind");
        assert!(
            error.contains("kind \"pipeline\": this reference needs a \"task\""),
            "{error}"
        );
    }

    #[test]
    fn a_param_that_is_not_a_string_is_named() {
        let mut git = remote(ResolverName::Git, &[("url", "git://h/r"), ("pathInRepo", "t.yaml")]);
        git.params[0].value = ParamValue::Array(vec!["a".into()]);
        let error = parse_request(&git, RefKind::Task, SCOPE, "f").expect_err("refused");
        assert!(
            error.contains("f.params[0].value: param \"url\" must be a string"),
            "{error}"
        );
    }

    #[test]
    fn a_file_holds_our_task_or_tektons() {
        let ours = "apiVersion: cicdoperator.ning1875.io/v1\nkind: MyTask\nmetadata: {name: hello}\nspec:\n  steps:\n    - {name: s, image: bash, script: echo hi}\n";
        let (name, spec) = task_from_file(ours, "git://h/r@main:t.yaml").expect("ours");
        assert_eq!((name.as_str(), spec.steps.len()), ("hello", 1));
        let tekton = "apiVersion: tekton.dev/v1\nkind: Task\nmetadata: {name: hi}\nspec:\n  steps:\n    - image: bash\n      script: echo hi\n";
        let (name, spec) = task_from_file(tekton, "git://h/r@main:t.yaml").expect("tekton");
        assert_eq!((name.as_str(), spec.steps[0].name.as_str()), ("hi", "unnamed-0"));
    }

    #[test]
    fn a_file_without_exactly_one_task_is_refused() {
        let pipeline = "apiVersion: cicdoperator.ning1875.io/v1\nkind: MyPipeline\nmetadata: {name: p}\nspec:\n  tasks:\n    - {name: a, taskRef: t}\n";
        let error = task_from_file(pipeline, "origin").expect_err("no task");
        assert_eq!(
            error,
            "origin: expected one MyTask (or Tekton Task) and found 0 (and 1 document(s) of other kinds)"
        );
        let bad = "apiVersion: cicdoperator.ning1875.io/v1\nkind: MyTask\nmetadata: {name: t}\nspec:\n  stepz: []\n";
        let error = task_from_file(bad, "origin").expect_err("unknown field");
        assert!(error.contains("stepz"), "{error}");
        let (name, _) = pipeline_from_file(pipeline, "origin").expect("pipeline");
        assert_eq!(name, "p");
    }
}
