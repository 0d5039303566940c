//! The registry I/O behind steps that run their image's own entrypoint
//! (see `crate::image`): the image's manifest and config read over the
//! OCI distribution API, logged in with the run's pull Secrets, in the
//! background so a slow registry holds no worker, and kept in a cache.
//! The bundles resolver reads its bundle's layer the same way.
//!
//! The cache is per namespace: what one tenant's pull Secret let the
//! controller read is never answered to another tenant.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::header::{ACCEPT, AUTHORIZATION, HeaderName, LOCATION, WWW_AUTHENTICATE};
use k8s_openapi::api::core::v1::{LocalObjectReference, Secret};
use kube::Api;
use tracing::info;

use crate::image::{
    ImageCommand, ImageLookup, ImageLookups, ImageRef, Login, MANIFEST_MEDIA_TYPES, MAX_DOCUMENT_BYTES, Manifest,
    decode_config, decode_manifest, login_for, parse_bearer_challenge, parse_image_ref, pick_platform, sha256_digest,
};

use crate::bundle::{bundle_layers, find_layer, layer_file};
use crate::remote::MAX_FILE_BYTES;

use super::context::Context;
use super::http_fetch::{Answer, basic_authorization, get_bounded, within};
use super::resolver::{FetchedFile, RunKey};

/// At most this many pull Secrets are read for one lookup.
pub const MAX_PULL_SECRETS: usize = 32;

/// How long an answer is kept: a tag can be moved, a digest cannot, and
/// a failure is asked again soon (the registry may be back).
const TAG_KEPT_FOR: Duration = Duration::from_secs(600);
const DIGEST_KEPT_FOR: Duration = Duration::from_secs(24 * 3600);
const FAILURE_KEPT_FOR: Duration = Duration::from_secs(30);

/// The cache holds at most this many answers (the oldest go first).
const MAX_CACHED: usize = 4096;

/// Runs woken by one lookup, at most.
const MAX_WAKERS: usize = 1024;

/// What an administrator sets for image lookups.
#[derive(Debug, Clone)]
pub struct RegistrySettings {
    /// `--registry-endpoints`: `registry=url` pairs for registries the
    /// controller reaches elsewhere than `https://<registry>` (a plain-HTTP
    /// registry, or one the nodes reach on their loopback).
    pub endpoints: Vec<(String, String)>,
    /// `--registry-allowed-hosts`: registries images may be looked up in;
    /// empty for any.
    pub allowed_hosts: Vec<String>,
    /// The longest one lookup may take (`--resolver-timeout`).
    pub timeout: Duration,
}

impl Default for RegistrySettings {
    fn default() -> Self {
        RegistrySettings {
            endpoints: Vec::new(),
            allowed_hosts: Vec::new(),
            timeout: Duration::from_secs(60),
        }
    }
}

/// Reads one `--registry-endpoints` entry, `registry=http(s)://host[:port]`;
/// the error names the entry.
pub fn parse_endpoint(entry: &str) -> Result<(String, String), String> {
    match entry.trim().split_once('=') {
        Some((registry, url))
            if !registry.is_empty() && (url.starts_with("http://") || url.starts_with("https://")) =>
        {
            Ok((registry.to_ascii_lowercase(), url.trim_end_matches('/').to_string()))
        }
        _ => Err(format!("{entry:?} is not registry=http(s)://host[:port]")),
    }
}

impl RegistrySettings {
    fn base_url(&self, image: &ImageRef) -> String {
        self.endpoints
            .iter()
            .find(|(registry, _)| registry.eq_ignore_ascii_case(&image.registry))
            .map_or_else(|| format!("https://{}", image.api_host()), |(_, url)| url.clone())
    }
}

type Waker = Box<dyn FnOnce() + Send>;

enum Entry {
    /// Being looked up; these runs are woken when it is done.
    Pending(Vec<Waker>),
    Done {
        at: Instant,
        kept_for: Duration,
        outcome: Result<ImageCommand, String>,
    },
}

/// Lookups by (namespace, image).
#[derive(Default)]
pub struct ImageCache {
    entries: Mutex<HashMap<(String, String), Entry>>,
}

