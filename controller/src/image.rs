//! A step with `args` but no `command` or `script` runs its image's own
//! ENTRYPOINT, which only the image's registry knows: the entrypoint
//! wrapper replaces the container's command, so the controller must look
//! it up first (`controller::registry` does the I/O). This module is the
//! pure part: reading an image reference, the registry's manifests and
//! config, a registry login from a pull Secret, and what a step then runs.
//!
//! Everything here is read from a registry or a Secret a tenant chose, so
//! every document is size-bounded by the caller and decoded into the few
//! fields needed; nothing of a body is ever put in a message.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;

/// The longest image reference looked up (a longer one is refused).
pub const MAX_IMAGE_REF_BYTES: usize = 512;

/// Largest manifest, index or image config read.
pub const MAX_DOCUMENT_BYTES: usize = 4 * 1024 * 1024;

/// Docker Hub's names: what `docker.io` means and where its API is.
const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// An image reference split the way registries read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// `host[:port]`; `docker.io` for a name without one.
    pub registry: String,
    /// The repository path (`library/bash` for Docker Hub's `bash`).
    pub repository: String,
    /// A tag, or a digest (`sha256:...`) when the reference pins one.
    pub reference: String,
}

impl ImageRef {
    /// Whether the reference pins a digest: its manifest can never change.
    pub fn is_digest(&self) -> bool {
        self.reference.contains(':')
    }

    /// The host the registry API answers on.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }
}

/// Reads `image` as `[registry/]repository[:tag][@digest]`, as the
/// container runtime does (a first part with a `.` or `:`, or `localhost`,
/// is a registry; Docker Hub otherwise).
pub fn parse_image_ref(image: &str) -> Result<ImageRef, String> {
    if image.is_empty() || image.len() > MAX_IMAGE_REF_BYTES {
        return Err(format!("an image reference has 1 to {MAX_IMAGE_REF_BYTES} bytes"));
    }
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    // A tag is after the last `:` that comes after the last `/` (a
    // registry's port also has a `:`).
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (path, tag) = match name[last_slash..].rfind(':') {
        Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
        None => (name, None),
    };
    let (registry, repository) = match path.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
            (first.to_string(), rest.to_string())
        }
        _ => (DOCKER_HUB.to_string(), path.to_string()),
    };
    let repository = if registry == DOCKER_HUB && !repository.contains('/') {
        format!("library/{repository}")
    } else {
        repository
    };
    check_repository(&repository)?;
    let reference = match (digest, tag) {
        (Some(digest), _) => check_digest(digest)?.to_string(),
        (None, Some(tag)) => check_tag(tag)?.to_string(),
        (None, None) => "latest".to_string(),
    };
    Ok(ImageRef {
        registry,
        repository,
        reference,
    })
}

fn check_repository(repository: &str) -> Result<(), String> {
    let valid = !repository.is_empty()
        && repository.split('/').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
        });
    if valid {
        Ok(())
    } else {
        Err(format!(
            "repository {repository:?} is not a valid name (lowercase letters, digits, '.', '_', '-', '/')"
        ))
    }
}

fn check_tag(tag: &str) -> Result<&str, String> {
    let valid = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(tag)
    } else {
        Err(format!("tag {tag:?} is not a valid tag"))
    }
}

/// Only sha256 digests are checked against what the registry sends.
fn check_digest(digest: &str) -> Result<&str, String> {
    let hex = digest.strip_prefix("sha256:").unwrap_or_default();
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        Ok(digest)
    } else {
        Err(format!(
            "digest {digest:?} is not a sha256 digest (sha256:<64 hex digits>)"
        ))
    }
}

/// What an image runs by itself: its config's `Entrypoint` and `Cmd`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageCommand {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
}

impl ImageCommand {
    /// The command line of a step given `args` and no command, as Tekton
    /// builds it: the ENTRYPOINT followed by the args (the CMD when there
    /// are none, as the container runtime does); without an ENTRYPOINT the
    /// CMD is the command and the args follow it (so `args: [-c, ...]` on an
    /// image whose CMD is a shell runs that shell). Empty when the image
    /// runs nothing.
    pub fn command_line(&self, args: &[String]) -> Vec<String> {
        if self.entrypoint.is_empty() {
            return self.cmd.iter().chain(args).cloned().collect();
        }
        let args = if args.is_empty() { &self.cmd } else { args };
        self.entrypoint.iter().chain(args).cloned().collect()
    }
}

