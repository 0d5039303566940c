//! End-to-end tests that need a second node: the local cluster with
//! `hack/local-cluster/up --nodes 2` (node 1 `cicd-node`, node 2
//! `cicd-node-2`). Each test brings node 2 up itself if it is not (with
//! `hack/local-cluster/node start 2`, which needs root and the cluster up),
//! and leaves it up and Ready when it ends.
//!
//! Ignored by default; run with
//! `cargo test -p cicd-controller --test e2e_nodes -- --ignored --test-threads=1`.
//! The tests stop node 2 or depend on where pods land, so they also take a
//! lock of their own and never overlap.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use cicd_controller::api::{MyPipelineRun, MyTaskRun};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use support::{BASH, CONTROLLER_NAMESPACE, Run, TestNamespace, kubectl, kubectl_lossy, repo_root};

/// Node 1 (the control plane's node) and node 2 of `up --nodes 2`.
const NODE_1: &str = "cicd-node";
const NODE_2: &str = "cicd-node-2";

/// The node lifecycle controller's --node-monitor-grace-period (the
/// Kubernetes default, which hack/local-cluster keeps), its check period,
/// and the controller's --node-lost-after (its default, which deploy/ keeps).
const NODE_MONITOR_GRACE: Duration = Duration::from_secs(50);
const NODE_MONITOR_PERIOD: Duration = Duration::from_secs(5);
const NODE_LOST_AFTER: Duration = Duration::from_secs(40);
/// What the README promises beyond those three: a watch event, a reconcile.
const NODE_LOST_SLACK: Duration = Duration::from_secs(20);

/// Held by every test: they stop node 2 or need both nodes as they are.
static NODES_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs `hack/local-cluster/node <args>`; panics with its output on failure.
fn node_script(args: &[&str]) {
    let script = repo_root().join("hack/local-cluster/node");
    let output = Command::new(&script)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("{} {args:?}: {error}", script.display()));
    assert!(
        output.status.success(),
        "hack/local-cluster/node {args:?} failed (it needs root and the cluster up; \
         hack/local-cluster/up --nodes 2 brings both nodes up):\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Node 2 up and Ready (started if it is not).
fn ensure_node_2() {
    node_script(&["start", "2"]);
}

fn node_ready(node: &str) -> String {
    kubectl_lossy(&[
        "get",
        "node",
        node,
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
    ])
}

/// The node a pod is bound to ("" before scheduling).
async fn node_of(ns: &TestNamespace, pod: &str) -> String {
    ns.api::<Pod>()
        .get_opt(pod)
        .await
        .ok()
        .flatten()
        .and_then(|p| p.spec.and_then(|s| s.node_name))
        .unwrap_or_default()
}

/// The nodes the controller's pods are on.
fn controller_nodes() -> Vec<String> {
    kubectl(
        &[
            "get",
            "pods",
            "-n",
            CONTROLLER_NAMESPACE,
            "-l",
            "app.kubernetes.io/name=cicd-controller",
            "--field-selector=status.phase=Running",
            "-o",
            "jsonpath={.items[*].spec.nodeName}",
        ],
        None,
    )
    .split_whitespace()
    .map(str::to_string)
    .collect()
}

/// Waits until the pod has phase `phase`; panics with diagnostics after `limit`.
async fn wait_pod_phase(ns: &TestNamespace, pod: &str, phase: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let current = ns.api::<Pod>().get_opt(pod).await.ok().flatten();
        let now = current.as_ref().and_then(|p| p.status.as_ref()?.phase.clone());
        if now.as_deref() == Some(phase) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pod {pod} not {phase} within {limit:?} (now {now:?}){}",
            ns.diagnostics()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Node 2 is a real node: a pod pinned to it runs an image from the local
/// registry, reaches a pod on node 1 by its IP and the apiserver through the
/// `kubernetes` Service, and its log is readable through the apiserver
/// (which asks node 2's kubelet).
#[tokio::test]
#[ignore = "needs the local cluster with two nodes: hack/local-cluster/up --nodes 2"]
async fn nodes_a_pod_on_node_2_reaches_node_1_and_the_api() {
    let _nodes = NODES_LOCK.lock().await;
    ensure_node_2();
    assert_eq!(node_ready(NODE_1), "True");
    assert_eq!(node_ready(NODE_2), "True");
    let ns = TestNamespace::new("e2e-nodes-network").await;
    ns.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: server}}
spec:
  nodeName: {NODE_1}
  containers:
    - name: serve
      image: {BASH}
      command: [bash, -c, 'while true; do echo hello-from-node-1 | nc -l -p 8080; done']
"#
    ));
    wait_pod_phase(&ns, "server", "Running", Duration::from_secs(60)).await;
    let server_ip = kubectl(
        &["get", "pod", "server", "-n", &ns.name, "-o", "jsonpath={.status.podIP}"],
        None,
    );
    assert!(server_ip.starts_with("10.244.0."), "node 1's pod range: {server_ip}");
    ns.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec:
  nodeSelector: {{kubernetes.io/hostname: {NODE_2}}}
  restartPolicy: Never
  containers:
    - name: ask
      image: {BASH}
      command:
        - bash
        - -c
        - |
          set -e
          echo "my address: $(hostname -i)"
          exec 3<>/dev/tcp/{server_ip}/8080
          timeout 10 head -n 1 <&3
          exec 4<>/dev/tcp/$KUBERNETES_SERVICE_HOST/$KUBERNETES_SERVICE_PORT
          echo "api service reachable"
