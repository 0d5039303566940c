//! `init`: run once by the pod's init container (a FROM-scratch image: no
//! shell, no cp), it installs this binary and the step scripts into the
//! shared volumes and creates the run directories. A pod that mounts the
//! binary from a ConfigMap has no init container: each step lays out its
//! own script and directories with [`lay_out`].

use alloc::string::String;
use alloc::vec::Vec;

use crate::args::{InitArgs, Setup};
use crate::base64;
use crate::fsutil::write_atomic;
use crate::os::{OsStr, Path, PathBuf};
use crate::sys::{self, IoError};

/// Added when a script has no `#!` line, so a plain list of commands runs
/// with sh and stops at the first failing command.
pub const DEFAULT_SHEBANG: &str = "#!/bin/sh -e\n";

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("cannot read own executable to copy it (tried /proc/self/exe and argv[0] {argv0:?}): {source}")]
    SelfExe { argv0: String, source: IoError },
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: IoError,
    },
    #[error("--script {name}: invalid base64: {reason}")]
    Base64 { name: String, reason: String },
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(IoError) -> InitError {
    let path = path.to_path_buf();
    move |source| InitError::Io { action, path, source }
}

pub fn run(args: &InitArgs, argv0: Option<&OsStr>) -> Result<(), InitError> {
    let scripts = decode_scripts(&args.setup)?;
    let exe = read_own_executable(argv0)?;
    let target = args.tools_dir.join("entrypoint");
    write_atomic(&target, &exe, 0o755).map_err(io_err("write", &target))?;
    write_scripts_and_dirs(&args.setup, &scripts)
}

/// Lays out `setup`: its scripts (with a shebang when they have none) and
/// its directories. What the init container does for the whole pod, and a
/// step for itself when the pod has no init container.
pub fn lay_out(setup: &Setup) -> Result<(), InitError> {
    let scripts = decode_scripts(setup)?;
    write_scripts_and_dirs(setup, &scripts)
}

/// Every script decoded before anything touches the disk: a bad one leaves
/// nothing half-installed.
fn decode_scripts(setup: &Setup) -> Result<Vec<(&String, Vec<u8>)>, InitError> {
    let mut scripts = Vec::with_capacity(setup.scripts.len());
    for (name, b64) in &setup.scripts {
        let text = base64::decode(b64).map_err(|reason| InitError::Base64 {
            name: name.clone(),
            reason,
        })?;
        scripts.push((name, with_shebang(text)));
    }
    Ok(scripts)
}

fn write_scripts_and_dirs(setup: &Setup, scripts: &[(&String, Vec<u8>)]) -> Result<(), InitError> {
    if let Some(dir) = &setup.scripts_dir {
        for (name, text) in scripts {
            let path = dir.join(name.as_str());
            write_atomic(&path, text, 0o755).map_err(io_err("write script", &path))?;
        }
    }
    for dir in &setup.mkdirs {
        sys::create_dir_all(dir).map_err(io_err("create directory", dir))?;
        // 0777 explicitly (the umask would drop it) so steps running as any
        // uid can write their post files there.
        sys::chmod(dir, 0o777).map_err(io_err("chmod 0777", dir))?;
    }
    Ok(())
}

/// `/proc/self/exe` first; argv[0] as a fallback for a chroot without /proc.
fn read_own_executable(argv0: Option<&OsStr>) -> Result<Vec<u8>, InitError> {
    match sys::read_file(Path::new("/proc/self/exe")) {
        Ok(bytes) => Ok(bytes),
        Err(proc_err) => {
            let Some(argv0) = argv0.filter(|a| a.as_bytes().contains(&b'/')) else {
                return Err(InitError::SelfExe {
                    argv0: argv0.map(|a| a.to_string_lossy().into_owned()).unwrap_or_default(),
                    source: proc_err,
                });
            };
            sys::read_file(argv0).map_err(|source| InitError::SelfExe {
                argv0: argv0.to_string_lossy().into_owned(),
                source,
            })
        }
    }
}

pub fn with_shebang(text: Vec<u8>) -> Vec<u8> {
    if text.starts_with(b"#!") {
        return text;
    }
    let mut out = Vec::with_capacity(DEFAULT_SHEBANG.len() + text.len());
    out.extend_from_slice(DEFAULT_SHEBANG.as_bytes());
    out.extend_from_slice(&text);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_shebang_only_when_missing() {
        assert_eq!(with_shebang(b"echo hi\n".to_vec()), b"#!/bin/sh -e\necho hi\n");
        assert_eq!(
            with_shebang(b"#!/usr/bin/env python3\n".to_vec()),
            b"#!/usr/bin/env python3\n"
        );
        // A `#!` that is not on the first line does not count.
        assert_eq!(
            with_shebang(b"\n#!/bin/bash\n".to_vec()),
            b"#!/bin/sh -e\n\n#!/bin/bash\n"
        );
        assert_eq!(with_shebang(Vec::new()), b"#!/bin/sh -e\n");
    }
}
