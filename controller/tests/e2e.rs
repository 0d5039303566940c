//! End-to-end tests on a real cluster (hack/local-cluster): the controller
//! runs in the cluster from deploy/, and runs execute as real pods.
//!
//! Ignored by default; `hack/e2e` brings everything up and runs them with
//! `cargo test -p cicd-controller --test e2e -- --ignored`. Each test works
//! in a namespace of its own, so they run in parallel.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cicd_controller::api::{MyPipelineRun, MyTaskRun, ParamValue};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams};
use support::{BASH, CONTROLLER_NAMESPACE, Run, TestNamespace, kubectl, repo_root, restart_controller};

/// Held by tests that restart the controller or compete for its Lease, so
/// they do not run at the same time.
static CONTROLLER_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn result(run: &MyTaskRun, name: &str) -> Option<ParamValue> {
    run.status
        .as_ref()?
        .results
        .iter()
        .find(|r| r.name == name)
        .map(|r| r.value.clone())
}

fn string_result(run: &MyTaskRun, name: &str) -> String {
    match result(run, name) {
        Some(ParamValue::String(value)) => value,
        other => panic!("result {name}: {other:?}"),
    }
}

/// The seed's image tag: <base>:<revision or master>-<YYYYmmdd-HH-MM>-<9 hex>.
fn assert_seed_image_url(url: &str) {
    let base = "registry.cn-beijing.aliyuncs.com/ning1875_haiwai_image/mytask-01:master-";
    let rest = url
        .strip_prefix(base)
        .unwrap_or_else(|| panic!("IMAGE_URL {url:?} does not start with {base}"));
    let parts: Vec<&str> = rest.split('-').collect();
    assert_eq!(parts.len(), 4, "IMAGE_URL {url:?}");
    assert!(
        parts[0].len() == 8 && parts[0].chars().all(|c| c.is_ascii_digit()),
        "date in {url:?}"
    );
    assert!(parts[1].len() == 2 && parts[2].len() == 2, "hour-minute in {url:?}");
    assert!(
        parts[3].len() == 9 && parts[3].chars().all(|c| c.is_ascii_hexdigit()),
        "random part in {url:?}"
    );
}

#[tokio::test]
#[ignore = "needs the local cluster: hack/e2e"]
async fn seed_t1_tr1_succeeds_with_its_image_url() {
    let ns = TestNamespace::new("e2e-seed-t1").await;
    ns.apply_file("examples/seed-t1-tr1.yaml");
    let run = ns.wait_succeeded::<MyTaskRun>("tr1", Duration::from_secs(180)).await;
    assert_seed_image_url(&string_result(&run, "IMAGE_URL"));
    let status = run.status.clone().unwrap_or_default();
    assert!(
        status.warnings.iter().any(|w| w.contains("myworkspace")),
        "warning about the undeclared workspace: {:?}",
        status.warnings
    );
    assert_eq!(status.steps.len(), 1);
    assert_eq!(status.steps[0].exit_code, Some(0));
    let start = status.start_time.clone().expect("start time").0;
    let completion = status.completion_time.clone().expect("completion time").0;
    assert!(start <= completion, "started {start} after it completed {completion}");
    // Every transition is an Event on the run: started, the undeclared
    // workspace warning, and success.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reasons = kubectl(
            &[
                "get",
                "events",
                "-n",
                &ns.name,
                "--field-selector",
                "involvedObject.name=tr1",
                "-o",
                "jsonpath={.items[*].reason}",
            ],
            None,
        );
        if ["Started", "Warning", "Succeeded"]
            .iter()
            .all(|r| reasons.split_whitespace().any(|x| x == *r))
        {
            break;
        }
        assert!(Instant::now() < deadline, "events of tr1: {reasons:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    ns.passed();
}

#[tokio::test]
#[ignore = "needs the local cluster: hack/e2e"]
async fn seed_t2_tr2_succeeds_with_its_image_url() {
    let ns = TestNamespace::new("e2e-seed-t2").await;
    ns.apply_file("examples/seed-t2-tr2.yaml");
    // t2 sleeps 20 s and 60 s on purpose.
    let run = ns.wait_succeeded::<MyTaskRun>("tr2", Duration::from_secs(300)).await;
    assert_seed_image_url(&string_result(&run, "IMAGE_URL"));
    let steps = run.status.clone().unwrap_or_default().steps;
    let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, vec!["genarate-image-tag", "hello-world"]);
    // Steps ran one after the other: the second started after the first ended.
    let first_end = steps[0].finished_at.clone().expect("first step finished").0;
    let second_start = steps[1].started_at.clone().expect("second step started").0;
    assert!(
        second_start >= first_end,
        "step 2 started {second_start} before step 1 ended {first_end}"
    );
    ns.passed();
}

