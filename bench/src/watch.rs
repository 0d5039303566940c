//! Watches a namespace's pods and notes, per benchmark id, when the pod
//! was first seen and when it finished: the client-side clock on both ends
//! of every measurement (creation timestamps only have whole seconds).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use tokio::task::JoinHandle;

use crate::objects::LABEL_ID;

#[derive(Debug, Default)]
struct Seen {
    created: HashMap<usize, Instant>,
    /// When the API server answered the create (only where noted).
    answered: HashMap<usize, Instant>,
    first_seen: HashMap<usize, Instant>,
    finished: HashMap<usize, Instant>,
}

/// What the watch saw, shared with the code that creates the objects.
#[derive(Clone, Default)]
pub struct Tracker {
    seen: Arc<Mutex<Seen>>,
}

/// Per-object durations of a phase, in creation order of their ids.
pub struct Timings {
    pub to_pod: Vec<Duration>,
    /// From the create's answer (the run exists) to its pod being seen.
    pub to_pod_after_answer: Vec<Duration>,
    pub to_finish: Vec<Duration>,
    /// From the first create request to the last pod seen / finished.
    pub span_to_pod: Duration,
    pub span_to_finish: Duration,
}

fn pod_id(pod: &Pod) -> Option<usize> {
    pod.metadata.labels.as_ref()?.get(LABEL_ID)?.parse().ok()
}

fn is_finished(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    )
}

impl Tracker {
    fn with<T>(&self, f: impl FnOnce(&mut Seen) -> T) -> T {
        f(&mut self.seen.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Starts watching `namespace`; the handle ends with the process.
    pub fn watch(&self, client: &Client, namespace: &str) -> JoinHandle<()> {
        let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
        let config = watcher::Config::default().labels(LABEL_ID);
        let tracker = self.clone();
        tokio::spawn(async move {
            let mut events = watcher::watcher(pods, config).boxed();
            while let Some(event) = events.next().await {
                if let Ok(Event::Apply(pod) | Event::InitApply(pod)) = event {
                    tracker.saw(&pod);
                }
            }
        })
    }

    fn saw(&self, pod: &Pod) {
        let Some(id) = pod_id(pod) else { return };
        let now = Instant::now();
        self.with(|seen| {
            seen.first_seen.entry(id).or_insert(now);
            if is_finished(pod) {
                seen.finished.entry(id).or_insert(now);
            }
        });
    }

    /// Notes that the create request of object `id` is about to be sent.
    pub fn created(&self, id: usize) {
        let now = Instant::now();
        self.with(|seen| seen.created.insert(id, now));
    }

    /// Notes that the API server has answered the create of object `id`.
    pub fn answered(&self, id: usize) {
        let now = Instant::now();
        self.with(|seen| seen.answered.insert(id, now));
    }

    pub fn counts(&self) -> (usize, usize) {
        self.with(|seen| (seen.first_seen.len(), seen.finished.len()))
    }

    /// Durations from each create to its pod being seen and finishing.
    pub fn timings(&self) -> Timings {
        self.with(|seen| {
            let first_create = seen.created.values().min().copied();
            let span = |marks: &HashMap<usize, Instant>| match (first_create, marks.values().max()) {
                (Some(start), Some(end)) => end.saturating_duration_since(start),
                _ => Duration::ZERO,
            };
            let between = |start: &HashMap<usize, Instant>, marks: &HashMap<usize, Instant>| {
                let mut ids: Vec<&usize> = marks.keys().collect();
                ids.sort();
                ids.into_iter()
                    .filter_map(|id| Some(marks[id].saturating_duration_since(*start.get(id)?)))
                    .collect()
            };
            Timings {
                to_pod: between(&seen.created, &seen.first_seen),
                to_pod_after_answer: between(&seen.answered, &seen.first_seen),
                to_finish: between(&seen.created, &seen.finished),
                span_to_pod: span(&seen.first_seen),
                span_to_finish: span(&seen.finished),
            }
        })
    }
}
