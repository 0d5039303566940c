//! Concurrency groups, carried out: before a run makes its first pod (or a
//! pipeline run its first child) it passes [`gate`], which labels it with
//! its group, reads the group's runs and follows `reconcile::admission`:
//! go on, wait `Queued`, or end replaced by a newer run.
//!
//! Nothing about the queue is kept in memory: the group is a label and an
//! annotation on each run, a slot is held by a run that has a start time,
//! and the order is the runs' creation time. The one thing in memory is a
//! lock per group, so two reconciles of the same group (the controller
//! runs several at once) decide one after the other and see each other's
//! start.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use super::context::Requeue;
use futures::channel::mpsc::UnboundedSender;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use serde_json::{Value, json};
use tokio::sync::OwnedMutexGuard;
use tracing::{info, warn};

use crate::api::{Concurrency, ConcurrencyPolicy, MyPipelineRun, MyTaskRun, Param, ParamSpec, RunSpecStatus};
use crate::error::{Error, Result};
use crate::pod::render::{LABEL_MANAGED_BY, MANAGED_BY};
use crate::reason;
use crate::reconcile::admission::{
    ANNOTATION_CANCELLED_BY, ANNOTATION_GROUP, Admission, Group, LABEL_GROUP, LABEL_NAMESPACE_QUEUE, Member,
    MemberState, decide_admission, decide_namespace_slot, effective, resolve_group,
};
use crate::reconcile::conditions::{is_final, set_succeeded, succeeded};
use crate::reconcile::pipelinerun::PipelineLookup;
use crate::reconcile::taskrun::TaskLookup;

use super::context::Context;
use super::execute::RunKind;
use super::stand_in::succeeded_status;
use super::status_writer::replace_status;

/// A queued run looks again this often even if nothing woke it, in case a
/// wake was lost (a controller restart between a run's end and the wake).
const RECHECK: Duration = Duration::from_secs(60);
/// Locks kept before the unused ones are dropped.
const LOCKS_BEFORE_PRUNE: usize = 256;

/// A channel that makes the controller reconcile the named runs.
pub type Trigger = UnboundedSender<ObjectRef<DynamicObject>>;

/// The groups' locks and the channels that wake a group's runs.
#[derive(Default)]
pub struct Queues {
    /// One lock per group (kind, namespace, label), dropped once unused.
    locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
    /// Wakes MyTaskRuns (set once the controller is built).
    pub task_runs: OnceLock<Trigger>,
    /// Wakes MyPipelineRuns.
    pub pipeline_runs: OnceLock<Trigger>,
    /// `--max-running-pods-per-namespace`: beyond it a MyTaskRun waits
    /// `Queued` for a pod to end; 0 means no cap.
    pub max_running_pods_per_namespace: u32,
}

impl Queues {
    /// No groups yet, and the namespace cap `max_running_pods_per_namespace` (0 = none).
    pub fn new(max_running_pods_per_namespace: u32) -> Self {
        Queues {
            max_running_pods_per_namespace,
            ..Default::default()
        }
    }

    /// Holds the group's lock until the returned guard is dropped.
    async fn lock(&self, key: String) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if locks.len() > LOCKS_BEFORE_PRUNE {
                locks.retain(|_, lock| lock.strong_count() > 0);
            }
            match locks.get(&key).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(tokio::sync::Mutex::new(()));
                    locks.insert(key, Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }

    fn trigger(&self, kind: &str) -> Option<&Trigger> {
        match kind {
            "MyPipelineRun" => self.pipeline_runs.get(),
            _ => self.task_runs.get(),
        }
    }
}

/// What a run kind tells the gate.
pub trait Grouped: RunKind {
    /// The reason a run of this kind ends with when its input is invalid.
    const INVALID: &'static str;
    fn own_concurrency(&self) -> Option<&Concurrency>;
    fn params(&self) -> &[Param];
    /// True once the run holds a slot (it started).
    fn started(&self) -> bool;
    fn done(&self) -> bool;
    fn cancelled(&self) -> bool;
    /// Marks the copy in hand cancelled, as the patch did in the cluster.
    fn mark_cancelled(&mut self, message: &str);
}

