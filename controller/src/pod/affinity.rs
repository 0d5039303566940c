//! Workspace affinity: the pods of one pipeline run that mount the same
//! PersistentVolumeClaim are placed on one node, so two tasks running at the
//! same time never wait for a ReadWriteOnce volume attached to another node.
//!
//! No placeholder pod is needed. Each such pod carries one label per claim
//! it mounts (`claim-<hash of the claim name>`, value: the pipeline run) and
//! a required pod-affinity term on that label with the node as topology.
//! The first pod matches its own term, which the scheduler accepts when no
//! other pod matches yet; every later pod must then go to the node of a pod
//! already there. The scheduler looks at pods that are pending-but-assumed
//! or running, not at finished ones: tasks that run one after another may
//! use different nodes (the volume moves with them), tasks that overlap in
//! time share one. A pod of a plain task run, or without claims, gets
//! nothing and spreads as usual.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, PodAffinity, PodAffinityTerm, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::names;

/// Prefix of the per-claim label key (the rest is a hash of the claim's
/// name: claim names may be 253 characters, a label key's name part 63).
pub const LABEL_CLAIM_PREFIX: &str = concat!(crate::api_group!(), "/claim-");
/// The topology that "same node" means.
pub const TOPOLOGY_NODE: &str = "kubernetes.io/hostname";

/// The label key that marks the pods of one pipeline run mounting `claim`.
pub fn claim_label(claim: &str) -> String {
    format!("{LABEL_CLAIM_PREFIX}{}", names::claim_key(claim))
}

/// The claims the pod's volumes mount, each once, in order.
fn claims_of(volumes: &[Volume]) -> Vec<&str> {
    let mut claims: Vec<&str> = Vec::new();
    for volume in volumes {
        if let Some(claim) = &volume.persistent_volume_claim
            && !claims.contains(&claim.claim_name.as_str())
        {
            claims.push(claim.claim_name.as_str());
        }
    }
    claims
}

/// Adds the claim labels to `labels` and the pod-affinity terms to
/// `affinity` (keeping the user's own terms) for a pod of the pipeline run
/// labelled `pipeline_run` that mounts `volumes`. Returns the affinity to
/// set: `affinity` unchanged when there is no pipeline run or no claim.
pub fn with_claim_affinity(
    pipeline_run: Option<&str>,
    volumes: &[Volume],
    labels: &mut BTreeMap<String, String>,
    affinity: Option<Affinity>,
) -> Option<Affinity> {
    let Some(pipeline_run) = pipeline_run else {
        return affinity;
    };
    let claims = claims_of(volumes);
    if claims.is_empty() {
        return affinity;
    }
    let mut affinity = affinity.unwrap_or_default();
    let pod_affinity = affinity.pod_affinity.get_or_insert_with(PodAffinity::default);
    let terms = pod_affinity
        .required_during_scheduling_ignored_during_execution
        .get_or_insert_with(Vec::new);
    for claim in claims {
        let key = claim_label(claim);
        labels.insert(key.clone(), pipeline_run.to_string());
        terms.push(PodAffinityTerm {
            label_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(key, pipeline_run.to_string())])),
                ..Default::default()
            }),
            topology_key: TOPOLOGY_NODE.to_string(),
            ..Default::default()
        });
    }
    Some(affinity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeAffinity, PersistentVolumeClaimVolumeSource};

    fn claim_volume(name: &str, claim: &str) -> Volume {
        Volume {
            name: name.to_string(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim.to_string(),
                read_only: None,
            }),
            ..Default::default()
        }
    }

    fn empty_dir(name: &str) -> Volume {
        Volume {
            name: name.to_string(),
            empty_dir: Some(Default::default()),
            ..Default::default()
        }
    }

    #[test]
    fn a_pipeline_pod_with_claims_gets_one_label_and_one_term_per_claim() {
        let volumes = [
            empty_dir("tools"),
            claim_volume("ws-0", "source"),
            claim_volume("ws-1", "cache"),
            claim_volume("ws-2", "source"),
        ];
        let mut labels = BTreeMap::new();
        let affinity = with_claim_affinity(Some("pr-1"), &volumes, &mut labels, None).expect("an affinity");
        assert_eq!(
            labels,
            BTreeMap::from([
                (claim_label("source"), "pr-1".to_string()),
                (claim_label("cache"), "pr-1".to_string()),
            ])
        );
        let terms = affinity
            .pod_affinity
            .and_then(|a| a.required_during_scheduling_ignored_during_execution)
            .expect("required terms");
        assert_eq!(terms.len(), 2);
        assert_eq!(terms[0].topology_key, "kubernetes.io/hostname");
        assert_eq!(
            terms[0].label_selector.as_ref().and_then(|s| s.match_labels.clone()),
            Some(BTreeMap::from([(claim_label("source"), "pr-1".to_string())]))
        );
    }

    #[test]
    fn the_claim_label_is_a_valid_label_key_for_a_long_claim_name() {
        let key = claim_label(&"c".repeat(253));
        let (prefix, name) = key.split_once('/').expect("a prefixed key");
        assert_eq!(prefix, crate::api_group!());
        assert!(name.len() <= 63 && name.starts_with("claim-"), "{name}");
        assert_ne!(claim_label("a"), claim_label("b"));
    }

    #[test]
    fn a_task_run_of_its_own_or_a_pod_without_claims_is_left_alone() {
        let user = Some(Affinity {
            node_affinity: Some(NodeAffinity::default()),
            ..Default::default()
        });
        let mut labels = BTreeMap::new();
        let claims = [claim_volume("ws-0", "source")];
        assert_eq!(with_claim_affinity(None, &claims, &mut labels, user.clone()), user);
        assert_eq!(
            with_claim_affinity(Some("pr-1"), &[empty_dir("tools")], &mut labels, user.clone()),
            user
        );
        assert!(labels.is_empty());
    }

    #[test]
    fn the_users_own_affinity_is_kept_beside_the_claim_terms() {
        let user_term = PodAffinityTerm {
            topology_key: "topology.kubernetes.io/zone".to_string(),
            ..Default::default()
        };
        let user = Affinity {
            node_affinity: Some(NodeAffinity::default()),
            pod_affinity: Some(PodAffinity {
                required_during_scheduling_ignored_during_execution: Some(vec![user_term.clone()]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut labels = BTreeMap::new();
        let affinity = with_claim_affinity(Some("pr-1"), &[claim_volume("ws-0", "source")], &mut labels, Some(user))
            .expect("an affinity");
        assert!(affinity.node_affinity.is_some());
        let terms = affinity
            .pod_affinity
            .and_then(|a| a.required_during_scheduling_ignored_during_execution)
            .expect("terms");
        assert_eq!(terms.len(), 2);
        assert_eq!(terms[0], user_term);
    }
}
