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

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::fsutil::write_atomic;
use crate::json_strings;
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

/// Which part of a step result a reference takes.
#[derive(Debug, PartialEq, Eq)]
enum Selector<'a> {
    /// `$(steps.s.results.r)`: the file as written.
    Whole,
    /// `$(steps.s.results.r[*])`: every element of an array result, each
    /// its own item of the command.
    All,
    /// `$(steps.s.results.r[i])`: one element of an array result.
    Index(usize),
    /// `$(steps.s.results.r.key)`: one key of an object result.
    Key(&'a str),
}

/// The selector of `steps.<s>.results.<r>...`. Step names are DNS labels
/// and the controller accepts no `.`, `[` or `]` in a step result's name
/// it refers to, so the name ends at the first of those.
fn selector(expr: &str) -> Result<Selector<'_>, String> {
    let bad = || format!("$({expr}) is not a step result reference the entrypoint understands");
    let (_, named) = expr
        .strip_prefix("steps.")
        .and_then(|rest| rest.split_once(".results."))
        .ok_or_else(bad)?;
    let rest = &named[named.find(['.', '[']).unwrap_or(named.len())..];
    if rest.is_empty() {
        return Ok(Selector::Whole);
    }
    if rest == "[*]" {
        return Ok(Selector::All);
    }
    if let Some(key) = rest.strip_prefix('.').filter(|key| !key.is_empty()) {
        return Ok(Selector::Key(key));
    }
    rest.strip_prefix('[')
        .and_then(|index| index.strip_suffix(']'))
        .and_then(|index| index.parse().ok())
        .map(Selector::Index)
        .ok_or_else(bad)
}

/// What a reference stands for once its step result is read.
enum Replacement {
    One(Vec<u8>),
    /// An array's elements, only ever a whole item of the command.
    Many(Vec<Vec<u8>>),
}

/// The array a step result holds (a JSON array of strings).
fn as_array(expr: &str, value: &[u8]) -> Result<Vec<String>, String> {
    json_strings::parse_array(value)
        .map_err(|e| format!("$({expr}): the step result is not a JSON array of strings ({e})"))
}

/// The part of `value` that `expr` selects.
fn replacement(expr: &str, value: Vec<u8>) -> Result<Replacement, String> {
    match selector(expr)? {
        Selector::Whole => Ok(Replacement::One(value)),
        Selector::All => Ok(Replacement::Many(
            as_array(expr, &value)?.into_iter().map(String::into_bytes).collect(),
        )),
        Selector::Index(index) => {
            let array = as_array(expr, &value)?;
            let length = array.len();
            array
                .into_iter()
                .nth(index)
                .map(|e| Replacement::One(e.into_bytes()))
                .ok_or_else(|| format!("$({expr}): the step result has {length} element(s), no element {index}"))
        }
        Selector::Key(key) => {
            let object = json_strings::parse_object(&value)
                .map_err(|e| format!("$({expr}): the step result is not a JSON object of strings ({e})"))?;
            // The last of a repeated key wins, as in the controller's reading.
            if let Some((_, v)) = object.iter().rev().find(|(k, _)| k == key) {
                return Ok(Replacement::One(v.clone().into_bytes()));
            }
            let keys: Vec<&str> = object.iter().map(|(k, _)| k.as_str()).collect();
            Err(format!(
                "$({expr}): the step result has no key {key:?} (it has: {})",
                keys.join(", ")
            ))
        }
    }
}

/// `$(expr)` as bytes.
fn needle_of(expr: &str) -> Vec<u8> {
    let mut needle = Vec::with_capacity(expr.len() + 3);
    needle.extend_from_slice(b"$(");
    needle.extend_from_slice(expr.as_bytes());
    needle.push(b')');
    needle
}

/// Every command item that is exactly `needle` becomes the array's
/// elements; one that merely contains it is an error.
fn spread(command: Vec<OsString>, needle: &[u8], elements: &[Vec<u8>], expr: &str) -> Result<Vec<OsString>, String> {
    let mut out = Vec::with_capacity(command.len() + elements.len());
    for arg in command {
        if arg.as_bytes() == needle {
            out.extend(elements.iter().map(|e| OsString::from(e.clone())));
        } else if arg.as_bytes().windows(needle.len()).any(|w| w == needle) {
            return Err(format!(
                "$({expr}) is an array and can only stand alone as one item of command or args"
            ));
        } else {
            out.push(arg);
        }
    }
    Ok(out)
}

/// Whether the value of `entry` (`NAME=value`) holds `needle`.
fn value_contains(entry: &OsString, needle: &[u8]) -> bool {
    let bytes = entry.as_bytes();
    bytes
        .iter()
        .position(|&b| b == b'=')
        .is_some_and(|eq| bytes[eq + 1..].windows(needle.len()).any(|w| w == needle))
}

