//! End-to-end tests of sharing one controller between tenants, on the
//! real cluster (hack/local-cluster): objects under a run's expected names
//! that belong to someone else, refusals from the API server, names that
//! used to collide, a rolling restart of the controller mid-run, and the
//! entrypoint's ConfigMap in each tenant's namespace.
//!
//! Ignored by default; `hack/e2e` runs them (`hack/e2e tenancy` for these only).

mod support;

use std::time::{Duration, Instant};

use cicd_controller::api::{MyPipelineRun, MyTaskRun, ParamValue};
use cicd_controller::reconcile::pipelinerun::child_name;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::ResourceExt;
use kube::api::ListParams;
use support::{BASH, CONTROLLER_NAMESPACE, Run, TestNamespace, kubectl};

fn run_with_script(name: &str, timeout: &str, script: &str) -> String {
    format!(
        r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTaskRun
metadata: {{name: {name}}}
spec:
  timeout: {timeout}
  taskSpec:
    steps:
      - name: main
        image: {BASH}
        script: {script}
"#
    )
}

#[tokio::test]
#[ignore = "needs the local cluster: hack/e2e"]
async fn tenancy_a_foreign_pod_under_the_runs_pod_name_is_not_stopped() {
    let ns = TestNamespace::new("e2e-ten-foreign").await;
    // Somebody else's pod, under the name run `x` would give its pod.
    ns.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: x-pod}}
spec:
  restartPolicy: Never
  containers:
    - name: main
      image: {BASH}
      command: [sleep, "300"]
"#
    ));
    ns.apply(&run_with_script("x", "1s", "sleep 30"));
    let started = Instant::now();
    let run = ns.wait_done::<MyTaskRun>("x", Duration::from_secs(60)).await;
    let message = ns.expect_condition(&run, "False", "PodNameTaken");
    assert_eq!(message, "pod \"x-pod\" exists and is not owned by MyTaskRun \"x\"");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    // Well past the run's 1s timeout: the foreign pod was not stopped.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pod = ns
        .api::<Pod>()
        .get("x-pod")
        .await
        .expect("the foreign pod still exists");
    assert_eq!(
        pod.spec.as_ref().and_then(|s| s.active_deadline_seconds),
        None,
        "the foreign pod was stopped{}",
        ns.diagnostics()
    );
    assert!(pod.metadata.deletion_timestamp.is_none());
    // The steps stay as the run's own plan left them (waiting, never
    // started); the foreign pod's running container is not read into them.
    let steps = run.status.as_ref().map(|s| s.steps.as_slice()).unwrap_or_default();
    assert!(
        steps
            .iter()
            .all(|step| step.state == "Waiting" && step.started_at.is_none() && step.exit_code.is_none()),
        "something was read from the foreign pod: {steps:?}"
    );
    ns.passed();
}

#[tokio::test]
#[ignore = "needs the local cluster: hack/e2e"]
async fn tenancy_a_pod_the_api_server_refuses_ends_the_run_with_its_message() {
    let ns = TestNamespace::new("e2e-ten-refused").await;
    // A LimitRange is admission: the API server refuses the pod for good.
    ns.apply(
        r#"
apiVersion: v1
kind: LimitRange
metadata: {name: small}
spec:
  limits:
    - type: Container
      max: {cpu: 200m}
"#,
    );
    ns.apply(&format!(
        r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTaskRun
metadata: {{name: greedy}}
spec:
  taskSpec:
    steps:
      - name: main
        image: {BASH}
        script: echo never
        resources:
          limits: {{cpu: "2"}}
"#
    ));
    let started = Instant::now();
    let run = ns.wait_done::<MyTaskRun>("greedy", Duration::from_secs(60)).await;
    let message = ns.expect_condition(&run, "False", "PodCreationFailed");
    assert!(
        message.starts_with("pod \"greedy-pod\" was refused by the API server: HTTP 403:")
            && message.contains("maximum cpu usage per Container is 200m"),
        "{message}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "a refusal ends the run at once, took {:?}",
        started.elapsed()
    );
    let pods = ns.api::<Pod>().list(&ListParams::default()).await.expect("list pods");
    assert!(pods.items.is_empty(), "no pod exists");
    ns.passed();
}

fn pipeline_run(name: &str, task: &str) -> String {
    format!(
        r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyPipelineRun
metadata: {{name: {name}}}
spec:
  pipelineSpec:
    tasks:
      - name: {task}
        taskSpec:
          results:
            - name: WHO
          steps:
            - name: main
              image: {BASH}
              script: echo -n "{name}/{task}" > $(results.WHO.path)
    results:
      - name: WHO
        value: $(tasks.{task}.results.WHO)
"#
    )
}

