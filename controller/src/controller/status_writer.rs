//! The one way a run's status is written: the whole status, replaced by a
//! JSON patch on the status subresource.
//!
//! Why not server-side apply, as before: the controller is the only writer
//! of a run's status and always sends all of it, so an apply says nothing
//! more than a replace, while the API server does more work for it (it
//! merges the applied status into the live one field by field against the
//! CRD's schema). Status writes are most of the controller's requests
//! during a burst, so their cost is what the other tenants wait behind.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use http::header::CONTENT_TYPE;
use kube::Resource;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::context::{Context, FIELD_MANAGER, object_key};

/// Replaces the status of the object `name` of the collection at `url`
/// (e.g. `/apis/<group>/v1/namespaces/ci/mytaskruns`) and returns the
/// object as written, as text (a malformed object may be too deep to
/// decode whole; see `stream::item_from_text`).
pub async fn replace_status_at(
    client: &kube::Client,
    url: &str,
    name: &str,
    status: &impl Serialize,
) -> kube::Result<String> {
    // `add` rather than `replace`: it also sets a status the run does not have yet.
    let patch = json!([{ "op": "add", "path": "/status", "value": status }]);
    let body = serde_json::to_vec(&patch).map_err(kube::Error::SerdeError)?;
    let request = http::Request::patch(format!("{url}/{name}/status?fieldManager={FIELD_MANAGER}"))
        .header(CONTENT_TYPE, "application/json-patch+json")
        .body(body)
        .map_err(kube::Error::HttpError)?;
    client.request_text(request).await
}

/// [`replace_status_at`] for a typed run kind in `namespace`; notes the
/// version written (`Context::versions`), so no reconcile decides on an
/// older cached copy.
pub async fn replace_status<K>(ctx: &Context, namespace: &str, name: &str, status: &impl Serialize) -> kube::Result<()>
where
    K: Resource<DynamicType = ()> + DeserializeOwned,
{
    let text = replace_status_at(&ctx.client, &K::url_path(&(), Some(namespace)), name, status).await?;
    let written: K = serde_json::from_str(&text).map_err(kube::Error::SerdeError)?;
    let key = object_key(&K::kind(&()), namespace, name);
    ctx.versions.wrote(&key, written.meta().resource_version.as_deref());
    ctx.pacing.wrote(&key);
    Ok(())
}

/// The least time between two status writes of one run that only report
/// progress (a new message, a step that started): a pod that starts goes
/// through several such states within a second, and writing each one would
/// cost the API server a request that other runs wait behind, for a state
/// nobody has time to read. A write that changes the outcome or the reason
/// (Pending to Running, the end of the run) is never held back.
pub const PROGRESS_WRITE_INTERVAL: Duration = Duration::from_secs(1);

/// The most time between two progress-only writes of one run, however many
/// runs are in progress: a person watching one run still sees its steps
/// move within this.
pub const MAX_PROGRESS_WRITE_INTERVAL: Duration = Duration::from_secs(10);

/// How many progress-only writes a second all runs together may make before
/// each run's are spaced further apart. In a burst of hundreds of runs
/// whose pods start, every run reports a step waiting, then created, then
/// ended, each several seconds apart: a second apart is not enough to fold
/// them, and those writes compete with the kubelet's and the other runs'
/// for the API server. Spacing each run's by `runs / budget` seconds keeps
/// them to about this many a second in all (25 is a tenth of what the two
/// core local cluster takes in writes a second).
const PROGRESS_WRITES_PER_SECOND: u32 = 25;

/// How often the remembered writes are swept of those too old to hold
/// anything back, so that their number counts the runs in progress.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// When each run's status was last written, to pace progress-only writes.
#[derive(Debug)]
pub struct Pacing {
    state: Mutex<PacingState>,
}

#[derive(Debug)]
struct PacingState {
    /// The instant of the last status write, by `kind/namespace/name`:
    /// only writes of the last `MAX_PROGRESS_WRITE_INTERVAL` (and those
    /// since the last sweep), so its length is about the number of runs in
    /// progress.
    last_write: HashMap<String, Instant>,
    /// When `last_write` was last swept.
    swept: Instant,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing {
            state: Mutex::new(PacingState {
                last_write: HashMap::new(),
                swept: Instant::now(),
            }),
        }
    }
}

impl Pacing {
    fn lock(&self) -> std::sync::MutexGuard<'_, PacingState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes a status write of `key` made now.
    pub fn wrote(&self, key: &str) {
        let mut state = self.lock();
        if state.swept.elapsed() >= SWEEP_EVERY {
            state
                .last_write
                .retain(|_, at| at.elapsed() < MAX_PROGRESS_WRITE_INTERVAL);
            state.swept = Instant::now();
        }
        state.last_write.insert(key.to_string(), Instant::now());
    }

    /// How long a progress-only write of `key` must wait; None if it may
    /// be made now.
    pub fn hold_back(&self, key: &str) -> Option<Duration> {
        let state = self.lock();
        let elapsed = state.last_write.get(key)?.elapsed();
        interval_for(state.last_write.len())
            .checked_sub(elapsed)
            .filter(|wait| !wait.is_zero())
    }
}

/// The pacing interval while `runs` runs have been written recently.
fn interval_for(runs: usize) -> Duration {
    let runs = u32::try_from(runs).unwrap_or(u32::MAX).min(1_000_000);
    (Duration::from_secs(1) * runs / PROGRESS_WRITES_PER_SECOND)
        .clamp(PROGRESS_WRITE_INTERVAL, MAX_PROGRESS_WRITE_INTERVAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_is_a_second_for_a_few_runs_and_grows_with_many_up_to_its_cap() {
        assert_eq!(interval_for(0), PROGRESS_WRITE_INTERVAL);
        assert_eq!(interval_for(25), PROGRESS_WRITE_INTERVAL);
        assert_eq!(interval_for(100), Duration::from_secs(4));
        assert_eq!(interval_for(1000), MAX_PROGRESS_WRITE_INTERVAL);
        assert_eq!(interval_for(usize::MAX), MAX_PROGRESS_WRITE_INTERVAL);
    }

    #[test]
    fn a_run_just_written_waits_longer_while_many_runs_are_written() {
        let pacing = Pacing::default();
        pacing.wrote("run-0");
        let alone = pacing.hold_back("run-0").expect("held back");
        assert!(alone <= PROGRESS_WRITE_INTERVAL, "{alone:?}");

        for i in 1..100 {
            pacing.wrote(&format!("run-{i}"));
        }
        let crowded = pacing.hold_back("run-0").expect("held back");
        assert!(crowded > Duration::from_secs(3), "{crowded:?}");
        assert!(crowded <= Duration::from_secs(4), "{crowded:?}");
        assert_eq!(pacing.hold_back("never-written"), None);
    }
}