"#
    ));
    wait_pod_phase(&ns, "client", "Succeeded", Duration::from_secs(60)).await;
    assert_eq!(node_of(&ns, "client").await, NODE_2);
    let log = kubectl(&["logs", "-n", &ns.name, "client"], None);
    assert!(log.contains("my address: 10.244.1."), "node 2's pod range: {log}");
    assert!(log.contains("hello-from-node-1"), "{log}");
    assert!(log.contains("api service reachable"), "{log}");
    ns.passed();
}

/// A run whose pod is on node 2 when node 2 loses power: the attempt ends
/// `NodeLost` naming the node within the documented bound, and with
/// `retries: 1` the run is retried on node 1 and succeeds.
#[tokio::test]
#[ignore = "needs the local cluster with two nodes: hack/local-cluster/up --nodes 2"]
async fn nodes_a_run_on_a_stopped_node_is_lost_and_retried_on_the_other_node() {
    let _nodes = NODES_LOCK.lock().await;
    ensure_node_2();
    let controller = controller_nodes();
    assert!(
        controller.iter().all(|n| n == NODE_1),
        "the controller must run on {NODE_1} for this test (it stops {NODE_2}): it runs on {controller:?}"
    );
    let ns = TestNamespace::new("e2e-nodes-lost").await;
    // Prefers node 2, so the first attempt goes there; the retry cannot
    // (the lost node is tainted) and runs on node 1.
    ns.apply(&format!(
        r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTaskRun
metadata: {{name: lost}}
spec:
  retries: 1
  podTemplate:
    affinity:
      nodeAffinity:
        preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 100
            preference:
              matchExpressions:
                - {{key: kubernetes.io/hostname, operator: In, values: [{NODE_2}]}}
  taskSpec:
    steps:
      - name: work
        image: {BASH}
        script: |
          echo "working"
          sleep 15
          echo "done"
"#
    ));
    let running = ns
        .wait_until("lost", Duration::from_secs(90), "Running", |run: &MyTaskRun| {
            run.condition().is_some_and(|(_, reason, _)| reason == "Running")
        })
        .await;
    let first_pod = running
        .status
        .as_ref()
        .and_then(|s| s.pod_name.clone())
        .expect("the running attempt's pod");
    assert_eq!(
        node_of(&ns, &first_pod).await,
        NODE_2,
        "the first attempt prefers node 2{}",
        ns.diagnostics()
    );

    let stopped_at = Instant::now();
    node_script(&["stop", "2"]);
    let bound = NODE_MONITOR_GRACE + NODE_MONITOR_PERIOD + NODE_LOST_AFTER + NODE_LOST_SLACK;
    let retried = ns
        .wait_until("lost", bound, "a NodeLost attempt", |run: &MyTaskRun| {
            run.status.as_ref().is_some_and(|s| !s.retries_status.is_empty())
        })
        .await;
    let lost_after = stopped_at.elapsed();
    let attempt = &retried.status.as_ref().expect("status").retries_status[0];
    assert_eq!(attempt.reason, "NodeLost", "{attempt:?}");
    assert!(
        attempt.message.contains(NODE_2),
        "the message names the node: {}",
        attempt.message
    );
    assert_eq!(attempt.pod_name, first_pod);
    println!("node {NODE_2} stopped; attempt 1 ended NodeLost after {lost_after:?} (bound {bound:?})");

    let done = ns.wait_succeeded::<MyTaskRun>("lost", Duration::from_secs(90)).await;
    let second_pod = done
        .status
        .as_ref()
        .and_then(|s| s.pod_name.clone())
        .expect("the retry's pod");
    assert_ne!(second_pod, first_pod);
    assert_eq!(node_of(&ns, &second_pod).await, NODE_1, "the retry runs on node 1");
    let pods = ns.api::<Pod>().list(&Default::default()).await.expect("list pods");
    assert_eq!(
        pods.items.len(),
        2,
        "one pod per attempt: {:?}",
        pods.items.iter().map(|p| p.name_any()).collect::<Vec<_>>()
    );

    node_script(&["start", "2"]);
    ns.passed();
}

