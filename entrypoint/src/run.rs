//! `step`: wait for the previous step, run the command, report.
//!
//! Exit codes (the container's, and `exitCode` in the report unless noted):
//! - the command's own code; 0 on success
//! - 128+N when the command was killed by signal N
//! - 124 when `--timeout` expired (like timeout(1))
//! - 1 when skipped because an earlier step failed
//! - 125 for errors of the entrypoint itself (bad flags, I/O)
//! - 126 command found but not executable, 127 command not found
//! - with `--on-error continue` the container exits 0 whenever the command
//!   ran and failed; the report still has the real code and outcome.
//!
//! If the command succeeded but its results do not fit in the termination
//! message, the step fails: the container exits 1, the report says Failed
//! with the command's real exit code (0) and no results.

use std::ffi::OsString;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cicd_entrypoint::termination::{self, EncodeError, FORMAT_VERSION, Outcome, StepReport};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal, killpg};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::args::{OnError, StepArgs};
use crate::fsutil::{err_path, truncate_utf8, write_atomic, write_in_place};
use crate::results::{ResultsError, Snapshot};
use crate::wait::{self, Waited};

pub const EXIT_SKIPPED: i32 = 1;
pub const EXIT_TIMEOUT: i32 = 124;
pub const EXIT_ENTRYPOINT_ERROR: i32 = 125;
pub const EXIT_CANNOT_EXECUTE: i32 = 126;
pub const EXIT_NOT_FOUND: i32 = 127;
/// Time between SIGTERM and SIGKILL when a step times out.
const KILL_GRACE: Duration = Duration::from_secs(2);
/// Keep room in the 4096-byte report for results.
const MAX_MESSAGE_BYTES: usize = 1024;

/// Signals we handle through a signalfd. They stay blocked in this process
/// (std resets the mask in the child before exec).
fn handled_signals() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    set.add(Signal::SIGCHLD);
    set
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// What the step ended as, before it is written out.
struct Ending {
    outcome: Outcome,
    /// For the report.
    exit_code: i32,
    /// For the container; differs from `exit_code` only when the command
    /// succeeded but the step failed anyway (results too large).
    process_exit: i32,
    started_at_ms: Option<i64>,
    finished_at_ms: Option<i64>,
    /// Human explanation for the report and stderr.
    message: Option<String>,
    /// Short reason for the `.err` marker.
    reason: String,
    /// Whether the command itself ran and failed (so onError applies).
    command_failed: bool,
    results: std::collections::BTreeMap<String, String>,
}

impl Ending {
    fn entrypoint_error(exit_code: i32, message: String) -> Ending {
        let now = now_ms();
        Ending {
            outcome: Outcome::Failed,
            exit_code,
            process_exit: exit_code,
            started_at_ms: Some(now),
            finished_at_ms: Some(now),
            reason: message.clone(),
            message: Some(message),
            command_failed: false,
            results: Default::default(),
        }
    }
}

pub fn step(args: &StepArgs) -> i32 {
    let ending = run_step(args);
    finish(&args.post_file, &args.termination_path, args.on_error, ending)
}

