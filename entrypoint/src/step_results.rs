//! Step results: values one step writes for the steps after it.
//!
//! A step writes its step result to a file of its own hand-off directory
//! (readable by every later step, writable only by it). A later step's
//! command and environment may hold `$(steps.<s>.results.<r>)`: the
//! controller cannot know the value when it builds the pod, so it leaves
//! the reference as written and tells this step's entrypoint which file it
//! stands for; the entrypoint replaces it just before the command starts.
//! A task result may also take its value from a step result
//! (`results[].value`): the producing step's entrypoint copies the file
//! into its results directory once the command ended, where it travels as
//! any other task result.

use alloc::string::String;
use alloc::vec::Vec;

use crate::fsutil::write_atomic;
use crate::os::{OsString, Path, PathBuf};
use crate::results::{Limits, ResultsError};
use crate::sys;
use crate::termination::TooLarge;

/// `haystack` with every `needle` replaced by `with`; None when there is none.
fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = haystack;
    let mut found = false;
    while let Some(at) = rest.windows(needle.len()).position(|window| window == needle) {
        found = true;
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(with);
        rest = &rest[at + needle.len()..];
    }
    if !found {
        return None;
    }
    out.extend_from_slice(rest);
    Some(out)
}

/// The content of a step result file, at most `max_bytes`.
fn read_step_result(expr: &str, file: &Path, max_bytes: u64) -> Result<Vec<u8>, String> {
    let meta = sys::stat(file).map_err(|e| {
        format!(
            "$({expr}) cannot be given to the command: {} was not written ({e}); did that step write its result?",
            file.display()
        )
    })?;
    if !meta.is_file() {
        return Err(format!("$({expr}): {} is not a regular file", file.display()));
    }
    if meta.size > max_bytes {
        return Err(format!(
            "$({expr}): {} is {} bytes, over the limit of {max_bytes} bytes for one result",
            file.display(),
            meta.size
        ));
    }
    sys::read_file(file).map_err(|e| format!("$({expr}): cannot read {}: {e}", file.display()))
}

/// The command and environment with every step result reference replaced
/// (in the environment, only in the values: a name never holds one).
pub fn expand(
    refs: &[(String, PathBuf)],
    command: &[OsString],
    env: &[OsString],
    max_bytes: u64,
) -> Result<(Vec<OsString>, Vec<OsString>), String> {
    let mut command = command.to_vec();
    let mut env = env.to_vec();
    for (expr, file) in refs {
        let value = read_step_result(expr, file, max_bytes)?;
        let mut needle = Vec::with_capacity(expr.len() + 3);
        needle.extend_from_slice(b"$(");
        needle.extend_from_slice(expr.as_bytes());
        needle.push(b')');
        for arg in &mut command {
            if let Some(replaced) = replace_all(arg.as_bytes(), &needle, &value) {
                *arg = OsString::from(replaced);
            }
        }
        for entry in &mut env {
            let bytes = entry.as_bytes();
            let Some(eq) = bytes.iter().position(|&b| b == b'=') else {
                continue;
            };
            if let Some(replaced) = replace_all(&bytes[eq + 1..], &needle, &value) {
                let mut whole = bytes[..=eq].to_vec();
                whole.extend_from_slice(&replaced);
                *entry = OsString::from(whole);
            }
        }
    }
    Ok((command, env))
}

/// Copies each `(task result, step result file)` this step wrote into its
/// results directory. A step result the command did not write is no task
/// result (as a result file never written); one over the limit fails the
/// step as a result over the limit does.
pub fn promote(pairs: &[(String, PathBuf)], results_dir: &Path, limits: Limits) -> Result<(), ResultsError> {
    for (name, file) in pairs {
        let Ok(meta) = sys::stat(file) else { continue };
        if !meta.is_file() {
            return Err(ResultsError::NotAFile {
                name: name.clone(),
                path: file.clone(),
            });
        }
        if meta.size > limits.max_result_bytes {
            return Err(ResultsError::TooLarge(TooLarge {
                result: name.clone(),
                bytes: meta.size,
                limit: limits.max_result_bytes,
                total: false,
            }));
        }
        let read = |source| ResultsError::Read {
            name: name.clone(),
            path: file.clone(),
            source,
        };
        let bytes = sys::read_file(file).map_err(read)?;
        let target = results_dir.join(name.as_str());
        write_atomic(&target, &bytes, 0o666).map_err(|source| ResultsError::Write {
            name: name.clone(),
            path: target,
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::replace_all;

    #[test]
    fn replaces_every_occurrence_and_only_those() {
        assert_eq!(
            replace_all(b"a=$(x)-$(x)!", b"$(x)", b"vv").as_deref(),
            Some(&b"a=vv-vv!"[..])
        );
        assert_eq!(replace_all(b"$(x)", b"$(x)", b"").as_deref(), Some(&b""[..]));
        assert_eq!(replace_all(b"$(xy)", b"$(x)", b"v"), None);
        assert_eq!(replace_all(b"", b"$(x)", b"v"), None);
    }
}