impl Grouped for MyTaskRun {
    const INVALID: &'static str = reason::VALIDATION_FAILED;
    fn own_concurrency(&self) -> Option<&Concurrency> {
        self.spec.concurrency.as_ref()
    }
    fn params(&self) -> &[Param] {
        &self.spec.params
    }
    fn started(&self) -> bool {
        self.status.as_ref().is_some_and(|s| s.start_time.is_some())
    }
    fn done(&self) -> bool {
        self.status.as_ref().is_some_and(|s| is_final(&s.conditions))
    }
    fn cancelled(&self) -> bool {
        self.spec.status == Some(RunSpecStatus::Cancelled)
    }
    fn mark_cancelled(&mut self, message: &str) {
        self.spec.status = Some(RunSpecStatus::Cancelled);
        annotate(&mut self.metadata, message);
    }
}

impl Grouped for MyPipelineRun {
    const INVALID: &'static str = reason::PIPELINE_VALIDATION_FAILED;
    fn own_concurrency(&self) -> Option<&Concurrency> {
        self.spec.concurrency.as_ref()
    }
    fn params(&self) -> &[Param] {
        &self.spec.params
    }
    fn started(&self) -> bool {
        self.status.as_ref().is_some_and(|s| s.start_time.is_some())
    }
    fn done(&self) -> bool {
        self.status.as_ref().is_some_and(|s| is_final(&s.conditions))
    }
    fn cancelled(&self) -> bool {
        self.spec.status == Some(RunSpecStatus::Cancelled)
    }
    fn mark_cancelled(&mut self, message: &str) {
        self.spec.status = Some(RunSpecStatus::Cancelled);
        annotate(&mut self.metadata, message);
    }
}

fn annotate(meta: &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, message: &str) {
    meta.annotations
        .get_or_insert_with(Default::default)
        .insert(ANNOTATION_CANCELLED_BY.to_string(), message.to_string());
}

/// The run's definition, as far as the gate needs it.
pub struct Definition<'a> {
    /// The definition's `concurrency`, if it has one.
    pub concurrency: Option<&'a Concurrency>,
    /// The params it declares (their defaults fill the group).
    pub params: &'a [ParamSpec],
    /// Where it is written, for errors: `MyTask "deploy": spec`.
    pub field: String,
}

/// The gate's view of a MyTaskRun's task.
pub fn task_definition<'a>(task: &TaskLookup<'a>) -> Definition<'a> {
    let (spec, field) = match task {
        TaskLookup::Found { name, spec } | TaskLookup::Resolved { name, spec, .. } => {
            (Some(*spec), format!("MyTask {name:?}: spec"))
        }
        TaskLookup::Inline(spec) => (Some(*spec), "spec.taskSpec".to_string()),
        TaskLookup::Missing { .. }
        | TaskLookup::Malformed { .. }
        | TaskLookup::Resolving { .. }
        | TaskLookup::Unresolved { .. } => (None, String::new()),
    };
    Definition {
        concurrency: spec.and_then(|s| s.concurrency.as_ref()),
        params: spec.map_or(&[], |s| s.params.as_slice()),
        field,
    }
}

/// The gate's view of a MyPipelineRun's pipeline (its snapshot once it has one).
pub fn pipeline_definition<'a>(run: &'a MyPipelineRun, pipeline: &PipelineLookup<'a>) -> Definition<'a> {
    let snapshot = run.status.as_ref().and_then(|s| s.pipeline_spec.as_ref());
    let (spec, field) = match pipeline {
        PipelineLookup::Found { name, spec } | PipelineLookup::Resolved { name, spec, .. } => {
            (Some(snapshot.unwrap_or(spec)), format!("MyPipeline {name:?}: spec"))
        }
        PipelineLookup::Inline(spec) => (Some(*spec), "spec.pipelineSpec".to_string()),
        PipelineLookup::Missing { name } | PipelineLookup::Malformed { name, .. } => {
            (snapshot, format!("MyPipeline {name:?}: spec"))
        }
        PipelineLookup::Unspecified | PipelineLookup::Resolving { .. } | PipelineLookup::Unresolved { .. } => {
            (None, String::new())
        }
    };
    Definition {
        concurrency: spec.and_then(|s| s.concurrency.as_ref()),
        params: spec.map_or(&[], |s| s.params.as_slice()),
        field,
    }
}

