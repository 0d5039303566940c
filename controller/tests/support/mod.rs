//! The harness shared by the end-to-end suites (e2e, e2e_pipelines,
//! e2e_catalog): kubectl, a namespace per test, and waiting for runs.
#![allow(dead_code)] // each suite includes this module and uses only part of it

use std::fmt::Debug;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cicd_controller::api::{Condition, MyPipelineRun, MyTaskRun, ParamValue, RunResult};
use k8s_openapi::NamespaceResourceScope;
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

/// Steps' shell image, served by the local registry.
pub const BASH: &str = "127.0.0.1:5000/cicd/bash:5";
pub const CONTROLLER_NAMESPACE: &str = "cicd-system";

/// How often the wait helpers read the object again.
const POLL: Duration = Duration::from_millis(500);

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A `git daemon` serving `base` read-only on loopback `port`. It runs the
/// daemon binary itself: `git daemon` would fork it, and killing the `git`
/// wrapper would leave the daemon running after the test.
pub fn git_daemon_command(base: &Path, port: u16) -> Command {
    git_daemon_command_on(base, "127.0.0.1", port)
}

/// A `git daemon` serving `base` on `listen:port` (`10.244.0.1`, the pod
/// bridge's host address, serves the controller's pod).
pub fn git_daemon_command_on(base: &Path, listen: &str, port: u16) -> Command {
    let exec_path = Command::new("git")
        .arg("--exec-path")
        .output()
        .expect("git --exec-path runs");
    let dir = String::from_utf8_lossy(&exec_path.stdout).trim().to_string();
    let mut command = Command::new(Path::new(&dir).join("git-daemon"));
    command
        .args(["--reuseaddr", "--export-all"])
        .arg(format!("--listen={listen}"))
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", base.display()))
        .arg(base);
    command
}

