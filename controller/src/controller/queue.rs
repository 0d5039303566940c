//! The work queue in front of the reconcile workers: per namespace, served
//! round-robin, one object at a time.
//!
//! Why not kube-runtime's `Controller`: its scheduler is one FIFO across all
//! objects, so a burst of 500 runs in one namespace puts a run created a
//! moment later in another namespace behind all 500. A `Controller` per
//! namespace would need a watch per namespace (namespaces come and go, and
//! every watch costs an apiserver connection and memory). Instead one watch
//! per kind feeds this queue, which keeps a FIFO of ready keys per namespace
//! and a rotation of the namespaces that have ready keys: each worker takes
//! the next namespace's oldest key, so every tenant with work gets one turn
//! per round whatever the size of anybody else's backlog.
//!
//! The guarantees the reconcilers rely on, as kube's `Controller` gave them:
//! - one reconcile per object at a time: a key triggered while it is being
//!   reconciled is marked and queued again when that reconcile ends;
//! - a key is queued at most once (triggers coalesce), so memory is bounded
//!   by the number of objects, not by the number of events;
//! - a requeue after a delay is kept per key (the earliest wins) and is
//!   superseded by an earlier trigger.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// One object: its namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// The tenant the object belongs to: the unit of fair share.
    pub namespace: String,
    /// The object's name within its namespace.
    pub name: String,
}

impl Key {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Key {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

/// What the queue holds, behind one lock (every operation is a few map
/// lookups; workers spend their time in the reconcile, not here).
#[derive(Debug, Default)]
struct Inner {
    /// Namespaces that have ready keys, in the order they are served.
    rotation: VecDeque<String>,
    /// Ready keys per namespace, oldest first.
    ready: HashMap<String, VecDeque<Key>>,
    /// Every key in `ready`, to coalesce triggers.
    queued: HashSet<Key>,
    /// Keys being reconciled now, and whether they were triggered again
    /// meanwhile (then they are queued again when their reconcile ends).
    active: HashMap<Key, bool>,
    /// When each delayed key is due (the earliest requested).
    due: HashMap<Key, Instant>,
    /// The same deadlines, soonest first; an entry whose deadline is no
    /// longer the key's `due` is stale and dropped when it comes up.
    timers: BinaryHeap<Reverse<(Instant, Key)>>,
    /// How many keys of each namespace are active, for the cap below.
    active_in: HashMap<String, usize>,
    /// Most keys of one namespace reconciled at once (0: no cap). A
    /// namespace at its cap keeps its turn in the rotation but is passed
    /// over, so one tenant's burst never holds every worker, nor fills the
    /// API server's queue with its requests ahead of another tenant's.
    namespace_cap: usize,
}

impl Inner {
    fn make_ready(&mut self, key: Key) {
        if let Some(dirty) = self.active.get_mut(&key) {
            *dirty = true;
            return;
        }
        if !self.queued.insert(key.clone()) {
            return;
        }
        self.due.remove(&key);
        let keys = self.ready.entry(key.namespace.clone()).or_default();
        if keys.is_empty() {
            self.rotation.push_back(key.namespace.clone());
        }
        keys.push_back(key);
    }

    fn delay(&mut self, key: Key, at: Instant) {
        if self.queued.contains(&key) || self.active.get(&key) == Some(&true) {
            return; // it runs sooner anyway
        }
        match self.due.get(&key) {
            Some(existing) if *existing <= at => {}
            _ => {
                self.due.insert(key.clone(), at);
                self.timers.push(Reverse((at, key)));
            }
        }
    }

    /// Moves the delayed keys that are due to the ready queues; returns
    /// when the next one is due.
    fn promote_due(&mut self, now: Instant) -> Option<Instant> {
        while let Some(Reverse((at, key))) = self.timers.peek().cloned() {
            if self.due.get(&key) != Some(&at) {
                self.timers.pop(); // superseded
                continue;
            }
            if at > now {
                return Some(at);
            }
            self.timers.pop();
            self.due.remove(&key);
            self.make_ready(key);
        }
        None
    }

    fn at_cap(&self, namespace: &str) -> bool {
        self.namespace_cap > 0 && self.active_in.get(namespace).copied().unwrap_or(0) >= self.namespace_cap
    }

