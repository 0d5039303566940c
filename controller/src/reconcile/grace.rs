//! A run that names a MyTask or MyPipeline not in the cluster yet waits a
//! little before failing.
//!
//! `kubectl apply -f dir/`, kustomize and GitOps tools create a file's
//! objects in whatever order they list them, so a run is often created a
//! moment before the task or pipeline it names. Failing it at once (what
//! Tekton does, `CouldntGetTask`) makes the user delete and re-create the run;
//! waiting forever would hide a typo. So a run waits while it is younger than
//! [`MISSING_REFERENCE_GRACE`], counted from its creation (which survives a
//! controller restart), and fails after that as before.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// How long after its creation a run waits for the objects it names.
pub const MISSING_REFERENCE_GRACE: Duration = Duration::from_secs(30);

/// How often a waiting run looks again (the lookup reads the watch cache
/// first, so a look costs at most one GET).
pub const MISSING_REFERENCE_RETRY: Duration = Duration::from_secs(1);

/// A run waiting for what it names: its message, and when to look again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub message: String,
    pub look_again_in: Duration,
}

/// While the run is within its grace, how it waits for `missing` (`MyTask
/// "x"`) of `namespace`; None once it should fail.
pub fn waiting(created: Option<&Time>, now: Timestamp, missing: &str, namespace: &str) -> Option<Waiting> {
    Some(Waiting {
        look_again_in: look_again_in(created, now)?,
        message: format!(
            "{missing} not found in namespace {namespace:?} yet: waiting up to {}s from the run's creation for it to be created",
            MISSING_REFERENCE_GRACE.as_secs()
        ),
    })
}

/// While the run is within its grace: when to look again. None once the
/// grace is over (or the creation time is unknown: no grace then).
fn look_again_in(created: Option<&Time>, now: Timestamp) -> Option<Duration> {
    let created = created?.0;
    let age_ms = now.as_millisecond().saturating_sub(created.as_millisecond());
    let grace_ms = MISSING_REFERENCE_GRACE.as_millis() as i64;
    if age_ms >= grace_ms {
        return None;
    }
    let left = Duration::from_millis((grace_ms - age_ms.max(0)) as u64);
    Some(left.min(MISSING_REFERENCE_RETRY))
}

/// What the failure message adds once the grace is over.
pub fn waited_note() -> String {
    format!(
        "; it did not appear within {}s of the run's creation",
        MISSING_REFERENCE_GRACE.as_secs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).expect("a valid timestamp")
    }

    #[test]
    fn a_young_run_looks_again_within_a_second() {
        let created = Time(at(1_000));
        assert_eq!(look_again_in(Some(&created), at(1_000)), Some(MISSING_REFERENCE_RETRY));
        assert_eq!(look_again_in(Some(&created), at(1_029)), Some(Duration::from_secs(1)));
    }

    #[test]
    fn the_last_look_is_at_the_end_of_the_grace() {
        let created = Time(at(1_000));
        let now = Timestamp::from_millisecond(1_029_600).expect("a valid timestamp");
        assert_eq!(look_again_in(Some(&created), now), Some(Duration::from_millis(400)));
    }

    #[test]
    fn an_old_run_or_one_without_a_creation_time_does_not_wait() {
        let created = Time(at(1_000));
        assert_eq!(look_again_in(Some(&created), at(1_030)), None);
        assert_eq!(look_again_in(Some(&created), at(5_000)), None);
        assert_eq!(look_again_in(None, at(1_000)), None);
    }

    #[test]
    fn a_creation_time_in_the_future_waits_the_whole_grace_at_most() {
        let created = Time(at(2_000));
        assert_eq!(look_again_in(Some(&created), at(1_000)), Some(MISSING_REFERENCE_RETRY));
    }
}
