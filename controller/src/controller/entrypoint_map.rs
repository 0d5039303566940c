//! The entrypoint as a ConfigMap in each namespace that runs tasks, so a
//! run's pod can mount it instead of copying it with an init container
//! (see `pod::render::EntrypointSource`): an init container is a second
//! container start per pod, which on a busy node costs about as much as the
//! step itself.
//!
//! One immutable ConfigMap per namespace, named after the binary's digest
//! (`cicd-entrypoint-<12 hex digits>`), so a controller with a new entrypoint
//! makes a new one and the pods of the old one keep theirs. It is made the
//! first time a run of the namespace is about to start; a metadata watch on
//! our label says where ours exist, so no run reads it. A ConfigMap of that
//! name that is not ours is never used nor changed: that namespace's pods
//! copy the entrypoint with the init container, as they do when the
//! controller may not create ConfigMaps there. A tenant who replaces ours
//! can change only what its own pods run, which its own steps are anyway.
//! Old versions' ConfigMaps are not deleted (pods of the old controller may
//! still be starting with them); they go with their namespace.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{PartialObjectMeta, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tracing::{debug, info, warn};

use crate::error::{Error, Result};
use crate::layout;
use crate::pod::render::{LABEL_MANAGED_BY, MANAGED_BY};

/// Watch events handled at once (see [`EntrypointMaps::watch`]).
const MAX_CONCURRENT_EVENTS: usize = 16;

/// Marks our entrypoint ConfigMaps; its value is the digest in the name.
pub const LABEL_ENTRYPOINT: &str = concat!(crate::api_group!(), "/entrypoint");
/// ConfigMaps hold at most 1 MiB; the entrypoint is under 100 KiB.
const MAX_BINARY_BYTES: u64 = 900 * 1024;
/// How long a namespace whose ConfigMap we may not make or use goes on
/// with the init container before we try again (RBAC may be fixed, a
/// tenant's object deleted).
const RETRY_AFTER: Duration = Duration::from_secs(300);

/// What we know of our ConfigMap in one namespace.
#[derive(Debug, Clone, Copy)]
enum Known {
    /// It exists (we made it, or the watch saw it).
    Ours,
    /// We could not make it or it is not ours: the init container until then.
    Unusable { until: Instant },
}

/// The entrypoint binary and where its ConfigMaps are.
#[derive(Debug)]
pub struct EntrypointMaps {
    /// The name of every namespace's ConfigMap, from the binary's digest.
    name: String,
    /// Its first 12 hex digits, the label's value.
    digest: String,
    /// The binary, the ConfigMap's only key.
    binary: ByteString,
    /// By namespace. Bounded by the namespaces that run tasks; an entry is
    /// dropped when the watch sees the ConfigMap go (its namespace deleted).
    known: Mutex<HashMap<String, Known>>,
}

impl EntrypointMaps {
    /// Reads the binary at `path` (the controller's image holds a copy).
    pub fn load(path: &Path) -> Result<Self> {
        let fail = |reason: String| Error::EntrypointBinary {
            path: path.display().to_string(),
            reason,
        };
        let size = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?.len();
        if size > MAX_BINARY_BYTES {
            return Err(fail(format!(
                "{size} bytes; a ConfigMap holds at most {MAX_BINARY_BYTES}"
            )));
        }
        let binary = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
        Ok(Self::new(binary))
    }

    pub fn new(binary: Vec<u8>) -> Self {
        let digest = crate::image::sha256_digest(&binary);
        let short = digest.trim_start_matches("sha256:")[..12].to_string();
        EntrypointMaps {
            name: format!("cicd-entrypoint-{short}"),
            digest: short,
            binary: ByteString(binary),
            known: Mutex::new(HashMap::new()),
        }
    }

    fn known(&self, namespace: &str) -> Option<Known> {
        self.known.lock().ok()?.get(namespace).copied()
    }

    fn set(&self, namespace: &str, known: Option<Known>) {
        if let Ok(mut map) = self.known.lock() {
            match known {
                Some(known) => map.insert(namespace.to_string(), known),
                None => map.remove(namespace),
            };
        }
    }

    /// The name of our entrypoint ConfigMap in `namespace`, made now if it
    /// is not there; None when the pod must copy the entrypoint with the
    /// init container instead (never an error: the run starts either way).
    pub async fn config_map(&self, client: &Client, namespace: &str) -> Option<String> {
        match self.known(namespace) {
            Some(Known::Ours) => return Some(self.name.clone()),
            Some(Known::Unusable { until }) if Instant::now() < until => return None,
            _ => {}
        }
        let usable = self.make(client, namespace).await;
        let known = match usable {
            true => Known::Ours,
            false => Known::Unusable {
                until: Instant::now() + RETRY_AFTER,
            },
        };
        self.set(namespace, Some(known));
        usable.then(|| self.name.clone())
    }