/// Runs kubectl; panics with its stderr when it fails.
pub fn kubectl(args: &[&str], stdin: Option<&str>) -> String {
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
    assert!(
        output.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Deletes the controller's pod; its Deployment starts a new one, which must
/// pick up where the old one left off.
pub fn restart_controller() {
    kubectl(
        &[
            "delete",
            "pod",
            "-n",
            CONTROLLER_NAMESPACE,
            "-l",
            "app.kubernetes.io/name=cicd-controller",
            "--wait=false",
        ],
        None,
    );
}

/// kubectl without asserting success, for diagnostics.
pub fn kubectl_lossy(args: &[&str]) -> String {
    match Command::new("kubectl").args(args).output() {
        Ok(out) => format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(error) => format!("kubectl {args:?}: {error}"),
    }
}

/// The controller's side of a failure: the nodes' conditions, its pods (a crash loop, an eviction
/// or a pod stuck terminating shows here), its namespace's events, and the
/// log of every controller pod, with the previous container's log where it
/// restarted (a crash leaves its reason there).
fn controller_diagnostics(section: &mut impl FnMut(&str, String)) {
    let ns = CONTROLLER_NAMESPACE;
    // DiskPressure or MemoryPressure evicts pods, the controller's too.
    section(
        "node conditions",
        kubectl_lossy(&[
            "get",
            "nodes",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}:{range .status.conditions[*]} {.type}={.status}{end}{\"\\n\"}{end}",
        ]),
    );
    section(
        "controller pods",
        kubectl_lossy(&["get", "pods", "-n", ns, "-o", "wide"]),
    );
    section(
        "controller namespace events",
        kubectl_lossy(&["get", "events", "-n", ns, "--sort-by=.lastTimestamp"]),
    );
    let listing = kubectl_lossy(&[
        "get",
        "pods",
        "-n",
        ns,
        "-o",
        "jsonpath={range .items[*]}{.metadata.name} {.status.containerStatuses[0].restartCount}{\"\\n\"}{end}",
    ]);
    for line in listing.lines() {
        let mut fields = line.split_whitespace();
        let (Some(pod), restarts) = (fields.next(), fields.next()) else {
            continue;
        };
        section(
            &format!("controller log of {pod} (tail)"),
            kubectl_lossy(&["logs", "-n", ns, pod, "--tail=80"]),
        );
        if restarts.is_some_and(|count| count != "0") {
            section(
                &format!("controller log of {pod}, previous container (tail)"),
                kubectl_lossy(&["logs", "-n", ns, pod, "--previous", "--tail=40"]),
            );
        }
    }
}

/// A run the tests wait for: MyTaskRun or MyPipelineRun. Its kind name
/// comes from `Resource::kind`.
pub trait Run: Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Clone + Debug + DeserializeOwned {
    fn conditions(&self) -> &[Condition];
    fn results(&self) -> &[RunResult];

    /// (status, reason, message) of the run's Succeeded condition.
    fn condition(&self) -> Option<(String, String, String)> {
        let condition = self.conditions().iter().find(|c| c.type_ == "Succeeded")?;
        Some((
            condition.status.clone(),
            condition.reason.clone(),
            condition.message.clone(),
        ))
    }

    /// The run's result `name`, when it is a string.
    fn string_result(&self, name: &str) -> Option<String> {
        match &self.results().iter().find(|r| r.name == name)?.value {
            ParamValue::String(value) => Some(value.clone()),
            _ => None,
        }
    }
}

impl Run for MyTaskRun {
    fn conditions(&self) -> &[Condition] {
        self.status.as_ref().map_or(&[], |s| &s.conditions)
    }
    fn results(&self) -> &[RunResult] {
        self.status.as_ref().map_or(&[], |s| &s.results)
    }
}

impl Run for MyPipelineRun {
    fn conditions(&self) -> &[Condition] {
        self.status.as_ref().map_or(&[], |s| &s.conditions)
    }
    fn results(&self) -> &[RunResult] {
        self.status.as_ref().map_or(&[], |s| &s.results)
    }
}

/// The names of a pipeline run's child runs of `task` (of every task if
/// None), in the order its status lists them.
pub fn child_names(run: &MyPipelineRun, task: Option<&str>) -> Vec<String> {
    run.status
        .iter()
        .flat_map(|s| &s.child_references)
        .filter(|c| task.is_none_or(|task| c.pipeline_task_name == task))
        .map(|c| c.name.clone())
        .collect()
}

/// A namespace for one test, deleted when the test passes (kept, for a
/// look, when it fails).
pub struct TestNamespace {
    pub name: String,
    client: Client,
}

impl TestNamespace {
    /// Creates `name` afresh (deleting a leftover from an earlier run).
    pub async fn new(name: &str) -> Self {
        let name = name.to_string();
        let _ = kubectl_lossy(&["delete", "namespace", &name, "--wait=true", "--ignore-not-found"]);
        kubectl(&["create", "namespace", &name], None);
        // The default ServiceAccount appears shortly after the namespace.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !kubectl_lossy(&["get", "serviceaccount", "default", "-n", &name]).contains("default") {
            assert!(Instant::now() < deadline, "no default ServiceAccount in {name}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let client = Client::try_default().await.expect("kube client from KUBECONFIG");
        TestNamespace { name, client }
    }

    pub fn apply(&self, yaml: &str) {
        kubectl(&["apply", "-n", &self.name, "-f", "-"], Some(yaml));
    }

    /// Applies a file or a folder, given relative to the repository root.
    pub fn apply_file(&self, relative: &str) {
        let path = repo_root().join(relative);
        kubectl(&["apply", "-n", &self.name, "-f", &path.display().to_string()], None);
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// The run, which must exist.
    pub async fn get<K: Run>(&self, name: &str) -> K {
        self.api::<K>()
            .get(name)
            .await
            .unwrap_or_else(|error| panic!("{} {name}: {error}", K::kind(&())))
    }

    /// Everything a failing test should show: the runs, pods and their
    /// logs, deployments, events, and the controller's log.
    pub fn diagnostics(&self) -> String {
        let ns = self.name.as_str();
        let mut out = String::new();
        let mut section = |title: &str, text: String| out.push_str(&format!("\n===== {title} =====\n{text}"));
        section(
            "MyPipelineRuns",
            kubectl_lossy(&["get", "mypipelineruns", "-n", ns, "-o", "yaml"]),
        );
        section(
            "MyTaskRuns",
            kubectl_lossy(&["get", "mytaskruns", "-n", ns, "-o", "yaml"]),
        );
        section("pods", kubectl_lossy(&["get", "pods", "-n", ns, "-o", "wide"]));
        let pods = kubectl_lossy(&["get", "pods", "-n", ns, "-o", "jsonpath={.items[*].metadata.name}"]);
        for pod in pods.split_whitespace() {
            section(
                &format!("logs of {pod}"),
                kubectl_lossy(&["logs", "-n", ns, pod, "--all-containers", "--prefix", "--tail=40"]),
            );
        }
        section(
            "deployments",
            kubectl_lossy(&["get", "deployments", "-n", ns, "-o", "yaml"]),
        );
        section(
            "events",
            kubectl_lossy(&["get", "events", "-n", ns, "--sort-by=.lastTimestamp"]),
        );
        controller_diagnostics(&mut section);
        out
    }

    /// Waits until `check` holds for the run, or panics with diagnostics.
    pub async fn wait_until<K: Run>(&self, name: &str, limit: Duration, what: &str, check: impl Fn(&K) -> bool) -> K {
        let api = self.api::<K>();
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(current)) = api.get_opt(name).await
                && check(&current)
            {
                return current;
            }
            if Instant::now() > deadline {
                panic!(
                    "{} {name} did not reach {what} within {limit:?}{}",
                    K::kind(&()),
                    self.diagnostics()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the run's Succeeded condition is True or False.
    pub async fn wait_done<K: Run>(&self, name: &str, limit: Duration) -> K {
        self.wait_until(name, limit, "a final condition", |run: &K| {
            run.condition().is_some_and(|(status, _, _)| status != "Unknown")
        })
        .await
    }

    /// Waits until the run is done and asserts that it succeeded.
    pub async fn wait_succeeded<K: Run>(&self, name: &str, limit: Duration) -> K {
        let run = self.wait_done::<K>(name, limit).await;
        self.expect_condition(&run, "True", "Succeeded");
        run
    }

    /// Waits until the run is done and asserts that it failed with
    /// `reason`; the condition's message.
    pub async fn wait_failed<K: Run>(&self, name: &str, reason: &str, limit: Duration) -> String {
        let run = self.wait_done::<K>(name, limit).await;
        self.expect_condition(&run, "False", reason)
    }

    /// The message of the run's Succeeded condition, which must have this
    /// status and reason; panics with diagnostics otherwise.
    pub fn expect_condition<K: Run>(&self, run: &K, status: &str, reason: &str) -> String {
        match run.condition() {
            Some((s, r, message)) if s == status && r == reason => message,
            other => panic!(
                "{} {}: expected {status}/{reason}, got {other:?}{}",
                K::kind(&()),
                run.name_any(),
                self.diagnostics()
            ),
        }
    }

    pub fn passed(self) {
        let _ = kubectl_lossy(&["delete", "namespace", &self.name, "--wait=false"]);
    }
}
