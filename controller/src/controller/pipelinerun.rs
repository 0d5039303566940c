//! The MyPipelineRun reconciler: fetch what `decide` needs, carry out what
//! it returns. All judgement lives in `reconcile::pipelinerun`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ApiResource, DynamicObject};
use kube::{Resource as _, ResourceExt};
use tracing::info;

use crate::api::{Condition, MyPipeline, MyPipelineRun, MyTaskRun, PipelineRunStatus, PipelineSpec, TaskSpec};
use crate::error::{Error, Result};
use crate::metrics::ReasonLabel;
use crate::pipeline::LABEL_PIPELINE_RUN;
use crate::pipeline::propagate::{with_declared_workspaces_propagated, with_propagated_workspaces};
use crate::reconcile::owner::is_controlled_by;
use crate::reconcile::pipelinerun::{
    Action, Observed, PipelineLookup, decide, is_done, run_label, succeeded_condition,
};

use super::context::{Context, Requeue, object_key};
use super::decode::{Loaded, decode, load_run};
use super::execute::{RunKind, Work, execute};
use super::resolver::{Resolution, RunKey};

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
        Loaded::Wait(requeue) => Ok(requeue),
        // Finished (or gone): its group and its history (see `history`).
        Loaded::Done(requeue) => super::history::after_finish::<MyPipelineRun>(cached, requeue, ctx).await,
    }
}

async fn reconcile_run(run: &MyPipelineRun, ctx: &Context) -> Result<Requeue> {
    let namespace = run.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let fetched = fetch_pipeline(run, &namespace, ctx).await?;
    let resolution: Resolution<PipelineSpec>;
    let propagated: PipelineSpec;
    let snapshot = run.status.as_ref().and_then(|s| s.pipeline_spec.as_ref());
    let pipeline = match (
        &run.spec.pipeline_ref,
        &run.spec.pipeline_spec,
        &run.spec.remote_pipeline,
    ) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) | (_, Some(_), Some(_)) | (None, None, None) => {
            PipelineLookup::Unspecified
        }
        // The snapshot already has the propagated workspaces (no work per reconcile).
        (None, Some(_), None) if let Some(spec) = snapshot => PipelineLookup::Inline(spec),
        (None, Some(inline), None) => {
            propagated = with_propagated_workspaces(inline, &run.spec.workspaces);
            PipelineLookup::Inline(&propagated)
        }
        (Some(name), None, None) => match &fetched {
            Some(Ok(found)) => {
                propagated = with_declared_workspaces_propagated(&found.spec);
                PipelineLookup::Found {
                    name,
                    spec: &propagated,
                }
            }
            Some(Err(problem)) => PipelineLookup::Malformed { name, problem },
            // Not found, or not fetched because the snapshot in the status is used.
            None => PipelineLookup::Missing { name },
        },
        (None, None, Some(remote)) => match snapshot {
            // Fetched when the run started: the snapshot, under the fetched name.
            Some(spec) => PipelineLookup::Found {
                name: run
                    .status
                    .as_ref()
                    .and_then(|s| s.resolved_from.as_ref())
                    .map_or("", |from| from.name.as_str()),
                spec,
            },
            None => {
                let key = RunKey {
                    kind: "MyPipelineRun",
                    namespace: &namespace,
                    name: &run.name_any(),
                    uid: run.metadata.uid.as_deref().unwrap_or_default(),
                };
                resolution = super::resolver::pipeline(ctx, key, remote).await?;
                match &resolution {
                    Resolution::Found(found) => {
                        propagated = with_declared_workspaces_propagated(&found.spec);
                        PipelineLookup::Resolved {
                            name: &found.from.name,
                            spec: &propagated,
                            from: &found.from,
                        }
                    }
                    Resolution::Fetching(what) => PipelineLookup::Resolving { what },
                    Resolution::Failed(problem) => PipelineLookup::Unresolved { problem },
                }
            }
        },
    };
    // Concurrency groups (see `admission`): a queued run stops here, before any child.
    let definition = super::admission::pipeline_definition(run, &pipeline);
    let (replaced, _slot) = match super::admission::gate(run, definition, ctx).await? {
        super::admission::Gate::Go { run, slot } => (run, slot),
        super::admission::Gate::Stop(requeue) => return Ok(requeue),
    };
    let run = replaced.as_deref().unwrap_or(run);
    let mut problems = Vec::new();
    let spec = run
        .status
        .as_ref()
        .and_then(|s| s.pipeline_spec.as_ref())
        .or(match pipeline {
            PipelineLookup::Found { spec, .. }
            | PipelineLookup::Resolved { spec, .. }
            | PipelineLookup::Inline(spec) => Some(spec),
            _ => None,
        });
    let tasks = match spec {
        Some(spec) => fetch_tasks(spec, &namespace, ctx, &mut problems).await?,
        None => BTreeMap::new(),
    };
    let children = fetch_children(run, &namespace, ctx, &mut problems).await?;

    let observed = Observed {
        run,
        pipeline,
        tasks: &tasks,
        children: &children,
        problems: &problems,
        now: Timestamp::now(),
    };
    let actions = decide(observed, ctx.settings.default_timeout, &ctx.settings.render.limits);
    execute(run, actions.into_iter().map(Work::from).collect(), ctx).await
}

