//! The scheduler: from the pipeline and the state of its child runs to
//! what happens next. Pure; the reconciler turns its answer into requests.

use std::collections::BTreeMap;

use crate::api::{Param, ParamType, ParamValue, PipelineSpec, PipelineTask, RunResult, SkippedTask};
use crate::engine::errors::ValidationErrors;
use crate::engine::validate::sub_path_escapes;

use super::dag::{Dag, Edge};
use super::matrix::{Combination, combinations};
use super::propagate::with_propagated_params;
use super::refs::{TaskVariable, task_texts, task_variables};
use super::skip;
use super::variables::{FinallyStatus, KnownResults, PipelineVariables, substitute_value, task_context, when_holds};

/// What became of a pipeline task's child run, as far as scheduling cares.
#[derive(Debug, Clone, PartialEq)]
pub enum ChildState {
    /// Created and not finished (includes retrying: the child retries itself).
    Running,
    Succeeded {
        results: BTreeMap<String, ParamValue>,
    },
    Failed {
        reason: String,
        message: String,
        /// What the child wrote before it failed: a task whose failure is
        /// ignored (`onError: continue`) passes these on.
        results: BTreeMap<String, ParamValue>,
    },
    /// A matrixed task some of whose children are still to be created
    /// (a creation failed, or the controller stopped in between): it is
    /// started again, and only the missing children are made.
    Partial,
}

/// Why the whole run stops at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Cancelled,
    TimedOut,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TaskToStart {
    pub name: String,
    pub finally: bool,
    /// The task's params with every reference substituted.
    pub params: Vec<Param>,
    /// The task's workspace `subPath`s with every reference substituted,
    /// by the task's workspace name.
    pub sub_paths: BTreeMap<String, String>,
    /// For a matrixed task, each child's matrix params (added to `params`).
    pub combinations: Option<Vec<Combination>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Tasks are still running or about to start. `stopping`: a task
    /// failed, so only running tasks and finally tasks remain.
    Running { stopping: bool },
    /// Every task succeeded, or was skipped by its `when` (then `skipped` > 0).
    Succeeded { skipped: usize },
    /// `reason` is one of the `reason::PIPELINE_*` constants.
    Failed { reason: &'static str, message: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub start: Vec<TaskToStart>,
    /// Running tasks to cancel.
    pub cancel: Vec<String>,
    /// Every task known not to run, in pipeline order.
    pub skipped: Vec<SkippedTask>,
    pub outcome: Outcome,
    /// The pipeline's results, once it is done.
    pub results: Vec<RunResult>,
    /// Counts for the condition message.
    pub counts: Counts,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub succeeded: usize,
    pub failed: usize,
    /// Failed tasks whose `onError: continue` let the run go on.
    pub ignored: usize,
    pub skipped: usize,
    pub incomplete: usize,
}

impl Counts {
    pub fn message(&self) -> String {
        let failed = self.failed + self.ignored;
        let ignored = if self.ignored > 0 {
            format!(" (Ignored: {})", self.ignored)
        } else {
            String::new()
        };
        format!(
            "Tasks Completed: {} (Failed: {failed}{ignored}), Skipped: {}, Incomplete: {}",
            self.succeeded + failed,
            self.skipped,
            self.incomplete
        )
    }
}

pub struct ScheduleInput<'a> {
    pub spec: &'a PipelineSpec,
    pub dag: &'a Dag,
    /// The pipeline's resolved params.
    pub params: &'a BTreeMap<String, ParamValue>,
    pub context: &'a BTreeMap<&'static str, String>,
    /// Children that exist, by pipeline task name.
    pub children: &'a BTreeMap<String, ChildState>,
    /// `timeouts.tasks` has run out: no new non-finally task starts.
    pub tasks_timed_out: bool,
    /// Each matrixed task that has children, with its combination count.
    pub matrix_sizes: &'a BTreeMap<String, usize>,
    /// Most combinations a matrixed task may have.
    pub max_matrix_combinations: usize,
    /// The pipeline's workspaces, each with whether the run binds it.
    pub workspaces: &'a BTreeMap<String, bool>,
}

