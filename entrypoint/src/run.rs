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
//! If the command succeeded but a result is over its limit, the step fails:
//! the container exits 1, the report says Failed with the command's real
//! exit code (0), names the result in `tooLarge` and has no results.
//!
//! Results are printed to stdout as a frame (see `frame`), after every
//! process the command left behind is killed, and the report names the
//! frame; so nothing the step started can change either once they are read.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use core::time::Duration;

use crate::args::{OnError, StepArgs};
use crate::credentials;
use crate::frame::{self, FrameRef};
use crate::fsutil::{err_path, parent_dir, write_atomic, write_in_place};
use crate::os::{OsString, Path};
use crate::results::{self, Limits, ResultsError, Snapshot};
use crate::step_results;
use crate::sys::{self, Fd, Instant, IoError, PollFd, SigSet, Waited as Reaped};
use crate::termination::{self, FORMAT_VERSION, Outcome, StepReport, TooLarge};
use crate::wait::{self, Waited};

pub const EXIT_SKIPPED: i32 = 1;
pub const EXIT_TIMEOUT: i32 = 124;
pub const EXIT_ENTRYPOINT_ERROR: i32 = 125;
pub const EXIT_CANNOT_EXECUTE: i32 = 126;
pub const EXIT_NOT_FOUND: i32 = 127;
/// Time between SIGTERM and SIGKILL when a step times out.
const KILL_GRACE: Duration = Duration::from_secs(2);
/// How long to go on killing what the command left behind.
const STRAY_KILL_LIMIT: Duration = Duration::from_secs(2);

/// Signals we handle through a signalfd. They stay blocked in this process
/// (sys::spawn resets the mask in the child before exec).
fn handled_signals() -> SigSet {
    let mut set = SigSet::default();
    set.add(sys::SIGTERM);
    set.add(sys::SIGINT);
    set.add(sys::SIGCHLD);
    set
}

pub fn now_ms() -> i64 {
    i64::try_from(sys::realtime().as_millis()).unwrap_or(i64::MAX)
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
    results: BTreeMap<String, String>,
    /// This step's own step results, for its frame.
    step_results: BTreeMap<String, String>,
    /// The result over a limit, when that failed the step.
    too_large: Option<TooLarge>,
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
            step_results: Default::default(),
            too_large: None,
        }
    }
}

pub fn step(args: &StepArgs, env: &[OsString]) -> i32 {
    let ending = run_step(args, env);
    finish(
        &Outputs {
            post_file: &args.post_file,
            termination_path: &args.termination_path,
            report_limit: args.max_report_bytes,
        },
        args.on_error,
        ending,
    )
}

/// Where a step's ending is written.
struct Outputs<'a> {
    post_file: &'a Path,
    termination_path: &'a Path,
    /// The report's termination-message budget.
    report_limit: usize,
}