/// The run's MyPipeline, decoded on its own so a malformed one fails this
/// run with the field named. None if it is missing or need not be read
/// (the run's snapshot is used once it has one).
async fn fetch_pipeline(
    run: &MyPipelineRun,
    namespace: &str,
    ctx: &Context,
) -> Result<Option<Result<MyPipeline, String>>> {
    let has_snapshot = run.status.as_ref().is_some_and(|s| s.pipeline_spec.is_some());
    let (Some(name), None, false) = (&run.spec.pipeline_ref, &run.spec.pipeline_spec, has_snapshot) else {
        return Ok(None);
    };
    // Only the run's own namespace: a run must not reach into another tenant's pipelines.
    // Decoded on its own: a too-deep MyPipeline is reported, not retried.
    // From the cache; read from the API server if the cache lacks it.
    ctx.stores.pipeline(&ctx.client, namespace, name).await
}

/// The MyTasks the pipeline names, each read by name and decoded on its
/// own. A malformed one is a problem of this run, named with its field.
async fn fetch_tasks(
    spec: &PipelineSpec,
    namespace: &str,
    ctx: &Context,
    problems: &mut Vec<String>,
) -> Result<BTreeMap<String, TaskSpec>> {
    let referenced: BTreeSet<&str> = spec
        .all_tasks()
        .filter(|task| task.task_spec.is_none())
        .filter_map(|task| task.task_ref.as_deref())
        .filter(|name| !name.is_empty())
        .collect();
    let mut tasks = BTreeMap::new();
    for name in referenced {
        match ctx.stores.task(&ctx.client, namespace, name).await? {
            Some(Ok(task)) => {
                tasks.insert(name.to_string(), task.spec);
            }
            Some(Err(problem)) => problems.push(format!("MyTask {name:?} cannot be read: {problem}")),
            None => {} // resolves as missing
        }
    }
    Ok(tasks)
}

/// This run's children, decoded one by one. Objects that carry our label
/// but are not controlled by this run are left out unread; a malformed
/// child of ours is a problem of this run.
async fn fetch_children(
    run: &MyPipelineRun,
    namespace: &str,
    ctx: &Context,
    problems: &mut Vec<String>,
) -> Result<Vec<MyTaskRun>> {
    let uid = run.metadata.uid.clone().unwrap_or_default();
    let resource = ApiResource::erase::<MyTaskRun>(&());
    let url = DynamicObject::url_path(&resource, Some(namespace));
    let selector = format!("{LABEL_PIPELINE_RUN}={}", run_label(&run.name_any()));
    let mut children = Vec::new();
    // Each child read on its own (see `stream`): a too-deep one is a problem
    // of this run, not an error of the whole list.
    let (objects, _) = super::stream::list(&ctx.client, &url, Some(&selector)).await?;
    for object in objects {
        if !is_controlled_by(&object.metadata, &uid) {
            continue;
        }
        match decode::<MyTaskRun>(&object) {
            Ok(child) => children.push(child),
            Err(problem) => problems.push(format!("MyTaskRun {:?} cannot be read: {problem}", object.name_any())),
        }
    }
    Ok(children)
}

impl From<Action> for Work<PipelineRunStatus> {
    fn from(action: Action) -> Self {
        match action {
            Action::CreateClaim(claim) => Work::CreateClaim(claim),
            Action::CreateChild(child) => Work::CreateChild(child),
            Action::CancelChild(name) => Work::CancelChild(name),
            Action::Publish(notice) => Work::Publish(notice),
            Action::WriteStatus(status) => Work::WriteStatus(status),
            Action::RequeueAfter(after) => Work::RequeueAfter(after),
        }
    }
}

impl RunKind for MyPipelineRun {
    type Status = PipelineRunStatus;
    const KIND: &'static str = "MyPipelineRun";

    fn status(&self) -> Option<&PipelineRunStatus> {
        self.status.as_ref()
    }

    fn conditions(status: &mut PipelineRunStatus) -> &mut Vec<Condition> {
        &mut status.conditions
    }

    fn completion_time(status: &mut PipelineRunStatus) -> &mut Option<Time> {
        &mut status.completion_time
    }

    fn children(status: &PipelineRunStatus) -> Vec<String> {
        status.child_references.iter().map(|c| c.name.clone()).collect()
    }

    fn written(ctx: &Context, run: &MyPipelineRun, status: &PipelineRunStatus) {
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
    }
}

pub fn error_policy(run: Arc<DynamicObject>, error: &Error, ctx: Arc<Context>) -> Requeue {
    let key = object_key("MyPipelineRun", &run.namespace().unwrap_or_default(), &run.name_any());
    ctx.requeue_after_error(&key, error)
}
