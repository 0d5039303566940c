//! End-to-end tests of MyPipelineRuns on a real cluster (hack/local-cluster):
//! the controller runs in the cluster from deploy/, and every pipeline task
//! runs as a real MyTaskRun and pod.
//!
//! Ignored by default. With the cluster up and the operator installed
//! (`hack/install-operator`): `cargo test -p cicd-controller --test
//! e2e_pipelines -- --ignored`. Each test works in a namespace of its own.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cicd_controller::api::{MyPipelineRun, MyTaskRun, ParamValue};
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client};

/// Steps' shell image, served by the local registry.
const BASH: &str = "127.0.0.1:5000/cicd/bash:5";
const CONTROLLER_NAMESPACE: &str = "cicd-system";

/// Runs kubectl; panics with its stderr when it fails.
fn kubectl(args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new("kubectl")
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs (source hack/local-cluster/env.sh)");
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).expect("write kubectl stdin");
    }
    let output = child.wait_with_output().expect("kubectl finishes");
    assert!(output.status.success(), "kubectl {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// kubectl without asserting success, for diagnostics.
fn kubectl_lossy(args: &[&str]) -> String {
    match Command::new("kubectl").args(args).output() {
        Ok(out) => format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        Err(error) => format!("kubectl {args:?}: {error}"),
    }
}

/// A namespace for one test, deleted when the test passes.
struct TestNamespace {
    name: String,
    client: Client,
}

impl TestNamespace {
    async fn new(test: &str) -> Self {
        let name = format!("e2e-pl-{test}");
        let _ = kubectl_lossy(&["delete", "namespace", &name, "--wait=true", "--ignore-not-found"]);
        kubectl(&["create", "namespace", &name], None);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !kubectl_lossy(&["get", "serviceaccount", "default", "-n", &name]).contains("default") {
            assert!(Instant::now() < deadline, "no default ServiceAccount in {name}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let client = Client::try_default().await.expect("kube client from KUBECONFIG");
        TestNamespace { name, client }
    }

    fn apply(&self, yaml: &str) {
        kubectl(&["apply", "-n", &self.name, "-f", "-"], Some(yaml));
    }

    fn pipeline_runs(&self) -> Api<MyPipelineRun> {
        Api::namespaced(self.client.clone(), &self.name)
    }

    fn task_runs(&self) -> Api<MyTaskRun> {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// Everything a failing test should show.
    fn diagnostics(&self, run: &str) -> String {
        let mut out = String::new();
        out.push_str(&format!("\n===== MyPipelineRun {run} =====\n"));
        out.push_str(&kubectl_lossy(&["get", "mypipelinerun", run, "-n", &self.name, "-o", "yaml"]));
        out.push_str("\n===== MyTaskRuns =====\n");
        out.push_str(&kubectl_lossy(&["get", "mytaskruns", "-n", &self.name, "-o", "yaml"]));
        out.push_str("\n===== pods =====\n");
        out.push_str(&kubectl_lossy(&["get", "pods", "-n", &self.name, "-o", "wide"]));
        out.push_str("\n===== events =====\n");
        out.push_str(&kubectl_lossy(&["get", "events", "-n", &self.name, "--sort-by=.lastTimestamp"]));
        out.push_str("\n===== controller log (tail) =====\n");
        out.push_str(&kubectl_lossy(&["logs", "-n", CONTROLLER_NAMESPACE, "deployment/cicd-controller", "--tail=80"]));
        out
    }

    async fn wait_run(&self, run: &str, limit: Duration, what: &str, check: impl Fn(&MyPipelineRun) -> bool) -> MyPipelineRun {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(current)) = self.pipeline_runs().get_opt(run).await
                && check(&current)
            {
                return current;
            }
            if Instant::now() > deadline {
                panic!("MyPipelineRun {run} did not reach {what} within {limit:?}{}", self.diagnostics(run));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn wait_done(&self, run: &str, limit: Duration) -> MyPipelineRun {
        self.wait_run(run, limit, "a final condition", |r| condition(r).is_some_and(|(status, _, _)| status != "Unknown"))
            .await
    }

    async fn task_run(&self, name: &str) -> MyTaskRun {
        self.task_runs().get(name).await.unwrap_or_else(|error| panic!("MyTaskRun {name}: {error}"))
    }

    fn passed(self) {
        let _ = kubectl_lossy(&["delete", "namespace", &self.name, "--wait=false"]);
    }
}

/// (status, reason, message) of the run's Succeeded condition.
fn condition(run: &MyPipelineRun) -> Option<(String, String, String)> {
    let condition = run.status.as_ref()?.conditions.iter().find(|c| c.type_ == "Succeeded")?;
    Some((condition.status.clone(), condition.reason.clone(), condition.message.clone()))
}

fn task_run_condition(run: &MyTaskRun) -> Option<(String, String)> {
    let condition = run.status.as_ref()?.conditions.iter().find(|c| c.type_ == "Succeeded")?;
    Some((condition.status.clone(), condition.reason.clone()))
}

fn expect_condition(ns: &TestNamespace, run: &MyPipelineRun, status: &str, reason: &str) -> String {
    let name = run.metadata.name.clone().unwrap_or_default();
    match condition(run) {
        Some((s, r, message)) if s == status && r == reason => message,
        other => panic!("run {name}: expected {status}/{reason}, got {other:?}{}", ns.diagnostics(&name)),
    }
}

fn pipeline_result(run: &MyPipelineRun, name: &str) -> Option<String> {
    match &run.status.as_ref()?.results.iter().find(|r| r.name == name)?.value {
        ParamValue::String(value) => Some(value.clone()),
        _ => None,
    }
}

fn task_result(run: &MyTaskRun, name: &str) -> Option<String> {
    match &run.status.as_ref()?.results.iter().find(|r| r.name == name)?.value {
        ParamValue::String(value) => Some(value.clone()),
        _ => None,
    }
}

fn skipped(run: &MyPipelineRun) -> Vec<(String, String)> {
    run.status.iter().flat_map(|s| &s.skipped_tasks).map(|s| (s.name.clone(), s.reason.clone())).collect()
}

/// A task that echoes its params joined into a result.
fn echo_task() -> String {
    format!(
        r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTask
metadata: {{name: echo}}
spec:
  params:
    - name: TEXT
  results:
    - name: OUT
  steps:
    - name: echo
      image: {BASH}
      script: echo -n "$(params.TEXT)" > $(results.OUT.path)
"#
    )
}

#[tokio::test]
#[ignore = "needs the local cluster and the operator installed"]
async fn a_diamond_joins_the_results_of_both_branches() {
    let ns = TestNamespace::new("diamond").await;
    ns.apply(&echo_task());
    ns.apply(
        r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyPipeline
metadata: {name: diamond}
spec:
  params:
    - name: seed
  tasks:
    - name: root
      taskRef: echo
      params: [{name: TEXT, value: "$(params.seed)"}]
    - name: left
      taskRef: echo
      params: [{name: TEXT, value: "L($(tasks.root.results.OUT))"}]
    - name: right
      taskRef: echo
      params: [{name: TEXT, value: "R($(tasks.root.results.OUT))"}]
    - name: join
      taskRef: echo
      params: [{name: TEXT, value: "$(tasks.left.results.OUT)+$(tasks.right.results.OUT)"}]
  results:
    - name: JOINED
      value: "$(tasks.join.results.OUT)"
---
apiVersion: cicdoperator.ning1875.io/v1
kind: MyPipelineRun
metadata: {name: diamond-run}
spec:
  pipelineRef: diamond
  params: [{name: seed, value: s}]
"#,
    );
    let run = ns.wait_done("diamond-run", Duration::from_secs(240)).await;
    expect_condition(&ns, &run, "True", "Succeeded");
    assert_eq!(pipeline_result(&run, "JOINED").as_deref(), Some("L(s)+R(s)"));
    let children: Vec<String> =
        run.status.iter().flat_map(|s| &s.child_references).map(|c| c.name.clone()).collect();
    assert_eq!(children, vec!["diamond-run-root", "diamond-run-left", "diamond-run-right", "diamond-run-join"]);

    // The branches were started side by side: the scheduler created each
    // before the other finished. (Creation, not start time: with tasks this
    // short, a busy node may run one branch before the other's pod exists.)
    let left_run = ns.task_run("diamond-run-left").await;
    let right_run = ns.task_run("diamond-run-right").await;
    let join = ns.task_run("diamond-run-join").await;
    let created = |run: &MyTaskRun| run.metadata.creation_timestamp.clone().expect("created").0;
    let (left_created, right_created) = (created(&left_run), created(&right_run));
    let left_end = left_run.status.clone().unwrap_or_default().completion_time.expect("left ended").0;
    let right_end = right_run.status.clone().unwrap_or_default().completion_time.expect("right ended").0;
    assert!(
        left_created <= right_end && right_created <= left_end,
        "branches were not started side by side{}",
        ns.diagnostics("diamond-run")
    );
    let join_start = join.status.clone().unwrap_or_default().start_time.expect("join started").0;
    assert!(join_start >= left_end && join_start >= right_end, "join started before a branch ended");
    let labels = join.metadata.labels.unwrap_or_default();
    assert_eq!(labels.get("cicdoperator.ning1875.io/pipelineRun").map(String::as_str), Some("diamond-run"));
    assert_eq!(labels.get("cicdoperator.ning1875.io/pipelineTask").map(String::as_str), Some("join"));
    ns.passed();
}

#[tokio::test]
#[ignore = "needs the local cluster and the operator installed"]
async fn a_claim_template_workspace_is_shared_by_the_tasks() {
    let ns = TestNamespace::new("workspace").await;
    ns.apply(&format!(
        r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyPipeline
metadata: {{name: share}}
spec:
  workspaces:
    - name: source
  tasks:
    - name: write
      workspaces: [{{name: out, workspace: source}}]
      taskSpec:
        workspaces: [{{name: out}}]
        steps:
          - name: write
            image: {BASH}
            script: echo -n "written by task one" > $(workspaces.out.path)/note.txt
    - name: read
      runAfter: [write]
      workspaces: [{{name: in, workspace: source}}]
      taskSpec:
        workspaces: [{{name: in}}]
        results: [{{name: CONTENT}}]
        steps:
          - name: read
            image: {BASH}
            script: cat $(workspaces.in.path)/note.txt > $(results.CONTENT.path)
  results:
    - name: CONTENT
      value: $(tasks.read.results.CONTENT)
---
apiVersion: cicdoperator.ning1875.io/v1
kind: MyPipelineRun
metadata: {{name: share-run}}
spec:
  pipelineRef: share
  workspaces:
    - name: source
      volumeClaimTemplate:
        spec:
          accessModes: [ReadWriteOnce]
          resources: {{requests: {{storage: 16Mi}}}}
"#
    ));
    let run = ns.wait_done("share-run", Duration::from_secs(240)).await;
    expect_condition(&ns, &run, "True", "Succeeded");
    assert_eq!(pipeline_result(&run, "CONTENT").as_deref(), Some("written by task one"));
    let claims = kubectl(&["get", "pvc", "-n", &ns.name, "-o", "jsonpath={.items[*].metadata.name}"], None);
    assert_eq!(claims.trim(), "share-run-source", "one claim for the whole pipeline run");
    let owner = kubectl(
        &["get", "pvc", "share-run-source", "-n", &ns.name, "-o", "jsonpath={.metadata.ownerReferences[0].kind}"],
        None,
    );
    assert_eq!(owner, "MyPipelineRun");
    ns.passed();
}

#[tokio::test]
#[ignore = "needs the local cluster and the operator installed"]
async fn a_when_false_branch_is_skipped_with_its_dependents() {
    let ns = TestNamespace::new("when").await;
    ns.apply(&echo_task());
    ns.apply(
        r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyPipeline
metadata: {name: gated}
spec:
  params:
    - name: deploy
      default: "no"
  tasks:
    - name: build
      taskRef: echo
      params: [{name: TEXT, value: built}]
    - name: deploy
      taskRef: echo
      when:
        - {input: "$(params.deploy)", operator: in, values: ["yes"]}
      params: [{name: TEXT, value: "deploying $(tasks.build.results.OUT)"}]
    - name: announce
      taskRef: echo
      params: [{name: TEXT, value: "$(tasks.deploy.results.OUT)"}]
    - name: after-deploy
      taskRef: echo
      runAfter: [deploy]
      params: [{name: TEXT, value: "still runs"}]
---
apiVersion: cicdoperator.ning1875.io/v1
kind: MyPipelineRun
metadata: {name: gated-run}
spec:
  pipelineRef: gated
"#,
    );
    let run = ns.wait_done("gated-run", Duration::from_secs(240)).await;
    expect_condition(&ns, &run, "True", "Completed");
    assert_eq!(
        skipped(&run),
        vec![
            ("deploy".to_string(), "WhenExpressionsEvaluatedToFalse".to_string()),
            ("announce".to_string(), "ParentTasksSkipped".to_string()),
        ]
    );
    let after = ns.task_run("gated-run-after-deploy").await;
    assert_eq!(task_result(&after, "OUT").as_deref(), Some("still runs"));
    let made = ns.task_runs().list(&ListParams::default()).await.expect("list task runs");
    assert_eq!(made.items.len(), 2, "only build and after-deploy ran");
    ns.passed();
}

#[tokio::test]
#[ignore = "needs the local cluster and the operator installed"]
async fn finally_runs_after_a_failure_and_sees_it() {
    let ns = TestNamespace::new("finally").await;
    ns.apply(&echo_task());
    ns.apply(&format!(
        r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyPipeline
metadata: {{name: breaks}}
spec:
  tasks:
    - name: broken
      retries: 1
      taskSpec:
        steps:
          - name: fail
            image: {BASH}
            script: exit 4
    - name: never
      taskRef: echo
      runAfter: [broken]
      params: [{{name: TEXT, value: nope}}]
  finally:
    - name: report
      taskRef: echo
      params: [{{name: TEXT, value: "broken=$(tasks.broken.status) never=$(tasks.never.status) all=$(tasks.status)"}}]
---
apiVersion: cicdoperator.ning1875.io/v1
kind: MyPipelineRun
metadata: {{name: breaks-run}}
spec:
  pipelineRef: breaks
"#
    ));
    let run = ns.wait_done("breaks-run", Duration::from_secs(300)).await;
    let message = expect_condition(&ns, &run, "False", "Failed");
    assert!(message.contains("\"broken\""), "{message}");
    assert_eq!(skipped(&run), vec![("never".to_string(), "PipelineRunStopping".to_string())]);
    let broken = ns.task_run("breaks-run-broken").await;
    assert_eq!(broken.status.clone().unwrap_or_default().retries_status.len(), 1, "the child retried once before failing");
    let report = ns.task_run("breaks-run-report").await;
    assert_eq!(task_run_condition(&report).map(|(s, _)| s).as_deref(), Some("True"));
    assert_eq!(task_result(&report, "OUT").as_deref(), Some("broken=Failed never=None all=Failed"));
    ns.passed();
}

#[tokio::test]
#[ignore = "needs the local cluster and the operator installed"]
async fn cancelling_a_running_pipeline_cancels_its_tasks() {
    let ns = TestNamespace::new("cancel").await;
    ns.apply(&format!(
        r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyPipelineRun
metadata: {{name: cancel-run}}
spec:
  pipelineSpec:
    tasks:
      - name: sleep
        taskSpec:
          steps:
            - name: sleep
              image: {BASH}
              script: sleep 300
      - name: later
        runAfter: [sleep]
        taskSpec:
          steps:
            - name: echo
              image: {BASH}
              script: echo never
    finally:
      - name: cleanup
        taskSpec:
          steps:
            - name: echo
              image: {BASH}
              script: echo never
"#
    ));
    // Wait until the child's pod runs.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(Some(child)) = ns.task_runs().get_opt("cancel-run-sleep").await
            && task_run_condition(&child).is_some_and(|(_, reason)| reason == "Running")
        {
            break;
        }
        assert!(Instant::now() < deadline, "the first task never ran{}", ns.diagnostics("cancel-run"));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let patch = serde_json::json!({ "spec": { "status": "Cancelled" } });
    ns.pipeline_runs().patch("cancel-run", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("cancel");
    let run = ns.wait_done("cancel-run", Duration::from_secs(60)).await;
    expect_condition(&ns, &run, "False", "PipelineRunCancelled");
    let skipped_names: Vec<String> = skipped(&run).into_iter().map(|(name, _)| name).collect();
    assert_eq!(skipped_names, vec!["later", "cleanup"]);

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let child = ns.task_run("cancel-run-sleep").await;
        if task_run_condition(&child).is_some_and(|(status, reason)| status == "False" && reason == "TaskRunCancelled") {
            break;
        }
        assert!(Instant::now() < deadline, "the child was not cancelled{}", ns.diagnostics("cancel-run"));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let made = ns.task_runs().list(&ListParams::default()).await.expect("list task runs");
    assert_eq!(made.items.len(), 1, "no task started after the cancel");
    ns.passed();
}
