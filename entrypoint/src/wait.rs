//! Waiting for the previous step's post file.
//!
//! Tekton re-stats its wait file once a second, which adds ~0.5 s to every
//! step on average. We watch the file's directory with inotify and re-check
//! on every event, so a hand-off costs one wake-up. Polling (every 50 ms by
//! default) is kept as a fallback for when inotify is unavailable (no free
//! watches, directory missing at start, exotic filesystems).

use std::fs;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;

use crate::fsutil::{err_path, parent_dir};

/// Set to 1 to skip inotify (benchmarks, debugging).
pub const FORCE_POLL_ENV: &str = "CICD_ENTRYPOINT_FORCE_POLL";
/// Poll interval in milliseconds for the fallback (default 50).
pub const POLL_MS_ENV: &str = "CICD_ENTRYPOINT_POLL_MS";
const DEFAULT_POLL: Duration = Duration::from_millis(50);
/// Even with inotify, re-check now and then in case an event was missed
/// (e.g. the directory was replaced under us).
const SAFETY_RECHECK: Duration = Duration::from_secs(1);
/// How much of a `.err` marker to quote in messages.
const MAX_REASON_BYTES: usize = 512;

#[derive(Debug, PartialEq, Eq)]
pub enum Waited {
    /// The wait file is there (and non-empty if asked).
    Ready,
    /// `<wait-file>.err` appeared; carries its (trimmed) content.
    PreviousFailed(String),
    /// SIGTERM/SIGINT arrived while waiting.
    Interrupted(Signal),
}

pub fn wait_for(file: &Path, nonempty: bool, signals: &SignalFd) -> Waited {
    let watcher = watch_dir(&parent_dir(file));
    let waited = wait_loop(file, nonempty, signals, watcher.as_ref());
    // Closing an inotify fd waits for an SRCU grace period in the kernel
    // (measured ~20 ms here), which would sit between the hand-off and the
    // command's start. Keep it open (CLOEXEC, so the command never sees it)
    // and let process exit close it after the post file is written.
    std::mem::forget(watcher);
    waited
}

fn wait_loop(file: &Path, nonempty: bool, signals: &SignalFd, watcher: Option<&Inotify>) -> Waited {
    let err_file = err_path(file);
    let interval = if watcher.is_some() {
        SAFETY_RECHECK
    } else {
        poll_interval()
    };
    let timeout = PollTimeout::try_from(interval).unwrap_or(PollTimeout::MAX);
    loop {
        // The watch is armed before this check, so an event between the
        // check and poll() still wakes us.
        if let Some(reason) = read_err_marker(&err_file) {
            return Waited::PreviousFailed(reason);
        }
        if is_ready(file, nonempty) {
            return Waited::Ready;
        }
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        if let Some(w) = watcher {
            fds.push(PollFd::new(w.as_fd(), PollFlags::POLLIN));
        }
        // EINTR and friends: just re-check.
        let _ = poll(&mut fds, timeout);
        if let Some(w) = watcher {
            // Which event it was does not matter, we re-stat anyway. One
            // read per wake-up: draining "until empty" could spin forever
            // while something keeps writing in the directory.
            let _ = w.read_events();
        }
        while let Ok(Some(info)) = signals.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(sig @ (Signal::SIGTERM | Signal::SIGINT)) => return Waited::Interrupted(sig),
                _ => reap_orphans(),
            }
        }
    }
}

fn watch_dir(dir: &Path) -> Option<Inotify> {
    if std::env::var_os(FORCE_POLL_ENV).is_some_and(|v| v == "1") {
        return None;
    }
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).ok()?;
    // CLOSE_WRITE/MODIFY/ATTRIB matter for --wait-nonempty (a file created
    // empty, then written); MOVED_TO for atomic renames, incl. the
    // downward API's `..data` symlink swap.
    let mask = AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_MODIFY
        | AddWatchFlags::IN_ATTRIB;
    inotify.add_watch(dir, mask).ok()?;
    Some(inotify)
}

fn poll_interval() -> Duration {
    std::env::var(POLL_MS_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&ms| ms > 0)
        .map_or(DEFAULT_POLL, Duration::from_millis)
}

fn is_ready(file: &Path, nonempty: bool) -> bool {
    // metadata() follows symlinks, as the downward API's files are symlinks.
    match fs::metadata(file) {
        Ok(m) => !nonempty || m.len() > 0,
        Err(_) => false,
    }
}

fn read_err_marker(path: &Path) -> Option<String> {
    let bytes = fs::read(path).ok()?;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_REASON_BYTES)]);
    let text = text.trim();
    Some(if text.is_empty() {
        format!("{} exists", path.display())
    } else {
        text.to_string()
    })
}

/// We may be PID 1 (or a subreaper): collect any exited orphans.
pub fn reap_orphans() {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}
