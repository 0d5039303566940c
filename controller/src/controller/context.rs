//! What every reconcile shares, and the small I/O helpers both
//! reconcilers use.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder};
use tokio::sync::{Notify, mpsc};
use tracing::warn;

use crate::error::Error;
use crate::metrics::{ErrorLabel, Metrics};
use crate::reconcile::taskrun::DecideSettings;

/// The field manager of every write, so server-side apply sees one owner.
pub const FIELD_MANAGER: &str = "cicd-controller";
/// The first wait after a transient failure; each further failure of the
/// same object doubles it.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between two tries of one object, so a run whose
/// apiserver recovers is not left idle for long.
const BACKOFF_CAP: Duration = Duration::from_secs(60);
/// Kubernetes rejects event notes over 1 kB.
const MAX_EVENT_NOTE: usize = 1000;
/// Events waiting to be published; beyond this, new ones are dropped (and
/// logged): events are for people, and a burst must not grow memory
/// (an event waiting is about 1 KiB). Room for a burst of a few thousand
/// runs' "Started", which trail the pods by design (below).
const EVENT_QUEUE: usize = 4096;
/// Events published at the same time by the background publisher. Few, so
/// that during a burst events wait rather than take the API server's time
/// from pod creates and status writes, which other runs are waiting for.
const EVENT_PUBLISHERS: usize = 2;

/// When to look at an object again, as a reconcile answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requeue {
    /// None: only when something changes (a watch event).
    after: Option<Duration>,
}

impl Requeue {
    /// Look again after `after` even if nothing changes (timeouts, backoff).
    /// Named as kube-runtime's `Action::requeue`, which this type replaced,
    /// so the reconcilers and their tests read as before.
    #[allow(clippy::self_named_constructors)]
    pub const fn requeue(after: Duration) -> Self {
        Requeue { after: Some(after) }
    }

    /// Look again only when the object or something it owns changes.
    pub const fn await_change() -> Self {
        Requeue { after: None }
    }

    /// The delay asked for, if any.
    pub fn after(&self) -> Option<Duration> {
        self.after
    }
}

pub struct Context {
    /// The API server, for every read and write.
    pub client: Client,
    /// Publishes the Events people read with `kubectl describe`, off the
    /// reconcile's critical path.
    pub events: Events,
    /// Watch-fed caches of tasks, pipelines and pods, read instead of GETs.
    pub stores: super::stores::Stores,
    /// Our last status write of each run, so a reconcile knows when the
    /// run cache is older than its own work.
    pub versions: super::stores::Versions,
    /// When each run's status was last written, so progress-only writes
    /// of one run are made at most once per second.
    pub pacing: super::status_writer::Pacing,
    /// What the pure decisions need from the configuration.
    pub settings: DecideSettings,
    /// Counters and histograms served on /metrics.
    pub metrics: Arc<Metrics>,
    /// Failures in a row per object, so each object backs off on its own.
    pub backoff: Backoff,
    /// Concurrency groups: a lock per group and the channels that wake a
    /// group's runs (see `admission`).
    pub queues: Arc<super::admission::Queues>,
    /// What happens to finished runs by default (see `history`).
    pub history: super::history::HistorySettings,
    /// Timeout and allowed namespaces of the resolvers (see `resolver`).
    pub resolver: super::resolver::ResolverSettings,
    /// Git fetches running in the background, by run (see `resolver`).
    pub resolutions: Arc<super::resolver::Resolutions>,
    /// Where registries are reached, and which may be asked (see `registry`).
    pub registry: super::registry::RegistrySettings,
    /// Image entrypoints looked up, by namespace and image (see `registry`).
    pub images: Arc<super::registry::ImageCache>,
    /// The entrypoint's ConfigMaps (see `entrypoint_map`); None without
    /// `--entrypoint-binary`: every pod copies it with an init container.
    pub entrypoint_maps: Option<Arc<super::entrypoint_map::EntrypointMaps>>,
}

/// Exponential backoff per object: 1 s, 2 s, 4 s ... capped at a minute.
/// Kept per object (by kind, namespace and name) so one tenant's failing
/// run does not slow the retries of anybody else's.
#[derive(Debug, Default)]
pub struct Backoff {
    /// Failures in a row, by object key.
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    /// Records one more failure of `key` and returns how long to wait.
    pub fn failed(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = failures.entry(key.to_string()).or_insert(0);
        let delay = BACKOFF_FIRST.saturating_mul(1u32 << (*count).min(16)).min(BACKOFF_CAP);
        *count = count.saturating_add(1);
        delay
    }

