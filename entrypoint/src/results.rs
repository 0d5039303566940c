//! Which declared results did this step write?
//!
//! Each step has a results directory of its own; the declared results of
//! the step before are copied into it first (`--results-from`), so a step
//! can read what earlier steps wrote. A result is this step's if it appeared
//! or changed while the command ran. Comparing mtime with our start time is
//! not enough: the kernel stamps files with a coarse clock (one tick, ~4
//! ms), so a file written right after start can look older than the start.
//! Instead we snapshot each declared file before the command runs (inode,
//! size, times and a hash of the content) and compare.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use crate::fsutil::write_atomic;
use crate::os::{Path, PathBuf};
use crate::sys::{self, IoError};
use crate::termination::TooLarge;

#[derive(Debug, PartialEq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    /// Hash of the content (files up to the per-result limit), to catch
    /// rewrites of the same size within one clock tick.
    content: Option<u64>,
}

/// FNV-1a: cheap, and enough to notice a change (not a security check:
/// only this step can write its directory).
fn content_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn stamp(path: &Path, read_cap: u64) -> Option<Stamp> {
    let m = sys::stat(path).ok()?;
    let content = if m.is_file() && m.size <= read_cap {
        sys::read_file(path).ok().map(|b| content_hash(&b))
    } else {
        None
    };
    Some(Stamp {
        dev: m.dev,
        ino: m.ino,
        size: m.size,
        mtime: m.mtime,
        ctime: m.ctime,
        content,
    })
}

/// The limits a step's results must keep.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Per result.
    pub max_result_bytes: u64,
    /// All of this step's results together.
    pub max_results_bytes: u64,
}

pub struct Snapshot {
    dir: PathBuf,
    before: Vec<(String, Option<Stamp>)>,
    limits: Limits,
}

#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("{0}")]
    TooLarge(TooLarge),
    #[error("cannot read result {name} ({}): {source}", path.display())]
    Read {
        name: String,
        path: PathBuf,
        source: IoError,
    },
    #[error("cannot write result {name} ({}): {source}", path.display())]
    Write {
        name: String,
        path: PathBuf,
        source: IoError,
    },
    #[error("result {name} ({}) is not a regular file", path.display())]
    NotAFile { name: String, path: PathBuf },
}

/// Copies the declared results the previous step left in `from` into
/// `dir`. Problems are warnings: the step may not need them.
pub fn copy_previous(from: &Path, dir: &Path, names: &[String], limits: Limits) {
    for name in names {
        let source = from.join(name.as_str());
        let Ok(meta) = sys::stat(&source) else { continue };
        if !meta.is_file() || meta.size > limits.max_result_bytes {
            continue;
        }
        let copied = sys::read_file(&source).and_then(|bytes| write_atomic(&dir.join(name.as_str()), &bytes, 0o666));
        if let Err(e) = copied {
            warn!("cannot copy result {name} of the previous step: {e}");
        }
    }
}

impl Snapshot {
    pub fn take(dir: &Path, names: &[String], limits: Limits) -> Snapshot {
        Snapshot {
            dir: dir.to_path_buf(),
            before: names
                .iter()
                .map(|n| (n.clone(), stamp(&dir.join(n.as_str()), limits.max_result_bytes)))
                .collect(),
            limits,
        }
    }

    /// The results this step created or changed, as (lossy) UTF-8.
    pub fn changed(&self) -> Result<BTreeMap<String, String>, ResultsError> {
        let mut out = BTreeMap::new();
        let mut total: u64 = 0;
        for (name, before) in &self.before {
            let path = self.dir.join(name.as_str());
            let Some(now) = stamp(&path, self.limits.max_result_bytes) else {
                continue;
            };
            if before.as_ref() == Some(&now) {
                continue;
            }
            let meta = sys::stat(&path).map_err(|source| ResultsError::Read {
                name: name.clone(),
                path: path.clone(),
                source,
            })?;
            if !meta.is_file() {
                return Err(ResultsError::NotAFile {
                    name: name.clone(),
                    path,
                });
            }
            if meta.size > self.limits.max_result_bytes {
                // Not read at all: it could be any size.
                return Err(ResultsError::TooLarge(TooLarge {
                    result: name.clone(),
                    bytes: meta.size,
                    limit: self.limits.max_result_bytes,
                    total: false,
                }));
            }
            let bytes = sys::read_file(&path).map_err(|source| ResultsError::Read {
                name: name.clone(),
                path: path.clone(),
                source,
            })?;
            total += bytes.len() as u64;
            out.insert(name.clone(), String::from_utf8_lossy(&bytes).into_owned());
        }
        if total > self.limits.max_results_bytes {
            let largest = out
                .iter()
                .max_by_key(|(_, v)| v.len())
                .map(|(k, _)| k.clone())
                .unwrap_or_default();
            return Err(ResultsError::TooLarge(TooLarge {
                result: largest,
                bytes: total,
                limit: self.limits.max_results_bytes,
                total: true,
            }));
        }
        Ok(out)
    }
}