/// What the reconcile does after the gate.
pub enum Gate<R> {
    /// Go on. `run` is a changed copy (cancelled) to decide on instead;
    /// `slot` holds the locks of the run's group and namespace queue until
    /// the reconcile ends, so the next decision sees this run's start.
    Go {
        run: Option<Box<R>>,
        slot: Vec<OwnedMutexGuard<()>>,
    },
    /// Stop here (the run waits, or was failed): requeue like this.
    Stop(Requeue),
}

impl<R> Gate<R> {
    fn go() -> Self {
        Gate::Go {
            run: None,
            slot: Vec::new(),
        }
    }
}

/// Decides whether `run` may go on to make pods or children now: first
/// its concurrency group, then (MyTaskRuns) the namespace's cap on pods.
pub async fn gate<R: Grouped>(run: &R, definition: Definition<'_>, ctx: &Context) -> Result<Gate<R>> {
    if run.done() || run.cancelled() {
        return Ok(Gate::go());
    }
    let mut slot = match group_gate(run, definition, ctx).await? {
        Gate::Go { run: None, slot } => slot,
        other => return Ok(other),
    };
    let cap = ctx.queues.max_running_pods_per_namespace;
    if R::KIND == "MyTaskRun" && cap > 0 && !run.started() {
        match namespace_gate(run, cap, ctx).await? {
            Ok(guard) => slot.push(guard),
            Err(requeue) => return Ok(Gate::Stop(requeue)),
        }
    }
    Ok(Gate::Go { run: None, slot })
}

async fn group_gate<R: Grouped>(run: &R, definition: Definition<'_>, ctx: &Context) -> Result<Gate<R>> {
    let own = run.own_concurrency();
    let Some(concurrency) = effective(own, definition.concurrency) else {
        return Ok(Gate::go());
    };
    let field = match own {
        Some(_) => "spec.concurrency".to_string(),
        None => format!("{}.concurrency", definition.field),
    };
    let group = match resolve_group(concurrency, definition.params, run.params(), &field) {
        Ok(group) => group,
        // A run that started was valid then; its group cannot change now.
        Err(_) if run.started() => return Ok(Gate::go()),
        Err(errors) => {
            write_condition(run, "False", R::INVALID, &errors.to_string(), ctx).await?;
            return Ok(Gate::Stop(Requeue::await_change()));
        }
    };
    if run.started() && group.policy == ConcurrencyPolicy::Queue {
        // Holds its slot until it ends: nothing to decide.
        return Ok(Gate::go());
    }
    let namespace = run.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let labels = json!({ LABEL_GROUP: group.label() });
    let annotations = json!({ ANNOTATION_GROUP: group.name });
    mark(run, &namespace, labels, annotations, ctx).await?;
    let key = format!("{}/{namespace}/{}", R::KIND, group.label());
    let slot = ctx.queues.lock(key).await;
    let members = group_members::<R>(ctx, &namespace, &group).await?;
    let me = member_of_run(run);
    let decided = decide_admission(&me, &group, &members, Timestamp::now());
    if group.policy == ConcurrencyPolicy::CancelInProgress {
        // Older runs learn that this one replaces them.
        wake_older::<R>(ctx, &namespace, &me, &members);
    }
    match decided {
        Admission::Start if run.started() => Ok(Gate::go()),
        Admission::Start => Ok(Gate::Go {
            run: None,
            slot: vec![slot],
        }),
        Admission::Wait { message, recheck } => {
            write_condition(run, "Unknown", reason::QUEUED, &message, ctx).await?;
            Ok(Gate::Stop(Requeue::requeue(recheck.unwrap_or(RECHECK).min(RECHECK))))
        }
        Admission::Cancel { replaced_by, message } => {
            cancel(run, &message, ctx).await?;
            info!(run = %me.name, %replaced_by, group = %group.name, "replaced by a newer run");
            let mut copy = run.clone();
            copy.mark_cancelled(&message);
            Ok(Gate::Go {
                run: Some(Box::new(copy)),
                slot: Vec::new(),
            })
        }
    }
}

