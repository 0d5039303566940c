//! The controller's runtime: watches that fill the caches and trigger work,
//! and the workers that take keys from the fair queues (see `queue` for
//! why the queue is ours and not kube-runtime's `Controller`).

use std::future::Future;
use std::hash::Hash;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use futures::{FutureExt, Stream, StreamExt};
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::reflector::{ObjectRef, Store, store::Writer};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use tokio::sync::watch;
use tracing::{debug, error, warn};

use crate::error::Error;

use super::context::{Context, Requeue};
use super::queue::{FairQueue, Key};

/// What changed about an object a watch saw.
pub enum Change<'a, K> {
    /// Listed again or added/modified; `old` is the cached copy before.
    Applied {
        old: Option<Arc<K>>,
        new: &'a K,
    },
    Deleted(&'a K),
}

/// Feeds one watch into a cache, after `slim` drops what the cache need not
/// keep, and reports each change to `changed` once the cache holds it (the
/// initial list is reported when it is complete, so a worker never looks
/// up an object the cache does not have yet).
pub async fn feed<K, S>(
    events: S,
    mut writer: Writer<K>,
    dyntype: K::DynamicType,
    slim: fn(K) -> K,
    mut changed: impl FnMut(Change<'_, K>),
) where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
{
    let reader = writer.as_reader();
    futures::pin_mut!(events);
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                warn!(%error, "watch error; the watcher retries");
                continue;
            }
        };
        match event {
            watcher::Event::Init => writer.apply_watcher_event(&watcher::Event::Init),
            watcher::Event::InitApply(object) => writer.apply_watcher_event(&watcher::Event::InitApply(slim(object))),
            watcher::Event::InitDone => {
                writer.apply_watcher_event(&watcher::Event::InitDone);
                for object in reader.state() {
                    changed(Change::Applied {
                        old: None,
                        new: &object,
                    });
                }
            }
            watcher::Event::Apply(object) => {
                let object = slim(object);
                let old = reader.get(&ObjectRef::from_obj_with(&object, dyntype.clone()));
                let event = watcher::Event::Apply(object);
                writer.apply_watcher_event(&event);
                if let watcher::Event::Apply(new) = &event {
                    changed(Change::Applied { old, new });
                }
            }
            watcher::Event::Delete(object) => {
                writer.apply_watcher_event(&watcher::Event::Delete(object.clone()));
                changed(Change::Deleted(&object));
            }
        }
    }
}

/// The key of an object in a fair queue.
pub fn key_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<Key> {
    Some(Key::new(meta.namespace.clone()?, meta.name.clone()?))
}

/// The key of the object of kind `kind` that controls `meta` (our pods and
/// child runs carry one), in the same namespace.
pub fn owner_key(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, kind: &str) -> Option<Key> {
    let owner = meta
        .owner_references
        .as_ref()?
        .iter()
        .find(|owner| owner.kind == kind && owner.controller == Some(true))?;
    Some(Key::new(meta.namespace.clone()?, owner.name.clone()))
}

/// A reconcile of one kind, as the workers call it.
pub trait Reconciler: Send + Sync + 'static {
    fn reconcile(
        &self,
        object: Arc<DynamicObject>,
        ctx: Arc<Context>,
    ) -> impl Future<Output = crate::error::Result<Requeue>> + Send;
    fn error_policy(&self, object: Arc<DynamicObject>, error: &Error, ctx: Arc<Context>) -> Requeue;
}

/// Runs `count` workers on `queue` until `stop` turns true; each finishes
/// the reconcile it is in before stopping.
pub async fn work<R: Reconciler>(
    count: usize,
    queue: Arc<FairQueue>,
    store: Store<DynamicObject>,
    resource: ApiResource,
    ctx: Arc<Context>,
    reconciler: Arc<R>,
    stop: watch::Receiver<bool>,
) {
    let workers = (0..count.max(1)).map(|_| {
        worker(
            queue.clone(),
            store.clone(),
            resource.clone(),
            ctx.clone(),
            reconciler.clone(),
            stop.clone(),
        )
    });
    futures::future::join_all(workers).await;
}

async fn worker<R: Reconciler>(
    queue: Arc<FairQueue>,
    store: Store<DynamicObject>,
    resource: ApiResource,
    ctx: Arc<Context>,
    reconciler: Arc<R>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        let key = tokio::select! {
            _ = stop.changed() => return,
            key = queue.next() => key,
        };
        let reference = ObjectRef::new_with(&key.name, resource.clone()).within(&key.namespace);
        let Some(object) = store.get(&reference) else {
            // Deleted since it was queued.
            queue.done(key, None);
            continue;
        };
        let requeue = reconcile_one(&*reconciler, object, &ctx).await;
        queue.done(key, requeue.after());
    }
}

/// One reconcile; a panic is caught and treated as a failure of that object
/// alone (logged, retried with backoff), so a bad object never stops a worker.
async fn reconcile_one<R: Reconciler>(reconciler: &R, object: Arc<DynamicObject>, ctx: &Arc<Context>) -> Requeue {
    let started = Instant::now();
    let outcome = AssertUnwindSafe(reconciler.reconcile(object.clone(), ctx.clone()))
        .catch_unwind()
        .await;
    debug!(object = %object.name_any(), took = ?started.elapsed(), "reconciled");
    match outcome {
        Ok(Ok(requeue)) => requeue,
        Ok(Err(error)) => reconciler.error_policy(object, &error, ctx.clone()),
        Err(_) => {
            error!(object = %object.name_any(), namespace = ?object.namespace(), "reconcile panicked; retrying later");
            reconciler.error_policy(object, &Error::Panicked, ctx.clone())
        }
    }
}
