//! Progress while waiting: a spinner with the elapsed time on a terminal
//! (stderr, rewritten in place), plain lines otherwise (one per new
//! message, so logs of CI jobs stay readable).

use std::io::{IsTerminal, Write};
use std::time::Instant;

const SPINNER: [char; 4] = ['|', '/', '-', '\\'];

/// The status line of a command that waits.
pub struct Progress {
    /// stderr is a terminal: draw a spinner; else print plain lines.
    tty: bool,
    /// The message shown last, so plain mode prints each only once.
    last: String,
    /// Spinner frame.
    tick: usize,
    /// When the current message first appeared, for its elapsed time.
    since: Instant,
    /// A spinner line is on screen and must be erased before output.
    drawn: bool,
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new(std::io::stderr().is_terminal())
    }
}

impl Progress {
    pub fn new(tty: bool) -> Progress {
        Progress {
            tty,
            last: String::new(),
            tick: 0,
            since: Instant::now(),
            drawn: false,
        }
    }

    /// Shows `message` (called on each poll while waiting).
    pub fn status(&mut self, message: &str) {
        if message != self.last {
            self.last = message.to_string();
            self.since = Instant::now();
            if !self.tty {
                eprintln!("... {message}");
            }
        }
        if self.tty {
            self.tick = (self.tick + 1) % SPINNER.len();
            let elapsed = self.since.elapsed().as_secs();
            eprint!("\r\x1b[2K{} {message} ({elapsed}s)", SPINNER[self.tick]);
            let _ = std::io::stderr().flush();
            self.drawn = true;
        }
    }

    /// Erases the spinner before other output.
    pub fn clear(&mut self) {
        if self.drawn {
            eprint!("\r\x1b[2K");
            let _ = std::io::stderr().flush();
            self.drawn = false;
        }
        self.last.clear();
    }
}
