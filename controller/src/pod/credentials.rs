//! Credentials from the run's ServiceAccount: which of the Secrets it lists
//! are for git or a registry, and how the first step's entrypoint gets them.
//!
//! As with Tekton, a Secret counts when the ServiceAccount lists it under
//! `secrets` and it is either a docker config (`kubernetes.io/dockerconfigjson`
//! or `kubernetes.io/dockercfg`) or a `basic-auth` / `ssh-auth` Secret
//! annotated `tekton.dev/git-<n>: <url or host>` or
//! `tekton.dev/docker-<n>: <registry url>` (our group's prefix,
//! `cicdoperator.ning1875.io/`, works the same). Each is mounted read-only
//! into the first step's container only; its entrypoint writes the files
//! git, ssh and registry clients read into the run's shared HOME
//! (`$(credentials.path)`) before the command starts.

use std::collections::BTreeMap;

use cicd_entrypoint::credential::{Credential, Kind, check_target};
use k8s_openapi::api::core::v1::{SecretVolumeSource, Volume, VolumeMount};

use crate::layout;

/// The most Secrets of one ServiceAccount looked at: one run's pod should
/// not grow a volume per Secret of an account that lists hundreds.
pub const MAX_CREDENTIAL_SECRETS: usize = 32;

/// Annotation prefixes that mark a Secret for a host.
const ANNOTATION_PREFIXES: [&str; 2] = ["tekton.dev/", "cicdoperator.ning1875.io/"];

const BASIC_AUTH: &str = "kubernetes.io/basic-auth";
const SSH_AUTH: &str = "kubernetes.io/ssh-auth";
const DOCKER_CONFIG_JSON: &str = "kubernetes.io/dockerconfigjson";
const DOCKER_CFG: &str = "kubernetes.io/dockercfg";

/// What a Secret shows about itself (its data is never needed here).
#[derive(Debug, Clone, Copy)]
pub struct SecretFacts<'a> {
    pub name: &'a str,
    /// `type`; Kubernetes' default is `Opaque`.
    pub secret_type: &'a str,
    pub annotations: &'a BTreeMap<String, String>,
}

/// The Secrets a run's first step gets, and why any other listed Secret
/// that looked meant for it was left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// By Secret name: the credentials each Secret gives (one per host).
    pub secrets: Vec<(String, Vec<Credential>)>,
    pub warnings: Vec<String>,
}

/// Sorts the ServiceAccount's Secrets (in its order) into credentials.
pub fn credentials_of(service_account: &str, secrets: &[SecretFacts<'_>]) -> Credentials {
    let mut found = Credentials::default();
    for secret in secrets {
        let dir = secret_dir(secret.name);
        let mut given: Vec<Credential> = Vec::new();
        let whole = match secret.secret_type {
            DOCKER_CONFIG_JSON => Some(Kind::DockerConfigJson),
            DOCKER_CFG => Some(Kind::DockerCfg),
            _ => None,
        };
        if let Some(kind) = whole {
            given.push(Credential {
                kind,
                secret_dir: dir.clone(),
                target: String::new(),
            });
        }
        for (key, target) in secret.annotations {
            let Some(purpose) = annotation_purpose(key) else {
                continue;
            };
            let warn = |why: String| {
                format!(
                    "ServiceAccount {service_account:?}: Secret {:?}: annotation {key}={target:?} {why}; the Secret is not used for it",
                    secret.name
                )
            };
            match kind_for(purpose, secret.secret_type).and_then(|kind| check_target_for(kind, target).map(|()| kind)) {
                Ok(kind) => given.push(Credential {
                    kind,
                    secret_dir: dir.clone(),
                    target: target.clone(),
                }),
                Err(why) => found.warnings.push(warn(why)),
            }
        }
        if !given.is_empty() {
            found.secrets.push((secret.name.to_string(), given));
        }
    }
    found
}

/// `git` or `docker` for a `<prefix>git-<n>` / `<prefix>docker-<n>` key.
fn annotation_purpose(key: &str) -> Option<&'static str> {
    let rest = ANNOTATION_PREFIXES.iter().find_map(|prefix| key.strip_prefix(prefix))?;
    ["git", "docker"].into_iter().find(|purpose| {
        rest.strip_prefix(purpose)
            .and_then(|tail| tail.strip_prefix('-'))
            .is_some_and(|n| !n.is_empty())
    })
}

fn kind_for(purpose: &str, secret_type: &str) -> Result<Kind, String> {
    match (purpose, secret_type) {
        ("git", BASIC_AUTH) => Ok(Kind::GitBasicAuth),
        ("git", SSH_AUTH) => Ok(Kind::GitSsh),
        ("docker", BASIC_AUTH) => Ok(Kind::DockerBasicAuth),
        ("git", other) => Err(format!(
            "needs a Secret of type {BASIC_AUTH} or {SSH_AUTH}, not {other:?}"
        )),
        (_, other) => Err(format!("needs a Secret of type {BASIC_AUTH}, not {other:?}")),
    }
}

/// A url for basic auth (`.git-credentials` and config.json key by it), a
/// host for ssh; nothing that could end a line of a config file.
fn check_target_for(kind: Kind, target: &str) -> Result<(), String> {
    if target.is_empty() || target.len() > 1024 {
        return Err("must be a url or host of 1 to 1024 characters".to_string());
    }
    check_target(target)?;
    match kind {
        Kind::GitBasicAuth if !(target.starts_with("https://") || target.starts_with("http://")) => {
            Err("must be an http:// or https:// url for a basic-auth Secret".to_string())
        }
        Kind::GitSsh if target.contains('/') => Err("must be a host or host:port for an ssh-auth Secret".to_string()),
        _ => Ok(()),
    }
}

