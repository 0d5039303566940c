//! End-to-end tests of the `cicd` binary and its dashboard on the real
//! local cluster: the binary is run as a user runs it (KUBECONFIG from
//! hack/local-cluster/env.sh), the dashboard is driven in Debian's headless
//! chromium through chromedriver (WebDriver, via fantoccini).
//!
//! Ignored by default; hack/e2e runs them with the operator installed:
//! `cargo test -p cicd-cli --test e2e_cli -- --ignored`. Each test works in
//! a namespace of its own. Screenshots go to target/e2e-screenshots/.

#[path = "../../controller/tests/support/mod.rs"]
mod support;

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cicd_controller::api::{MyPipelineRun, MyTaskRun};
use fantoccini::{Client, ClientBuilder, Locator};
use support::{BASH, Run, TestNamespace};

const CICD: &str = env!("CARGO_BIN_EXE_cicd");

/// Runs `cicd ARGS` to its end.
fn cicd(args: &[&str]) -> Output {
    Command::new(CICD)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cicd {args:?}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The first line index holding `needle`, or a panic showing the output.
fn line_of(output: &str, needle: &str) -> usize {
    output
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{output}"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn wait_listening(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited early: {status}");
        }
        assert!(Instant::now() < deadline, "{what} is not listening on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A process this test started, killed by its own pid on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!("cicd-e2e-cli-{tag}-{nanos}"));
        fs::create_dir_all(&path).expect("scratch dir");
        Scratch(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "user.name=e2e",
            "-c",
            "user.email=e2e@example.invalid",
        ])
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?}");
}

/// A bare repository `<dir>/app.git` with a Dockerfile FROM the local bash
/// image, served by `git daemon` on a free loopback port.
fn serve_sample_app(dir: &Path) -> (Process, u16) {
    let work = dir.join("work");
    fs::create_dir_all(&work).expect("mkdir");
    fs::write(work.join("Dockerfile"), format!("FROM {BASH}\nCOPY VERSION /VERSION\n")).expect("Dockerfile");
    fs::write(work.join("VERSION"), format!("{:?}", Instant::now())).expect("VERSION");
    git(&work, &["init", "-q"]);
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "app"]);
    git(dir, &["clone", "-q", "--bare", "work", "app.git"]);
    let port = free_port();
    let mut child = support::git_daemon_command(dir, port)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("git daemon starts");
    wait_listening(port, &mut child, "git daemon");
    (Process(child), port)
}

#[tokio::test]
#[ignore = "needs the local cluster, the operator and the catalog images"]
async fn cli_start_follow_clone_build_push_prints_every_task_in_order() {
    let ns = TestNamespace::new("e2e-cli-cbp").await;
    let dir = Scratch::new("cbp");
    let (_daemon, port) = serve_sample_app(&dir.0);
    ns.apply_file("tasks");
    ns.apply_file("pipelines");
    ns.apply(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: source}\n\
         spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 64Mi}}}\n",
    );
    let url = format!("git-url=git://127.0.0.1:{port}/app.git");
    let started = Instant::now();
    let out = cicd(&[
        "-n",
        &ns.name,
        "start",
        "pipeline",
        "clone-build-push",
        "-p",
        &url,
        "-p",
        "image=127.0.0.1:5000/e2e-cli/app",
        "-w",
        "source=pvc:source",
        "--host-network",
        "--follow",
    ]);
    let stdout = text(&out.stdout);
    eprintln!("cicd start --follow took {:.0}s", started.elapsed().as_secs_f64());
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{}{}",
        out.status.code(),
        text(&out.stderr),
        ns.diagnostics()
    );
    assert!(
        stdout
            .lines()
            .next()
            .is_some_and(|l| l.starts_with("PipelineRun clone-build-push-run-")),
        "{stdout}"
    );
    let clone = line_of(&stdout, "[clone/clone] ");
    let tag = line_of(
        &stdout,
        "[tag/generate-image-tag] IMAGE_URL 127.0.0.1:5000/e2e-cli/app:",
    );
    let build = line_of(&stdout, "[build-push/build-and-push] ");
    assert!(clone < tag && tag < build, "tasks out of DAG order:\n{stdout}");
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("PipelineRun clone-build-push-run-") && last.ends_with("Succeeded"),
        "{last}"
    );
    // Colour only on a terminal: our prefixes and the outcome line are plain
    // when piped (the tools' own output, e.g. kaniko's, may carry colours).
    assert!(
        stdout.lines().all(|l| !l.starts_with('\x1b')) && !last.contains('\x1b'),
        "escape codes in our piped output:\n{stdout:?}"
    );

    let listed = text(&cicd(&["-n", &ns.name, "ls"]).stdout);
    assert!(
        listed
            .lines()
            .any(|l| l.contains("clone-build-push-run-") && l.contains("Succeeded")),
        "{listed}"
    );
    ns.passed();
}

