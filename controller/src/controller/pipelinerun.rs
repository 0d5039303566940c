//! The MyPipelineRun reconciler: fetch what `decide` needs, carry out what
//! it returns. All judgement lives in `reconcile::pipelinerun`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action as Requeue;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tracing::{info, warn};

use crate::api::{MyPipeline, MyPipelineRun, MyTask, MyTaskRun, PipelineRunStatus, TaskSpec};
use crate::error::{Error, Result};
use crate::metrics::ReasonLabel;
use crate::pipeline::LABEL_PIPELINE_RUN;
use crate::reconcile::pipelinerun::{
    Action, Observed, PipelineLookup, decide, is_done, run_label, succeeded_condition,
};

use super::context::{Context, FIELD_MANAGER, is_status, sooner};
use super::decode::{Loaded, decode, dynamic_api, load_run};

pub async fn reconcile(object: Arc<DynamicObject>, ctx: Arc<Context>) -> Result<Requeue> {
    let started = Instant::now();
    ctx.metrics.pipeline_reconciles.inc();
    let result = reconcile_object(&object, &ctx).await;
    ctx.metrics.reconcile_duration.observe(started.elapsed().as_secs_f64());
    result
}

async fn reconcile_object(cached: &DynamicObject, ctx: &Context) -> Result<Requeue> {
    let finished = |run: &MyPipelineRun| is_done(run.status.as_ref());
    match load_run::<MyPipelineRun>(cached, crate::reason::PIPELINE_VALIDATION_FAILED, finished, ctx).await? {
        Loaded::Run(run) => reconcile_run(&run, ctx).await,
        Loaded::Done(requeue) => Ok(requeue),
    }
}

async fn reconcile_run(run: &MyPipelineRun, ctx: &Context) -> Result<Requeue> {
    let namespace = run.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let name = run.name_any();

    let has_snapshot = run.status.as_ref().is_some_and(|s| s.pipeline_spec.is_some());
    let fetched: Option<MyPipeline>;
    let pipeline = match (&run.spec.pipeline_ref, &run.spec.pipeline_spec) {
        (Some(_), Some(_)) | (None, None) => PipelineLookup::Unspecified,
        (None, Some(inline)) => PipelineLookup::Inline(inline),
        // The snapshot in the status is used instead; no need to fetch.
        (Some(pipeline_name), None) if has_snapshot => PipelineLookup::Missing { name: pipeline_name },
        (Some(pipeline_name), None) => {
            // Only the run's own namespace: a run must not reach into another tenant's pipelines.
            fetched = Api::<MyPipeline>::namespaced(ctx.client.clone(), &namespace)
                .get_opt(pipeline_name)
                .await?;
            match &fetched {
                Some(found) => PipelineLookup::Found {
                    name: pipeline_name,
                    spec: &found.spec,
                },
                None => PipelineLookup::Missing { name: pipeline_name },
            }
        }
    };

    // Decoded one by one: a malformed MyTask must not break every pipeline
    // of the namespace; it is left out (and resolves as missing).
    let (task_api, _) = dynamic_api::<MyTask>(&ctx.client, Some(&namespace));
    let mut tasks: BTreeMap<String, TaskSpec> = BTreeMap::new();
    for object in task_api.list(&ListParams::default()).await?.items {
        match decode::<MyTask>(&object) {
            Ok(task) => {
                tasks.insert(task.name_any(), task.spec);
            }
            Err(problem) => warn!(task = %object.name_any(), %problem, "skipping malformed MyTask"),
        }
    }
    let children = Api::<MyTaskRun>::namespaced(ctx.client.clone(), &namespace)
        .list(&ListParams::default().labels(&format!("{LABEL_PIPELINE_RUN}={}", run_label(&name))))
        .await?
        .items;

    let observed = Observed {
        run,
        pipeline,
        tasks: &tasks,
        children: &children,
        now: Timestamp::now(),
    };
    let actions = decide(observed, ctx.settings.default_timeout);
    execute(run, &namespace, actions, ctx).await
}

async fn execute(run: &MyPipelineRun, namespace: &str, actions: Vec<Action>, ctx: &Context) -> Result<Requeue> {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), namespace);
    let task_runs: Api<MyTaskRun> = Api::namespaced(ctx.client.clone(), namespace);
    let runs: Api<MyPipelineRun> = Api::namespaced(ctx.client.clone(), namespace);
    let reference = run.object_ref(&());
    let mut requeue: Option<Duration> = None;

    for action in actions {
        match action {
            Action::CreateClaim(claim) => match claims.create(&PostParams::default(), &claim).await {
                Ok(_) => info!(run = %run.name_any(), claim = %claim.name_any(), "created claim"),
                Err(error) if is_status(&error, 409) => {} // made by an earlier reconcile
                Err(error) => return Err(error.into()),
            },
            Action::CreateChild(child) => {
                let child_name = child.name_any();
                let params = PostParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..Default::default()
                };
                match task_runs.create(&params, &child).await {
                    Ok(_) => info!(run = %run.name_any(), child = %child_name, "created task run"),
                    // Deterministic names: an earlier reconcile (maybe of a
                    // previous controller) made it. Adopt it.
                    Err(error) if is_status(&error, 409) => info!(child = %child_name, "adopted existing task run"),
                    Err(error) => return Err(error.into()),
                }
            }
            Action::CancelChild(child_name) => {
                let patch = json!({ "spec": { "status": "Cancelled" } });
                match task_runs
                    .patch(&child_name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => info!(child = %child_name, "cancelled task run"),
                    Err(error) if is_status(&error, 404) => {}
                    Err(error) => return Err(error.into()),
                }
            }
            Action::Publish(notice) => {
                ctx.publish(&reference, notice.warning, &notice.reason, &notice.message)
                    .await
            }
            Action::WriteStatus(status) => write_status(&runs, run, &status, ctx).await?,
            Action::RequeueAfter(after) => requeue = sooner(requeue, after),
        }
    }
    Ok(match requeue {
        Some(after) => Requeue::requeue(after),
        None => Requeue::await_change(),
    })
}

async fn write_status(
    runs: &Api<MyPipelineRun>,
    run: &MyPipelineRun,
    status: &PipelineRunStatus,
    ctx: &Context,
) -> Result<()> {
    let patch = json!({
        "apiVersion": crate::api::API_VERSION,
        "kind": "MyPipelineRun",
        "status": status,
    });
    runs.patch_status(
        &run.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    let was_started = run.status.as_ref().is_some_and(|s| !s.child_references.is_empty());
    if !was_started && !status.child_references.is_empty() {
        ctx.metrics.pipeline_runs_started.inc();
    }
    if let Some(condition) = succeeded_condition(Some(status)).filter(|c| c.status != "Unknown") {
        ctx.metrics
            .pipeline_runs_finished
            .get_or_create(&ReasonLabel {
                reason: condition.reason.clone(),
            })
            .inc();
        info!(run = %run.name_any(), reason = %condition.reason, "pipeline run finished");
    }
    Ok(())
}

pub fn error_policy(run: Arc<DynamicObject>, error: &Error, ctx: Arc<Context>) -> Requeue {
    ctx.requeue_after_error(&format!("MyPipelineRun {}", run.name_any()), error)
}