/// A diamond: `top` writes, `left` and `right` (at the same time) add a file
/// each to the one claim, `bottom` reads both. `storage` is the
/// volumeClaimTemplate's extra spec (e.g. its storageClassName).
fn diamond(run: &str, storage: &str) -> String {
    let task = |name: &str, after: &str, script: &str| {
        let run_after = if after.is_empty() {
            String::new()
        } else {
            format!("\n      runAfter: [{after}]")
        };
        format!(
            r#"
    - name: {name}{run_after}
      workspaces: [{{name: ws, workspace: shared}}]
      taskSpec:
        workspaces: [{{name: ws}}]
        results: [{{name: SEEN}}]
        steps:
          - name: work
            image: {BASH}
            script: |
              {script}"#
        )
    };
    let tasks = [
        task(
            "top",
            "",
            "echo -n top > $(workspaces.ws.path)/top; echo -n ok > $(results.SEEN.path)",
        ),
        task(
            "left",
            "top",
            "cat $(workspaces.ws.path)/top > /dev/null; echo -n left > $(workspaces.ws.path)/left; sleep 4; echo -n ok > $(results.SEEN.path)",
        ),
        task(
            "right",
            "top",
            "cat $(workspaces.ws.path)/top > /dev/null; echo -n right > $(workspaces.ws.path)/right; sleep 4; echo -n ok > $(results.SEEN.path)",
        ),
        task(
            "bottom",
            "left, right",
            "cat $(workspaces.ws.path)/top $(workspaces.ws.path)/left $(workspaces.ws.path)/right > $(results.SEEN.path)",
        ),
    ];
    format!(
        r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyPipelineRun
metadata: {{name: {run}}}
spec:
  workspaces:
    - name: shared
      volumeClaimTemplate:
        spec:
          accessModes: [ReadWriteOnce]
          resources: {{requests: {{storage: 16Mi}}}}
          {storage}
  pipelineSpec:
    workspaces: [{{name: shared}}]
    results: [{{name: ALL, value: $(tasks.bottom.results.SEEN)}}]
    tasks:{}
"#,
        tasks.join("")
    )
}

/// The node of the pod of the pipeline task `task` of run `run`.
async fn node_of_task(ns: &TestNamespace, run: &str, task: &str) -> String {
    let pods = kubectl(
        &[
            "get",
            "pods",
            "-n",
            &ns.name,
            "-l",
            &format!("cicdoperator.ning1875.io/pipelineRun={run},cicdoperator.ning1875.io/pipelineTask={task}"),
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ],
        None,
    );
    let names: Vec<&str> = pods.split_whitespace().collect();
    assert_eq!(names.len(), 1, "one pod for task {task}: {names:?}");
    node_of(ns, names[0]).await
}