impl ImageCache {
    /// The answer for `image` if known; otherwise starts `job` (unless it
    /// runs already) and has `wake` called when it ends.
    fn lookup<J>(
        self: &Arc<Self>,
        key: (String, String),
        is_digest: bool,
        job: impl FnOnce() -> J,
        wake: Waker,
    ) -> ImageLookup
    where
        J: std::future::Future<Output = Result<ImageCommand, String>> + Send + 'static,
    {
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match entries.get_mut(&key) {
            Some(Entry::Done { at, kept_for, outcome }) if at.elapsed() < *kept_for => {
                return match outcome {
                    Ok(command) => ImageLookup::Found(command.clone()),
                    Err(why) => ImageLookup::Failed(why.clone()),
                };
            }
            Some(Entry::Pending(wakers)) => {
                // A run reconciled again while it waits adds another waker:
                // beyond this many the earlier ones wake it anyway.
                if wakers.len() < MAX_WAKERS {
                    wakers.push(wake);
                }
                return ImageLookup::Pending;
            }
            _ => {}
        }
        make_room(&mut entries);
        entries.insert(key.clone(), Entry::Pending(vec![wake]));
        let cache = Arc::clone(self);
        let job = job();
        tokio::spawn(async move {
            let outcome = job.await;
            let kept_for = match &outcome {
                Err(_) => FAILURE_KEPT_FOR,
                Ok(_) if is_digest => DIGEST_KEPT_FOR,
                Ok(_) => TAG_KEPT_FOR,
            };
            let done = Entry::Done {
                at: Instant::now(),
                kept_for,
                outcome,
            };
            let waiting = {
                let mut entries = cache.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                entries.insert(key, done)
            };
            if let Some(Entry::Pending(wakers)) = waiting {
                wakers.into_iter().for_each(|wake| wake());
            }
        });
        ImageLookup::Pending
    }
}

/// Drops expired answers, then the oldest, so one more fits.
fn make_room(entries: &mut HashMap<(String, String), Entry>) {
    entries.retain(|_, entry| match entry {
        Entry::Pending(_) => true,
        Entry::Done { at, kept_for, .. } => at.elapsed() < *kept_for,
    });
    while entries.len() >= MAX_CACHED {
        let oldest = entries
            .iter()
            .filter_map(|(key, entry)| match entry {
                Entry::Done { at, .. } => Some((*at, key.clone())),
                Entry::Pending(_) => None,
            })
            .min();
        match oldest {
            Some((_, key)) => entries.remove(&key),
            None => break,
        };
    }
}

/// Where each of `images` stands for `run`, starting the lookups not
/// made yet (the run is woken as each ends). `pull_secrets` are the
/// names of the run's pull Secrets, read only if a lookup starts.
pub fn look_up_images(ctx: &Context, run: RunKey<'_>, images: &[String], pull_secrets: &[String]) -> ImageLookups {
    let mut lookups = ImageLookups::new();
    for image in images {
        let reference = match parse_image_ref(image) {
            Ok(reference) => reference,
            Err(why) => {
                lookups.insert(image.clone(), ImageLookup::Failed(format!("image {image:?}: {why}")));
                continue;
            }
        };
        if !ctx.registry.allowed_hosts.is_empty()
            && !crate::remote::host_allowed(&reference.registry.to_ascii_lowercase(), &ctx.registry.allowed_hosts)
        {
            let why = format!(
                "registry {:?} is not among those images may be looked up in ({}; --registry-allowed-hosts)",
                reference.registry,
                ctx.registry.allowed_hosts.join(", ")
            );
            lookups.insert(image.clone(), ImageLookup::Failed(why));
            continue;
        }
        let is_digest = reference.is_digest();
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), run.namespace);
        let pull_secrets = pull_secrets.to_vec();
        let (settings, name) = (ctx.registry.clone(), image.clone());
        let job = || async move {
            let started = Instant::now();
            let login = registry_login(&secrets, &pull_secrets, &reference.registry).await;
            let outcome = within(settings.timeout, image_command(&reference, login, &settings))
                .await
                .map_err(|why| format!("registry {:?}: {why}", reference.registry));
            info!(image = %name, ok = outcome.is_ok(), seconds = started.elapsed().as_secs_f64(), "image lookup ended");
            outcome
        };
        let wake = Box::new(super::admission::waker(ctx, run.kind, run.namespace, run.name));
        let key = (run.namespace.to_string(), image.clone());
        lookups.insert(image.clone(), ctx.images.lookup(key, is_digest, job, wake));
    }
    lookups
}

