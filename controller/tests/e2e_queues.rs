//! End-to-end tests of concurrency groups and run history on the real
//! cluster (hack/local-cluster): a `max: 1` group runs ten runs one after
//! another in creation order, `CancelInProgress` leaves only the newest,
//! both hold across a controller restart, and finished runs go after
//! their `ttlSecondsAfterFinished` or beyond their task's history limits.
//!
//! Ignored by default; `hack/e2e queue` runs these only.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cicd_controller::api::MyTaskRun;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::ListParams;
use support::{BASH, Run, TestNamespace, restart_controller};

/// A MyTask in group `<group>-$(params.env)` (so `<group>-prod` for the
/// runs here) whose one step runs `script`.
fn task(name: &str, group: &str, policy: &str, script: &str, extra: &str) -> String {
    format!(
        r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTask
metadata: {{name: {name}}}
spec:
  params:
    - name: env
  concurrency:
    group: {group}-$(params.env)
    max: 1
    policy: {policy}
{extra}
  steps:
    - name: main
      image: {BASH}
      script: {script}
"#
    )
}

fn run_of(name: &str, task: &str) -> String {
    format!(
        r#"---
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTaskRun
metadata: {{name: {name}}}
spec:
  taskRef: {task}
  params:
    - {{name: env, value: prod}}
"#
    )
}

/// Applies all the runs in one kubectl call, so they are created together.
fn apply_runs(ns: &TestNamespace, names: &[String], task: &str) {
    let yaml: String = names.iter().map(|name| run_of(name, task)).collect();
    ns.apply(&yaml);
}

fn names(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}{i:02}")).collect()
}

/// What the test saw while waiting: the most pods of the namespace that
/// were not over at one look, and every Queued message.
#[derive(Default)]
struct Watched {
    most_pods_at_once: usize,
    queued_messages: Vec<String>,
}

/// True while a pod has not started or some container of it has not
/// terminated: it holds the slot of its run.
fn pod_is_live(pod: &Pod) -> bool {
    let Some(status) = pod.status.as_ref() else {
        return true;
    };
    if matches!(status.phase.as_deref(), Some("Succeeded") | Some("Failed")) {
        return false;
    }
    let containers: Vec<_> = status.container_statuses.iter().flatten().collect();
    containers.is_empty()
        || containers
            .iter()
            .any(|c| c.state.as_ref().is_none_or(|s| s.terminated.is_none()))
}