fn run_step(args: &StepArgs) -> Ending {
    let mask = handled_signals();
    let signals = match mask
        .thread_block()
        .and_then(|()| SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC))
    {
        Ok(fd) => fd,
        Err(e) => {
            return Ending::entrypoint_error(EXIT_ENTRYPOINT_ERROR, format!("cannot set up signal handling: {e}"));
        }
    };
    // Orphaned grandchildren get re-parented to us so we can reap them
    // (in a container we are PID 1 and get them anyway).
    let _ = nix::sys::prctl::set_child_subreaper(true);

    if let Some(wait_file) = &args.wait_file {
        match wait::wait_for(wait_file, args.wait_nonempty, &signals) {
            Waited::Ready => {}
            Waited::PreviousFailed(reason) => {
                return Ending {
                    outcome: Outcome::Skipped,
                    exit_code: EXIT_SKIPPED,
                    process_exit: EXIT_SKIPPED,
                    started_at_ms: None,
                    finished_at_ms: None,
                    message: Some(format!("skipped: a previous step failed ({reason})")),
                    // Pass the root cause down the chain unchanged.
                    reason,
                    command_failed: false,
                    results: Default::default(),
                };
            }
            Waited::Interrupted(sig) => {
                let code = 128 + sig as i32;
                let message = format!(
                    "received {} while waiting for {}; the command was not started",
                    sig.as_str(),
                    wait_file.display()
                );
                return Ending {
                    outcome: Outcome::Signaled,
                    exit_code: code,
                    process_exit: code,
                    started_at_ms: None,
                    finished_at_ms: None,
                    reason: message.clone(),
                    message: Some(message),
                    command_failed: false,
                    results: Default::default(),
                };
            }
        }
    }

    let snapshot = Snapshot::take(&args.results_dir, &args.results);
    let started_at_ms = now_ms();
    let child = match spawn(&args.command) {
        Ok(child) => child,
        Err(e) => {
            let (code, what) = match e.kind() {
                io::ErrorKind::NotFound => (EXIT_NOT_FOUND, "command not found"),
                io::ErrorKind::PermissionDenied => (EXIT_CANNOT_EXECUTE, "permission denied"),
                _ => (EXIT_CANNOT_EXECUTE, "cannot execute"),
            };
            let message = format!("{what}: {}: {e}", args.command[0].to_string_lossy());
            let mut ending = Ending::entrypoint_error(code, message);
            ending.started_at_ms = Some(started_at_ms);
            // The command "ran" as far as onError is concerned, like a
            // shell's 127.
            ending.command_failed = true;
            return ending;
        }
    };

    let timeout = args.timeout.as_ref().map(|(d, _)| *d);
    let ended = supervise(child, timeout, &signals);
    let finished_at_ms = now_ms();

    let (outcome, exit_code, mut message, reason) = match (ended.timed_out, ended.status) {
        (true, status) => {
            let text = args.timeout.as_ref().map_or("", |(_, t)| t.as_str());
            let how = match status {
                Exit::Code(c) => format!("it exited with code {c}"),
                Exit::Signal(s) => format!("it was killed by {}", signal_name(s)),
            };
            let msg = format!("timed out after {text}; {how}");
            (
                Outcome::TimedOut,
                EXIT_TIMEOUT,
                Some(msg),
                format!("timed out after {text}"),
            )
        }
        (false, Exit::Code(0)) => (Outcome::Succeeded, 0, None, String::new()),
        (false, Exit::Code(c)) => (Outcome::Failed, c, None, format!("exit code {c}")),
        (false, Exit::Signal(s)) => {
            let msg = format!("killed by {}", signal_name(s));
            (Outcome::Signaled, 128 + s, Some(msg.clone()), msg)
        }
    };
    if let Some(sig) = ended.forwarded {
        let note = format!("received {}; forwarded it to the command", sig.as_str());
        message = Some(match message {
            Some(m) => format!("{m}; {note}"),
            None => note,
        });
    }

    let mut ending = Ending {
        outcome,
        exit_code,
        process_exit: exit_code,
        started_at_ms: Some(started_at_ms),
        finished_at_ms: Some(finished_at_ms),
        message,
        reason,
        command_failed: outcome != Outcome::Succeeded,
        results: Default::default(),
    };
    match snapshot.changed() {
        Ok(results) => ending.results = results,
        Err(e) => fail_on_results(&mut ending, &e),
    }
    ending
}

/// A results problem fails the step (unless it already failed).
fn fail_on_results(ending: &mut Ending, error: &ResultsError) {
    let text = error.to_string();
    ending.results.clear();
    ending.message = Some(match ending.message.take() {
        Some(m) => format!("{m}; {text}"),
        None => text.clone(),
    });
    if ending.outcome == Outcome::Succeeded {
        ending.outcome = Outcome::Failed;
        ending.process_exit = 1;
        ending.reason = text;
    }
    ending.command_failed = true;
}

/// Writes the report and the post file, returns the container's exit code.
fn finish(post_file: &Path, termination_path: &Path, on_error: OnError, mut ending: Ending) -> i32 {
    let encoded = match termination::encode(&to_report(&ending)) {
        // Results too large: the step fails and reports no results.
        Err(e @ EncodeError::TooLarge { .. }) if !ending.results.is_empty() => {
            fail_on_results(&mut ending, &ResultsError::TooLarge(e));
            termination::encode(&to_report(&ending))
        }
        other => other,
    };
    if let Some(m) = ending.message.as_ref().filter(|_| ending.outcome != Outcome::Succeeded) {
        warn!("{m}");
    }
    let mut exit = ending.process_exit;
    match encoded {
        Ok(text) => {
            if let Err(e) = write_in_place(termination_path, text.as_bytes()) {
                warn!(
                    "cannot write the termination message to {}: {e}",
                    termination_path.display()
                );
                exit = EXIT_ENTRYPOINT_ERROR;
                ending.command_failed = false;
                ending.reason = format!("cannot write {}", termination_path.display());
                if ending.outcome == Outcome::Succeeded {
                    ending.outcome = Outcome::Failed;
                }
            }
        }
        Err(e) => {
            warn!("cannot encode the step report: {e}");
            exit = EXIT_ENTRYPOINT_ERROR;
            ending.command_failed = false;
            ending.outcome = Outcome::Failed;
            ending.reason = e.to_string();
        }
    }

    let continue_anyway = on_error == OnError::Continue && ending.command_failed;
    if ending.outcome == Outcome::Succeeded || continue_anyway {
        if let Err(e) = write_atomic(post_file, b"", 0o644) {
            warn!("cannot write {}: {e}", post_file.display());
            return EXIT_ENTRYPOINT_ERROR;
        }
        return if continue_anyway { 0 } else { exit };
    }
    write_err_marker(post_file, &marker_content(post_file, &ending));
    exit
}