/// Where a task stands this time round.
#[derive(Debug, Clone, PartialEq)]
enum State {
    /// Waiting for parents.
    Pending,
    /// Starting now; counts as running for its children.
    Starting,
    Running,
    Succeeded,
    Failed,
    /// Failed, but its `onError: continue` lets the run go on.
    FailureIgnored,
    Skipped(&'static str),
}

impl State {
    fn of(task: &PipelineTask, child: &ChildState) -> State {
        match child {
            ChildState::Running | ChildState::Partial => State::Running,
            ChildState::Succeeded { .. } => State::Succeeded,
            ChildState::Failed { .. } if task.failure_ignored() => State::FailureIgnored,
            ChildState::Failed { .. } => State::Failed,
        }
    }

    fn is_final(&self) -> bool {
        matches!(
            self,
            State::Succeeded | State::Failed | State::FailureIgnored | State::Skipped(_)
        )
    }

    /// `$(tasks.X.status)`: Succeeded, Failed, or None when it did not run.
    fn status_word(&self) -> &'static str {
        match self {
            State::Succeeded => "Succeeded",
            State::Failed | State::FailureIgnored => "Failed",
            _ => "None",
        }
    }
}

/// The results each finished task gives later tasks: a succeeded one's, and
/// those a task whose failure is ignored wrote before it failed.
fn produced_results(
    spec: &PipelineSpec,
    children: &BTreeMap<String, ChildState>,
) -> BTreeMap<String, BTreeMap<String, ParamValue>> {
    let failure_ignored = |name: &str| {
        spec.tasks
            .iter()
            .chain(&spec.finally)
            .any(|task| task.name == name && task.failure_ignored())
    };
    children
        .iter()
        .filter_map(|(name, child)| match child {
            ChildState::Succeeded { results } => Some((name.clone(), results.clone())),
            ChildState::Failed { results, .. } if failure_ignored(name) => Some((name.clone(), results.clone())),
            _ => None,
        })
        .collect()
}

/// Where a pipeline task is declared and how it is started.
struct Placement<'f> {
    /// `spec.tasks[2]` or `spec.finally[0]`.
    field: &'f str,
    finally: bool,
    /// Most combinations of a matrix.
    max_combinations: usize,
}

/// Starts a task whose turn it is: Starting, or skipped when its matrix
/// has no combinations.
fn begin(
    task: &PipelineTask,
    placement: &Placement<'_>,
    vars: &PipelineVariables<'_>,
    to_start: &mut Vec<TaskToStart>,
    errors: &mut ValidationErrors,
) -> State {
    let started = start(task, placement, vars, errors);
    if started.combinations.as_ref().is_some_and(Vec::is_empty) {
        return State::Skipped(skip::MATRIX_EMPTY);
    }
    to_start.push(started);
    State::Starting
}

/// Substitutes a task's params (and matrix) for starting it.
fn start(
    task: &PipelineTask,
    placement: &Placement<'_>,
    vars: &PipelineVariables<'_>,
    errors: &mut ValidationErrors,
) -> TaskToStart {
    let Placement { field, finally, .. } = *placement;
    let context = task_context(vars.context, task);
    let vars = &PipelineVariables {
        context: &context,
        ..*vars
    };
    let given: Vec<Param> = task
        .params
        .iter()
        .enumerate()
        .map(|(index, param)| Param {
            name: param.name.clone(),
            value: substitute_value(&param.value, vars, &format!("{field}.params[{index}].value"), errors),
        })
        .collect();
    let params = with_propagated_params(task, given, vars.params);
    let combinations = task
        .matrix
        .as_ref()
        .map(|matrix| combinations(matrix, vars, field, placement.max_combinations, errors));
    TaskToStart {
        name: task.name.clone(),
        finally,
        params,
        sub_paths: sub_paths(task, vars, field, errors),
        combinations,
    }
}

/// A matrixed task with children still to create is started again (its
/// `when` held already); the reconciler makes only the missing children.
fn resume_partial(
    task: &PipelineTask,
    child: &ChildState,
    placement: &Placement<'_>,
    vars: &PipelineVariables<'_>,
    to_start: &mut Vec<TaskToStart>,
    errors: &mut ValidationErrors,
) {
    if *child == ChildState::Partial {
        to_start.push(start(task, placement, vars, errors));
    }
}

