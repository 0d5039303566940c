//! The running controller: client, leader election, watches, HTTP.

pub mod admission;
pub mod classify;
pub mod context;
pub mod decode;
pub mod execute;
pub mod history;
#[cfg(test)]
pub mod mock_api;
pub mod pipelinerun;
pub mod results;
pub mod stream;
pub mod taskrun;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ApiResource;
use kube::runtime::controller::{Config as ControllerSettings, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client};
use kube_lease_manager::LeaseManagerBuilder;
use tracing::{error, info, warn};

use crate::api::{MyPipelineRun, MyTaskRun};
use crate::config::ControllerConfig;
use crate::error::Result;
use crate::http::{self, Probes};
use crate::metrics::Metrics;
use crate::pod::render::{LABEL_MANAGED_BY, MANAGED_BY, RenderSettings};
use crate::reconcile::taskrun::DecideSettings;

use context::Context;

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
    let ctx = Arc::new(Context {
        client: client.clone(),
        recorder: Recorder::new(client.clone(), reporter),
        settings: DecideSettings {
            render: RenderSettings {
                entrypoint_image: config.entrypoint_image.clone(),
                results: config.result_limits(),
                limits: config.limits.limits(),
            },
            default_timeout: config.default_timeout,
        },
        metrics,
        backoff: Default::default(),
        queues: queues.clone(),
        history: history::HistorySettings {
            default_ttl_seconds: config.default_ttl_seconds_after_finished,
        },
    });
    let namespace = config.watch_namespace.as_deref();
    // Runs are watched untyped, each object read and decoded on its own
    // (see `stream` and `decode`): one malformed or too-deep run fails alone.
    let run_resource = ApiResource::erase::<MyTaskRun>(&());
    let run_writer = reflector::store::Writer::new(run_resource.clone());
    let run_store = run_writer.as_reader();
    let runs = reflector::reflector(
        run_writer,
        stream::watch(client.clone(), &run_resource, namespace, None),
    );
    let pods: Api<Pod> = scoped(&client, namespace);
    let managed_pods = watcher::Config::default().labels(&format!("{LABEL_MANAGED_BY}={MANAGED_BY}"));
    let controller = Controller::for_stream_with(runs.applied_objects(), run_store, run_resource)
        .owns_with(pods, (), managed_pods)
        .reconcile_on(task_runs_woken)
        .with_config(ControllerSettings::default().concurrency(config.workers))
        .shutdown_on_signal()
        .run(taskrun::reconcile, taskrun::error_policy, ctx.clone())
        .for_each(|result| async move {
            if let Err(error) = result {
                warn!(%error, "reconcile error");
            }
        });
    // Pipeline runs own their task runs: a child's status change wakes its pipeline run.
    let pipeline_run_resource = ApiResource::erase::<MyPipelineRun>(&());
    let pipeline_run_writer = reflector::store::Writer::new(pipeline_run_resource.clone());
    let pipeline_run_store = pipeline_run_writer.as_reader();
    let pipeline_runs = reflector::reflector(
        pipeline_run_writer,
        stream::watch(client.clone(), &pipeline_run_resource, namespace, None),
    );
    let child_run_resource = ApiResource::erase::<MyTaskRun>(&());
    let children = stream::watch(
        client.clone(),
        &child_run_resource,
        namespace,
        Some(crate::pipeline::LABEL_PIPELINE_RUN),
    );
    let pipeline_controller = Controller::for_stream_with(
        pipeline_runs.applied_objects(),
        pipeline_run_store,
        pipeline_run_resource,
    )
    .owns_stream_with(children.touched_objects(), child_run_resource)
    .reconcile_on(pipeline_runs_woken)
    .with_config(ControllerSettings::default().concurrency(config.workers))
    .shutdown_on_signal()
    .run(pipelinerun::reconcile, pipelinerun::error_policy, ctx)
    .for_each(|result| async move {
        if let Err(error) = result {
            warn!(%error, "pipeline run reconcile error");
        }
    });
    let controller = futures::future::join(controller, pipeline_controller);
    info!(
        workers = config.workers,
        namespace = namespace.unwrap_or("<all>"),
        "controller started"
    );

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