/// The first login one of the pull Secrets gives for `registry`. A Secret
/// that is missing, unreadable or of another type gives none: the lookup
/// then goes without, as the kubelet's pull would.
async fn registry_login(secrets: &Api<Secret>, names: &[String], registry: &str) -> Option<Login> {
    for name in names.iter().take(MAX_PULL_SECRETS) {
        let Ok(Some(secret)) = secrets.get_opt(name).await else {
            continue;
        };
        let (key, legacy) = match secret.type_.as_deref() {
            Some("kubernetes.io/dockerconfigjson") => (".dockerconfigjson", false),
            Some("kubernetes.io/dockercfg") => (".dockercfg", true),
            _ => continue,
        };
        let data = secret.data.as_ref().and_then(|data| data.get(key));
        if let Some(login) = data.and_then(|data| login_for(&data.0, legacy, registry)) {
            return Some(login);
        }
    }
    None
}

/// The image's ENTRYPOINT and CMD: its manifest (through an index, the
/// controller's own platform), then its config, checked against its digest.
async fn image_command(
    image: &ImageRef,
    login: Option<Login>,
    settings: &RegistrySettings,
) -> Result<ImageCommand, String> {
    let mut session = Session::new(image, login, settings);
    let accept = MANIFEST_MEDIA_TYPES.join(", ");
    let manifest = session.read(&format!("manifests/{}", image.reference), &accept).await?;
    let config = match decode_manifest(&manifest)? {
        Manifest::Image { config } => config,
        Manifest::Index(entries) => {
            let (os, architecture) = platform();
            let entry = pick_platform(&entries, os, architecture)
                .ok_or_else(|| format!("the image has no manifest for {os}/{architecture}"))?;
            let manifest = session.read(&format!("manifests/{}", entry.digest), &accept).await?;
            match decode_manifest(&manifest)? {
                Manifest::Image { config } => config,
                Manifest::Index(_) => return Err("an index lists another index for the platform".to_string()),
            }
        }
    };
    let blob = session.read(&format!("blobs/{config}"), "*/*").await?;
    if sha256_digest(&blob) != config {
        return Err(format!("the config blob does not match its digest {config}"));
    }
    decode_config(&blob)
}

/// The names of the pull Secrets `references` list, in order, without
/// empty ones: what the kubelet would try for a pull.
pub fn pull_secret_names<'a>(references: impl Iterator<Item = &'a LocalObjectReference>) -> Vec<String> {
    references
        .map(|reference| reference.name.clone())
        .filter(|name| !name.is_empty())
        .collect()
}

/// What the bundles resolver logs in with (see `remote::BundleLogin`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleCredentials {
    /// A Secret the run names: it must exist and hold a login for the registry.
    Secret(String),
    /// A ServiceAccount's pull Secrets: the first with a login for the
    /// registry is used; none means no login, as for the kubelet's pulls.
    PullSecrets(Vec<String>),
}

/// The file of the layer of bundle `image` that holds `kind` `name`, with
/// the digest of the manifest read (as the "commit" the run records). A
/// `secret` the run names must exist and hold a login for the registry.
pub async fn fetch_bundle_file(
    secrets: &Api<Secret>,
    credentials: BundleCredentials,
    image: &str,
    (kind, name): (&str, &str),
    settings: &RegistrySettings,
) -> Result<FetchedFile, String> {
    let image = parse_image_ref(image)?;
    let login = match credentials {
        BundleCredentials::Secret(secret) => Some(bundle_login(secrets, &secret, &image.registry).await?),
        BundleCredentials::PullSecrets(names) => registry_login(secrets, &names, &image.registry).await,
    };
    let mut session = Session::new(&image, login, settings);
    let manifest = session
        .read(&format!("manifests/{}", image.reference), BUNDLE_MEDIA_TYPES)
        .await?;
    let digest = sha256_digest(&manifest);
    if image.is_digest() && digest != image.reference {
        return Err(format!(
            "the manifest read does not match the digest {}",
            image.reference
        ));
    }
    let layers = bundle_layers(&manifest)?;
    let layer = find_layer(&layers, kind, name)?;
    let blob = session.read(&format!("blobs/{}", layer.digest), "*/*").await?;
    if sha256_digest(&blob) != layer.digest {
        return Err(format!("layer {} does not match its digest", layer.digest));
    }
    Ok(FetchedFile {
        text: layer_file(&blob, MAX_FILE_BYTES)?,
        commit: Some(digest),
    })
}

