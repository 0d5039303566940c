//! The MyTaskRun reconciler: fetch what `decide` needs, carry out what it
//! returns. All judgement lives in `reconcile::taskrun`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action as Requeue;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tracing::info;

use crate::api::{MyTask, MyTaskRun, TaskRunStatus, TaskSpec};
use crate::error::{Error, Result};
use crate::metrics::ReasonLabel;
use crate::names;
use crate::pod::status::Succeeded;
use crate::reason;
use crate::reconcile::conditions::set_succeeded;
use crate::reconcile::taskrun::{Action, Observed, TaskLookup, current_attempt, decide, is_done, succeeded_condition};

use super::context::{Context, FIELD_MANAGER, is_status, sooner};
use super::decode::{Loaded, get_decoded, load_run};

pub async fn reconcile(object: Arc<DynamicObject>, ctx: Arc<Context>) -> Result<Requeue> {
    let started = Instant::now();
    ctx.metrics.reconciles.inc();
    let result = reconcile_object(&object, &ctx).await;
    ctx.metrics.reconcile_duration.observe(started.elapsed().as_secs_f64());
    result
}

async fn reconcile_object(cached: &DynamicObject, ctx: &Context) -> Result<Requeue> {
    let finished = |run: &MyTaskRun| is_done(run.status.as_ref());
    match load_run::<MyTaskRun>(cached, reason::VALIDATION_FAILED, finished, ctx).await? {
        Loaded::Run(run) => reconcile_run(&run, ctx).await,
        Loaded::Done(requeue) => Ok(requeue),
    }
}

async fn reconcile_run(run: &MyTaskRun, ctx: &Context) -> Result<Requeue> {
    let namespace = run.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let name = run.name_any();

    let empty = TaskSpec::default();
    let fetched: Option<Result<MyTask, String>>;
    let snapshot = run.status.as_ref().and_then(|s| s.task_spec.as_ref());
    let task = match (&run.spec.task_ref, &run.spec.task_spec, snapshot) {
        (_, Some(inline), _) => TaskLookup::Inline(inline),
        (Some(task_name), None, Some(spec)) => TaskLookup::Found { name: task_name, spec },
        (Some(task_name), None, None) => {
            // Only the run's own namespace: a run must not reach into another tenant's tasks.
            // Read and decoded on its own: a too-deep MyTask is reported, not retried.
            fetched = get_decoded::<MyTask>(&ctx.client, &namespace, task_name).await?;
            match &fetched {
                Some(Ok(task)) => TaskLookup::Found {
                    name: task_name,
                    spec: &task.spec,
                },
                Some(Err(problem)) => TaskLookup::Malformed {
                    name: task_name,
                    problem,
                },
                None => TaskLookup::Missing { name: task_name },
            }
        }
        // Neither taskRef nor taskSpec: validation reports it.
        (None, None, _) => TaskLookup::Inline(&empty),
    };
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let pod = pods.get_opt(&names::pod_name(&name, current_attempt(run))).await?;

    let actions = decide(
        Observed {
            run,
            task,
            pod: pod.as_ref(),
            now: Timestamp::now(),
        },
        &ctx.settings,
    );
    execute(run, &namespace, actions, ctx).await
}

/// Replaces the run's condition with a failure, for errors found only when
/// carrying out the plan (the API server rejected the pod).
fn failed_status(mut status: TaskRunStatus, why: &str, message: String) -> TaskRunStatus {
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::now());
    set_succeeded(
        &mut status.conditions,
        Succeeded::False.as_str(),
        why,
        message,
        now.clone(),
    );
    status.completion_time = Some(now);
    status
}

