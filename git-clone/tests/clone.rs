//! The real binary against real repositories: bare repositories made here
//! with the git CLI, reached through libgit2's local transport, through a
//! `git daemon` on 127.0.0.1, and through an OpenSSH sshd on 127.0.0.1 with
//! a config, port and host key of its own.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_cicd-git-clone");

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.invalid",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// A bare repository with history:
///   c1 (tag v1, annotated) - c2 - c3 = main (HEAD)
///   c1 - f1 = feature
struct Fixture {
    _dir: TempDir,
    bare: PathBuf,
    c1: String,
    c3: String,
    f1: String,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().join("work");
    fs::create_dir(&work).expect("mkdir");
    git(&work, &["init", "-q"]);
    let commit = |file: &str, text: &str| {
        fs::write(work.join(file), text).expect("write");
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", text]);
        git(&work, &["rev-parse", "HEAD"])
    };
    let c1 = commit("app.txt", "one");
    git(&work, &["tag", "-a", "v1", "-m", "release 1"]);
    git(&work, &["checkout", "-q", "-b", "feature"]);
    let f1 = commit("feature.txt", "feature");
    git(&work, &["checkout", "-q", "main"]);
    commit("app.txt", "two");
    let c3 = commit("app.txt", "three");
    let bare = dir.path().join("app.git");
    git(
        dir.path(),
        &["clone", "-q", "--bare", work.to_str().expect("utf-8 path"), "app.git"],
    );
    Fixture {
        _dir: dir,
        bare,
        c1,
        c3,
        f1,
    }
}

struct Run {
    output: Output,
    out_dir: TempDir,
}

impl Run {
    fn target(&self) -> PathBuf {
        self.out_dir.path().join("checkout")
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    fn commit_result(&self) -> String {
        fs::read_to_string(self.out_dir.path().join("commit")).unwrap_or_default()
    }
    fn assert_ok(&self) {
        assert!(self.output.status.success(), "clone failed:\n{}", self.stderr());
    }
    fn assert_failed_with(&self, parts: &[&str]) {
        assert!(
            !self.output.status.success(),
            "clone unexpectedly succeeded:\n{}",
            self.stderr()
        );
        for part in parts {
            assert!(
                self.stderr().contains(part),
                "stderr lacks {part:?}:\n{}",
                self.stderr()
            );
        }
    }
}

fn clone(url: &str, extra: &[&str]) -> Run {
    let out_dir = tempfile::tempdir().expect("tempdir");
    let target = out_dir.path().join("checkout");
    let commit = out_dir.path().join("commit");
    let url_result = out_dir.path().join("url");
    let output = Command::new(BIN)
        .args(["--url", url, "--output"])
        .arg(&target)
        .arg("--result-commit")
        .arg(&commit)
        .arg("--result-url")
        .arg(&url_result)
        .args(extra)
        .output()
        .expect("cicd-git-clone runs");
    Run { output, out_dir }
}

fn commits_in(dir: &Path) -> usize {
    git(dir, &["rev-list", "--count", "HEAD"]).parse().expect("a count")
}

#[test]
fn clones_branch_tag_sha_and_default_branch_locally() {
    let f = fixture();
    let url = f.bare.to_str().expect("utf-8 path");

    let run = clone(url, &["--revision", "main"]);
    run.assert_ok();
    assert_eq!(run.commit_result(), f.c3);
    assert_eq!(
        fs::read_to_string(run.target().join("app.txt")).expect("checked out"),
        "three"
    );
    assert_eq!(
        fs::read_to_string(run.out_dir.path().join("url")).expect("url result"),
        url
    );

    let run = clone(url, &["--revision", "v1"]);
    run.assert_ok();
    assert_eq!(run.commit_result(), f.c1, "an annotated tag is peeled to its commit");
    assert!(!run.target().join("feature.txt").exists());

    let run = clone(url, &["--revision", "feature"]);
    run.assert_ok();
    assert_eq!(run.commit_result(), f.f1);
    assert!(run.target().join("feature.txt").exists());

    let run = clone(url, &["--revision", &f.c1, "--depth", "1"]);
    run.assert_ok();
    assert_eq!(run.commit_result(), f.c1);
    assert_eq!(
        fs::read_to_string(run.target().join("app.txt")).expect("checked out"),
        "one"
    );

    let run = clone(url, &[]);
    run.assert_ok();
    assert_eq!(run.commit_result(), f.c3, "no revision: the remote's HEAD (main)");
}

#[test]
fn subdirectory_and_deleting_what_was_there() {
    let f = fixture();
    let url = f.bare.to_str().expect("utf-8 path");
    let out = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(out.path().join("src")).expect("mkdir");
    fs::write(out.path().join("src/stale.txt"), "old").expect("write");
    let status = Command::new(BIN)
        .args(["--url", url, "--revision", "main", "--subdirectory", "src", "--output"])
        .arg(out.path())
        .status()
        .expect("runs");
    assert!(status.success());
    assert!(out.path().join("src/app.txt").exists());
    assert!(
        !out.path().join("src/stale.txt").exists(),
        "deleteExisting defaults to true"
    );
}

/// `git daemon` on a free loopback port, exporting one directory; killed on drop.
struct GitDaemon {
    child: Child,
    port: u16,
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn wait_listening(port: u16, child: &mut Child, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited ({status}):\n{}",
                fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{what} not listening on {port}:\n{}",
            fs::read_to_string(log).unwrap_or_default()
        );
        sleep(Duration::from_millis(50));
    }
}