const FAILING_TASK: &str = r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTask
metadata: {name: breaks}
spec:
  params:
    - {name: what}
    - {name: how, default: loudly}
  steps:
    - name: prepare
      image: 127.0.0.1:5000/cicd/bash:5
      script: echo "preparing $(params.what)"
    - name: boom
      image: 127.0.0.1:5000/cicd/bash:5
      script: |
        echo "about to fail $(params.how)"
        exit 3
"#;

#[tokio::test]
#[ignore = "needs the local cluster and the operator"]
async fn cli_failing_run_exits_non_zero_and_bad_input_is_explained() {
    let ns = TestNamespace::new("e2e-cli-fail").await;
    ns.apply(FAILING_TASK);
    let out = cicd(&[
        "-n",
        &ns.name,
        "start",
        "task",
        "breaks",
        "-p",
        "what=things",
        "--follow",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{}",
        text(&out.stderr)
    );
    let prepare = line_of(&stdout, "[breaks/prepare] preparing things");
    let boom = line_of(&stdout, "[breaks/boom] about to fail loudly");
    assert!(prepare < boom, "{stdout}");
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.contains(" Failed") && last.contains("boom"),
        "the last line names the failure: {last}"
    );
    let name = stdout
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .expect("created line")
        .to_string();

    let described = text(&cicd(&["-n", &ns.name, "describe", &name]).stdout);
    assert!(described.starts_with("FAILED: "), "failure first:\n{described}");
    assert!(
        described
            .lines()
            .any(|l| l.trim_start().starts_with("boom") && l.contains(" 3 ")),
        "{described}"
    );

    // Bad input: every message names what is wrong.
    let unknown = cicd(&["-n", &ns.name, "start", "task", "nope"]);
    assert!(!unknown.status.success());
    assert!(
        text(&unknown.stderr).contains("unknown task \"nope\""),
        "{}",
        text(&unknown.stderr)
    );
    assert!(
        text(&unknown.stderr).contains("breaks"),
        "lists the tasks there: {}",
        text(&unknown.stderr)
    );
    let missing = text(&cicd(&["-n", &ns.name, "start", "task", "breaks"]).stderr);
    assert!(missing.contains("missing required param \"what\""), "{missing}");
    assert!(missing.contains("declares params: what, how (optional)"), "{missing}");
    let malformed = text(&cicd(&["-n", &ns.name, "start", "task", "breaks", "-p", "what"]).stderr);
    assert!(malformed.contains("-p \"what\": expected KEY=VALUE"), "{malformed}");
    let bad_ws = text(
        &cicd(&[
            "-n",
            &ns.name,
            "start",
            "task",
            "breaks",
            "-p",
            "what=x",
            "-w",
            "src=nfs:x",
        ])
        .stderr,
    );
    assert!(bad_ws.contains("unknown source \"nfs\""), "{bad_ws}");
    let no_run = text(&cicd(&["-n", &ns.name, "logs", "no-such-run"]).stderr);
    assert!(no_run.contains("no run named \"no-such-run\""), "{no_run}");
    ns.passed();
}

