//! The TaskRun reconciler's decisions: given a run, its task and its pod,
//! which requests are made and what status results.

use std::collections::BTreeMap;
use std::time::Duration;

use cicd_controller::api::{
    AttemptStatus, Condition, MyTaskRun, Param, ParamValue, RemoteRef, ResolvedFrom, ResolverName, RunSpecStatus,
    TaskRunSpec, TaskRunStatus, TaskSpec,
};
use cicd_controller::image::{ImageLookup, ImageLookups};
use cicd_controller::manifests::Manifests;
use cicd_controller::plan::AttemptInputs;
use cicd_controller::pod::node::NodeHealth;
use cicd_controller::pod::render::RenderSettings;
use cicd_controller::pod::results::FetchedResults;
use cicd_controller::reconcile::taskrun::{Action, DecideSettings, Observed, TaskLookup, decide};
use cicd_entrypoint::termination::{INLINE_RESULTS_VERSION, Outcome, StepReport, encode};
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStatus, Pod, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;

const TASK_YAML: &str = r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTask
metadata: {name: build, namespace: ci}
spec:
  params:
    - name: NAME
  results:
    - name: OUT
  steps:
    - name: one
      image: 127.0.0.1:5000/cicd/bash:5
      script: echo -n "hi $(params.NAME)" > $(results.OUT.path)
    - name: two
      image: 127.0.0.1:5000/cicd/bash:5
      script: echo two
"#;

fn task() -> TaskSpec {
    let mut manifests = Manifests::default();
    manifests.add_yaml("task", TASK_YAML).expect("task parses");
    manifests.tasks[0].spec.clone()
}

fn run(spec: TaskRunSpec) -> MyTaskRun {
    let mut run = MyTaskRun::new("tr", spec);
    run.metadata.namespace = Some("ci".into());
    run.metadata.uid = Some("uid-1".into());
    run.metadata.generation = Some(1);
    run
}

fn good_spec() -> TaskRunSpec {
    TaskRunSpec {
        task_ref: Some("build".into()),
        params: vec![Param {
            name: "NAME".into(),
            value: ParamValue::String("bob".into()),
        }],
        ..Default::default()
    }
}

/// No frames fetched: these tests' reports carry their results inline.
static NO_INPUTS: AttemptInputs = AttemptInputs::NONE;
static NO_FRAMES: std::sync::LazyLock<FetchedResults> = std::sync::LazyLock::new(FetchedResults::default);

fn settings() -> DecideSettings {
    DecideSettings {
        render: RenderSettings {
            entrypoint_image: "127.0.0.1:5000/cicd/entrypoint:dev".into(),
            ..Default::default()
        },
        default_timeout: Duration::from_secs(3600),
        node_lost_after: Duration::from_secs(40),
    }
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + seconds).expect("valid time")
}

fn observe<'a>(run: &'a MyTaskRun, task: &'a TaskSpec, pod: Option<&'a Pod>, now: i64) -> Vec<Action> {
    let observed = Observed {
        run,
        task: TaskLookup::Found {
            name: "build",
            spec: task,
        },
        pod,
        results: &NO_FRAMES,
        node: None,
        inputs: &NO_INPUTS,
        now: at(now),
    };
    decide(observed, &settings())
}

/// A run without a pod deciding with `inputs` (what the controller read
/// for the attempt about to start).
fn observe_with(run: &MyTaskRun, task: &TaskSpec, inputs: &AttemptInputs) -> Vec<Action> {
    let observed = Observed {
        run,
        task: TaskLookup::Found {
            name: "build",
            spec: task,
        },
        pod: None,
        results: &NO_FRAMES,
        node: None,
        inputs,
        now: at(0),
    };
    decide(observed, &settings())
}

fn written_status(actions: &[Action]) -> TaskRunStatus {
    actions
        .iter()
        .find_map(|a| match a {
            Action::WriteStatus(status) => Some((**status).clone()),
            _ => None,
        })
        .expect("a status write")
}

fn condition(status: &TaskRunStatus) -> &Condition {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == "Succeeded")
        .expect("Succeeded condition")
}

fn created_pods(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::CreatePod(pod) => pod.metadata.name.clone(),
            _ => None,
        })
        .collect()
}

fn stopped_pods(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::StopPod(name) => Some(name.clone()),
            _ => None,
        })
        .collect()
}

fn event_reasons(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Publish(notice) => Some(notice.reason.clone()),
            _ => None,
        })
        .collect()
}

