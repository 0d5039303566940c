//! Watch-fed in-memory indexes (reflector stores) that reconciles read
//! instead of GETs: MyTasks, MyPipelines, MyStepActions, ServiceAccounts,
//! the pods we manage and the nodes' readiness; and what
//! the caches keep of each object, which is only what decisions need, so
//! memory stays flat as finished runs pile up.
//!
//! A cache can lag behind the API server by a watch event. Every lookup is
//! therefore used only where a lag cannot cause a wrong decision:
//! - a task, pipeline, step action or ServiceAccount missing from the
//!   cache is read from the API server (it may have been created a moment
//!   before its run);
//! - a pod missing from the cache is read only if the run's status says it
//!   was made; otherwise the run creates it, and a pod that exists after
//!   all is met by the create's conflict handling (adopted only if the run
//!   controls it);
//! - the run itself is read fresh only when the cache is older than our own
//!   last status write of it (`Versions`).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, NodeCondition, NodeStatus, Pod, PodSpec, ServiceAccount};
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::reflector::{ObjectRef, Store, store::Writer};
use kube::{Api, Resource};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use crate::api::{MyPipeline, MyStepAction, MyTask};
use crate::error::Result;
use crate::pod::node::NodeHealth;

use super::decode::{decode, get_decoded};
use super::queue::Key;
use super::runner::owner_key;

/// kubectl's copy of the whole object, as large as the object itself.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The caches reconciles read; empty stores just mean every lookup goes to
/// the API server (as in unit tests).
pub struct Stores {
    /// MyTasks of every watched namespace, untyped (decoded per lookup, so
    /// a malformed one fails only the runs that use it).
    pub tasks: Store<DynamicObject>,
    /// MyPipelines, untyped for the same reason.
    pub pipelines: Store<DynamicObject>,
    /// MyStepActions, untyped for the same reason: read when an attempt
    /// of a task that runs them starts.
    pub step_actions: Store<DynamicObject>,
    /// The pods we manage (label `app.kubernetes.io/managed-by`), without
    /// their spec but its node name (decisions read metadata and status,
    /// and the node to judge whether it was lost).
    pub pods: Store<Pod>,
    /// Every Node, with its name and Ready condition only: a run whose pod's
    /// node has not been Ready for `--node-lost-after` ends NodeLost. Empty
    /// if the controller may not list nodes (nothing is then judged lost).
    pub nodes: Store<Node>,
    /// ServiceAccounts with their name and `secrets` list only: which
    /// Secrets an attempt about to start may take credentials from, read
    /// here so that a run whose account lists none costs no request.
    pub service_accounts: Store<ServiceAccount>,
    /// The API resource of MyTask, the key type of `tasks`.
    task_resource: ApiResource,
    /// The API resource of MyPipeline, the key type of `pipelines`.
    pipeline_resource: ApiResource,
    /// The API resource of MyStepAction, the key type of `step_actions`.
    step_action_resource: ApiResource,
}

/// The writers that feed `Stores`, for the watches in `runner`.
pub struct StoreWriters {
    pub tasks: Writer<DynamicObject>,
    pub pipelines: Writer<DynamicObject>,
    pub step_actions: Writer<DynamicObject>,
    pub pods: Writer<Pod>,
    pub nodes: Writer<Node>,
    pub service_accounts: Writer<ServiceAccount>,
}

impl Stores {
    /// Empty stores and the writers that fill them.
    pub fn new() -> (Stores, StoreWriters) {
        let task_resource = ApiResource::erase::<MyTask>(&());
        let pipeline_resource = ApiResource::erase::<MyPipeline>(&());
        let step_action_resource = ApiResource::erase::<MyStepAction>(&());
        let writers = StoreWriters {
            tasks: Writer::new(task_resource.clone()),
            pipelines: Writer::new(pipeline_resource.clone()),
            step_actions: Writer::new(step_action_resource.clone()),
            pods: Writer::default(),
            nodes: Writer::default(),
            service_accounts: Writer::default(),
        };
        let stores = Stores {
            tasks: writers.tasks.as_reader(),
            pipelines: writers.pipelines.as_reader(),
            step_actions: writers.step_actions.as_reader(),
            pods: writers.pods.as_reader(),
            nodes: writers.nodes.as_reader(),
            service_accounts: writers.service_accounts.as_reader(),
            task_resource,
            pipeline_resource,
            step_action_resource,
        };
        (stores, writers)
    }

