//! What to do about a MyPipelineRun, decided from what was observed: a pure
//! function. The controller fetches the pipeline, the tasks and the child
//! runs, and carries out the actions.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PersistentVolumeClaimVolumeSource};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;

use crate::api::{
    ArtifactValue, Artifacts, ChildReference, Condition, MyPipelineRun, MyTaskRun, Param, ParamValue,
    PipelineRunStatus, PipelineSpec, PipelineTask, ResolvedFrom, RunSpecStatus, TaskRunSpec, TaskSpec,
    WorkspaceBinding,
};
use crate::engine::duration::parse_duration;
use crate::engine::limits::Limits;
use crate::names;
use crate::pipeline::matrix::{aggregate, child_params};
use crate::pipeline::schedule::{ChildState, Outcome, Schedule, ScheduleInput, Stop, TaskToStart, schedule, stop_all};
use crate::pipeline::task_run_specs::{
    child_compute_resources, child_resource_overrides, child_run_settings, child_timeout_override,
};
use crate::pipeline::validate::{PipelineInputs, validate_pipeline};
use crate::pipeline::variables::context_variables;
use crate::pipeline::{ANNOTATION_MATRIX_COMBINATIONS, LABEL_PIPELINE, LABEL_PIPELINE_RUN, LABEL_PIPELINE_TASK};
use crate::pod::render::{LABEL_MANAGED_BY, MANAGED_BY};
use crate::reason;
use crate::reconcile::conditions::{is_final, set_succeeded, succeeded};
use crate::reconcile::grace;
use crate::reconcile::taskrun::Notice;

/// The run's pipeline, as the controller found it.
#[derive(Debug, Clone, Copy)]
pub enum PipelineLookup<'a> {
    Found {
        name: &'a str,
        spec: &'a PipelineSpec,
    },
    Inline(&'a PipelineSpec),
    Missing {
        name: &'a str,
    },
    /// The MyPipeline exists but cannot be decoded; `problem` names the field.
    Malformed {
        name: &'a str,
        problem: &'a str,
    },
    /// Neither pipelineRef nor pipelineSpec, or both.
    Unspecified,
    /// `remotePipeline`, just fetched: used as `Found`, and `from` is recorded.
    Resolved {
        name: &'a str,
        spec: &'a PipelineSpec,
        from: &'a ResolvedFrom,
    },
    /// `remotePipeline` is being fetched (`what` says how); no child yet.
    Resolving {
        what: &'a str,
    },
    /// `remotePipeline` cannot be had; `problem` says why.
    Unresolved {
        problem: &'a str,
    },
}

/// Everything the decision depends on.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    pub run: &'a MyPipelineRun,
    pub pipeline: PipelineLookup<'a>,
    /// MyTasks of the run's namespace, by name (at least those referenced).
    pub tasks: &'a BTreeMap<String, TaskSpec>,
    /// MyTaskRuns labelled as this run's children.
    pub children: &'a [MyTaskRun],
    /// Inputs that exist but cannot be read (a referenced MyTask, a child
    /// run), each naming the object and the field: they end the run.
    pub problems: &'a [String],
    pub now: Timestamp,
}

#[derive(Debug, Clone)]
pub enum Action {
    CreateClaim(Box<PersistentVolumeClaim>),
    /// Create a child run; an existing one of that name is adopted.
    CreateChild(Box<MyTaskRun>),
    /// Set `spec.status: Cancelled` on this child run.
    CancelChild(String),
    Publish(Notice),
    WriteStatus(Box<PipelineRunStatus>),
    RequeueAfter(Duration),
}

pub fn succeeded_condition(status: Option<&PipelineRunStatus>) -> Option<&Condition> {
    succeeded(&status?.conditions)
}

/// True once the run has a final `Succeeded` condition.
pub fn is_done(status: Option<&PipelineRunStatus>) -> bool {
    status.is_some_and(|s| is_final(&s.conditions))
}

/// The name of the child run of a pipeline task (see `names::joined_name`
/// for why it cannot collide with another run's child).
pub fn child_name(run_name: &str, task: &str) -> String {
    names::joined_name(run_name, task)
}

/// The value of the `pipelineRun` label on the run's children.
pub fn run_label(run_name: &str) -> String {
    names::dns_label(&[run_name])
}