#[tokio::test]
#[ignore = "needs the local cluster: hack/e2e"]
async fn params_fall_back_to_defaults_and_arrays_expand() {
    let ns = TestNamespace::new("e2e-params").await;
    ns.apply(&format!(
        r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTask
metadata: {{name: greet}}
spec:
  params:
    - name: WHO
    - name: GREETING
      default: hello
    - name: FLAGS
      type: array
      default: ["-a", "b c"]
  results:
    - name: TEXT
    - name: ARGC
  steps:
    - name: say
      image: {BASH}
      script: echo -n "$(params.GREETING) $(params.WHO)" > $(results.TEXT.path)
    - name: count
      image: {BASH}
      command: [bash, -c, 'echo -n "$#" > $(results.ARGC.path)', counter]
      args: ["$(params.FLAGS[*])"]
---
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTaskRun
metadata: {{name: greet-run}}
spec:
  taskRef: greet
  params:
    - name: WHO
      value: world
"#
    ));
    let run = ns
        .wait_succeeded::<MyTaskRun>("greet-run", Duration::from_secs(120))
        .await;
    assert_eq!(string_result(&run, "TEXT"), "hello world");
    assert_eq!(
        string_result(&run, "ARGC"),
        "2",
        "the array param became two separate args"
    );
    ns.passed();
}

#[tokio::test]
#[ignore = "needs the local cluster: hack/e2e"]
async fn a_claim_workspace_carries_files_between_steps() {
    let ns = TestNamespace::new("e2e-workspace").await;
    ns.apply(&format!(
        r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTask
metadata: {{name: share}}
spec:
  workspaces:
    - name: source
  results:
    - name: CONTENT
  steps:
    - name: write
      image: {BASH}
      script: echo -n "from step one" > $(workspaces.source.path)/note.txt
    - name: read
      image: {BASH}
      script: cat $(workspaces.source.path)/note.txt > $(results.CONTENT.path)
---
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTaskRun
metadata: {{name: share-run}}
spec:
  taskRef: share
  workspaces:
    - name: source
      volumeClaimTemplate:
        spec:
          accessModes: [ReadWriteOnce]
          resources: {{requests: {{storage: 16Mi}}}}
"#
    ));
    let run = ns
        .wait_succeeded::<MyTaskRun>("share-run", Duration::from_secs(180))
        .await;
    assert_eq!(string_result(&run, "CONTENT"), "from step one");
    let claims = kubectl(
        &["get", "pvc", "-n", &ns.name, "-o", "jsonpath={.items[*].status.phase}"],
        None,
    );
    assert_eq!(claims.trim(), "Bound", "one claim, made from the template and bound");
    ns.passed();
}

#[tokio::test]
#[ignore = "needs the local cluster: hack/e2e"]
async fn a_failing_step_fails_the_run_and_skips_the_rest() {
    let ns = TestNamespace::new("e2e-failing").await;
    ns.apply(&format!(
        r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTaskRun
metadata: {{name: fail-run}}
spec:
  taskSpec:
    steps:
      - name: ok
        image: {BASH}
        script: echo fine
      - name: broken
        image: {BASH}
        script: exit 3
      - name: never
        image: {BASH}
        script: touch /workspace/should-not-exist
"#
    ));
    let run = ns.wait_done::<MyTaskRun>("fail-run", Duration::from_secs(120)).await;
    let message = ns.expect_condition(&run, "False", "Failed");
    assert!(
        message.contains("\"broken\"") && message.contains("exit code 3"),
        "{message}"
    );
    let steps = run.status.clone().unwrap_or_default().steps;
    assert_eq!(steps[0].exit_code, Some(0));
    assert_eq!(steps[1].exit_code, Some(3));
    assert_eq!(steps[2].reason, "Skipped", "{:?}", steps[2]);
    ns.passed();
}