fn report(outcome: Outcome, exit_code: i32, results: &[(&str, &str)]) -> String {
    encode(
        &StepReport {
            version: INLINE_RESULTS_VERSION,
            outcome,
            exit_code,
            started_at_ms: Some(1_700_000_001_000),
            finished_at_ms: Some(1_700_000_002_000),
            message: None,
            // Inline results: the version 1 format, which the reader still takes.
            results: results
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            step_results: BTreeMap::new(),
            frame: None,
            too_large: None,
        },
        cicd_entrypoint::termination::MESSAGE_LIMIT_BYTES,
    )
    .expect("report fits")
}

fn terminated(name: &str, exit_code: i32, message: Option<String>) -> ContainerStatus {
    ContainerStatus {
        name: name.into(),
        state: Some(ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code,
                message,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn running(name: &str) -> ContainerStatus {
    ContainerStatus {
        name: name.into(),
        state: Some(ContainerState {
            running: Some(ContainerStateRunning::default()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A pod this run made: its controller owner reference names the run.
fn pod(name: &str, phase: &str, created: i64, containers: Vec<ContainerStatus>) -> Pod {
    let mut pod = Pod::default();
    pod.metadata.name = Some(name.into());
    pod.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "cicdoperator.ning1875.io/v1".into(),
        kind: "MyTaskRun".into(),
        name: "tr".into(),
        uid: "uid-1".into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }]);
    pod.metadata.creation_timestamp = Some(Time(at(created)));
    pod.status = Some(PodStatus {
        phase: Some(phase.into()),
        container_statuses: Some(containers),
        ..Default::default()
    });
    pod
}

/// A run whose first reconcile already created its pod.
fn started(spec: TaskRunSpec) -> MyTaskRun {
    let mut run = run(spec);
    let task = task();
    let actions = observe(&run, &task, None, 0);
    run.status = Some(written_status(&actions));
    run
}

#[test]
fn a_new_run_creates_its_pod_and_reports_pending() {
    let run = run(good_spec());
    let task = task();
    let actions = observe(&run, &task, None, 0);
    assert_eq!(created_pods(&actions), vec!["tr-pod"]);
    assert!(actions.contains(&Action::RequeueAfter(Duration::from_secs(3600))));
    assert_eq!(event_reasons(&actions), vec!["Started"]);
    let status = written_status(&actions);
    assert_eq!(condition(&status).status, "Unknown");
    assert_eq!(condition(&status).reason, "Pending");
    assert_eq!(status.pod_name.as_deref(), Some("tr-pod"));
    assert_eq!(status.start_time, Some(Time(at(0))));
    assert_eq!(
        status.task_spec.as_ref(),
        Some(&task),
        "the resolved task is kept in status"
    );
}

#[test]
fn after_a_restart_the_existing_pod_is_adopted_not_recreated() {
    let run = started(good_spec());
    let task = task();
    let pod = pod("tr-pod", "Running", 0, vec![running("step-one")]);
    let actions = observe(&run, &task, Some(&pod), 5);
    assert!(created_pods(&actions).is_empty());
    let status = written_status(&actions);
    assert_eq!(condition(&status).reason, "Running");
    assert_eq!(condition(&status).message, "step \"one\" is running");
    assert_eq!(event_reasons(&actions), vec!["Running"]);
}

#[test]
fn seeing_the_new_pod_arrive_writes_no_second_status() {
    let run = started(good_spec());
    let task = task();
    // As the API server answers the create: Pending, no container yet.
    let mut arrived = pod("tr-pod", "Pending", 0, Vec::new());
    arrived.status.as_mut().expect("status").container_statuses = None;
    let actions = observe(&run, &task, Some(&arrived), 1);
    assert!(
        actions.iter().all(|a| matches!(a, Action::RequeueAfter(_))),
        "{actions:?}"
    );
    let status = run.status.as_ref().expect("status");
    assert_eq!(condition(status).message, "the pod is starting");
    let steps: Vec<_> = status
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.state.as_str()))
        .collect();
    assert_eq!(steps, [("one", "Waiting"), ("two", "Waiting")]);
}

#[test]
fn nothing_is_written_when_nothing_changed() {
    let mut run = started(good_spec());
    let task = task();
    let pod = pod("tr-pod", "Running", 0, vec![running("step-one")]);
    run.status = Some(written_status(&observe(&run, &task, Some(&pod), 5)));
    let actions = observe(&run, &task, Some(&pod), 6);
    assert!(
        actions.iter().all(|a| matches!(a, Action::RequeueAfter(_))),
        "{actions:?}"
    );
}

#[test]
fn a_succeeded_pod_gives_results_and_completion() {
    let run = started(good_spec());
    let task = task();
    let pod = pod(
        "tr-pod",
        "Succeeded",
        0,
        vec![
            terminated("step-one", 0, Some(report(Outcome::Succeeded, 0, &[("OUT", "hi bob")]))),
            terminated("step-two", 0, Some(report(Outcome::Succeeded, 0, &[]))),
        ],
    );
    let actions = observe(&run, &task, Some(&pod), 9);
    let status = written_status(&actions);
    assert_eq!(condition(&status).status, "True");
    assert_eq!(status.results[0].name, "OUT");
    assert_eq!(status.results[0].value, ParamValue::String("hi bob".into()));
    assert_eq!(
        status.completion_time.as_ref().map(|t| t.0.as_millisecond()),
        Some(1_700_000_002_000)
    );
    assert_eq!(event_reasons(&actions), vec!["Succeeded"]);
}

#[test]
fn a_finished_run_is_left_alone() {
    let mut run = started(good_spec());
    let mut status = run.status.clone().unwrap_or_default();
    status.conditions[0].status = "True".into();
    run.status = Some(status);
    let task = task();
    let pod = pod("tr-pod", "Succeeded", 0, vec![]);
    assert!(observe(&run, &task, Some(&pod), 100).is_empty());
}

#[test]
fn a_run_past_its_timeout_is_stopped_and_fails() {
    let run = started(TaskRunSpec {
        timeout: Some("30s".into()),
        ..good_spec()
    });
    let task = task();
    let pod = pod("tr-pod", "Running", 0, vec![running("step-one")]);
    let before = observe(&run, &task, Some(&pod), 20);
    assert!(
        before.contains(&Action::RequeueAfter(Duration::from_secs(10))),
        "{before:?}"
    );
    let actions = observe(&run, &task, Some(&pod), 31);
    assert_eq!(stopped_pods(&actions), vec!["tr-pod"]);
    let status = written_status(&actions);
    assert_eq!(condition(&status).status, "False");
    assert_eq!(condition(&status).reason, "TaskRunTimeout");
    assert!(
        condition(&status).message.contains("30s"),
        "{}",
        condition(&status).message
    );
}

#[test]
fn cancelling_a_running_run_stops_its_pod() {
    let mut run = started(good_spec());
    run.spec.status = Some(RunSpecStatus::Cancelled);
    let task = task();
    let pod = pod("tr-pod", "Running", 0, vec![running("step-one")]);
    let actions = observe(&run, &task, Some(&pod), 3);
    assert_eq!(stopped_pods(&actions), vec!["tr-pod"]);
    let status = written_status(&actions);
    assert_eq!(
        (condition(&status).status.as_str(), condition(&status).reason.as_str()),
        ("False", "TaskRunCancelled")
    );
}

#[test]
fn a_run_cancelled_before_it_started_never_gets_a_pod() {
    let run = run(TaskRunSpec {
        status: Some(RunSpecStatus::Cancelled),
        ..good_spec()
    });
    let task = task();
    let actions = observe(&run, &task, None, 0);
    assert!(created_pods(&actions).is_empty());
    assert_eq!(condition(&written_status(&actions)).reason, "TaskRunCancelled");
}

#[test]
fn a_failed_attempt_is_retried_in_a_new_pod_then_the_run_fails() {
    let run1 = started(TaskRunSpec {
        retries: Some(1),
        ..good_spec()
    });
    let task = task();
    let failed = |name: &str| {
        pod(
            name,
            "Failed",
            0,
            vec![
                terminated("step-one", 3, Some(report(Outcome::Failed, 3, &[]))),
                terminated("step-two", 1, Some(report(Outcome::Skipped, 1, &[]))),
            ],
        )
    };
    let first = failed("tr-pod");
    let actions = observe(&run1, &task, Some(&first), 10);
    assert_eq!(created_pods(&actions), vec!["tr-pod-retry1"]);
    assert!(event_reasons(&actions).contains(&"Retrying".to_string()));
    let status = written_status(&actions);
    assert_eq!(condition(&status).status, "Unknown");
    assert_eq!(status.pod_name.as_deref(), Some("tr-pod-retry1"));
    assert_eq!(
        status.retries_status,
        vec![AttemptStatus {
            pod_name: "tr-pod".into(),
            reason: "Failed".into(),
            message: "step \"one\" failed with exit code 3".into(),
            start_time: Some(Time(at(0))),
            completion_time: Some(Time(at(10))),
        }]
    );

    let mut run2 = run1.clone();
    run2.status = Some(status);
    let second = failed("tr-pod-retry1");
    let actions = observe(&run2, &task, Some(&second), 20);
    assert!(created_pods(&actions).is_empty(), "retries are used up");
    let status = written_status(&actions);
    assert_eq!(
        (condition(&status).status.as_str(), condition(&status).reason.as_str()),
        ("False", "Failed")
    );
    assert_eq!(status.steps[0].exit_code, Some(3));
    assert_eq!(status.steps[1].reason, "Skipped");
}

#[test]
fn a_missing_task_fails_naming_task_and_namespace() {
    let run = run(TaskRunSpec {
        task_ref: Some("nope".into()),
        ..Default::default()
    });
    let observed = Observed {
        run: &run,
        task: TaskLookup::Missing { name: "nope" },
        pod: None,
        results: &NO_FRAMES,
        node: None,
        inputs: &NO_INPUTS,
        now: at(0),
    };
    let actions = decide(observed, &settings());
    assert!(created_pods(&actions).is_empty());
    let status = written_status(&actions);
    let condition = condition(&status);
    assert_eq!(
        (condition.status.as_str(), condition.reason.as_str()),
        ("False", "TaskRunResolutionFailed")
    );
    assert!(
        condition.message.contains("\"nope\"") && condition.message.contains("\"ci\""),
        "{}",
        condition.message
    );
}

fn decide_missing_at(run: &MyTaskRun, now: i64) -> Vec<Action> {
    let observed = Observed {
        run,
        task: TaskLookup::Missing { name: "nope" },
        pod: None,
        results: &NO_FRAMES,
        node: None,
        inputs: &NO_INPUTS,
        now: at(now),
    };
    decide(observed, &settings())
}

fn created_at_zero(spec: TaskRunSpec) -> MyTaskRun {
    let mut run = run(spec);
    run.metadata.creation_timestamp = Some(Time(at(0)));
    run
}

#[test]
fn a_young_run_waits_for_its_missing_task_then_fails_after_the_grace() {
    let run = created_at_zero(TaskRunSpec {
        task_ref: Some("nope".into()),
        ..Default::default()
    });
    let waiting = decide_missing_at(&run, 5);
    assert!(created_pods(&waiting).is_empty());
    assert!(
        waiting.contains(&Action::RequeueAfter(Duration::from_secs(1))),
        "{waiting:?}"
    );
    let status = written_status(&waiting);
    let found = condition(&status);
    assert_eq!((found.status.as_str(), found.reason.as_str()), ("Unknown", "Resolving"));
    assert!(
        found
            .message
            .contains("MyTask \"nope\" not found in namespace \"ci\" yet"),
        "{}",
        found.message
    );

    let failed = decide_missing_at(&run, 30);
    assert!(
        !failed.iter().any(|a| matches!(a, Action::RequeueAfter(_))),
        "{failed:?}"
    );
    let status = written_status(&failed);
    let found = condition(&status);
    assert_eq!(
        (found.status.as_str(), found.reason.as_str()),
        ("False", "TaskRunResolutionFailed")
    );
    assert!(found.message.contains("within 30s"), "{}", found.message);
}

#[test]
fn a_run_cancelled_while_waiting_for_its_task_ends_cancelled() {
    let run = created_at_zero(TaskRunSpec {
        task_ref: Some("nope".into()),
        status: Some(RunSpecStatus::Cancelled),
        ..Default::default()
    });
    let actions = decide_missing_at(&run, 1);
    let status = written_status(&actions);
    let condition = condition(&status);
    assert_eq!(
        (condition.status.as_str(), condition.reason.as_str()),
        ("False", "TaskRunCancelled")
    );
}

fn remote_run() -> MyTaskRun {
    let mut spec = good_spec();
    spec.task_ref = None;
    spec.remote_task = Some(RemoteRef {
        resolver: ResolverName::Git,
        params: vec![],
    });
    run(spec)
}

fn decide_with(run: &MyTaskRun, task: TaskLookup<'_>) -> Vec<Action> {
    let observed = Observed {
        run,
        task,
        pod: None,
        results: &NO_FRAMES,
        node: None,
        inputs: &NO_INPUTS,
        now: at(0),
    };
    decide(observed, &settings())
}

#[test]
fn a_remote_task_waits_resolving_then_starts_and_records_where_it_came_from() {
    let run = remote_run();
    let actions = decide_with(
        &run,
        TaskLookup::Resolving {
            what: "fetching the definition with the git resolver",
        },
    );
    assert!(created_pods(&actions).is_empty(), "no pod while fetching");
    let status = written_status(&actions);
    assert_eq!(
        (condition(&status).status.as_str(), condition(&status).reason.as_str()),
        ("Unknown", "Resolving")
    );
    assert!(
        condition(&status).message.starts_with("spec.remoteTask: fetching"),
        "{:?}",
        condition(&status)
    );

    let task = task();
    let from = ResolvedFrom {
        resolver: "git".into(),
        name: "build".into(),
        uri: "git://10.244.0.1/catalog.git".into(),
        commit: Some("0123456789012345678901234567890123456789".into()),
        path: Some("build.yaml".into()),
    };
    let actions = decide_with(
        &run,
        TaskLookup::Resolved {
            name: "build",
            spec: &task,
            from: &from,
        },
    );
    assert_eq!(created_pods(&actions).len(), 1);
    let status = written_status(&actions);
    assert_eq!(status.resolved_from.as_ref(), Some(&from));
    assert_eq!(
        status.task_spec.as_ref(),
        Some(&task),
        "the fetched task is the run's snapshot"
    );
}

#[test]
fn an_unresolvable_remote_task_fails_with_the_resolvers_reason() {
    let run = remote_run();
    let problem = "git resolver: git://h/r at \"HEAD\": pathInRepo \"x.yaml\" is not in commit abc";
    let actions = decide_with(&run, TaskLookup::Unresolved { problem });
    let status = written_status(&actions);
    assert_eq!(
        (condition(&status).status.as_str(), condition(&status).reason.as_str()),
        ("False", "TaskRunResolutionFailed")
    );
    assert_eq!(condition(&status).message, format!("spec.remoteTask: {problem}"));

    let mut cancelled = remote_run();
    cancelled.spec.status = Some(RunSpecStatus::Cancelled);
    let actions = decide_with(&cancelled, TaskLookup::Resolving { what: "fetching" });
    assert_eq!(condition(&written_status(&actions)).reason, "TaskRunCancelled");
}

#[test]
fn a_remote_task_beside_a_task_ref_is_refused() {
    let mut both = remote_run();
    both.spec.task_ref = Some("build".into());
    let task = task();
    let actions = decide_with(
        &both,
        TaskLookup::Found {
            name: "build",
            spec: &task,
        },
    );
    assert!(created_pods(&actions).is_empty());
    let status = written_status(&actions);
    assert!(
        condition(&status)
            .message
            .contains("spec.taskRef: set one of taskRef, taskSpec and remoteTask, not several"),
        "{}",
        condition(&status).message
    );
}

#[test]
fn an_invalid_run_fails_with_every_error() {
    let run = run(TaskRunSpec {
        task_ref: Some("build".into()),
        params: vec![Param {
            name: "EXTRA".into(),
            value: ParamValue::String("x".into()),
        }],
        timeout: Some("soon".into()),
        ..Default::default()
    });
    let task = task();
    let actions = observe(&run, &task, None, 0);
    assert!(created_pods(&actions).is_empty());
    let status = written_status(&actions);
    let condition = condition(&status);
    assert_eq!(condition.reason, "TaskRunValidationFailed");
    for expected in [
        "spec.timeout",
        "\"soon\"",
        "spec.params[0].name",
        "\"EXTRA\"",
        "\"NAME\" is required",
    ] {
        assert!(
            condition.message.contains(expected),
            "{expected} missing from {}",
            condition.message
        );
    }
    assert_eq!(event_reasons(&actions), vec!["TaskRunValidationFailed"]);
}

#[test]
fn a_pod_deleted_from_under_a_running_run_fails_it() {
    let run = started(good_spec());
    let task = task();
    let actions = observe(&run, &task, None, 5);
    assert!(created_pods(&actions).is_empty(), "the pod is not silently recreated");
    let status = written_status(&actions);
    assert_eq!(condition(&status).reason, "PodDeleted");
    assert!(condition(&status).message.contains("tr-pod"));
}

#[test]
fn a_pod_being_deleted_while_running_fails_the_run() {
    let run = started(good_spec());
    let task = task();
    let mut pod = pod("tr-pod", "Running", 0, vec![running("step-one")]);
    pod.metadata.deletion_timestamp = Some(Time(at(4)));
    let status = written_status(&observe(&run, &task, Some(&pod), 5));
    assert_eq!(condition(&status).reason, "PodDeleted");
}

#[test]
fn a_failed_step_is_announced_once() {
    let run = started(good_spec());
    let task = task();
    let pod = pod(
        "tr-pod",
        "Running",
        0,
        vec![
            terminated("step-one", 0, Some(report(Outcome::Failed, 2, &[]))),
            running("step-two"),
        ],
    );
    let actions = observe(&run, &task, Some(&pod), 5);
    assert!(
        event_reasons(&actions).contains(&"StepFailed".to_string()),
        "{actions:?}"
    );
    let mut later = run.clone();
    later.status = Some(written_status(&actions));
    assert!(!event_reasons(&observe(&later, &task, Some(&pod), 6)).contains(&"StepFailed".to_string()));
}

#[test]
fn a_run_that_failed_after_all_its_containers_ended_leaves_the_pod_to_the_kubelet() {
    let run = started(good_spec());
    let task = task();
    // The kubelet has not given the pod its final phase yet, but nothing in
    // it runs: stopping it would be one more write for nothing.
    let containers = || {
        vec![
            terminated("step-one", 2, Some(report(Outcome::Failed, 2, &[]))),
            terminated("step-two", 0, Some(report(Outcome::Skipped, 0, &[]))),
        ]
    };
    for phase in ["Pending", "Running"] {
        let pod = pod("tr-pod", phase, 0, containers());
        let actions = observe(&run, &task, Some(&pod), 5);
        assert_eq!(condition(&written_status(&actions)).status, "False", "{phase}");
        assert!(stopped_pods(&actions).is_empty(), "{phase}: {actions:?}");
    }
}

#[test]
fn a_run_that_failed_while_its_pod_still_runs_stops_the_pod() {
    let run = started(good_spec());
    let task = task();
    // Step one was OOM-killed before the entrypoint could report; step two
    // would wait forever for its hand-off.
    let mut oom = terminated("step-one", 137, None);
    if let Some(t) = oom.state.as_mut().and_then(|s| s.terminated.as_mut()) {
        t.reason = Some("OOMKilled".into());
    }
    let pod = pod("tr-pod", "Running", 0, vec![oom, running("step-two")]);
    let actions = observe(&run, &task, Some(&pod), 5);
    assert_eq!(stopped_pods(&actions), vec!["tr-pod"]);
    let status = written_status(&actions);
    assert_eq!(condition(&status).status, "False");
    assert!(
        condition(&status).message.contains("OOMKilled"),
        "{}",
        condition(&status).message
    );
}

#[test]
fn a_malformed_task_fails_the_run_naming_the_field() {
    let run = run(good_spec());
    let problem = "spec.sidecars[0].ports[0].containerPort: invalid type: string \"lots\", expected i32";
    let observed = Observed {
        run: &run,
        task: TaskLookup::Malformed { name: "build", problem },
        pod: None,
        results: &NO_FRAMES,
        node: None,
        inputs: &NO_INPUTS,
        now: at(0),
    };
    let actions = decide(observed, &settings());
    assert!(created_pods(&actions).is_empty());
    let status = written_status(&actions);
    assert_eq!(condition(&status).reason, "TaskRunValidationFailed");
    assert!(
        condition(&status).message.contains("containerPort"),
        "{}",
        condition(&status).message
    );
}

#[test]
fn a_foreign_pod_under_the_expected_name_is_neither_read_nor_stopped() {
    let run = started(TaskRunSpec {
        timeout: Some("1s".into()),
        ..good_spec()
    });
    let task = task();
    for owner in [None, Some("someone-else")] {
        let mut foreign = pod("tr-pod", "Running", 0, vec![running("step-one")]);
        foreign.metadata.owner_references = owner.map(|uid| {
            vec![OwnerReference {
                uid: uid.into(),
                controller: Some(true),
                ..Default::default()
            }]
        });
        // Long past the run's 1s timeout: a pod of ours would be stopped.
        let actions = observe(&run, &task, Some(&foreign), 60);
        assert!(stopped_pods(&actions).is_empty(), "{actions:?}");
        assert!(created_pods(&actions).is_empty());
        let status = written_status(&actions);
        assert_eq!(
            (condition(&status).status.as_str(), condition(&status).reason.as_str()),
            ("False", "PodNameTaken")
        );
        assert_eq!(
            condition(&status).message,
            "pod \"tr-pod\" exists and is not owned by MyTaskRun \"tr\""
        );
        // The steps stay as our own plan left them; the foreign pod's
        // running step is not read.
        assert_eq!(
            status.steps,
            run.status.as_ref().expect("status").steps,
            "nothing is read from a foreign pod"
        );
        assert_eq!(event_reasons(&actions), vec!["PodNameTaken"]);
    }
}

/// The status the executor writes when the API server could not make the
/// pod yet: still Unknown, with the server's message, and no pod recorded.
fn retrying(mut run: MyTaskRun, message: &str) -> MyTaskRun {
    let status = run.status.as_mut().expect("started");
    status.pod_name = None;
    let condition = status
        .conditions
        .iter_mut()
        .find(|c| c.type_ == "Succeeded")
        .expect("condition");
    condition.reason = "PodCreationRetrying".into();
    condition.message = message.into();
    run
}

#[test]
fn a_pod_the_server_keeps_refusing_is_tried_again_within_the_timeout() {
    let run = retrying(
        started(TaskRunSpec {
            timeout: Some("30s".into()),
            ..good_spec()
        }),
        "pod \"tr-pod\" could not be created yet (HTTP 500: etcd is down); retrying",
    );
    let task = task();
    let actions = observe(&run, &task, None, 10);
    assert_eq!(created_pods(&actions), vec!["tr-pod"], "not taken for a deleted pod");
    let status = written_status(&actions);
    assert_eq!(status.start_time, Some(Time(at(0))), "the run's start is kept");
}

#[test]
fn the_timeout_counts_from_the_run_start_even_without_a_pod() {
    let run = retrying(
        started(TaskRunSpec {
            timeout: Some("30s".into()),
            ..good_spec()
        }),
        "pod \"tr-pod\" could not be created yet (HTTP 500: etcd is down); retrying",
    );
    let task = task();
    let actions = observe(&run, &task, None, 31);
    assert!(created_pods(&actions).is_empty(), "{actions:?}");
    let status = written_status(&actions);
    assert_eq!(
        (condition(&status).status.as_str(), condition(&status).reason.as_str()),
        ("False", "TaskRunTimeout")
    );
    let message = &condition(&status).message;
    assert!(
        message.contains("30s") && message.contains("HTTP 500: etcd is down"),
        "{message}"
    );
}

/// Node `cicd-node-2`, not Ready (Unknown, as when its kubelet stopped)
/// since `since`.
fn unreachable_node(since: i64) -> NodeHealth {
    NodeHealth {
        name: "cicd-node-2".into(),
        ready: "Unknown".into(),
        why: "NodeStatusUnknown: Kubelet stopped posting node status.".into(),
        since: Some(at(since)),
    }
}

fn observe_on_node(run: &MyTaskRun, pod: &Pod, node: &NodeHealth, now: i64) -> Vec<Action> {
    let task = task();
    let observed = Observed {
        run,
        task: TaskLookup::Found {
            name: "build",
            spec: &task,
        },
        pod: Some(pod),
        results: &NO_FRAMES,
        node: Some(node),
        inputs: &NO_INPUTS,
        now: at(now),
    };
    decide(observed, &settings())
}

#[test]
fn a_pod_on_a_node_down_for_less_than_the_grace_keeps_running_and_is_looked_at_after_it() {
    let run = started(good_spec());
    let on_node = pod("tr-pod", "Running", 0, vec![running("step-one")]);
    let actions = observe_on_node(&run, &on_node, &unreachable_node(100), 130);
    assert!(stopped_pods(&actions).is_empty());
    assert_eq!(condition(&written_status(&actions)).reason, "Running");
    assert!(
        actions.contains(&Action::RequeueAfter(Duration::from_millis(10_001))),
        "looked at again once the 40 s grace has passed: {actions:?}"
    );
}

#[test]
fn a_pod_on_a_node_down_for_the_grace_ends_the_run_node_lost_naming_the_node() {
    let run = started(good_spec());
    let on_node = pod("tr-pod", "Running", 0, vec![running("step-one")]);
    let actions = observe_on_node(&run, &on_node, &unreachable_node(100), 141);
    assert_eq!(stopped_pods(&actions), vec!["tr-pod"], "the pod is kept but stopped");
    assert!(created_pods(&actions).is_empty());
    let status = written_status(&actions);
    let succeeded = condition(&status);
    assert_eq!(
        (succeeded.status.as_str(), succeeded.reason.as_str()),
        ("False", "NodeLost")
    );
    assert!(
        succeeded
            .message
            .starts_with("node cicd-node-2 has been unreachable (Ready=Unknown) for 41s"),
        "{}",
        succeeded.message
    );
    assert!(event_reasons(&actions).contains(&"NodeLost".to_string()));
}

#[test]
fn a_run_with_retries_left_retries_a_node_lost_attempt_in_a_new_pod() {
    let run = started(TaskRunSpec {
        retries: Some(1),
        ..good_spec()
    });
    let on_node = pod("tr-pod", "Running", 0, vec![running("step-one")]);
    let actions = observe_on_node(&run, &on_node, &unreachable_node(100), 150);
    assert_eq!(stopped_pods(&actions), vec!["tr-pod"]);
    assert_eq!(created_pods(&actions), vec!["tr-pod-retry1"]);
    let status = written_status(&actions);
    assert_eq!(condition(&status).status, "Unknown");
    assert_eq!(status.retries_status.len(), 1);
    assert_eq!(status.retries_status[0].reason, "NodeLost");
    assert!(status.retries_status[0].message.contains("cicd-node-2"));
}

#[test]
fn a_finished_pod_on_a_lost_node_is_read_as_it_finished() {
    let run = started(good_spec());
    let done = pod(
        "tr-pod",
        "Succeeded",
        0,
        vec![
            terminated("step-one", 0, Some(report(Outcome::Succeeded, 0, &[("OUT", "hi bob")]))),
            terminated("step-two", 0, Some(report(Outcome::Succeeded, 0, &[]))),
        ],
    );
    let actions = observe_on_node(&run, &done, &unreachable_node(0), 500);
    assert_eq!(condition(&written_status(&actions)).status, "True");
}

#[test]
fn a_run_waits_without_a_pod_while_a_steps_image_is_looked_up() {
    let run = run(good_spec());
    let task = task();
    let inputs = AttemptInputs {
        images: ImageLookups::from([("registry.example/tool:1".to_string(), ImageLookup::Pending)]),
        ..AttemptInputs::default()
    };
    let actions = observe_with(&run, &task, &inputs);
    assert!(created_pods(&actions).is_empty(), "no pod before the registry answers");
    let status = written_status(&actions);
    assert_eq!(
        (condition(&status).status.as_str(), condition(&status).reason.as_str()),
        ("Unknown", "Pending")
    );
    assert!(
        condition(&status)
            .message
            .contains("looking up the entrypoint of image \"registry.example/tool:1\""),
        "{}",
        condition(&status).message
    );
    assert_eq!(status.start_time, None, "the run's timeout starts with its pod");
}

#[test]
fn a_run_waits_without_a_pod_while_a_step_action_is_fetched() {
    let run = run(good_spec());
    let task = task();
    let inputs = AttemptInputs {
        fetching: Some("steps[1].ref".to_string()),
        ..AttemptInputs::default()
    };
    let actions = observe_with(&run, &task, &inputs);
    assert!(created_pods(&actions).is_empty());
    let status = written_status(&actions);
    assert_eq!(condition(&status).reason, "Pending");
    assert_eq!(
        condition(&status).message,
        "steps[1].ref: fetching the step action with its resolver"
    );
}

/// The task with its first step, `fetched`, running an action the http
/// resolver fetches.
fn task_with_a_fetched_step_action() -> TaskSpec {
    let mut task = task();
    task.steps[0] = serde_json::from_value(serde_json::json!({
        "name": "fetched",
        "ref": { "resolver": "http", "params": [{ "name": "url", "value": "http://git.example/a.yaml" }] },
    }))
    .expect("a step with a remote ref");
    task
}

#[test]
fn a_step_action_its_resolver_could_not_fetch_fails_the_run_as_a_resolution() {
    let run = run(good_spec());
    let task = task_with_a_fetched_step_action();
    let inputs = AttemptInputs {
        step_actions: [(
            "steps[0]".to_string(),
            Err("http resolver: the server answered 404".to_string()),
        )]
        .into(),
        ..AttemptInputs::default()
    };
    let actions = observe_with(&run, &task, &inputs);
    assert!(created_pods(&actions).is_empty());
    let status = written_status(&actions);
    assert_eq!(
        (condition(&status).status.as_str(), condition(&status).reason.as_str()),
        ("False", "TaskRunResolutionFailed")
    );
    assert!(
        condition(&status)
            .message
            .contains("steps[0].ref: the step action cannot be had: http resolver: the server answered 404"),
        "{}",
        condition(&status).message
    );
}

#[test]
fn where_a_fetched_step_action_came_from_is_recorded_with_its_step() {
    let run = run(good_spec());
    let task = task_with_a_fetched_step_action();
    let action = serde_json::from_value(serde_json::json!({ "image": "127.0.0.1:5000/cicd/bash:5", "script": "true" }))
        .expect("an action");
    let from = cicd_controller::api::ResolvedFrom {
        resolver: "http".into(),
        name: "say".into(),
        uri: "http://git.example/a.yaml".into(),
        commit: None,
        path: None,
    };
    let inputs = AttemptInputs {
        step_actions: [("steps[0]".to_string(), Ok(action))].into(),
        fetched_from: vec![(0, from.clone())],
        ..AttemptInputs::default()
    };
    let actions = observe_with(&run, &task, &inputs);
    assert_eq!(created_pods(&actions).len(), 1);
    let status = written_status(&actions);
    assert_eq!(
        status.step_actions_resolved_from,
        [cicd_controller::api::StepActionSource {
            step: "fetched".into(),
            resolved_from: from,
        }]
    );
}
