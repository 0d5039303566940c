//! Waiting for the previous step's post file.
//!
//! Tekton re-stats its wait file once a second, which adds ~0.5 s to every
//! step on average. We watch the file's directory with inotify and re-check
//! on every event, so a hand-off costs one wake-up. Polling (every 50 ms by
//! default) is kept as a fallback for when inotify is unavailable (no free
//! watches, directory missing at start, exotic filesystems).

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::time::Duration;

use crate::fsutil::{err_path, parent_dir};
use crate::os::{OsString, Path};
use crate::sys::{self, Fd, PollFd, Waited as Reaped};

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
    /// SIGTERM/SIGINT arrived while waiting (the signal number).
    Interrupted(i32),
}

pub fn wait_for(file: &Path, nonempty: bool, signals: &Fd, env: &[OsString]) -> Waited {
    let watcher = watch_dir(&parent_dir(file), env);
    let waited = wait_loop(file, nonempty, signals, watcher.as_ref(), env);
    // Closing an inotify fd waits for an SRCU grace period in the kernel
    // (measured ~20 ms here), which would sit between the hand-off and the
    // command's start. Keep it open (CLOEXEC, so the command never sees it)
    // and let process exit close it after the post file is written.
    if let Some(w) = watcher {
        w.into_raw();
    }
    waited
}

fn wait_loop(file: &Path, nonempty: bool, signals: &Fd, watcher: Option<&Fd>, env: &[OsString]) -> Waited {
    let err_file = err_path(file);
    let interval = if watcher.is_some() {
        SAFETY_RECHECK
    } else {
        poll_interval(env)
    };
    let timeout = sys::timeout_ms(interval.as_millis());
    loop {
        // The watch is armed before this check, so an event between the
        // check and poll() still wakes us.
        if let Some(reason) = read_err_marker(&err_file) {
            return Waited::PreviousFailed(reason);
        }
        if is_ready(file, nonempty) {
            return Waited::Ready;
        }
        let mut fds: Vec<PollFd> = Vec::with_capacity(2);
        fds.push(PollFd {
            fd: signals.raw(),
            events: sys::POLLIN,
            revents: 0,
        });
        if let Some(w) = watcher {
            fds.push(PollFd {
                fd: w.raw(),
                events: sys::POLLIN,
                revents: 0,
            });
        }
        // EINTR and friends: just re-check.
        let _ = sys::poll(&mut fds, timeout);
        if let Some(w) = watcher {
            // Which event it was does not matter, we re-stat anyway. One
            // read per wake-up: draining "until empty" could spin forever
            // while something keeps writing in the directory.
            let mut events = [0u8; 4096];
            let _ = w.read(&mut events);
        }
        while let Some(signo) = sys::read_signal(signals) {
            match signo {
                sys::SIGTERM | sys::SIGINT => return Waited::Interrupted(signo),
                _ => reap_orphans(),
            }
        }
    }
}

fn watch_dir(dir: &Path, env: &[OsString]) -> Option<Fd> {
    if sys::getenv(env, FORCE_POLL_ENV).is_some_and(|v| v == "1") {
        return None;
    }
    let inotify = sys::inotify_init().ok()?;
    // CLOSE_WRITE/MODIFY/ATTRIB matter for --wait-nonempty (a file created
    // empty, then written); MOVED_TO for atomic renames, incl. the
    // downward API's `..data` symlink swap.
    let mask = sys::IN_CREATE | sys::IN_MOVED_TO | sys::IN_CLOSE_WRITE | sys::IN_MODIFY | sys::IN_ATTRIB;
    sys::inotify_add_watch(&inotify, dir, mask).ok()?;
    Some(inotify)
}

fn poll_interval(env: &[OsString]) -> Duration {
    sys::getenv(env, POLL_MS_ENV)
        .and_then(|v| v.to_str())
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&ms| ms > 0)
        .map_or(DEFAULT_POLL, Duration::from_millis)
}

fn is_ready(file: &Path, nonempty: bool) -> bool {
    // metadata() follows symlinks, as the downward API's files are symlinks.
    match sys::stat(file) {
        Ok(m) => !nonempty || m.size > 0,
        Err(_) => false,
    }
}

fn read_err_marker(path: &Path) -> Option<String> {
    let bytes = sys::read_file(path).ok()?;
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
    while let Ok(status) = sys::waitpid_any_nohang() {
        if matches!(status, Reaped::StillAlive) {
            break;
        }
    }
}
