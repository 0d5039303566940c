//! What to do about a MyTaskRun, decided from what was observed: a pure
//! function. The controller fetches the inputs and carries out the actions.

use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::api::{
    AttemptStatus, Condition, MyTaskRun, ResolvedFrom, RunSpecStatus, StepActionSource, TaskRunStatus, TaskSpec,
};
use crate::engine::duration::parse_duration;
use crate::names;
use crate::plan::{AttemptInputs, TaskSource, plan_task_run_with};
use crate::pod::node::{NodeHealth, NodeVerdict, judge_node};
use crate::pod::render::RenderSettings;
use crate::pod::results::FetchedResults;
use crate::pod::status::{PodReading, Succeeded, read_pod};
use crate::reason;

pub use super::conditions::CONDITION_SUCCEEDED;
use super::conditions::{is_final, set_succeeded, succeeded};
use super::grace;
use super::owner::{is_controlled_by, name_taken};

/// The run's task, as the controller found it.
#[derive(Debug, Clone, Copy)]
pub enum TaskLookup<'a> {
    Found {
        name: &'a str,
        spec: &'a TaskSpec,
    },
    Inline(&'a TaskSpec),
    Missing {
        name: &'a str,
    },
    /// The MyTask exists but cannot be decoded; `problem` names the field.
    Malformed {
        name: &'a str,
        problem: &'a str,
    },
    /// `remoteTask`, just fetched: used as `Found`, and `from` is recorded.
    Resolved {
        name: &'a str,
        spec: &'a TaskSpec,
        from: &'a ResolvedFrom,
    },
    /// `remoteTask` is being fetched (`what` says how); no pod yet.
    Resolving {
        what: &'a str,
    },
    /// `remoteTask` cannot be had; `problem` says why.
    Unresolved {
        problem: &'a str,
    },
}

/// Everything the decision depends on.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    pub run: &'a MyTaskRun,
    pub task: TaskLookup<'a>,
    /// The pod of the current attempt, if it exists.
    pub pod: Option<&'a Pod>,
    /// The steps' results frames, read from the pod's logs once it finished.
    pub results: &'a FetchedResults,
    /// The health of the node the pod is bound to (its `spec.nodeName`), if
    /// the controller's node cache has it; None before scheduling.
    pub node: Option<&'a NodeHealth>,
    /// The MyStepActions the task's steps run and the ServiceAccount's
    /// credentials, read only when an attempt is to start (after that the
    /// status holds the task with the actions inlined, the pod the rest).
    pub inputs: &'a AttemptInputs,
    pub now: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DecideSettings {
    pub render: RenderSettings,
    pub default_timeout: Duration,
    /// How long the pod's node may be not Ready (Unknown or False) before
    /// the attempt ends `NodeLost` (`--node-lost-after`).
    pub node_lost_after: Duration,
}

/// A Kubernetes Event to publish about the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub warning: bool,
    pub reason: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    CreateClaim(Box<PersistentVolumeClaim>),
    /// Create the pod; an existing pod of that name is adopted only if
    /// this run controls it.
    CreatePod(Box<Pod>),
    /// Stop a pod's containers but keep the pod, so its logs stay readable.
    StopPod(String),
    Publish(Notice),
    WriteStatus(Box<TaskRunStatus>),
    RequeueAfter(Duration),
}

/// True once the run has a final `Succeeded` condition.
pub fn is_done(status: Option<&TaskRunStatus>) -> bool {
    status.is_some_and(|s| is_final(&s.conditions))
}

pub fn succeeded_condition(status: Option<&TaskRunStatus>) -> Option<&Condition> {
    succeeded(&status?.conditions)
}

/// Where each fetched step action came from, named by its step in the
/// task as inlined.
fn step_action_sources(task: &TaskSpec, inputs: &AttemptInputs) -> Vec<StepActionSource> {
    inputs
        .fetched_from
        .iter()
        .filter_map(|(index, from)| {
            Some(StepActionSource {
                step: task.steps.get(*index)?.name.clone(),
                resolved_from: from.clone(),
            })
        })
        .collect()
}