/// The pods of `run` that carry a required pod-affinity term.
fn pods_with_claim_affinity(ns: &TestNamespace, run: &str) -> usize {
    kubectl(
        &[
            "get",
            "pods",
            "-n",
            &ns.name,
            "-l",
            &format!("cicdoperator.ning1875.io/pipelineRun={run}"),
            "-o",
            "jsonpath={range .items[*]}{.spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey}{\"\\n\"}{end}",
        ],
        None,
    )
    .lines()
    .filter(|line| *line == "kubernetes.io/hostname")
    .count()
}

/// The diamond's claim is backed by a local PersistentVolume that exists on
/// node 2 only: the whole run, both middle tasks included, runs there.
#[tokio::test]
#[ignore = "needs the local cluster with two nodes: hack/local-cluster/up --nodes 2"]
async fn nodes_a_diamond_on_a_local_volume_of_node_2_runs_there() {
    let _nodes = NODES_LOCK.lock().await;
    ensure_node_2();
    let ns = TestNamespace::new("e2e-nodes-local-pv").await;
    let path = "/tmp/cicd-e2e-local-pv-node-2";
    let _ = std::fs::remove_dir_all(path);
    std::fs::create_dir_all(path).expect("the local volume's directory");
    let _ = kubectl_lossy(&["delete", "pv", "e2e-nodes-local-pv", "--ignore-not-found"]);
    kubectl(
        &["apply", "-f", "-"],
        Some(&format!(
            r#"
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {{name: e2e-local-node-2}}
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
---
apiVersion: v1
kind: PersistentVolume
metadata: {{name: e2e-nodes-local-pv}}
spec:
  capacity: {{storage: 64Mi}}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: e2e-local-node-2
  local: {{path: {path}}}
  nodeAffinity:
    required:
      nodeSelectorTerms:
        - matchExpressions:
            - {{key: kubernetes.io/hostname, operator: In, values: [{NODE_2}]}}
"#
        )),
    );
    ns.apply(&diamond("local", "storageClassName: e2e-local-node-2"));
    let run = ns
        .wait_succeeded::<MyPipelineRun>("local", Duration::from_secs(180))
        .await;
    assert_eq!(run.string_result("ALL").as_deref(), Some("topleftright"));
    for task in ["top", "left", "right", "bottom"] {
        assert_eq!(node_of_task(&ns, "local", task).await, NODE_2, "task {task}");
    }
    assert_eq!(pods_with_claim_affinity(&ns, "local"), 4);
    ns.passed();
    let _ = kubectl_lossy(&["delete", "pv", "e2e-nodes-local-pv", "--wait=false"]);
}

/// The same diamond on the default StorageClass, whose volumes carry no node
/// affinity: the controller's pod affinity alone puts the two middle tasks,
/// which run at the same time, on one node.
#[tokio::test]
#[ignore = "needs the local cluster with two nodes: hack/local-cluster/up --nodes 2"]
async fn nodes_parallel_tasks_sharing_a_claim_run_on_one_node() {
    let _nodes = NODES_LOCK.lock().await;
    ensure_node_2();
    let ns = TestNamespace::new("e2e-nodes-affinity").await;
    ns.apply(&diamond("shared", ""));
    let run = ns
        .wait_succeeded::<MyPipelineRun>("shared", Duration::from_secs(180))
        .await;
    assert_eq!(run.string_result("ALL").as_deref(), Some("topleftright"));
    let left = node_of_task(&ns, "shared", "left").await;
    let right = node_of_task(&ns, "shared", "right").await;
    assert_eq!(left, right, "the middle tasks share the claim and run at the same time");
    assert_eq!(pods_with_claim_affinity(&ns, "shared"), 4);
    ns.passed();
}