/// Where a step's image stands in the lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageLookup {
    /// Asked of the registry; the run is woken when it answers.
    Pending,
    Found(ImageCommand),
    /// The registry could not tell; why, naming the image.
    Failed(String),
}

/// The lookups of one attempt, by image as the step names it.
pub type ImageLookups = BTreeMap<String, ImageLookup>;

/// A registry document: an image manifest, or an index of them by
/// platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    /// A single image: the digest of its config blob.
    Image { config: String },
    /// One manifest per platform.
    Index(Vec<Platform>),
}

/// An index entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub digest: String,
    pub os: String,
    pub architecture: String,
}

/// The media types asked for when reading a manifest, most wanted first.
pub const MANIFEST_MEDIA_TYPES: [&str; 4] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

#[derive(Deserialize)]
struct RawManifest {
    #[serde(default)]
    config: Option<RawDescriptor>,
    #[serde(default)]
    manifests: Option<Vec<RawDescriptor>>,
}

#[derive(Deserialize)]
struct RawDescriptor {
    digest: String,
    #[serde(default)]
    platform: Option<RawPlatform>,
}

#[derive(Deserialize)]
struct RawPlatform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
}

/// Reads a manifest or an index (told apart by what they hold: a
/// registry's content type is not always right).
pub fn decode_manifest(body: &[u8]) -> Result<Manifest, String> {
    let raw: RawManifest = serde_json::from_slice(body).map_err(|e| format!("the manifest is not a manifest ({e})"))?;
    match (raw.config, raw.manifests) {
        (Some(config), _) => Ok(Manifest::Image {
            config: check_digest(&config.digest)?.to_string(),
        }),
        (None, Some(manifests)) => manifests
            .into_iter()
            .map(|entry| {
                let platform = entry.platform.unwrap_or(RawPlatform {
                    os: String::new(),
                    architecture: String::new(),
                });
                Ok(Platform {
                    digest: check_digest(&entry.digest)?.to_string(),
                    os: platform.os,
                    architecture: platform.architecture,
                })
            })
            .collect::<Result<_, String>>()
            .map(Manifest::Index),
        (None, None) => Err("the manifest names neither a config nor per-platform manifests".to_string()),
    }
}

/// The manifest an index lists for `os`/`architecture`.
pub fn pick_platform<'a>(index: &'a [Platform], os: &str, architecture: &str) -> Option<&'a Platform> {
    index
        .iter()
        .find(|entry| entry.os == os && entry.architecture == architecture)
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    config: Option<RawRunConfig>,
}

#[derive(Deserialize)]
struct RawRunConfig {
    #[serde(default, rename = "Entrypoint")]
    entrypoint: Option<Vec<String>>,
    #[serde(default, rename = "Cmd")]
    cmd: Option<Vec<String>>,
}

/// An image config's ENTRYPOINT and CMD.
pub fn decode_config(body: &[u8]) -> Result<ImageCommand, String> {
    let raw: RawConfig =
        serde_json::from_slice(body).map_err(|e| format!("the image config is not an image config ({e})"))?;
    let run = raw.config.unwrap_or(RawRunConfig {
        entrypoint: None,
        cmd: None,
    });
    Ok(ImageCommand {
        entrypoint: run.entrypoint.unwrap_or_default(),
        cmd: run.cmd.unwrap_or_default(),
    })
}

/// A user and password for a registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Login({:?}, <password>)", self.username)
    }
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, DockerAuth>,
}

