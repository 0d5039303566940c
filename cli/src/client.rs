//! The cluster connection, as kubectl makes it: the user's kubeconfig
//! (KUBECONFIG or ~/.kube/config), its current or a chosen context and
//! namespace. Errors say what to do: no kubeconfig, no such run, which verb
//! on which resource was forbidden.

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// What went wrong talking to the cluster, in words for the user.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("no kubeconfig: set KUBECONFIG or create ~/.kube/config (as for kubectl); {0}")]
    NoKubeconfig(String),
    #[error("cannot use kubeconfig context {context:?}: {why}")]
    Context { context: String, why: String },
    #[error("{kind} {name:?} not found in namespace {namespace:?}")]
    NotFound {
        kind: String,
        name: String,
        namespace: String,
    },
    #[error("no run named {name:?} in namespace {namespace:?} (neither a MyTaskRun nor a MyPipelineRun)")]
    NoSuchRun { name: String, namespace: String },
    #[error("permission denied: you cannot {verb} {resource} in namespace {namespace:?} ({message})")]
    Forbidden {
        verb: String,
        resource: String,
        namespace: String,
        message: String,
    },
    #[error("cannot {verb} {resource}: {message}")]
    Api {
        verb: String,
        resource: String,
        message: String,
    },
    #[error("{0}")]
    Invalid(String),
}

/// A client and the namespace commands act in.
#[derive(Clone)]
pub struct Cluster {
    pub client: Client,
    /// `-n`, else the context's namespace, else `default`.
    pub namespace: String,
}

/// Connects like kubectl. `context` is `--context`, `namespace` is `-n`.
pub async fn connect(context: Option<&str>, namespace: Option<&str>) -> Result<Cluster, CliError> {
    let config = match context {
        Some(name) => {
            let kubeconfig = Kubeconfig::read().map_err(|e| CliError::NoKubeconfig(e.to_string()))?;
            let options = KubeConfigOptions {
                context: Some(name.to_string()),
                ..KubeConfigOptions::default()
            };
            Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| CliError::Context {
                    context: name.to_string(),
                    why: e.to_string(),
                })?
        }
        None => Config::infer()
            .await
            .map_err(|e| CliError::NoKubeconfig(e.to_string()))?,
    };
    let namespace = namespace.map_or_else(|| config.default_namespace.clone(), str::to_string);
    let client = Client::try_from(config).map_err(|e| CliError::NoKubeconfig(e.to_string()))?;
    Ok(Cluster { client, namespace })
}

/// Turns an API error into words: 403 names the verb and resource, 404 the
/// object.
pub fn api_error(error: kube::Error, verb: &str, resource: &str, name: &str, namespace: &str) -> CliError {
    match &error {
        kube::Error::Api(status) if status.code == 403 => CliError::Forbidden {
            verb: verb.to_string(),
            resource: resource.to_string(),
            namespace: namespace.to_string(),
            message: status.message.clone(),
        },
        kube::Error::Api(status) if status.code == 404 && !name.is_empty() => CliError::NotFound {
            kind: resource.to_string(),
            name: name.to_string(),
            namespace: namespace.to_string(),
        },
        _ => CliError::Api {
            verb: verb.to_string(),
            resource: resource.to_string(),
            message: error.to_string(),
        },
    }
}

/// True for a 404 from the apiserver.
pub fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(
            kube::core::Status::failure("denied by RBAC", "Forbidden").with_code(code),
        ))
    }

    #[test]
    fn forbidden_names_the_verb_and_resource() {
        let message = api_error(status(403), "patch", "mytaskruns", "r", "team").to_string();
        assert!(
            message.contains("you cannot patch mytaskruns in namespace \"team\""),
            "{message}"
        );
    }

    #[test]
    fn not_found_names_the_object() {
        let message = api_error(status(404), "get", "mytasks", "build", "team").to_string();
        assert_eq!(message, "mytasks \"build\" not found in namespace \"team\"");
    }
}