#[tokio::test]
#[ignore = "needs the local cluster: hack/e2e"]
async fn tenancy_pipeline_names_that_used_to_collide_both_succeed() {
    let ns = TestNamespace::new("e2e-ten-names").await;
    // Run `a` + task `b-c` and run `a-b` + task `c` both used to make `a-b-c`.
    ns.apply(&pipeline_run("a", "b-c"));
    ns.apply(&pipeline_run("a-b", "c"));
    for (name, task) in [("a", "b-c"), ("a-b", "c")] {
        let run = ns.wait_succeeded::<MyPipelineRun>(name, Duration::from_secs(180)).await;
        assert_eq!(
            run.string_result("WHO").as_deref(),
            Some(format!("{name}/{task}").as_str())
        );
        let child = ns.get::<MyTaskRun>(&child_name(name, task)).await;
        let owner = child.owner_references().first().map(|o| o.name.clone());
        assert_eq!(
            owner.as_deref(),
            Some(name),
            "child {} has its own owner",
            child.name_any()
        );
    }
    assert_ne!(child_name("a", "b-c"), child_name("a-b", "c"));
    ns.passed();
}

#[tokio::test]
#[ignore = "needs the local cluster: hack/e2e"]
async fn tenancy_a_rolling_restart_mid_run_completes_and_the_run_has_one_pod() {
    let ns = TestNamespace::new("e2e-ten-rollout").await;
    ns.apply(&run_with_script("slow", "5m", "sleep 25; echo done"));
    ns.wait_until::<MyTaskRun>("slow", Duration::from_secs(90), "Running", |run| {
        run.condition().is_some_and(|(_, reason, _)| reason == "Running")
    })
    .await;
    let started = Instant::now();
    kubectl(
        &[
            "rollout",
            "restart",
            "deployment/cicd-controller",
            "-n",
            CONTROLLER_NAMESPACE,
        ],
        None,
    );
    // With deploy/ as shipped (RollingUpdate) this waits for the new pod to
    // be Ready while the old one still leads: readiness must not need the lease.
    let status = kubectl(
        &[
            "rollout",
            "status",
            "deployment/cicd-controller",
            "-n",
            CONTROLLER_NAMESPACE,
            "--timeout=120s",
        ],
        None,
    );
    eprintln!("rollout finished in {:?}: {status}", started.elapsed());
    ns.wait_succeeded::<MyTaskRun>("slow", Duration::from_secs(180)).await;
    let pods = ns.api::<Pod>().list(&ListParams::default()).await.expect("list pods");
    let names: Vec<String> = pods.items.iter().map(|p| p.name_any()).collect();
    assert_eq!(names, vec!["slow-pod".to_string()], "exactly one pod");
    ns.passed();
}

/// Peak resident memory of the controller process(es) on this machine,
/// sampled every 100 ms until dropped (the pod's process is visible from
/// the host: the local cluster's containerd runs here).
struct RssSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

fn controller_rss_kib() -> Option<u64> {
    let mut peak = None;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if !cmdline.starts_with(b"/cicd-controller\0run") {
            continue;
        }
        let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
        let rss = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
        peak = peak.max(rss);
    }
    peak
}

impl RssSampler {
    fn start() -> RssSampler {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(controller_rss_kib().unwrap_or(0));
                std::thread::sleep(Duration::from_millis(100));
            }
            peak
        });
        RssSampler {
            stop,
            thread: Some(thread),
        }
    }

    /// The peak seen, in KiB.
    fn finish(mut self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or(0)
    }
}

/// A run whose 500 KB param is copied into 64 steps, twice each: 64 MB of
/// script if the controller built it.
fn amplified_scripts(name: &str) -> String {
    let steps: String = (0..64)
        .map(|i| format!("      - {{name: s{i}, image: {BASH}, script: \"$(params.p)$(params.p)\"}}\n"))
        .collect();
    format!(
        "apiVersion: cicdoperator.ning1875.io/v1\nkind: MyTaskRun\nmetadata: {{name: {name}}}\nspec:\n  \
         params: [{{name: p, value: \"{}\"}}]\n  taskSpec:\n    params: [{{name: p}}]\n    steps:\n{steps}",
        "x".repeat(500_000)
    )
}

