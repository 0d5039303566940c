//! Reading a run's pod back into the run's status: a pure function of the
//! task, the pod and the results frames fetched from the steps' logs. The
//! entrypoint's report (the termination message) is preferred over the
//! container's own state, because it knows when the step's command really
//! started and what it produced. Results come from each step's own frame
//! (see `pod::results`), or inline in reports of the version 1 format.

use std::collections::BTreeMap;

use cicd_entrypoint::termination::{self, Outcome, StepReport, TooLarge};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::api::artifacts::{self, Artifacts};
use crate::api::{OnError, ParamType, ParamValue, ResultSpec, RunResult, StepState, TaskSpec};
use crate::engine::validate::{list_or_none, missing_keys};
use crate::layout::{STEP_ARTIFACTS, TASK_ARTIFACTS};
use crate::reason;

use super::render::{STEP_PREFIX, step_container_name};
use super::results::{Fetched, FetchedResults, ResultLimits};

/// The `Succeeded` condition's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Succeeded {
    True,
    False,
    Unknown,
}

impl Succeeded {
    pub fn as_str(self) -> &'static str {
        match self {
            Succeeded::True => "True",
            Succeeded::False => "False",
            Succeeded::Unknown => "Unknown",
        }
    }
}

/// What the pod says about the run.
#[derive(Debug, Clone, PartialEq)]
pub struct PodReading {
    pub succeeded: Succeeded,
    pub reason: String,
    pub message: String,
    pub steps: Vec<StepState>,
    pub results: Vec<RunResult>,
    /// Every step's artifacts, its own and the task's, in step order.
    pub artifacts: Artifacts,
    /// When the last step finished, if the pod is done.
    pub finished_at: Option<Time>,
}

impl PodReading {
    pub fn is_done(&self) -> bool {
        self.succeeded != Succeeded::Unknown
    }
}

/// Waiting reasons that mean the image will not come without a change.
const IMAGE_PULL_FAILURES: &[&str] = &["ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"];

fn time_from_ms(ms: i64) -> Option<Time> {
    Timestamp::from_millisecond(ms).ok().map(Time)
}

fn reason_of(outcome: Outcome, container_reason: Option<&str>) -> String {
    match (outcome, container_reason) {
        (_, Some("OOMKilled")) => "OOMKilled".to_string(),
        (Outcome::Succeeded, _) => "Completed".to_string(),
        (Outcome::Failed, _) => "Error".to_string(),
        (Outcome::TimedOut, _) => "TimedOut".to_string(),
        (Outcome::Skipped, _) => "Skipped".to_string(),
        (Outcome::Signaled, _) => "Signaled".to_string(),
    }
}

/// One step's state, and its report if the entrypoint wrote one.
fn read_step(name: &str, status: Option<&ContainerStatus>) -> (StepState, Option<StepReport>) {
    let container = step_container_name(name);
    let mut state = StepState {
        name: name.to_string(),
        container: container.clone(),
        state: "Waiting".into(),
        ..Default::default()
    };
    let Some(current) = status.and_then(|s| s.state.as_ref()) else {
        return (state, None);
    };
    if let Some(waiting) = &current.waiting {
        state.reason = waiting.reason.clone().unwrap_or_default();
        state.message = waiting.message.clone().unwrap_or_default();
        return (state, None);
    }
    if let Some(running) = &current.running {
        state.state = "Running".into();
        state.started_at = running.started_at.clone();
        return (state, None);
    }
    let Some(terminated) = &current.terminated else {
        return (state, None);
    };
    state.state = "Terminated".into();
    let report = terminated.message.as_deref().and_then(|m| termination::decode(m).ok());
    match &report {
        Some(report) => {
            state.exit_code = Some(report.exit_code);
            state.reason = reason_of(report.outcome, terminated.reason.as_deref());
            state.message = report.message.clone().unwrap_or_default();
            state.started_at = report.started_at_ms.and_then(time_from_ms);
            state.finished_at = report.finished_at_ms.and_then(time_from_ms);
        }
        None => {
            // No report: the container was killed before the entrypoint
            // could write one (OOM, deadline, node loss).
            state.exit_code = Some(terminated.exit_code);
            state.reason = terminated.reason.clone().unwrap_or_else(|| "Error".into());
            state.message = terminated.message.clone().unwrap_or_default();
            state.started_at = terminated.started_at.clone();
            state.finished_at = terminated.finished_at.clone();
        }
    }
    (state, report)
}

