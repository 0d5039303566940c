//! `cicd_entrypoint`: what the controller shares with the entrypoint (the
//! step report [`termination`], the results [`frame`] and its [`sha256`],
//! the [`duration`] grammar), plus the implementation of the `cicd-entrypoint`
//! binary, which runs without std or libc (see README.md).
#![cfg_attr(not(test), no_std)]

#[cfg_attr(not(test), macro_use)]
extern crate alloc;

/// `warn!("...")`: a line on stderr that never panics (see fsutil::warn).
#[allow(unused_macros)] // unused where the binary's modules are not built
macro_rules! warn {
    ($($arg:tt)*) => {
        $crate::fsutil::warn(format_args!($($arg)*))
    };
}

pub mod base64;
pub mod credential;
pub mod duration;
pub mod frame;
pub mod sha256;
pub mod termination;

// The binary's implementation makes raw x86-64 Linux system calls. On other
// targets the library is only the report format, which is all the
// controller needs, so the controller still builds there.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod args;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod credentials;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod fsutil;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod init;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod json_strings;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod os;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod results;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod run;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod step_results;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod sys;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod wait;

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[doc(hidden)]
pub mod binary {
    //! Used by `main.rs` only; not a stable API.
    pub use crate::os::OsString;
    pub use crate::sys::{SYS_MMAP, SYS_MUNMAP, abort, exit, syscall, write_all};

    /// Runs the command line `args` (without argv[0]) with environment
    /// `env` (`NAME=VALUE` entries) and returns the exit code.
    pub fn main(argv0: Option<OsString>, args: &[OsString], env: &[OsString]) -> u8 {
        crate::main(argv0, args, env)
    }
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
use alloc::string::ToString;

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
use os::OsString;

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn main(argv0: Option<OsString>, args: &[OsString], env: &[OsString]) -> u8 {
    // Like std's runtime: a closed pipe is an EPIPE error, not a kill.
    sys::set_disposition(sys::SIGPIPE, true);
    let code = match args::parse(args) {
        Ok(args::Command::Step(step)) => run::step(&step, env),
        Ok(args::Command::Hold(command)) => run::hold(&command, env),
        Ok(args::Command::Init(init)) => match init::run(&init, argv0.as_deref()) {
            Ok(()) => 0,
            Err(e) => {
                warn!("init: {e}");
                1
            }
        },
        Ok(args::Command::Help) => {
            let _ = sys::write_all(1, args::USAGE.as_bytes());
            0
        }
        Ok(args::Command::Version) => {
            let line = format!("cicd-entrypoint {}\n", env!("CARGO_PKG_VERSION"));
            let _ = sys::write_all(1, line.as_bytes());
            0
        }
        Err(e) => {
            warn!("{e}\n{}", args::USAGE);
            if args.first().is_some_and(|s| s == "step") {
                let (post, term) = args::salvage_step_paths(args);
                run::fail_early(post.as_deref(), term.as_deref(), &e.to_string());
            }
            run::EXIT_ENTRYPOINT_ERROR
        }
    };
    // Exit codes are 0..=255 on Linux; the value was chosen as one.
    u8::try_from(code).unwrap_or(1)
}