#[tokio::test]
#[ignore = "needs the local cluster: hack/e2e"]
async fn a_run_past_its_timeout_is_stopped() {
    let ns = TestNamespace::new("e2e-timeout").await;
    ns.apply(&format!(
        r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTaskRun
metadata: {{name: slow-run}}
spec:
  timeout: 10s
  taskSpec:
    steps:
      - name: sleep
        image: {BASH}
        script: sleep 300
"#
    ));
    let started = Instant::now();
    let run = ns.wait_done::<MyTaskRun>("slow-run", Duration::from_secs(90)).await;
    ns.expect_condition(&run, "False", "TaskRunTimeout");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    // The pod is stopped, not left sleeping.
    let pods = ns.api::<Pod>();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pod = pods.get("slow-run-pod").await.expect("pod kept for its logs");
        let phase = pod.status.and_then(|s| s.phase).unwrap_or_default();
        if phase == "Failed" {
            break;
        }
        assert!(Instant::now() < deadline, "pod still {phase}{}", ns.diagnostics());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    ns.passed();
}

#[tokio::test]
#[ignore = "needs the local cluster: hack/e2e"]
async fn cancelling_a_running_run_stops_it() {
    let ns = TestNamespace::new("e2e-cancel").await;
    ns.apply(&format!(
        r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTaskRun
metadata: {{name: cancel-run}}
spec:
  taskSpec:
    steps:
      - name: sleep
        image: {BASH}
        script: sleep 300
"#
    ));
    ns.wait_until("cancel-run", Duration::from_secs(120), "Running", |r: &MyTaskRun| {
        r.condition().is_some_and(|(_, reason, _)| reason == "Running")
    })
    .await;
    let patch = serde_json::json!({ "spec": { "status": "Cancelled" } });
    ns.api::<MyTaskRun>()
        .patch("cancel-run", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("cancel");
    ns.wait_failed::<MyTaskRun>("cancel-run", "TaskRunCancelled", Duration::from_secs(30))
        .await;
    ns.passed();
}

#[tokio::test]
#[ignore = "needs the local cluster: hack/e2e"]
async fn invalid_runs_end_with_a_clear_reason() {
    let ns = TestNamespace::new("e2e-invalid").await;
    ns.apply(&format!(
        r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTask
metadata: {{name: needs-param}}
spec:
  params:
    - name: REQUIRED
  steps:
    - name: echo
      image: {BASH}
      script: echo $(params.REQUIRED) $(params.TYPO)
---
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTaskRun
metadata: {{name: invalid-run}}
spec:
  taskRef: needs-param
---
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTaskRun
metadata: {{name: orphan-run}}
spec:
  taskRef: no-such-task
"#
    ));
    let invalid = ns.wait_done::<MyTaskRun>("invalid-run", Duration::from_secs(60)).await;
    let message = ns.expect_condition(&invalid, "False", "TaskRunValidationFailed");
    assert!(message.contains("\"REQUIRED\" is required"), "{message}");
    assert!(message.contains("$(params.TYPO)"), "{message}");
    let message = ns
        .wait_failed::<MyTaskRun>("orphan-run", "TaskRunResolutionFailed", Duration::from_secs(60))
        .await;
    assert!(
        message.contains("\"no-such-task\"") && message.contains(&ns.name),
        "{message}"
    );
    let pods = ns.api::<Pod>().list(&ListParams::default()).await.expect("list pods");
    assert!(pods.items.is_empty(), "no pod for an invalid run");
    ns.passed();
}

#[tokio::test]
#[ignore = "needs the local cluster: hack/e2e"]
async fn runs_created_before_their_task_or_pipeline_wait_for_it() {
    let ns = TestNamespace::new("e2e-order").await;
    // The order a directory of files may be applied in: the runs first.
    ns.apply(
        r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTaskRun
metadata: {name: early-task-run}
spec:
  taskRef: late-task
---
apiVersion: cicdoperator.ning1875.io/v1
kind: MyPipelineRun
metadata: {name: early-pipeline-run}
spec:
  pipelineRef: late-pipeline
"#,
    );
    let waiting = ns
        .wait_until(
            "early-task-run",
            Duration::from_secs(30),
            "Resolving",
            |r: &MyTaskRun| r.condition().is_some_and(|(_, reason, _)| reason == "Resolving"),
        )
        .await;
    let message = ns.expect_condition(&waiting, "Unknown", "Resolving");
    assert!(message.contains("\"late-task\" not found"), "{message}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    ns.apply(&format!(
        r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTask
metadata: {{name: late-task}}
spec:
  steps:
    - name: echo
      image: {BASH}
      script: echo late but here
---
apiVersion: cicdoperator.ning1875.io/v1
kind: MyPipeline
metadata: {{name: late-pipeline}}
spec:
  tasks:
    - name: only
      taskRef: late-task
"#
    ));
    ns.wait_succeeded::<MyTaskRun>("early-task-run", Duration::from_secs(90))
        .await;
    ns.wait_succeeded::<MyPipelineRun>("early-pipeline-run", Duration::from_secs(90))
        .await;
    ns.passed();
}