/// `entry` (`NAME=value`) with `needle` replaced in its value only.
fn replace_in_env(entry: &OsString, needle: &[u8], value: &[u8]) -> Option<OsString> {
    let bytes = entry.as_bytes();
    let eq = bytes.iter().position(|&b| b == b'=')?;
    let replaced = replace_all(&bytes[eq + 1..], needle, value)?;
    let mut whole = bytes[..=eq].to_vec();
    whole.extend_from_slice(&replaced);
    Some(OsString::from(whole))
}

/// The command and environment with every step result reference replaced
/// (in the environment, only in the values: a name never holds one). An
/// array's `[*]` becomes one item of the command per element.
pub fn expand(
    refs: &[(String, PathBuf)],
    command: &[OsString],
    env: &[OsString],
    max_bytes: u64,
) -> Result<(Vec<OsString>, Vec<OsString>), String> {
    let mut command = command.to_vec();
    let mut env = env.to_vec();
    for (expr, file) in refs {
        let needle = needle_of(expr);
        let value = match replacement(expr, read_step_result(expr, file, max_bytes)?)? {
            Replacement::One(value) => value,
            Replacement::Many(elements) => {
                if env.iter().any(|entry| value_contains(entry, &needle)) {
                    return Err(format!("$({expr}) is an array and cannot be used in env"));
                }
                command = spread(command, &needle, &elements, expr)?;
                continue;
            }
        };
        for arg in &mut command {
            if let Some(replaced) = replace_all(arg.as_bytes(), &needle, &value) {
                *arg = OsString::from(replaced);
            }
        }
        for entry in &mut env {
            if let Some(replaced) = replace_in_env(entry, &needle, &value) {
                *entry = replaced;
            }
        }
    }
    Ok((command, env))
}

/// This step's own step results that its command wrote, for its report
/// (`status.steps[].results`): held to the same limits as task results.
pub fn collect(own: &[(String, PathBuf)], limits: Limits) -> Result<BTreeMap<String, String>, ResultsError> {
    let mut out = BTreeMap::new();
    let mut total = 0u64;
    for (name, file) in own {
        let Some(bytes) = read_own(name, file, limits)? else {
            continue;
        };
        total += bytes.len() as u64;
        out.insert(name.clone(), String::from_utf8_lossy(&bytes).into_owned());
    }
    if total > limits.max_results_bytes {
        let largest = out.iter().max_by_key(|(_, v)| v.len()).map(|(k, _)| k.clone());
        return Err(ResultsError::TooLarge(TooLarge {
            result: largest.unwrap_or_default(),
            bytes: total,
            limit: limits.max_results_bytes,
            total: true,
        }));
    }
    Ok(out)
}

/// One of this step's step result files: None when it was not written.
fn read_own(name: &str, file: &Path, limits: Limits) -> Result<Option<Vec<u8>>, ResultsError> {
    let Ok(meta) = sys::stat(file) else { return Ok(None) };
    if !meta.is_file() {
        return Err(ResultsError::NotAFile {
            name: name.to_string(),
            path: file.to_path_buf(),
        });
    }
    if meta.size > limits.max_result_bytes {
        return Err(ResultsError::TooLarge(TooLarge {
            result: name.to_string(),
            bytes: meta.size,
            limit: limits.max_result_bytes,
            total: false,
        }));
    }
    sys::read_file(file).map(Some).map_err(|source| ResultsError::Read {
        name: name.to_string(),
        path: file.to_path_buf(),
        source,
    })
}

/// Copies each `(task result, step result file)` this step wrote into its
/// results directory. A step result the command did not write is no task
/// result (as a result file never written); one over the limit fails the
/// step as a result over the limit does.
pub fn promote(pairs: &[(String, PathBuf)], results_dir: &Path, limits: Limits) -> Result<(), ResultsError> {
    for (name, file) in pairs {
        let Some(bytes) = read_own(name, file, limits)? else {
            continue;
        };
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
    use super::{Selector, replace_all, selector};

    #[test]
    fn selectors_follow_the_result_name() {
        assert_eq!(selector("steps.a.results.r"), Ok(Selector::Whole));
        assert_eq!(selector("steps.a.results.r[*]"), Ok(Selector::All));
        assert_eq!(selector("steps.a.results.r[12]"), Ok(Selector::Index(12)));
        assert_eq!(selector("steps.a.results.r.url"), Ok(Selector::Key("url")));
        assert!(selector("steps.a.results.r[x]").is_err());
        assert!(selector("steps.a.results.r.").is_err());
        assert!(selector("results.r").is_err());
    }

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