/// A bundle is one image manifest (never an index).
const BUNDLE_MEDIA_TYPES: &str =
    "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// The login pull Secret `name` (the bundles resolver's `secret` param)
/// holds for `registry`; the error names the Secret, never its content.
async fn bundle_login(secrets: &Api<Secret>, name: &str, registry: &str) -> Result<Login, String> {
    let secret = secrets
        .get_opt(name)
        .await
        .map_err(|e| format!("reading Secret {name:?} (secret) failed: {e}"))?
        .ok_or_else(|| format!("Secret {name:?} (secret) does not exist in the run's namespace"))?;
    let (key, legacy) = match secret.type_.as_deref() {
        Some("kubernetes.io/dockerconfigjson") => (".dockerconfigjson", false),
        Some("kubernetes.io/dockercfg") => (".dockercfg", true),
        other => {
            return Err(format!(
                "Secret {name:?} (secret) is of type {:?}, not kubernetes.io/dockerconfigjson",
                other.unwrap_or("Opaque")
            ));
        }
    };
    secret
        .data
        .as_ref()
        .and_then(|data| data.get(key))
        .and_then(|data| login_for(&data.0, legacy, registry))
        .ok_or_else(|| format!("Secret {name:?} (secret) holds no login for registry {registry:?}"))
}

/// The platform images are looked up for: the controller's own (nodes
/// of another architecture are not told apart).
fn platform() -> (&'static str, &'static str) {
    let architecture = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    ("linux", architecture)
}

/// Reads of one repository, logged in as the registry asks.
struct Session {
    base: String,
    repository: String,
    login: Option<Login>,
    /// The Authorization header the registry took (a token, or Basic).
    authorization: Option<String>,
}

impl Session {
    fn new(image: &ImageRef, login: Option<Login>, settings: &RegistrySettings) -> Session {
        Session {
            base: settings.base_url(image),
            repository: image.repository.clone(),
            login,
            authorization: None,
        }
    }

    /// `/v2/<repository>/<path>`: a 401 is answered once by logging in
    /// (a Bearer token or Basic, as the challenge says); a blob redirected
    /// to storage is followed, without the login.
    async fn read(&mut self, path: &str, accept: &str) -> Result<Vec<u8>, String> {
        let url = format!("{}/v2/{}/{path}", self.base, self.repository);
        let mut answer = self.get(&url, accept).await?;
        if answer.status == hyper::StatusCode::UNAUTHORIZED {
            self.authorization = Some(self.log_in(&answer).await?);
            answer = self.get(&url, accept).await?;
        }
        for _ in 0..3 {
            if !answer.status.is_redirection() {
                break;
            }
            let location = header(&answer, LOCATION).ok_or("a redirect without a Location")?;
            let target = if location.starts_with('/') {
                format!("{}{location}", self.base)
            } else {
                location
            };
            answer = get_bounded(&target, vec![(ACCEPT, accept.to_string())], MAX_DOCUMENT_BYTES).await?;
        }
        match answer.status {
            status if status.is_success() => Ok(answer.body),
            hyper::StatusCode::NOT_FOUND => Err(format!("{path}: not found (404)")),
            hyper::StatusCode::UNAUTHORIZED | hyper::StatusCode::FORBIDDEN => Err(format!(
                "{path}: the registry refused access ({}); give the run an imagePullSecret for it",
                answer.status
            )),
            status => Err(format!("{path}: the registry answered {status}")),
        }
    }