/// What the steps' results came to.
#[derive(Debug, Default)]
struct ResultsReading {
    results: Vec<RunResult>,
    /// Declared types that do not match the values.
    invalid: Vec<String>,
    /// Values over a limit (first one found).
    too_large: Option<String>,
    /// Frames that could not be read.
    unreadable: Vec<String>,
    /// Steps whose frames were not fetched yet.
    unfetched: Vec<String>,
    /// Each step's own step results: (the step's index, its typed values).
    step_results: Vec<(usize, Vec<RunResult>)>,
    /// What each step wrote at `$(step.artifacts.path)`, by step index.
    step_artifacts: Vec<(usize, Artifacts)>,
    /// Those and what the steps wrote at `$(artifacts.path)`, in step order.
    artifacts: Artifacts,
    /// Bytes of all step results as written.
    step_results_bytes: u64,
}

fn too_large_message(step: &str, too_large: &TooLarge) -> String {
    if too_large.total {
        format!(
            "the results of step {step:?} total {} bytes, over the limit of {} bytes for all results of a run (largest: result {:?})",
            too_large.bytes, too_large.limit, too_large.result
        )
    } else {
        format!(
            "step {step:?} wrote result {:?} of {} bytes, over the limit of {} bytes per result",
            too_large.result, too_large.bytes, too_large.limit
        )
    }
}

/// The raw values of the steps' results, later steps winning, each step's
/// taken only from its own report and its own container's frame.
fn raw_results(
    steps: &[(String, Option<StepReport>)],
    fetched: &FetchedResults,
    reading: &mut ResultsReading,
) -> BTreeMap<String, String> {
    let mut raw = BTreeMap::new();
    for (step, report) in steps {
        let Some(report) = report else { continue };
        if let Some(too_large) = &report.too_large {
            reading
                .too_large
                .get_or_insert_with(|| too_large_message(step, too_large));
        }
        // Version 1 reports carry their results inline.
        raw.extend(report.results.clone());
        if report.frame.is_none() {
            continue;
        }
        match fetched.frames.get(&step_container_name(step)) {
            Some(Fetched::Results(values)) => raw.extend(values.results.clone()),
            Some(Fetched::Unreadable(why)) => reading.unreadable.push(format!(
                "the results of step {step:?} could not be read from its log: {why}"
            )),
            Some(Fetched::TooLarge { bytes }) => {
                reading.too_large.get_or_insert_with(|| {
                    format!(
                        "the results of step {step:?} are {bytes} bytes, over the limit of {} bytes for all results of a run",
                        fetched.limits.max_run_results_bytes
                    )
                });
            }
            None => reading.unfetched.push(step.clone()),
        }
    }
    raw
}

/// The first value over a limit, as a condition message. The steps' own
/// step results count towards the run's total: they are in its status too.
fn over_limit(raw: &BTreeMap<String, String>, step_results_bytes: u64, limits: &ResultLimits) -> Option<String> {
    if let Some((name, value)) = raw.iter().find(|(_, v)| v.len() as u64 > limits.max_result_bytes) {
        return Some(format!(
            "result {name:?} is {} bytes, over the limit of {} bytes per result",
            value.len(),
            limits.max_result_bytes
        ));
    }
    let total: u64 = raw.values().map(|v| v.len() as u64).sum::<u64>() + step_results_bytes;
    if total <= limits.max_run_results_bytes {
        return None;
    }
    let (name, size) = raw
        .iter()
        .max_by_key(|(_, v)| v.len())
        .map_or((String::new(), 0), |(k, v)| (k.clone(), v.len()));
    Some(format!(
        "the run's results and step results total {total} bytes, over the limit of {} bytes for all results of a run (largest result: {name:?}, {size} bytes)",
        limits.max_run_results_bytes
    ))
}