/// A child's artifacts as later tasks read them, `$(tasks.t.outputs.c)`:
/// under the names `outputs.c` and `inputs.c` (a result's name has no dot),
/// each the JSON array of the category's values, gathered across the
/// child's steps.
fn artifact_values(artifacts: &Artifacts) -> BTreeMap<String, ParamValue> {
    let mut values: BTreeMap<String, Vec<&ArtifactValue>> = BTreeMap::new();
    for (kind, categories) in [("inputs", &artifacts.inputs), ("outputs", &artifacts.outputs)] {
        for category in categories {
            values
                .entry(format!("{kind}.{}", category.name))
                .or_default()
                .extend(&category.values);
        }
    }
    values
        .into_iter()
        .map(|(name, values)| {
            let json = serde_json::to_string(&values).unwrap_or_default();
            (name, ParamValue::String(json))
        })
        .collect()
}

/// What scheduling needs to know about a child run.
pub fn child_state(child: &MyTaskRun) -> ChildState {
    let condition = child.status.as_ref().and_then(|s| succeeded(&s.conditions));
    let results = || {
        let mut results: BTreeMap<String, ParamValue> = child
            .status
            .iter()
            .flat_map(|s| &s.results)
            .map(|r| (r.name.clone(), r.value.clone()))
            .collect();
        if let Some(artifacts) = child.status.as_ref().and_then(|s| s.artifacts.as_ref()) {
            results.extend(artifact_values(artifacts));
        }
        results
    };
    match condition.map(|c| c.status.as_str()) {
        Some("True") => ChildState::Succeeded { results: results() },
        Some("False") => {
            let condition = condition.cloned();
            ChildState::Failed {
                reason: condition.as_ref().map(|c| c.reason.clone()).unwrap_or_default(),
                message: condition.map(|c| c.message).unwrap_or_default(),
                results: results(),
            }
        }
        _ => ChildState::Running,
    }
}

