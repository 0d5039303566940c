//! End-to-end tests of MyPipelineRuns on a real cluster (hack/local-cluster):
//! the controller runs in the cluster from deploy/, and every pipeline task
//! runs as a real MyTaskRun and pod.
//!
//! Ignored by default. With the cluster up and the operator installed
//! (`hack/install-operator`): `cargo test -p cicd-controller --test
//! e2e_pipelines -- --ignored`. Each test works in a namespace of its own.

mod support;

use std::time::Duration;

use cicd_controller::api::{MyPipelineRun, MyTaskRun};
use cicd_controller::reconcile::pipelinerun::child_name;
use kube::api::{ListParams, Patch, PatchParams};
use support::{BASH, Run, TestNamespace, kubectl, restart_controller};

fn skipped(run: &MyPipelineRun) -> Vec<(String, String)> {
    run.status
        .iter()
        .flat_map(|s| &s.skipped_tasks)
        .map(|s| (s.name.clone(), s.reason.clone()))
        .collect()
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
    let ns = TestNamespace::new("e2e-pl-diamond").await;
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
    let run = ns
        .wait_done::<MyPipelineRun>("diamond-run", Duration::from_secs(240))
        .await;
    ns.expect_condition(&run, "True", "Succeeded");
    assert_eq!(run.string_result("JOINED").as_deref(), Some("L(s)+R(s)"));
    let children = support::child_names(&run, None);
    assert_eq!(
        children,
        vec![
            "diamond-run-root",
            "diamond-run-left",
            "diamond-run-right",
            "diamond-run-join"
        ]
    );

    // The branches were started side by side: the scheduler created each
    // before the other finished. (Creation, not start time: with tasks this
    // short, a busy node may run one branch before the other's pod exists.)
    let left_run = ns.get::<MyTaskRun>("diamond-run-left").await;
    let right_run = ns.get::<MyTaskRun>("diamond-run-right").await;
    let join = ns.get::<MyTaskRun>("diamond-run-join").await;
    let created = |run: &MyTaskRun| run.metadata.creation_timestamp.clone().expect("created").0;
    let (left_created, right_created) = (created(&left_run), created(&right_run));
    let left_end = left_run
        .status
        .clone()
        .unwrap_or_default()
        .completion_time
        .expect("left ended")
        .0;
    let right_end = right_run
        .status
        .clone()
        .unwrap_or_default()
        .completion_time
        .expect("right ended")
        .0;
    assert!(
        left_created <= right_end && right_created <= left_end,
        "branches were not started side by side{}",
        ns.diagnostics()
    );
    let join_start = join
        .status
        .clone()
        .unwrap_or_default()
        .start_time
        .expect("join started")
        .0;
    assert!(
        join_start >= left_end && join_start >= right_end,
        "join started before a branch ended"
    );
    let labels = join.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels.get("cicdoperator.ning1875.io/pipelineRun").map(String::as_str),
        Some("diamond-run")
    );
    assert_eq!(
        labels.get("cicdoperator.ning1875.io/pipelineTask").map(String::as_str),
        Some("join")
    );
    ns.passed();
}

#[tokio::test]
#[ignore = "needs the local cluster and the operator installed"]
async fn a_claim_template_workspace_is_shared_by_the_tasks() {
    let ns = TestNamespace::new("e2e-pl-workspace").await;
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
    let run = ns
        .wait_done::<MyPipelineRun>("share-run", Duration::from_secs(240))
        .await;
    ns.expect_condition(&run, "True", "Succeeded");
    assert_eq!(run.string_result("CONTENT").as_deref(), Some("written by task one"));
    let claims = kubectl(
        &["get", "pvc", "-n", &ns.name, "-o", "jsonpath={.items[*].metadata.name}"],
        None,
    );
    assert_eq!(
        claims.trim(),
        "share-run-source",
        "one claim for the whole pipeline run"
    );
    let owner = kubectl(
        &[
            "get",
            "pvc",
            "share-run-source",
            "-n",
            &ns.name,
            "-o",
            "jsonpath={.metadata.ownerReferences[0].kind}",
        ],
        None,
    );
    assert_eq!(owner, "MyPipelineRun");
    ns.passed();
}

#[tokio::test]
#[ignore = "needs the local cluster and the operator installed"]
async fn a_when_false_branch_is_skipped_with_its_dependents() {
    let ns = TestNamespace::new("e2e-pl-when").await;
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
    let run = ns
        .wait_done::<MyPipelineRun>("gated-run", Duration::from_secs(240))
        .await;
    ns.expect_condition(&run, "True", "Completed");
    assert_eq!(
        skipped(&run),
        vec![
            ("deploy".to_string(), "WhenExpressionsEvaluatedToFalse".to_string()),
            ("announce".to_string(), "ParentTasksSkipped".to_string()),
        ]
    );
    // The task name has a `-`, so the child name carries a hash (names::joined_name).
    let after = ns.get::<MyTaskRun>(&child_name("gated-run", "after-deploy")).await;
    assert_eq!(after.string_result("OUT").as_deref(), Some("still runs"));
    let made = ns
        .api::<MyTaskRun>()
        .list(&ListParams::default())
        .await
        .expect("list task runs");
    assert_eq!(made.items.len(), 2, "only build and after-deploy ran");
    ns.passed();
}