/// Typed results, in step order (a later step's value of the same result
/// wins). Array and object results are JSON in the file. Each step's own
/// step results are typed by what it declares, for `status.steps[]`.
fn read_results(task: &TaskSpec, steps: &[(String, Option<StepReport>)], fetched: &FetchedResults) -> ResultsReading {
    let mut reading = ResultsReading::default();
    let raw = raw_results(steps, fetched, &mut reading);
    for (index, (step, (_, report))) in task.steps.iter().zip(steps).enumerate() {
        // As for task results: only from a frame the step's own report names.
        if report.as_ref().and_then(|r| r.frame.as_ref()).is_none() {
            continue;
        }
        let written = match fetched.frames.get(&step_container_name(&step.name)) {
            Some(Fetched::Results(values)) => &values.step_results,
            _ => continue,
        };
        let typed = typed_results(
            &step.results,
            written,
            &mut reading.invalid,
            &format!("step {:?}'s step ", step.name),
        );
        reading.step_results_bytes += written.values().map(|v| v.len() as u64).sum::<u64>();
        reading.step_results.push((index, typed));
        read_artifacts(index, &step.name, written, &mut reading);
    }
    if reading.too_large.is_none() {
        reading.too_large = over_limit(&raw, reading.step_results_bytes, &fetched.limits);
    }
    reading.results = typed_results(&task.results, &raw, &mut reading.invalid, "");
    reading
}

/// The artifacts step `index` wrote (see `layout::STEP_ARTIFACTS`); ones
/// that cannot be read fail the run as invalid results do.
fn read_artifacts(index: usize, step: &str, written: &BTreeMap<String, String>, reading: &mut ResultsReading) {
    for (file, path) in [
        (STEP_ARTIFACTS, "$(step.artifacts.path)"),
        (TASK_ARTIFACTS, "$(artifacts.path)"),
    ] {
        let Some(text) = written.get(file) else { continue };
        match artifacts::parse(text) {
            Ok(parsed) => {
                if file == STEP_ARTIFACTS {
                    reading.step_artifacts.push((index, parsed.clone()));
                }
                reading.artifacts.extend(parsed);
            }
            Err(why) => reading.invalid.push(format!(
                "step {step:?} wrote artifacts at {path} that cannot be read: {why}"
            )),
        }
    }
}

/// The `declared` results found in `raw`, typed; a value that is not of
/// its declared type goes to `invalid` (`whose` prefixes "result").
fn typed_results(
    declared: &[ResultSpec],
    raw: &BTreeMap<String, String>,
    invalid: &mut Vec<String>,
    whose: &str,
) -> Vec<RunResult> {
    let mut typed = Vec::new();
    for declared in declared {
        let Some(raw) = raw.get(&declared.name) else {
            continue;
        };
        match typed_result(declared, raw) {
            Ok(result) => typed.push(result),
            Err(why) => invalid.push(format!("{whose}result {:?} {why}", declared.name)),
        }
    }
    typed
}

/// `raw` as a value of the declared type, with an object's declared keys.
fn typed_result(declared: &ResultSpec, raw: &str) -> Result<RunResult, String> {
    let value = match declared.result_type {
        ParamType::String => Ok(ParamValue::String(raw.to_string())),
        ParamType::Array => serde_json::from_str::<Vec<String>>(raw).map(ParamValue::Array),
        ParamType::Object => serde_json::from_str(raw).map(ParamValue::Object),
    }
    .map_err(|error| {
        format!(
            "is declared as {} but its value is not a JSON {}: {error}",
            declared.result_type, declared.result_type
        )
    })?;
    if let (ParamValue::Object(object), Some(properties)) = (&value, &declared.properties) {
        let missing = missing_keys(properties, object);
        if !missing.is_empty() {
            return Err(format!(
                "is an object that lacks the declared key(s) {} (it has: {})",
                missing.join(", "),
                list_or_none(&object.keys().map(String::as_str).collect::<Vec<_>>())
            ));
        }
    }
    Ok(RunResult {
        name: declared.name.clone(),
        result_type: declared.result_type,
        value,
    })
}