/// The Lease the controller replicas compete for, and its duration.
const LEASE: &str = "cicd-controller";
const LEASE_DURATION: Duration = Duration::from_secs(15);

fn lease_holder() -> String {
    kubectl_lossy(&[
        "get",
        "lease",
        LEASE,
        "-n",
        CONTROLLER_NAMESPACE,
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ])
}

/// (pod name, node) of every controller pod not being deleted.
fn controller_pods() -> Vec<(String, String)> {
    kubectl(
        &[
            "get",
            "pods",
            "-n",
            CONTROLLER_NAMESPACE,
            "-l",
            "app.kubernetes.io/name=cicd-controller",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName} {.metadata.deletionTimestamp}{\"\\n\"}{end}",
        ],
        None,
    )
    .lines()
    .filter_map(|line| {
        let mut words = line.split_whitespace();
        let (pod, node) = (words.next()?, words.next()?);
        words.next().is_none().then(|| (pod.to_string(), node.to_string()))
    })
    .collect()
}

fn rollout_status() {
    kubectl(
        &[
            "rollout",
            "status",
            "deployment/cicd-controller",
            "-n",
            CONTROLLER_NAMESPACE,
            "--timeout=240s",
        ],
        None,
    );
}

/// Two replicas, one on each node (anti-affinity); the Deployment
/// is put back as it was (one replica, no affinity) when the guard drops.
struct TwoReplicas;

impl TwoReplicas {
    /// First the anti-affinity (the one new pod must avoid the old pod's
    /// node), then the second replica: both at once leave the rollout
    /// stuck, the old ReplicaSet being scaled up to two pods on both nodes.
    fn start() -> TwoReplicas {
        // Made first, so a failure below still puts the Deployment back.
        let guard = TwoReplicas;
        // Preferred, not required: a required anti-affinity also binds the
        // pods of the restored template, and a rollout back to one replica
        // can then find no node for its new pod while an old one runs.
        let anti_affinity = r#"{"spec": {"template": {"spec": {"affinity": {"podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": {
              "topologyKey": "kubernetes.io/hostname",
              "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "cicd-controller"}}}}]}}}}}}"#;
        for patch in [anti_affinity, r#"{"spec": {"replicas": 2}}"#] {
            kubectl(
                &[
                    "patch",
                    "deployment",
                    "cicd-controller",
                    "-n",
                    CONTROLLER_NAMESPACE,
                    "--type=merge",
                    "-p",
                    patch,
                ],
                None,
            );
            rollout_status();
        }
        guard
    }
}

impl Drop for TwoReplicas {
    fn drop(&mut self) {
        let _ = kubectl_lossy(&[
            "patch",
            "deployment",
            "cicd-controller",
            "-n",
            CONTROLLER_NAMESPACE,
            "--type=json",
            "-p",
            r#"[{"op": "replace", "path": "/spec/replicas", "value": 1},
                {"op": "remove", "path": "/spec/template/spec/affinity"}]"#,
        ]);
        let _ = kubectl_lossy(&[
            "rollout",
            "status",
            "deployment/cicd-controller",
            "-n",
            CONTROLLER_NAMESPACE,
            "--timeout=240s",
        ]);
    }
}

