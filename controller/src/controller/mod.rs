//! The running controller: client, leader election, watches, HTTP.

pub mod admission;
pub mod classify;
pub mod context;
pub mod decode;
pub mod entrypoint_map;
pub mod execute;
pub mod history;
pub mod http_fetch;
#[cfg(test)]
pub mod mock_api;
pub mod pipelinerun;
pub mod queue;
pub mod registry;
pub mod resolver;
pub mod results;
pub mod runner;
pub mod stand_in;
pub mod status_writer;
pub mod stores;
pub mod stream;
pub mod taskrun;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod, ServiceAccount};
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::reflector::store::Writer;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::api::{MyPipeline, MyPipelineRun, MyStepAction, MyTask, MyTaskRun};
use crate::config::ControllerConfig;
use crate::error::Result;
use crate::http::{self, Probes};
use crate::metrics::Metrics;
use crate::pod::render::{LABEL_MANAGED_BY, MANAGED_BY, RenderSettings};
use crate::reconcile::taskrun::DecideSettings;

use context::{Context, Events};
use queue::FairQueue;
use runner::{Change, feed, key_of, owner_key};
use stand_in::slim_run;
use stores::{
    Stores, Versions, node_changed, pod_changed, runs_on_node, slim_node, slim_object, slim_pod, slim_service_account,
};

/// The Lease replicas compete for.
const LEASE_NAME: &str = "cicd-controller";
/// Seconds a leader holds the Lease without renewing it.
const LEASE_SECONDS: u64 = 15;

fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    <K as kube::Resource>::DynamicType: Default,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

/// A comma-separated flag's entries, trimmed, blanks dropped, each
/// through `normalize`.
fn list_setting(entries: &[String], normalize: fn(&str) -> String) -> Vec<String> {
    entries
        .iter()
        .map(|entry| normalize(entry.trim()))
        .filter(|entry| !entry.is_empty())
        .collect()
}