/// A run whose 1024-item array param is expanded into the args of 64 steps.
fn amplified_arrays(name: &str) -> String {
    let item = format!("\"{}\"", "y".repeat(400));
    let items = vec![item; 1024].join(", ");
    let steps: String = (0..64)
        .map(|i| format!("      - {{name: s{i}, image: {BASH}, command: [echo], args: [\"$(params.a[*])\"]}}\n"))
        .collect();
    format!(
        "apiVersion: cicdoperator.ning1875.io/v1\nkind: MyTaskRun\nmetadata: {{name: {name}}}\nspec:\n  \
         params: [{{name: a, value: [{items}]}}]\n  taskSpec:\n    params: [{{name: a, type: array}}]\n    steps:\n{steps}"
    )
}

/// A pipeline run of 300 inline tasks, over the pipeline task limit.
fn too_many_tasks(name: &str) -> String {
    let tasks: String = (0..300)
        .map(|i| {
            format!("      - {{name: t{i}, taskSpec: {{steps: [{{name: s, image: {BASH}, script: \"true\"}}]}}}}\n")
        })
        .collect();
    format!(
        "apiVersion: cicdoperator.ning1875.io/v1\nkind: MyPipelineRun\nmetadata: {{name: {name}}}\nspec:\n  \
         pipelineSpec:\n    tasks:\n{tasks}"
    )
}

#[tokio::test]
#[ignore = "needs the local cluster: hack/e2e"]
async fn tenancy_worst_inputs_fail_alone_and_the_controller_stays_within_its_memory_limit() {
    /// deploy/controller.yaml's memory limit.
    const LIMIT_KIB: u64 = 256 * 1024;
    let bad = TestNamespace::new("e2e-tenancy-worst").await;
    let good = TestNamespace::new("e2e-tenancy-bystander").await;
    let before = controller_rss_kib().unwrap_or(0);
    let sampler = RssSampler::start();
    let started = Instant::now();
    // `create`, not `apply`: apply would copy each ~1 MB object into its
    // last-applied annotation and pass etcd's object limit.
    let mut names = Vec::new();
    for i in 0..8 {
        kubectl(
            &["create", "-n", &bad.name, "-f", "-"],
            Some(&amplified_scripts(&format!("scripts-{i}"))),
        );
        kubectl(
            &["create", "-n", &bad.name, "-f", "-"],
            Some(&amplified_arrays(&format!("arrays-{i}"))),
        );
        names.push(format!("scripts-{i}"));
        names.push(format!("arrays-{i}"));
    }
    kubectl(&["create", "-n", &bad.name, "-f", "-"], Some(&too_many_tasks("wide")));
    eprintln!("17 worst-case runs created in {:.1}s", started.elapsed().as_secs_f64());
    good.apply(&run_with_script("bystander", "2m", "echo fine"));

    good.wait_succeeded::<MyTaskRun>("bystander", Duration::from_secs(90))
        .await;
    for name in &names {
        let message = bad
            .wait_failed::<MyTaskRun>(name, "TaskRunValidationFailed", Duration::from_secs(120))
            .await;
        assert!(message.contains("limit"), "{name}: {message}");
    }
    let wide = bad.wait_done::<MyPipelineRun>("wide", Duration::from_secs(120)).await;
    let message = bad.expect_condition(&wide, "False", "PipelineRunValidationFailed");
    assert!(message.contains("--max-pipeline-tasks"), "{message}");
    let children: kube::Api<MyTaskRun> = bad.api();
    assert!(
        children
            .list(&ListParams::default())
            .await
            .map(|l| l.items.len())
            .unwrap_or(0)
            == names.len(),
        "the wide pipeline created children"
    );

    let peak = sampler.finish();
    eprintln!(
        "controller RSS: {} MiB before, peak {} MiB while refusing 17 worst-case runs ({:.0}s)",
        before / 1024,
        peak / 1024,
        started.elapsed().as_secs_f64()
    );
    assert!(peak > 0, "the controller process was not found on this machine");
    assert!(
        peak < LIMIT_KIB,
        "controller peaked at {peak} KiB, over its {LIMIT_KIB} KiB limit"
    );
    let terminated = kubectl(
        &[
            "get",
            "pods",
            "-n",
            CONTROLLER_NAMESPACE,
            "-l",
            "app.kubernetes.io/name=cicd-controller",
            "-o",
            "jsonpath={.items[*].status.containerStatuses[*].lastState.terminated.reason}",
        ],
        None,
    );
    assert!(!terminated.contains("OOMKilled"), "the controller was OOM-killed");
    bad.passed();
    good.passed();
}