/// Polls until every run is final, recording Queued messages and, when
/// `one_pod` is set (a `Queue` group), asserting that at most one of the
/// runs' pods was live at any look and that a waiting run said where it stood.
async fn watch_until_done(
    ns: &TestNamespace,
    names: &[String],
    limit: Duration,
    one_pod: bool,
) -> BTreeMap<String, MyTaskRun> {
    let deadline = Instant::now() + limit;
    let mut watched = Watched::default();
    loop {
        let pods = ns.api::<Pod>().list(&ListParams::default()).await.expect("list pods");
        let live = pods
            .items
            .iter()
            .filter(|p| names.iter().any(|n| p.name_any() == format!("{n}-pod")))
            .filter(|p| pod_is_live(p))
            .count();
        watched.most_pods_at_once = watched.most_pods_at_once.max(live);
        let runs = ns
            .api::<MyTaskRun>()
            .list(&ListParams::default())
            .await
            .expect("list runs");
        for run in &runs.items {
            if let Some((_, reason, message)) = run.condition()
                && reason == "Queued"
                && !watched.queued_messages.contains(&message)
            {
                watched.queued_messages.push(message);
            }
        }
        let done: BTreeMap<String, MyTaskRun> = runs
            .items
            .into_iter()
            .filter(|r| r.condition().is_some_and(|(status, _, _)| status != "Unknown"))
            .map(|r| (r.name_any(), r))
            .collect();
        if names.iter().all(|n| done.contains_key(n)) {
            assert!(
                !one_pod || watched.most_pods_at_once <= 1,
                "at most one pod may run at a time, saw {}{}",
                watched.most_pods_at_once,
                ns.diagnostics()
            );
            assert!(
                !one_pod
                    || watched
                        .queued_messages
                        .iter()
                        .any(|m| m.starts_with("waiting in concurrency group \"") && m.contains("-prod\": ")),
                "a waiting run says where it stands: {:?}",
                watched.queued_messages
            );
            return done;
        }
        assert!(
            Instant::now() < deadline,
            "runs not done within {limit:?}{}",
            ns.diagnostics()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn times(run: &MyTaskRun) -> (k8s_openapi::jiff::Timestamp, k8s_openapi::jiff::Timestamp) {
    let status = run.status.as_ref().expect("a status");
    let start = status.start_time.as_ref().expect("a start time").0;
    let end = status.completion_time.as_ref().expect("a completion time").0;
    (start, end)
}

/// Every run succeeded with one pod, each starting after the previous
/// one (in creation order) completed.
async fn assert_one_after_another(ns: &TestNamespace, names: &[String], done: &BTreeMap<String, MyTaskRun>) {
    let mut previous_end = None;
    for name in names {
        let run = &done[name];
        ns.expect_condition(run, "True", "Succeeded");
        let (start, end) = times(run);
        if let Some(previous_end) = previous_end {
            assert!(
                start >= previous_end,
                "{name} started at {start} before the run ahead of it completed at {previous_end}{}",
                ns.diagnostics()
            );
        }
        previous_end = Some(end);
    }
    let pods = ns.api::<Pod>().list(&ListParams::default()).await.expect("list pods");
    let mut pod_names: Vec<String> = pods
        .items
        .iter()
        .map(|p| p.name_any())
        .filter(|p| names.iter().any(|n| p.starts_with(n.as_str())))
        .collect();
    pod_names.sort();
    let expected: Vec<String> = names.iter().map(|n| format!("{n}-pod")).collect();
    assert_eq!(pod_names, expected, "one pod per run, none twice");
}

#[tokio::test]
#[ignore = "needs the local cluster: hack/e2e"]
async fn queue_max_one_runs_ten_runs_one_after_another_in_creation_order() {
    let ns = TestNamespace::new("e2e-queue-order").await;
    ns.apply(&task("deploy", "deploy", "Queue", "sleep 1", ""));
    let runs = names("q", 10);
    apply_runs(&ns, &runs, "deploy");
    let done = watch_until_done(&ns, &runs, Duration::from_secs(110), true).await;
    assert_one_after_another(&ns, &runs, &done).await;
    let run = ns.get::<MyTaskRun>("q03").await;
    assert_eq!(
        run.annotations()
            .get("cicdoperator.ning1875.io/concurrency-group")
            .map(String::as_str),
        Some("deploy-prod"),
        "the group is kept on the run"
    );
    ns.passed();
}

/// Runs but the newest end cancelled, naming a newer run of the group.
fn assert_replaced(ns: &TestNamespace, names: &[String], done: &BTreeMap<String, MyTaskRun>) {
    let newest = names.last().expect("runs");
    ns.expect_condition(&done[newest], "True", "Succeeded");
    for name in &names[..names.len() - 1] {
        let message = ns.expect_condition(&done[name], "False", "TaskRunCancelled");
        let replaced_by = message
            .split('"')
            .nth(1)
            .unwrap_or_else(|| panic!("{name}: no run named in {message:?}"));
        assert!(
            message.starts_with("cancelled: replaced by the newer run ") && replaced_by > name.as_str(),
            "{name} must name a newer run of its group: {message}"
        );
    }
}

#[tokio::test]
#[ignore = "needs the local cluster: hack/e2e"]
async fn queue_cancel_in_progress_leaves_only_the_newest() {
    let ns = TestNamespace::new("e2e-queue-cancel").await;
    ns.apply(&task("deploy", "deploy", "CancelInProgress", "sleep 3", ""));
    let runs = names("c", 10);
    apply_runs(&ns, &runs, "deploy");
    let done = watch_until_done(&ns, &runs, Duration::from_secs(100), false).await;
    assert_replaced(&ns, &runs, &done);
    ns.passed();
}

/// Waits until the run's pod exists and is running its step.
async fn wait_running(ns: &TestNamespace, name: &str) {
    ns.wait_until::<MyTaskRun>(name, Duration::from_secs(60), "Running", |run| {
        run.condition().is_some_and(|(_, reason, _)| reason == "Running")
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local cluster: hack/e2e"]
async fn queue_order_and_replacement_survive_a_controller_restart() {
    let ns = TestNamespace::new("e2e-queue-restart").await;
    ns.apply(&task("deploy", "deploy", "Queue", "sleep 4", ""));
    // Long enough that r00 is still running when the restarted controller
    // (which first waits for the Lease) sees r01 and r02.
    ns.apply(&task("replace", "replace", "CancelInProgress", "sleep 25", ""));
    let queued = names("q", 5);
    apply_runs(&ns, &queued, "deploy");
    apply_runs(&ns, &["r00".to_string()], "replace");
    wait_running(&ns, "q00").await;
    wait_running(&ns, "r00").await;
    // The queue is in the cluster only: a new controller finds it there.
    restart_controller();
    apply_runs(&ns, &["r01".to_string(), "r02".to_string()], "replace");
    let done = watch_until_done(&ns, &queued, Duration::from_secs(110), true).await;
    assert_one_after_another(&ns, &queued, &done).await;
    let replaced = names("r", 3);
    let done = watch_until_done(&ns, &replaced, Duration::from_secs(60), false).await;
    assert_replaced(&ns, &replaced, &done);
    ns.passed();
}

/// Polls until `check` holds of the namespace's runs and pods.
async fn wait_for(ns: &TestNamespace, limit: Duration, what: &str, check: impl Fn(&[String], &[String]) -> bool) {
    let deadline = Instant::now() + limit;
    loop {
        let runs = ns
            .api::<MyTaskRun>()
            .list(&ListParams::default())
            .await
            .expect("list runs");
        let pods = ns.api::<Pod>().list(&ListParams::default()).await.expect("list pods");
        let mut run_names: Vec<String> = runs.items.iter().map(|r| r.name_any()).collect();
        let mut pod_names: Vec<String> = pods.items.iter().map(|p| p.name_any()).collect();
        run_names.sort();
        pod_names.sort();
        if check(&run_names, &pod_names) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} not within {limit:?}: runs {run_names:?}, pods {pod_names:?}{}",
            ns.diagnostics()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
#[ignore = "needs the local cluster: hack/e2e"]
async fn queue_history_ttl_deletes_the_run_and_its_pod() {
    let ns = TestNamespace::new("e2e-queue-ttl").await;
    ns.apply(&format!(
        r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTaskRun
metadata: {{name: short-lived}}
spec:
  ttlSecondsAfterFinished: 8
  taskSpec:
    steps:
      - name: main
        image: {BASH}
        script: echo done
"#
    ));
    let run = ns
        .wait_succeeded::<MyTaskRun>("short-lived", Duration::from_secs(60))
        .await;
    // The TTL counts from the run's completionTime (whole seconds), not from
    // when this test saw it finish (polling lags behind).
    let completed = run
        .status
        .as_ref()
        .and_then(|s| s.completion_time.as_ref())
        .map(|t| t.0)
        .expect("a finished run has a completionTime");
    let pod = ns.api::<Pod>().get("short-lived-pod").await.expect("the run's pod");
    assert!(
        pod.owner_references()
            .iter()
            .any(|o| o.kind == "MyTaskRun" && o.name == "short-lived" && o.controller == Some(true)),
        "the pod is owned by its run, so it goes with it"
    );
    // Before the TTL (minus the second lost to truncation) the run is kept.
    // 8 s, so that this test's polling sees the run finished before it goes.
    let early = completed + k8s_openapi::jiff::SignedDuration::from_millis(6900);
    while k8s_openapi::jiff::Timestamp::now() < early {
        let found = ns.api::<MyTaskRun>().get_opt("short-lived").await.ok().flatten();
        assert!(
            found.is_some() || k8s_openapi::jiff::Timestamp::now() >= early,
            "deleted before its TTL"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_for(&ns, Duration::from_secs(20), "run and pod deleted", |runs, pods| {
        runs.is_empty() && pods.is_empty()
    })
    .await;
    // completionTime is truncated to the second, so up to 1 s of the 8 s
    // may have passed before it.
    let after = k8s_openapi::jiff::Timestamp::now().duration_since(completed);
    assert!(
        after >= k8s_openapi::jiff::SignedDuration::from_secs(7),
        "deleted only after its TTL: gone {after:?} after completionTime"
    );
    ns.passed();
}

#[tokio::test]
#[ignore = "needs the local cluster: hack/e2e"]
async fn queue_history_limits_keep_the_newest_runs() {
    let ns = TestNamespace::new("e2e-queue-history").await;
    let limits = "  successfulRunsHistoryLimit: 2\n  failedRunsHistoryLimit: 1";
    ns.apply(&task("ok", "ok", "Queue", "echo ok", limits));
    ns.apply(&task("bad", "bad", "Queue", "exit 3", limits));
    // One after another, so each completes after the one before.
    for (name, task) in [
        ("s00", "ok"),
        ("s01", "ok"),
        ("s02", "ok"),
        ("s03", "ok"),
        ("f00", "bad"),
        ("f01", "bad"),
    ] {
        apply_runs(&ns, &[name.to_string()], task);
        ns.wait_done::<MyTaskRun>(name, Duration::from_secs(60)).await;
    }
    wait_for(&ns, Duration::from_secs(30), "the history limits", |runs, pods| {
        runs == ["f01", "s02", "s03"] && pods == ["f01-pod", "s02-pod", "s03-pod"]
    })
    .await;
    ns.passed();
}