/// Why the run was cancelled: by a person, or replaced by a newer run of
/// its concurrency group (whose message the controller left on it).
pub fn cancel_message(run: &MyTaskRun) -> String {
    run.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(super::admission::ANNOTATION_CANCELLED_BY))
        .cloned()
        .unwrap_or_else(|| "the run was cancelled".to_string())
}

/// The attempt in progress: 0, then one more per recorded retry.
pub fn current_attempt(run: &MyTaskRun) -> u32 {
    run.status.as_ref().map_or(0, |s| s.retries_status.len() as u32)
}

/// Builds the new status and the actions, step by step.
struct Decision<'a> {
    observed: Observed<'a>,
    settings: &'a DecideSettings,
    status: TaskRunStatus,
    actions: Vec<Action>,
}

impl<'a> Decision<'a> {
    fn now(&self) -> Time {
        Time(self.observed.now)
    }

    fn notice(&mut self, warning: bool, reason: &str, message: impl Into<String>) {
        self.actions.push(Action::Publish(Notice {
            warning,
            reason: reason.to_string(),
            message: message.into(),
        }));
    }

    fn set_condition(&mut self, outcome: Succeeded, why: &str, message: String) {
        let now = self.now();
        set_succeeded(&mut self.status.conditions, outcome.as_str(), why, message, now);
    }

    fn finish(&mut self, succeeded: Succeeded, why: &str, message: String, finished_at: Option<Time>) {
        self.set_condition(succeeded, why, message);
        if self.status.start_time.is_none() {
            self.status.start_time = Some(self.now());
        }
        self.status.completion_time = Some(finished_at.unwrap_or_else(|| self.now()));
    }

    fn attempt(&self) -> u32 {
        self.status.retries_status.len() as u32
    }

