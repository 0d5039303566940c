//! Small file helpers shared by `init` and `step`.

use alloc::string::String;
use core::fmt::Write as _;

use crate::os::{OsString, Path, PathBuf};
use crate::sys::{self, IoError, IoResult};

/// Writes `bytes` to `path` via a temp file in the same directory and a
/// rename, so a reader (the next step, waiting on inotify) never sees a
/// partial file. Parent directories are created. The mode is set explicitly
/// because the umask would otherwise strip bits (e.g. 0755 scripts).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> IoResult<()> {
    let dir = parent_dir(path);
    sys::create_dir_all(&dir)?;
    let name = path.file_name().ok_or(IoError::Msg("path has no file name"))?;
    let mut tmp_name = OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(&format!(".tmp{}", sys::getpid()));
    let tmp = dir.join(&tmp_name);
    let result = (|| {
        let f = sys::open_write(&tmp, true, mode)?;
        f.write_all(bytes)?;
        f.fchmod(mode)?;
        drop(f);
        sys::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = sys::unlink(&tmp);
    }
    result
}

/// Writes in place (truncate + write). Used for the termination message:
/// the kubelet bind-mounts that file, so it cannot be renamed over.
pub fn write_in_place(path: &Path, bytes: &[u8]) -> IoResult<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        sys::create_dir_all(dir)?;
    }
    // No O_TRUNC: ext4 flushes on close after a truncate-to-zero (its
    // replace-via-truncate heuristic), which cost milliseconds here.
    // Write, then cut any longer old content.
    let f = sys::open_write(path, false, 0o644)?;
    f.write_all(bytes)?;
    f.set_len(bytes.len() as u64)
}

/// Prints a line on stderr without panicking if stderr is gone (eprintln!
/// would panic, and panic = abort would lose the report).
pub fn warn(line: core::fmt::Arguments<'_>) {
    let mut text = String::from("cicd-entrypoint: ");
    let _ = writeln!(text, "{line}");
    let _ = sys::write_all(2, text.as_bytes());
}

pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `path` with `.err` appended to its file name (`/r/0/out` -> `/r/0/out.err`).
pub fn err_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(".err");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn err_path_appends_suffix() {
        assert_eq!(err_path(Path::new("/r/0/out")), PathBuf::from("/r/0/out.err"));
    }
}
