//! Helpers for the process-level tests: temp trees, step command lines,
//! reading reports back with the same decoder the controller uses.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use cicd_entrypoint::frame;
use cicd_entrypoint::termination::{self, StepReport};

pub const BIN: &str = env!("CARGO_BIN_EXE_cicd-entrypoint");

/// A unique directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "cicd-ep-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The layout a MyTaskRun pod uses, under one root.
pub struct Pod {
    pub dir: TempDir,
}

impl Pod {
    pub fn new(tag: &str) -> Pod {
        let pod = Pod { dir: TempDir::new(tag) };
        std::fs::create_dir_all(pod.results()).expect("results dir");
        pod
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn post(&self, i: usize) -> PathBuf {
        self.root().join(format!("run/{i}/out"))
    }

    pub fn post_err(&self, i: usize) -> PathBuf {
        self.root().join(format!("run/{i}/out.err"))
    }

    pub fn term(&self, i: usize) -> PathBuf {
        self.root().join(format!("term/{i}"))
    }

    pub fn results(&self) -> PathBuf {
        self.root().join("results")
    }

    /// `cicd-entrypoint step` for step `i`, waiting on step `i-1`.
    pub fn step(&self, i: usize, flags: &[&str], cmd: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("step");
        if i > 0 {
            c.arg("--wait-file").arg(self.post(i - 1));
        }
        c.arg("--post-file")
            .arg(self.post(i))
            .arg("--termination-path")
            .arg(self.term(i))
            .arg("--results-dir")
            .arg(self.results())
            .args(flags)
            .arg("--")
            .args(cmd);
        c.env("D", self.root());
        c
    }

    pub fn report(&self, i: usize) -> StepReport {
        let text = std::fs::read_to_string(self.term(i))
            .unwrap_or_else(|e| panic!("step {i} wrote no termination message: {e}"));
        termination::decode(&text).unwrap_or_else(|e| panic!("step {i} report {text:?}: {e}"))
    }
}

/// The results step `i` printed on stdout, read back as the controller does:
/// the frame its report names, out of the captured output.
pub fn results_of(out: &Output, report: &StepReport) -> BTreeMap<String, String> {
    frame_of(out, report).results
}

/// Everything the frame step `i` printed carries (task and step results).
pub fn frame_of(out: &Output, report: &StepReport) -> frame::FrameValues {
    let Some(frame_ref) = &report.frame else {
        return frame::FrameValues::default();
    };
    let log = String::from_utf8_lossy(&out.stdout);
    frame::decode(&log, frame_ref).unwrap_or_else(|e| panic!("frame {frame_ref:?}: {e}\n{log}"))
}

/// `sh -c SCRIPT` as a command vector.
pub fn sh(script: &str) -> Vec<&str> {
    vec!["/bin/sh", "-c", script]
}

pub fn output(mut cmd: Command) -> Output {
    cmd.stdin(Stdio::null()).output().expect("run cicd-entrypoint")
}

pub fn spawn_quiet(mut cmd: Command) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cicd-entrypoint")
}

/// Waits for a child, killing it and failing the test after `limit`.
pub fn wait_with_limit(child: &mut Child, limit: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process {} still running after {limit:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until `cond` holds or panics after `limit`.
pub fn eventually(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// True if `pid` no longer runs (gone, or a zombie waiting to be reaped).
pub fn pid_is_dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // "pid (comm) S ..." : the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

pub fn code(status: ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| panic!("killed by a signal: {status:?}"))
}