#[tokio::test]
#[ignore = "needs the local cluster: hack/e2e"]
async fn a_controller_restarted_mid_run_adopts_the_pod() {
    let _controller = CONTROLLER_LOCK.lock().await;
    let ns = TestNamespace::new("e2e-restart").await;
    ns.apply(&format!(
        r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTaskRun
metadata: {{name: restart-run}}
spec:
  taskSpec:
    results:
      - name: DONE
    steps:
      - name: first
        image: {BASH}
        script: sleep 15
      - name: second
        image: {BASH}
        script: echo -n yes > $(results.DONE.path)
"#
    ));
    ns.wait_until("restart-run", Duration::from_secs(120), "Running", |r: &MyTaskRun| {
        r.condition().is_some_and(|(_, reason, _)| reason == "Running")
    })
    .await;
    restart_controller();
    let run = ns
        .wait_succeeded::<MyTaskRun>("restart-run", Duration::from_secs(180))
        .await;
    assert_eq!(string_result(&run, "DONE"), "yes");
    let pods = ns
        .api::<Pod>()
        .list(&ListParams::default().labels("cicdoperator.ning1875.io/taskRun=restart-run"))
        .await
        .expect("list pods");
    assert_eq!(pods.items.len(), 1, "exactly one pod for the run");
    ns.passed();
}