    /// Records a failed attempt and either starts the next one or fails
    /// the run. Cancellation is never retried.
    fn attempt_failed(
        &mut self,
        task: (&TaskSpec, TaskSource<'_>),
        why: &str,
        message: String,
        attempt_start: Option<Time>,
    ) {
        let retries = self.observed.run.spec.retries.unwrap_or(0);
        if why != reason::CANCELLED && self.attempt() < retries {
            let pod_name = self.status.pod_name.take().unwrap_or_default();
            self.status.retries_status.push(AttemptStatus {
                pod_name,
                reason: why.to_string(),
                message: message.clone(),
                start_time: attempt_start,
                completion_time: Some(self.now()),
            });
            self.status.steps.clear();
            self.status.results.clear();
            let attempt = self.attempt();
            self.notice(
                true,
                "Retrying",
                format!(
                    "attempt {attempt} of {} failed ({why}: {message}); retrying",
                    retries + 1
                ),
            );
            self.start_attempt(task);
        } else {
            self.notice(true, why, message.clone());
            self.finish(Succeeded::False, why, message, None);
        }
    }

    /// Plans the current attempt and creates its claims and pod.
    fn start_attempt(&mut self, (spec, source): (&TaskSpec, TaskSource<'_>)) {
        let run = self.observed.run;
        let attempt = self.attempt();
        if let Some(message) = self.observed.inputs.waiting_for() {
            // The fetch or lookup wakes the run when it ends.
            self.set_condition(Succeeded::Unknown, reason::PENDING, message);
            return;
        }
        match plan_task_run_with(
            run,
            spec,
            source,
            attempt,
            (self.settings.default_timeout, &self.settings.render),
            self.observed.inputs,
        ) {
            Err(errors) => {
                let message = errors.to_string();
                let why = match self.observed.inputs.a_fetch_failed() {
                    true => reason::RESOLUTION_FAILED,
                    false => reason::VALIDATION_FAILED,
                };
                self.notice(true, why, message.clone());
                self.finish(Succeeded::False, why, message, None);
            }
            Ok(plan) => {
                if attempt == 0 {
                    for warning in &plan.resolved.warnings {
                        self.notice(true, "Warning", warning.clone());
                    }
                    self.status.warnings = plan.resolved.warnings.clone();
                    self.notice(
                        false,
                        "Started",
                        format!("running task {:?}", plan.resolved.identity.task_name),
                    );
                }
                let pod_name = plan.pod.metadata.name.clone().unwrap_or_default();
                // The status written now is what reading the new pod will
                // give, so seeing the pod arrive changes nothing and costs
                // no second status write.
                let reading = read_pod(&plan.resolved.task, &plan.pod, false, self.observed.results);
                self.actions
                    .extend(plan.claims.into_iter().map(|c| Action::CreateClaim(Box::new(c))));
                self.actions.push(Action::CreatePod(Box::new(plan.pod)));
                if self.status.start_time.is_none() {
                    self.status.start_time = Some(self.now());
                }
                // With its step actions inlined: what the run means from now on.
                self.status.task_spec = Some(plan.resolved.task.clone());
                self.status.step_actions_resolved_from = step_action_sources(&plan.resolved.task, self.observed.inputs);
                self.status.pod_name = Some(pod_name);
                self.status.steps = reading.steps;
                self.status.results = reading.results;
                self.status.artifacts = Some(reading.artifacts).filter(|a| !a.is_empty());
                self.set_condition(Succeeded::Unknown, &reading.reason, reading.message);
                if let Some(timeout) = plan.resolved.timeout {
                    self.actions.push(Action::RequeueAfter(timeout));
                }
            }
        }
    }

    /// The run's timeout, None for "0". An invalid value was reported when
    /// the attempt started, so it counts as none here.
    fn timeout(&self) -> Option<Duration> {
        match self.observed.run.spec.timeout.as_deref().map(parse_duration) {
            None => Some(self.settings.default_timeout),
            Some(Ok(Duration::ZERO)) | Some(Err(_)) => None,
            Some(Ok(timeout)) => Some(timeout),
        }
    }

    /// When the current attempt's clock started: the run's start for the
    /// first attempt, the end of the previous one for a retry. The clock
    /// runs from there, pod or no pod, so an attempt whose pod the API
    /// server keeps refusing still times out.
    fn attempt_clock(&self) -> Option<Time> {
        match self.status.retries_status.last() {
            Some(previous) => previous.completion_time.clone(),
            None => self.status.start_time.clone(),
        }
    }

    /// True (after failing the attempt) if the attempt ran out of time
    /// before its pod was made.
    fn timed_out_without_pod(&mut self, task: (&TaskSpec, TaskSource<'_>)) -> bool {
        let (Some(timeout), Some(started)) = (self.timeout(), self.attempt_clock()) else {
            return false;
        };
        let elapsed_ms = self.observed.now.as_millisecond() - started.0.as_millisecond();
        if elapsed_ms < timeout.as_millis() as i64 {
            return false;
        }
        let last = succeeded_condition(Some(&self.status)).map(|c| c.message.clone());
        let mut message = format!("the run did not finish within its timeout of {}s", timeout.as_secs());
        if let Some(last) = last.filter(|m| !m.is_empty()) {
            message.push_str(&format!(" (no pod was running yet; last: {last})"));
        }
        self.attempt_failed(task, reason::TIMEOUT, message, Some(started));
        true
    }

    /// Fails the run because a pod under its expected name belongs to
    /// someone else: it is neither read nor stopped.
    fn refuse_foreign_pod(&mut self, pod_name: &str) {
        let run_name = self.observed.run.metadata.name.clone().unwrap_or_default();
        let message = name_taken("pod", pod_name, "MyTaskRun", &run_name);
        self.notice(true, reason::POD_NAME_TAKEN, message.clone());
        self.finish(Succeeded::False, reason::POD_NAME_TAKEN, message, None);
    }

    /// Notices for steps that failed since the last look.
    fn step_notices(&mut self, reading: &PodReading) {
        for step in &reading.steps {
            let failed = step.state == "Terminated" && step.exit_code.unwrap_or(0) != 0 && step.reason != "Skipped";
            let known = self
                .status
                .steps
                .iter()
                .any(|old| old.name == step.name && old.state == "Terminated");
            if failed && !known {
                let message = format!(
                    "step {:?} failed with exit code {}",
                    step.name,
                    step.exit_code.unwrap_or(-1)
                );
                self.notice(true, "StepFailed", message);
            }
        }
    }

    fn follow_pod(&mut self, task: (&TaskSpec, TaskSource<'_>), pod: &Pod, cancelled: bool) {
        let reading = read_pod(task.0, pod, cancelled, self.observed.results);
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        let attempt_start = pod.metadata.creation_timestamp.clone();
        self.step_notices(&reading);
        self.status.steps = reading.steps.clone();
        self.status.results = reading.results.clone();
        self.status.artifacts = Some(reading.artifacts.clone()).filter(|a| !a.is_empty());
        self.status.pod_name = Some(pod_name.clone());

        if cancelled && !reading.is_done() {
            self.actions.push(Action::StopPod(pod_name));
            let message = cancel_message(self.observed.run);
            self.notice(true, reason::CANCELLED, message.clone());
            self.finish(Succeeded::False, reason::CANCELLED, message, None);
            return;
        }
        if reading.is_done() {
            if reading.succeeded == Succeeded::False && has_live_containers(pod) {
                // A step died without a report or an image cannot be pulled:
                // the later steps would wait for a hand-off that never comes.
                self.actions.push(Action::StopPod(pod_name.clone()));
            }
            match reading.succeeded {
                Succeeded::True => {
                    self.notice(false, reason::SUCCEEDED, reading.message.clone());
                    self.finish(Succeeded::True, &reading.reason, reading.message, reading.finished_at);
                }
                _ => self.attempt_failed(task, &reading.reason, reading.message, attempt_start),
            }
            return;
        }
        if pod.metadata.deletion_timestamp.is_some() {
            let message = format!("pod {pod_name} was deleted before the run finished");
            self.attempt_failed(task, reason::POD_DELETED, message, attempt_start);
            return;
        }
        match judge_node(self.observed.node, self.observed.now, self.settings.node_lost_after) {
            NodeVerdict::Lost { message } => {
                // The pod is kept, with its deadline lowered: should the node
                // come back, its kubelet stops the containers instead of
                // finishing a stale attempt next to the retry (which is a new
                // pod, scheduled elsewhere since the node is tainted).
                self.actions.push(Action::StopPod(pod_name));
                self.attempt_failed(task, reason::NODE_LOST, message, attempt_start);
                return;
            }
            NodeVerdict::Suspect { lost_in } => self.actions.push(Action::RequeueAfter(lost_in)),
            NodeVerdict::Fine => {}
        }
        let clock = self.attempt_clock().or(attempt_start.clone());
        if let (Some(timeout), Some(started)) = (self.timeout(), clock.as_ref()) {
            let elapsed_ms = self.observed.now.as_millisecond() - started.0.as_millisecond();
            let timeout_ms = timeout.as_millis() as i64;
            if elapsed_ms >= timeout_ms {
                self.actions.push(Action::StopPod(pod_name));
                let message = format!("the run did not finish within its timeout of {}s", timeout.as_secs());
                self.attempt_failed(task, reason::TIMEOUT, message, attempt_start);
                return;
            }
            self.actions.push(Action::RequeueAfter(Duration::from_millis(
                (timeout_ms - elapsed_ms) as u64,
            )));
        }
        let was_running =
            succeeded_condition(self.observed.run.status.as_ref()).is_some_and(|c| c.reason == reason::RUNNING);
        if reading.reason == reason::RUNNING && !was_running {
            self.notice(false, reason::RUNNING, reading.message.clone());
        }
        self.set_condition(Succeeded::Unknown, &reading.reason, reading.message);
    }

    /// Ends a run cancelled before it had a pod, with an Event saying so.
    fn end_cancelled(&mut self) {
        let message = cancel_message(self.observed.run);
        self.notice(true, reason::CANCELLED, message.clone());
        self.finish(Succeeded::False, reason::CANCELLED, message, None);
    }

    /// The named MyTask is not in the cluster: the run waits for it while
    /// it is young (see `grace`), then fails.
    fn missing_task(&mut self, name: &str, namespace: &str, cancelled: bool) {
        let run = self.observed.run;
        if cancelled {
            self.end_cancelled();
            return;
        }
        let missing = format!("MyTask {name:?}");
        let created = run.metadata.creation_timestamp.as_ref();
        if let Some(waiting) = grace::waiting(created, self.observed.now, &missing, namespace) {
            self.set_condition(Succeeded::Unknown, reason::RESOLVING, waiting.message);
            self.actions.push(Action::RequeueAfter(waiting.look_again_in));
            return;
        }
        let message = format!(
            "{missing} was not found in namespace {namespace:?} (taskRef must name a MyTask in the run's own namespace){}",
            grace::waited_note()
        );
        self.notice(true, reason::RESOLUTION_FAILED, message.clone());
        self.finish(Succeeded::False, reason::RESOLUTION_FAILED, message, None);
    }
}

/// Decides what to do about a run. Returns no actions for a finished run.
pub fn decide(observed: Observed<'_>, settings: &DecideSettings) -> Vec<Action> {
    let run = observed.run;
    if is_done(run.status.as_ref()) {
        return Vec::new();
    }
    let mut decision = Decision {
        observed,
        settings,
        status: run.status.clone().unwrap_or_default(),
        actions: Vec::new(),
    };
    decision.status.observed_generation = run.metadata.generation;
    let cancelled = run.spec.status == Some(RunSpecStatus::Cancelled);
    let run_name = run.metadata.name.clone().unwrap_or_default();
    let namespace = run.metadata.namespace.clone().unwrap_or_default();

    let task = match observed.task {
        TaskLookup::Found { name, spec } => Some((spec, TaskSource::Named(name))),
        TaskLookup::Inline(spec) => Some((spec, TaskSource::Inline)),
        TaskLookup::Missing { name } => {
            decision.missing_task(name, &namespace, cancelled);
            None
        }
        TaskLookup::Malformed { name, problem } => {
            let message = format!("MyTask {name:?} in namespace {namespace:?} cannot be read: {problem}");
            decision.notice(true, reason::VALIDATION_FAILED, message.clone());
            decision.finish(Succeeded::False, reason::VALIDATION_FAILED, message, None);
            None
        }
        TaskLookup::Resolved { name, spec, from } => {
            decision.status.resolved_from = Some(from.clone());
            Some((spec, TaskSource::Named(name)))
        }
        TaskLookup::Resolving { what } if !cancelled => {
            decision.set_condition(
                Succeeded::Unknown,
                reason::RESOLVING,
                format!("spec.remoteTask: {what}"),
            );
            None
        }
        TaskLookup::Resolving { .. } => {
            let message = cancel_message(run);
            decision.finish(Succeeded::False, reason::CANCELLED, message, None);
            None
        }
        TaskLookup::Unresolved { problem } => {
            let message = format!("spec.remoteTask: {problem}");
            decision.notice(true, reason::RESOLUTION_FAILED, message.clone());
            decision.finish(Succeeded::False, reason::RESOLUTION_FAILED, message, None);
            None
        }
    };

    if let Some(task) = task {
        let expected_pod = names::pod_name(&run_name, decision.attempt());
        let uid = run.metadata.uid.clone().unwrap_or_default();
        match observed.pod {
            Some(pod) if !is_controlled_by(&pod.metadata, &uid) => decision.refuse_foreign_pod(&expected_pod),
            Some(pod) => decision.follow_pod(task, pod, cancelled),
            None if cancelled => decision.end_cancelled(),
            None if decision.status.pod_name.as_deref() == Some(expected_pod.as_str()) => {
                let message = format!("pod {expected_pod} was deleted before the run finished");
                decision.attempt_failed(task, reason::POD_DELETED, message, None);
            }
            None if decision.timed_out_without_pod(task) => {}
            None => decision.start_attempt(task),
        }
    }

    let Decision {
        status, mut actions, ..
    } = decision;
    if run.status.as_ref() != Some(&status) {
        actions.push(Action::WriteStatus(Box::new(status)));
    }
    actions
}

/// True while a container of the pod may still run: its phase is not final
/// and some container (a later step, a sidecar) has not ended. A pod whose
/// containers all ended needs no stopping, only the kubelet's tidying up.
fn has_live_containers(pod: &Pod) -> bool {
    let Some(status) = pod.status.as_ref() else { return true };
    if matches!(status.phase.as_deref(), Some("Succeeded") | Some("Failed")) {
        return false;
    }
    let containers = status.container_statuses.iter().flatten();
    let init_containers = status.init_container_statuses.iter().flatten();
    let mut all = containers.chain(init_containers).peekable();
    all.peek().is_none() || all.any(|c| c.state.as_ref().is_none_or(|s| s.terminated.is_none()))
}
