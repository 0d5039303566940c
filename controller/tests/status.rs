//! Reading a run's pod back into the run's status (`pod::status::read_pod`).
//!
//! Each test builds the pod the kubelet would report at some moment, with
//! step reports encoded by the entrypoint's own `termination::encode`, and
//! checks the condition, reason, message, step states and results.

use std::collections::BTreeMap;

use cicd_controller::api::{ParamType, ParamValue, TaskSpec};
use cicd_controller::pod::status::{PodReading, Succeeded, read_pod};
use cicd_controller::reason;
use cicd_entrypoint::termination::{self, EncodeError, FORMAT_VERSION, MESSAGE_LIMIT_BYTES, Outcome, StepReport};
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
    task.steps[step].on_error = Some(cicd_controller::api::OnError::Continue);
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
    }
}

fn with_result(mut report: StepReport, name: &str, value: &str) -> StepReport {
    report.results.insert(name.to_string(), value.to_string());
    report
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
            "message": termination::encode(report).expect("the report fits"),
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
    read_pod(task, pod, false)
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
fn missing_result_fails_the_run_naming_it() {
    let containers = vec![
        ended(
            "build",
            &with_result(report(Outcome::Succeeded, 0, 0, 5), "url", "registry.local/app:1"),
        ),
        ended("test", &report(Outcome::Succeeded, 0, 5, 8)),
        ended("push", &report(Outcome::Succeeded, 0, 8, 12)),
    ];
    let reading = read(&task(), &pod("Succeeded", containers, json!({})));
    assert_failed(&reading, reason::MISSING_RESULTS, &["tags"]);
    assert!(
        !reading.message.contains("url"),
        "only the missing result is named: {}",
        reading.message
    );
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
    let reading = read_pod(&task_without_results(), &pod("Failed", containers, json!({})), true);
    assert_failed(&reading, reason::CANCELLED, &["cancelled"]);
}

#[test]
fn cancelling_a_running_pod_keeps_the_run_in_progress_until_it_stops() {
    let containers = vec![running("build"), waiting("test", "", ""), waiting("push", "", "")];
    let reading = read_pod(&task_without_results(), &pod("Running", containers, json!({})), true);
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
    let reading = read_pod(&task_without_results(), &pod("Running", containers, json!({})), true);
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
    let base = termination::encode(&empty).expect("a small report fits").len();
    with_result(empty, "IMAGE_URL", &"x".repeat(size - base))
}

#[test]
fn report_just_under_the_limit_is_encoded_and_read_back() {
    let fits = report_of_encoded_size(MESSAGE_LIMIT_BYTES - 1);
    let text = termination::encode(&fits).expect("fits");
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
fn report_just_over_the_limit_names_the_result_its_size_and_the_limit() {
    let too_big = report_of_encoded_size(MESSAGE_LIMIT_BYTES + 1);
    let value_bytes = too_big.results["IMAGE_URL"].len();
    let error = termination::encode(&too_big).expect_err("one byte over the limit");
    assert!(
        matches!(&error, EncodeError::TooLarge { result, result_bytes, total_bytes, limit }
            if result == "IMAGE_URL" && *result_bytes == value_bytes
               && *total_bytes == MESSAGE_LIMIT_BYTES + 1 && *limit == MESSAGE_LIMIT_BYTES),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(text.contains("IMAGE_URL"), "{text}");
    assert!(text.contains(&format!("{value_bytes} bytes")), "{text}");
    assert!(text.contains("4096"), "{text}");
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