/// Runs until a signal arrives or leadership is lost.
pub async fn run(config: ControllerConfig) -> Result<()> {
    crate::telemetry::init(config.log_json);
    let client = Client::try_default().await?;
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    let probes = Probes {
        metrics: metrics.clone(),
        ready: ready.clone(),
    };
    let address = config.metrics_address;
    tokio::spawn(async move {
        if let Err(error) = http::serve(address, probes).await {
            error!(%error, "metrics server stopped");
        }
    });

    // Ready means healthy: able to reach the API server and to take over
    // if the leader goes. It must not wait for the lease, or a rolling
    // update (whose new pod is a follower until the old one stops) never
    // completes.
    match client.apiserver_version().await {
        Ok(version) => {
            info!(version = %version.git_version, "API server reachable");
            ready.store(true, Ordering::Relaxed);
        }
        Err(error) => return Err(error.into()),
    }

    // Our entrypoint ConfigMaps are watched (and made again when deleted)
    // from start-up, leader or not: in a rolling update the old leader is
    // gone for a lease's length before the new one takes over, and a
    // ConfigMap deleted then would otherwise stay missing for the pods
    // waiting to mount it. Making one again is idempotent (a second
    // replica's attempt gets a conflict).
    let entrypoint_maps = match &config.entrypoint_binary {
        Some(path) => Some(Arc::new(entrypoint_map::EntrypointMaps::load(path)?)),
        None => None,
    };
    if let Some(maps) = &entrypoint_maps {
        let (maps, client, namespace) = (maps.clone(), client.clone(), config.watch_namespace.clone());
        tokio::spawn(async move { maps.watch(client, namespace).await });
    }

    let identity = config
        .identity
        .clone()
        .unwrap_or_else(|| format!("cicd-controller-{}", std::process::id()));
    let mut leadership = None;
    if config.leader_elect {
        let manager = LeaseManagerBuilder::new(client.clone(), LEASE_NAME)
            .with_namespace(&config.lease_namespace)
            .with_identity(&identity)
            .with_duration(LEASE_SECONDS)
            .with_grace(5)
            .build()
            .await?;
        let (mut channel, task) = manager.watch().await;
        info!(%identity, "waiting to become leader");
        while !*channel.borrow_and_update() {
            if channel.changed().await.is_err() {
                warn!("lease manager stopped before we became leader");
                return Ok(());
            }
        }
        info!(%identity, "became leader");
        leadership = Some((channel, task));
    }

    let reporter = Reporter {
        controller: "cicd-controller".into(),
        instance: Some(identity),
    };
    // Concurrency groups wake the runs of a group through these (see `admission`).
    let queues = Arc::new(admission::Queues::new(config.max_running_pods_per_namespace));
    let (task_run_wakes, task_runs_woken) = futures::channel::mpsc::unbounded();
    let (pipeline_run_wakes, pipeline_runs_woken) = futures::channel::mpsc::unbounded();
    let _ = queues.task_runs.set(task_run_wakes);
    let _ = queues.pipeline_runs.set(pipeline_run_wakes);
    let (stores, writers) = Stores::new();
    let ctx = Arc::new(Context {
        client: client.clone(),
        events: Events::start(Recorder::new(client.clone(), reporter)),
        stores,
        versions: Versions::default(),
        pacing: Default::default(),
        settings: DecideSettings {
            render: RenderSettings {
                entrypoint_image: config.entrypoint_image.clone(),
                results: config.result_limits(),
                limits: config.limits.limits(),
            },
            default_timeout: config.default_timeout,
            node_lost_after: config.node_lost_after,
        },
        metrics,
        backoff: Default::default(),
        queues: queues.clone(),
        history: history::HistorySettings {
            default_ttl_seconds: config.default_ttl_seconds_after_finished,
        },
        resolver: resolver::ResolverSettings {
            timeout: config.resolver_timeout,
            cluster_namespaces: list_setting(&config.cluster_resolver_namespaces, str::to_string),
            // Hosts compare case-insensitively (`remote::url_host` lowercases).
            allowed_hosts: list_setting(&config.resolver_allowed_hosts, str::to_ascii_lowercase),
        },
        resolutions: Default::default(),
        registry: registry::RegistrySettings {
            endpoints: config.registry_endpoints.clone(),
            allowed_hosts: list_setting(&config.registry_allowed_hosts, str::to_ascii_lowercase),
            timeout: config.resolver_timeout,
        },
        images: Default::default(),
        entrypoint_maps,
    });
    let namespace = config.watch_namespace.as_deref();
    let (stop, stopped) = watch::channel(false);
    let wakes = Wakes {
        task_runs: task_runs_woken,
        pipeline_runs: pipeline_runs_woken,
    };
    let controller = start(
        &client,
        namespace,
        writers,
        ctx,
        Workers {
            per_kind: usize::from(config.workers),
            per_namespace: usize::from(config.workers_per_namespace),
        },
        stopped,
        wakes,
    );
    info!(
        workers = config.workers,
        workers_per_namespace = config.workers_per_namespace,
        namespace = namespace.unwrap_or("<all>"),
        "controller started"
    );
    let controller = async move {
        tokio::pin!(controller);
        tokio::select! {
            _ = &mut controller => return,
            _ = shutdown_signal() => {
                info!("signal received; finishing the reconciles in progress");
                let _ = stop.send(true);
            }
        }
        controller.await;
    };

    match leadership {
        None => {
            controller.await;
        }
        Some((mut channel, _task)) => {
            let lost = async move {
                while channel.changed().await.is_ok() {
                    if !*channel.borrow() {
                        return;
                    }
                }
            };
            tokio::select! {
                _ = controller => {}
                _ = lost => {
                    // Another replica may already be reconciling: stop at
                    // once; the Deployment restarts us as a follower.
                    error!("lost the leader lease; exiting");
                    ready.store(false, Ordering::Relaxed);
                    std::process::exit(1);
                }
            }
        }
    }
    Ok(())
}

/// Waits for SIGTERM (what Kubernetes sends) or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(error) => {
                warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the controller");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The reconcile of MyTaskRuns, for the workers.
struct TaskRuns;

impl runner::Reconciler for TaskRuns {
    fn reconcile(
        &self,
        object: Arc<DynamicObject>,
        ctx: Arc<Context>,
    ) -> impl std::future::Future<Output = Result<context::Requeue>> + Send {
        taskrun::reconcile(object, ctx)
    }

    fn error_policy(
        &self,
        object: Arc<DynamicObject>,
        error: &crate::error::Error,
        ctx: Arc<Context>,
    ) -> context::Requeue {
        taskrun::error_policy(object, error, ctx)
    }
}

/// The reconcile of MyPipelineRuns, for the workers.
struct PipelineRuns;