#[tokio::test]
#[ignore = "needs the local cluster and the operator installed"]
async fn finally_runs_after_a_failure_and_sees_it() {
    let ns = TestNamespace::new("e2e-pl-finally").await;
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
      params: [{{name: TEXT, value: "broken=$(tasks.broken.status) never=$(tasks.never.status) all=$(tasks.status) why=$(tasks.broken.reason) never-why=[$(tasks.never.reason)]"}}]
---
apiVersion: cicdoperator.ning1875.io/v1
kind: MyPipelineRun
metadata: {{name: breaks-run}}
spec:
  pipelineRef: breaks
"#
    ));
    let run = ns
        .wait_done::<MyPipelineRun>("breaks-run", Duration::from_secs(300))
        .await;
    let message = ns.expect_condition(&run, "False", "Failed");
    assert!(message.contains("\"broken\""), "{message}");
    assert_eq!(
        skipped(&run),
        vec![("never".to_string(), "PipelineRunStopping".to_string())]
    );
    let broken = ns.get::<MyTaskRun>("breaks-run-broken").await;
    assert_eq!(
        broken.status.clone().unwrap_or_default().retries_status.len(),
        1,
        "the child retried once before failing"
    );
    let report = ns.get::<MyTaskRun>("breaks-run-report").await;
    assert_eq!(report.condition().map(|(s, _, _)| s).as_deref(), Some("True"));
    assert_eq!(
        report.string_result("OUT").as_deref(),
        Some("broken=Failed never=None all=Failed why=Failed never-why=[]")
    );
    ns.passed();
}

#[tokio::test]
#[ignore = "needs the local cluster and the operator installed"]
async fn cancelling_a_running_pipeline_cancels_its_tasks() {
    let ns = TestNamespace::new("e2e-pl-cancel").await;
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
    ns.wait_until(
        "cancel-run-sleep",
        Duration::from_secs(120),
        "Running (the first task ran)",
        |child: &MyTaskRun| child.condition().is_some_and(|(_, reason, _)| reason == "Running"),
    )
    .await;
    let patch = serde_json::json!({ "spec": { "status": "Cancelled" } });
    ns.api::<MyPipelineRun>()
        .patch("cancel-run", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("cancel");
    let run = ns
        .wait_done::<MyPipelineRun>("cancel-run", Duration::from_secs(60))
        .await;
    ns.expect_condition(&run, "False", "PipelineRunCancelled");
    let skipped_names: Vec<String> = skipped(&run).into_iter().map(|(name, _)| name).collect();
    assert_eq!(skipped_names, vec!["later", "cleanup"]);

    ns.wait_until(
        "cancel-run-sleep",
        Duration::from_secs(60),
        "False/TaskRunCancelled",
        |child: &MyTaskRun| {
            child
                .condition()
                .is_some_and(|(status, reason, _)| status == "False" && reason == "TaskRunCancelled")
        },
    )
    .await;
    let made = ns
        .api::<MyTaskRun>()
        .list(&ListParams::default())
        .await
        .expect("list task runs");
    assert_eq!(made.items.len(), 1, "no task started after the cancel");
    ns.passed();
}

#[tokio::test]
#[ignore = "needs the local cluster and the operator installed"]
async fn a_controller_restarted_mid_pipeline_creates_no_duplicate_children() {
    let ns = TestNamespace::new("e2e-pl-restart").await;
    ns.apply(&format!(
        r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyPipelineRun
metadata: {{name: restart-run}}
spec:
  pipelineSpec:
    tasks:
      - name: first
        taskSpec:
          results: [{{name: OUT}}]
          steps:
            - name: slow
              image: {BASH}
              script: sleep 15; echo -n first > $(results.OUT.path)
      - name: second
        params: [{{name: IN, value: "$(tasks.first.results.OUT)"}}]
        taskSpec:
          params: [{{name: IN}}]
          results: [{{name: OUT}}]
          steps:
            - name: echo
              image: {BASH}
              script: echo -n "$(params.IN)+second" > $(results.OUT.path)
    results:
      - name: FINAL
        value: "$(tasks.second.results.OUT)"
"#
    ));
    ns.wait_until(
        "restart-run-first",
        Duration::from_secs(120),
        "Running (the first task ran)",
        |child: &MyTaskRun| child.condition().is_some_and(|(_, reason, _)| reason == "Running"),
    )
    .await;
    restart_controller();
    let run: MyPipelineRun = ns.wait_done("restart-run", Duration::from_secs(240)).await;
    ns.expect_condition(&run, "True", "Succeeded");
    assert_eq!(run.string_result("FINAL").as_deref(), Some("first+second"));
    let children = ns
        .api::<MyTaskRun>()
        .list(&ListParams::default().labels("cicdoperator.ning1875.io/pipelineRun=restart-run"))
        .await
        .expect("list children");
    let mut names: Vec<String> = children.items.iter().filter_map(|c| c.metadata.name.clone()).collect();
    names.sort();
    assert_eq!(
        names,
        vec!["restart-run-first", "restart-run-second"],
        "exactly one child per task"
    );
    ns.passed();
}