    async fn get(&self, url: &str, accept: &str) -> Result<Answer, String> {
        let mut headers: Vec<(HeaderName, String)> = vec![(ACCEPT, accept.to_string())];
        if let Some(authorization) = &self.authorization {
            headers.push((AUTHORIZATION, authorization.clone()));
        }
        get_bounded(url, headers, MAX_DOCUMENT_BYTES).await
    }

    /// The Authorization header a 401's challenge asks for.
    async fn log_in(&self, refused: &Answer) -> Result<String, String> {
        let challenge = header(refused, WWW_AUTHENTICATE).unwrap_or_default();
        let basic = self
            .login
            .as_ref()
            .map(|login| basic_authorization(&login.username, &login.password));
        let Some(bearer) = parse_bearer_challenge(&challenge) else {
            return basic
                .ok_or_else(|| "the registry wants a login and the run has no imagePullSecret for it".to_string());
        };
        let scope = bearer
            .scope
            .unwrap_or_else(|| format!("repository:{}:pull", self.repository));
        let mut url = format!("{}?scope={}", bearer.realm, query_escape(&scope));
        if let Some(service) = &bearer.service {
            url.push_str(&format!("&service={}", query_escape(service)));
        }
        let headers = basic.map(|value| vec![(AUTHORIZATION, value)]).unwrap_or_default();
        let answer = get_bounded(&url, headers, MAX_DOCUMENT_BYTES)
            .await
            .map_err(|why| format!("the token service {:?}: {why}", bearer.realm))?;
        if !answer.status.is_success() {
            return Err(format!(
                "the token service {:?} answered {} (is the imagePullSecret right?)",
                bearer.realm, answer.status
            ));
        }
        let token: TokenAnswer = serde_json::from_slice(&answer.body)
            .map_err(|_| format!("the token service {:?} sent no token", bearer.realm))?;
        token
            .token
            .or(token.access_token)
            .map(|token| format!("Bearer {token}"))
            .ok_or_else(|| format!("the token service {:?} sent no token", bearer.realm))
    }
}

#[derive(serde::Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

fn header(answer: &Answer, name: HeaderName) -> Option<String> {
    answer
        .headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
}