async fn execute(run: &MyTaskRun, namespace: &str, actions: Vec<Action>, ctx: &Context) -> Result<Requeue> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), namespace);
    let runs: Api<MyTaskRun> = Api::namespaced(ctx.client.clone(), namespace);
    let reference = run.object_ref(&());
    let mut requeue: Option<Duration> = None;
    let mut rejected: Option<String> = None;

    for action in actions {
        match action {
            Action::CreateClaim(claim) => match claims.create(&PostParams::default(), &claim).await {
                Ok(_) => {}
                Err(error) if is_status(&error, 409) => {} // made by an earlier reconcile
                Err(error) => return Err(error.into()),
            },
            Action::CreatePod(pod) => {
                let pod_name = pod.metadata.name.clone().unwrap_or_default();
                match pods
                    .create(
                        &PostParams {
                            field_manager: Some(FIELD_MANAGER.into()),
                            ..Default::default()
                        },
                        &pod,
                    )
                    .await
                {
                    Ok(_) => {
                        info!(run = %run.name_any(), pod = %pod_name, "created pod");
                        if current_attempt(run) == 0 {
                            ctx.metrics.runs_started.inc();
                        }
                    }
                    // Deterministic names: the pod exists, so an earlier
                    // reconcile (maybe of a previous controller) made it. Adopt it.
                    Err(error) if is_status(&error, 409) => info!(pod = %pod_name, "adopted existing pod"),
                    // The API server refuses this pod for good (bad volume,
                    // admission): say so in the run instead of retrying forever.
                    Err(kube::Error::Api(status))
                        if status.code == 400
                            || status.code == 422
                            || (status.code == 403 && !status.message.contains("quota")) =>
                    {
                        rejected = Some(format!("pod {pod_name} was rejected: {}", status.message));
                    }
                    Err(error) => return Err(error.into()),
                }
            }
            Action::StopPod(pod_name) => {
                // Lowering activeDeadlineSeconds makes the kubelet stop every
                // container but keeps the pod and its logs.
                let patch = json!({ "spec": { "activeDeadlineSeconds": 1 } });
                match pods
                    .patch(&pod_name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => info!(pod = %pod_name, "stopping pod"),
                    Err(error) if is_status(&error, 404) || is_status(&error, 422) => {}
                    Err(error) => return Err(error.into()),
                }
            }
            Action::Publish(notice) => {
                ctx.publish(&reference, notice.warning, &notice.reason, &notice.message)
                    .await
            }
            Action::WriteStatus(status) => {
                let status = match rejected.take() {
                    Some(message) => {
                        ctx.publish(&reference, true, reason::POD_CREATION_FAILED, &message)
                            .await;
                        failed_status(*status, reason::POD_CREATION_FAILED, message)
                    }
                    None => *status,
                };
                write_status(&runs, run, &status, ctx).await?;
            }
            Action::RequeueAfter(after) => requeue = sooner(requeue, after),
        }
    }
    Ok(match requeue {
        Some(after) => Requeue::requeue(after),
        None => Requeue::await_change(),
    })
}

async fn write_status(runs: &Api<MyTaskRun>, run: &MyTaskRun, status: &TaskRunStatus, ctx: &Context) -> Result<()> {
    let patch = json!({
        "apiVersion": crate::api::API_VERSION,
        "kind": "MyTaskRun",
        "status": status,
    });
    runs.patch_status(
        &run.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    let finished = succeeded_condition(Some(status)).filter(|c| c.status != "Unknown");
    if let Some(condition) = finished {
        ctx.metrics
            .runs_finished
            .get_or_create(&ReasonLabel {
                reason: condition.reason.clone(),
            })
            .inc();
        if let (Some(start), Some(end)) = (&status.start_time, &status.completion_time) {
            let seconds = (end.0.as_millisecond() - start.0.as_millisecond()) as f64 / 1000.0;
            ctx.metrics.run_duration.observe(seconds.max(0.0));
        }
        info!(run = %run.name_any(), reason = %condition.reason, "run finished");
    }
    Ok(())
}

pub fn error_policy(run: Arc<DynamicObject>, error: &Error, ctx: Arc<Context>) -> Requeue {
    ctx.requeue_after_error(&format!("MyTaskRun {}", run.name_any()), error)
}
