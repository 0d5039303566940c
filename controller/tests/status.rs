//! Reading a run's pod back into the run's status (`pod::status::read_pod`).
//!
//! Each test builds the pod the kubelet would report at some moment, with
//! step reports encoded by the entrypoint's own `termination::encode`, and
//! checks the condition, reason, message, step states and results.

use std::collections::BTreeMap;

use cicd_controller::api::{ParamType, ParamValue, TaskSpec};
use cicd_controller::pod::results::{Fetched, FetchedResults, FrameValues, ResultLimits};
use cicd_controller::pod::status::{PodReading, Succeeded, read_pod};
use cicd_controller::reason;
use cicd_entrypoint::frame::FrameRef;
use cicd_entrypoint::termination::{
    self, FORMAT_VERSION, INLINE_RESULTS_VERSION, MESSAGE_LIMIT_BYTES, Outcome, StepReport, TooLarge,
};
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

/// 2024-01-01T00:00:00Z in milliseconds: reports count from here.
const T0_MS: i64 = 1_704_067_200_000;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A task with three steps (build, test, push) and two results: `url`
/// (string) and `tags` (array).
fn task() -> TaskSpec {
    serde_json::from_value(json!({
        "results": [{ "name": "url" }, { "name": "tags", "type": "array" }],
        "steps": [
            { "name": "build", "image": "builder:1", "script": "make" },
            { "name": "test", "image": "tester:1", "script": "make test" },
            { "name": "push", "image": "pusher:1", "script": "make push" },
        ],
    }))
    .expect("a valid task")
}

/// The same task without results, for tests about step failures.
fn task_without_results() -> TaskSpec {
    let mut task = task();
    task.results.clear();
    task
}

fn with_on_error_continue(mut task: TaskSpec, step: usize) -> TaskSpec {
    task.steps[step].on_error = Some("continue".to_string());
    task
}

/// What the entrypoint writes for a step: outcome, exit code, and times
/// `start_s`..`end_s` seconds after T0.
fn report(outcome: Outcome, exit_code: i32, start_s: i64, end_s: i64) -> StepReport {
    StepReport {
        version: FORMAT_VERSION,
        outcome,
        exit_code,
        started_at_ms: Some(T0_MS + start_s * 1000),
        finished_at_ms: Some(T0_MS + end_s * 1000),
        message: None,
        results: BTreeMap::new(),
        step_results: BTreeMap::new(),
        frame: None,
        too_large: None,
    }
}

/// A result inline in the report: the version 1 format, still read.
fn with_result(mut report: StepReport, name: &str, value: &str) -> StepReport {
    report.version = INLINE_RESULTS_VERSION;
    report.results.insert(name.to_string(), value.to_string());
    report
}

/// The report names a results frame in the step's log (the version 2 way).
fn with_frame(mut report: StepReport) -> StepReport {
    report.frame = Some(FrameRef {
        bytes: 1,
        lines: 1,
        sha256: "0".repeat(64),
    });
    report
}

/// What the controller fetched from the logs: container -> results.
fn fetched(frames: &[(&str, &[(&str, &str)])]) -> FetchedResults {
    let mut fetched = FetchedResults::default();
    for (step, results) in frames {
        let values = FrameValues {
            results: results.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            step_results: BTreeMap::new(),
        };
        fetched.frames.insert(format!("step-{step}"), Fetched::Results(values));
    }
    fetched
}

fn skipped() -> StepReport {
    let mut skipped = report(Outcome::Skipped, 0, 0, 0);
    skipped.started_at_ms = None;
    skipped.finished_at_ms = None;
    skipped.message = Some("skipped because step \"build\" failed".into());
    skipped
}

/// The image the task gives each step.
fn image_of(step: &str) -> String {
    let image = task().steps.into_iter().find(|s| s.name == step).and_then(|s| s.image);
    image.expect("a step of the test task")
}

/// Container status of a step that ended with the entrypoint's report. The
/// container's own times are deliberately different from the report's.
fn ended(step: &str, report: &StepReport) -> Value {
    let container_exit = if report.outcome == Outcome::Succeeded { 0 } else { 1 };
    json!({
        "name": format!("step-{step}"), "image": image_of(step), "imageID": "", "ready": false, "restartCount": 0,
        "state": { "terminated": {
            "exitCode": container_exit,
            "reason": if container_exit == 0 { "Completed" } else { "Error" },
            "message": termination::encode(report, MESSAGE_LIMIT_BYTES).expect("the report fits"),
            "startedAt": "2030-01-01T00:00:00Z",
            "finishedAt": "2030-01-01T00:00:09Z",
        } },
    })
}

/// Container status of a step killed before the entrypoint could report.
fn killed(step: &str, exit_code: i32, why: &str) -> Value {
    json!({
        "name": format!("step-{step}"), "image": image_of(step), "imageID": "", "ready": false, "restartCount": 0,
        "state": { "terminated": {
            "exitCode": exit_code, "reason": why,
            "startedAt": "2024-01-01T00:00:01Z", "finishedAt": "2024-01-01T00:00:02Z",
        } },
    })
}

fn running(step: &str) -> Value {
    json!({
        "name": format!("step-{step}"), "image": image_of(step), "imageID": "", "ready": true, "restartCount": 0,
        "state": { "running": { "startedAt": "2024-01-01T00:00:00Z" } },
    })
}