/// Percent-encodes what a query value cannot hold as it is.
fn query_escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' | b'/' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::http_fetch::test_server::{response, serve};
    use super::*;

    fn settings_for(host: &str) -> RegistrySettings {
        RegistrySettings {
            endpoints: vec![(host.to_string(), format!("http://{host}"))],
            timeout: Duration::from_secs(10),
            ..RegistrySettings::default()
        }
    }

    const CONFIG: &[u8] = br#"{"config":{"Entrypoint":["/bin/tool"],"Cmd":["--help"]}}"#;

    /// A registry holding one image (`team/tool:1`, through an index) that
    /// wants a Bearer token from its own token service for user ci.
    fn token_registry() -> String {
        let config_digest = sha256_digest(CONFIG);
        let manifest = format!(r#"{{"config":{{"digest":"{config_digest}"}},"layers":[]}}"#);
        let manifest_digest = sha256_digest(manifest.as_bytes());
        let index = format!(
            r#"{{"manifests":[{{"digest":"{manifest_digest}","platform":{{"os":"linux","architecture":"{}"}}}}]}}"#,
            platform().1
        );
        let host = Arc::new(Mutex::new(String::new()));
        let realm_host = Arc::clone(&host);
        let address = serve(move |head| {
            let first = head.lines().next().unwrap_or_default().to_string();
            let lower = head.to_ascii_lowercase();
            if first.starts_with("GET /token?scope=repository:team/tool:pull") {
                return if lower.contains(&format!(
                    "authorization: {}",
                    basic_authorization("ci", "pw").to_ascii_lowercase()
                )) {
                    response("200 OK", "", br#"{"token":"t0k"}"#)
                } else {
                    response("401 Unauthorized", "", b"")
                };
            }
            if !lower.contains("authorization: bearer t0k") {
                let realm = realm_host.lock().map(|h| h.clone()).unwrap_or_default();
                let challenge = format!("www-authenticate: Bearer realm=\"http://{realm}/token\",service=\"test\"\r\n");
                return response("401 Unauthorized", &challenge, b"");
            }
            match first.split(' ').nth(1).unwrap_or_default() {
                "/v2/team/tool/manifests/1" => response("200 OK", "", index.as_bytes()),
                path if path == format!("/v2/team/tool/manifests/{manifest_digest}") => {
                    response("200 OK", "", manifest.as_bytes())
                }
                path if path == format!("/v2/team/tool/blobs/{config_digest}") => response("200 OK", "", CONFIG),
                _ => response("404 Not Found", "", b"{}"),
            }
        });
        if let Ok(mut realm) = host.lock() {
            *realm = address.clone();
        }
        address
    }

    #[tokio::test]
    async fn an_image_is_read_through_its_index_with_a_token_for_the_login() {
        let address = token_registry();
        let settings = settings_for(&address);
        let image = parse_image_ref(&format!("{address}/team/tool:1")).expect("a reference");
        let login = Login {
            username: "ci".to_string(),
            password: "pw".to_string(),
        };
        let command = image_command(&image, Some(login), &settings).await.expect("looked up");
        assert_eq!(command.entrypoint, ["/bin/tool"]);
        assert_eq!(command.cmd, ["--help"]);

        let refused = image_command(&image, None, &settings).await.expect_err("no login");
        assert!(
            refused.contains("token service") && refused.contains("401"),
            "{refused}"
        );
        let missing = parse_image_ref(&format!("{address}/team/tool:2")).expect("a reference");
        let login = Login {
            username: "ci".to_string(),
            password: "pw".to_string(),
        };
        let error = image_command(&missing, Some(login), &settings)
            .await
            .expect_err("no such tag");
        assert!(error.contains("manifests/2: not found (404)"), "{error}");
    }

    #[tokio::test]
    async fn a_config_that_does_not_match_its_digest_is_refused() {
        let claimed = sha256_digest(b"something else");
        let manifest = format!(r#"{{"config":{{"digest":"{claimed}"}}}}"#);
        let address = serve(move |head| {
            if head.starts_with("GET /v2/app/manifests/") {
                response("200 OK", "", manifest.as_bytes())
            } else {
                response("200 OK", "", CONFIG)
            }
        });
        let image = parse_image_ref(&format!("{address}/app:1")).expect("a reference");
        let error = image_command(&image, None, &settings_for(&address))
            .await
            .expect_err("tampered");
        assert!(error.contains("does not match its digest"), "{error}");
    }

    const BUNDLED_TASK: &[u8] = b"apiVersion: tekton.dev/v1\nkind: Task\nmetadata: {name: build}\n";

    /// A registry holding bundle `catalog:1` with task `build`; with
    /// `login`, it asks for Basic `ci:pw` first. Its address and the
    /// manifest's digest.
    fn bundle_registry(login: bool) -> (String, String) {
        let layer = crate::bundle::gzip(&crate::bundle::tar(&[("build.yaml", BUNDLED_TASK, b'0')]));
        let layer_digest = sha256_digest(&layer);
        let manifest = format!(
            r#"{{"schemaVersion":2,"config":{{"digest":"{}"}},"layers":[{{"digest":"{layer_digest}","annotations":{{"dev.tekton.image.kind":"task","dev.tekton.image.name":"build"}}}}]}}"#,
            sha256_digest(b"{}")
        );
        let manifest_digest = sha256_digest(manifest.as_bytes());
        let expected = format!(
            "authorization: {}",
            basic_authorization("ci", "pw").to_ascii_lowercase()
        );
        let address = serve(move |head| {
            if login && !head.to_ascii_lowercase().contains(&expected) {
                return response("401 Unauthorized", "www-authenticate: Basic realm=\"bundles\"\r\n", b"");
            }
            let path = head.split(' ').nth(1).unwrap_or_default().to_string();
            if path.starts_with("/v2/catalog/manifests/") {
                response("200 OK", "", manifest.as_bytes())
            } else if path == format!("/v2/catalog/blobs/{layer_digest}") {
                response("200 OK", "", &layer)
            } else {
                response("404 Not Found", "", b"")
            }
        });
        (address, manifest_digest)
    }

    #[tokio::test]
    async fn a_bundle_layer_is_found_by_its_annotations_and_read() {
        let task = BUNDLED_TASK;
        let (address, manifest_digest) = bundle_registry(false);
        let api = crate::controller::mock_api::MockApi::new(|_| {
            crate::controller::mock_api::status(404, "NotFound", "secrets \"pull\" not found")
        });
        let secrets: Api<Secret> = Api::namespaced(api.client(), "ci");
        let settings = settings_for(&address);
        let image = format!("{address}/catalog:1");
        let anonymous = || BundleCredentials::PullSecrets(Vec::new());
        let file = fetch_bundle_file(&secrets, anonymous(), &image, ("task", "build"), &settings)
            .await
            .expect("the task");
        assert_eq!(file.text.as_bytes(), task);
        assert_eq!(
            file.commit.as_deref(),
            Some(manifest_digest.as_str()),
            "the manifest's digest is kept"
        );

        let error = fetch_bundle_file(&secrets, anonymous(), &image, ("pipeline", "build"), &settings)
            .await
            .expect_err("no such pipeline");
        assert_eq!(
            error,
            "the bundle holds no pipeline \"build\" (it holds task \"build\")"
        );
        let pinned = format!("{address}/catalog@{}", sha256_digest(b"another manifest"));
        let error = fetch_bundle_file(&secrets, anonymous(), &pinned, ("task", "build"), &settings)
            .await
            .expect_err("a digest that does not match");
        assert!(error.contains("does not match the digest"), "{error}");
        let named = BundleCredentials::Secret("pull".into());
        let error = fetch_bundle_file(&secrets, named, &image, ("task", "build"), &settings)
            .await
            .expect_err("a missing Secret");
        assert_eq!(error, "Secret \"pull\" (secret) does not exist in the run's namespace");
    }

    /// The `serviceAccount` param: the account's pull Secrets are tried in
    /// order, one missing is passed over, and without one that fits the
    /// resolver goes without a login (and the registry refuses).
    #[tokio::test]
    async fn a_bundle_is_read_with_the_pull_secret_of_a_service_account() {
        let (address, _) = bundle_registry(true);
        let auths = serde_json::json!({ "auths": { address.clone(): { "auth": "Y2k6cHc=" } } });
        let data = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, auths.to_string());
        let api = crate::controller::mock_api::MockApi::new(move |seen| {
            if seen.path.ends_with("/secrets/pull") {
                let secret = serde_json::json!({
                    "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "pull", "namespace": "ci" },
                    "type": "kubernetes.io/dockerconfigjson", "data": { ".dockerconfigjson": data },
                });
                (200, secret)
            } else {
                crate::controller::mock_api::status(404, "NotFound", "secrets not found")
            }
        });
        let secrets: Api<Secret> = Api::namespaced(api.client(), "ci");
        let settings = settings_for(&address);
        let image = format!("{address}/catalog:1");
        let account = BundleCredentials::PullSecrets(vec!["gone".into(), "pull".into()]);
        let file = fetch_bundle_file(&secrets, account, &image, ("task", "build"), &settings)
            .await
            .expect("logged in with the second pull Secret");
        assert_eq!(file.text.as_bytes(), BUNDLED_TASK);
        let none = BundleCredentials::PullSecrets(vec!["gone".into()]);
        let refused = fetch_bundle_file(&secrets, none, &image, ("task", "build"), &settings)
            .await
            .expect_err("no login");
        assert_eq!(
            refused,
            "the registry wants a login and the run has no imagePullSecret for it"
        );
    }

    #[test]
    fn endpoints_are_registry_equals_url() {
        let parsed = parse_endpoint("127.0.0.1:5000=http://10.244.0.1:5000/");
        assert_eq!(
            parsed,
            Ok(("127.0.0.1:5000".to_string(), "http://10.244.0.1:5000".to_string()))
        );
        let error = parse_endpoint("10.0.0.1:5000").expect_err("no url");
        assert!(error.contains("\"10.0.0.1:5000\""), "{error}");
        let settings = RegistrySettings::default();
        let hub = parse_image_ref("bash:5").expect("a reference");
        assert_eq!(settings.base_url(&hub), "https://registry-1.docker.io");
    }

    #[test]
    fn scopes_keep_their_colons_and_slashes() {
        assert_eq!(query_escape("repository:a/b:pull"), "repository:a/b:pull");
        assert_eq!(query_escape("a b&c"), "a%20b%26c");
    }
}