    /// Creates the ConfigMap; true if it is there and ours afterwards.
    async fn make(&self, client: &Client, namespace: &str) -> bool {
        let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
        match maps.create(&PostParams::default(), &self.object()).await {
            Ok(_) => {
                info!(namespace, name = %self.name, "made the entrypoint ConfigMap");
                true
            }
            Err(kube::Error::Api(status)) if status.code == 409 => self.is_ours_there(&maps, namespace).await,
            Err(error) => {
                warn!(namespace, name = %self.name, %error,
                    "cannot make the entrypoint ConfigMap; pods here copy the entrypoint with an init container");
                false
            }
        }
    }

    /// After a conflict: whether the ConfigMap of our name is ours.
    async fn is_ours_there(&self, maps: &Api<ConfigMap>, namespace: &str) -> bool {
        match maps.get_metadata_opt(&self.name).await {
            Ok(Some(found)) if self.is_ours(&found.metadata) => true,
            Ok(_) => {
                warn!(namespace, name = %self.name,
                    "a ConfigMap of the entrypoint's name is not ours; pods here copy the entrypoint with an init container");
                false
            }
            Err(error) => {
                warn!(namespace, name = %self.name, %error, "cannot read the entrypoint ConfigMap");
                false
            }
        }
    }

    fn is_ours(&self, metadata: &ObjectMeta) -> bool {
        let labels = metadata.labels.as_ref();
        let label = |key: &str| labels.and_then(|l| l.get(key)).map(String::as_str);
        metadata.name.as_deref() == Some(self.name.as_str())
            && label(LABEL_MANAGED_BY) == Some(MANAGED_BY)
            && label(LABEL_ENTRYPOINT) == Some(self.digest.as_str())
    }