    /// Forgets the failures of `key` after a try that went through.
    pub fn succeeded(&self, key: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        failures.remove(key);
    }
}

/// The backoff key of an object.
pub fn object_key(kind: &str, namespace: &str, name: &str) -> String {
    format!("{kind}/{namespace}/{name}")
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// The sooner of two optional requeue delays.
pub fn sooner(current: Option<Duration>, after: Duration) -> Option<Duration> {
    Some(current.map_or(after, |c| c.min(after)))
}

/// Publishes Events in the background: a reconcile hands an event over
/// and goes on, so an event's round trip (and a slow or failing events API)
/// never delays a run's pod or status. Bounded: when the queue is full the
/// event is dropped and logged.
pub struct Events {
    /// Into the background publisher.
    sender: mpsc::Sender<(ObjectReference, Event)>,
    /// Events handed over and not yet published (for `idle`).
    pending: Arc<AtomicUsize>,
    /// Signalled each time `pending` drops to zero.
    drained: Arc<Notify>,
}

impl Events {
    /// Starts the publisher (needs a tokio runtime).
    pub fn start(recorder: Recorder) -> Self {
        let (sender, receiver) = mpsc::channel::<(ObjectReference, Event)>(EVENT_QUEUE);
        let pending = Arc::new(AtomicUsize::new(0));
        let drained = Arc::new(Notify::new());
        let (count, done) = (pending.clone(), drained.clone());
        tokio::spawn(
            tokio_stream_of(receiver).for_each_concurrent(EVENT_PUBLISHERS, move |(object, event)| {
                let (recorder, count, done) = (recorder.clone(), count.clone(), done.clone());
                async move {
                    if let Err(error) = recorder.publish(&event, &object).await {
                        warn!(object = ?object.name, %error, "cannot publish event");
                    }
                    if count.fetch_sub(1, Ordering::AcqRel) == 1 {
                        done.notify_waiters();
                    }
                }
            }),
        );
        Events {
            sender,
            pending,
            drained,
        }
    }

    fn send(&self, object: ObjectReference, event: Event) {
        self.pending.fetch_add(1, Ordering::AcqRel);
        if let Err(error) = self.sender.try_send((object, event)) {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            let (object, event) = match error {
                mpsc::error::TrySendError::Full(item) | mpsc::error::TrySendError::Closed(item) => item,
            };
            warn!(object = ?object.name, reason = %event.reason, "event queue full; event dropped");
        }
    }

    /// Waits until every event handed over so far is published (tests).
    pub async fn idle(&self) {
        loop {
            let drained = self.drained.notified();
            if self.pending.load(Ordering::Acquire) == 0 {
                return;
            }
            drained.await;
        }
    }
}

/// The receiving end of a channel as a stream.
fn tokio_stream_of<T: Send + 'static>(mut receiver: mpsc::Receiver<T>) -> impl futures::Stream<Item = T> + Send {
    futures::stream::poll_fn(move |context| receiver.poll_recv(context))
}

impl Context {
    /// Publishes a Kubernetes Event about `object`, in the background. A
    /// failure is logged, never fatal: events are for people, the status is
    /// the record. (Async so callers need not change if it ever waits.)
    pub async fn publish(&self, object: &ObjectReference, warning: bool, reason: &str, message: &str) {
        let event = Event {
            type_: if warning { EventType::Warning } else { EventType::Normal },
            reason: reason.to_string(),
            note: Some(truncate(message, MAX_EVENT_NOTE)),
            action: "Reconcile".to_string(),
            secondary: None,
        };
        self.events.send(object.clone(), event);
    }

    /// Counts and logs a failed reconcile and schedules another try, later
    /// each time the same object fails again.
    pub fn requeue_after_error(&self, key: &str, error: &Error) -> Requeue {
        self.metrics
            .reconcile_errors
            .get_or_create(&ErrorLabel {
                error: error.kind().to_string(),
            })
            .inc();
        let delay = self.backoff.failed(key);
        warn!(object = %key, %error, retry_in = ?delay, "reconcile failed; retrying");
        Requeue::requeue(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_object_up_to_the_cap_and_resets() {
        let backoff = Backoff::default();
        let waits: Vec<u64> = (0..9).map(|_| backoff.failed("a").as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff.failed("b").as_secs(), 1, "another object has its own count");
        backoff.succeeded("a");
        assert_eq!(backoff.failed("a").as_secs(), 1);
    }
}
