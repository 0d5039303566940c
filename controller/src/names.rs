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

/// The claim made from a workspace's volumeClaimTemplate for one run.
pub fn claim_name(run_name: &str, workspace: &str) -> String {
    dns_label(&[run_name, workspace])
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(b, "run-my-ws");
        assert_ne!(a, b);
    }
}
