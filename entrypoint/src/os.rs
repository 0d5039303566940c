//! Byte-string command-line arguments and paths (std's `OsString` and
//! `PathBuf` are not available without std). On Linux both are just bytes.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// An owned argument or path.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OsString(Vec<u8>);

/// A borrowed argument or path.
#[derive(PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub struct OsStr([u8]);

pub type PathBuf = OsString;
pub type Path = OsStr;

impl OsStr {
    pub fn from_bytes(bytes: &[u8]) -> &OsStr {
        // SAFETY: OsStr is a repr(transparent) wrapper around [u8], so the
        // pointer cast keeps layout, metadata and lifetime.
        unsafe { &*(bytes as *const [u8] as *const OsStr) }
    }

    pub fn new<S: AsRef<[u8]> + ?Sized>(s: &S) -> &OsStr {
        OsStr::from_bytes(s.as_ref())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn as_os_str(&self) -> &OsStr {
        self
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn to_str(&self) -> Option<&str> {
        core::str::from_utf8(&self.0).ok()
    }

    pub fn to_string_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }

    pub fn to_os_string(&self) -> OsString {
        OsString(self.0.to_vec())
    }

    pub fn to_path_buf(&self) -> PathBuf {
        self.to_os_string()
    }

    /// Lossy UTF-8, like `Path::display`.
    pub fn display(&self) -> Display<'_> {
        Display(self)
    }

    /// `self/other`; an absolute `other` replaces `self` (like std).
    pub fn join<S: AsRef<[u8]> + ?Sized>(&self, other: &S) -> PathBuf {
        let other = other.as_ref();
        if other.first() == Some(&b'/') {
            return OsString(other.to_vec());
        }
        let mut v = Vec::with_capacity(self.0.len() + other.len() + 1);
        v.extend_from_slice(&self.0);
        if !v.is_empty() && v.last() != Some(&b'/') {
            v.push(b'/');
        }
        v.extend_from_slice(other);
        OsString(v)
    }

    /// Everything but the last component: `/r/0/out` -> `/r/0`, `out` ->
    /// `` and `/` -> None (like std).
    pub fn parent(&self) -> Option<&Path> {
        let trimmed = trim_end_slashes(&self.0);
        if trimmed.is_empty() || trimmed == b"/" {
            return None;
        }
        Some(match trimmed.iter().rposition(|&b| b == b'/') {
            None => OsStr::from_bytes(b""),
            Some(i) => {
                let head = trim_end_slashes(&trimmed[..=i]);
                OsStr::from_bytes(if head.is_empty() { b"/" } else { head })
            }
        })
    }

    /// The last component, unless it is `..` (like std).
    pub fn file_name(&self) -> Option<&OsStr> {
        let trimmed = trim_end_slashes(&self.0);
        let name = match trimmed.iter().rposition(|&b| b == b'/') {
            Some(i) => &trimmed[i + 1..],
            None => trimmed,
        };
        (!name.is_empty() && name != b".." && name != b".").then(|| OsStr::from_bytes(name))
    }
}

fn trim_end_slashes(b: &[u8]) -> &[u8] {
    let mut end = b.len();
    while end > 1 && b[end - 1] == b'/' {
        end -= 1;
    }
    &b[..end]
}

impl OsString {
    pub fn new() -> OsString {
        OsString(Vec::new())
    }

    pub fn as_os_str(&self) -> &OsStr {
        OsStr::from_bytes(&self.0)
    }

    pub fn push<S: AsRef<[u8]> + ?Sized>(&mut self, s: &S) {
        self.0.extend_from_slice(s.as_ref());
    }

    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

impl core::ops::Deref for OsString {
    type Target = OsStr;
    fn deref(&self) -> &OsStr {
        self.as_os_str()
    }
}

impl AsRef<[u8]> for OsStr {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for OsString {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<OsStr> for OsString {
    fn as_ref(&self) -> &OsStr {
        self
    }
}

impl<T: AsRef<[u8]> + ?Sized> From<&T> for OsString {
    fn from(s: &T) -> OsString {
        OsString(s.as_ref().to_vec())
    }
}

impl From<Vec<u8>> for OsString {
    fn from(v: Vec<u8>) -> OsString {
        OsString(v)
    }
}

impl From<String> for OsString {
    fn from(s: String) -> OsString {
        OsString(s.into_bytes())
    }
}

impl PartialEq<str> for OsString {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<str> for OsStr {
    fn eq(&self, other: &str) -> bool {
        &self.0 == other.as_bytes()
    }
}

impl fmt::Debug for OsStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.to_string_lossy(), f)
    }
}

impl fmt::Debug for OsString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_os_str(), f)
    }
}

pub struct Display<'a>(&'a OsStr);

impl fmt::Display for Display<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_string_lossy())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parts_match_std() {
        for p in ["/r/0/out", "out", "/", "/a", "a/b/", "a//b", "", "/a/b/..", "./x"] {
            let ours = Path::new(p);
            let std = std::path::Path::new(p);
            assert_eq!(
                ours.parent().map(|x| x.to_string_lossy().into_owned()),
                std.parent().map(|x| x.to_string_lossy().into_owned()),
                "parent of {p:?}"
            );
            if p != "./x" && p != "a//b" {
                assert_eq!(
                    ours.file_name().map(|x| x.to_string_lossy().into_owned()),
                    std.file_name().map(|x| x.to_string_lossy().into_owned()),
                    "file_name of {p:?}"
                );
            }
            assert_eq!(
                ours.join("n").to_string_lossy(),
                std.join("n").to_string_lossy(),
                "join on {p:?}"
            );
        }
    }
}