    fn object(&self) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                labels: Some(BTreeMap::from([
                    (LABEL_MANAGED_BY.to_string(), MANAGED_BY.to_string()),
                    (LABEL_ENTRYPOINT.to_string(), self.digest.clone()),
                ])),
                ..Default::default()
            },
            binary_data: Some(BTreeMap::from([(
                layout::ENTRYPOINT_KEY.to_string(),
                self.binary.clone(),
            )])),
            immutable: Some(true),
            ..Default::default()
        }
    }

    /// Follows our ConfigMaps (metadata only) in `namespace` or all: one
    /// that exists is known without a request; one deleted (by a tenant, or
    /// with its namespace) is made again at once, since pods waiting to
    /// mount it would otherwise wait until the next run of that namespace.
    pub async fn watch(self: Arc<Self>, client: Client, namespace: Option<String>) {
        // An Api of PartialObjectMeta lists and watches metadata only.
        let maps: Api<PartialObjectMeta<ConfigMap>> = match &namespace {
            Some(namespace) => Api::namespaced(client.clone(), namespace),
            None => Api::all(client.clone()),
        };
        let selector = format!("{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_ENTRYPOINT}={}", self.digest);
        let events = watcher::watcher(maps, watcher::Config::default().labels(&selector)).default_backoff();
        // Concurrently: each deletion costs a create call, and namespaces
        // being deleted in numbers (each one's ConfigMap goes with it) must
        // not hold up the one a tenant deleted in a namespace still in use.
        events
            .for_each_concurrent(MAX_CONCURRENT_EVENTS, |event| {
                let (client, maps) = (client.clone(), self.clone());
                async move {
                    match event {
                        Ok(watcher::Event::Apply(found) | watcher::Event::InitApply(found)) => {
                            if let Some(namespace) = found.metadata.namespace.as_deref()
                                && maps.is_ours(&found.metadata)
                            {
                                maps.set(namespace, Some(Known::Ours));
                            }
                        }
                        Ok(watcher::Event::Delete(gone)) => {
                            if let Some(namespace) = gone.metadata.namespace.as_deref()
                                && gone.metadata.name.as_deref() == Some(maps.name.as_str())
                            {
                                maps.remade_after_delete(&client, namespace).await;
                            }
                        }
                        Ok(_) => {}
                        Err(error) => debug!(%error, "entrypoint ConfigMap watch error (retried)"),
                    }
                }
            })
            .await;
    }

    /// Our ConfigMap in `namespace` was deleted: made again, unless the
    /// namespace is going (the API server refuses, and we forget it).
    async fn remade_after_delete(&self, client: &Client, namespace: &str) {
        self.set(namespace, None);
        let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
        match maps.create(&PostParams::default(), &self.object()).await {
            Ok(_) => {
                info!(namespace, name = %self.name, "made the deleted entrypoint ConfigMap again");
                self.set(namespace, Some(Known::Ours));
            }
            Err(error) => debug!(namespace, %error, "entrypoint ConfigMap not made again"),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::controller::mock_api::{MockApi, status};

    const MAPS: &str = "/api/v1/namespaces/team-a/configmaps";

    fn maps() -> EntrypointMaps {
        EntrypointMaps::new(b"\x7fELF not really".to_vec())
    }

    fn metadata(name: &str, labels: serde_json::Value) -> serde_json::Value {
        json!({
            "apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
            "metadata": { "name": name, "namespace": "team-a", "labels": labels },
        })
    }

    #[tokio::test]
    async fn made_once_per_namespace_immutable_labelled_and_named_by_digest() {
        let maps = maps();
        let api = MockApi::new(|seen| (201, seen.body.clone()));
        let client = api.client();
        let name = maps.config_map(&client, "team-a").await.expect("usable");
        assert!(name.starts_with("cicd-entrypoint-") && name.len() == "cicd-entrypoint-".len() + 12);
        assert_eq!(maps.config_map(&client, "team-a").await.as_deref(), Some(name.as_str()));
        assert_eq!(api.requests(), [format!("POST {MAPS}")], "made once, then known");
        let body = &api.bodies("POST", "/configmaps")[0];
        assert_eq!(body["immutable"], true);
        assert_eq!(body["metadata"]["name"], name.as_str());
        assert_eq!(body["metadata"]["labels"][LABEL_MANAGED_BY], MANAGED_BY);
        assert_eq!(
            body["metadata"]["labels"][LABEL_ENTRYPOINT],
            &name["cicd-entrypoint-".len()..]
        );
        // binaryData is base64 on the wire.
        assert_eq!(body["binaryData"]["entrypoint"], "f0VMRiBub3QgcmVhbGx5");
    }

    #[tokio::test]
    async fn one_of_our_name_that_is_not_ours_is_never_used_and_not_asked_again_soon() {
        let maps = maps();
        let name = maps.name.clone();
        let api = MockApi::new(move |seen| match seen.method.as_str() {
            "POST" => status(409, "AlreadyExists", "configmaps exists"),
            // A tenant's ConfigMap under our name, with our managed-by label
            // but not our digest.
            _ => (200, metadata(&name, json!({ LABEL_MANAGED_BY: MANAGED_BY }))),
        });
        let client = api.client();
        assert_eq!(maps.config_map(&client, "team-a").await, None);
        assert_eq!(maps.config_map(&client, "team-a").await, None);
        assert_eq!(
            api.requests(),
            [format!("POST {MAPS}"), format!("GET {MAPS}/{}", maps.name)],
            "one try per {RETRY_AFTER:?}"
        );
    }

    #[tokio::test]
    async fn ours_already_there_is_used_and_a_refusal_falls_back_to_the_init_container() {
        let maps = maps();
        let (name, digest) = (maps.name.clone(), maps.digest.clone());
        let api = MockApi::new(move |seen| match (seen.method.as_str(), seen.path.as_str()) {
            ("POST", path) if path.contains("/team-a/") => status(409, "AlreadyExists", "exists"),
            ("POST", _) => status(403, "Forbidden", "configmaps is forbidden"),
            _ => (
                200,
                metadata(&name, json!({ LABEL_MANAGED_BY: MANAGED_BY, LABEL_ENTRYPOINT: digest })),
            ),
        });
        let client = api.client();
        assert_eq!(
            maps.config_map(&client, "team-a").await.as_deref(),
            Some(maps.name.as_str())
        );
        assert_eq!(
            maps.config_map(&client, "team-b").await,
            None,
            "forbidden: the init container"
        );
    }

    #[test]
    fn a_binary_too_large_for_a_config_map_is_refused_naming_the_flag() {
        let dir = std::env::temp_dir().join(format!("cicd-entrypoint-map-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let path = dir.join("big");
        std::fs::write(&path, vec![0u8; MAX_BINARY_BYTES as usize + 1]).expect("write");
        let error = EntrypointMaps::load(&path).expect_err("too large").to_string();
        assert!(
            error.contains("--entrypoint-binary") && error.contains("at most"),
            "{error}"
        );
        let missing = EntrypointMaps::load(&dir.join("missing"))
            .expect_err("missing")
            .to_string();
        assert!(missing.contains("missing"), "{missing}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