pub fn owner_reference(run: &MyPipelineRun) -> OwnerReference {
    OwnerReference {
        api_version: crate::api::API_VERSION.to_string(),
        kind: "MyPipelineRun".to_string(),
        name: run.metadata.name.clone().unwrap_or_default(),
        uid: run.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn owned_by(child: &MyTaskRun, uid: &str) -> bool {
    crate::reconcile::owner::is_controlled_by(&child.metadata, uid)
}

fn join_sub_paths(outer: Option<&str>, inner: Option<&str>) -> Option<String> {
    match (outer.filter(|p| !p.is_empty()), inner.filter(|p| !p.is_empty())) {
        (Some(outer), Some(inner)) => Some(format!("{}/{inner}", outer.trim_end_matches('/'))),
        (Some(path), None) | (None, Some(path)) => Some(path.to_string()),
        (None, None) => None,
    }
}

/// Builds the new status and the actions.
struct Decision<'a> {
    observed: Observed<'a>,
    default_timeout: Duration,
    /// Bounds on the pipeline (its task count).
    limits: &'a Limits,
    status: PipelineRunStatus,
    actions: Vec<Action>,
}

impl<'a> Decision<'a> {
    fn run(&self) -> &'a MyPipelineRun {
        self.observed.run
    }

    fn run_name(&self) -> String {
        self.run().metadata.name.clone().unwrap_or_default()
    }

    fn namespace(&self) -> String {
        self.run().metadata.namespace.clone().unwrap_or_default()
    }

    fn notice(&mut self, warning: bool, reason: &str, message: impl Into<String>) {
        self.actions.push(Action::Publish(Notice {
            warning,
            reason: reason.to_string(),
            message: message.into(),
        }));
    }

    fn set_condition(&mut self, status: &str, why: &str, message: String) {
        set_succeeded(
            &mut self.status.conditions,
            status,
            why,
            message,
            Time(self.observed.now),
        );
    }

    fn finish(&mut self, succeeded: bool, why: &str, message: String) {
        self.notice(!succeeded, why, message.clone());
        self.set_condition(if succeeded { "True" } else { "False" }, why, message);
        self.status.completion_time = Some(Time(self.observed.now));
    }

    /// Fails the run before scheduling (bad pipeline, missing task),
    /// cancelling any child still running.
    fn fail_early(&mut self, why: &str, message: String, children: &OurChildren<'_>) {
        for task in children.runs.keys() {
            self.cancel_task(children, task);
        }
        self.finish(false, why, message);
    }

    /// Cancels the running children of one pipeline task.
    fn cancel_task(&mut self, children: &OurChildren<'_>, task: &str) {
        for child in children.runs.get(task).into_iter().flatten() {
            if child_state(child) == ChildState::Running {
                let name = child.metadata.name.clone().unwrap_or_default();
                self.actions.push(Action::CancelChild(name));
            }
        }
    }

    fn elapsed(&self) -> Duration {
        let started = self.status.start_time.as_ref().map_or(self.observed.now, |t| t.0);
        let millis = self.observed.now.as_millisecond() - started.as_millisecond();
        Duration::from_millis(millis.max(0) as u64)
    }

    fn timeout_of(&self, pick: fn(&crate::api::PipelineTimeouts) -> &Option<String>) -> Option<Option<Duration>> {
        let text = self.run().spec.timeouts.as_ref().and_then(|t| pick(t).as_deref())?;
        Some(match parse_duration(text) {
            Ok(Duration::ZERO) | Err(_) => None,
            Ok(duration) => Some(duration),
        })
    }

    /// None when the run has no overall timeout (`timeouts.pipeline: "0"`).
    fn pipeline_timeout(&self) -> Option<Duration> {
        self.timeout_of(|t| &t.pipeline).unwrap_or(Some(self.default_timeout))
    }

    /// The timeout a child gets: its `taskRunSpecs` entry's, else its
    /// pipeline task's own, else what is left of `timeouts.tasks` (or
    /// `timeouts.finally`), else the pipeline's.
    fn child_timeout(&self, task: &PipelineTask, finally: bool) -> Option<String> {
        let given = child_timeout_override(&task.name, &self.run().spec.task_run_specs);
        if let Some(timeout) = given.or(task.timeout.as_ref()) {
            return Some(timeout.clone());
        }
        let seconds = |d: Duration| format!("{}s", d.as_secs().max(1));
        let budget = if finally {
            self.timeout_of(|t| &t.finally)
        } else {
            self.timeout_of(|t| &t.tasks)
        };
        match budget {
            Some(Some(limit)) if finally => Some(seconds(limit)),
            Some(Some(limit)) => Some(seconds(limit.saturating_sub(self.elapsed()))),
            Some(None) => Some("0".to_string()),
            None => self.run().spec.timeouts.as_ref().and_then(|t| t.pipeline.clone()),
        }
    }

    fn claims(&self) -> Vec<PersistentVolumeClaim> {
        let run_name = self.run_name();
        self.run()
            .spec
            .workspaces
            .iter()
            .filter_map(|binding| {
                let mut claim = binding.volume_claim_template.clone()?;
                claim.metadata.name = Some(names::claim_name(&run_name, &binding.name));
                claim.metadata.namespace = Some(self.namespace());
                claim.metadata.owner_references = Some(vec![owner_reference(self.run())]);
                claim.status = None;
                Some(claim)
            })
            .collect()
    }

    /// The child's workspace bindings: the run's bindings under the task's
    /// names, a claim template replaced by the run's one claim.
    fn child_workspaces(&self, task: &PipelineTask, start: &TaskToStart) -> Vec<WorkspaceBinding> {
        let run_name = self.run_name();
        task.workspaces
            .iter()
            .filter_map(|workspace| {
                let pipeline_workspace = workspace.workspace.as_deref().unwrap_or(&workspace.name);
                let bound = self
                    .run()
                    .spec
                    .workspaces
                    .iter()
                    .find(|b| b.name == pipeline_workspace)?;
                let mut binding = bound.clone();
                binding.name = workspace.name.clone();
                let sub_path = start.sub_paths.get(&workspace.name).map(String::as_str);
                binding.sub_path = join_sub_paths(bound.sub_path.as_deref(), sub_path);
                if binding.volume_claim_template.take().is_some() {
                    binding.persistent_volume_claim = Some(PersistentVolumeClaimVolumeSource {
                        claim_name: names::claim_name(&run_name, pipeline_workspace),
                        read_only: None,
                    });
                }
                Some(binding)
            })
            .collect()
    }

    /// The children a starting task needs: one, or one per combination of
    /// its matrix.
    fn children_of(&self, spec: &PipelineSpec, start: &TaskToStart, pipeline_name: Option<&str>) -> Vec<MyTaskRun> {
        let Some(task) = spec.all_tasks().find(|t| t.name == start.name) else {
            return Vec::new();
        };
        let Some(combinations) = &start.combinations else {
            return vec![self.child(task, start, start.params.clone(), pipeline_name)];
        };
        let run_name = self.run_name();
        combinations
            .iter()
            .enumerate()
            .map(|(index, combination)| {
                let at = MatrixSlot {
                    run_name: &run_name,
                    index,
                    count: combinations.len(),
                };
                let params = child_params(&start.params, combination);
                matrix_child(self.child(task, start, params, pipeline_name), &at)
            })
            .collect()
    }

    /// The child run of `task` with `params` (the task's, and for a
    /// matrixed task its combination's).
    fn child(
        &self,
        task: &PipelineTask,
        start: &TaskToStart,
        params: Vec<Param>,
        pipeline_name: Option<&str>,
    ) -> MyTaskRun {
        let run = self.run();
        let run_name = self.run_name();
        let mut labels = run.metadata.labels.clone().unwrap_or_default();
        // The parent's concurrency group is the parent's: a child in it
        // would wait for its own parent to finish.
        labels.remove(super::admission::LABEL_GROUP);
        labels.insert(LABEL_MANAGED_BY.to_string(), MANAGED_BY.to_string());
        labels.insert(LABEL_PIPELINE_RUN.to_string(), run_label(&run_name));
        labels.insert(LABEL_PIPELINE_TASK.to_string(), task.name.clone());
        if let Some(pipeline) = pipeline_name {
            labels.insert(LABEL_PIPELINE.to_string(), names::dns_label(&[pipeline]));
        }
        let (service_account_name, pod_template) = child_run_settings(
            &task.name,
            &params,
            run.spec.service_account_name.as_ref(),
            run.spec.pod_template.as_ref(),
            &run.spec.task_run_specs,
        );
        let (step_specs, sidecar_specs) = child_resource_overrides(&task.name, &run.spec.task_run_specs);
        MyTaskRun {
            metadata: ObjectMeta {
                name: Some(child_name(&run_name, &task.name)),
                namespace: Some(self.namespace()),
                labels: Some(labels),
                owner_references: Some(vec![owner_reference(run)]),
                ..Default::default()
            },
            spec: TaskRunSpec {
                task_ref: task.task_ref.clone(),
                task_spec: task.task_spec.clone(),
                remote_task: task.remote_task.clone(),
                params,
                workspaces: self.child_workspaces(task, start),
                service_account_name,
                timeout: self.child_timeout(task, start.finally),
                retries: task.retries,
                status: None,
                pod_template,
                compute_resources: child_compute_resources(&task.name, &run.spec.task_run_specs),
                step_specs,
                sidecar_specs,
                // The task's own concurrency still applies to the child.
                concurrency: None,
                // Deleted with its parent, never on its own.
                ttl_seconds_after_finished: None,
            },
            status: None,
        }
    }

    /// Carries out a schedule: new children, cancellations, status.
    fn apply(&mut self, spec: &PipelineSpec, schedule: Schedule, pipeline_name: Option<&str>, children: &OurChildren) {
        if !schedule.start.is_empty() {
            let claims = self.claims();
            self.actions
                .extend(claims.into_iter().map(|c| Action::CreateClaim(Box::new(c))));
        }
        for start in &schedule.start {
            for child in self.children_of(spec, start, pipeline_name) {
                let child_name = child.metadata.name.clone().unwrap_or_default();
                if children.exists(&start.name, &child_name) {
                    continue;
                }
                self.actions.push(Action::CreateChild(Box::new(child)));
                self.notice(
                    false,
                    "TaskStarted",
                    format!("pipeline task {:?} started as MyTaskRun {child_name}", start.name),
                );
            }
        }
        for task in &schedule.cancel {
            self.cancel_task(children, task);
        }
        self.status.skipped_tasks = schedule.skipped;
        match schedule.outcome {
            Outcome::Running { stopping } => {
                let mut message = schedule.counts.message();
                if stopping {
                    message.push_str("; a task failed: waiting for running tasks, then finally tasks");
                }
                if !is_running(self.observed.run.status.as_ref()) {
                    self.notice(false, reason::RUNNING, "pipeline run started");
                }
                self.set_condition("Unknown", reason::RUNNING, message);
                if let Some(timeout) = self.pipeline_timeout() {
                    self.actions.push(Action::RequeueAfter(
                        timeout.saturating_sub(self.elapsed()).max(Duration::from_secs(1)),
                    ));
                }
            }
            Outcome::Succeeded { skipped } => {
                self.status.results = schedule.results;
                let why = if skipped > 0 {
                    reason::COMPLETED
                } else {
                    reason::SUCCEEDED
                };
                self.finish(true, why, schedule.counts.message());
            }
            Outcome::Failed { reason: why, message } => {
                self.status.results = schedule.results;
                self.finish(false, why, message);
            }
        }
    }
}