fn member_of_run<R: Grouped>(run: &R) -> Member {
    Member {
        name: run.name_any(),
        created: run
            .meta()
            .creation_timestamp
            .as_ref()
            .map_or_else(Timestamp::now, |t| t.0),
        state: if run.started() {
            MemberState::Active
        } else {
            MemberState::Waiting
        },
    }
}

/// The namespace's cap on running pods: Ok with the namespace queue's lock
/// if the run may make its pod now, else the requeue of a waiting run.
async fn namespace_gate<R: Grouped>(
    run: &R,
    cap: u32,
    ctx: &Context,
) -> Result<std::result::Result<OwnedMutexGuard<()>, Requeue>> {
    let namespace = run.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let slot = ctx.queues.lock(format!("pods/{namespace}")).await;
    let running = running_pods(ctx, &namespace).await?;
    let waiting = namespace_waiting::<R>(ctx, &namespace).await?;
    let me = member_of_run(run);
    match decide_namespace_slot(&me, &waiting, running, cap, &namespace) {
        Admission::Wait { message, .. } => {
            mark(
                run,
                &namespace,
                json!({ LABEL_NAMESPACE_QUEUE: "waiting" }),
                json!({}),
                ctx,
            )
            .await?;
            write_condition(run, "Unknown", reason::QUEUED, &message, ctx).await?;
            Ok(Err(Requeue::requeue(RECHECK)))
        }
        _ => Ok(Ok(slot)),
    }
}

/// Pods of runs that are not over yet in `namespace`: the one place they
/// are counted (a LIST by our label; a cache can answer it instead).
pub async fn running_pods(ctx: &Context, namespace: &str) -> Result<usize> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let params = ListParams::default().labels(&format!("{LABEL_MANAGED_BY}={MANAGED_BY}"));
    let running = pods
        .list(&params)
        .await?
        .items
        .iter()
        .filter(|p| {
            !matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded") | Some("Failed")
            )
        })
        .count();
    Ok(running)
}

/// The runs waiting for the namespace's cap: the one place they are
/// looked up (a LIST by label; a cache can answer it instead).
pub async fn namespace_waiting<R: RunKind>(ctx: &Context, namespace: &str) -> Result<Vec<Member>> {
    let (_, resource) = dynamic::<R>(ctx, namespace);
    let url = DynamicObject::url_path(&resource, Some(namespace));
    let selector = format!("{LABEL_NAMESPACE_QUEUE}=waiting");
    let (objects, _) = super::stream::list(&ctx.client, &url, Some(&selector)).await?;
    Ok(objects.iter().filter_map(member_of).collect())
}

fn dynamic<R: RunKind>(ctx: &Context, namespace: &str) -> (Api<DynamicObject>, ApiResource) {
    let resource = ApiResource::erase::<R>(&());
    (Api::namespaced_with(ctx.client.clone(), namespace, &resource), resource)
}

