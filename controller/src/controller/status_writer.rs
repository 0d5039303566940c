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

/// Beyond this many remembered writes, those older than the interval are
/// dropped (they can no longer hold anything back).
const PACING_PRUNE_AT: usize = 4096;

/// When each run's status was last written, to pace progress-only writes.
#[derive(Debug, Default)]
pub struct Pacing {
    /// The instant of the last status write, by `kind/namespace/name`.
    last_write: Mutex<HashMap<String, Instant>>,
}

impl Pacing {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.last_write.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes a status write of `key` made now.
    pub fn wrote(&self, key: &str) {
        let mut last_write = self.lock();
        if last_write.len() >= PACING_PRUNE_AT {
            last_write.retain(|_, at| at.elapsed() < PROGRESS_WRITE_INTERVAL);
        }
        last_write.insert(key.to_string(), Instant::now());
    }

    /// How long a progress-only write of `key` must wait; None if it may
    /// be made now.
    pub fn hold_back(&self, key: &str) -> Option<Duration> {
        let elapsed = self.lock().get(key)?.elapsed();
        PROGRESS_WRITE_INTERVAL
            .checked_sub(elapsed)
            .filter(|wait| !wait.is_zero())
    }
}
