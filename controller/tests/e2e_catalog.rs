//! End-to-end tests of the task catalog (tasks/) and the pipelines
//! (pipelines/) on the real local cluster: a `git daemon` and an OpenSSH
//! sshd on 127.0.0.1 started by the test, the real git-clone, kaniko and
//! kubectl images, the local registry on 127.0.0.1:5000 and a Deployment
//! that ends up running the image the pipeline built.
//!
//! Ignored by default. With the cluster up and the operator installed
//! (`hack/install-operator`, which also builds the catalog images):
//! `cargo test -p cicd-controller --test e2e_catalog -- --ignored`.
//! Each test works in a namespace of its own.

mod support;

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cicd_controller::api::{MyPipelineRun, MyTaskRun};
use support::{Run, TestNamespace, kubectl, kubectl_lossy};

fn run(program: &str, args: &[&str], dir: &Path) -> String {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn git(dir: &Path, args: &[&str]) -> String {
    let mut all = vec![
        "-c",
        "init.defaultBranch=main",
        "-c",
        "user.name=e2e",
        "-c",
        "user.email=e2e@example.invalid",
    ];
    all.extend_from_slice(args);
    run("git", &all, dir)
}

/// The catalog tasks (with the deploy RBAC) and the pipelines, as shipped.
fn apply_catalog(ns: &TestNamespace) {
    ns.apply_file("tasks");
    ns.apply_file("pipelines");
}

/// A scratch directory removed on drop (the controller crate has no
/// tempfile dependency).
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let path = std::env::temp_dir().join(format!("cicd-e2e-catalog-{}", unique_marker()));
        fs::create_dir_all(&path).expect("scratch dir");
        TempDir(path)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A server process started by a test, killed (by its own pid) on drop.
struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(mut command: Command, port: u16, log: PathBuf, what: &str) -> Server {
        let child = command
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).expect("log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("{what} starts: {e}"));
        let mut server = Server { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("{what} exited ({status}):\n{}", server.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "{what} not listening on {port}:\n{}",
                server.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A tiny application in a bare repository `<dir>/app.git`: a shell script
/// and a Dockerfile built FROM the local bash image. `marker` goes into the
/// image so every test run pushes a new digest. Returns the main commit.
fn sample_app(dir: &Path, marker: &str) -> String {
    let work = dir.join("work");
    fs::create_dir_all(&work).expect("mkdir");
    fs::write(
        work.join("Dockerfile"),
        "FROM 127.0.0.1:5000/cicd/bash:5\n\
         COPY app.sh VERSION /app/\n\
         RUN chmod +x /app/app.sh && echo \"built by kaniko\" > /app/BUILT\n\
         CMD [\"/app/app.sh\"]\n",
    )
    .expect("Dockerfile");
    fs::write(
        work.join("app.sh"),
        "#!/bin/bash\necho \"sample app $(cat /app/VERSION)\"\nexec sleep 3600\n",
    )
    .expect("app.sh");
    fs::write(work.join("VERSION"), marker).expect("VERSION");
    git(&work, &["init", "-q"]);
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "sample app"]);
    let commit = git(&work, &["rev-parse", "HEAD"]);
    git(dir, &["clone", "-q", "--bare", "work", "app.git"]);
    commit
}

fn git_daemon(base: &Path) -> Server {
    let port = free_port();
    let command = support::git_daemon_command(base, port);
    Server::start(command, port, base.join("git-daemon.log"), "git daemon")
}

fn unique_marker() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("v{nanos}")
}

#[tokio::test]
#[ignore = "needs the local cluster, the operator and the catalog images"]
async fn clone_build_push_deploy_rolls_out_the_built_digest() {
    let ns = TestNamespace::new("e2e-cat-deploy").await;
    let dir = TempDir::new();
    let commit = sample_app(dir.path(), &unique_marker());
    let daemon = git_daemon(dir.path());
    apply_catalog(&ns);

    // The Deployment the pipeline updates: the plain bash image running sleep.
    ns.apply(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: sample-app}
spec:
  replicas: 1
  selector: {matchLabels: {app: sample-app}}
  template:
    metadata: {labels: {app: sample-app}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: app
          image: 127.0.0.1:5000/cicd/bash:5
          command: [sleep, "3600"]
"#,
    );
    let run_yaml = format!(
        r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyPipelineRun
metadata: {{name: deploy-run}}
spec:
  pipelineRef: clone-build-push-deploy
  serviceAccountName: cicd-deployer
  # The git daemon and the registry listen on the node's loopback.
  podTemplate: {{hostNetwork: true}}
  params:
    - {{name: git-url, value: "git://127.0.0.1:{port}/app.git"}}
    - {{name: git-revision, value: main}}
    - {{name: image, value: 127.0.0.1:5000/e2e-catalog/sample-app}}
    - {{name: deployment, value: sample-app}}
    - {{name: container, value: app}}
  workspaces:
    - name: source
      volumeClaimTemplate:
        spec:
          accessModes: [ReadWriteOnce]
          resources: {{requests: {{storage: 64Mi}}}}
"#,
        port = daemon.port
    );
    let started = Instant::now();
    ns.apply(&run_yaml);
    let done = ns
        .wait_done::<MyPipelineRun>("deploy-run", Duration::from_secs(600))
        .await;
    eprintln!(
        "clone-build-push-deploy finished in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    match done.condition() {
        Some((s, _, _)) if s == "True" => {}
        other => panic!(
            "run failed: {other:?}\ngit daemon log:\n{}{}",
            daemon.log_text(),
            ns.diagnostics()
        ),
    }
    let result = |name: &str| done.string_result(name).unwrap_or_default();
    assert_eq!(result("commit"), commit, "the pipeline reports the cloned commit");
    let image_url = result("image-url");
    let digest = result("image-digest");
    assert!(
        image_url.starts_with(&format!("127.0.0.1:5000/e2e-catalog/sample-app:{commit}-")),
        "image-url {image_url:?} follows <base>:<commit>-<date>-<random>"
    );
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "digest {digest:?}");

    // The registry serves exactly that manifest.
    let manifest = Command::new("curl")
        .args([
            "-sf",
            "-o",
            "/dev/null",
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json",
        ])
        .args(["-H", "Accept: application/vnd.docker.distribution.manifest.v2+json"])
        .arg(format!(
            "http://127.0.0.1:5000/v2/e2e-catalog/sample-app/manifests/{digest}"
        ))
        .status()
        .expect("curl runs");
    assert!(manifest.success(), "registry has no manifest {digest}");

    // The Deployment points at the digest and a ready pod runs it.
    let image = kubectl(
        &[
            "get",
            "deployment",
            "sample-app",
            "-n",
            &ns.name,
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ],
        None,
    );
    assert_eq!(image, format!("{image_url}@{digest}"));
    // The old pod may still be Running for a moment while it stops: the
    // pod to look into is the ready one running the digest.
    let deadline = Instant::now() + Duration::from_secs(60);
    let pod = loop {
        let pods = kubectl(
            &[
                "get",
                "pods",
                "-n",
                &ns.name,
                "-l",
                "app=sample-app",
                "-o",
                "jsonpath={range .items[*]}{.status.containerStatuses[0].ready} {.status.containerStatuses[0].imageID} {.metadata.name}{\"\\n\"}{end}",
            ],
            None,
        );
        let running_digest = pods
            .lines()
            .find(|l| l.starts_with("true ") && l.contains(&digest))
            .and_then(|l| l.split_whitespace().nth(2));
        if let Some(name) = running_digest {
            break name.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no ready pod runs {digest}: {pods}{}",
            ns.diagnostics()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    // The built image holds what the Dockerfile's RUN wrote.
    let built = kubectl(&["exec", "-n", &ns.name, &pod, "--", "cat", "/app/BUILT"], None);
    assert_eq!(built.trim(), "built by kaniko");
    ns.passed();
}

#[tokio::test]
#[ignore = "needs the local cluster, the operator and the catalog images"]
async fn clone_build_push_without_deploy_pushes_from_a_tag() {
    let ns = TestNamespace::new("e2e-cat-push").await;
    let dir = TempDir::new();
    sample_app(dir.path(), &unique_marker());
    let work = dir.path().join("work");
    git(&work, &["tag", "-a", "v1.0", "-m", "release"]);
    git(&work, &["push", "-q", "../app.git", "v1.0"]);
    let daemon = git_daemon(dir.path());
    apply_catalog(&ns);
    ns.apply(&format!(
        r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyPipelineRun
metadata: {{name: push-run}}
spec:
  pipelineRef: clone-build-push
  podTemplate: {{hostNetwork: true}}
  params:
    - {{name: git-url, value: "git://127.0.0.1:{port}/app.git"}}
    - {{name: git-revision, value: v1.0}}
    - {{name: image, value: 127.0.0.1:5000/e2e-catalog/pushed}}
  workspaces:
    - name: source
      volumeClaimTemplate:
        spec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 64Mi}}}}}}