/// Puts these labels and annotations on the run, unless it has them.
async fn mark<R: RunKind>(run: &R, namespace: &str, labels: Value, annotations: Value, ctx: &Context) -> Result<()> {
    let meta = run.meta();
    let has = |wanted: &Value, present: Option<&std::collections::BTreeMap<String, String>>| {
        wanted.as_object().is_none_or(|w| {
            w.iter()
                .all(|(k, v)| present.and_then(|p| p.get(k)).map(String::as_str) == v.as_str())
        })
    };
    if has(&labels, meta.labels.as_ref()) && has(&annotations, meta.annotations.as_ref()) {
        return Ok(());
    }
    let patch = json!({ "metadata": { "labels": labels, "annotations": annotations } });
    let (api, _) = dynamic::<R>(ctx, namespace);
    api.patch(&run.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// Cancels the run in the cluster, with the message its end will carry.
async fn cancel<R: RunKind>(run: &R, message: &str, ctx: &Context) -> Result<()> {
    let namespace = run.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let patch = json!({
        "metadata": { "annotations": { ANNOTATION_CANCELLED_BY: message } },
        "spec": { "status": "Cancelled" },
    });
    let (api, _) = dynamic::<R>(ctx, &namespace);
    api.patch(&run.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// Every run of `group` in `namespace`: the one place the group is looked
/// up (a LIST by label; a cache can answer it instead).
pub async fn group_members<R: RunKind>(ctx: &Context, namespace: &str, group: &Group) -> Result<Vec<Member>> {
    let (_, resource) = dynamic::<R>(ctx, namespace);
    let url = DynamicObject::url_path(&resource, Some(namespace));
    let selector = format!("{LABEL_GROUP}={}", group.label());
    let (objects, _) = super::stream::list(&ctx.client, &url, Some(&selector)).await?;
    Ok(objects
        .iter()
        .filter(|o| o.annotations().get(ANNOTATION_GROUP) == Some(&group.name))
        .filter_map(member_of)
        .collect())
}

/// A run as a member of its group, read from its untyped object (a run
/// that cannot be decoded still holds or frees its slot).
pub fn member_of(object: &DynamicObject) -> Option<Member> {
    let created = object.metadata.creation_timestamp.as_ref()?.0;
    let data = &object.data;
    let finished = succeeded_status(data).is_some_and(|status| status != "Unknown");
    let started = data.pointer("/status/startTime").is_some_and(|t| !t.is_null());
    let cancelled = data.pointer("/spec/status") == Some(&json!("Cancelled"));
    let state = match (finished, started, cancelled) {
        (true, _, _) | (false, false, true) => MemberState::Finished,
        (false, true, _) => MemberState::Active,
        (false, false, false) => MemberState::Waiting,
    };
    Some(Member {
        name: object.name_any(),
        created,
        state,
    })
}

/// Makes the controller look at the group's live runs older than `me`.
fn wake_older<R: RunKind>(ctx: &Context, namespace: &str, me: &Member, members: &[Member]) {
    let older = members.iter().filter(|m| {
        m.state != MemberState::Finished
            && m.name != me.name
            && (m.created.as_millisecond(), m.name.as_str()) < (me.created.as_millisecond(), me.name.as_str())
    });
    wake(ctx, R::KIND, namespace, older.map(|m| m.name.as_str()));
}

/// A reconcile request for one run, to send later from another task (the
/// git resolver's, when its fetch is done).
pub fn waker(ctx: &Context, kind: &str, namespace: &str, name: &str) -> impl FnOnce() + Send + 'static {
    let trigger = ctx.queues.trigger(kind).cloned();
    let resource = match kind {
        "MyPipelineRun" => ApiResource::erase::<MyPipelineRun>(&()),
        _ => ApiResource::erase::<MyTaskRun>(&()),
    };
    let reference = ObjectRef::new_with(name, resource).within(namespace);
    move || {
        if let Some(trigger) = trigger
            && trigger.unbounded_send(reference).is_err()
        {
            warn!("the controller stopped; cannot wake a run");
        }
    }
}

/// Sends reconcile requests for these runs of `kind` in `namespace`.
fn wake<'a>(ctx: &Context, kind: &str, namespace: &str, names: impl Iterator<Item = &'a str>) {
    let Some(trigger) = ctx.queues.trigger(kind) else {
        return;
    };
    let resource = match kind {
        "MyPipelineRun" => ApiResource::erase::<MyPipelineRun>(&()),
        _ => ApiResource::erase::<MyTaskRun>(&()),
    };
    for name in names {
        let reference = ObjectRef::new_with(name, resource.clone()).within(namespace);
        if trigger.unbounded_send(reference).is_err() {
            warn!("the controller stopped; cannot wake runs");
            return;
        }
    }
}

/// After a run of a group finished: wakes the group's waiting runs, so the
/// next one starts now rather than at its next recheck.
pub async fn wake_group_of<R: RunKind>(object: &DynamicObject, ctx: &Context) -> Result<()> {
    let (Some(label), Some(group), Some(namespace)) = (
        object.labels().get(LABEL_GROUP),
        object.annotations().get(ANNOTATION_GROUP),
        object.namespace(),
    ) else {
        return Ok(());
    };
    let resource = ApiResource::erase::<R>(&());
    let url = DynamicObject::url_path(&resource, Some(&namespace));
    let (objects, _) = super::stream::list(&ctx.client, &url, Some(&format!("{LABEL_GROUP}={label}"))).await?;
    let waiting: Vec<String> = objects
        .iter()
        .filter(|o| o.annotations().get(ANNOTATION_GROUP) == Some(group))
        .filter_map(member_of)
        .filter(|m| m.state == MemberState::Waiting)
        .map(|m| m.name)
        .collect();
    wake(ctx, R::KIND, &namespace, waiting.iter().map(String::as_str));
    Ok(())
}

/// After a MyTaskRun finished: wakes the runs waiting for the namespace's
/// cap on pods, if there is one.
pub async fn wake_namespace_queue<R: RunKind>(object: &DynamicObject, ctx: &Context) -> Result<()> {
    let Some(namespace) = object.namespace() else {
        return Ok(());
    };
    if R::KIND != "MyTaskRun" || ctx.queues.max_running_pods_per_namespace == 0 {
        return Ok(());
    }
    let waiting: Vec<String> = namespace_waiting::<R>(ctx, &namespace)
        .await?
        .into_iter()
        .filter(|m| m.state == MemberState::Waiting)
        .map(|m| m.name)
        .collect();
    wake(ctx, R::KIND, &namespace, waiting.iter().map(String::as_str));
    Ok(())
}

/// Writes the run's `Succeeded` condition (and, if final, its completion
/// time), only when it changed; an Event marks the change of reason.
async fn write_condition<R: RunKind>(run: &R, state: &str, why: &str, message: &str, ctx: &Context) -> Result<()> {
    let mut status = run.status().cloned().unwrap_or_default();
    let before = succeeded(R::conditions(&mut status)).cloned();
    if before
        .as_ref()
        .is_some_and(|c| c.status == state && c.reason == why && c.message == message)
    {
        return Ok(());
    }
    let now = Time(Timestamp::now());
    set_succeeded(R::conditions(&mut status), state, why, message.to_string(), now.clone());
    if state != "Unknown" {
        *R::completion_time(&mut status) = Some(now);
    }
    let namespace = run.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    replace_status::<R>(ctx, &namespace, &run.name_any(), &status).await?;
    if before.is_none_or(|c| c.reason != why) {
        let reference: ObjectReference = run.object_ref(&());
        ctx.publish(&reference, state == "False", why, message).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(value: Value) -> DynamicObject {
        serde_json::from_value(value).expect("an object")
    }

    #[test]
    fn members_are_read_from_labels_and_status() {
        let base = |status: Value, spec: Value| {
            object(json!({
                "apiVersion": "cicdoperator.ning1875.io/v1", "kind": "MyTaskRun",
                "metadata": {"name": "r", "namespace": "ci", "creationTimestamp": "2026-01-01T00:00:00Z"},
                "spec": spec, "status": status,
            }))
        };
        let state = |o: &DynamicObject| member_of(o).map(|m| m.state);
        assert_eq!(state(&base(json!({}), json!({}))), Some(MemberState::Waiting));
        assert_eq!(
            state(&base(
                json!({"conditions": [{"type": "Succeeded", "status": "Unknown", "reason": "Queued"}]}),
                json!({})
            )),
            Some(MemberState::Waiting)
        );
        assert_eq!(
            state(&base(json!({"startTime": "2026-01-01T00:00:05Z"}), json!({}))),
            Some(MemberState::Active)
        );
        assert_eq!(
            state(&base(
                json!({"startTime": "2026-01-01T00:00:05Z", "conditions": [{"type": "Succeeded", "status": "False"}]}),
                json!({})
            )),
            Some(MemberState::Finished)
        );
        assert_eq!(
            state(&base(json!({}), json!({"status": "Cancelled"}))),
            Some(MemberState::Finished),
            "cancelled before it started: holds nothing"
        );
    }
}