#[derive(Deserialize)]
struct DockerAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// The login a pull Secret gives for `registry`: `data` is its
/// `.dockerconfigjson` (`{"auths": {...}}`) or legacy `.dockercfg` (the
/// map alone). Keys are matched as the kubelet does: `host`, with or
/// without a scheme and a path (`https://index.docker.io/v1/` for Docker
/// Hub). A Secret that does not decode gives none.
pub fn login_for(data: &[u8], legacy: bool, registry: &str) -> Option<Login> {
    let auths = if legacy {
        serde_json::from_slice::<BTreeMap<String, DockerAuth>>(data).ok()?
    } else {
        serde_json::from_slice::<DockerConfig>(data).ok()?.auths
    };
    let wanted = if registry == DOCKER_HUB {
        "index.docker.io"
    } else {
        registry
    };
    let (_, auth) = auths.iter().find(|(key, _)| {
        let host = key.split_once("://").map_or(key.as_str(), |(_, rest)| rest);
        let host = host.split('/').next().unwrap_or_default();
        host.eq_ignore_ascii_case(wanted) || (registry == DOCKER_HUB && host.eq_ignore_ascii_case(DOCKER_HUB))
    })?;
    if let (Some(username), Some(password)) = (&auth.username, &auth.password) {
        return Some(Login {
            username: username.clone(),
            password: password.clone(),
        });
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth.auth.as_deref()?)
        .ok()?;
    let (username, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some(Login {
        username: username.to_string(),
        password: password.to_string(),
    })
}

/// A registry's `WWW-Authenticate: Bearer realm=...,service=...,scope=...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerChallenge {
    pub realm: String,
    pub service: Option<String>,
    pub scope: Option<String>,
}

/// Reads a Bearer challenge; None for any other scheme.
pub fn parse_bearer_challenge(header: &str) -> Option<BearerChallenge> {
    let (scheme, params) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut values = BTreeMap::new();
    let mut rest = params.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (value, tail) = match after.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"')?;
                (&quoted[..end], &quoted[end + 1..])
            }
            None => after.split_once(',').map_or((after, ""), |(v, t)| (v, t)),
        };
        values.insert(key.trim().to_ascii_lowercase(), value.to_string());
        rest = tail.trim_start().trim_start_matches(',').trim_start();
    }
    Some(BearerChallenge {
        realm: values.remove("realm")?,
        service: values.remove("service"),
        scope: values.remove("scope"),
    })
}