"#,
        port = daemon.port
    ));
    let started = Instant::now();
    let done = ns
        .wait_done::<MyPipelineRun>("push-run", Duration::from_secs(600))
        .await;
    eprintln!("clone-build-push finished in {:.0}s", started.elapsed().as_secs_f64());
    match done.condition() {
        Some((s, _, _)) if s == "True" => {}
        other => panic!("run failed: {other:?}{}", ns.diagnostics()),
    }
    let digest = done.string_result("image-digest");
    assert!(digest.is_some_and(|d| d.starts_with("sha256:")), "{:?}", done.results());
    ns.passed();
}

// ---- a private repository over SSH ------------------------------------------

/// OpenSSH sshd on a free loopback port with a config, host key and
/// authorized key of its own. None (reason printed) when not installed;
/// hack/local-cluster/up installs openssh-server and openssh-client.
fn sshd(dir: &Path) -> Option<Server> {
    let sshd_bin = Path::new("/usr/sbin/sshd");
    if !sshd_bin.exists() || Command::new("ssh-keygen").arg("-?").output().is_err() {
        eprintln!("SKIPPED: /usr/sbin/sshd or ssh-keygen missing (apt-get install openssh-server openssh-client)");
        return None;
    }
    for key in ["host_key", "client_key", "stranger_key"] {
        run(
            "ssh-keygen",
            &["-q", "-t", "ed25519", "-N", "", "-C", "cicd-e2e", "-f", key],
            dir,
        );
    }
    fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).expect("authorized_keys");
    // sshd insists on its privilege separation directory.
    let _ = fs::create_dir_all("/run/sshd");
    let port = free_port();
    let config = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
         AuthorizedKeysFile {d}/authorized_keys\nPubkeyAuthentication yes\nPasswordAuthentication no\n\
         KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n",
        d = dir.display()
    );
    fs::write(dir.join("sshd_config"), config).expect("sshd_config");
    let mut command = Command::new(sshd_bin);
    command.args(["-D", "-e", "-f"]).arg(dir.join("sshd_config"));
    Some(Server::start(command, port, dir.join("sshd.log"), "sshd"))
}

