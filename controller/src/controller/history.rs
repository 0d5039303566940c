//! Run history, carried out: a finished run is deleted `ttlSecondsAfterFinished`
//! after it completed, and a MyTask's or MyPipeline's history limits are
//! kept when one of its runs finishes (decisions in `reconcile::history`).
//!
//! Runs are deleted with `propagationPolicy: Background` and their uid as
//! a precondition: their pods and claims carry an owner reference to the
//! run, so the garbage collector removes them too, and a new run that took
//! the name is never deleted in its place. Only runs nobody else controls
//! are deleted: a pipeline's child runs go with their pipeline run, and are
//! never counted in a task's history.

use std::time::Duration;

use super::context::Requeue;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ApiResource, DeleteParams, DynamicObject, Preconditions};
use kube::{Api, Resource as _, ResourceExt};
use serde_json::Value;
use tracing::{info, warn};

use crate::api::{MyPipelineRun, MyTaskRun};
use crate::error::Result;
use crate::reconcile::history::{FinishedRun, Ttl, beyond_limits, effective_ttl, ttl_state};

use super::classify::{Verdict, classify};
use super::context::Context;
use super::execute::RunKind;
use super::stand_in::{FinishedFacts, finished_facts};

/// A run that finished less than this long ago wakes its group and has its
/// definition's history kept; older ones were handled when they finished.
const RECENT: Duration = Duration::from_secs(120);
/// A TTL further away than this is looked at again then (and computed anew).
const LONGEST_WAIT: Duration = Duration::from_secs(24 * 3600);

/// Controller-wide history settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistorySettings {
    /// `--default-ttl-seconds-after-finished`: the TTL of runs that set
    /// none (nor does their definition); 0 keeps them.
    pub default_ttl_seconds: u32,
}

/// A finished run as history sees it, read from its untyped object (so a
/// run that no longer decodes is still collected), whole or a stand-in.
#[derive(Debug, Clone)]
struct Finished<'a> {
    kind: &'a str,
    facts: FinishedFacts,
    completed: Timestamp,
}

fn finished_of<'a>(object: &DynamicObject, kind: &'a str) -> Option<Finished<'a>> {
    let facts = finished_facts(object)?;
    let completed = facts.completion_time.as_deref()?.parse().ok()?;
    Some(Finished { kind, facts, completed })
}

/// True if another object controls the run (a pipeline run its child).
fn controlled_by_another(object: &DynamicObject) -> bool {
    object
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|owner| owner.controller == Some(true))
}

/// What the reconcile of a finished run does: wakes its group and keeps
/// its definition's history if it just finished, and deletes it once its
/// TTL has passed (else looks again when it will have).
pub async fn after_finish<R: RunKind>(object: &DynamicObject, requeue: Requeue, ctx: &Context) -> Result<Requeue> {
    let Some(finished) = finished_of(object, R::KIND) else {
        return Ok(requeue);
    };
    if object.metadata.deletion_timestamp.is_some() {
        return Ok(requeue);
    }
    let now = Timestamp::now();
    let age = now.as_millisecond() - finished.completed.as_millisecond();
    if age < RECENT.as_millis() as i64 {
        if let Err(error) = super::admission::wake_group_of::<R>(object, ctx).await {
            warn!(run = %object.name_any(), %error, "cannot wake the run's concurrency group");
        }
        if let Err(error) = super::admission::wake_namespace_queue::<R>(object, ctx).await {
            warn!(run = %object.name_any(), %error, "cannot wake the namespace's queue");
        }
        if !controlled_by_another(object)
            && let Err(error) = keep_history(object, &finished, ctx).await
        {
            warn!(run = %object.name_any(), %error, "cannot keep the history limits");
        }
    }
    if controlled_by_another(object) {
        return Ok(requeue);
    }
    let ttl = effective_ttl(
        finished.facts.ttl_seconds_after_finished,
        finished.facts.definition_ttl_seconds_after_finished,
        ctx.history.default_ttl_seconds,
    );
    let Some(ttl) = ttl else {
        return Ok(requeue);
    };
    match ttl_state(finished.completed, ttl, now) {
        Ttl::Expired => {
            delete(object, finished.kind, "its ttlSecondsAfterFinished passed", ctx).await?;
            Ok(Requeue::await_change())
        }
        Ttl::DueIn(wait) => Ok(Requeue::requeue(wait.min(LONGEST_WAIT))),
    }
}

fn resource_of(kind: &str) -> ApiResource {
    match kind {
        "MyPipelineRun" => ApiResource::erase::<MyPipelineRun>(&()),
        _ => ApiResource::erase::<MyTaskRun>(&()),
    }
}

/// Deletes a run (and, through their owner references, its pods and
/// claims), only the very object read: its uid is a precondition.
async fn delete(object: &DynamicObject, kind: &str, why: &str, ctx: &Context) -> Result<()> {
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &namespace, &resource_of(kind));
    let params = DeleteParams {
        preconditions: object.metadata.uid.clone().map(|uid| Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..DeleteParams::background()
    };
    match api.delete(&name, &params).await {
        Ok(_) => {
            info!(%kind, %namespace, run = %name, %why, "deleted finished run");
            Ok(())
        }
        // Gone already, or replaced by a new run of the same name.
        Err(error) if matches!(classify(&error), Verdict::NotFound | Verdict::Conflict) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// Keeps the history limits of the run's definition (a MyTask or
/// MyPipeline named by the run; inline specs have no history).
async fn keep_history(object: &DynamicObject, finished: &Finished<'_>, ctx: &Context) -> Result<()> {
    let reference = if finished.kind == "MyPipelineRun" {
        "pipelineRef"
    } else {
        "taskRef"
    };
    let Some(definition) = finished.facts.definition.as_deref() else {
        return Ok(());
    };
    let keep_succeeded = finished.facts.successful_runs_history_limit;
    let keep_failed = finished.facts.failed_runs_history_limit;
    if keep_succeeded.is_none() && keep_failed.is_none() {
        return Ok(());
    }
    let namespace = object.namespace().unwrap_or_default();
    let runs = definition_runs(ctx, finished.kind, &namespace, reference, definition).await?;
    let history: Vec<FinishedRun> = runs
        .iter()
        .filter_map(|run| {
            let done = finished_of(run, finished.kind)?;
            Some(FinishedRun {
                name: run.name_any(),
                uid: run.metadata.uid.clone().unwrap_or_default(),
                succeeded: done.facts.succeeded,
                completed: done.completed,
            })
        })
        .collect();
    let why = format!("over the history limits of {definition:?}");
    for doomed in beyond_limits(&history, keep_succeeded, keep_failed) {
        if let Some(run) = runs
            .iter()
            .find(|r| r.metadata.uid.as_deref() == Some(doomed.uid.as_str()))
        {
            delete(run, finished.kind, &why, ctx).await?;
        }
    }
    Ok(())
}

/// The runs of one definition in a namespace that nobody else controls:
/// the one place they are looked up (a LIST of the namespace's runs; a
/// cache can answer it instead).
pub async fn definition_runs(
    ctx: &Context,
    kind: &str,
    namespace: &str,
    reference: &str,
    definition: &str,
) -> Result<Vec<DynamicObject>> {
    let url = DynamicObject::url_path(&resource_of(kind), Some(namespace));
    let (objects, _) = super::stream::list(&ctx.client, &url, None).await?;
    Ok(objects
        .into_iter()
        .filter(|o| o.data.pointer(&format!("/spec/{reference}")).and_then(Value::as_str) == Some(definition))
        .filter(|o| !controlled_by_another(o) && o.metadata.deletion_timestamp.is_none())
        .collect())
}