fn to_report(ending: &Ending) -> StepReport {
    StepReport {
        version: FORMAT_VERSION,
        outcome: ending.outcome,
        exit_code: ending.exit_code,
        started_at_ms: ending.started_at_ms,
        finished_at_ms: ending.finished_at_ms,
        message: ending.message.clone().map(|m| truncate_utf8(m, MAX_MESSAGE_BYTES)),
        results: ending.results.clone(),
    }
}

/// `<post-file>.err` tells later steps not to run. Its content is the root
/// cause ("<post-file>: <reason>"), which skipped steps pass on unchanged
/// so every Skipped report names the step that actually failed.
fn write_err_marker(post_file: &Path, content: &str) {
    let path = err_path(post_file);
    if let Err(e) = write_atomic(&path, content.as_bytes(), 0o644) {
        warn!("cannot write {}: {e}", path.display());
    }
}

fn marker_content(post_file: &Path, ending: &Ending) -> String {
    if ending.outcome == Outcome::Skipped {
        ending.reason.clone()
    } else {
        format!("{}: {}", post_file.display(), ending.reason)
    }
}

/// Writes a Failed report and `.err` for an error before the step could run
/// (bad flags), where the paths are known.
pub fn fail_early(post_file: Option<&Path>, termination_path: Option<&Path>, message: &str) {
    let ending = Ending::entrypoint_error(EXIT_ENTRYPOINT_ERROR, message.to_string());
    if let (Some(t), Ok(text)) = (termination_path, termination::encode(&to_report(&ending)))
        && let Err(e) = write_in_place(t, text.as_bytes())
    {
        warn!("cannot write {}: {e}", t.display());
    }
    if let Some(p) = post_file {
        write_err_marker(p, &marker_content(p, &ending));
    }
}

fn spawn(command: &[OsString]) -> io::Result<u32> {
    let (program, rest) = command
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
    let child = Command::new(program)
        .args(rest)
        .stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        // Own process group, so a timeout or a forwarded signal reaches
        // everything the command started, not just the command.
        .process_group(0)
        .spawn()?;
    // We reap with waitpid(-1) ourselves (orphans too), so std's Child is
    // not used for waiting.
    Ok(child.id())
}

enum Exit {
    Code(i32),
    Signal(i32),
}

struct Ended {
    status: Exit,
    timed_out: bool,
    forwarded: Option<Signal>,
}

fn signal_name(signo: i32) -> String {
    Signal::try_from(signo).map_or_else(|_| format!("signal {signo}"), |s| s.as_str().to_string())
}

fn supervise(pid: u32, timeout: Option<Duration>, signals: &SignalFd) -> Ended {
    let pid = Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX));
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut kill_at: Option<Instant> = None;
    let mut timed_out = false;
    let mut forwarded = None;
    let status = loop {
        if let Some(status) = reap(pid) {
            break status;
        }
        let now = Instant::now();
        if !timed_out && deadline.is_some_and(|d| now >= d) {
            timed_out = true;
            let _ = killpg(pid, Signal::SIGTERM);
            kill_at = Some(now + KILL_GRACE);
        }
        if kill_at.is_some_and(|k| now >= k) {
            let _ = killpg(pid, Signal::SIGKILL);
            kill_at = None;
        }
        let next = [deadline.filter(|_| !timed_out), kill_at].into_iter().flatten().min();
        let wait = next.map_or(PollTimeout::NONE, |t| {
            // Round up so we do not wake a hair early and spin.
            let ms = t.saturating_duration_since(now).as_millis() + 1;
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
        });
        let mut fds = [PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, wait) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
        while let Ok(Some(info)) = signals.read_signal() {
            if let Ok(sig @ (Signal::SIGTERM | Signal::SIGINT)) = Signal::try_from(info.ssi_signo as i32) {
                let _ = killpg(pid, sig);
                forwarded = Some(sig);
            }
        }
    };
    // Like a container whose PID 1 exits: nothing the step started outlives
    // it (background jobs left in its process group are killed).
    let _ = killpg(pid, Signal::SIGKILL);
    reap_leftovers(signals);
    Ended {
        status,
        timed_out,
        forwarded,
    }
}

/// Reaps every exited child; returns the command's status once it is seen.
fn reap(pid: Pid) -> Option<Exit> {
    let mut found = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
            Ok(WaitStatus::Exited(p, code)) if p == pid => found = Some(Exit::Code(code)),
            Ok(WaitStatus::Signaled(p, sig, _)) if p == pid => found = Some(Exit::Signal(sig as i32)),
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => break,
        }
    }
    found
}

/// Gives just-killed group members a moment to die so we can reap them,
/// without waiting on daemons that left the group.
fn reap_leftovers(signals: &SignalFd) {
    let until = Instant::now() + Duration::from_millis(100);
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Err(Errno::ECHILD) => return,
            Ok(WaitStatus::StillAlive) => {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return;
                }
                let ms = u16::try_from(left.as_millis() + 1).unwrap_or(u16::MAX);
                let mut fds = [PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
                let _ = poll(&mut fds, PollTimeout::from(ms));
                while let Ok(Some(_)) = signals.read_signal() {}
            }
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}
