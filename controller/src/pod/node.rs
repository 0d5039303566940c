//! Whether the node a run's pod is on is lost: a pure function of the
//! node's `Ready` condition, the clock and the `--node-lost-after` grace.
//!
//! A node whose kubelet stops (the machine lost power, its network is cut)
//! leaves its pods `Running` in the API: nobody is left to report that their
//! containers died. The node lifecycle controller marks the node `Unknown`
//! after its `--node-monitor-grace-period` (50 s by default) and evicts the
//! pods only after their `node.kubernetes.io/unreachable` toleration (300 s
//! by default). A run would hang that long, or until its own timeout; this
//! judges it lost once the node has not been Ready for the grace.

use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::jiff::Timestamp;

/// What the controller keeps of a Node: its name and `Ready` condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeHealth {
    /// The Node's name, for the message of a lost run.
    pub name: String,
    /// The `Ready` condition's status: "True", "False" or "Unknown" (a node
    /// without the condition has not reported yet and counts as "Unknown").
    pub ready: String,
    /// The condition's reason and message (why the node is not Ready), for
    /// the run's message.
    pub why: String,
    /// When `ready` last changed; None if the node does not say, in which
    /// case a not-Ready node is never judged lost (no clock to count from).
    pub since: Option<Timestamp>,
}

impl NodeHealth {
    /// The health a Node object reports.
    pub fn of(node: &Node) -> NodeHealth {
        let ready = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|conditions| conditions.iter().find(|c| c.type_ == "Ready"));
        let why = ready
            .map(|c| {
                let reason = c.reason.clone().unwrap_or_default();
                let message = c.message.clone().unwrap_or_default();
                match (reason.is_empty(), message.is_empty()) {
                    (false, false) => format!("{reason}: {message}"),
                    (false, true) => reason,
                    _ => message,
                }
            })
            .unwrap_or_default();
        NodeHealth {
            name: node.metadata.name.clone().unwrap_or_default(),
            ready: ready.map_or_else(|| "Unknown".to_string(), |c| c.status.clone()),
            why,
            since: ready.and_then(|c| c.last_transition_time.as_ref()).map(|t| t.0),
        }
    }
}

/// The verdict on a pod's node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeVerdict {
    /// Ready, or not known to the controller (no node yet, node not cached,
    /// no transition time): nothing to do.
    Fine,
    /// Not Ready, but for less than the grace: look again after `lost_in`.
    Suspect { lost_in: Duration },
    /// Not Ready for longer than the grace; the message names the node.
    Lost { message: String },
}

/// Judges the pod's node from its health at `now`.
pub fn judge_node(health: Option<&NodeHealth>, now: Timestamp, lost_after: Duration) -> NodeVerdict {
    let Some(health) = health else {
        return NodeVerdict::Fine;
    };
    if health.ready == "True" {
        return NodeVerdict::Fine;
    }
    let Some(since) = health.since else {
        return NodeVerdict::Fine;
    };
    let down_ms = (now.as_millisecond() - since.as_millisecond()).max(0);
    let grace_ms = lost_after.as_millis() as i64;
    if down_ms < grace_ms {
        // One extra millisecond so the next look is past the grace.
        return NodeVerdict::Suspect {
            lost_in: Duration::from_millis((grace_ms - down_ms + 1) as u64),
        };
    }
    let state = if health.ready == "False" {
        "NotReady"
    } else {
        "unreachable"
    };
    let mut message = format!(
        "node {} has been {state} (Ready={}) for {}s, longer than the node-lost grace of {}s",
        health.name,
        health.ready,
        down_ms / 1000,
        lost_after.as_secs()
    );
    if !health.why.is_empty() {
        message.push_str(&format!(" ({})", health.why));
    }
    NodeVerdict::Lost { message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).expect("a timestamp")
    }

    fn health(ready: &str, since: Option<i64>) -> NodeHealth {
        NodeHealth {
            name: "cicd-node-2".to_string(),
            ready: ready.to_string(),
            why: "NodeStatusUnknown: Kubelet stopped posting node status.".to_string(),
            since: since.map(at),
        }
    }

    const GRACE: Duration = Duration::from_secs(40);

    #[test]
    fn a_ready_or_unknown_node_is_fine() {
        assert_eq!(judge_node(None, at(1000), GRACE), NodeVerdict::Fine);
        assert_eq!(
            judge_node(Some(&health("True", Some(0))), at(1000), GRACE),
            NodeVerdict::Fine
        );
        assert_eq!(
            judge_node(Some(&health("Unknown", None)), at(1000), GRACE),
            NodeVerdict::Fine
        );
    }

    #[test]
    fn a_node_down_for_less_than_the_grace_is_looked_at_again_once_it_has_passed() {
        let verdict = judge_node(Some(&health("Unknown", Some(1000))), at(1030), GRACE);
        assert_eq!(
            verdict,
            NodeVerdict::Suspect {
                lost_in: Duration::from_millis(10_001)
            }
        );
    }

    #[test]
    fn a_node_down_for_the_grace_is_lost_and_the_message_names_it() {
        let NodeVerdict::Lost { message } = judge_node(Some(&health("Unknown", Some(1000))), at(1045), GRACE) else {
            panic!("expected the node to be lost");
        };
        assert_eq!(
            message,
            "node cicd-node-2 has been unreachable (Ready=Unknown) for 45s, longer than the node-lost grace of 40s \
             (NodeStatusUnknown: Kubelet stopped posting node status.)"
        );
        let NodeVerdict::Lost { message } = judge_node(Some(&health("False", Some(0))), at(40), GRACE) else {
            panic!("expected the node to be lost");
        };
        assert!(
            message.starts_with("node cicd-node-2 has been NotReady (Ready=False) for 40s"),
            "{message}"
        );
    }

    #[test]
    fn health_is_read_from_the_ready_condition() {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": "n2"},
            "status": {"conditions": [
                {"type": "MemoryPressure", "status": "Unknown"},
                {"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
                 "message": "Kubelet stopped posting node status.",
                 "lastTransitionTime": "2026-12-02T06:00:00Z"}
            ]}
        }))
        .expect("a node");
        let health = NodeHealth::of(&node);
        assert_eq!(health.name, "n2");
        assert_eq!(health.ready, "Unknown");
        assert_eq!(health.why, "NodeStatusUnknown: Kubelet stopped posting node status.");
        assert_eq!(health.since, Some("2026-12-02T06:00:00Z".parse().expect("a time")));
        let fresh: Node = serde_json::from_value(json!({"metadata": {"name": "n3"}})).expect("a node");
        assert_eq!(NodeHealth::of(&fresh).ready, "Unknown");
        assert_eq!(NodeHealth::of(&fresh).since, None);
    }
}