    /// A MyTask of the run's namespace: from the cache, else from the API
    /// server. None if it does not exist; `Some(Err)` if it is malformed.
    pub async fn task(
        &self,
        client: &kube::Client,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Result<MyTask, String>>> {
        lookup(&self.tasks, &self.task_resource, client, namespace, name).await
    }

    /// A MyPipeline of the run's namespace, as `task`.
    pub async fn pipeline(
        &self,
        client: &kube::Client,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Result<MyPipeline, String>>> {
        lookup(&self.pipelines, &self.pipeline_resource, client, namespace, name).await
    }

    /// A MyStepAction of the run's namespace, as `task`.
    pub async fn step_action(
        &self,
        client: &kube::Client,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Result<MyStepAction, String>>> {
        lookup(&self.step_actions, &self.step_action_resource, client, namespace, name).await
    }

    /// The run's pod `name`: from the cache; if the cache has none, read
    /// from the API server only when the run `recorded` it as made (the
    /// cache may lag behind its creation; a pod the run did not record is
    /// created, and a conflict then settles whether it exists).
    pub async fn pod(&self, pods: &Api<Pod>, namespace: &str, name: &str, recorded: bool) -> Result<Option<Pod>> {
        if let Some(pod) = self.pods.get(&ObjectRef::new(name).within(namespace)) {
            return Ok(Some(Pod::clone(&pod)));
        }
        if !recorded {
            return Ok(None);
        }
        Ok(pods.get_opt(name).await?)
    }

    /// ServiceAccount `name` of `namespace`: from the cache, else from the
    /// API server (the cache may lag behind an account made with the run).
    pub async fn service_account(
        &self,
        accounts: &Api<ServiceAccount>,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ServiceAccount>> {
        if let Some(account) = self.service_accounts.get(&ObjectRef::new(name).within(namespace)) {
            return Ok(Some(ServiceAccount::clone(&account)));
        }
        Ok(accounts.get_opt(name).await?)
    }

    /// The health of the node `pod` is bound to, if it is bound and the node
    /// is in the cache.
    pub fn node_of(&self, pod: &Pod) -> Option<NodeHealth> {
        let name = pod.spec.as_ref()?.node_name.as_deref()?;
        self.nodes.get(&ObjectRef::new(name)).map(|node| NodeHealth::of(&node))
    }
}

async fn lookup<K>(
    store: &Store<DynamicObject>,
    resource: &ApiResource,
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<Option<Result<K, String>>>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + JsonSchema + 'static,
{
    let key = ObjectRef::new_with(name, resource.clone()).within(namespace);
    match store.get(&key) {
        Some(object) => Ok(Some(decode::<K>(&object))),
        None => get_decoded::<K>(client, namespace, name).await,
    }
}

/// Drops what no decision reads from an object's metadata: the managed
/// fields and kubectl's last-applied copy (together often larger than the
/// object).
pub(super) fn slim_meta(meta: &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) {
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
}

/// A MyTask, MyPipeline or MyStepAction as the cache keeps it.
pub fn slim_object(mut object: DynamicObject) -> DynamicObject {
    slim_meta(&mut object.metadata);
    object
}

/// A pod as the cache keeps it: metadata, status and of its spec only the
/// node it is bound to (decisions read the pod's phase, container states,
/// owner, deletion and node only).
pub fn slim_pod(mut pod: Pod) -> Pod {
    slim_meta(&mut pod.metadata);
    let node_name = pod.spec.and_then(|spec| spec.node_name);
    pod.spec = node_name.map(|node_name| PodSpec {
        node_name: Some(node_name),
        ..Default::default()
    });
    pod
}

/// A ServiceAccount as `service_accounts` keeps it: its name, namespace,
/// the Secrets it lists and its pull Secrets (no annotations, labels or
/// managed fields).
pub fn slim_service_account(account: ServiceAccount) -> ServiceAccount {
    let mut slim = ServiceAccount::default();
    slim.metadata.name = account.metadata.name;
    slim.metadata.namespace = account.metadata.namespace;
    slim.metadata.resource_version = account.metadata.resource_version;
    slim.secrets = account.secrets;
    slim.image_pull_secrets = account.image_pull_secrets;
    slim
}

/// A node as the cache keeps it: its name and Ready condition (a node's
/// images, addresses and other conditions make up most of its size).
pub fn slim_node(node: Node) -> Node {
    let ready: Vec<NodeCondition> = node
        .status
        .and_then(|status| status.conditions)
        .into_iter()
        .flatten()
        .filter(|condition| condition.type_ == "Ready")
        .collect();
    let mut slim = Node::default();
    slim.metadata.name = node.metadata.name;
    slim.metadata.resource_version = node.metadata.resource_version;
    slim.status = Some(NodeStatus {
        conditions: Some(ready),
        ..Default::default()
    });
    slim
}

/// Whether a node's change can matter to the runs with a pod on it: its
/// Ready condition's status or transition time changed (heartbeats alone,
/// every few seconds, do not).
pub fn node_changed(old: Option<&Node>, new: &Node) -> bool {
    let ready = |node: &Node| {
        let health = NodeHealth::of(node);
        (health.ready, health.since)
    };
    old.is_none_or(|old| ready(old) != ready(new))
}

/// The MyTaskRuns that own an unfinished pod on `node`, to be looked at
/// when the node's readiness changes.
pub fn runs_on_node(pods: &Store<Pod>, node: &str) -> Vec<Key> {
    pods.state()
        .iter()
        .filter(|pod| pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
        .filter(|pod| {
            !matches!(
                pod.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded") | Some("Failed")
            )
        })
        .filter_map(|pod| owner_key(&pod.metadata, "MyTaskRun"))
        .collect()
}

/// Whether a pod's change can matter to its run's decision: new, gone, or
/// a different status or deletion mark. A change of labels or annotations
/// alone (or a resync) does not cause a reconcile.
pub fn pod_changed(old: Option<&Pod>, new: &Pod) -> bool {
    match old {
        None => true,
        Some(old) => old.status != new.status || old.metadata.deletion_timestamp != new.metadata.deletion_timestamp,
    }
}

/// The resource version of our last status write of each run, until the
/// run cache has caught up with it: while the cache is older, no decision
/// is taken on the cached copy (deciding on a copy older than our own
/// write would redo recorded work, e.g. stamp a second start time).
#[derive(Debug, Default)]
pub struct Versions {
    /// Written version, and when it was written, by `kind/namespace/name`.
    written: Mutex<HashMap<String, (u64, Instant)>>,
}

/// How long a reconcile waits for the watch to deliver our own status
/// write before it reads the run from the API server instead. The watch
/// normally brings it within milliseconds, and queues the run again when
/// it does; the fresh read is the fallback for a watch that fell behind.
pub const AWAIT_OWN_WRITE: Duration = Duration::from_secs(3);

/// Whether the cached copy of a run can be decided on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// At least as new as our last write (or we wrote nothing).
    Current,
    /// Older than a write we made less than [`AWAIT_OWN_WRITE`] ago: the
    /// watch will bring the new copy and queue the run again, so wait
    /// for it rather than spend a request (under a burst, those requests
    /// compete with every tenant's pod creations).
    AwaitingWatch,
    /// Older than a write we made longer ago: read the run fresh.
    Stale,
}

impl Versions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, Instant)>> {
        self.written.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes the version our status write produced.
    pub fn wrote(&self, key: &str, version: Option<&str>) {
        self.wrote_at(key, version, Instant::now());
    }

    fn wrote_at(&self, key: &str, version: Option<&str>, at: Instant) {
        // Not a number (not etcd?): the run will always be read fresh.
        let version = version.and_then(|v| v.parse::<u64>().ok()).unwrap_or(u64::MAX);
        self.lock().insert(key.to_string(), (version, at));
    }

    /// Whether the cached copy (at `cached`) may be older than our last
    /// write; forgets the write once the cache has caught up.
    pub fn freshness(&self, key: &str, cached: Option<&str>) -> Freshness {
        let mut written = self.lock();
        let Some(&(ours, at)) = written.get(key) else {
            return Freshness::Current;
        };
        match cached.and_then(|v| v.parse::<u64>().ok()) {
            Some(version) if version >= ours => {
                written.remove(key);
                Freshness::Current
            }
            _ if ours != u64::MAX && at.elapsed() < AWAIT_OWN_WRITE => Freshness::AwaitingWatch,
            _ => Freshness::Stale,
        }
    }

    /// Forgets a deleted run.
    pub fn forget(&self, key: &str) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use kube::runtime::watcher::Event;
    use serde_json::{Value, json};

    use super::*;
    use crate::controller::mock_api::{MockApi, status};

    fn task_object(name: &str, image: &str) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "cicdoperator.ning1875.io/v1",
            "kind": "MyTask",
            "metadata": {
                "name": name, "namespace": "ci", "resourceVersion": "5",
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
                "annotations": {LAST_APPLIED: "{\"huge\": true}", "keep": "me"}
            },
            "spec": {"steps": [{"name": "one", "image": image, "script": "true"}]}
        }))
        .expect("a task")
    }