fn waiting(step: &str, why: &str, message: &str) -> Value {
    json!({
        "name": format!("step-{step}"), "image": image_of(step), "imageID": "", "ready": false, "restartCount": 0,
        "state": { "waiting": { "reason": why, "message": message } },
    })
}

/// A run's pod in `phase`, with the given step container statuses and
/// extra `status` fields (reason, message, conditions).
fn pod(phase: &str, containers: Vec<Value>, extra_status: Value) -> Pod {
    let mut status = json!({ "phase": phase, "containerStatuses": containers });
    if let (Some(status), Value::Object(extra)) = (status.as_object_mut(), extra_status) {
        status.extend(extra);
    }
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "run-1-pod", "namespace": "ci" },
        "spec": { "containers": [] },
        "status": status,
    }))
    .expect("a decodable pod")
}

fn read(task: &TaskSpec, pod: &Pod) -> PodReading {
    read_pod(task, pod, false, &FetchedResults::default())
}

fn step_reasons(reading: &PodReading) -> Vec<(&str, &str)> {
    reading
        .steps
        .iter()
        .map(|s| (s.state.as_str(), s.reason.as_str()))
        .collect()
}

#[track_caller]
fn assert_failed(reading: &PodReading, why: &str, needles: &[&str]) {
    assert_eq!(reading.succeeded, Succeeded::False, "{reading:#?}");
    assert_eq!(reading.reason, why, "{reading:#?}");
    for needle in needles {
        assert!(
            reading.message.contains(needle),
            "message {:?} should mention {needle:?}",
            reading.message
        );
    }
}

// ---------------------------------------------------------------------------
// Not started yet, or in progress
// ---------------------------------------------------------------------------

#[test]
fn pending_pod_is_in_progress() {
    let reading = read(&task(), &pod("Pending", vec![], json!({})));
    assert_eq!(reading.succeeded, Succeeded::Unknown);
    assert_eq!(reading.reason, reason::PENDING);
    assert!(!reading.is_done());
    assert_eq!(reading.steps.len(), 3);
    assert!(reading.steps.iter().all(|s| s.state == "Waiting"));
    assert_eq!(reading.steps[0].container, "step-build");
}

#[test]
fn unschedulable_pod_says_why_and_keeps_waiting() {
    let conditions = json!({ "conditions": [{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": "0/1 nodes are available: 1 Insufficient cpu.",
    }] });
    let reading = read(&task(), &pod("Pending", vec![], conditions));
    assert_eq!(reading.succeeded, Succeeded::Unknown);
    assert_eq!(reading.reason, reason::PENDING);
    assert!(reading.message.contains("cannot be scheduled"), "{}", reading.message);
    assert!(reading.message.contains("Insufficient cpu"), "{}", reading.message);
}

#[test]
fn running_pod_names_the_running_step() {
    let containers = vec![
        ended("build", &report(Outcome::Succeeded, 0, 0, 5)),
        running("test"),
        waiting("push", "", ""),
    ];
    let reading = read(&task(), &pod("Running", containers, json!({})));
    assert_eq!(reading.succeeded, Succeeded::Unknown);
    assert_eq!(reading.reason, reason::RUNNING);
    assert_eq!(reading.message, "step \"test\" is running");
    assert_eq!(
        step_reasons(&reading),
        [("Terminated", "Completed"), ("Running", ""), ("Waiting", "")]
    );
}

// ---------------------------------------------------------------------------
// Success and results
// ---------------------------------------------------------------------------

