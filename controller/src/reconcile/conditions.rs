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
}