#[tokio::test]
#[ignore = "needs the local cluster: hack/e2e"]
async fn a_malformed_run_fails_alone_and_others_still_run() {
    let ns = TestNamespace::new("e2e-malformed").await;
    // The CRD keeps inline task specs without a schema, so this is stored;
    // the controller must reject it without stalling other runs.
    ns.apply(&format!(
        r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTaskRun
metadata: {{name: bad-run}}
spec:
  taskSpec:
    sidecars:
      - name: db
        image: {BASH}
        ports:
          - containerPort: lots
    steps:
      - name: echo
        image: {BASH}
        script: echo hi
---
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTaskRun
metadata: {{name: good-run}}
spec:
  taskSpec:
    steps:
      - name: echo
        image: {BASH}
        script: echo hi
"#
    ));
    // Our own typed client cannot decode bad-run either: read it untyped.
    let jsonpath =
        "jsonpath={.status.conditions[0].status}|{.status.conditions[0].reason}|{.status.conditions[0].message}";
    let deadline = Instant::now() + Duration::from_secs(60);
    let condition = loop {
        let condition = kubectl(&["get", "mytaskrun", "bad-run", "-n", &ns.name, "-o", jsonpath], None);
        if !condition.starts_with('|') && !condition.is_empty() {
            break condition;
        }
        assert!(
            Instant::now() < deadline,
            "bad-run has no condition{}",
            ns.diagnostics()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(condition.starts_with("False|TaskRunValidationFailed|"), "{condition}");
    assert!(
        condition.contains("spec.taskSpec.sidecars[0].ports[0].containerPort"),
        "{condition}"
    );
    ns.wait_succeeded::<MyTaskRun>("good-run", Duration::from_secs(120))
        .await;
    ns.passed();
}

/// Every MyTaskRun of every task example reaches the outcome its file
/// documents: invalid-* files fail validation, the others succeed.
#[tokio::test]
#[ignore = "needs the local cluster: hack/e2e"]
async fn every_example_runs_as_documented() {
    let examples = repo_root().join("examples");
    let mut files: Vec<String> = std::fs::read_dir(&examples)
        .expect("examples/ exists")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".yaml") && !name.starts_with("pipeline-") && !name.starts_with("seed-"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "examples found: {files:?}");

    let mut started = Vec::new();
    for file in &files {
        let stem = file.trim_end_matches(".yaml");
        let ns = TestNamespace::new(&format!("e2e-ex-{stem}")).await;
        if stem == "workspaces-configmap-secret" {
            ns.apply_file("examples/support/workspaces-config.yaml");
        }
        ns.apply_file(&format!("examples/{file}"));
        let text = std::fs::read_to_string(examples.join(file)).expect("read example");
        let mut manifests = cicd_controller::manifests::Manifests::default();
        manifests.add_yaml(file, &text).expect("example decodes");
        let runs: Vec<String> = manifests
            .task_runs
            .iter()
            .filter_map(|r| r.metadata.name.clone())
            .collect();
        assert!(!runs.is_empty(), "{file} has no MyTaskRun");
        started.push((stem.to_string(), ns, runs));
    }
    for (stem, ns, runs) in started {
        for name in &runs {
            let run = ns.wait_done::<MyTaskRun>(name, Duration::from_secs(300)).await;
            if stem.starts_with("invalid-") {
                ns.expect_condition(&run, "False", "TaskRunValidationFailed");
            } else {
                ns.expect_condition(&run, "True", "Succeeded");
            }
        }
        if stem == "retries" {
            let run = ns.api::<MyTaskRun>().get("retries-demo-run").await.expect("run");
            let attempts = run.status.unwrap_or_default().retries_status;
            assert_eq!(attempts.len(), 1, "one failed attempt recorded: {attempts:?}");
            assert_eq!(attempts[0].pod_name, "retries-demo-run-pod");
        }
        ns.passed();
    }
}

#[tokio::test]
#[ignore = "needs the local cluster: hack/e2e"]
async fn an_image_that_cannot_be_pulled_fails_the_run() {
    let ns = TestNamespace::new("e2e-pull").await;
    ns.apply(
        r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTaskRun
metadata: {name: pull-run}
spec:
  taskSpec:
    steps:
      - name: missing
        image: 127.0.0.1:5000/cicd/no-such-image:1
        script: echo never
"#,
    );
    let message = ns
        .wait_failed::<MyTaskRun>("pull-run", "ImagePullFailed", Duration::from_secs(180))
        .await;
    assert!(message.contains("127.0.0.1:5000/cicd/no-such-image:1"), "{message}");
    ns.passed();
}

/// The first line of an HTTP/1.0 GET, e.g. `HTTP/1.1 503 Service Unavailable`.
fn http_status_line(address: &str, path: &str) -> Option<String> {
    use std::io::{BufRead, BufReader};
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\n\r\n").ok()?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).ok()?;
    Some(line.trim().to_string())
}

/// A second controller process (outside the cluster, same kubeconfig)
/// waits as a follower while the in-cluster replica holds the Lease.
#[tokio::test]
#[ignore = "needs the local cluster: hack/e2e"]
async fn a_second_replica_waits_for_the_lease() {
    let _controller = CONTROLLER_LOCK.lock().await;
    // Right after another test restarted the controller, the old pod has
    // released the Lease and the new one (ready as a follower first) takes
    // it within a few seconds: wait for that rather than read it once.
    let lease_holder = || {
        kubectl(
            &[
                "get",
                "lease",
                "cicd-controller",
                "-n",
                CONTROLLER_NAMESPACE,
                "-o",
                "jsonpath={.spec.holderIdentity}",
            ],
            None,
        )
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut holder = lease_holder();
    while !holder.starts_with("cicd-controller-") && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        holder = lease_holder();
    }
    assert!(
        holder.starts_with("cicd-controller-"),
        "the in-cluster controller holds the lease: {holder:?}"
    );
    let address = "127.0.0.1:18089";
    let mut follower = Command::new(env!("CARGO_BIN_EXE_cicd-controller"))
        .args(["run", "--metrics-address", address, "--identity", "e2e-follower"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a second controller");
    // It becomes ready once it reaches the API server (503 before that),
    // although it never becomes leader.
    let mut ready_status = String::new();
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Some(status) = http_status_line(address, "/readyz") {
            ready_status = status;
            if ready_status.contains("200") {
                break;
            }
        }
    }
    // Readiness comes before the Lease wait (it does not depend on the
    // lease): give it time to reach the wait before looking at its log. The
    // leader holds the Lease for 15 s, so the follower cannot take it here.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let still_running = follower.try_wait().expect("poll follower").is_none();
    let _ = follower.kill();
    let output = follower.wait_with_output().expect("follower output");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(still_running, "the follower exited: {log}");
    // A follower is ready: it is healthy and takes over when the leader
    // goes, so a rolling update can wait for it (issue 10).
    assert!(
        ready_status.contains("200"),
        "follower /readyz: {ready_status:?}\n{log}"
    );
    assert!(
        log.contains("waiting to become leader") && !log.contains("became leader"),
        "{log}"
    );
    let holder_after = lease_holder();
    // The in-cluster replica may itself have been replaced meanwhile (the
    // Lease is then briefly free, or held by its successor): what matters
    // is that the follower never took it.
    assert_ne!(
        holder_after, "e2e-follower",
        "the follower took the lease from {holder:?}"
    );
}