#[tokio::test]
#[ignore = "needs the local cluster and the operator"]
async fn cli_logs_follow_shows_both_attempts_of_a_retried_run() {
    let ns = TestNamespace::new("e2e-cli-retry").await;
    ns.apply(
        r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTaskRun
metadata: {name: flaky}
spec:
  retries: 1
  taskSpec:
    steps:
      - name: try
        image: 127.0.0.1:5000/cicd/bash:5
        script: |
          echo "trying on $(hostname)"
          sleep 1
          exit 1
"#,
    );
    let out = cicd(&["-n", &ns.name, "logs", "-f", "flaky"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{}", text(&out.stderr));
    let first = line_of(&stdout, "[flaky/try] trying on flaky-pod");
    let header = line_of(&stdout, "[flaky] attempt 2 (pod flaky-pod-retry1)");
    let second = line_of(&stdout, "[flaky/try] trying on flaky-pod-retry1");
    assert!(first < header && header < second, "{stdout}");
    let done = ns.wait_done::<MyTaskRun>("flaky", Duration::from_secs(30)).await;
    assert_eq!(done.condition().map(|c| c.0), Some("False".to_string()));
    ns.passed();
}

// ---- the dashboard in a real browser ---------------------------------------

/// A pipeline whose states change while the test watches: `first` makes a
/// result, `ticker` (runAfter first) prints a line a second until
/// cancelled, `uses-result` reads the result, `report` is a finally task.
const LIVE_PIPELINE_RUN: &str = r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyPipelineRun
metadata: {name: live-run}
spec:
  pipelineSpec:
    tasks:
      - name: first
        taskSpec:
          results: [{name: out}]
          steps:
            - name: make
              image: 127.0.0.1:5000/cicd/bash:5
              script: |
                sleep 2
                echo -n hello | tee $(results.out.path)
      - name: ticker
        runAfter: [first]
        taskSpec:
          steps:
            - name: tick
              image: 127.0.0.1:5000/cicd/bash:5
              script: |
                for i in $(seq 1 300); do echo "tick $i"; sleep 1; done
      - name: uses-result
        params: [{name: v, value: "$(tasks.first.results.out)"}]
        taskSpec:
          params: [{name: v}]
          steps:
            - name: show
              image: 127.0.0.1:5000/cicd/bash:5
              script: echo "got $(params.v)"
    finally:
      - name: report
        params: [{name: first, value: "$(tasks.first.results.out)"}]
        taskSpec:
          params: [{name: first}]
          steps:
            - name: say
              image: 127.0.0.1:5000/cicd/bash:5
              script: echo "done after $(params.first)"
"#;

/// Every (edge, node) pair where the edge's line runs inside a node it does
/// not connect, sampled at 100 points per edge.
const EDGE_CROSSINGS_JS: &str = r#"
const nodes = [...document.querySelectorAll('#dag g.node')].map((g) => {
  const r = g.querySelector('rect').getBBox();
  const m = g.transform.baseVal.consolidate().matrix;
  return { name: g.dataset.task, x: m.e + r.x, y: m.f + r.y, w: r.width, h: r.height };
});
const hits = new Set();
for (const p of document.querySelectorAll('#dag path.edge')) {
  const length = p.getTotalLength();
  for (let i = 0; i <= 100; i++) {
    const at = p.getPointAtLength((length * i) / 100);
    for (const n of nodes) {
      if (n.name === p.dataset.from || n.name === p.dataset.to) continue;
      if (at.x > n.x && at.x < n.x + n.w && at.y > n.y && at.y < n.y + n.h) {
        hits.add(`${p.dataset.from}>${p.dataset.to} crosses ${n.name}`);
      }
    }
  }
}
return [...hits].sort();
"#;

fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/e2e-screenshots");
    fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

async fn screenshot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.expect("screenshot");
    let path = screenshot_dir().join(format!("{name}.png"));
    fs::write(&path, png).expect("write screenshot");
    eprintln!("screenshot: {}", path.display());
}

/// Polls `script` (JavaScript returning a value) until `check` holds.
async fn wait_js(
    browser: &Client,
    script: &str,
    what: &str,
    limit: Duration,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + limit;
    loop {
        let value = browser.execute(script, vec![]).await.unwrap_or(serde_json::Value::Null);
        if check(&value) {
            return value;
        }
        if Instant::now() > deadline {
            let _ = screenshot(browser, &format!("timeout-{}", what.replace(' ', "-"))).await;
            panic!("{what}: still {value} after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn chromium(port: u16) -> Client {
    let profile = std::env::temp_dir().join(format!("cicd-e2e-chromium-{port}"));
    let capabilities = serde_json::json!({
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ]
        }
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("chromedriver session")
}

#[tokio::test]
#[ignore = "needs the local cluster, the operator, chromium and chromium-driver"]
async fn cli_dashboard_in_a_real_browser_lists_live_draws_the_dag_streams_logs_and_cancels() {
    let ns = TestNamespace::new("e2e-cli-dash").await;
    let dash_port = free_port();
    let mut dashboard = Command::new(CICD)
        .args(["-n", &ns.name, "dashboard", "--port", &dash_port.to_string()])
        .stdout(Stdio::null())
        .spawn()
        .expect("cicd dashboard starts");
    wait_listening(dash_port, &mut dashboard, "cicd dashboard");
    let _dashboard = Process(dashboard);
    let driver_port = free_port();
    let mut driver = Command::new("chromedriver")
        .arg(format!("--port={driver_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts (apt-get install chromium-driver)");
    wait_listening(driver_port, &mut driver, "chromedriver");
    let _driver = Process(driver);
    let browser = chromium(driver_port).await;
    let base = format!("http://127.0.0.1:{dash_port}");

    // The list is open before the run exists; a marker shows it never reloads.
    browser.goto(&format!("{base}/")).await.expect("open list");
    wait_js(
        &browser,
        "return document.getElementById('live').textContent",
        "watch ready",
        Duration::from_secs(20),
        |v| v == "live",
    )
    .await;
    browser
        .execute("window.__notReloaded = true; return 1", vec![])
        .await
        .expect("marker");
    ns.apply(LIVE_PIPELINE_RUN);
    wait_js(
        &browser,
        "return !!document.querySelector('tr.run[data-name=\"live-run\"]') && window.__notReloaded === true",
        "run listed without reload",
        Duration::from_secs(20),
        |v| v == true,
    )
    .await;
    screenshot(&browser, "01-runs-list").await;

    browser
        .find(Locator::Css("tr.run[data-name=\"live-run\"] a"))
        .await
        .expect("run link")
        .click()
        .await
        .expect("open run");
    wait_js(
        &browser,
        "return document.querySelectorAll('#dag g.node').length",
        "DAG drawn",
        Duration::from_secs(20),
        |v| v == 4,
    )
    .await;
    let edges = browser
        .execute("return Array.from(document.querySelectorAll('#dag path.edge')).map(e => e.dataset.from + '>' + e.dataset.to + ':' + e.classList[1]).sort()", vec![])
        .await
        .expect("edges");
    assert_eq!(
        edges,
        serde_json::json!([
            "first>report:results",
            "first>ticker:runAfter",
            "first>uses-result:results"
        ])
    );
    // No edge passes over a node it does not connect (first>report skips
    // the ticker's column).
    let crossings = browser
        .execute(EDGE_CROSSINGS_JS, vec![])
        .await
        .expect("edge crossings");
    assert_eq!(crossings, serde_json::json!([]), "edges drawn across nodes");
    let finally = browser
        .execute(
            "return document.querySelector('#dag g.node[data-task=\"report\"]').classList.contains('finally')",
            vec![],
        )
        .await
        .expect("finally mark");
    assert_eq!(finally, true, "the finally task is marked");
    browser
        .execute("window.__notReloaded = true; return 1", vec![])
        .await
        .expect("marker");

    // States change live on the same page.
    let node_state =
        |task: &str| format!("return document.querySelector('#dag g.node[data-task=\"{task}\"]')?.dataset.state");
    wait_js(
        &browser,
        &node_state("first"),
        "first succeeds",
        Duration::from_secs(90),
        |v| v == "Succeeded",
    )
    .await;
    wait_js(
        &browser,
        &node_state("ticker"),
        "ticker runs",
        Duration::from_secs(90),
        |v| v == "Running",
    )
    .await;
    wait_js(
        &browser,
        "return window.__notReloaded === true",
        "no reload",
        Duration::from_secs(1),
        |v| v == true,
    )
    .await;

    // The ticker's log streams into the page.
    wait_js(
        &browser,
        "return !!document.querySelector('button.open-log[data-label=\"ticker/tick\"][data-pod]:not([data-pod=\"\"])')",
        "ticker's log button",
        Duration::from_secs(60),
        |v| v == true,
    )
    .await;
    browser
        .find(Locator::Css("button.open-log[data-label=\"ticker/tick\"]"))
        .await
        .expect("log button")
        .click()
        .await
        .expect("open log");
    let log = "return document.querySelector('pre.log[data-label=\"ticker/tick\"]')?.textContent || ''";
    wait_js(&browser, log, "tick 2 streamed", Duration::from_secs(60), |v| {
        v.as_str().is_some_and(|t| t.contains("tick 2\n"))
    })
    .await;
    let later = wait_js(&browser, log, "more ticks streamed", Duration::from_secs(30), |v| {
        v.as_str().is_some_and(|t| t.contains("tick 5\n"))
    })
    .await;
    assert!(later.as_str().is_some_and(|t| t.starts_with("tick 1\n")), "{later}");
    screenshot(&browser, "02-run-page").await;
    fs::create_dir_all(Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/e2e-screenshots")).ok();

    // Cancel from the page; the run ends Cancelled, shown live.
    browser
        .find(Locator::Id("cancel"))
        .await
        .expect("cancel button")
        .click()
        .await
        .expect("cancel");
    wait_js(
        &browser,
        "return document.getElementById('action-result').textContent",
        "cancel acknowledged",
        Duration::from_secs(10),
        |v| v.as_str().is_some_and(|t| t.contains("cancelled")),
    )
    .await;
    let done = ns.wait_done::<MyPipelineRun>("live-run", Duration::from_secs(60)).await;
    assert_eq!(
        done.condition().map(|c| (c.0, c.1)),
        Some(("False".to_string(), "PipelineRunCancelled".to_string()))
    );
    wait_js(
        &browser,
        "return document.getElementById('run-status').textContent",
        "cancelled shown",
        Duration::from_secs(20),
        |v| {
            v.as_str()
                .is_some_and(|t| t.contains("Failed") && t.contains("Cancelled"))
        },
    )
    .await;
    wait_js(
        &browser,
        "return window.__notReloaded === true",
        "no reload",
        Duration::from_secs(1),
        |v| v == true,
    )
    .await;
    screenshot(&browser, "03-cancelled").await;

    // Rerun from the page: a new run with the same spec, linked from the page.
    browser
        .find(Locator::Id("rerun"))
        .await
        .expect("rerun button")
        .click()
        .await
        .expect("rerun");
    let started = wait_js(
        &browser,
        "return document.getElementById('rerun-link')?.textContent || ''",
        "rerun link",
        Duration::from_secs(10),
        |v| v.as_str().is_some_and(|t| t.contains("open ")),
    )
    .await;
    let rerun = started
        .as_str()
        .and_then(|t| t.trim().strip_prefix("open "))
        .expect("the new run's name")
        .to_string();
    let created: MyPipelineRun = ns.get(&rerun).await;
    assert_eq!(
        created.spec.pipeline_spec, done.spec.pipeline_spec,
        "the rerun has the same pipeline"
    );

    // The list filters by status and by name, without a reload.
    browser.goto(&format!("{base}/")).await.expect("open list");
    let rows = "return Array.from(document.querySelectorAll('tr.run')).map(r => r.dataset.name).sort()";
    wait_js(&browser, rows, "both runs listed", Duration::from_secs(20), |v| {
        v.as_array().is_some_and(|names| names.len() == 2)
    })
    .await;
    browser
        .execute(
            "const s = document.getElementById('f-status'); s.value = 'Failed'; \
             s.dispatchEvent(new Event('input')); return 1",
            vec![],
        )
        .await
        .expect("filter by status");
    wait_js(&browser, rows, "only the cancelled run", Duration::from_secs(10), |v| {
        *v == serde_json::json!(["live-run"])
    })
    .await;
    browser
        .execute(
            &format!(
                "const s = document.getElementById('f-status'); s.value = ''; \
                 const n = document.getElementById('f-name'); n.value = '{}'; \
                 n.dispatchEvent(new Event('input')); return 1",
                &rerun[rerun.len() - 5..]
            ),
            vec![],
        )
        .await
        .expect("filter by name");
    wait_js(&browser, rows, "only the rerun", Duration::from_secs(10), |v| {
        *v == serde_json::json!([rerun])
    })
    .await;
    screenshot(&browser, "04-filtered").await;
    let _ = browser.close().await;
    ns.passed();
}

/// A namespace reader: may look at runs, pods, logs and events, nothing else.
const VIEWER_RBAC: &str = r#"
apiVersion: v1
kind: ServiceAccount
metadata: {name: viewer}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: viewer}
rules:
  - apiGroups: [cicdoperator.ning1875.io]
    resources: [mytaskruns, mypipelineruns, mytasks, mypipelines]
    verbs: [get, list, watch]
  - apiGroups: [""]
    resources: [pods, pods/log, events]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: viewer}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: viewer}
subjects: [{kind: ServiceAccount, name: viewer}]
"#;

/// A kubeconfig that acts as `viewer` of `namespace` (a short-lived token).
fn viewer_kubeconfig(namespace: &str, dir: &Path) -> PathBuf {
    let token = support::kubectl(&["-n", namespace, "create", "token", "viewer", "--duration=10m"], None);
    let ca = support::kubectl(
        &[
            "config",
            "view",
            "--raw",
            "--minify",
            "-o",
            "jsonpath={.clusters[0].cluster.certificate-authority-data}",
        ],
        None,
    );
    let server = support::kubectl(
        &[
            "config",
            "view",
            "--minify",
            "-o",
            "jsonpath={.clusters[0].cluster.server}",
        ],
        None,
    );
    let path = dir.join("viewer.kubeconfig");
    let config = format!(
        "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: \"{}\", certificate-authority-data: {}}}}}]\n\
         users: [{{name: viewer, user: {{token: {}}}}}]\n\
         contexts: [{{name: viewer, context: {{cluster: c, user: viewer, namespace: {namespace}}}}}]\n\
         current-context: viewer\n",
        server.trim(),
        ca.trim(),
        token.trim()
    );
    fs::write(&path, config).expect("write viewer kubeconfig");
    path
}

/// One HTTP/1.1 request to the dashboard on loopback; gives (status, body).
fn http(port: u16, method: &str, path: &str, headers: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the dashboard");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response}"));
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
    (status, body)
}

#[tokio::test]
#[ignore = "needs the local cluster and the operator"]
async fn cli_and_dashboard_act_with_the_user_s_own_rbac() {
    let ns = TestNamespace::new("e2e-cli-rbac").await;
    let dir = Scratch::new("rbac");
    ns.apply(VIEWER_RBAC);
    ns.apply(&format!(
        "apiVersion: cicdoperator.ning1875.io/v1\nkind: MyTaskRun\nmetadata: {{name: long}}\n\
         spec:\n  taskSpec:\n    steps: [{{name: wait, image: {BASH}, script: 'sleep 60'}}]\n"
    ));
    let kubeconfig = viewer_kubeconfig(&ns.name, &dir.0);
    let as_viewer = |args: &[&str]| {
        Command::new(CICD)
            .args(args)
            .env("KUBECONFIG", &kubeconfig)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cicd {args:?}: {e}"))
    };

    // Reading is allowed ...
    let listed = as_viewer(&["ls"]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    assert!(text(&listed.stdout).contains("long"), "{}", text(&listed.stdout));
    // ... acting is refused, naming the verb and the resource.
    let cancel = as_viewer(&["cancel", "long"]);
    let stderr = text(&cancel.stderr);
    assert!(!cancel.status.success(), "a viewer cancelled a run");
    assert!(
        stderr.contains("permission denied: you cannot patch mytaskruns"),
        "{stderr}"
    );
    let start = as_viewer(&["start", "task", "anything"]);
    assert!(!start.status.success());

    // The dashboard has no rights of its own: the same refusal over HTTP.
    let port = free_port();
    let mut dashboard = Command::new(CICD)
        .args(["dashboard", "--port", &port.to_string()])
        .env("KUBECONFIG", &kubeconfig)
        .stdout(Stdio::null())
        .spawn()
        .expect("cicd dashboard starts");
    wait_listening(port, &mut dashboard, "cicd dashboard");
    let _dashboard = Process(dashboard);
    let cancel_path = format!("/api/run/{}/TaskRun/long/cancel", ns.name);
    let (status, body) = http(port, "POST", &cancel_path, "x-cicd-dashboard: 1\r\n");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("patch") && body.contains("mytaskruns"), "{body}");
    let (status, body) = http(port, "POST", &cancel_path, "");
    assert_eq!(status, 403, "an action without the dashboard's header: {body}");
    let (status, _) = http(port, "GET", &format!("/api/run/{}/TaskRun/long", ns.name), "");
    assert_eq!(status, 200, "a viewer can read the run");

    let run: MyTaskRun = ns.get("long").await;
    assert!(
        run.spec.status.is_none(),
        "the run was not cancelled: {:?}",
        run.spec.status
    );
    ns.passed();
}