/// Waits until the Lease is held by a controller pod on `node`; returns it.
async fn wait_leader_on(node: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let holder = lease_holder();
        if controller_pods().iter().any(|(pod, on)| *pod == holder && on == node) {
            return holder;
        }
        assert!(
            Instant::now() < deadline,
            "no controller on {node} took the Lease within {limit:?}: holder {holder:?}, pods {:?}",
            controller_pods()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until a current replica holds the Lease and it is node 2's: while
/// node 1's replica holds it, that pod is deleted (node 2's takes over, node 1
/// gets a new follower). A holder that is no current pod (the replica the
/// rollout replaced) is waited out. Returns the leader.
async fn make_node_2_lead(limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    let mut deleted: Option<String> = None;
    loop {
        let holder = lease_holder();
        match controller_pods().into_iter().find(|(pod, _)| *pod == holder) {
            Some((_, node)) if node == NODE_2 => return holder,
            Some((pod, _)) if deleted.as_ref() != Some(&pod) => {
                kubectl(
                    &["delete", "pod", "-n", CONTROLLER_NAMESPACE, &pod, "--wait=false"],
                    None,
                );
                deleted = Some(pod);
            }
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "node 2's replica did not take the Lease within {limit:?}: holder {holder:?}, pods {:?}",
            controller_pods()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Two controller replicas on different nodes; the leader's node (node 2)
/// loses power in the middle of a pipeline. The replica on node 1 takes the
/// Lease within its duration (and logs when), and the pipeline completes
/// with exactly one child run and one pod per task.
#[tokio::test]
#[ignore = "needs the local cluster with two nodes: hack/local-cluster/up --nodes 2"]
async fn nodes_failover_the_follower_finishes_a_pipeline_when_the_leaders_node_stops() {
    let _nodes = NODES_LOCK.lock().await;
    ensure_node_2();
    let replicas = TwoReplicas::start();
    let mut nodes: Vec<String> = controller_pods().into_iter().map(|(_, node)| node).collect();
    nodes.sort();
    assert_eq!(
        nodes,
        vec![NODE_1.to_string(), NODE_2.to_string()],
        "one replica per node"
    );
    let leader = make_node_2_lead(Duration::from_secs(90)).await;
    rollout_status();

    let ns = TestNamespace::new("e2e-nodes-failover").await;
    let step = |name: &str, after: &str| {
        format!(
            r#"
    - name: {name}{after}
      taskSpec:
        steps:
          - name: work
            image: {BASH}
            script: sleep 6"#
        )
    };
    // The pipeline's pods run on node 1, which stays up.
    ns.apply(&format!(
        r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyPipelineRun
metadata: {{name: failover}}
spec:
  podTemplate:
    nodeSelector: {{kubernetes.io/hostname: {NODE_1}}}
  pipelineSpec:
    tasks:{}{}{}{}
"#,
        step("first", ""),
        step("left", "\n      runAfter: [first]"),
        step("right", "\n      runAfter: [first]"),
        step("last", "\n      runAfter: [left, right]"),
    ));
    // Mid-pipeline: the first task has finished, the middle ones run.
    ns.wait_until(
        "failover",
        Duration::from_secs(120),
        "its middle tasks",
        |run: &MyPipelineRun| run.status.as_ref().is_some_and(|s| s.child_references.len() >= 3),
    )
    .await;
    let stopped_at = Instant::now();
    node_script(&["stop", "2"]);
    let follower = wait_leader_on(NODE_1, LEASE_DURATION + Duration::from_secs(15)).await;
    let took_over = stopped_at.elapsed();
    assert_ne!(follower, leader);
    println!("leader {leader} on {NODE_2} stopped; {follower} on {NODE_1} took the Lease after {took_over:?}");
    assert!(
        took_over <= LEASE_DURATION + Duration::from_secs(5),
        "took over after {took_over:?}, Lease duration {LEASE_DURATION:?}"
    );

    let done = ns
        .wait_done::<MyPipelineRun>("failover", Duration::from_secs(180))
        .await;
    ns.expect_condition(&done, "True", "Succeeded");
    let children = ns.api::<MyTaskRun>().list(&Default::default()).await.expect("children");
    assert_eq!(children.items.len(), 4, "one child per task");
    let pods = ns.api::<Pod>().list(&Default::default()).await.expect("pods");
    assert_eq!(
        pods.items.len(),
        4,
        "one pod per child: {:?}",
        pods.items.iter().map(|p| p.name_any()).collect::<Vec<_>>()
    );
    let log = kubectl(&["logs", "-n", CONTROLLER_NAMESPACE, &follower], None);
    let line = log
        .lines()
        .find(|line| line.contains("became leader"))
        .unwrap_or_else(|| panic!("the follower's log says when it took over:\n{log}"));
    println!("follower: {line}");

    node_script(&["start", "2"]);
    drop(replicas);
    ns.passed();
}
