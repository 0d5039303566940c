//! Process-level tests of `cicd-entrypoint hold`, the sidecar wrapper: the
//! real binary and real signals.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const LIMIT: Duration = Duration::from_secs(20);

fn hold(script: &str, dir: &TempDir) -> Command {
    let mut command = Command::new(BIN);
    command.arg("hold").arg("--").args(sh(script)).env("D", dir.path());
    command
}

fn terminate(child: &std::process::Child) {
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("a pid"));
    kill(pid, Signal::SIGTERM).expect("send SIGTERM");
}

#[test]
fn a_command_that_ends_at_once_leaves_its_container_up_until_sigterm() {
    let dir = TempDir::new("hold-early");
    let mut child = spawn_quiet(hold("echo ready > \"$D/message\"; exit 3", &dir));
    eventually(LIMIT, "the sidecar's file", || dir.path().join("message").exists());
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "still up after its command ended"
    );
    terminate(&child);
    assert_eq!(code(wait_with_limit(&mut child, LIMIT)), 3, "the command's exit code");
}

#[test]
fn sigterm_reaches_a_command_still_running() {
    let dir = TempDir::new("hold-running");
    let script = "trap 'echo stopped > \"$D/stopped\"; exit 0' TERM; touch \"$D/up\"; while :; do sleep 0.05; done";
    let mut child = spawn_quiet(hold(script, &dir));
    eventually(LIMIT, "the sidecar to start", || dir.path().join("up").exists());
    terminate(&child);
    assert_eq!(code(wait_with_limit(&mut child, LIMIT)), 0);
    assert!(dir.path().join("stopped").exists(), "the command saw SIGTERM");
}

#[test]
fn a_command_that_cannot_run_still_holds_and_exits_127() {
    let dir = TempDir::new("hold-missing");
    let mut child = spawn_quiet({
        let mut command = Command::new(BIN);
        command.args(["hold", "--", "/nonexistent/sidecar"]);
        command
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(child.try_wait().expect("try_wait").is_none(), "held");
    terminate(&child);
    assert_eq!(code(wait_with_limit(&mut child, LIMIT)), 127);
    drop(dir);
}
