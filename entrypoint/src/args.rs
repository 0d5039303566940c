//! Hand-parsed command line (no clap: the binary is copied into every pod).
//!
//! Flags take their value as the next argument or after `=`. For `step`,
//! everything after `--` is the command, passed through untouched.

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::time::Duration;

use crate::credential::{self, Credential};
use crate::duration;
use crate::frame::{DEFAULT_MAX_RESULT_BYTES, DEFAULT_MAX_RUN_RESULTS_BYTES, RESULTS_CEILING_BYTES};
use crate::os::{OsStr, OsString, PathBuf};
use crate::termination::MESSAGE_LIMIT_BYTES;

pub const USAGE: &str = "\
usage:
  cicd-entrypoint init --tools-dir DIR [--script NAME=BASE64]... [--scripts-dir DIR] [--mkdir DIR]...
  cicd-entrypoint step [--wait-file F] [--wait-nonempty] --post-file F --termination-path F
    [--script NAME=BASE64]... [--scripts-dir DIR] [--mkdir DIR]...
    --results-dir D [--results a,b] [--results-from D] [--timeout 30s] [--on-error continue|stopAndFail]
    [--max-result-bytes N] [--max-results-bytes N] [--max-report-bytes N]
    [--step-result NAME=FILE]... [--step-result-ref EXPR=FILE]... [--result-from-step NAME=FILE]...
    [--credentials-home DIR --credential KIND:SECRET_DIR[=URL_OR_HOST]...] -- CMD [ARGS...]
  cicd-entrypoint hold -- CMD [ARGS...]
    (a sidecar: runs CMD; if it ends first, stays up until SIGTERM, then exits with its code)
";

#[derive(Debug, PartialEq)]
pub enum Command {
    Init(InitArgs),
    /// Boxed: it is several times the size of the others.
    Step(Box<StepArgs>),
    /// A sidecar's command, run so that its container outlives it.
    Hold(Vec<OsString>),
    Help,
    Version,
}

#[derive(Debug, PartialEq)]
pub struct InitArgs {
    pub tools_dir: PathBuf,
    pub setup: Setup,
}

/// Files to lay out before the work starts: scripts written into a
/// directory and directories anyone may write into. The init container
/// does it for the whole pod; a pod without one (the entrypoint mounted
/// from a ConfigMap) has each step do it for itself.
#[derive(Debug, Default, PartialEq)]
pub struct Setup {
    /// (name, base64 of the script text)
    pub scripts: Vec<(String, String)>,
    pub scripts_dir: Option<PathBuf>,
    pub mkdirs: Vec<PathBuf>,
}