/// A run whose step runs as another user, with a script, step results and
/// task results, as the entrypoint's ConfigMap is mounted.
fn run_as_user_1000(name: &str) -> String {
    format!(
        r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTaskRun
metadata: {{name: {name}}}
spec:
  taskSpec:
    results: [{{name: uid}}, {{name: digest, value: $(steps.build.results.digest)}}]
    steps:
      - name: build
        image: {BASH}
        securityContext: {{runAsUser: 1000, runAsGroup: 1000}}
        results: [{{name: digest}}]
        script: |
          printf sha256:1f > $(step.results.digest.path)
          printf "$(id -u)" > $(results.uid.path)
      - name: check
        image: {BASH}
        securityContext: {{runAsUser: 1001}}
        command: [/bin/sh, -c, 'test "$1" = sha256:1f', sh, $(steps.build.results.digest)]
"#
    )
}

fn result<'a>(run: &'a MyTaskRun, name: &str) -> Option<&'a str> {
    let found = run.status.as_ref()?.results.iter().find(|r| r.name == name)?;
    match &found.value {
        ParamValue::String(text) => Some(text),
        _ => None,
    }
}

/// The tools volume's ConfigMap and the init containers of the run's pod.
async fn entrypoint_of_pod(ns: &TestNamespace, run: &str) -> (Option<String>, Vec<String>) {
    let pod = ns.api::<Pod>().get(&format!("{run}-pod")).await.expect("the run's pod");
    let spec = pod.spec.expect("a pod spec");
    let tools = spec.volumes.iter().flatten().find(|v| v.name == "cicd-bin");
    let config_map = tools.and_then(|v| v.config_map.as_ref()).map(|c| c.name.clone());
    let init = spec.init_containers.iter().flatten().map(|c| c.name.clone()).collect();
    (config_map, init)
}

#[tokio::test]
#[ignore = "needs the local cluster: hack/e2e"]
async fn tenancy_pods_mount_the_entrypoint_from_our_config_map_and_never_from_a_foreign_one() {
    let ns = TestNamespace::new("e2e-ten-entrypoint").await;
    ns.apply(&run_as_user_1000("mine"));
    let run = ns.wait_succeeded::<MyTaskRun>("mine", Duration::from_secs(90)).await;
    assert_eq!(result(&run, "uid"), Some("1000"), "{:?}", run.status);
    assert_eq!(result(&run, "digest"), Some("sha256:1f"));
    let (config_map, init) = entrypoint_of_pod(&ns, "mine").await;
    assert_eq!(init, Vec::<String>::new(), "no init container{}", ns.diagnostics());
    let name = config_map.expect("the tools volume is a ConfigMap");
    assert!(name.starts_with("cicd-entrypoint-"), "{name}");
    let ours = ns.api::<ConfigMap>().get(&name).await.expect("our ConfigMap");
    assert_eq!(ours.immutable, Some(true));
    assert_eq!(
        ours.labels().get("app.kubernetes.io/managed-by").map(String::as_str),
        Some("cicd-operator")
    );
    let binary = ours
        .binary_data
        .as_ref()
        .and_then(|d| d.get("entrypoint"))
        .expect("the binary");
    assert!(binary.0.starts_with(b"\x7fELF"), "an executable");

    // Deleted by a tenant: made again, so pods still to start can mount it.
    let first_uid = ours.uid().expect("a uid");
    kubectl(&["delete", "configmap", &name, "-n", &ns.name], None);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let again = ns.api::<ConfigMap>().get_opt(&name).await.expect("a read");
        if again.as_ref().and_then(|c| c.uid()).is_some_and(|uid| uid != first_uid) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the ConfigMap was not made again{}",
            ns.diagnostics()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Someone else's ConfigMap under that name in another namespace: left
    // alone; the pod there copies the entrypoint with the init container.
    let other = TestNamespace::new("e2e-ten-entrypoint-foreign").await;
    other.apply(&format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{entrypoint: not-a-binary}}\n"
    ));
    other.apply(&run_as_user_1000("theirs"));
    let run = other
        .wait_succeeded::<MyTaskRun>("theirs", Duration::from_secs(90))
        .await;
    assert_eq!(result(&run, "uid"), Some("1000"));
    let (config_map, init) = entrypoint_of_pod(&other, "theirs").await;
    assert_eq!(config_map, None, "the foreign ConfigMap is not mounted");
    assert_eq!(init, ["prepare"]);
    let foreign = other.api::<ConfigMap>().get(&name).await.expect("still there");
    assert_eq!(
        foreign
            .data
            .as_ref()
            .and_then(|d| d.get("entrypoint"))
            .map(String::as_str),
        Some("not-a-binary"),
        "unchanged"
    );
    assert!(foreign.labels().get("app.kubernetes.io/managed-by").is_none());
    other.passed();
    ns.passed();
}