/// Where the first step finds Secret `name` (a Secret name is a DNS
/// subdomain: no `/`, `=` or `:` to confuse the flag).
fn secret_dir(name: &str) -> String {
    format!("{}/{name}", layout::CREDENTIAL_SECRETS_DIR)
}

fn volume_name(index: usize) -> String {
    format!("cicd-creds-{index}")
}

/// The pod volumes: one per Secret, read-only.
pub fn volumes(credentials: &Credentials) -> Vec<Volume> {
    credentials
        .secrets
        .iter()
        .enumerate()
        .map(|(index, (secret, _))| Volume {
            name: volume_name(index),
            secret: Some(SecretVolumeSource {
                secret_name: Some(secret.clone()),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect()
}

/// The first step's mounts of those volumes.
pub fn mounts(credentials: &Credentials) -> Vec<VolumeMount> {
    credentials
        .secrets
        .iter()
        .enumerate()
        .map(|(index, (secret, _))| VolumeMount {
            name: volume_name(index),
            mount_path: secret_dir(secret),
            read_only: Some(true),
            ..Default::default()
        })
        .collect()
}

/// The first step's entrypoint flags.
pub fn entrypoint_args(credentials: &Credentials) -> Vec<String> {
    if credentials.secrets.is_empty() {
        return Vec::new();
    }
    let mut args = vec!["--credentials-home".to_string(), layout::HOME_DIR.to_string()];
    for credential in credentials.secrets.iter().flat_map(|(_, given)| given) {
        args.extend(["--credential".to_string(), credential.to_string()]);
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn flags_of(found: &Credentials) -> Vec<String> {
        found
            .secrets
            .iter()
            .flat_map(|(_, given)| given)
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn annotated_and_docker_config_secrets_count_others_do_not() {
        let git = annotations(&[
            ("tekton.dev/git-0", "https://git.example"),
            ("tekton.dev/git-1", "http://10.0.0.1:8080"),
        ]);
        let ssh = annotations(&[("cicdoperator.ning1875.io/git-0", "git.example:2222")]);
        let registry = annotations(&[("tekton.dev/docker-0", "registry.local:5000")]);
        let none = annotations(&[("owner", "team-a"), ("tekton.dev/gitx", "h")]);
        let found = credentials_of(
            "builder",
            &[
                SecretFacts {
                    name: "git",
                    secret_type: BASIC_AUTH,
                    annotations: &git,
                },
                SecretFacts {
                    name: "key",
                    secret_type: SSH_AUTH,
                    annotations: &ssh,
                },
                SecretFacts {
                    name: "push",
                    secret_type: BASIC_AUTH,
                    annotations: &registry,
                },
                SecretFacts {
                    name: "pull",
                    secret_type: DOCKER_CONFIG_JSON,
                    annotations: &none,
                },
                SecretFacts {
                    name: "token",
                    secret_type: "Opaque",
                    annotations: &none,
                },
            ],
        );
        assert_eq!(
            flags_of(&found),
            [
                "git-basic-auth:/cicd/creds/git=https://git.example",
                "git-basic-auth:/cicd/creds/git=http://10.0.0.1:8080",
                "git-ssh:/cicd/creds/key=git.example:2222",
                "docker-basic-auth:/cicd/creds/push=registry.local:5000",
                "docker-config-json:/cicd/creds/pull",
            ]
        );
        assert!(found.warnings.is_empty(), "{:?}", found.warnings);
        let volumes = volumes(&found);
        assert_eq!(volumes.len(), 4);
        assert_eq!(
            volumes[3].secret.as_ref().and_then(|s| s.secret_name.as_deref()),
            Some("pull")
        );
        assert!(mounts(&found).iter().all(|m| m.read_only == Some(true)));
        assert_eq!(entrypoint_args(&found)[..2], ["--credentials-home", "/cicd/home"]);
    }

    #[test]
    fn a_misfit_annotation_is_a_warning_naming_the_secret_annotation_and_value() {
        let opaque = annotations(&[("tekton.dev/git-0", "https://git.example")]);
        let injected = annotations(&[("tekton.dev/git-0", "https://h\n[core]")]);
        let ssh_url = annotations(&[("tekton.dev/git-0", "ssh://git.example/repo")]);
        let found = credentials_of(
            "builder",
            &[
                SecretFacts {
                    name: "plain",
                    secret_type: "Opaque",
                    annotations: &opaque,
                },
                SecretFacts {
                    name: "bad",
                    secret_type: BASIC_AUTH,
                    annotations: &injected,
                },
                SecretFacts {
                    name: "key",
                    secret_type: SSH_AUTH,
                    annotations: &ssh_url,
                },
            ],
        );
        assert!(found.secrets.is_empty());
        assert_eq!(found.warnings.len(), 3, "{:?}", found.warnings);
        assert!(
            found.warnings[0].contains("Secret \"plain\"")
                && found.warnings[0].contains("tekton.dev/git-0")
                && found.warnings[0].contains("\"Opaque\""),
            "{}",
            found.warnings[0]
        );
        assert!(found.warnings[1].contains("not allowed"), "{}", found.warnings[1]);
        assert!(found.warnings[2].contains("host or host:port"), "{}", found.warnings[2]);
    }

    #[test]
    fn no_credentials_add_nothing_to_the_pod() {
        let found = credentials_of("default", &[]);
        assert!(volumes(&found).is_empty() && mounts(&found).is_empty() && entrypoint_args(&found).is_empty());
    }
}
