//! Whether an object found under an expected name is this run's own.
//! Names are deterministic, so anybody who may create objects in the
//! namespace can make one first; only the controller owner reference (set
//! by us when we create it) tells ours apart.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// True if `meta` names `uid` as its controlling owner.
pub fn is_controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    !uid.is_empty()
        && meta
            .owner_references
            .iter()
            .flatten()
            .any(|owner| owner.uid == uid && owner.controller == Some(true))
}

/// The message of a run that found a foreign object under its name, e.g.
/// `pod "x-pod" exists and is not owned by MyTaskRun "x"`.
pub fn name_taken(what: &str, name: &str, run_kind: &str, run_name: &str) -> String {
    format!("{what} {name:?} exists and is not owned by {run_kind} {run_name:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn owned(uid: &str, controller: Option<bool>) -> ObjectMeta {
        ObjectMeta {
            owner_references: Some(vec![OwnerReference {
                uid: uid.into(),
                controller,
                ..Default::default()
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn only_the_controlling_owner_counts() {
        assert!(is_controlled_by(&owned("u1", Some(true)), "u1"));
        assert!(
            !is_controlled_by(&owned("u1", None), "u1"),
            "an owner that is not the controller"
        );
        assert!(!is_controlled_by(&owned("u2", Some(true)), "u1"));
        assert!(!is_controlled_by(&ObjectMeta::default(), "u1"));
        assert!(
            !is_controlled_by(&owned("", Some(true)), ""),
            "an empty uid matches nothing"
        );
    }
}
