//! Deterministic, valid Kubernetes names for the objects a run creates.
//! Deterministic names make creation idempotent: a restarted controller
//! finds the pod it made instead of making a second one.

use sha2::{Digest, Sha256};

/// Pod names may be 253 characters, but a pod's hostname is cut at 63 and
/// label values are limited to 63, so we stay within a label's length.
pub const MAX_NAME_LEN: usize = 63;
/// Hex digits of the hash appended when a name had to be shortened.
const HASH_LEN: usize = 8;

fn short_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest
        .iter()
        .take(HASH_LEN / 2)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Joins `parts` with `-` into a DNS label: lowercase, invalid characters
/// replaced by `-`. A name that had to change (too long, or characters
/// replaced) gets a hash of the original, so distinct inputs stay distinct.
pub fn dns_label(parts: &[&str]) -> String {
    let joined = parts.join("-");
    let cleaned: String = joined
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    let cleaned = cleaned.trim_matches('-');
    if cleaned == joined && cleaned.len() <= MAX_NAME_LEN {
        return joined;
    }
    let keep = cleaned.len().min(MAX_NAME_LEN - HASH_LEN - 1);
    let prefix = cleaned[..keep].trim_end_matches('-');
    let hash = short_hash(&joined);
    if prefix.is_empty() {
        hash
    } else {
        format!("{prefix}-{hash}")
    }
}

/// The pod of a run's attempt: `<run>-pod`, then `<run>-pod-retry<N>`.
pub fn pod_name(run_name: &str, attempt: u32) -> String {
    if attempt == 0 {
        dns_label(&[run_name, "pod"])
    } else {
        dns_label(&[run_name, "pod", &format!("retry{attempt}")])
    }
}

/// Hex digits of the hash that makes a joined name unambiguous. Ten, not
/// [`HASH_LEN`], so a plain name (whose last part is never ten hex digits)
/// can never look like a hashed one.
const JOIN_HASH_LEN: usize = 10;