    /// The oldest key of the next namespace below its cap, which becomes
    /// active; namespaces at their cap keep their place.
    fn take(&mut self) -> Option<Key> {
        let position = self.rotation.iter().position(|namespace| !self.at_cap(namespace))?;
        let namespace = self.rotation.remove(position)?;
        let keys = self.ready.get_mut(&namespace)?;
        let key = keys.pop_front()?;
        if keys.is_empty() {
            self.ready.remove(&namespace);
        } else {
            self.rotation.push_back(namespace);
        }
        self.queued.remove(&key);
        self.active.insert(key.clone(), false);
        *self.active_in.entry(key.namespace.clone()).or_default() += 1;
        Some(key)
    }

    /// Ends `key`'s activity; whether it was triggered meanwhile.
    fn finish(&mut self, key: &Key) -> bool {
        if let Some(count) = self.active_in.get_mut(&key.namespace) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.active_in.remove(&key.namespace);
            }
        }
        self.active.remove(key).unwrap_or(false)
    }
}

/// The fair queue; shared by the watches that trigger work and the workers.
#[derive(Debug, Default)]
pub struct FairQueue {
    /// The queue's state.
    inner: Mutex<Inner>,
    /// Wakes a waiting worker when a key becomes ready.
    wake: Notify,
}

/// How many keys the queue holds, for tests and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Depth {
    /// Keys waiting for a worker.
    pub ready: usize,
    /// Keys being reconciled.
    pub active: usize,
    /// Keys waiting for a requeue delay.
    pub delayed: usize,
}

