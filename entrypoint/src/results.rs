//! Which declared results did this step write?
//!
//! The results directory is shared by all steps, so a file may already be
//! there from an earlier step. Comparing mtime with our start time is not
//! enough: the kernel stamps files with a coarse clock (one tick, ~4 ms),
//! so a file written right after start can look older than the start.
//! Instead we snapshot each declared file before the command runs and
//! report it if it appeared, or if its inode/size/times or content changed.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use crate::os::{Path, PathBuf};
use crate::sys::{self, IoError};
use crate::termination::{EncodeError, MESSAGE_LIMIT_BYTES};

/// Files above this are not read at all: they cannot fit in a report.
const READ_CAP: u64 = 1 << 20;

#[derive(Debug, PartialEq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    /// Content of small files, to catch rewrites within one clock tick.
    content: Option<Vec<u8>>,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = sys::stat(path).ok()?;
    let content = if m.is_file() && m.size <= MESSAGE_LIMIT_BYTES as u64 {
        sys::read_file(path).ok()
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

pub struct Snapshot {
    dir: PathBuf,
    before: Vec<(String, Option<Stamp>)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error(transparent)]
    TooLarge(EncodeError),
    #[error("cannot read result {name} ({}): {source}", path.display())]
    Read {
        name: String,
        path: PathBuf,
        source: IoError,
    },
    #[error("result {name} ({}) is not a regular file", path.display())]
    NotAFile { name: String, path: PathBuf },
}

impl Snapshot {
    pub fn take(dir: &Path, names: &[String]) -> Snapshot {
        Snapshot {
            dir: dir.to_path_buf(),
            before: names
                .iter()
                .map(|n| (n.clone(), stamp(&dir.join(n.as_str()))))
                .collect(),
        }
    }

    /// The results this step created or changed, as (lossy) UTF-8.
    pub fn changed(&self) -> Result<BTreeMap<String, String>, ResultsError> {
        let mut out = BTreeMap::new();
        for (name, before) in &self.before {
            let path = self.dir.join(name.as_str());
            let Some(now) = stamp(&path) else { continue };
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
            if meta.size > READ_CAP {
                // Not worth reading; the report cannot hold it anyway.
                let size = usize::try_from(meta.size).unwrap_or(usize::MAX);
                return Err(ResultsError::TooLarge(EncodeError::TooLarge {
                    result: name.clone(),
                    result_bytes: size,
                    total_bytes: size,
                    limit: MESSAGE_LIMIT_BYTES,
                }));
            }
            let bytes = sys::read_file(&path).map_err(|source| ResultsError::Read {
                name: name.clone(),
                path: path.clone(),
                source,
            })?;
            out.insert(name.clone(), String::from_utf8_lossy(&bytes).into_owned());
        }
        Ok(out)
    }
}
