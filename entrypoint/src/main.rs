//! `cicd-entrypoint`: runs as every step container's entrypoint (`step`)
//! and once in the pod's init container (`init`). See README.md.

/// `warn!("...")`: a line on stderr that never panics (see fsutil::warn).
macro_rules! warn {
    ($($arg:tt)*) => {
        $crate::fsutil::warn(format_args!($($arg)*))
    };
}

mod args;
mod duration;
mod fsutil;
mod init;
mod results;
mod run;
mod wait;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut argv = std::env::args_os();
    let argv0 = argv.next();
    let args: Vec<OsString> = argv.collect();
    let code = match args::parse(&args) {
        Ok(args::Command::Step(step)) => run::step(&step),
        Ok(args::Command::Init(init)) => match init::run(&init, argv0.as_deref()) {
            Ok(()) => 0,
            Err(e) => {
                warn!("init: {e}");
                1
            }
        },
        Ok(args::Command::Help) => {
            let _ = std::io::stdout().write_all(args::USAGE.as_bytes());
            0
        }
        Ok(args::Command::Version) => {
            let _ = writeln!(std::io::stdout(), "cicd-entrypoint {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Err(e) => {
            warn!("{e}\n{}", args::USAGE);
            if args.first().is_some_and(|s| s == "step") {
                let (post, term) = args::salvage_step_paths(&args);
                run::fail_early(post.as_deref(), term.as_deref(), &e.to_string());
            }
            run::EXIT_ENTRYPOINT_ERROR
        }
    };
    // Exit codes are 0..=255 on Linux; the value was chosen as one.
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