/// Where a child of a matrixed task sits among its task's children.
struct MatrixSlot<'a> {
    run_name: &'a str,
    index: usize,
    count: usize,
}

/// The child of one combination: the task's child (with the combination's
/// params) under its own name, with the combination count (for
/// `our_children`).
fn matrix_child(mut child: MyTaskRun, at: &MatrixSlot<'_>) -> MyTaskRun {
    let task = child
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_PIPELINE_TASK))
        .cloned()
        .unwrap_or_default();
    child.metadata.name = Some(names::matrix_child_name(at.run_name, &task, at.index));
    child.metadata.annotations = Some(BTreeMap::from([(
        ANNOTATION_MATRIX_COMBINATIONS.to_string(),
        at.count.to_string(),
    )]));
    child
}

/// A run that a newer run of its concurrency group replaced says so, naming
/// it (the message the controller left on the run), instead of "cancelled".
fn replaced_message(run: &MyPipelineRun, schedule: &mut Schedule) {
    let replaced = run
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(super::admission::ANNOTATION_CANCELLED_BY));
    if let (Some(replaced), Outcome::Failed { message, .. }) = (replaced, &mut schedule.outcome) {
        *message = format!("{replaced}; {}", schedule.counts.message());
    }
}

fn is_running(status: Option<&PipelineRunStatus>) -> bool {
    succeeded_condition(status).is_some_and(|c| c.reason == reason::RUNNING)
}

