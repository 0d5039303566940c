//! The `Succeeded` condition every run kind carries: True, False, or
//! Unknown while the run is in progress.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::Condition;

pub const CONDITION_SUCCEEDED: &str = "Succeeded";

pub fn succeeded(conditions: &[Condition]) -> Option<&Condition> {
    conditions.iter().find(|c| c.type_ == CONDITION_SUCCEEDED)
}

/// True once the condition is final (True or False).
pub fn is_final(conditions: &[Condition]) -> bool {
    succeeded(conditions).is_some_and(|c| c.status != "Unknown")
}

/// True if going from `old` to `new` only reports progress: the run is in
/// progress in both and its reason is the same (the message may differ).
/// Such a change can wait a moment before it is written; any other cannot.
pub fn is_progress_only(old: &[Condition], new: &[Condition]) -> bool {
    match (succeeded(old), succeeded(new)) {
        (Some(old), Some(new)) => old.status == "Unknown" && new.status == "Unknown" && old.reason == new.reason,
        _ => false,
    }
}

/// Sets the `Succeeded` condition, keeping its transition time when only
/// the message changed.
pub fn set_succeeded(conditions: &mut Vec<Condition>, status: &str, reason: &str, message: String, now: Time) {
    let previous = succeeded(conditions);
    let unchanged = previous.is_some_and(|c| c.status == status && c.reason == reason);
    let last_transition_time = if unchanged {
        previous.and_then(|c| c.last_transition_time.clone())
    } else {
        Some(now)
    };
    conditions.retain(|c| c.type_ != CONDITION_SUCCEEDED);
    conditions.push(Condition {
        type_: CONDITION_SUCCEEDED.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message,
        last_transition_time,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(second: i64) -> Time {
        Time(Timestamp::from_second(second).expect("valid"))
    }

    #[test]
    fn the_transition_time_moves_only_when_status_or_reason_change() {
        let mut conditions = Vec::new();
        set_succeeded(&mut conditions, "Unknown", "Pending", "created".into(), at(1));
        set_succeeded(&mut conditions, "Unknown", "Pending", "still".into(), at(2));
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].last_transition_time, Some(at(1)));
        assert_eq!(conditions[0].message, "still");
        set_succeeded(&mut conditions, "True", "Succeeded", "done".into(), at(3));
        assert_eq!(conditions[0].last_transition_time, Some(at(3)));
        assert!(is_final(&conditions));
    }

    #[test]
    fn only_a_new_message_in_progress_is_progress_only() {
        let mut pending = Vec::new();
        set_succeeded(&mut pending, "Unknown", "Pending", "the pod is starting".into(), at(1));
        let mut unschedulable = pending.clone();
        set_succeeded(&mut unschedulable, "Unknown", "Pending", "0/1 nodes".into(), at(2));
        let mut running = pending.clone();
        set_succeeded(&mut running, "Unknown", "Running", "step one".into(), at(2));
        let mut done = running.clone();
        set_succeeded(&mut done, "True", "Succeeded", "done".into(), at(3));
        assert!(is_progress_only(&pending, &unschedulable));
        assert!(!is_progress_only(&pending, &running), "a new reason is written at once");
        assert!(!is_progress_only(&running, &done), "an outcome is written at once");
        assert!(!is_progress_only(&[], &pending), "the first status is written at once");
    }
}