fn is_joined_hash(part: &str) -> bool {
    part.len() == JOIN_HASH_LEN && part.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The name of an object made for `part` of `parent` (a pipeline task's
/// child run, a workspace's claim): `<parent>-<part>` when that is
/// unambiguous, else `<readable prefix>-<hash of both>`.
///
/// Joining with `-` alone is ambiguous: run `a` with task `b-c` and run
/// `a-b` with task `c` would both be `a-b-c`, and two runs would share one object.
/// The plain form is used only when `part` has no `-` (so it is exactly
/// the text after the last `-`, and parent and part can be read back) and
/// is not ten hex digits (so it cannot be mistaken for the hash); every
/// other pair gets the hash of `parent/part` (`/` appears in neither).
/// Both forms stay within [`MAX_NAME_LEN`].
pub fn joined_name(parent: &str, part: &str) -> String {
    let plain = format!("{parent}-{part}");
    let simple = !part.contains('-') && !is_joined_hash(part);
    if simple && plain.len() <= MAX_NAME_LEN && dns_label(&[&plain]) == plain {
        return plain;
    }
    let hash = short_hash_of(&format!("{parent}/{part}"), JOIN_HASH_LEN);
    with_hash(&plain, &hash)
}

/// `<readable>-<hash>`: `readable` made a DNS label and cut so that the
/// whole stays within [`MAX_NAME_LEN`]; the hash alone if nothing of it is left.
fn with_hash(readable: &str, hash: &str) -> String {
    let cleaned = dns_label(&[readable]);
    let mut end = cleaned.len().min(MAX_NAME_LEN - hash.len() - 1);
    while !cleaned.is_char_boundary(end) {
        end -= 1;
    }
    let prefix = cleaned[..end].trim_end_matches('-');
    if prefix.is_empty() {
        hash.to_string()
    } else {
        format!("{prefix}-{hash}")
    }
}

fn short_hash_of(text: &str, len: usize) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    hex[..len].to_string()
}

/// The child run of combination `index` of a matrixed pipeline task:
/// `<run>-<task>-<index>-<hash>`, cut to [`MAX_NAME_LEN`]. The hash (of
/// run, task and index, joined with characters no name contains) is always
/// there, so the name can be mistaken neither for another run's child nor
/// for [`joined_name`]'s forms: a plain joined name never ends in ten hex
/// digits, and a hashed one hashes a different text.
pub fn matrix_child_name(run_name: &str, task: &str, index: usize) -> String {
    let hash = short_hash_of(&format!("{run_name}/{task}#{index}"), JOIN_HASH_LEN);
    with_hash(&format!("{run_name}-{task}-{index}"), &hash)
}

/// Hex digits of a claim's key in a label (see `pod::affinity`).
const CLAIM_KEY_LEN: usize = 12;

/// A short, stable key of a claim name, for label keys (whose name part
/// may be 63 characters, a claim name 253).
pub fn claim_key(claim: &str) -> String {
    short_hash_of(claim, CLAIM_KEY_LEN)
}

/// The claim made from a workspace's volumeClaimTemplate for one run.
pub fn claim_name(run_name: &str, workspace: &str) -> String {
    joined_name(run_name, workspace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_children_are_distinct_bounded_and_readable() {
        let name = matrix_child_name("run", "build", 2);
        assert!(name.starts_with("run-build-2-"), "{name}");
        assert_eq!(name.len(), "run-build-2-".len() + JOIN_HASH_LEN);
        assert_ne!(
            matrix_child_name("run", "build", 2),
            matrix_child_name("run", "build", 3)
        );
        assert_ne!(matrix_child_name("a", "b-c", 0), matrix_child_name("a-b", "c", 0));
        assert_ne!(matrix_child_name("a", "b", 0), joined_name("a", "b-0"));
        let long = matrix_child_name(&"r".repeat(60), &"t".repeat(63), 255);
        assert!(long.len() <= MAX_NAME_LEN, "{long}");
        assert_eq!(dns_label(&[&long]), long);
    }

    #[test]
    fn short_valid_names_are_kept() {
        assert_eq!(pod_name("tr1", 0), "tr1-pod");
        assert_eq!(pod_name("tr1", 2), "tr1-pod-retry2");
    }

    #[test]
    fn long_names_are_cut_with_a_stable_hash() {
        let long = "a".repeat(100);
        let name = pod_name(&long, 0);
        assert_eq!(name.len(), MAX_NAME_LEN);
        assert_eq!(name, pod_name(&long, 0));
        assert_ne!(name, pod_name(&long, 1));
    }

    #[test]
    fn invalid_characters_are_replaced_and_disambiguated() {
        let a = claim_name("run", "my_ws");
        let b = claim_name("run", "my-ws");
        assert!(a.starts_with("run-my-ws-"), "{a}");
        // A workspace name with `-` gets a hash too, since `run` + `my-ws`
        // and `run-my` + `ws` must not share a claim (see joined_name).
        assert!(b.starts_with("run-my-ws-"), "{b}");
        assert_eq!(claim_name("run", "myws"), "run-myws");
        assert_ne!(a, b);
    }

    #[test]
    fn joined_names_cannot_collide() {
        // The issue's pair: both used to be "a-b-c".
        let first = joined_name("a", "b-c");
        let second = joined_name("a-b", "c");
        assert_eq!(second, "a-b-c", "a part without '-' keeps the readable name");
        assert!(
            first.starts_with("a-b-c-") && first.len() == "a-b-c-".len() + 10,
            "{first}"
        );
        assert_ne!(first, second);
        // A part that looks like a hash cannot imitate a hashed name.
        let hash = first.rsplit('-').next().expect("a hash");
        assert_ne!(joined_name("a-b-c", hash), first);
    }

    #[test]
    fn joined_names_stay_within_a_label() {
        let long = "r".repeat(60);
        let a = joined_name(&long, "build");
        let b = joined_name(&long, "test");
        assert!(a.len() <= MAX_NAME_LEN && b.len() <= MAX_NAME_LEN, "{a} {b}");
        assert_ne!(a, b);
        assert_eq!(a, joined_name(&long, "build"), "stable");
    }
}