fn waiting_failure(pod: &Pod) -> Option<(String, String)> {
    let status = pod.status.as_ref()?;
    let containers = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    for container in containers {
        let Some(waiting) = container.state.as_ref().and_then(|s| s.waiting.as_ref()) else {
            continue;
        };
        let why = waiting.reason.as_deref().unwrap_or_default();
        let detail = waiting.message.clone().unwrap_or_default();
        if IMAGE_PULL_FAILURES.contains(&why) {
            return Some((
                reason::IMAGE_PULL_FAILED.to_string(),
                format!(
                    "container {:?}: image {:?} cannot be pulled ({why}): {detail}",
                    container.name, container.image
                ),
            ));
        }
        if why == "CreateContainerConfigError" {
            return Some((
                reason::CREATE_CONTAINER_CONFIG_ERROR.to_string(),
                format!("container {:?} cannot be configured: {detail}", container.name),
            ));
        }
    }
    None
}

fn unschedulable_message(pod: &Pod) -> Option<String> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    let scheduled = conditions.iter().find(|c| c.type_ == "PodScheduled")?;
    (scheduled.status == "False").then(|| {
        format!(
            "pod cannot be scheduled yet: {}",
            scheduled.message.clone().unwrap_or_default()
        )
    })
}

/// The phase the pod will end in, once every step container has ended:
/// Succeeded when all exited 0. A sidecar still stopping (one that ignores
/// SIGTERM holds the pod Running for its whole grace period) does not
/// delay the outcome; the kubelet is already stopping it.
fn phase_from_steps(task: &TaskSpec, containers: &Option<Vec<ContainerStatus>>) -> Option<&'static str> {
    let exit_codes = ended_steps(containers.as_deref().unwrap_or_default())?;
    if exit_codes.len() < task.steps.len() {
        return None;
    }
    Some(if exit_codes.iter().all(|code| *code == 0) {
        "Succeeded"
    } else {
        "Failed"
    })
}

/// The exit codes of the pod's step containers once every one of them has
/// ended; None while one has not (or before the kubelet reports any).
/// Sidecars are init containers and not among them. The one test of "the
/// steps are done", for the outcome and for reading the results frames.
pub fn ended_steps(containers: &[ContainerStatus]) -> Option<Vec<i32>> {
    let codes: Option<Vec<i32>> = containers
        .iter()
        .filter(|c| c.name.starts_with(STEP_PREFIX))
        .map(|c| Some(c.state.as_ref()?.terminated.as_ref()?.exit_code))
        .collect();
    codes.filter(|codes| !codes.is_empty())
}