impl runner::Reconciler for PipelineRuns {
    fn reconcile(
        &self,
        object: Arc<DynamicObject>,
        ctx: Arc<Context>,
    ) -> impl std::future::Future<Output = Result<context::Requeue>> + Send {
        pipelinerun::reconcile(object, ctx)
    }

    fn error_policy(
        &self,
        object: Arc<DynamicObject>,
        error: &crate::error::Error,
        ctx: Arc<Context>,
    ) -> context::Requeue {
        pipelinerun::error_policy(object, error, ctx)
    }
}

/// Starts every watch and both kinds' workers; the future ends when the
/// workers have stopped (after `stop` turns true).
///
/// Watches: task runs and pipeline runs (untyped, each object decoded on
/// its own, see `stream`), our pods, nodes, MyTasks and MyPipelines.
/// Triggers: a run's own change queues it; a pod's status change queues the
/// task run that controls it; a node's readiness change queues the task runs
/// with an unfinished pod on it; a task run's change queues the pipeline run
/// that controls it. Tasks and pipelines only fill caches (as before, a change
/// of a MyTask does not wake its runs).
/// Runs a concurrency group asks to look at again (see `admission`): a run
/// that finished frees a slot, so the group's waiting runs are queued at once.
struct Wakes {
    task_runs: futures::channel::mpsc::UnboundedReceiver<ObjectRef<DynamicObject>>,
    pipeline_runs: futures::channel::mpsc::UnboundedReceiver<ObjectRef<DynamicObject>>,
}

/// Feeds woken runs into their fair queue.
async fn wake_into(woken: futures::channel::mpsc::UnboundedReceiver<ObjectRef<DynamicObject>>, queue: Arc<FairQueue>) {
    woken
        .for_each(|run| {
            if let Some(namespace) = run.namespace {
                queue.push(queue::Key::new(namespace, run.name));
            }
            futures::future::ready(())
        })
        .await;
}

/// How many reconciles run at once.
#[derive(Debug, Clone, Copy)]
struct Workers {
    /// For each kind (task runs, pipeline runs).
    per_kind: usize,
    /// Of one namespace, per kind (0: no cap); see `FairQueue`.
    per_namespace: usize,
}