/// Decides what to do about a pipeline run. Returns no actions for a finished run.
pub fn decide<'a>(observed: Observed<'a>, default_timeout: Duration, limits: &'a Limits) -> Vec<Action> {
    let run = observed.run;
    if is_done(run.status.as_ref()) {
        return Vec::new();
    }
    let mut decision = Decision {
        observed,
        default_timeout,
        limits,
        status: run.status.clone().unwrap_or_default(),
        actions: Vec::new(),
    };
    decision.status.observed_generation = run.metadata.generation;
    if decision.status.start_time.is_none() {
        decision.status.start_time = Some(Time(observed.now));
    }
    decide_into(&mut decision);
    let Decision {
        status, mut actions, ..
    } = decision;
    if run.status.as_ref() != Some(&status) {
        actions.push(Action::WriteStatus(Box::new(status)));
    }
    actions
}

/// The spec the run follows, where it came from (for messages), and the
/// MyPipeline's name; None after failing the run when there is none.
type Followed<'a> = (&'a PipelineSpec, String, Option<&'a str>);

fn followed_spec<'a>(decision: &mut Decision<'a>) -> Option<Followed<'a>> {
    let observed = decision.observed;
    let run = observed.run;
    let namespace = decision.namespace();
    // The snapshot wins, so editing the MyPipeline never changes a run in flight.
    let snapshot = run.status.as_ref().and_then(|s| s.pipeline_spec.as_ref());
    let named = |name: &str| format!("MyPipeline {name:?}: spec");
    match (snapshot, observed.pipeline) {
        (
            Some(spec),
            PipelineLookup::Found { name, .. }
            | PipelineLookup::Missing { name }
            | PipelineLookup::Malformed { name, .. },
        ) => Some((spec, named(name), Some(name))),
        (Some(spec), _) | (None, PipelineLookup::Inline(spec)) => Some((spec, "spec.pipelineSpec".to_string(), None)),
        (None, PipelineLookup::Found { name, spec }) => Some((spec, named(name), Some(name))),
        // Cancelled while waiting for its pipeline (fetched or not created yet).
        (None, PipelineLookup::Resolving { .. } | PipelineLookup::Missing { .. })
            if run.spec.status == Some(RunSpecStatus::Cancelled) =>
        {
            decision.finish(
                false,
                reason::PIPELINE_CANCELLED,
                "the pipeline run was cancelled".to_string(),
            );
            None
        }
        (None, PipelineLookup::Missing { name }) => {
            if !wait_for_missing(decision, &format!("MyPipeline {name:?}")) {
                let message = format!(
                    "MyPipeline {name:?} was not found in namespace {namespace:?} (pipelineRef must name a MyPipeline in the run's own namespace){}",
                    grace::waited_note()
                );
                decision.finish(false, reason::PIPELINE_RESOLUTION_FAILED, message);
            }
            None
        }
        (None, PipelineLookup::Malformed { name, problem }) => {
            let message = format!("MyPipeline {name:?} in namespace {namespace:?} cannot be read: {problem}");
            decision.finish(false, reason::PIPELINE_VALIDATION_FAILED, message);
            None
        }
        (None, PipelineLookup::Resolved { name, spec, from }) => {
            decision.status.resolved_from = Some(from.clone());
            Some((spec, named(name), Some(name)))
        }
        (None, PipelineLookup::Resolving { what }) => {
            decision.set_condition("Unknown", reason::RESOLVING, format!("spec.remotePipeline: {what}"));
            None
        }
        (None, PipelineLookup::Unresolved { problem }) => {
            let message = format!("spec.remotePipeline: {problem}");
            decision.finish(false, reason::PIPELINE_RESOLUTION_FAILED, message);
            None
        }
        (None, PipelineLookup::Unspecified) => {
            let sources = [
                run.spec.pipeline_ref.is_some(),
                run.spec.pipeline_spec.is_some(),
                run.spec.remote_pipeline.is_some(),
            ];
            let message = if sources.iter().any(|set| *set) {
                "spec.pipelineRef: set one of pipelineRef, pipelineSpec and remotePipeline, not several"
            } else {
                "spec.pipelineRef: set pipelineRef (the name of a MyPipeline), an inline pipelineSpec or a remotePipeline"
            };
            decision.finish(false, reason::PIPELINE_VALIDATION_FAILED, message.to_string());
            None
        }
    }
}