/// Reads the pod of a run. `cancelled` says the user asked to stop the run,
/// so a pod stopped for that is reported as cancelled, not failed. `fetched`
/// holds the results frames read from the steps' logs once the pod finished.
pub fn read_pod(task: &TaskSpec, pod: &Pod, cancelled: bool, fetched: &FetchedResults) -> PodReading {
    let status = pod.status.clone().unwrap_or_default();
    let container_status = |name: &str| {
        status
            .container_statuses
            .iter()
            .flatten()
            .find(|c| c.name == step_container_name(name))
    };
    let mut steps = Vec::with_capacity(task.steps.len());
    let mut reports = Vec::with_capacity(task.steps.len());
    // A step that ended without a report was killed (OOM, node pressure)
    // before it could hand off: the steps after it would wait forever.
    let mut killed_without_report = false;
    for step in &task.steps {
        let (state, report) = read_step(&step.name, container_status(&step.name));
        killed_without_report |= state.state == "Terminated" && report.is_none() && state.exit_code != Some(0);
        steps.push(state);
        reports.push((step.name.clone(), report));
    }
    let results = read_results(task, &reports, fetched);
    for (index, typed) in &results.step_results {
        if let Some(step) = steps.get_mut(*index) {
            step.results = typed.clone();
        }
    }
    for (index, own) in &results.step_artifacts {
        if let Some(step) = steps.get_mut(*index) {
            step.inputs = own.inputs.clone();
            step.outputs = own.outputs.clone();
        }
    }
    let finished_at = steps.iter().filter_map(|s| s.finished_at.clone()).max_by_key(|t| t.0);
    let mut reading = PodReading {
        succeeded: Succeeded::Unknown,
        reason: reason::PENDING.to_string(),
        message: String::new(),
        steps,
        results: results.results.clone(),
        artifacts: results.artifacts.clone(),
        finished_at: None,
    };
    let pod_phase = status.phase.as_deref().unwrap_or("Pending");
    // The kubelet gives the pod its final phase only once it has torn the
    // pod down, seconds after the last step ended on a busy node, and a
    // pod whose steps ran between two of its status reports is still
    // Pending then: the steps' own ends decide the outcome first.
    let pod_unfinished = matches!(pod_phase, "Pending" | "Running");
    let phase = match pod_phase {
        "Pending" | "Running" => phase_from_steps(task, &status.container_statuses).unwrap_or(pod_phase),
        phase => phase,
    };
    let pod_reason = status.reason.as_deref().unwrap_or_default();
    let pod_message = status.message.clone().unwrap_or_default();

    match phase {
        "Succeeded" => {
            reading.succeeded_pod(task, &results);
            if reading.is_done() {
                reading.finished_at = finished_at;
            }
        }
        // Every step ended, one failed, and the pod has not yet said so:
        // the results the steps wrote are not in `fetched` yet (the
        // controller reads them from the logs once every step has ended),
        // so the run waits for them and ends with them.
        "Failed" if pod_unfinished && !cancelled && !results.unfetched.is_empty() => {
            reading.reason = reason::RUNNING.to_string();
            reading.message = format!(
                "a step failed; reading the results of step(s) {} from their logs",
                results.unfetched.join(", ")
            );
        }
        "Failed" => {
            let (why, message) = if cancelled {
                (reason::CANCELLED, "the run was cancelled".to_string())
            } else if pod_reason == "DeadlineExceeded" {
                (
                    reason::TIMEOUT,
                    with_detail("the run did not finish within its timeout", &pod_message),
                )
            } else if pod_reason == "Evicted" {
                (reason::POD_EVICTED, with_detail("the pod was evicted", &pod_message))
            } else if pod_reason == "NodeLost" {
                (reason::NODE_LOST, with_detail("the pod's node was lost", &pod_message))
            } else if let Some(too_large) = &results.too_large {
                (reason::RESULT_TOO_LARGE, too_large.clone())
            } else {
                let message = failed_step_message(task, &reading.steps)
                    .or_else(|| failed_init_message(pod))
                    .unwrap_or_else(|| {
                        with_detail(
                            "the pod failed without a step or init container saying why",
                            &pod_message,
                        )
                    });
                (reason::FAILED, message)
            };
            reading.fail(why, message);
            reading.finished_at = finished_at;
        }
        _ => {
            // Pending or Running: a container that cannot start, or a step
            // killed without a report, ends the run now rather than at its
            // timeout (a later step can be waiting for its image while an
            // earlier one runs, and the pod is then still Running).
            let failure = waiting_failure(pod).or_else(|| {
                killed_without_report.then(|| {
                    let message = failed_step_message(task, &reading.steps)
                        .unwrap_or_else(|| "a step was killed before it could report".to_string());
                    (reason::FAILED.to_string(), message)
                })
            });
            match failure {
                Some(_) if cancelled => reading.fail(reason::CANCELLED, "the run was cancelled".to_string()),
                Some((why, message)) => reading.fail(&why, message),
                None if phase == "Running" => {
                    reading.reason = reason::RUNNING.to_string();
                    reading.message = match reading.steps.iter().find(|s| s.state == "Running") {
                        Some(step) => format!("step {:?} is running", step.name),
                        None => "the pod is running".to_string(),
                    };
                }
                None => {
                    reading.message = unschedulable_message(pod).unwrap_or_else(|| "the pod is starting".to_string());
                }
            }
        }
    }
    if cancelled && reading.succeeded == Succeeded::Unknown {
        reading.message = format!("cancelling: {}", reading.message);
    }
    reading
}

