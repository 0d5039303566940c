//! Watches a namespace's pods (and runs) and notes, per benchmark id, when
//! the pod was first seen and when the work finished: the client-side clock
//! on both ends of every measurement (creation timestamps only have whole
//! seconds).
//!
//! "Finished" is the first moment the creator can know the outcome from
//! what it created: for a raw pod, its container has ended (the kubelet
//! marks the pod's phase some seconds later under load, while it tears the
//! pod down); for a run, its `Succeeded` condition is True or False (the
//! controller's report, however soon after the steps it comes).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::DynamicObject;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use tokio::task::JoinHandle;

use crate::objects::{LABEL_ID, task_run_resource};

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
    /// True if the work is runs, finished when the run says so; false if
    /// it is pods, finished when their containers have ended.
    runs: bool,
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

fn id_of(meta: &kube::api::ObjectMeta) -> Option<usize> {
    meta.labels.as_ref()?.get(LABEL_ID)?.parse().ok()
}

/// Watches the benchmark's objects of `api`, handing each version seen to
/// `saw`, until the process ends.
fn spawn_watch<K>(api: Api<K>, mut saw: impl FnMut(K) + Send + 'static) -> JoinHandle<()>
where
    K: kube::Resource + Clone + std::fmt::Debug + k8s_openapi::serde::de::DeserializeOwned + Send + 'static,
{
    let config = watcher::Config::default().labels(LABEL_ID);
    tokio::spawn(async move {
        let mut events = watcher::watcher(api, config).boxed();
        while let Some(event) = events.next().await {
            if let Ok(Event::Apply(object) | Event::InitApply(object)) = event {
                saw(object);
            }
        }
    })
}

/// The pod's phase is final, or every container of it has ended.
fn pod_is_finished(pod: &Pod) -> bool {
    let Some(status) = pod.status.as_ref() else {
        return false;
    };
    if matches!(status.phase.as_deref(), Some("Succeeded") | Some("Failed")) {
        return true;
    }
    let containers = status.container_statuses.as_deref().unwrap_or_default();
    !containers.is_empty()
        && containers
            .iter()
            .all(|c| c.state.as_ref().is_some_and(|s| s.terminated.is_some()))
}

/// The run's `Succeeded` condition is True or False.
pub fn run_is_finished(run: &DynamicObject) -> bool {
    let conditions = run.data.pointer("/status/conditions").and_then(|c| c.as_array());
    conditions.into_iter().flatten().any(|condition| {
        condition.get("type").and_then(|t| t.as_str()) == Some("Succeeded")
            && matches!(
                condition.get("status").and_then(|s| s.as_str()),
                Some("True") | Some("False")
            )
    })
}

impl Tracker {
    fn with<T>(&self, f: impl FnOnce(&mut Seen) -> T) -> T {
        f(&mut self.seen.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// A tracker of runs: their pods are seen, the runs finish.
    pub fn of_runs() -> Self {
        Tracker {
            runs: true,
            ..Tracker::default()
        }
    }

    /// Starts watching `namespace`'s pods, and its runs if this tracks
    /// runs; the tasks end with the process.
    pub fn watch(&self, client: &Client, namespace: &str) {
        let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
        let tracker = self.clone();
        spawn_watch(pods, move |pod| tracker.saw_pod(&pod));
        if self.runs {
            let runs: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &task_run_resource());
            let tracker = self.clone();
            spawn_watch(runs, move |run| tracker.saw_run(&run));
        }
    }

    fn saw_pod(&self, pod: &Pod) {
        let Some(id) = id_of(&pod.metadata) else { return };
        let now = Instant::now();
        let finished = !self.runs && pod_is_finished(pod);
        self.with(|seen| {
            seen.first_seen.entry(id).or_insert(now);
            if finished {
                seen.finished.entry(id).or_insert(now);
            }
        });
    }

    fn saw_run(&self, run: &DynamicObject) {
        let Some(id) = id_of(&run.metadata) else { return };
        if run_is_finished(run) {
            let now = Instant::now();
            self.with(|seen| {
                seen.finished.entry(id).or_insert(now);
            });
        }
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