/// This run's children (controlled by it), by pipeline task.
struct OurChildren<'a> {
    /// Each task's state for scheduling (a matrixed task's, from all its children).
    states: BTreeMap<String, ChildState>,
    /// Each task's children that exist (a matrixed task's in combination order).
    runs: BTreeMap<String, Vec<&'a MyTaskRun>>,
    /// Each matrixed task that has children: how many combinations it has.
    matrix_sizes: BTreeMap<String, usize>,
}

impl OurChildren<'_> {
    fn exists(&self, task: &str, name: &str) -> bool {
        self.runs
            .get(task)
            .is_some_and(|runs| runs.iter().any(|r| r.metadata.name.as_deref() == Some(name)))
    }
}

fn our_children<'a>(decision: &Decision<'a>, spec: &PipelineSpec) -> OurChildren<'a> {
    let run_name = decision.run_name();
    let uid = decision.run().metadata.uid.clone().unwrap_or_default();
    let found: BTreeMap<&str, &MyTaskRun> = decision
        .observed
        .children
        .iter()
        .filter(|c| owned_by(c, &uid))
        .filter_map(|c| Some((c.metadata.name.as_deref()?, c)))
        .collect();
    let mut children = OurChildren {
        states: BTreeMap::new(),
        runs: BTreeMap::new(),
        matrix_sizes: BTreeMap::new(),
    };
    let max = decision.limits.max_matrix_combinations;
    for task in spec.all_tasks() {
        if task.matrix.is_some() {
            if let Some((count, runs)) = matrix_children(&found, &run_name, &task.name, max) {
                let states: Vec<Option<ChildState>> = runs.iter().map(|r| r.map(child_state)).collect();
                children.states.insert(task.name.clone(), aggregate(&states));
                children
                    .runs
                    .insert(task.name.clone(), runs.into_iter().flatten().collect());
                children.matrix_sizes.insert(task.name.clone(), count);
            }
        } else if let Some(child) = found.get(child_name(&run_name, &task.name).as_str()) {
            children.states.insert(task.name.clone(), child_state(child));
            children.runs.insert(task.name.clone(), vec![child]);
        }
    }
    children
}