impl Setup {
    /// Takes `flag` when it is one of ours (`--script`, `--scripts-dir`,
    /// `--mkdir`): true if it was.
    fn take_flag<'a>(&mut self, flags: &mut Flags<'a>, flag: &Flag<'a>) -> Result<bool, ArgsError> {
        match flag.name.as_str() {
            "--scripts-dir" => set_once(
                &mut self.scripts_dir,
                flags.path(flag, "--scripts-dir")?,
                "--scripts-dir",
            )?,
            "--mkdir" => self.mkdirs.push(flags.path(flag, "--mkdir")?),
            "--script" => {
                let value = flags.text(flag, "--script")?;
                let bad = |reason: String| ArgsError::BadValue {
                    flag: "--script",
                    value: value.clone(),
                    reason,
                };
                let (name, b64) = value
                    .split_once('=')
                    .ok_or_else(|| bad("expected NAME=BASE64".into()))?;
                check_name(name).map_err(|r| bad(format!("script name: {r}")))?;
                // The same name right again continues the script: one
                // argument is limited to 128 KiB by the kernel, so large
                // scripts come in parts (whole base64 quads each).
                match self.scripts.last_mut() {
                    Some((last, text)) if last == name => text.push_str(b64),
                    _ => self.scripts.push((name.to_string(), b64.to_string())),
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Scripts need a directory to go to.
    fn check(&self) -> Result<(), ArgsError> {
        if !self.scripts.is_empty() && self.scripts_dir.is_none() {
            return Err(ArgsError::MissingFlag("--scripts-dir"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    StopAndFail,
    Continue,
}

#[derive(Debug, PartialEq)]
pub struct StepArgs {
    pub wait_file: Option<PathBuf>,
    pub wait_nonempty: bool,
    pub post_file: PathBuf,
    pub termination_path: PathBuf,
    pub results_dir: PathBuf,
    pub results: Vec<String>,
    /// The previous step's results directory: its declared results are
    /// copied into ours before the command starts, so a step sees what the
    /// steps before it wrote although each step writes only its own.
    pub results_from: Option<PathBuf>,
    /// Largest value of one result; a larger one fails the step.
    pub max_result_bytes: u64,
    /// Largest total of this step's results.
    pub max_results_bytes: u64,
    /// Termination message budget of this container (the kubelet's share).
    pub max_report_bytes: usize,
    /// None when no timeout (absent or zero); the text is kept for messages.
    pub timeout: Option<(Duration, String)>,
    pub on_error: OnError,
    /// `(EXPR, FILE)`: every `$(EXPR)` in the command and in the values of
    /// the environment is replaced by FILE's content before the command
    /// starts (an earlier step's result, known only when that step ended).
    pub step_result_refs: Vec<(String, PathBuf)>,
    /// `(NAME, FILE)`: once the command ended, FILE (one of this step's
    /// own step results) becomes the task result NAME (`results[].value`).
    pub results_from_step: Vec<(String, PathBuf)>,
    /// `(NAME, FILE)`: this step's own step results, reported in its
    /// results frame once the command ended (for `status.steps[].results`).
    pub step_results: Vec<(String, PathBuf)>,
    /// Credential Secrets (mounted directories) whose files are written
    /// under `credentials_home` before the command starts (the first step).
    pub credentials: Vec<Credential>,
    pub credentials_home: Option<PathBuf>,
    /// Without an init container: this step's script and directories,
    /// laid out once the previous step is done.
    pub setup: Setup,
    pub command: Vec<OsString>,
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ArgsError {
    #[error("missing subcommand: expected `init`, `step` or `hold`")]
    NoSubcommand,
    #[error("unknown subcommand {0:?}: expected `init`, `step` or `hold`")]
    UnknownSubcommand(String),
    #[error("unknown flag {flag} for `{sub}`")]
    UnknownFlag { sub: &'static str, flag: String },
    #[error("unexpected argument {0:?} (the command goes after `--`)")]
    Unexpected(String),
    #[error("flag {0} needs a value")]
    MissingValue(&'static str),
    #[error("flag {0} takes no value")]
    UnexpectedValue(&'static str),
    #[error("missing required flag {0}")]
    MissingFlag(&'static str),
    #[error("flag {0} given more than once")]
    Repeated(&'static str),
    #[error("invalid value {value:?} for {flag}: {reason}")]
    BadValue {
        flag: &'static str,
        value: String,
        reason: String,
    },
    #[error("missing command: put it after `--`, e.g. `-- /bin/sh -c 'echo hi'`")]
    NoCommand,
}

pub fn parse(args: &[OsString]) -> Result<Command, ArgsError> {
    let Some(sub) = args.first() else {
        return Err(ArgsError::NoSubcommand);
    };
    match sub.to_string_lossy().as_ref() {
        "init" => parse_init(&args[1..]).map(Command::Init),
        "step" => parse_step(&args[1..]).map(|step| Command::Step(Box::new(step))),
        "hold" => parse_hold(&args[1..]).map(Command::Hold),
        "-h" | "--help" | "help" => Ok(Command::Help),
        "-V" | "--version" | "version" => Ok(Command::Version),
        other => Err(ArgsError::UnknownSubcommand(other.to_string())),
    }
}

/// `hold` takes no flags: `--` and the command.
fn parse_hold(args: &[OsString]) -> Result<Vec<OsString>, ArgsError> {
    match args.split_first() {
        Some((first, command)) if first == "--" => match command.first() {
            Some(program) if !program.is_empty() => Ok(command.to_vec()),
            _ => Err(ArgsError::NoCommand),
        },
        Some((first, _)) => Err(ArgsError::Unexpected(first.to_string_lossy().to_string())),
        None => Err(ArgsError::NoCommand),
    }
}

/// Walks `--flag value` / `--flag=value` pairs until `--`.
struct Flags<'a> {
    args: &'a [OsString],
    pos: usize,
}

/// One flag occurrence: its name and, if written as `--flag=value`, the value.
struct Flag<'a> {
    name: String,
    inline: Option<&'a OsStr>,
}

impl<'a> Flags<'a> {
    fn new(args: &'a [OsString]) -> Self {
        Flags { args, pos: 0 }
    }

    /// The next flag, or None at `--` / the end.
    fn next_flag(&mut self) -> Result<Option<Flag<'a>>, ArgsError> {
        let Some(arg) = self.args.get(self.pos) else {
            return Ok(None);
        };
        if arg == "--" {
            return Ok(None);
        }
        self.pos += 1;
        let bytes = arg.as_bytes();
        if !bytes.starts_with(b"--") {
            return Err(ArgsError::Unexpected(arg.to_string_lossy().into_owned()));
        }
        Ok(Some(match bytes.iter().position(|&b| b == b'=') {
            Some(eq) => Flag {
                name: String::from_utf8_lossy(&bytes[..eq]).into_owned(),
                inline: Some(OsStr::from_bytes(&bytes[eq + 1..])),
            },
            None => Flag {
                name: String::from_utf8_lossy(bytes).into_owned(),
                inline: None,
            },
        }))
    }

    fn value(&mut self, flag: &Flag<'a>, name: &'static str) -> Result<&'a OsStr, ArgsError> {
        if let Some(v) = flag.inline {
            return Ok(v);
        }
        match self.args.get(self.pos) {
            Some(v) if v != "--" => {
                self.pos += 1;
                Ok(v.as_os_str())
            }
            _ => Err(ArgsError::MissingValue(name)),
        }
    }

    fn text(&mut self, flag: &Flag<'a>, name: &'static str) -> Result<String, ArgsError> {
        let v = self.value(flag, name)?;
        v.to_str().map(str::to_string).ok_or_else(|| ArgsError::BadValue {
            flag: name,
            value: v.to_string_lossy().into_owned(),
            reason: "not valid UTF-8".into(),
        })
    }

    fn path(&mut self, flag: &Flag<'a>, name: &'static str) -> Result<PathBuf, ArgsError> {
        let v = self.value(flag, name)?;
        if v.is_empty() {
            return Err(ArgsError::BadValue {
                flag: name,
                value: String::new(),
                reason: "empty path".into(),
            });
        }
        Ok(PathBuf::from(v))
    }

    /// Whatever follows `--`.
    fn rest(&self) -> Option<&'a [OsString]> {
        match self.args.get(self.pos) {
            Some(a) if a == "--" => Some(&self.args[self.pos + 1..]),
            _ => None,
        }
    }
}

fn set_once<T>(slot: &mut Option<T>, value: T, name: &'static str) -> Result<(), ArgsError> {
    if slot.is_some() {
        return Err(ArgsError::Repeated(name));
    }
    *slot = Some(value);
    Ok(())
}

fn no_inline(flag: &Flag<'_>, name: &'static str) -> Result<(), ArgsError> {
    match flag.inline {
        Some(_) => Err(ArgsError::UnexpectedValue(name)),
        None => Ok(()),
    }
}

/// Result and script names become file names: keep them to a safe alphabet
/// so `../x` or `a/b` cannot escape the directory.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty name".into());
    }
    if name.starts_with('.') {
        return Err("must not start with '.'".into());
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        Some(c) => Err(format!("character {c:?} not allowed (use A-Z a-z 0-9 - _ .)")),
        None => Ok(()),
    }
}

fn parse_init(args: &[OsString]) -> Result<InitArgs, ArgsError> {
    let mut flags = Flags::new(args);
    let mut tools_dir = None;
    let mut setup = Setup::default();
    while let Some(flag) = flags.next_flag()? {
        if setup.take_flag(&mut flags, &flag)? {
            continue;
        }
        match flag.name.as_str() {
            "--tools-dir" => set_once(&mut tools_dir, flags.path(&flag, "--tools-dir")?, "--tools-dir")?,
            _ => {
                return Err(ArgsError::UnknownFlag {
                    sub: "init",
                    flag: flag.name,
                });
            }
        }
    }
    if let Some(first) = flags.rest().and_then(<[OsString]>::first) {
        return Err(ArgsError::Unexpected(first.to_string_lossy().into_owned()));
    }
    setup.check()?;
    Ok(InitArgs {
        tools_dir: tools_dir.ok_or(ArgsError::MissingFlag("--tools-dir"))?,
        setup,
    })
}

fn parse_step(args: &[OsString]) -> Result<StepArgs, ArgsError> {
    let mut flags = Flags::new(args);
    let mut wait_file = None;
    let mut wait_nonempty = false;
    let mut post_file = None;
    let mut termination_path = None;
    let mut results_dir = None;
    let mut results: Vec<String> = Vec::new();
    let mut results_from = None;
    let mut max_result_bytes = None;
    let mut max_results_bytes = None;
    let mut max_report_bytes = None;
    let mut timeout = None;
    let mut on_error = None;
    let mut step_result_refs = Vec::new();
    let mut results_from_step = Vec::new();
    let mut step_results = Vec::new();
    let mut credentials = Vec::new();
    let mut credentials_home = None;
    let mut setup = Setup::default();
    while let Some(flag) = flags.next_flag()? {
        if setup.take_flag(&mut flags, &flag)? {
            continue;
        }
        match flag.name.as_str() {
            "--credential" => {
                let value = flags.text(&flag, "--credential")?;
                let credential = credential::parse(&value).map_err(|reason| ArgsError::BadValue {
                    flag: "--credential",
                    value: value.clone(),
                    reason,
                })?;
                credentials.push(credential);
            }
            "--credentials-home" => set_once(
                &mut credentials_home,
                flags.path(&flag, "--credentials-home")?,
                "--credentials-home",
            )?,
            "--step-result-ref" => step_result_refs.push(name_and_file(&mut flags, &flag, "--step-result-ref")?),
            "--step-result" => step_results.push(named_file(&mut flags, &flag, "--step-result", "step result")?),
            "--result-from-step" => {
                results_from_step.push(named_file(&mut flags, &flag, "--result-from-step", "result")?);
            }
            "--wait-file" => set_once(&mut wait_file, flags.path(&flag, "--wait-file")?, "--wait-file")?,
            "--wait-nonempty" => {
                no_inline(&flag, "--wait-nonempty")?;
                wait_nonempty = true;
            }
            "--post-file" => set_once(&mut post_file, flags.path(&flag, "--post-file")?, "--post-file")?,
            "--termination-path" => set_once(
                &mut termination_path,
                flags.path(&flag, "--termination-path")?,
                "--termination-path",
            )?,
            "--results-dir" => set_once(&mut results_dir, flags.path(&flag, "--results-dir")?, "--results-dir")?,
            "--results" => {
                let value = flags.text(&flag, "--results")?;
                for name in value.split(',').map(str::trim) {
                    // `--results ""` declares none; `a,,b` is a typo.
                    if name.is_empty() && value.trim().is_empty() {
                        continue;
                    }
                    check_name(name).map_err(|reason| ArgsError::BadValue {
                        flag: "--results",
                        value: value.clone(),
                        reason: format!("result name {name:?}: {reason}"),
                    })?;
                    if !results.iter().any(|r| r == name) {
                        results.push(name.to_string());
                    }
                }
            }
            "--results-from" => set_once(
                &mut results_from,
                flags.path(&flag, "--results-from")?,
                "--results-from",
            )?,
            "--max-result-bytes" => {
                let n = bytes_flag(&mut flags, &flag, "--max-result-bytes", RESULTS_CEILING_BYTES)?;
                set_once(&mut max_result_bytes, n, "--max-result-bytes")?;
            }
            "--max-results-bytes" => {
                let n = bytes_flag(&mut flags, &flag, "--max-results-bytes", RESULTS_CEILING_BYTES)?;
                set_once(&mut max_results_bytes, n, "--max-results-bytes")?;
            }
            "--max-report-bytes" => {
                let n = bytes_flag(&mut flags, &flag, "--max-report-bytes", MESSAGE_LIMIT_BYTES as u64)?;
                set_once(&mut max_report_bytes, n as usize, "--max-report-bytes")?;
            }
            "--timeout" => {
                let text = flags.text(&flag, "--timeout")?;
                let d = duration::parse(&text).map_err(|e| ArgsError::BadValue {
                    flag: "--timeout",
                    value: text.clone(),
                    reason: e.to_string(),
                })?;
                set_once(&mut timeout, (d, text), "--timeout")?;
            }
            "--on-error" => {
                let text = flags.text(&flag, "--on-error")?;
                let mode = match text.as_str() {
                    "continue" => OnError::Continue,
                    "stopAndFail" => OnError::StopAndFail,
                    _ => {
                        return Err(ArgsError::BadValue {
                            flag: "--on-error",
                            value: text,
                            reason: "expected continue or stopAndFail".into(),
                        });
                    }
                };
                set_once(&mut on_error, mode, "--on-error")?;
            }
            _ => {
                return Err(ArgsError::UnknownFlag {
                    sub: "step",
                    flag: flag.name,
                });
            }
        }
    }
    let command = match flags.rest() {
        Some(rest) if !rest.is_empty() => rest.to_vec(),
        _ => return Err(ArgsError::NoCommand),
    };
    if command[0].is_empty() {
        return Err(ArgsError::NoCommand);
    }
    if !credentials.is_empty() && credentials_home.is_none() {
        return Err(ArgsError::MissingFlag("--credentials-home"));
    }
    setup.check()?;
    Ok(StepArgs {
        wait_file,
        wait_nonempty,
        post_file: post_file.ok_or(ArgsError::MissingFlag("--post-file"))?,
        termination_path: termination_path.ok_or(ArgsError::MissingFlag("--termination-path"))?,
        results_dir: results_dir.ok_or(ArgsError::MissingFlag("--results-dir"))?,
        results,
        results_from,
        max_result_bytes: max_result_bytes.unwrap_or(DEFAULT_MAX_RESULT_BYTES),
        max_results_bytes: max_results_bytes.unwrap_or(DEFAULT_MAX_RUN_RESULTS_BYTES),
        max_report_bytes: max_report_bytes.unwrap_or(MESSAGE_LIMIT_BYTES),
        timeout: timeout.filter(|(d, _)| !d.is_zero()),
        on_error: on_error.unwrap_or(OnError::StopAndFail),
        step_result_refs,
        results_from_step,
        step_results,
        credentials,
        credentials_home,
        setup,
        command,
    })
}

/// `NAME=FILE` whose NAME must be a valid result name (`what` says which).
fn named_file<'a>(
    flags: &mut Flags<'a>,
    flag: &Flag<'a>,
    name: &'static str,
    what: &str,
) -> Result<(String, PathBuf), ArgsError> {
    let (key, file) = name_and_file(flags, flag, name)?;
    check_name(&key).map_err(|reason| ArgsError::BadValue {
        flag: name,
        value: key.clone(),
        reason: format!("{what} name: {reason}"),
    })?;
    Ok((key, file))
}

/// `NAME=FILE`, split at the first `=` (names never hold one); both parts
/// must be there.
fn name_and_file<'a>(
    flags: &mut Flags<'a>,
    flag: &Flag<'a>,
    name: &'static str,
) -> Result<(String, PathBuf), ArgsError> {
    let text = flags.text(flag, name)?;
    match text.split_once('=') {
        Some((key, file)) if !key.is_empty() && !file.is_empty() => Ok((key.to_string(), PathBuf::from(file))),
        _ => Err(ArgsError::BadValue {
            flag: name,
            value: text,
            reason: "expected NAME=FILE".into(),
        }),
    }
}

/// A byte count between 1 and `max`.
fn bytes_flag<'a>(flags: &mut Flags<'a>, flag: &Flag<'a>, name: &'static str, max: u64) -> Result<u64, ArgsError> {
    let text = flags.text(flag, name)?;
    // By hand: `str::parse` would add to the static binary.
    let mut n: u64 = 0;
    let mut digits = !text.is_empty();
    for b in text.bytes() {
        digits &= b.is_ascii_digit();
        n = n.saturating_mul(10).saturating_add(u64::from(b.wrapping_sub(b'0')));
    }
    if digits && n >= 1 && n <= max {
        return Ok(n);
    }
    Err(ArgsError::BadValue {
        flag: name,
        value: text,
        reason: format!("expected a number of bytes from 1 to {max}"),
    })
}

/// Best effort after a parse error: find --post-file and --termination-path
/// anyway, so a step with a typo still fails the run visibly (`.err` marker
/// plus a Failed report) instead of leaving later steps waiting forever.
pub fn salvage_step_paths(args: &[OsString]) -> (Option<PathBuf>, Option<PathBuf>) {
    let mut post = None;
    let mut term = None;
    let mut i = 1; // skip the subcommand
    while let Some(arg) = args.get(i) {
        if arg == "--" {
            break;
        }
        let bytes = arg.as_bytes();
        for (name, slot) in [
            (&b"--post-file"[..], &mut post),
            (&b"--termination-path"[..], &mut term),
        ] {
            if bytes == name {
                if let Some(v) = args.get(i + 1).filter(|v| !v.is_empty() && *v != "--") {
                    *slot = Some(PathBuf::from(v));
                }
            } else if bytes.len() > name.len() + 1 && bytes.starts_with(name) && bytes[name.len()] == b'=' {
                *slot = Some(PathBuf::from(OsStr::from_bytes(&bytes[name.len() + 1..])));
            }
        }
        i += 1;
    }
    (post, term)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    fn step(extra: &[&str]) -> Result<StepArgs, ArgsError> {
        let mut a = vec![
            "step",
            "--post-file",
            "/r/0/out",
            "--termination-path=/dev/termination-log",
            "--results-dir",
            "/results",
        ];
        a.extend_from_slice(extra);
        match parse(&os(&a))? {
            Command::Step(s) => Ok(*s),
            other => panic!("not a step: {other:?}"),
        }
    }

    #[test]
    fn hold_takes_the_command_after_dashes_and_nothing_else() {
        assert_eq!(
            parse(&os(&["hold", "--", "/bin/sh", "-c", "x"])),
            Ok(Command::Hold(os(&["/bin/sh", "-c", "x"])))
        );
        assert_eq!(parse(&os(&["hold", "--"])), Err(ArgsError::NoCommand));
        assert_eq!(parse(&os(&["hold", "--", ""])), Err(ArgsError::NoCommand));
        assert_eq!(parse(&os(&["hold"])), Err(ArgsError::NoCommand));
        assert_eq!(
            parse(&os(&["hold", "--timeout", "1s", "--", "x"])),
            Err(ArgsError::Unexpected("--timeout".into()))
        );
    }

    #[test]
    fn parses_a_full_step() {
        let s = step(&[
            "--wait-file",
            "/r/0/out",
            "--wait-nonempty",
            "--results",
            "a, b,a",
            "--results=c",
            "--timeout",
            "1h30m",
            "--on-error",
            "continue",
            "--",
            "sh",
            "-c",
            "--not-a-flag",
        ])
        .expect("parses");
        assert_eq!(s.wait_file, Some(PathBuf::from("/r/0/out")));
        assert!(s.wait_nonempty);
        assert_eq!(s.termination_path, PathBuf::from("/dev/termination-log"));
        assert_eq!(s.results, ["a", "b", "c"]);
        assert_eq!(s.timeout, Some((Duration::from_secs(5400), "1h30m".into())));
        assert_eq!(s.on_error, OnError::Continue);
        assert_eq!(s.command, os(&["sh", "-c", "--not-a-flag"]));
    }

    #[test]
    fn parses_result_limits() {
        let s = step(&["--", "true"]).expect("parses");
        assert_eq!(s.max_result_bytes, DEFAULT_MAX_RESULT_BYTES);
        assert_eq!(s.max_results_bytes, DEFAULT_MAX_RUN_RESULTS_BYTES);
        assert_eq!(s.max_report_bytes, MESSAGE_LIMIT_BYTES);
        assert_eq!(s.results_from, None);
        let s = step(&[
            "--max-result-bytes=1048576",
            "--max-results-bytes",
            "10",
            "--max-report-bytes",
            "585",
            "--results-from",
            "/prev",
            "--",
            "true",
        ])
        .expect("parses");
        assert_eq!(
            (s.max_result_bytes, s.max_results_bytes, s.max_report_bytes),
            (1_048_576, 10, 585)
        );
        assert_eq!(s.results_from, Some(PathBuf::from("/prev")));
        for bad in [
            ["--max-result-bytes", "1048577"],
            ["--max-result-bytes", "0"],
            ["--max-results-bytes", "lots"],
            ["--max-report-bytes", "4097"],
        ] {
            let e = step(&[bad[0], bad[1], "--", "true"]).expect_err(bad[1]);
            let text = e.to_string();
            assert!(text.contains(bad[0]) && text.contains(bad[1]), "{text}");
        }
    }

    #[test]
    fn defaults_and_zero_timeout() {
        let s = step(&["--timeout", "0", "--results", "", "--", "true"]).expect("parses");
        assert_eq!(s.timeout, None);
        assert!(s.results.is_empty());
        assert_eq!(s.on_error, OnError::StopAndFail);
        assert_eq!(s.wait_file, None);
    }

    #[test]
    fn parses_step_result_flags() {
        let s = step(&[
            "--step-result-ref",
            "steps.a.results.digest=/r/0/results/digest",
            "--step-result-ref=steps.step-a.results.digest=/r/0/results/digest",
            "--result-from-step",
            "image-digest=/r/1/results/digest",
            "--step-result",
            "tags=/r/1/results/tags",
            "--",
            "true",
        ])
        .expect("parses");
        assert_eq!(
            s.step_results,
            [("tags".to_string(), PathBuf::from("/r/1/results/tags"))]
        );
        assert_eq!(
            s.step_result_refs,
            [
                (
                    "steps.a.results.digest".to_string(),
                    PathBuf::from("/r/0/results/digest")
                ),
                (
                    "steps.step-a.results.digest".to_string(),
                    PathBuf::from("/r/0/results/digest")
                ),
            ]
        );
        assert_eq!(
            s.results_from_step,
            [("image-digest".to_string(), PathBuf::from("/r/1/results/digest"))]
        );
        for bad in [
            ["--step-result-ref", "steps.a.results.r"],
            ["--step-result-ref", "=/r/0/results/r"],
            ["--result-from-step", "x="],
            ["--result-from-step", "../x=/r/0/results/r"],
            ["--step-result", "a/b=/r/0/results/r"],
            ["--step-result", "r"],
        ] {
            let e = step(&[bad[0], bad[1], "--", "true"]).expect_err(bad[1]);
            assert!(
                e.to_string().contains(bad[0]) && e.to_string().contains(bad[1].split('=').next().unwrap_or("")),
                "{e}"
            );
        }
    }

    #[test]
    fn parses_credential_flags_and_needs_a_home_for_them() {
        let s = step(&[
            "--credentials-home",
            "/cicd/home",
            "--credential",
            "git-basic-auth:/cicd/creds/git=https://git.example",
            "--credential=docker-config-json:/cicd/creds/pull",
            "--",
            "true",
        ])
        .expect("parses");
        assert_eq!(s.credentials_home, Some(PathBuf::from("/cicd/home")));
        assert_eq!(s.credentials.len(), 2);
        assert_eq!(s.credentials[0].target, "https://git.example");
        let e = step(&["--credential", "git-ssh:/c/k=h", "--", "true"]).expect_err("no home");
        assert_eq!(e, ArgsError::MissingFlag("--credentials-home"));
        let e = step(&["--credentials-home", "/h", "--credential", "git-ssh:/c/k", "--", "true"]).expect_err("bad");
        assert!(
            e.to_string().contains("--credential") && e.to_string().contains("git-ssh:/c/k"),
            "{e}"
        );
    }

    #[test]
    fn errors_name_the_flag_and_value() {
        let e = step(&["--timeout", "30x", "--", "true"]).expect_err("bad timeout");
        let text = e.to_string();
        assert!(text.contains("--timeout") && text.contains("30x"), "{text}");
        let e = step(&["--on-error", "ignore", "--", "true"]).expect_err("bad mode");
        assert!(e.to_string().contains("--on-error") && e.to_string().contains("ignore"));
        assert_eq!(
            step(&["--bogus", "--", "true"]),
            Err(ArgsError::UnknownFlag {
                sub: "step",
                flag: "--bogus".into()
            })
        );
        assert_eq!(step(&["--", ""]), Err(ArgsError::NoCommand));
        assert_eq!(step(&[]), Err(ArgsError::NoCommand));
        assert_eq!(step(&["--timeout"]), Err(ArgsError::MissingValue("--timeout")));
        assert_eq!(
            step(&["--timeout", "--", "true"]),
            Err(ArgsError::MissingValue("--timeout"))
        );
        assert!(matches!(
            step(&["--results", "../etc", "--", "true"]),
            Err(ArgsError::BadValue { flag: "--results", .. })
        ));
        assert!(matches!(
            step(&["--results", "a,,b", "--", "true"]),
            Err(ArgsError::BadValue { flag: "--results", .. })
        ));
        assert_eq!(
            step(&["--post-file", "x", "--", "true"]),
            Err(ArgsError::Repeated("--post-file"))
        );
        assert_eq!(step(&["true"]), Err(ArgsError::Unexpected("true".into())));
        assert_eq!(
            parse(&os(&["step", "--post-file", "p", "--", "true"])),
            Err(ArgsError::MissingFlag("--termination-path"))
        );
        assert_eq!(parse(&[]), Err(ArgsError::NoSubcommand));
        assert_eq!(parse(&os(&["run"])), Err(ArgsError::UnknownSubcommand("run".into())));
    }

    #[test]
    fn parses_init() {
        let c = parse(&os(&[
            "init",
            "--tools-dir",
            "/tools",
            "--scripts-dir=/scripts",
            "--script",
            "s0=ZWNobyBoaQ==",
            "--mkdir",
            "/run/0",
            "--mkdir",
            "/run/1",
        ]))
        .expect("parses");
        assert_eq!(
            c,
            Command::Init(InitArgs {
                tools_dir: "/tools".into(),
                setup: Setup {
                    scripts: vec![("s0".into(), "ZWNobyBoaQ==".into())],
                    scripts_dir: Some("/scripts".into()),
                    mkdirs: vec!["/run/0".into(), "/run/1".into()],
                },
            })
        );
        assert_eq!(
            parse(&os(&["init", "--tools-dir", "/t", "--script", "a=YQ=="])),
            Err(ArgsError::MissingFlag("--scripts-dir"))
        );
        assert!(matches!(
            parse(&os(&[
                "init",
                "--tools-dir",
                "/t",
                "--scripts-dir",
                "/s",
                "--script",
                "a/b=YQ=="
            ])),
            Err(ArgsError::BadValue { flag: "--script", .. })
        ));
        assert_eq!(parse(&os(&["init"])), Err(ArgsError::MissingFlag("--tools-dir")));
        // Parts of one script, in order.
        assert_eq!(
            parse(&os(&[
                "init",
                "--tools-dir",
                "/t",
                "--scripts-dir",
                "/s",
                "--script",
                "a=Zm9v",
                "--script",
                "b=YQ==",
                "--script",
                "a=YmFy"
            ])),
            Ok(Command::Init(InitArgs {
                tools_dir: "/t".into(),
                setup: Setup {
                    scripts: vec![
                        ("a".into(), "Zm9v".into()),
                        ("b".into(), "YQ==".into()),
                        ("a".into(), "YmFy".into())
                    ],
                    scripts_dir: Some("/s".into()),
                    mkdirs: vec![],
                },
            }))
        );
    }

    #[test]
    fn salvages_paths_from_bad_command_lines() {
        let args = os(&[
            "step",
            "--bogus",
            "--post-file",
            "/r/1/out",
            "--termination-path=/term",
            "--",
            "--post-file",
            "/nope",
        ]);
        assert_eq!(
            salvage_step_paths(&args),
            (Some("/r/1/out".into()), Some("/term".into()))
        );
        assert_eq!(salvage_step_paths(&os(&["step", "--post-file"])), (None, None));
    }
}
