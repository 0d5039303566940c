//! Run history, decided: when a finished run is due for deletion
//! (`ttlSecondsAfterFinished`) and which finished runs of a task or
//! pipeline fall outside its history limits. Pure: the controller reads
//! the runs and deletes what this returns (`controller/history.rs`).

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

/// Most runs deleted by one pass over a task's history, so one pass stays
/// short; the rest go in the next pass.
pub const MAX_DELETES_PER_PASS: usize = 50;

/// The TTL that applies: the run's own, else its definition's, else the
/// controller's default (`--default-ttl-seconds-after-finished`, 0 = none).
pub fn effective_ttl(run: Option<u32>, definition: Option<u32>, controller_default: u32) -> Option<u32> {
    run.or(definition)
        .or((controller_default > 0).then_some(controller_default))
}

/// What to do about a finished run's TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// Delete the run now.
    Expired,
    /// Look again after this long.
    DueIn(Duration),
}

/// When a run that completed at `completed` with a TTL of `ttl_seconds` is
/// due, seen at `now`.
pub fn ttl_state(completed: Timestamp, ttl_seconds: u32, now: Timestamp) -> Ttl {
    let due = completed.as_millisecond() + i64::from(ttl_seconds) * 1000;
    let left = due - now.as_millisecond();
    if left <= 0 {
        Ttl::Expired
    } else {
        Ttl::DueIn(Duration::from_millis(left as u64))
    }
}

/// A finished run of one task or pipeline, as the controller read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedRun {
    pub name: String,
    /// Deleted with this uid as a precondition, so a new run under the same
    /// name is never deleted in its place.
    pub uid: String,
    /// True for `Succeeded=True`; everything else final counts as failed.
    pub succeeded: bool,
    /// `status.completionTime`: the oldest are deleted first.
    pub completed: Timestamp,
}

/// The runs beyond the limits: of the succeeded runs all but the newest
/// `keep_succeeded`, of the failed all but the newest `keep_failed` (None
/// keeps all of that kind). Oldest first, at most
/// [`MAX_DELETES_PER_PASS`].
pub fn beyond_limits(runs: &[FinishedRun], keep_succeeded: Option<u32>, keep_failed: Option<u32>) -> Vec<&FinishedRun> {
    let mut doomed = Vec::new();
    for (succeeded, keep) in [(true, keep_succeeded), (false, keep_failed)] {
        let Some(keep) = keep else { continue };
        let mut kind: Vec<&FinishedRun> = runs.iter().filter(|r| r.succeeded == succeeded).collect();
        // Newest first; the name breaks ties so the choice is stable.
        kind.sort_by(|a, b| (b.completed, b.name.as_str()).cmp(&(a.completed, a.name.as_str())));
        doomed.extend(kind.into_iter().skip(keep as usize));
    }
    doomed.sort_by(|a, b| (a.completed, a.name.as_str()).cmp(&(b.completed, b.name.as_str())));
    doomed.truncate(MAX_DELETES_PER_PASS);
    doomed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + second).expect("valid")
    }

    fn run(name: &str, succeeded: bool, completed: i64) -> FinishedRun {
        FinishedRun {
            name: name.into(),
            uid: format!("uid-{name}"),
            succeeded,
            completed: at(completed),
        }
    }

    #[test]
    fn the_run_ttl_wins_then_the_definition_then_the_flag() {
        assert_eq!(effective_ttl(Some(5), Some(60), 600), Some(5));
        assert_eq!(effective_ttl(None, Some(60), 600), Some(60));
        assert_eq!(effective_ttl(None, None, 600), Some(600));
        assert_eq!(effective_ttl(None, None, 0), None, "0 means no default");
        assert_eq!(effective_ttl(Some(0), None, 600), Some(0), "0 on a run deletes at once");
    }

    #[test]
    fn a_run_is_due_ttl_seconds_after_it_completed() {
        assert_eq!(ttl_state(at(0), 30, at(10)), Ttl::DueIn(Duration::from_secs(20)));
        assert_eq!(ttl_state(at(0), 30, at(30)), Ttl::Expired);
        assert_eq!(ttl_state(at(0), 0, at(0)), Ttl::Expired);
        assert_eq!(
            ttl_state(at(0), u32::MAX, at(0)),
            Ttl::DueIn(Duration::from_secs(u64::from(u32::MAX)))
        );
    }

    #[test]
    fn history_keeps_the_newest_of_each_kind_and_deletes_the_oldest_first() {
        let runs = vec![
            run("s1", true, 1),
            run("s2", true, 2),
            run("s3", true, 3),
            run("s4", true, 4),
            run("f1", false, 5),
            run("f2", false, 6),
        ];
        let names = |doomed: Vec<&FinishedRun>| doomed.iter().map(|r| r.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(beyond_limits(&runs, Some(2), Some(1))), ["s1", "s2", "f1"]);
        assert_eq!(names(beyond_limits(&runs, Some(0), None)), ["s1", "s2", "s3", "s4"]);
        assert!(beyond_limits(&runs, None, None).is_empty());
        assert!(beyond_limits(&runs, Some(10), Some(10)).is_empty());
    }

    #[test]
    fn one_pass_deletes_a_bounded_number() {
        let runs: Vec<FinishedRun> = (0..500).map(|i| run(&format!("r{i}"), true, i)).collect();
        let doomed = beyond_limits(&runs, Some(1), None);
        assert_eq!(doomed.len(), MAX_DELETES_PER_PASS);
        assert_eq!(doomed[0].name, "r0", "the oldest first");
    }
}