/// The children of a matrixed task, one slot per combination (None: not
/// created yet), and the combination count, which its children carry; None
/// when it has no children.
fn matrix_children<'a>(
    found: &BTreeMap<&str, &'a MyTaskRun>,
    run_name: &str,
    task: &str,
    max: usize,
) -> Option<(usize, Vec<Option<&'a MyTaskRun>>)> {
    let count = found
        .values()
        .filter(|c| {
            c.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_PIPELINE_TASK))
                .map(String::as_str)
                == Some(task)
        })
        .filter_map(|c| {
            c.metadata
                .annotations
                .as_ref()?
                .get(ANNOTATION_MATRIX_COMBINATIONS)?
                .parse()
                .ok()
        })
        .filter(|count| *count <= max)
        .max()?;
    let slots: Vec<Option<&MyTaskRun>> = (0..count)
        .map(|index| {
            found
                .get(names::matrix_child_name(run_name, task, index).as_str())
                .copied()
        })
        .collect();
    slots.iter().any(Option::is_some).then_some((count, slots))
}

/// Why the run stops now, if it does: cancelled, or out of time.
fn stop_reason(decision: &Decision<'_>) -> Option<Stop> {
    if decision.run().spec.status == Some(RunSpecStatus::Cancelled) {
        Some(Stop::Cancelled)
    } else if decision
        .pipeline_timeout()
        .is_some_and(|limit| decision.elapsed() >= limit)
    {
        Some(Stop::TimedOut)
    } else {
        None
    }
}

/// The task of every pipeline task: inline, the child's snapshot, or the
/// MyTask; Err lists the MyTasks that were not found. A remote task is
/// known once its child fetched it (its snapshot); until then it is left
/// out, and validation takes its params and results on trust.
fn task_specs(
    decision: &Decision<'_>,
    spec: &PipelineSpec,
    children: &OurChildren<'_>,
) -> Result<BTreeMap<String, TaskSpec>, Vec<String>> {
    let mut task_specs: BTreeMap<String, TaskSpec> = BTreeMap::new();
    let mut missing = Vec::new();
    for task in spec.all_tasks() {
        let snapshot = children
            .runs
            .get(&task.name)
            .and_then(|runs| runs.first())
            .and_then(|c| c.status.as_ref())
            .and_then(|s| s.task_spec.as_ref());
        let resolved = match (&task.task_spec, &task.task_ref) {
            (Some(inline), _) => Some(inline),
            (None, Some(name)) => snapshot.or_else(|| decision.observed.tasks.get(name)),
            (None, None) if task.remote_task.is_some() => snapshot,
            (None, None) => None, // reported by validation
        };
        match (resolved, &task.task_ref) {
            (Some(found), _) => {
                task_specs.insert(task.name.clone(), found.clone());
            }
            (None, Some(name)) if !name.is_empty() => {
                missing.push(format!("MyTask {name:?} (pipeline task {:?})", task.name));
            }
            (None, _) => {}
        }
    }
    if missing.is_empty() {
        Ok(task_specs)
    } else {
        Err(missing)
    }
}

/// Fails the run before scheduling, keeping the record of its children.
fn fail_before_scheduling(
    decision: &mut Decision<'_>,
    spec: &PipelineSpec,
    children: &OurChildren<'_>,
    why: &str,
    message: String,
) {
    record_children(decision, spec, &children.runs, &[]);
    decision.fail_early(why, message, children);
}

/// While the run is young, waits for a MyPipeline or MyTask it names that
/// is not in the cluster yet (see `grace`); true if it waits.
fn wait_for_missing(decision: &mut Decision<'_>, missing: &str) -> bool {
    let created = decision.run().metadata.creation_timestamp.as_ref();
    let Some(waiting) = grace::waiting(created, decision.observed.now, missing, &decision.namespace()) else {
        return false;
    };
    decision.set_condition("Unknown", reason::RESOLVING, waiting.message);
    decision.actions.push(Action::RequeueAfter(waiting.look_again_in));
    true
}