fn run_step(args: &StepArgs, env: &[OsString]) -> Ending {
    let mask = handled_signals();
    let signals = match sys::block_signals(&mask).and_then(|()| sys::signalfd(&mask)) {
        Ok(fd) => fd,
        Err(e) => {
            return Ending::entrypoint_error(EXIT_ENTRYPOINT_ERROR, format!("cannot set up signal handling: {e}"));
        }
    };
    // Orphaned grandchildren get re-parented to us so we can reap them
    // (in a container we are PID 1 and get them anyway).
    sys::set_child_subreaper();

    if let Some(wait_file) = &args.wait_file {
        match wait::wait_for(wait_file, args.wait_nonempty, &signals, env) {
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
                    step_results: Default::default(),
                    too_large: None,
                };
            }
            Waited::Interrupted(sig) => {
                let code = 128 + sig;
                let message = format!(
                    "received {} while waiting for {}; the command was not started",
                    signal_name(sig),
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
                    step_results: Default::default(),
                    too_large: None,
                };
            }
        }
    }

    // After the wait: a step that is skipped writes nothing.
    if let Err(e) = crate::init::lay_out(&args.setup) {
        return Ending::entrypoint_error(EXIT_ENTRYPOINT_ERROR, format!("setting up the step: {e}"));
    }
    let limits = Limits {
        max_result_bytes: args.max_result_bytes,
        max_results_bytes: args.max_results_bytes,
    };
    if let Some(previous) = &args.results_from {
        results::copy_previous(previous, &args.results_dir, &args.results, limits);
    }
    if let Some(home) = &args.credentials_home
        && let Err(e) = credentials::write(home, &args.credentials)
    {
        return Ending::entrypoint_error(EXIT_ENTRYPOINT_ERROR, format!("credentials: {e}"));
    }
    let snapshot = Snapshot::take(&args.results_dir, &args.results, limits);
    let started_at_ms = now_ms();
    let (command, env) = match step_results::expand(&args.step_result_refs, &args.command, env, args.max_result_bytes) {
        Ok(expanded) => expanded,
        Err(message) => return Ending::entrypoint_error(EXIT_ENTRYPOINT_ERROR, message),
    };
    let child = match sys::spawn(&command, &env) {
        Ok(child) => child,
        Err(e) => {
            let (code, what) = match e {
                IoError::Os(sys::ENOENT) => (EXIT_NOT_FOUND, "command not found"),
                IoError::Os(sys::EACCES | sys::EPERM) => (EXIT_CANNOT_EXECUTE, "permission denied"),
                _ => (EXIT_CANNOT_EXECUTE, "cannot execute"),
            };
            let message = format!("{what}: {}: {e}", command[0].to_string_lossy());
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
    kill_strays(&signals);

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
        let note = format!("received {}; forwarded it to the command", signal_name(sig));
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
        step_results: Default::default(),
        too_large: None,
    };
    let promoted = step_results::promote(&args.results_from_step, &args.results_dir, limits);
    let collected = promoted
        .and_then(|()| snapshot.changed())
        .and_then(|results| Ok((results, step_results::collect(&args.step_results, limits)?)));
    match collected {
        Ok((results, own)) => {
            ending.results = results;
            ending.step_results = own;
        }
        Err(e) => fail_on_results(&mut ending, &e),
    }
    ending
}