/// Each workspace `subPath` of `task` with its `$(params...)` (and other
/// pipeline variables) substituted. A value must still be a relative path
/// without `..`: a param must not move a task out of its directory.
pub fn sub_paths(
    task: &PipelineTask,
    vars: &PipelineVariables<'_>,
    field: &str,
    errors: &mut ValidationErrors,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (index, workspace) in task.workspaces.iter().enumerate() {
        let Some(text) = &workspace.sub_path else {
            continue;
        };
        let at = format!("{field}.workspaces[{index}].subPath");
        match substitute_value(&ParamValue::String(text.clone()), vars, &at, errors) {
            ParamValue::String(path) if sub_path_escapes(&path) => {
                let from = if path == *text {
                    String::new()
                } else {
                    format!(" (from {text:?})")
                };
                errors.push(
                    at,
                    format!("subPath {path:?}{from} must be relative and must not contain '..'"),
                );
            }
            ParamValue::String(path) => {
                out.insert(workspace.name.clone(), path);
            }
            other => errors.push(
                at,
                format!("subPath {text:?} is a {}, it must be a string", other.param_type()),
            ),
        }
    }
    out
}

/// Stops everything at once: cancels running children, starts nothing
/// (not even finally tasks) and ends the run.
pub fn stop_all(spec: &PipelineSpec, children: &BTreeMap<String, ChildState>, stop: Stop) -> Schedule {
    let (reason, skip_reason, message) = match stop {
        Stop::Cancelled => (
            crate::reason::PIPELINE_CANCELLED,
            skip::CANCELLED,
            "the pipeline run was cancelled",
        ),
        Stop::TimedOut => (
            crate::reason::PIPELINE_TIMEOUT,
            skip::TIMEOUT,
            "the pipeline run did not finish within its timeout",
        ),
    };
    let mut counts = Counts::default();
    let mut cancel = Vec::new();
    let mut skipped = Vec::new();
    for task in spec.all_tasks() {
        match children.get(&task.name) {
            Some(ChildState::Running | ChildState::Partial) => {
                cancel.push(task.name.clone());
                counts.incomplete += 1;
            }
            Some(ChildState::Succeeded { .. }) => counts.succeeded += 1,
            Some(ChildState::Failed { .. }) => counts.failed += 1,
            None => {
                skipped.push(SkippedTask {
                    name: task.name.clone(),
                    reason: skip_reason.to_string(),
                });
                counts.skipped += 1;
            }
        }
    }
    let message = format!("{message}; {}", counts.message());
    Schedule {
        start: Vec::new(),
        cancel,
        skipped,
        outcome: Outcome::Failed { reason, message },
        results: Vec::new(),
        counts,
    }
}

/// What the finally tasks see of the tasks before them: each one's status
/// word and reason, and the aggregate `$(tasks.status)`. `failed`: a
/// regular task failed.
fn finally_status(
    spec: &PipelineSpec,
    states: &BTreeMap<&str, State>,
    children: &BTreeMap<String, ChildState>,
    failed: bool,
) -> FinallyStatus {
    let state_of = |name: &str| states.get(name).unwrap_or(&State::Pending);
    let reason_of = |name: &str| match (state_of(name), children.get(name)) {
        // As in Tekton: the failure of an `onError: continue` task reads
        // as ignored, whatever failed it.
        (State::FailureIgnored, _) => crate::reason::FAILURE_IGNORED.to_string(),
        (State::Failed, Some(ChildState::Failed { reason, .. })) => reason.clone(),
        (State::Succeeded, _) => crate::reason::SUCCEEDED.to_string(),
        _ => String::new(),
    };
    let names = || spec.tasks.iter().map(|t| t.name.clone());
    FinallyStatus {
        tasks: names()
            .map(|n| (n.clone(), state_of(&n).status_word().to_string()))
            .collect(),
        reasons: names().map(|n| (n.clone(), reason_of(&n))).collect(),
        // Running out of `timeouts.tasks` fails the run, so finally tasks see Failed.
        aggregate: if failed || states.values().any(|s| *s == State::Skipped(skip::TASKS_TIMEOUT)) {
            "Failed"
        } else if states.values().any(|s| matches!(s, State::Skipped(_))) {
            "Completed"
        } else {
            "Succeeded"
        }
        .to_string(),
    }
}