fn decide_into(decision: &mut Decision<'_>) {
    let Some((spec, field, pipeline_name)) = followed_spec(decision) else {
        return;
    };
    decision.status.pipeline_spec = Some(spec.clone());
    let children = our_children(decision, spec);
    if let Some(stop) = stop_reason(decision) {
        let mut schedule = stop_all(spec, &children.states, stop);
        replaced_message(decision.run(), &mut schedule);
        record_children(decision, spec, &children.runs, &[]);
        decision.apply(spec, schedule, pipeline_name, &children);
        return;
    }
    if !decision.observed.problems.is_empty() {
        let message = decision.observed.problems.join("; ");
        fail_before_scheduling(decision, spec, &children, reason::PIPELINE_VALIDATION_FAILED, message);
        return;
    }
    let task_specs = match task_specs(decision, spec, &children) {
        Ok(task_specs) => task_specs,
        Err(missing) => {
            let missing = missing.join(", ");
            if wait_for_missing(decision, &missing) {
                record_children(decision, spec, &children.runs, &[]);
                return;
            }
            let message = format!(
                "{missing} not found in namespace {:?} (taskRef must name a MyTask in the run's own namespace){}",
                decision.namespace(),
                grace::waited_note()
            );
            fail_before_scheduling(decision, spec, &children, reason::PIPELINE_RESOLUTION_FAILED, message);
            return;
        }
    };
    schedule_children(decision, (spec, &field, pipeline_name), &children, &task_specs);
}

/// Validates the pipeline with its tasks and starts what is ready.
fn schedule_children(
    decision: &mut Decision<'_>,
    (spec, field, pipeline_name): (&PipelineSpec, &str, Option<&str>),
    children: &OurChildren<'_>,
    task_specs: &BTreeMap<String, TaskSpec>,
) {
    let run = decision.run();
    let run_name = decision.run_name();
    let uid = run.metadata.uid.clone().unwrap_or_default();
    let context = context_variables(
        &run_name,
        &decision.namespace(),
        &uid,
        pipeline_name.unwrap_or(&run_name),
    );
    let inputs = PipelineInputs {
        spec,
        field,
        task_specs,
        run_params: &run.spec.params,
        run_workspaces: &run.spec.workspaces,
        timeouts: run.spec.timeouts.as_ref(),
        task_run_specs: &run.spec.task_run_specs,
        context: &context,
        max_tasks: decision.limits.max_pipeline_tasks,
        max_matrix_combinations: decision.limits.max_matrix_combinations,
    };
    let valid = match validate_pipeline(&inputs) {
        Ok(valid) => valid,
        Err(errors) => {
            fail_before_scheduling(
                decision,
                spec,
                children,
                reason::PIPELINE_VALIDATION_FAILED,
                errors.to_string(),
            );
            return;
        }
    };
    let tasks_timed_out = decision
        .timeout_of(|t| &t.tasks)
        .flatten()
        .is_some_and(|limit| decision.elapsed() >= limit);
    let schedule = schedule(&ScheduleInput {
        spec,
        dag: &valid.dag,
        params: &valid.params,
        context: &context,
        children: &children.states,
        tasks_timed_out,
        matrix_sizes: &children.matrix_sizes,
        max_matrix_combinations: decision.limits.max_matrix_combinations,
        workspaces: &valid.workspaces,
    });
    record_children(decision, spec, &children.runs, &schedule.start);
    decision.apply(spec, schedule, pipeline_name, children);
}

/// Lists every child that exists or is being created, in pipeline order
/// (a matrixed task's in combination order).
fn record_children(
    decision: &mut Decision<'_>,
    spec: &PipelineSpec,
    existing: &BTreeMap<String, Vec<&MyTaskRun>>,
    starting: &[TaskToStart],
) {
    let run_name = decision.run_name();
    let names_of = |task: &PipelineTask| -> Vec<String> {
        match starting.iter().find(|s| s.name == task.name) {
            Some(TaskToStart {
                combinations: Some(combinations),
                ..
            }) => (0..combinations.len())
                .map(|index| names::matrix_child_name(&run_name, &task.name, index))
                .collect(),
            Some(_) => vec![child_name(&run_name, &task.name)],
            None => existing
                .get(&task.name)
                .into_iter()
                .flatten()
                .filter_map(|run| run.metadata.name.clone())
                .collect(),
        }
    };
    decision.status.child_references = spec
        .all_tasks()
        .flat_map(|t| {
            names_of(t).into_iter().map(|name| ChildReference {
                name,
                pipeline_task_name: t.name.clone(),
                kind: "MyTaskRun".to_string(),
            })
        })
        .collect();
}