#[test]
fn succeeded_pod_with_every_result_succeeds_with_typed_results() {
    let containers = vec![
        ended(
            "build",
            &with_result(report(Outcome::Succeeded, 0, 0, 5), "url", "registry.local/app:1"),
        ),
        ended("test", &report(Outcome::Succeeded, 0, 5, 8)),
        ended(
            "push",
            &with_result(report(Outcome::Succeeded, 0, 8, 12), "tags", r#"["1.0","latest"]"#),
        ),
    ];
    let reading = read(&task(), &pod("Succeeded", containers, json!({})));
    assert_eq!(reading.succeeded, Succeeded::True);
    assert_eq!(reading.reason, reason::SUCCEEDED);
    assert_eq!(reading.results.len(), 2);
    assert_eq!(reading.results[0].name, "url");
    assert_eq!(reading.results[0].result_type, ParamType::String);
    assert_eq!(
        reading.results[0].value,
        ParamValue::String("registry.local/app:1".into())
    );
    assert_eq!(reading.results[1].name, "tags");
    assert_eq!(reading.results[1].result_type, ParamType::Array);
    assert_eq!(
        reading.results[1].value,
        ParamValue::Array(vec!["1.0".into(), "latest".into()])
    );
    assert!(
        reading
            .steps
            .iter()
            .all(|s| s.reason == "Completed" && s.exit_code == Some(0))
    );
}

#[test]
fn steps_that_all_ended_decide_the_run_before_the_kubelet_gives_the_pod_its_final_phase() {
    // On a busy node the kubelet reports the ended containers while the pod
    // is still Pending (they ran between two of its reports) and marks it
    // Succeeded only after tearing it down, seconds later.
    let containers = || {
        vec![
            ended("build", &with_result(report(Outcome::Succeeded, 0, 0, 5), "url", "u")),
            ended("test", &report(Outcome::Succeeded, 0, 5, 8)),
            ended("push", &with_result(report(Outcome::Succeeded, 0, 8, 12), "tags", "[]")),
        ]
    };
    for phase in ["Pending", "Running"] {
        let reading = read(&task(), &pod(phase, containers(), json!({})));
        assert_eq!(reading.succeeded, Succeeded::True, "{phase}: {reading:#?}");
        assert_eq!(reading.results.len(), 2, "{phase}");
    }

    let mut one_left = containers();
    one_left[2] = running("push");
    let reading = read(&task(), &pod("Pending", one_left, json!({})));
    assert_eq!(reading.succeeded, Succeeded::Unknown, "{reading:#?}");
}

#[test]
fn a_failed_step_in_a_pod_still_pending_waits_for_its_results_from_the_logs() {
    let containers = vec![
        ended("build", &done()),
        ended("test", &with_frame(report(Outcome::Failed, 2, 1, 2))),
        ended("push", &skipped()),
    ];
    let reading = read(&task(), &pod("Pending", containers, json!({})));
    assert_eq!(reading.succeeded, Succeeded::Unknown, "{reading:#?}");
    assert!(
        reading.message.contains("reading the results of step(s) test"),
        "{}",
        reading.message
    );
}

#[test]
fn a_later_steps_value_of_a_result_wins() {
    let containers = vec![
        ended(
            "build",
            &with_result(report(Outcome::Succeeded, 0, 0, 5), "url", "first"),
        ),
        ended(
            "test",
            &with_result(report(Outcome::Succeeded, 0, 5, 8), "url", "second"),
        ),
        ended("push", &with_result(report(Outcome::Succeeded, 0, 8, 12), "tags", "[]")),
    ];
    let reading = read(&task(), &pod("Succeeded", containers, json!({})));
    assert_eq!(reading.results[0].value, ParamValue::String("second".into()));
    assert_eq!(reading.results[1].value, ParamValue::Array(vec![]));
}

#[test]
fn a_missing_result_does_not_fail_the_run_but_is_named() {
    let containers = vec![
        ended(
            "build",
            &with_result(report(Outcome::Succeeded, 0, 0, 5), "url", "registry.local/app:1"),
        ),
        ended("test", &report(Outcome::Succeeded, 0, 5, 8)),
        ended("push", &report(Outcome::Succeeded, 0, 8, 12)),
    ];
    let reading = read(&task(), &pod("Succeeded", containers, json!({})));
    assert_eq!(reading.succeeded, Succeeded::True, "{reading:#?}");
    assert_eq!(reading.reason, reason::SUCCEEDED);
    assert_eq!(
        reading.message,
        "all steps completed; declared result(s) tags were not written"
    );
    assert_eq!(reading.results.len(), 1, "{:?}", reading.results);
    assert_eq!(reading.results[0].name, "url");
}

#[test]
fn array_result_that_is_not_a_json_list_fails_the_run() {
    let containers = vec![
        ended("build", &with_result(report(Outcome::Succeeded, 0, 0, 5), "url", "u")),
        ended("test", &report(Outcome::Succeeded, 0, 5, 8)),
        ended(
            "push",
            &with_result(report(Outcome::Succeeded, 0, 8, 12), "tags", "1.0 latest"),
        ),
    ];
    let reading = read(&task(), &pod("Succeeded", containers, json!({})));
    assert_failed(&reading, reason::INVALID_RESULTS, &["\"tags\"", "array"]);
}

#[test]
fn an_object_result_must_have_its_declared_properties() {
    let task: TaskSpec = serde_json::from_value(json!({
        // No type: properties make it an object, as Tekton reads it.
        "results": [{ "name": "image", "properties": { "url": {}, "digest": {} } }],
        "steps": [{ "name": "build", "image": "builder:1", "script": "make" }],
    }))
    .expect("a valid task");
    let with_image = |value: &str| {
        let containers = vec![ended(
            "build",
            &with_result(report(Outcome::Succeeded, 0, 0, 5), "image", value),
        )];
        read(&task, &pod("Succeeded", containers, json!({})))
    };
    let whole = with_image(r#"{"url": "r/app", "digest": "sha256:1", "extra": "kept"}"#);
    assert_eq!(whole.reason, "Succeeded", "{}", whole.message);
    let ParamValue::Object(object) = &whole.results[0].value else {
        panic!("an object result: {:?}", whole.results);
    };
    assert_eq!(object.get("extra").map(String::as_str), Some("kept"));
    let partial = with_image(r#"{"url": "r/app"}"#);
    assert_failed(
        &partial,
        reason::INVALID_RESULTS,
        &["\"image\"", "lacks the declared key(s) digest", "it has: url"],
    );
}

#[test]
fn step_times_come_from_the_report_not_the_container() {
    let containers = vec![
        ended("build", &report(Outcome::Succeeded, 0, 1, 5)),
        ended("test", &report(Outcome::Succeeded, 0, 5, 8)),
        ended("push", &report(Outcome::Succeeded, 0, 8, 12)),
    ];
    let reading = read(&task_without_results(), &pod("Succeeded", containers, json!({})));
    let build = &reading.steps[0];
    let started = build.started_at.as_ref().expect("a start time").0.as_millisecond();
    let finished = build.finished_at.as_ref().expect("a finish time").0.as_millisecond();
    assert_eq!(started, T0_MS + 1000, "the container says 2030, the report says T0+1s");
    assert_eq!(finished, T0_MS + 5000);
    let last = reading
        .finished_at
        .as_ref()
        .expect("the run's finish time")
        .0
        .as_millisecond();
    assert_eq!(last, T0_MS + 12_000, "the run finishes when its last step did");
}

// ---------------------------------------------------------------------------
// Step failures
// ---------------------------------------------------------------------------

#[test]
fn failed_step_is_named_with_its_exit_code_and_later_steps_are_skipped() {
    let containers = vec![
        ended("build", &report(Outcome::Succeeded, 0, 0, 5)),
        ended("test", &report(Outcome::Failed, 2, 5, 8)),
        ended("push", &skipped()),
    ];
    let reading = read(&task_without_results(), &pod("Failed", containers, json!({})));
    assert_failed(&reading, reason::FAILED, &["step \"test\" failed with exit code 2"]);
    assert_eq!(
        step_reasons(&reading),
        [
            ("Terminated", "Completed"),
            ("Terminated", "Error"),
            ("Terminated", "Skipped")
        ]
    );
    assert_eq!(reading.steps[1].exit_code, Some(2));
}

#[test]
fn on_error_continue_records_the_failure_and_the_run_succeeds() {
    let containers = vec![
        ended("build", &report(Outcome::Succeeded, 0, 0, 5)),
        ended("test", &report(Outcome::Failed, 3, 5, 8)),
        ended("push", &report(Outcome::Succeeded, 0, 8, 12)),
    ];
    let task = with_on_error_continue(task_without_results(), 1);
    let reading = read(&task, &pod("Succeeded", containers, json!({})));
    assert_eq!(reading.succeeded, Succeeded::True, "{reading:#?}");
    assert_eq!(reading.steps[1].reason, "Error");
    assert_eq!(
        reading.steps[1].exit_code,
        Some(3),
        "the command's real exit code is kept"
    );
}

#[test]
fn a_later_failure_is_blamed_not_an_earlier_step_that_continued() {
    let containers = vec![
        ended("build", &report(Outcome::Failed, 3, 0, 5)),
        ended("test", &report(Outcome::Failed, 2, 5, 8)),
        ended("push", &skipped()),
    ];
    let task = with_on_error_continue(task_without_results(), 0);
    let reading = read(&task, &pod("Failed", containers, json!({})));
    assert_failed(&reading, reason::FAILED, &["step \"test\" failed with exit code 2"]);
    assert!(!reading.message.contains("\"build\""), "{}", reading.message);
}

#[test]
fn step_timeout_is_reported_as_timed_out() {
    let mut timed_out = report(Outcome::TimedOut, 124, 0, 30);
    timed_out.message = Some("timed out after 30s".into());
    let containers = vec![
        ended("build", &timed_out),
        ended("test", &skipped()),
        ended("push", &skipped()),
    ];
    let reading = read(&task_without_results(), &pod("Failed", containers, json!({})));
    assert_failed(&reading, reason::FAILED, &["step \"build\" timed out", "30s"]);
    assert_eq!(reading.steps[0].reason, "TimedOut");
    assert_eq!(reading.steps[0].exit_code, Some(124));
}

#[test]
fn run_timeout_from_the_pod_deadline_is_a_task_run_timeout() {
    let containers = vec![
        ended("build", &report(Outcome::Succeeded, 0, 0, 5)),
        killed("test", 137, "Error"),
        waiting("push", "", ""),
    ];
    let status = json!({ "reason": "DeadlineExceeded", "message": "Pod was active on the node longer than the specified deadline" });
    let reading = read(&task_without_results(), &pod("Failed", containers, status));
    assert_failed(
        &reading,
        reason::TIMEOUT,
        &["timeout", "longer than the specified deadline"],
    );
}

#[test]
fn cancelled_run_is_reported_as_cancelled_not_failed() {
    let containers = vec![
        killed("build", 143, "Error"),
        waiting("test", "", ""),
        waiting("push", "", ""),
    ];
    let reading = read_pod(
        &task_without_results(),
        &pod("Failed", containers, json!({})),
        true,
        &FetchedResults::default(),
    );
    assert_failed(&reading, reason::CANCELLED, &["cancelled"]);
}

#[test]
fn cancelling_a_running_pod_keeps_the_run_in_progress_until_it_stops() {
    let containers = vec![running("build"), waiting("test", "", ""), waiting("push", "", "")];
    let reading = read_pod(
        &task_without_results(),
        &pod("Running", containers, json!({})),
        true,
        &FetchedResults::default(),
    );
    assert_eq!(reading.succeeded, Succeeded::Unknown);
    assert!(reading.message.starts_with("cancelling: "), "{}", reading.message);
}

#[test]
fn oom_killed_step_without_a_report_is_named() {
    let containers = vec![
        killed("build", 137, "OOMKilled"),
        ended("test", &skipped()),
        ended("push", &skipped()),
    ];
    let reading = read(&task_without_results(), &pod("Failed", containers, json!({})));
    assert_failed(&reading, reason::FAILED, &["step \"build\" was OOMKilled", "137"]);
    assert_eq!(reading.steps[0].reason, "OOMKilled");
    assert_eq!(reading.steps[0].exit_code, Some(137));
}

#[test]
fn step_killed_while_later_steps_wait_fails_the_run_at_once() {
    // The killed step never wrote its post file, so the next steps would
    // wait until the run's timeout: the pod stays Running.
    let containers = vec![killed("build", 137, "OOMKilled"), running("test"), running("push")];
    let reading = read(&task_without_results(), &pod("Running", containers, json!({})));
    assert_failed(&reading, reason::FAILED, &["step \"build\" was OOMKilled"]);
}

#[test]
fn steps_stopped_by_a_cancel_are_a_cancellation_not_a_failure() {
    // Stopping the pod kills the running step without a report; that must
    // not read as a step failure (which would be retried).
    let containers = vec![killed("build", 143, "Error"), running("test"), running("push")];
    let reading = read_pod(
        &task_without_results(),
        &pod("Running", containers, json!({})),
        true,
        &FetchedResults::default(),
    );
    assert_failed(&reading, reason::CANCELLED, &["cancelled"]);
}

#[test]
fn image_pull_failure_names_the_image() {
    let containers = vec![
        waiting("build", "ImagePullBackOff", "Back-off pulling image"),
        waiting("test", "ContainerCreating", ""),
        waiting("push", "ContainerCreating", ""),
    ];
    let reading = read(&task_without_results(), &pod("Pending", containers, json!({})));
    assert_failed(
        &reading,
        reason::IMAGE_PULL_FAILED,
        &["\"builder:1\"", "step-build", "ImagePullBackOff"],
    );
}

#[test]
fn image_pull_failure_of_a_later_step_is_noticed_while_an_earlier_one_runs() {
    let containers = vec![
        running("build"),
        waiting("test", "ImagePullBackOff", "Back-off pulling image"),
        waiting("push", "", ""),
    ];
    let reading = read(&task_without_results(), &pod("Running", containers, json!({})));
    assert_failed(&reading, reason::IMAGE_PULL_FAILED, &["\"tester:1\""]);
}

#[test]
fn create_container_config_error_fails_with_the_kubelets_message() {
    let message = "secret \"registry-token\" not found";
    let containers = vec![
        waiting("build", "CreateContainerConfigError", message),
        waiting("test", "", ""),
        waiting("push", "", ""),
    ];
    let reading = read(&task_without_results(), &pod("Pending", containers, json!({})));
    assert_failed(
        &reading,
        reason::CREATE_CONTAINER_CONFIG_ERROR,
        &["step-build", "registry-token"],
    );
}

#[test]
fn failed_prepare_init_container_is_named_in_the_message() {
    let steps = vec![
        waiting("build", "PodInitializing", ""),
        waiting("test", "PodInitializing", ""),
        waiting("push", "PodInitializing", ""),
    ];
    let init = json!({ "initContainerStatuses": [{
        "name": "prepare", "image": "127.0.0.1:5000/cicd/entrypoint:dev", "imageID": "", "ready": false, "restartCount": 0,
        "state": { "terminated": { "exitCode": 2, "reason": "Error", "message": "cannot write /cicd/scripts/0-build" } },
    }] });
    let reading = read(&task_without_results(), &pod("Failed", steps, init));
    assert_failed(
        &reading,
        reason::FAILED,
        &["\"prepare\"", "exit code 2", "cannot write /cicd/scripts/0-build"],
    );
}

#[test]
fn evicted_pod_fails_with_the_eviction_message() {
    let status = json!({ "reason": "Evicted", "message": "The node was low on resource: ephemeral-storage." });
    let reading = read(&task_without_results(), &pod("Failed", vec![running("build")], status));
    assert_failed(&reading, reason::POD_EVICTED, &["evicted", "ephemeral-storage"]);
}

// ---------------------------------------------------------------------------
// The termination message limit
// ---------------------------------------------------------------------------

/// A report whose encoding is exactly `size` bytes, the padding in result
/// IMAGE_URL.
fn report_of_encoded_size(size: usize) -> StepReport {
    let empty = with_result(report(Outcome::Succeeded, 0, 0, 1), "IMAGE_URL", "");
    let base = termination::encode(&empty, MESSAGE_LIMIT_BYTES)
        .expect("a small report fits")
        .len();
    with_result(empty, "IMAGE_URL", &"x".repeat(size - base))
}

#[test]
fn report_just_under_the_limit_is_encoded_and_read_back() {
    let fits = report_of_encoded_size(MESSAGE_LIMIT_BYTES - 1);
    let text = termination::encode(&fits, MESSAGE_LIMIT_BYTES).expect("fits");
    assert_eq!(text.len(), MESSAGE_LIMIT_BYTES - 1);

    let mut task = task_without_results();
    task.results = serde_json::from_value(json!([{ "name": "IMAGE_URL" }])).expect("results");
    let containers = vec![
        ended("build", &fits),
        ended("test", &skipped()),
        ended("push", &skipped()),
    ];
    let reading = read(&task, &pod("Succeeded", containers, json!({})));
    assert_eq!(reading.succeeded, Succeeded::True, "{}", reading.message);
    assert_eq!(
        reading.results[0].value,
        ParamValue::String(fits.results["IMAGE_URL"].clone())
    );
}

#[test]
fn a_5000_byte_result_no_longer_fails_the_run() {
    // It used to: the report held it and was over 4096 bytes. Now the value
    // travels in the step's log frame and the report only names the frame.
    let mut task = task_without_results();
    task.results = serde_json::from_value(json!([{ "name": "IMAGE_URL" }])).expect("results");
    let value = "x".repeat(5000);
    let containers = vec![
        ended("build", &with_frame(report(Outcome::Succeeded, 0, 0, 1))),
        ended("test", &report(Outcome::Succeeded, 0, 1, 2)),
        ended("push", &report(Outcome::Succeeded, 0, 2, 3)),
    ];
    let reading = read_pod(
        &task,
        &pod("Succeeded", containers, json!({})),
        false,
        &fetched(&[("build", &[("IMAGE_URL", &value)])]),
    );
    assert_eq!(reading.succeeded, Succeeded::True, "{}", reading.message);
    assert_eq!(reading.results[0].value, ParamValue::String(value));
}

#[test]
fn a_truncated_report_is_not_trusted() {
    // What a container would show if something else wrote a too-long message
    // and the kubelet cut it: no report, so the container's state is used.
    let mut status = killed("build", 1, "Error");
    status["state"]["terminated"]["message"] = json!(r#"{"version":1,"outcome":"Succeeded","exitCo"#);
    let reading = read(&task_without_results(), &pod("Failed", vec![status], json!({})));
    assert_eq!(reading.steps[0].reason, "Error");
    assert_eq!(reading.steps[0].exit_code, Some(1));
    assert_failed(&reading, reason::FAILED, &["step \"build\" failed with exit code 1"]);
}

// ---------------------------------------------------------------------------
// Results from the steps' log frames
// ---------------------------------------------------------------------------

fn three_steps_succeeded(build: StepReport, test: StepReport, push: StepReport) -> Pod {
    pod(
        "Succeeded",
        vec![ended("build", &build), ended("test", &test), ended("push", &push)],
        json!({}),
    )
}

fn done() -> StepReport {
    report(Outcome::Succeeded, 0, 0, 1)
}

#[test]
fn results_come_from_each_steps_own_frame_later_steps_winning() {
    let pod = three_steps_succeeded(with_frame(done()), with_frame(done()), done());
    let frames = fetched(&[
        ("build", &[("url", "from-build"), ("tags", r#"["a"]"#)]),
        ("test", &[("url", "from-test")]),
        // The push step's report names no frame: whatever its log holds
        // (a stray frame) is not its results.
        ("push", &[("url", "forged")]),
    ]);
    let reading = read_pod(&task(), &pod, false, &frames);
    assert_eq!(reading.succeeded, Succeeded::True, "{}", reading.message);
    let url = reading.results.iter().find(|r| r.name == "url").expect("url");
    assert_eq!(url.value, ParamValue::String("from-test".into()));
    let tags = reading.results.iter().find(|r| r.name == "tags").expect("tags");
    assert_eq!(tags.value, ParamValue::Array(vec!["a".into()]));
    assert_eq!(tags.result_type, ParamType::Array);
}

/// `task()` whose build step declares a string, an array and an object
/// step result.
fn task_with_step_results() -> TaskSpec {
    let mut task = task_without_results();
    task.steps[0].results = serde_json::from_value(json!([
        { "name": "digest" },
        { "name": "tags", "type": "array" },
        { "name": "image", "type": "object", "properties": { "url": { "type": "string" } } },
    ]))
    .expect("step results");
    task
}

fn with_step_results(frames: &mut FetchedResults, step: &str, values: &[(&str, &str)]) {
    let Some(Fetched::Results(frame)) = frames.frames.get_mut(&format!("step-{step}")) else {
        panic!("no frame for {step}")
    };
    frame.step_results = values.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
}

#[test]
fn step_results_are_listed_typed_under_their_step() {
    let pod = three_steps_succeeded(with_frame(done()), with_frame(done()), done());
    let mut frames = fetched(&[("build", &[]), ("test", &[]), ("push", &[])]);
    let written = [
        ("digest", "sha256:1"),
        ("tags", r#"["v1","v2"]"#),
        ("image", r#"{"url":"r/a"}"#),
    ];
    with_step_results(&mut frames, "build", &written);
    // Not named by push's report: not its step results.
    with_step_results(&mut frames, "push", &[("digest", "forged")]);
    let reading = read_pod(&task_with_step_results(), &pod, false, &frames);
    assert_eq!(reading.succeeded, Succeeded::True, "{}", reading.message);
    let build: Vec<(&str, ParamType, &ParamValue)> = reading.steps[0]
        .results
        .iter()
        .map(|r| (r.name.as_str(), r.result_type, &r.value))
        .collect();
    assert_eq!(
        build,
        [
            ("digest", ParamType::String, &ParamValue::String("sha256:1".into())),
            (
                "tags",
                ParamType::Array,
                &ParamValue::Array(vec!["v1".into(), "v2".into()])
            ),
            (
                "image",
                ParamType::Object,
                &ParamValue::Object([("url".to_string(), "r/a".to_string())].into())
            ),
        ]
    );
    assert!(reading.steps[1].results.is_empty() && reading.steps[2].results.is_empty());
    let status = serde_json::to_value(&reading.steps[0]).expect("json");
    assert_eq!(
        status["results"][1],
        json!({ "name": "tags", "type": "array", "value": ["v1", "v2"] })
    );
}

#[test]
fn a_step_result_not_of_its_declared_type_fails_the_run_naming_it() {
    let pod = three_steps_succeeded(with_frame(done()), done(), done());
    for (written, needle) in [
        (
            ("tags", "v1,v2"),
            "step \"build\"'s step result \"tags\" is declared as array",
        ),
        (
            ("image", r#"{"digest":"d"}"#),
            "step \"build\"'s step result \"image\" is an object that lacks the declared key(s) url",
        ),
    ] {
        let mut frames = fetched(&[("build", &[])]);
        with_step_results(&mut frames, "build", &[written]);
        let reading = read_pod(&task_with_step_results(), &pod, false, &frames);
        assert_failed(&reading, reason::INVALID_RESULTS, &[needle]);
    }
}

#[test]
fn artifacts_go_under_their_step_and_all_of_them_to_the_run() {
    let pod = three_steps_succeeded(with_frame(done()), with_frame(done()), done());
    let mut frames = fetched(&[("build", &[]), ("test", &[])]);
    let source = r#"{"inputs": [{"name": "source", "values": [{"uri": "git:repo@1", "digest": "sha1:ab"}]}]}"#;
    let image = r#"{"outputs": [{"name": "image", "buildOutput": true,
                                 "values": [{"uri": "pkg:oci/app", "digest": {"sha256": "cd"}}]}]}"#;
    with_step_results(&mut frames, "build", &[("cicd.step-artifacts", source)]);
    // The task's artifacts, written at $(artifacts.path): not the step's own.
    with_step_results(&mut frames, "test", &[("cicd.task-artifacts", image)]);
    let reading = read_pod(&task_without_results(), &pod, false, &frames);
    assert_eq!(reading.succeeded, Succeeded::True, "{}", reading.message);
    let build = serde_json::to_value(&reading.steps[0]).expect("json");
    assert_eq!(
        build["inputs"],
        json!([{ "name": "source", "values": [{ "uri": "git:repo@1", "digest": { "sha1": "ab" } }] }])
    );
    assert!(
        build.get("outputs").is_none() && build.get("results").is_none(),
        "{build}"
    );
    assert!(reading.steps[1].outputs.is_empty());
    let run = serde_json::to_value(&reading.artifacts).expect("json");
    assert_eq!(run["inputs"][0]["name"], "source");
    assert_eq!(
        run["outputs"],
        json!([{ "name": "image", "buildOutput": true,
                 "values": [{ "uri": "pkg:oci/app", "digest": { "sha256": "cd" } }] }])
    );
}

#[test]
fn artifacts_that_cannot_be_read_fail_the_run_naming_the_step() {
    let pod = three_steps_succeeded(with_frame(done()), done(), done());
    let mut frames = fetched(&[("build", &[])]);
    with_step_results(
        &mut frames,
        "build",
        &[("cicd.step-artifacts", r#"{"outputs": [{"nme": "x"}]}"#)],
    );
    let reading = read_pod(&task_without_results(), &pod, false, &frames);
    assert_failed(
        &reading,
        reason::INVALID_RESULTS,
        &[
            "step \"build\" wrote artifacts at $(step.artifacts.path)",
            "unknown field `nme`",
        ],
    );
}

#[test]
fn step_results_count_towards_the_runs_results_limit() {
    let pod = three_steps_succeeded(with_frame(done()), done(), done());
    let mut frames = fetched(&[("build", &[])]);
    frames.limits.max_run_results_bytes = 10;
    with_step_results(&mut frames, "build", &[("digest", "0123456789ab")]);
    let reading = read_pod(&task_with_step_results(), &pod, false, &frames);
    assert_failed(
        &reading,
        reason::RESULT_TOO_LARGE,
        &["total 12 bytes", "limit of 10 bytes"],
    );
}

#[test]
fn a_frame_is_read_only_from_its_own_steps_container() {
    // build names a frame, but only test's container was fetched: build's
    // results are not taken from test's log.
    let pod = three_steps_succeeded(with_frame(done()), done(), done());
    let frames = fetched(&[("test", &[("url", "u"), ("tags", "[]")])]);
    let reading = read_pod(&task(), &pod, false, &frames);
    assert_eq!(reading.succeeded, Succeeded::Unknown, "{reading:#?}");
    assert!(
        reading.message.contains("reading the results of step(s) build"),
        "{}",
        reading.message
    );
    assert!(reading.results.is_empty());
}

#[test]
fn a_failed_step_s_results_are_read_before_the_run_ends() {
    // test wrote results and failed; push was skipped. The pod has not yet
    // turned Failed, so its logs are not fetched: the run waits for them.
    let containers = || {
        vec![
            ended("build", &done()),
            ended("test", &with_frame(report(Outcome::Failed, 2, 1, 2))),
            ended("push", &skipped()),
        ]
    };
    let still_running = pod("Running", containers(), json!({}));
    let reading = read_pod(&task(), &still_running, false, &FetchedResults::default());
    assert_eq!(reading.succeeded, Succeeded::Unknown, "{reading:#?}");
    assert!(
        reading.message.contains("reading the results of step(s) test"),
        "{}",
        reading.message
    );

    let failed = pod("Failed", containers(), json!({}));
    let frames = fetched(&[("test", &[("url", "written-before-failing")])]);
    let reading = read_pod(&task(), &failed, false, &frames);
    assert_failed(&reading, reason::FAILED, &["step \"test\" failed with exit code 2"]);
    let results: Vec<(&str, &ParamValue)> = reading.results.iter().map(|r| (r.name.as_str(), &r.value)).collect();
    assert_eq!(results, [("url", &ParamValue::String("written-before-failing".into()))]);
}

#[test]
fn an_unreadable_frame_fails_with_its_own_reason_and_says_why() {
    let pod = three_steps_succeeded(with_frame(done()), done(), done());
    let mut frames = FetchedResults::default();
    frames.frames.insert(
        "step-build".into(),
        Fetched::Unreadable("found 2 of the frame's 3 lines in the log".into()),
    );
    let reading = read_pod(&task(), &pod, false, &frames);
    assert_failed(
        &reading,
        reason::RESULTS_UNREADABLE,
        &["\"build\"", "2 of the frame's 3 lines"],
    );
}

#[test]
fn a_result_over_the_per_result_limit_names_result_size_and_limit() {
    let pod = three_steps_succeeded(with_frame(done()), done(), done());
    let big = "y".repeat(70_000);
    let frames = fetched(&[("build", &[("url", &big), ("tags", "[]")])]);
    let reading = read_pod(&task(), &pod, false, &frames);
    assert_failed(
        &reading,
        "TaskRunResultLargerThanAllowedLimit",
        &["\"url\"", "70000 bytes", "65536 bytes per result"],
    );
}

#[test]
fn results_over_the_run_total_name_the_largest_result_and_the_limit() {
    let pod = three_steps_succeeded(with_frame(done()), with_frame(done()), done());
    let frames = FetchedResults {
        limits: ResultLimits {
            max_result_bytes: 1000,
            max_run_results_bytes: 1500,
        },
        ..fetched(&[
            ("build", &[("url", &"u".repeat(900))]),
            ("test", &[("tags", &format!("[\"{}\"]", "t".repeat(800)))]),
        ])
    };
    let reading = read_pod(&task(), &pod, false, &frames);
    assert_failed(
        &reading,
        reason::RESULT_TOO_LARGE,
        &["1704 bytes", "limit of 1500 bytes for all results", "\"url\""],
    );
}

#[test]
fn a_frame_too_large_to_read_fails_the_run() {
    let pod = three_steps_succeeded(with_frame(done()), done(), done());
    let mut frames = FetchedResults::default();
    frames
        .frames
        .insert("step-build".into(), Fetched::TooLarge { bytes: 9_000_000 });
    let reading = read_pod(&task(), &pod, false, &frames);
    assert_failed(
        &reading,
        reason::RESULT_TOO_LARGE,
        &["\"build\"", "9000000 bytes", "262144"],
    );
}

#[test]
fn a_step_failed_for_an_oversized_result_says_so() {
    let mut failed = report(Outcome::Failed, 0, 0, 1);
    failed.message = Some("result IMAGE_URL is 70000 bytes, over the limit of 65536 bytes per result".into());
    failed.too_large = Some(TooLarge {
        result: "IMAGE_URL".into(),
        bytes: 70_000,
        limit: 65_536,
        total: false,
    });
    let containers = vec![
        ended("build", &failed),
        ended("test", &skipped()),
        ended("push", &skipped()),
    ];
    let reading = read(&task_without_results(), &pod("Failed", containers, json!({})));
    assert_failed(
        &reading,
        "TaskRunResultLargerThanAllowedLimit",
        &[
            "step \"build\"",
            "\"IMAGE_URL\"",
            "70000 bytes",
            "65536 bytes per result",
        ],
    );
}

/// Every way the reader can fail a run leaves a message saying why.
#[test]
fn no_failure_has_an_empty_message() {
    // A step the entrypoint failed although its command exited 0.
    let mut failed = report(Outcome::Failed, 0, 0, 1);
    failed.message = Some("cannot print the results to stdout: EPIPE".into());
    let containers = vec![
        ended("build", &failed),
        ended("test", &skipped()),
        ended("push", &skipped()),
    ];
    let reading = read(&task_without_results(), &pod("Failed", containers, json!({})));
    assert_failed(
        &reading,
        reason::FAILED,
        &["step \"build\"", "cannot print the results"],
    );

    let cases = [
        pod("Failed", vec![], json!({})),
        pod("Failed", vec![], json!({ "reason": "DeadlineExceeded" })),
        pod("Failed", vec![], json!({ "reason": "Evicted" })),
        pod("Failed", vec![], json!({ "reason": "NodeLost" })),
        pod("Running", vec![killed("build", 137, "OOMKilled")], json!({})),
        pod("Succeeded", vec![], json!({})),
    ];
    for pod in &cases {
        for task in [task(), task_without_results()] {
            let reading = read(&task, pod);
            if reading.succeeded == Succeeded::False {
                assert!(!reading.message.trim().is_empty(), "empty message: {reading:#?}");
                assert!(
                    !reading.message.ends_with(": "),
                    "dangling message: {:?}",
                    reading.message
                );
            }
        }
    }
}