/// A results problem fails the step (unless it already failed).
fn fail_on_results(ending: &mut Ending, error: &ResultsError) {
    let text = error.to_string();
    ending.results.clear();
    ending.step_results.clear();
    if let ResultsError::TooLarge(too_large) = error {
        ending.too_large = Some(too_large.clone());
    }
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

/// Prints the results frame, writes the report and the post file, returns
/// the container's exit code.
fn finish(out: &Outputs<'_>, on_error: OnError, mut ending: Ending) -> i32 {
    if let Some(m) = ending.message.as_ref().filter(|_| ending.outcome != Outcome::Succeeded) {
        warn!("{m}");
    }
    // Last on stdout, after any warning, so the controller finds it at the
    // end of the log.
    let frame = match print_frame(&ending) {
        Ok(frame) => frame,
        Err(e) => {
            let text = format!("cannot print the results to stdout: {e}");
            warn!("{text}");
            ending.results.clear();
            ending.step_results.clear();
            ending.message = Some(text.clone());
            if ending.outcome == Outcome::Succeeded {
                ending.outcome = Outcome::Failed;
                ending.process_exit = 1;
                ending.reason = text;
            }
            None
        }
    };
    let mut exit = ending.process_exit;
    match termination::encode(&to_report(&ending, frame), out.report_limit) {
        Ok(text) => {
            if let Err(e) = write_in_place(out.termination_path, text.as_bytes()) {
                warn!(
                    "cannot write the termination message to {}: {e}",
                    out.termination_path.display()
                );
                exit = EXIT_ENTRYPOINT_ERROR;
                ending.command_failed = false;
                ending.reason = format!("cannot write {}", out.termination_path.display());
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

    let post_file = out.post_file;
    // Only a command that was started has an exit code (not a skipped step).
    if ending.started_at_ms.is_some() {
        write_exit_code(post_file, ending.exit_code);
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

/// Writes the command's exit code beside the post file, before it, so the
/// next step (woken by the post file) can read it. A failure only warns:
/// the step's outcome does not depend on it.
fn write_exit_code(post_file: &Path, exit_code: i32) {
    let path = parent_dir(post_file).join(termination::EXIT_CODE_FILE);
    if let Err(e) = write_atomic(&path, exit_code.to_string().as_bytes(), 0o644) {
        warn!("cannot write {}: {e}", path.display());
    }
}

/// Prints the full report with its results as a frame on stdout; None
/// when there are no results.
fn print_frame(ending: &Ending) -> Result<Option<FrameRef>, IoError> {
    if ending.results.is_empty() && ending.step_results.is_empty() {
        return Ok(None);
    }
    let mut full = to_report(ending, None);
    full.results = ending.results.clone();
    full.step_results = ending.step_results.clone();
    let (text, frame) = frame::encode(&frame::payload(&full));
    sys::write_all(1, text.as_bytes())?;
    Ok(Some(frame))
}

fn to_report(ending: &Ending, frame: Option<FrameRef>) -> StepReport {
    StepReport {
        version: FORMAT_VERSION,
        outcome: ending.outcome,
        exit_code: ending.exit_code,
        started_at_ms: ending.started_at_ms,
        finished_at_ms: ending.finished_at_ms,
        // `encode` shortens it to the report's budget.
        message: ending.message.clone(),
        results: BTreeMap::new(),
        step_results: BTreeMap::new(),
        frame,
        too_large: ending.too_large.clone(),
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
    // The budget flag may be what was wrong: assume the smallest.
    let report = termination::encode(&to_report(&ending, None), termination::MIN_REPORT_BYTES);
    if let (Some(t), Ok(text)) = (termination_path, report)
        && let Err(e) = write_in_place(t, text.as_bytes())
    {
        warn!("cannot write {}: {e}", t.display());
    }
    if let Some(p) = post_file {
        write_err_marker(p, &marker_content(p, &ending));
    }
}

enum Exit {
    Code(i32),
    Signal(i32),
}

struct Ended {
    status: Exit,
    timed_out: bool,
    forwarded: Option<i32>,
}

/// Signal names as nix printed them ("SIGTERM"), or "signal N". One
/// string rather than a table of 31 slices: half the bytes in the binary.
fn signal_name(signo: i32) -> String {
    const NAMES: &str = "HUP INT QUIT ILL TRAP ABRT BUS FPE KILL USR1 SEGV USR2 PIPE ALRM TERM STKFLT \
                         CHLD CONT STOP TSTP TTIN TTOU URG XCPU XFSZ VTALRM PROF WINCH IO PWR SYS";
    usize::try_from(signo - 1)
        .ok()
        .and_then(|i| NAMES.split_ascii_whitespace().nth(i))
        .map_or_else(|| format!("signal {signo}"), |s| format!("SIG{s}"))
}

/// `hold`: runs a sidecar's command as a step runs its own (signals
/// forwarded to its process group) but, if the command ends by itself,
/// keeps the container up until the kubelet stops it (SIGTERM once the
/// steps are done), then exits with the command's code. A native sidecar
/// whose container exits is restarted with a growing back-off, and until it
/// has been seen running the kubelet starts no step: a sidecar that only
/// writes a file and exits could hold the pod in `PodInitializing` for good.
pub fn hold(command: &[OsString], env: &[OsString]) -> i32 {
    let mask = handled_signals();
    let signals = match sys::block_signals(&mask).and_then(|()| sys::signalfd(&mask)) {
        Ok(fd) => fd,
        Err(e) => {
            warn!("hold: cannot set up signal handling: {e}");
            return EXIT_ENTRYPOINT_ERROR;
        }
    };
    sys::set_child_subreaper();
    let program = command
        .first()
        .map(|c| c.to_string_lossy().to_string())
        .unwrap_or_default();
    let code = match sys::spawn(command, env) {
        Ok(child) => {
            let ended = supervise(child, None, &signals);
            let code = match ended.status {
                Exit::Code(c) => c,
                Exit::Signal(s) => 128 + s,
            };
            if ended.forwarded.is_some() {
                kill_strays(&signals);
                return code;
            }
            warn!(
                "the sidecar's command {program} ended (exit code {code}); its container stays up until the steps are done"
            );
            code
        }
        Err(e) => {
            warn!("the sidecar's command {program} cannot run: {e}; its container stays up until the steps are done");
            EXIT_NOT_FOUND
        }
    };
    wait_for_stop(&signals);
    kill_strays(&signals);
    code
}

/// Waits for SIGTERM or SIGINT, reaping whatever the command left behind.
fn wait_for_stop(signals: &Fd) {
    loop {
        wait::reap_orphans();
        match poll_signals(signals, -1) {
            Ok(_) | Err(IoError::Os(sys::EINTR)) => {}
            Err(_) => sys::sleep(Duration::from_millis(100)),
        }
        while let Some(sig) = sys::read_signal(signals) {
            if sig == sys::SIGTERM || sig == sys::SIGINT {
                return;
            }
        }
    }
}

fn poll_signals(signals: &Fd, timeout_ms: i32) -> Result<usize, IoError> {
    let mut fds = [PollFd {
        fd: signals.raw(),
        events: sys::POLLIN,
        revents: 0,
    }];
    sys::poll(&mut fds, timeout_ms)
}

fn supervise(pid: i32, timeout: Option<Duration>, signals: &Fd) -> Ended {
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
            let _ = sys::kill(-pid, sys::SIGTERM);
            kill_at = Some(now + KILL_GRACE);
        }
        if kill_at.is_some_and(|k| now >= k) {
            let _ = sys::kill(-pid, sys::SIGKILL);
            kill_at = None;
        }
        let next = [deadline.filter(|_| !timed_out), kill_at].into_iter().flatten().min();
        let wait = next.map_or(-1, |t| {
            // Round up so we do not wake a hair early and spin.
            sys::timeout_ms(t.saturating_duration_since(now).as_millis() + 1)
        });
        match poll_signals(signals, wait) {
            Ok(_) | Err(IoError::Os(sys::EINTR)) => {}
            Err(_) => sys::sleep(Duration::from_millis(10)),
        }
        while let Some(sig) = sys::read_signal(signals) {
            if sig == sys::SIGTERM || sig == sys::SIGINT {
                let _ = sys::kill(-pid, sig);
                forwarded = Some(sig);
            }
        }
    };
    // Like a container whose PID 1 exits: nothing the step started outlives
    // it (background jobs left in its process group are killed).
    // (They are reaped, with anything that left the group, by kill_strays.)
    let _ = sys::kill(-pid, sys::SIGKILL);
    Ended {
        status,
        timed_out,
        forwarded,
    }
}

/// Kills whatever the command left behind, including processes that left
/// its group (`setsid`), and reaps them, before the results are read and
/// the report written: otherwise such a process could still change them.
/// As a subreaper (or PID 1) every orphan of the command is our child: we
/// kill our children until none are left. As a container's PID 1, kill(-1)
/// also reaches everything else in the container.
fn kill_strays(signals: &Fd) {
    if sys::getpid() == 1 {
        let _ = sys::kill(-1, sys::SIGKILL);
    }
    let until = Instant::now() + STRAY_KILL_LIMIT;
    loop {
        wait::reap_orphans();
        // Without /proc (a bare chroot) only kill(-1) above can help.
        let Ok(list) = sys::read_file(Path::new("/proc/thread-self/children")) else {
            return;
        };
        // "12 34 " : decimal pids, each followed by a space.
        let mut any = false;
        let mut pid: i32 = 0;
        for &b in &list {
            if b.is_ascii_digit() {
                pid = pid.wrapping_mul(10).wrapping_add(i32::from(b - b'0'));
            } else if pid > 0 {
                let _ = sys::kill(pid, sys::SIGKILL);
                any = true;
                pid = 0;
            }
        }
        if !any || Instant::now() >= until {
            return;
        }
        let _ = poll_signals(signals, 10);
        while sys::read_signal(signals).is_some() {}
    }
}

/// Reaps every exited child; returns the command's status once it is seen.
fn reap(pid: i32) -> Option<Exit> {
    let mut found = None;
    loop {
        match sys::waitpid_any_nohang() {
            Ok(Reaped::StillAlive) | Err(IoError::Os(sys::ECHILD)) => break,
            Ok(Reaped::Exited(p, code)) if p == pid => found = Some(Exit::Code(code)),
            Ok(Reaped::Signaled(p, sig)) if p == pid => found = Some(Exit::Signal(sig)),
            Ok(_) | Err(IoError::Os(sys::EINTR)) => {}
            Err(_) => break,
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::signal_name;

    #[test]
    fn names_signals_like_nix() {
        assert_eq!(signal_name(1), "SIGHUP");
        assert_eq!(signal_name(9), "SIGKILL");
        assert_eq!(signal_name(15), "SIGTERM");
        assert_eq!(signal_name(16), "SIGSTKFLT");
        assert_eq!(signal_name(17), "SIGCHLD");
        assert_eq!(signal_name(31), "SIGSYS");
        assert_eq!(signal_name(32), "signal 32");
        assert_eq!(signal_name(0), "signal 0");
    }
}