fn git_daemon(base: &Path) -> GitDaemon {
    let port = free_port();
    let log = base.join("daemon.log");
    let mut child = Command::new("git")
        .args(["daemon", "--reuseaddr", "--export-all", "--listen=127.0.0.1"])
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", base.display()))
        .arg(base)
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("git daemon starts");
    wait_listening(port, &mut child, "git daemon", &log);
    GitDaemon { child, port }
}

#[test]
fn shallow_clones_and_clear_errors_over_git_daemon() {
    let f = fixture();
    let base = f.bare.parent().expect("parent").to_path_buf();
    let daemon = git_daemon(&base);
    let url = format!("git://127.0.0.1:{}/app.git", daemon.port);

    let run = clone(&url, &["--revision", "main", "--depth", "1"]);
    run.assert_ok();
    assert_eq!(run.commit_result(), f.c3);
    assert_eq!(commits_in(&run.target()), 1, "depth 1 fetches one commit");
    assert!(run.target().join(".git/shallow").exists());

    let run = clone(&url, &["--revision", "main", "--depth", "2"]);
    run.assert_ok();
    assert_eq!(commits_in(&run.target()), 2);

    let run = clone(&url, &["--revision", "main", "--depth", "0"]);
    run.assert_ok();
    assert_eq!(commits_in(&run.target()), 3, "depth 0 is full history");

    let run = clone(&url, &["--revision", &f.f1]);
    run.assert_ok();
    assert_eq!(run.commit_result(), f.f1, "a commit id on a side branch");

    let run = clone(&url, &["--revision", "no-such-branch"]);
    run.assert_failed_with(&["\"no-such-branch\" not found", &url, "main", "v1"]);

    let missing = "0123456789012345678901234567890123456789";
    let run = clone(&url, &["--revision", missing]);
    run.assert_failed_with(&[missing, &url]);

    let unknown_repo = format!("git://127.0.0.1:{}/nothing.git", daemon.port);
    clone(&unknown_repo, &[]).assert_failed_with(&[&unknown_repo]);
}

#[test]
fn bad_urls_are_named() {
    clone("ftp://127.0.0.1/app.git", &[]).assert_failed_with(&["ftp://127.0.0.1/app.git"]);
    let closed = format!("git://127.0.0.1:{}/app.git", free_port());
    clone(&closed, &[]).assert_failed_with(&["cannot reach repository", &closed]);
    clone("/nonexistent/repo.git", &[]).assert_failed_with(&["/nonexistent/repo.git"]);
}

// ---- SSH -----------------------------------------------------------------