impl FairQueue {
    /// A queue that reconciles at most `cap` keys of one namespace at once
    /// (0: no cap).
    pub fn with_namespace_cap(cap: usize) -> Self {
        FairQueue {
            inner: Mutex::new(Inner {
                namespace_cap: cap,
                ..Inner::default()
            }),
            wake: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `key` now (a watch event, a child's change ...).
    pub fn push(&self, key: Key) {
        self.lock().make_ready(key);
        self.wake.notify_one();
    }

    /// Queues `key` after `delay`, unless it runs sooner anyway.
    pub fn push_after(&self, key: Key, delay: Duration) {
        self.lock().delay(key, Instant::now() + delay);
        // A worker sleeping until a later deadline must recompute it.
        self.wake.notify_one();
    }

    /// Forgets a deleted object's delayed requeue (its queued trigger, if
    /// any, finds the object gone and does nothing).
    pub fn forget(&self, key: &Key) {
        self.lock().due.remove(key);
    }

    /// Waits for the next key to reconcile; it stays active until `done`.
    pub async fn next(&self) -> Key {
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let next_due = {
                let mut inner = self.lock();
                let next_due = inner.promote_due(Instant::now());
                if let Some(key) = inner.take() {
                    let more = !inner.rotation.is_empty();
                    drop(inner);
                    if more {
                        // Pass the wake-up on: another worker can start.
                        self.wake.notify_one();
                    }
                    return key;
                }
                next_due
            };
            match next_due {
                Some(at) => {
                    tokio::select! {
                        _ = &mut notified => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Ends the reconcile of `key`: queued again at once if it was
    /// triggered meanwhile, else after `requeue` if given.
    pub fn done(&self, key: Key, requeue: Option<Duration>) {
        let mut inner = self.lock();
        let dirty = inner.finish(&key);
        if dirty {
            inner.make_ready(key);
        } else if let Some(after) = requeue {
            inner.delay(key, Instant::now() + after);
        }
        drop(inner);
        self.wake.notify_one();
    }

    pub fn depth(&self) -> Depth {
        let inner = self.lock();
        Depth {
            ready: inner.queued.len(),
            active: inner.active.len(),
            delayed: inner.due.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(namespace: &str, name: &str) -> Key {
        Key::new(namespace, name)
    }

    async fn take(queue: &FairQueue) -> Key {
        tokio::time::timeout(Duration::from_secs(1), queue.next())
            .await
            .expect("a key is ready")
    }

    #[tokio::test]
    async fn namespaces_are_served_round_robin_whatever_their_backlog() {
        let queue = FairQueue::default();
        for i in 0..500 {
            queue.push(key("a", &format!("run-{i}")));
        }
        queue.push(key("b", "probe-0"));
        queue.push(key("c", "probe-0"));
        queue.push(key("b", "probe-1"));
        let order: Vec<Key> = futures::future::join_all((0..6).map(|_| take(&queue))).await;
        assert_eq!(
            order,
            vec![
                key("a", "run-0"),
                key("b", "probe-0"),
                key("c", "probe-0"),
                key("a", "run-1"),
                key("b", "probe-1"),
                key("a", "run-2"),
            ]
        );
    }

    #[tokio::test]
    async fn a_namespace_at_its_cap_is_passed_over_until_one_of_its_keys_is_done() {
        let queue = FairQueue::with_namespace_cap(2);
        for i in 0..10 {
            queue.push(key("a", &format!("run-{i}")));
        }
        let first = take(&queue).await;
        let second = take(&queue).await;
        assert_eq!((first.name.as_str(), second.name.as_str()), ("run-0", "run-1"));
        let nothing = tokio::time::timeout(Duration::from_millis(50), queue.next()).await;
        assert!(nothing.is_err(), "a holds its two: nothing more of a");
        queue.push(key("b", "probe"));
        assert_eq!(
            take(&queue).await,
            key("b", "probe"),
            "another tenant is served at once"
        );
        queue.done(first, None);
        assert_eq!(take(&queue).await, key("a", "run-2"), "a's place is back");
        assert_eq!(queue.depth().active, 3);
    }

    #[tokio::test]
    async fn triggers_of_a_queued_key_coalesce() {
        let queue = FairQueue::default();
        for _ in 0..100 {
            queue.push(key("a", "one"));
        }
        assert_eq!(queue.depth().ready, 1);
        assert_eq!(take(&queue).await, key("a", "one"));
        assert_eq!(
            queue.depth(),
            Depth {
                ready: 0,
                active: 1,
                delayed: 0
            }
        );
    }

    #[tokio::test]
    async fn a_key_is_never_given_out_twice_at_once_and_reruns_if_triggered_meanwhile() {
        let queue = FairQueue::default();
        queue.push(key("a", "one"));
        let first = take(&queue).await;
        queue.push(key("a", "one"));
        queue.push(key("a", "two"));
        assert_eq!(
            take(&queue).await,
            key("a", "two"),
            "the active key is not handed out again"
        );
        let nothing = tokio::time::timeout(Duration::from_millis(50), queue.next()).await;
        assert!(nothing.is_err(), "one still active: nothing else to do");
        queue.done(first, None);
        assert_eq!(
            take(&queue).await,
            key("a", "one"),
            "triggered while active: runs again"
        );
    }

    #[tokio::test]
    async fn a_requeue_waits_its_delay_and_the_earliest_request_wins() {
        let queue = FairQueue::default();
        queue.push(key("a", "one"));
        let one = take(&queue).await;
        queue.done(one, Some(Duration::from_secs(60)));
        queue.push_after(key("a", "one"), Duration::from_millis(200));
        queue.push_after(key("a", "one"), Duration::from_secs(30));
        assert_eq!(queue.depth().delayed, 1);
        let started = Instant::now();
        assert_eq!(take(&queue).await, key("a", "one"));
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(200) && waited < Duration::from_secs(1),
            "{waited:?}"
        );
        queue.done(key("a", "one"), None);
        assert_eq!(queue.depth(), Depth::default(), "the later requests were superseded");
    }

    #[tokio::test]
    async fn a_trigger_supersedes_a_pending_delay() {
        let queue = FairQueue::default();
        queue.push_after(key("a", "one"), Duration::from_secs(3600));
        queue.push(key("a", "one"));
        assert_eq!(take(&queue).await, key("a", "one"));
        queue.done(key("a", "one"), None);
        assert_eq!(queue.depth(), Depth::default(), "nothing left behind");
        let nothing = tokio::time::timeout(Duration::from_millis(100), queue.next()).await;
        assert!(nothing.is_err());
    }

    #[tokio::test]
    async fn waiting_workers_are_woken_by_a_push() {
        let queue = std::sync::Arc::new(FairQueue::default());
        let waiting = tokio::spawn({
            let queue = queue.clone();
            async move { queue.next().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        queue.push(key("b", "late"));
        let got = tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("woken")
            .expect("no panic");
        assert_eq!(got, key("b", "late"));
    }

    #[tokio::test]
    async fn a_forgotten_key_does_not_come_back() {
        let queue = FairQueue::default();
        queue.push_after(key("a", "gone"), Duration::from_millis(10));
        queue.forget(&key("a", "gone"));
        let nothing = tokio::time::timeout(Duration::from_millis(100), queue.next()).await;
        assert!(nothing.is_err());
        assert_eq!(queue.depth(), Depth::default());
    }
}