    fn served_task() -> (u16, Value) {
        (
            200,
            serde_json::to_value(task_object("t", "127.0.0.1:5000/cicd/bash:server")).expect("json"),
        )
    }

    #[tokio::test]
    async fn a_cached_task_is_read_without_a_request_and_a_missing_one_is_fetched() {
        let api = MockApi::new(|seen| {
            if seen.path.ends_with("/mytasks/fetched") {
                served_task()
            } else {
                status(404, "NotFound", "no such task")
            }
        });
        let (stores, mut writers) = Stores::new();
        writers.tasks.apply_watcher_event(&Event::Apply(slim_object(task_object(
            "t",
            "127.0.0.1:5000/cicd/bash:cached",
        ))));

        let cached = stores.task(&api.client(), "ci", "t").await.expect("no error");
        let image = cached.and_then(|t| t.ok()).and_then(|t| t.spec.steps[0].image.clone());
        assert_eq!(image.as_deref(), Some("127.0.0.1:5000/cicd/bash:cached"));
        assert!(api.requests().is_empty(), "{:?}", api.requests());

        let fetched = stores.task(&api.client(), "ci", "fetched").await.expect("no error");
        assert!(
            matches!(fetched, Some(Ok(_))),
            "read from the API server when not cached"
        );
        let missing = stores.task(&api.client(), "ci", "nope").await.expect("no error");
        assert!(missing.is_none());
        assert_eq!(api.requests().len(), 2);
        let other_namespace = stores.task(&api.client(), "other", "t").await.expect("no error");
        assert!(
            other_namespace.is_none(),
            "another namespace's task is not found in the cache"
        );
    }