/// `sha256:<hex>` of `bytes`, to check a blob against its digest.
pub fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    let hash = sha2::Sha256::digest(bytes);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(image: &str) -> (String, String, String) {
        let r = parse_image_ref(image).unwrap_or_else(|e| panic!("{image}: {e}"));
        (r.registry, r.repository, r.reference)
    }

    #[test]
    fn references_are_split_as_the_container_runtime_splits_them() {
        let owned = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
        assert_eq!(parsed("bash"), owned("docker.io", "library/bash", "latest"));
        assert_eq!(parsed("team/app:1.2"), owned("docker.io", "team/app", "1.2"));
        assert_eq!(
            parsed("127.0.0.1:5000/cicd/bash:5"),
            owned("127.0.0.1:5000", "cicd/bash", "5")
        );
        assert_eq!(parsed("localhost/app"), owned("localhost", "app", "latest"));
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            parsed(&format!("ghcr.io/org/tool:v1@{digest}")),
            owned("ghcr.io", "org/tool", &digest)
        );
        assert!(parse_image_ref(&format!("ghcr.io/org/tool@{digest}")).is_ok_and(|r| r.is_digest()));
        assert_eq!(
            parse_image_ref("bash").map(|r| r.api_host().to_string()),
            Ok(DOCKER_HUB_API.to_string())
        );
    }

    #[test]
    fn bad_references_say_what_is_wrong() {
        let error = |image: &str| parse_image_ref(image).expect_err(image);
        assert!(error("Team/App").contains("\"Team/App\" is not a valid name"));
        assert!(error("app:bad tag").contains("tag \"bad tag\""));
        assert!(error("app@sha256:abc").contains("not a sha256 digest"));
        assert!(error(&"a".repeat(600)).contains("1 to 512 bytes"));
        assert!(error("").contains("1 to 512 bytes"));
    }

    #[test]
    fn manifests_and_indexes_are_told_apart_by_what_they_hold() {
        let digest = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let image = format!(
            r#"{{"schemaVersion":2,"config":{{"digest":"{}","size":7}},"layers":[]}}"#,
            digest('1')
        );
        assert_eq!(
            decode_manifest(image.as_bytes()),
            Ok(Manifest::Image { config: digest('1') })
        );
        let index = format!(
            r#"{{"manifests":[{{"digest":"{}","platform":{{"os":"linux","architecture":"arm64"}}}},
                {{"digest":"{}","platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#,
            digest('2'),
            digest('3')
        );
        let Ok(Manifest::Index(entries)) = decode_manifest(index.as_bytes()) else {
            panic!("an index")
        };
        assert_eq!(
            pick_platform(&entries, "linux", "amd64").map(|p| p.digest.clone()),
            Some(digest('3'))
        );
        assert_eq!(pick_platform(&entries, "windows", "amd64"), None);
        assert!(
            decode_manifest(b"{}")
                .expect_err("neither")
                .contains("neither a config")
        );
        assert!(
            decode_manifest(b"<html>")
                .expect_err("not json")
                .contains("not a manifest")
        );
        let bad = r#"{"config":{"digest":"md5:00"}}"#;
        assert!(
            decode_manifest(bad.as_bytes())
                .expect_err("digest")
                .contains("not a sha256 digest")
        );
    }

    #[test]
    fn a_config_gives_entrypoint_and_cmd_and_the_command_line_follows_tekton() {
        let config =
            br#"{"architecture":"amd64","config":{"Entrypoint":["/bin/tool","--quiet"],"Cmd":["help"],"Env":["A=1"]}}"#;
        let command = decode_config(config).expect("a config");
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(command.command_line(&[]), strings(&["/bin/tool", "--quiet", "help"]));
        assert_eq!(
            command.command_line(&strings(&["build"])),
            strings(&["/bin/tool", "--quiet", "build"])
        );
        let cmd_only = decode_config(br#"{"config":{"Entrypoint":null,"Cmd":["/bin/bash"]}}"#).expect("cmd only");
        assert_eq!(cmd_only.command_line(&[]), strings(&["/bin/bash"]));
        assert_eq!(
            cmd_only.command_line(&strings(&["-c", "x"])),
            strings(&["/bin/bash", "-c", "x"])
        );
        let nothing = decode_config(br#"{"rootfs":{}}"#).expect("no config section");
        assert!(nothing.command_line(&[]).is_empty());
    }

    #[test]
    fn a_pull_secret_gives_the_login_of_its_registry() {
        let encoded = base64::engine::general_purpose::STANDARD.encode("ci:s3cret");
        let config = format!(
            r#"{{"auths":{{"https://127.0.0.1:5000/v1/":{{"auth":"{encoded}"}},"https://index.docker.io/v1/":{{"username":"hub","password":"pw"}}}}}}"#
        );
        let login = login_for(config.as_bytes(), false, "127.0.0.1:5000").expect("a login");
        assert_eq!((login.username.as_str(), login.password.as_str()), ("ci", "s3cret"));
        assert!(!format!("{login:?}").contains("s3cret"), "Debug hides the password");
        assert_eq!(
            login_for(config.as_bytes(), false, "docker.io").map(|l| l.username),
            Some("hub".to_string())
        );
        assert_eq!(login_for(config.as_bytes(), false, "ghcr.io"), None);
        let legacy = format!(r#"{{"ghcr.io":{{"auth":"{encoded}"}}}}"#);
        assert_eq!(
            login_for(legacy.as_bytes(), true, "ghcr.io").map(|l| l.username),
            Some("ci".to_string())
        );
        assert_eq!(login_for(b"not json", false, "ghcr.io"), None);
    }

    #[test]
    fn bearer_challenges_are_read_with_quoted_values() {
        let header =
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull""#;
        assert_eq!(
            parse_bearer_challenge(header),
            Some(BearerChallenge {
                realm: "https://auth.example/token".to_string(),
                service: Some("registry.example".to_string()),
                scope: Some("repository:a/b:pull".to_string()),
            })
        );
        assert_eq!(parse_bearer_challenge(r#"Basic realm="x""#), None);
        assert_eq!(parse_bearer_challenge("Bearer service=x"), None, "a realm is needed");
    }

    #[test]
    fn digests_are_lowercase_hex_sha256() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