/// `what: detail`, or just `what` when there is no detail.
fn with_detail(what: &str, detail: &str) -> String {
    if detail.trim().is_empty() {
        what.to_string()
    } else {
        format!("{what}: {detail}")
    }
}

/// "step build failed with exit code 2", naming the first step that failed
/// for a reason of its own (not skipped, and not a step whose failure was
/// allowed with `onError: continue`).
fn failed_step_message(task: &TaskSpec, steps: &[StepState]) -> Option<String> {
    let continues = |name: &str| {
        task.steps
            .iter()
            .any(|s| s.name == name && s.on_error.as_deref().and_then(OnError::parse) == Some(OnError::Continue))
    };
    // A step can fail with exit code 0: its command succeeded but the
    // entrypoint failed it (its reason is then Error).
    let failed = steps.iter().find(|s| {
        s.state == "Terminated"
            && s.reason != "Skipped"
            && s.reason != "Completed"
            && (s.exit_code != Some(0) || s.reason == "Error")
            && !continues(&s.name)
    })?;
    let mut message = match failed.reason.as_str() {
        "OOMKilled" => format!(
            "step {:?} was OOMKilled (exit code {})",
            failed.name,
            failed.exit_code.unwrap_or(137)
        ),
        "TimedOut" => format!("step {:?} timed out", failed.name),
        _ => format!(
            "step {:?} failed with exit code {}",
            failed.name,
            failed.exit_code.unwrap_or(-1)
        ),
    };
    if !failed.message.is_empty() {
        message.push_str(": ");
        message.push_str(&failed.message);
    }
    Some(message)
}

/// "init container "prepare" failed with exit code 1: ...", when the pod
/// failed before any step ran.
fn failed_init_message(pod: &Pod) -> Option<String> {
    let statuses = pod.status.as_ref()?.init_container_statuses.as_ref()?;
    statuses.iter().find_map(|container| {
        let terminated = container.state.as_ref()?.terminated.as_ref()?;
        (terminated.exit_code != 0).then(|| {
            let mut message = format!(
                "init container {:?} failed with exit code {}",
                container.name, terminated.exit_code
            );
            if let Some(detail) = terminated.message.as_deref().filter(|m| !m.is_empty()) {
                message.push_str(": ");
                message.push_str(detail);
            }
            message
        })
    })
}

impl PodReading {
    /// All steps completed: the run succeeded if its results are whole,
    /// within the limits and of their declared types.
    fn succeeded_pod(&mut self, task: &TaskSpec, results: &ResultsReading) {
        let produced: Vec<&str> = results.results.iter().map(|r| r.name.as_str()).collect();
        let missing: Vec<&str> = task
            .results
            .iter()
            .map(|r| r.name.as_str())
            .filter(|n| !produced.contains(n))
            .collect();
        if let Some(too_large) = &results.too_large {
            self.fail(reason::RESULT_TOO_LARGE, too_large.clone());
        } else if !results.unreadable.is_empty() {
            self.fail(reason::RESULTS_UNREADABLE, results.unreadable.join("; "));
        } else if !results.unfetched.is_empty() {
            // The controller reads the frames once every step has ended.
            self.reason = reason::RUNNING.to_string();
            self.message = format!(
                "all steps completed; reading the results of step(s) {} from their logs",
                results.unfetched.join(", ")
            );
        } else if !results.invalid.is_empty() {
            self.fail(reason::INVALID_RESULTS, results.invalid.join("; "));
        } else if !missing.is_empty() {
            // As in Tekton, a result left unwritten does not fail the run:
            // a task may write a result only in some cases. A pipeline task
            // that reads it fails the pipeline run naming it instead.
            self.succeeded = Succeeded::True;
            self.reason = reason::SUCCEEDED.to_string();
            self.message = format!(
                "all steps completed; declared result(s) {} were not written",
                missing.join(", ")
            );
        } else {
            self.succeeded = Succeeded::True;
            self.reason = reason::SUCCEEDED.to_string();
            self.message = "all steps completed".to_string();
        }
    }

    fn fail(&mut self, why: &str, message: String) {
        self.succeeded = Succeeded::False;
        self.reason = why.to_string();
        self.message = message;
    }
}