    #[tokio::test]
    async fn step_actions_come_from_their_own_cache() {
        let api = MockApi::new(|_| status(404, "NotFound", "not in the API server either"));
        let (stores, mut writers) = Stores::new();
        let action: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "cicdoperator.ning1875.io/v1", "kind": "MyStepAction",
            "metadata": {"name": "sha", "namespace": "ci"},
            "spec": {"image": "127.0.0.1:5000/cicd/bash:5", "script": "sha256sum"},
        }))
        .expect("an object");
        writers
            .step_actions
            .apply_watcher_event(&Event::Apply(slim_object(action)));
        let found = stores.step_action(&api.client(), "ci", "sha").await.expect("no error");
        let script = found.and_then(|a| a.ok()).and_then(|a| a.spec.script);
        assert_eq!(script.as_deref(), Some("sha256sum"));
        assert!(api.requests().is_empty(), "{:?}", api.requests());
        let task_of_that_name = stores.task(&api.client(), "ci", "sha").await.expect("no error");
        assert!(task_of_that_name.is_none(), "the kinds do not share a cache");
    }

    #[tokio::test]
    async fn a_malformed_cached_task_is_reported_not_retried() {
        let api = MockApi::new(|_| status(500, "InternalError", "must not be asked"));
        let (stores, mut writers) = Stores::new();
        let mut bad = task_object("t", "x");
        bad.data["spec"]["steps"][0]["timout"] = json!("1s");
        writers.tasks.apply_watcher_event(&Event::Apply(bad));
        let problem = match stores.task(&api.client(), "ci", "t").await.expect("no error") {
            Some(Err(problem)) => problem,
            other => panic!("expected a problem, got {other:?}"),
        };
        assert!(problem.contains("spec.steps[0].timout"), "{problem}");
    }

    fn pod(phase: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "tr-pod", "namespace": "ci", "managedFields": [{"manager": "kubelet"}]},
            "spec": {"containers": [{"name": "step-one", "image": "x"}]},
            "status": {"phase": phase}
        }))
        .expect("a pod")
    }

    #[tokio::test]
    async fn pods_come_from_the_cache_and_are_fetched_only_when_recorded() {
        let api = MockApi::new(|seen| {
            if seen.path.ends_with("/pods/made") {
                (200, serde_json::to_value(pod("Running")).expect("json"))
            } else {
                status(404, "NotFound", "no such pod")
            }
        });
        let pods: Api<Pod> = Api::namespaced(api.client(), "ci");
        let (stores, mut writers) = Stores::new();
        writers
            .pods
            .apply_watcher_event(&Event::Apply(slim_pod(pod("Pending"))));

        let cached = stores.pod(&pods, "ci", "tr-pod", true).await.expect("no error");
        assert_eq!(
            cached.and_then(|p| p.status).and_then(|s| s.phase).as_deref(),
            Some("Pending")
        );
        let unrecorded = stores.pod(&pods, "ci", "made", false).await.expect("no error");
        assert!(unrecorded.is_none());
        assert!(
            api.requests().is_empty(),
            "neither read asked the server: {:?}",
            api.requests()
        );
        let recorded = stores.pod(&pods, "ci", "made", true).await.expect("no error");
        assert!(recorded.is_some(), "a recorded pod the cache lacks is read");
        assert_eq!(api.requests(), vec!["GET /api/v1/namespaces/ci/pods/made".to_string()]);
    }

    #[test]
    fn a_service_account_is_kept_with_its_name_and_secrets_only() {
        let account: ServiceAccount = serde_json::from_value(json!({
            "metadata": {
                "name": "builder", "namespace": "team-a", "resourceVersion": "7",
                "annotations": { "kubectl.kubernetes.io/last-applied-configuration": "{...}" },
                "managedFields": [{ "manager": "kubectl" }],
            },
            "secrets": [{ "name": "git-login" }],
            "imagePullSecrets": [{ "name": "pull" }],
        }))
        .expect("an account");
        let slim = slim_service_account(account);
        assert_eq!(slim.metadata.name.as_deref(), Some("builder"));
        assert_eq!(slim.metadata.namespace.as_deref(), Some("team-a"));
        assert_eq!(slim.metadata.resource_version.as_deref(), Some("7"));
        assert!(slim.metadata.annotations.is_none() && slim.metadata.managed_fields.is_none());
        let listed: Vec<Option<&str>> = slim.secrets.iter().flatten().map(|s| s.name.as_deref()).collect();
        assert_eq!(listed, [Some("git-login")]);
        let pull: Vec<&str> = slim
            .image_pull_secrets
            .iter()
            .flatten()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(pull, ["pull"]);
    }

    #[test]
    fn caches_keep_only_what_decisions_need() {
        let task = slim_object(task_object("t", "x"));
        assert_eq!(task.metadata.managed_fields, None);
        let annotations = task.metadata.annotations.expect("other annotations stay");
        assert_eq!(annotations.keys().collect::<Vec<_>>(), vec!["keep"]);

        let slim = slim_pod(pod("Running"));
        assert!(slim.spec.is_none() && slim.metadata.managed_fields.is_none());
        assert_eq!(slim.status.and_then(|s| s.phase).as_deref(), Some("Running"));
    }

    #[test]
    fn only_a_pod_status_or_deletion_change_triggers_its_run() {
        let pending = slim_pod(pod("Pending"));
        assert!(pod_changed(None, &pending));
        let mut relabelled = pending.clone();
        relabelled.metadata.labels = Some([("x".to_string(), "y".to_string())].into());
        relabelled.metadata.resource_version = Some("9".into());
        assert!(!pod_changed(Some(&pending), &relabelled));
        assert!(pod_changed(Some(&pending), &slim_pod(pod("Running"))));
        let mut deleting = pending.clone();
        deleting.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::now(),
        ));
        assert!(pod_changed(Some(&pending), &deleting));
    }

    #[test]
    fn a_run_waits_for_the_watch_to_bring_our_write_then_is_read_fresh() {
        let versions = Versions::default();
        assert_eq!(
            versions.freshness("k", Some("10")),
            Freshness::Current,
            "nothing written: the cache is used"
        );
        versions.wrote("k", Some("12"));
        assert_eq!(versions.freshness("k", Some("11")), Freshness::AwaitingWatch);
        assert_eq!(versions.freshness("k", None), Freshness::AwaitingWatch);
        let long_ago = Instant::now()
            .checked_sub(AWAIT_OWN_WRITE)
            .expect("the clock is past boot");
        versions.wrote_at("k", Some("12"), long_ago);
        assert_eq!(
            versions.freshness("k", Some("11")),
            Freshness::Stale,
            "the watch is late: read fresh"
        );
        assert_eq!(versions.freshness("k", Some("12")), Freshness::Current, "caught up");
        assert_eq!(
            versions.freshness("k", Some("11")),
            Freshness::Current,
            "forgotten once caught up"
        );
        versions.wrote("k", Some("not-a-number"));
        assert_eq!(
            versions.freshness("k", Some("99999")),
            Freshness::Stale,
            "opaque versions: always fresh"
        );
        versions.forget("k");
        assert_eq!(versions.freshness("k", Some("1")), Freshness::Current);
    }

    fn node(ready: &str, since: &str, heartbeat: &str) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": "n2", "resourceVersion": "7", "labels": {"big": "x"}},
            "status": {
                "images": [{"names": ["some/image:1"], "sizeBytes": 1}],
                "conditions": [
                    {"type": "DiskPressure", "status": "False"},
                    {"type": "Ready", "status": ready, "lastTransitionTime": since, "lastHeartbeatTime": heartbeat}
                ]
            }
        }))
        .expect("a node")
    }

    #[test]
    fn a_cached_node_keeps_its_name_and_ready_condition_only() {
        let slim = slim_node(node("True", "2026-12-02T06:00:00Z", "2026-12-02T06:00:10Z"));
        assert_eq!(slim.metadata.name.as_deref(), Some("n2"));
        assert_eq!(slim.metadata.labels, None);
        let status = slim.status.expect("status");
        assert_eq!(status.images, None);
        let conditions = status.conditions.expect("conditions");
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].type_, "Ready");
    }

    #[test]
    fn only_a_readiness_change_of_a_node_counts_as_a_change() {
        let ready = slim_node(node("True", "2026-12-02T06:00:00Z", "2026-12-02T06:00:10Z"));
        let heartbeat = slim_node(node("True", "2026-12-02T06:00:00Z", "2026-12-02T06:00:20Z"));
        let lost = slim_node(node("Unknown", "2026-12-02T06:01:00Z", "2026-12-02T06:00:20Z"));
        assert!(node_changed(None, &ready));
        assert!(!node_changed(Some(&ready), &heartbeat));
        assert!(node_changed(Some(&heartbeat), &lost));
    }

    fn pod_on(name: &str, node: &str, phase: &str, owner: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ci", "ownerReferences": [{
                "apiVersion": "cicdoperator.ning1875.io/v1", "kind": "MyTaskRun", "name": owner,
                "uid": "u", "controller": true
            }]},
            "spec": {"nodeName": node, "containers": [{"name": "step-one", "image": "i"}]},
            "status": {"phase": phase}
        }))
        .expect("a pod")
    }

    #[test]
    fn a_cached_pod_keeps_its_node_and_the_runs_on_a_node_are_found() {
        let slim = slim_pod(pod_on("p1", "n2", "Running", "tr-1"));
        let spec = slim.spec.clone().expect("the spec keeps the node");
        assert_eq!(spec.node_name.as_deref(), Some("n2"));
        assert!(spec.containers.is_empty());
        let mut writer: Writer<Pod> = Writer::default();
        let reader = writer.as_reader();
        for pod in [
            slim,
            slim_pod(pod_on("p2", "n1", "Running", "tr-2")),
            slim_pod(pod_on("p3", "n2", "Succeeded", "tr-3")),
        ] {
            writer.apply_watcher_event(&Event::Apply(pod));
        }
        let runs = runs_on_node(&reader, "n2");
        assert_eq!(runs, vec![Key::new("ci".to_string(), "tr-1".to_string())]);
    }
}