fn start(
    client: &Client,
    namespace: Option<&str>,
    writers: stores::StoreWriters,
    ctx: Arc<Context>,
    workers: Workers,
    stopped: watch::Receiver<bool>,
    wakes: Wakes,
) -> impl std::future::Future<Output = ()> + Send + use<> {
    let run_queue = Arc::new(FairQueue::with_namespace_cap(workers.per_namespace));
    let pipeline_queue = Arc::new(FairQueue::with_namespace_cap(workers.per_namespace));

    let run_resource = ApiResource::erase::<MyTaskRun>(&());
    let run_writer = Writer::new(run_resource.clone());
    let run_store = run_writer.as_reader();
    let runs = {
        let (runs, pipelines, ctx) = (run_queue.clone(), pipeline_queue.clone(), ctx.clone());
        feed(
            stream::watch(client.clone(), &run_resource, namespace, None),
            run_writer,
            run_resource.clone(),
            slim_run,
            move |change| {
                let (object, deleted) = match change {
                    Change::Applied { new, .. } => (new, false),
                    Change::Deleted(object) => (object, true),
                };
                if let Some(parent) = owner_key(&object.metadata, "MyPipelineRun") {
                    pipelines.push(parent);
                }
                let Some(key) = key_of(&object.metadata) else { return };
                if deleted {
                    ctx.versions
                        .forget(&context::object_key("MyTaskRun", &key.namespace, &key.name));
                    ctx.backoff
                        .succeeded(&context::object_key("MyTaskRun", &key.namespace, &key.name));
                    runs.forget(&key);
                } else {
                    runs.push(key);
                }
            },
        )
    };

    let pipeline_resource = ApiResource::erase::<MyPipelineRun>(&());
    let pipeline_writer = Writer::new(pipeline_resource.clone());
    let pipeline_store = pipeline_writer.as_reader();
    let pipeline_runs = {
        let (queue, ctx) = (pipeline_queue.clone(), ctx.clone());
        feed(
            stream::watch(client.clone(), &pipeline_resource, namespace, None),
            pipeline_writer,
            pipeline_resource.clone(),
            slim_run,
            move |change| match change {
                Change::Applied { new, .. } => {
                    if let Some(key) = key_of(&new.metadata) {
                        queue.push(key);
                    }
                }
                Change::Deleted(object) => {
                    if let Some(key) = key_of(&object.metadata) {
                        let backoff_key = context::object_key("MyPipelineRun", &key.namespace, &key.name);
                        ctx.versions.forget(&backoff_key);
                        ctx.backoff.succeeded(&backoff_key);
                        queue.forget(&key);
                    }
                }
            },
        )
    };

    let pods: Api<Pod> = scoped(client, namespace);
    let managed = watcher::Config::default().labels(&format!("{LABEL_MANAGED_BY}={MANAGED_BY}"));
    let pods = {
        let queue = run_queue.clone();
        feed(
            watcher(pods, managed).default_backoff(),
            writers.pods,
            (),
            slim_pod,
            move |change| {
                let owner = match change {
                    Change::Applied { old, new } if pod_changed(old.as_deref(), new) => {
                        owner_key(&new.metadata, "MyTaskRun")
                    }
                    Change::Applied { .. } => None,
                    Change::Deleted(pod) => owner_key(&pod.metadata, "MyTaskRun"),
                };
                if let Some(owner) = owner {
                    queue.push(owner);
                }
            },
        )
    };

    // Nodes: a change of a node's readiness wakes the runs with a pod on
    // it, which judge whether the node is lost (see `pod::node`).
    let nodes: Api<Node> = Api::all(client.clone());
    let nodes = {
        let (queue, pods) = (run_queue.clone(), ctx.stores.pods.clone());
        feed(
            watcher(nodes, watcher::Config::default()).default_backoff(),
            writers.nodes,
            (),
            slim_node,
            move |change| {
                let node = match change {
                    Change::Applied { old, new } if node_changed(old.as_deref(), new) => new,
                    Change::Applied { .. } => return,
                    Change::Deleted(node) => node,
                };
                for run in runs_on_node(&pods, &node.name_any()) {
                    queue.push(run);
                }
            },
        )
    };

    // ServiceAccounts: read when an attempt starts (credentials), never a
    // reason to reconcile.
    let accounts: Api<ServiceAccount> = scoped(client, namespace);
    let accounts = feed(
        watcher(accounts, watcher::Config::default()).default_backoff(),
        writers.service_accounts,
        (),
        slim_service_account,
        |_| {},
    );

    let task_resource = ApiResource::erase::<MyTask>(&());
    let tasks = feed(
        stream::watch(client.clone(), &task_resource, namespace, None),
        writers.tasks,
        task_resource.clone(),
        slim_object,
        |_| {},
    );
    let pipeline_def_resource = ApiResource::erase::<MyPipeline>(&());
    let pipelines = feed(
        stream::watch(client.clone(), &pipeline_def_resource, namespace, None),
        writers.pipelines,
        pipeline_def_resource.clone(),
        slim_object,
        |_| {},
    );

    // MyStepActions: read when an attempt starts, never a reason to reconcile.
    let step_action_resource = ApiResource::erase::<MyStepAction>(&());
    let step_actions = feed(
        stream::watch(client.clone(), &step_action_resource, namespace, None),
        writers.step_actions,
        step_action_resource.clone(),
        slim_object,
        |_| {},
    );

    let woken = futures::future::join(
        wake_into(wakes.task_runs, run_queue.clone()),
        wake_into(wakes.pipeline_runs, pipeline_queue.clone()),
    );
    let run_workers = runner::work(
        workers.per_kind,
        run_queue,
        run_store,
        run_resource,
        ctx.clone(),
        Arc::new(TaskRuns),
        stopped.clone(),
    );
    let pipeline_workers = runner::work(
        workers.per_kind,
        pipeline_queue,
        pipeline_store,
        pipeline_resource,
        ctx,
        Arc::new(PipelineRuns),
        stopped,
    );
    async move {
        let feeds = async {
            futures::join!(
                runs,
                pipeline_runs,
                pods,
                nodes,
                accounts,
                tasks,
                pipelines,
                step_actions,
                woken
            );
        };
        // The watches never end; the workers end on `stop`.
        tokio::select! {
            _ = feeds => warn!("the watches ended"),
            _ = futures::future::join(run_workers, pipeline_workers) => {}
        }
    }
}