/// Decides what happens next. A task starts once every parent is done and
/// none failed; a failure stops new tasks but lets running ones and the
/// finally tasks finish.
pub fn schedule(input: &ScheduleInput<'_>) -> Schedule {
    let spec = input.spec;
    let produced = produced_results(spec, input.children);
    let vars = PipelineVariables {
        params: input.params,
        results: KnownResults::Produced(&produced),
        status: None,
        context: input.context,
        matrix_sizes: input.matrix_sizes,
        workspaces: input.workspaces,
    };
    let mut errors = ValidationErrors::default();
    let mut to_start = Vec::new();
    let failed = spec
        .tasks
        .iter()
        .any(|t| !t.failure_ignored() && matches!(input.children.get(&t.name), Some(ChildState::Failed { .. })));

    let mut states: BTreeMap<&str, State> = BTreeMap::new();
    for name in &input.dag.order {
        let Some((index, task)) = spec.tasks.iter().enumerate().find(|(_, t)| &t.name == name) else {
            continue;
        };
        let field = format!("spec.tasks[{index}]");
        let placement = Placement {
            field: &field,
            finally: false,
            max_combinations: input.max_matrix_combinations,
        };
        let state = if let Some(child) = input.children.get(name) {
            resume_partial(task, child, &placement, &vars, &mut to_start, &mut errors);
            State::of(task, child)
        } else if failed {
            State::Skipped(skip::STOPPING)
        } else if input.tasks_timed_out {
            State::Skipped(skip::TASKS_TIMEOUT)
        } else {
            let parents: Vec<(&State, Edge)> = input
                .dag
                .parents
                .get(name)
                .into_iter()
                .flatten()
                .map(|(parent, edge)| (states.get(parent.as_str()).unwrap_or(&State::Pending), *edge))
                .collect();
            let parent_skipped = |(state, edge): &(&State, Edge)| match state {
                State::Skipped(why) => *edge == Edge::Results || !matches!(*why, skip::WHEN_FALSE | skip::MATRIX_EMPTY),
                _ => false,
            };
            // A parent whose failure was ignored gives the results it wrote
            // before failing; a task reading one it did not write is skipped.
            let results_lost = |(state, edge): &(&State, Edge)| {
                **state == State::FailureIgnored && *edge == Edge::Results && reads_unwritten_result(task, &vars)
            };
            if parents.iter().any(|(state, _)| !state.is_final()) {
                State::Pending
            } else if parents.iter().any(parent_skipped) {
                State::Skipped(skip::PARENT_SKIPPED)
            } else if parents.iter().any(results_lost) {
                State::Skipped(skip::RESULTS_MISSING)
            } else {
                if when_holds(&task.when, &vars, &format!("{field}.when"), &mut errors) {
                    begin(task, &placement, &vars, &mut to_start, &mut errors)
                } else {
                    State::Skipped(skip::WHEN_FALSE)
                }
            }
        };
        states.insert(name.as_str(), state);
    }

    let regular_done = spec
        .tasks
        .iter()
        .all(|t| states.get(t.name.as_str()).is_some_and(State::is_final));
    let finally_status = finally_status(spec, &states, input.children, failed);
    let finally_vars = PipelineVariables {
        status: Some(&finally_status),
        ..vars
    };
    for (index, task) in spec.finally.iter().enumerate() {
        let field = format!("spec.finally[{index}]");
        let placement = Placement {
            field: &field,
            finally: true,
            max_combinations: input.max_matrix_combinations,
        };
        let state = if let Some(child) = input.children.get(&task.name) {
            resume_partial(task, child, &placement, &finally_vars, &mut to_start, &mut errors);
            State::of(task, child)
        } else if !regular_done {
            State::Pending
        } else {
            let missing = input
                .dag
                .finally_result_parents
                .get(&task.name)
                .into_iter()
                .flatten()
                .any(|parent| {
                    !matches!(
                        states.get(parent.as_str()),
                        Some(State::Succeeded | State::FailureIgnored)
                    )
                });
            if missing || reads_unwritten_result(task, &finally_vars) {
                State::Skipped(skip::RESULTS_MISSING)
            } else if when_holds(&task.when, &finally_vars, &format!("{field}.when"), &mut errors) {
                begin(task, &placement, &finally_vars, &mut to_start, &mut errors)
            } else {
                State::Skipped(skip::WHEN_FALSE)
            }
        };
        states.insert(task.name.as_str(), state);
    }

    let mut counts = Counts::default();
    let mut skipped = Vec::new();
    let mut failures = Vec::new();
    for task in spec.all_tasks() {
        match states.get(task.name.as_str()).unwrap_or(&State::Pending) {
            State::Succeeded => counts.succeeded += 1,
            State::Failed => {
                counts.failed += 1;
                if let Some(ChildState::Failed { reason, message, .. }) = input.children.get(&task.name) {
                    failures.push(format!("task {:?} failed ({reason}: {message})", task.name));
                }
            }
            State::Skipped(why) => {
                counts.skipped += 1;
                skipped.push(SkippedTask {
                    name: task.name.clone(),
                    reason: why.to_string(),
                });
            }
            State::FailureIgnored => counts.ignored += 1,
            State::Pending | State::Starting | State::Running => counts.incomplete += 1,
        }
    }

    // A reference that cannot be resolved at start time (a result the
    // parent did not write) fails the run rather than start a task wrongly.
    if !errors.is_empty() {
        let cancel = spec
            .all_tasks()
            .filter(|t| {
                matches!(
                    input.children.get(&t.name),
                    Some(ChildState::Running | ChildState::Partial)
                )
            })
            .map(|t| t.name.clone())
            .collect();
        return Schedule {
            start: Vec::new(),
            cancel,
            skipped,
            outcome: Outcome::Failed {
                reason: crate::reason::PIPELINE_VALIDATION_FAILED,
                message: errors.to_string(),
            },
            results: Vec::new(),
            counts,
        };
    }

    let outcome = if counts.incomplete > 0 {
        Outcome::Running { stopping: failed }
    } else if counts.failed > 0 {
        Outcome::Failed {
            reason: crate::reason::FAILED,
            message: format!("{}; {}", failures.join("; "), counts.message()),
        }
    } else if skipped.iter().any(|s| s.reason == skip::TASKS_TIMEOUT) {
        Outcome::Failed {
            reason: crate::reason::PIPELINE_TIMEOUT,
            message: format!("timeouts.tasks ran out before every task ran; {}", counts.message()),
        }
    } else {
        Outcome::Succeeded {
            skipped: counts.skipped,
        }
    };
    let results = if counts.incomplete == 0 {
        pipeline_results(spec, &finally_vars)
    } else {
        Vec::new()
    };
    Schedule {
        start: to_start,
        cancel: Vec::new(),
        skipped,
        outcome,
        results,
        counts,
    }
}