/// An OpenSSH sshd on a free loopback port with its own config and host
/// key, accepting one authorized key for the current user; killed on drop.
struct Sshd {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keygen(path: &Path) -> String {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "cicd-test", "-f"])
        .arg(path)
        .stdout(Stdio::null())
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success(), "ssh-keygen failed");
    fs::read_to_string(path.with_extension("pub")).expect("public key")
}

/// None (with the reason printed) when OpenSSH is not installed here;
/// hack/local-cluster/up installs it (openssh-server, openssh-client).
fn sshd() -> Option<Sshd> {
    let sshd_bin = Path::new("/usr/sbin/sshd");
    if !sshd_bin.exists() || Command::new("ssh-keygen").arg("-?").output().is_err() {
        eprintln!("SKIPPED: /usr/sbin/sshd or ssh-keygen missing (apt-get install openssh-server openssh-client)");
        return None;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    keygen(&d.join("host_key"));
    let client_pub = keygen(&d.join("client_key"));
    fs::write(d.join("authorized_keys"), client_pub).expect("authorized_keys");
    // sshd insists on its privilege separation directory.
    let _ = fs::create_dir_all("/run/sshd");
    let port = free_port();
    let config = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
         AuthorizedKeysFile {d}/authorized_keys\nPubkeyAuthentication yes\nPasswordAuthentication no\n\
         KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n",
        d = d.display()
    );
    fs::write(d.join("sshd_config"), config).expect("sshd_config");
    let log = d.join("sshd.log");
    let mut child = Command::new(sshd_bin)
        .args(["-D", "-e", "-f"])
        .arg(d.join("sshd_config"))
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).expect("log"))
        .spawn()
        .expect("sshd starts");
    wait_listening(port, &mut child, "sshd", &log);
    Some(Sshd { child, port, dir })
}

fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// An ssh-directory as the task mounts it from a Secret.
fn ssh_directory(key: &Path, known_hosts: &str) -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::copy(key, dir.path().join("id_ed25519")).expect("copy key");
    fs::write(dir.path().join("known_hosts"), known_hosts).expect("known_hosts");
    dir
}

#[test]
fn private_repository_over_ssh_with_key_and_known_hosts() {
    let Some(sshd) = sshd() else { return };
    let f = fixture();
    let url = format!("ssh://{}@127.0.0.1:{}{}", current_user(), sshd.port, f.bare.display());
    let host_pub = fs::read_to_string(sshd.dir.path().join("host_key.pub")).expect("host key");
    let known = format!("[127.0.0.1]:{} {host_pub}", sshd.port);
    let sshd_log = || fs::read_to_string(sshd.dir.path().join("sshd.log")).unwrap_or_default();

    let good = ssh_directory(&sshd.dir.path().join("client_key"), &known);
    let good_arg = good.path().to_str().expect("utf-8").to_string();
    let run = clone(&url, &["--revision", "v1", "--ssh-directory", &good_arg]);
    assert!(
        run.output.status.success(),
        "ssh clone failed:\n{}\nsshd log:\n{}",
        run.stderr(),
        sshd_log()
    );
    assert_eq!(run.commit_result(), f.c1);

    // Without credentials, with a key the server does not know, and with a
    // known_hosts that lists another key for this host.
    clone(&url, &["--revision", "main"]).assert_failed_with(&["authentication", &url, "no credentials"]);

    let stranger = tempfile::tempdir().expect("tempdir");
    keygen(&stranger.path().join("key"));
    let wrong_key = ssh_directory(&stranger.path().join("key"), &known);
    clone(&url, &["--ssh-directory", wrong_key.path().to_str().expect("utf-8")]).assert_failed_with(&[
        "authentication",
        &url,
        "refused",
    ]);

    let other_host_key = keygen(&stranger.path().join("other_host"));
    let spoofed = ssh_directory(
        &sshd.dir.path().join("client_key"),
        &format!("[127.0.0.1]:{} {other_host_key}", sshd.port),
    );
    clone(&url, &["--ssh-directory", spoofed.path().to_str().expect("utf-8")]).assert_failed_with(&[
        "host key",
        &url,
        "differs from known_hosts",
    ]);
}