/// A Secret for the ssh-directory workspace, as a user would make it.
fn ssh_secret(name: &str, key: &Path, known_hosts: &str) -> String {
    let key_text = fs::read_to_string(key).expect("private key");
    let indent = |text: &str| text.lines().map(|l| format!("    {l}\n")).collect::<String>();
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}}}\ntype: Opaque\nstringData:\n  id_ed25519: |\n{}  known_hosts: |\n{}",
        indent(&key_text),
        indent(known_hosts)
    )
}

fn clone_run(name: &str, url: &str, secret: &str) -> String {
    format!(
        r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTaskRun
metadata: {{name: {name}}}
spec:
  taskRef: git-clone
  podTemplate: {{hostNetwork: true}}
  params:
    - {{name: url, value: "{url}"}}
    - {{name: revision, value: main}}
  workspaces:
    - {{name: output, emptyDir: {{}}}}
    - {{name: ssh-directory, secret: {{secretName: {secret}}}}}
"#
    )
}

#[tokio::test]
#[ignore = "needs the local cluster, the operator and the catalog images"]
async fn git_clone_reads_a_private_repository_over_ssh() {
    let dir = TempDir::new();
    let Some(sshd) = sshd(dir.path()) else { return };
    let ns = TestNamespace::new("e2e-cat-ssh").await;
    let repo = dir.path().join("repo");
    fs::create_dir_all(&repo).expect("mkdir");
    let commit = sample_app(&repo, "private");
    let user = run("id", &["-un"], dir.path());
    let url = format!("ssh://{user}@127.0.0.1:{}{}", sshd.port, repo.join("app.git").display());
    let host_key = fs::read_to_string(dir.path().join("host_key.pub")).expect("host key");
    let known_hosts = format!("[127.0.0.1]:{} {}", sshd.port, host_key.trim());
    ns.apply_file("tasks/git-clone.yaml");
    ns.apply(&ssh_secret("git-ssh", &dir.path().join("client_key"), &known_hosts));
    ns.apply(&ssh_secret(
        "git-ssh-stranger",
        &dir.path().join("stranger_key"),
        &known_hosts,
    ));
    ns.apply(&clone_run("private-clone", &url, "git-ssh"));
    ns.apply(&clone_run("stranger-clone", &url, "git-ssh-stranger"));

    let done = ns
        .wait_done::<MyTaskRun>("private-clone", Duration::from_secs(180))
        .await;
    match done.condition() {
        Some((s, _, _)) if s == "True" => {}
        other => panic!(
            "private clone failed: {other:?}\nsshd log:\n{}{}",
            sshd.log_text(),
            ns.diagnostics()
        ),
    }
    assert_eq!(done.string_result("commit").as_deref(), Some(commit.as_str()));

    // A key the server does not accept fails, and the log says why.
    let done = ns
        .wait_done::<MyTaskRun>("stranger-clone", Duration::from_secs(180))
        .await;
    let status = done.status.clone().unwrap_or_default();
    assert!(
        matches!(done.condition(), Some((s, _, _)) if s == "False"),
        "{}",
        ns.diagnostics()
    );
    let pod = status.pod_name.clone().unwrap_or_default();
    let log = kubectl_lossy(&["logs", "-n", &ns.name, &pod, "-c", "step-clone"]);
    assert!(
        log.contains("authentication to") && log.contains(&url),
        "log: {log}{}",
        ns.diagnostics()
    );
    ns.passed();
}