/// Whether a task reads a result that its task succeeded without writing:
/// such a finally task is skipped (`ResultsMissing`), as Tekton does, rather
/// than failing the run after the fact.
fn reads_unwritten_result(task: &PipelineTask, vars: &PipelineVariables<'_>) -> bool {
    let KnownResults::Produced(produced) = vars.results else {
        return false;
    };
    task_texts(task)
        .iter()
        .flat_map(|(_, text)| task_variables(text))
        .any(|(_, variable)| match variable {
            Ok(TaskVariable::Result { task, result, .. }) => {
                produced.get(task).is_some_and(|results| !results.contains_key(result))
            }
            _ => false,
        })
}

/// The pipeline's results, from its tasks' results. A result whose task
/// did not produce what it references is left out, not an error: the
/// run's outcome already tells why.
pub fn pipeline_results(spec: &PipelineSpec, vars: &PipelineVariables<'_>) -> Vec<RunResult> {
    spec.results
        .iter()
        .filter_map(|result| {
            let mut errors = ValidationErrors::default();
            let value = substitute_value(&result.value, vars, "", &mut errors);
            errors.is_empty().then(|| RunResult {
                name: result.name.clone(),
                result_type: match &value {
                    ParamValue::String(_) => ParamType::String,
                    ParamValue::Array(_) => ParamType::Array,
                    ParamValue::Object(_) => ParamType::Object,
                },
                value,
            })
        })
        .collect()
}
