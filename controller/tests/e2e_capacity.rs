//! End-to-end test of fair share on the real cluster (hack/local-cluster):
//! while one tenant's burst of runs is being worked through, runs of
//! another tenant still get their pods at once (issue 11).
//!
//! Ignored by default and left out of `hack/e2e` (it times pods to the
//! millisecond on two cores shared with the API server, and its bound holds
//! by too small a margin to gate CI on: slowest probes 433-470 ms in three
//! runs on 2026-12-07); run it with `cargo test -p cicd-controller --test
//! e2e_capacity -- --ignored --nocapture` on a quiet cluster.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DynamicObject, PostParams};
use kube::runtime::watcher;
use kube::{Api, Client};
use support::{BASH, TestNamespace};

/// Runs in the busy namespace.
const BURST: usize = 500;
/// Runs created in the quiet namespace during the burst.
const PROBES: usize = 20;
/// Create requests in flight at once for the burst.
const BURST_CLIENTS: usize = 32;
/// The longest a probe may wait for its pod (issue 11: p99 over 20 probes).
const PROBE_LIMIT: Duration = Duration::from_millis(500);
/// Label with each object's index, copied by the controller onto its pod.
const LABEL_ID: &str = "e2e-capacity/id";

/// A run whose pod can never be scheduled (no node has the label), so the
/// test loads only the controller and the API server, not the node.
fn unschedulable_run(id: usize) -> DynamicObject {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "cicdoperator.ning1875.io/v1",
        "kind": "MyTaskRun",
        "metadata": {"name": format!("run-{id}"), "labels": {LABEL_ID: id.to_string()}},
        "spec": {
            "podTemplate": {"nodeSelector": {"e2e-capacity/nowhere": "true"}},
            "taskSpec": {"steps": [{"name": "noop", "image": BASH, "script": "true"}]}
        }
    }))
    .expect("a run")
}

fn runs(client: &Client, namespace: &str) -> Api<DynamicObject> {
    let resource = kube::api::ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk("cicdoperator.ning1875.io", "v1", "MyTaskRun"),
        "mytaskruns",
    );
    Api::namespaced_with(client.clone(), namespace, &resource)
}

/// When each labelled pod of a namespace was first seen.
#[derive(Clone, Default)]
struct PodsSeen(Arc<Mutex<HashMap<usize, Instant>>>);

impl PodsSeen {
    fn watch(&self, client: &Client, namespace: &str) {
        let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
        let seen = self.clone();
        tokio::spawn(async move {
            let mut events = watcher::watcher(pods, watcher::Config::default().labels(LABEL_ID)).boxed();
            while let Some(event) = events.next().await {
                if let Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) = event {
                    let id = pod.metadata.labels.as_ref().and_then(|l| l.get(LABEL_ID)?.parse().ok());
                    if let Some(id) = id {
                        seen.0
                            .lock()
                            .expect("not poisoned")
                            .entry(id)
                            .or_insert_with(Instant::now);
                    }
                }
            }
        });
    }

    fn get(&self, id: usize) -> Option<Instant> {
        self.0.lock().expect("not poisoned").get(&id).copied()
    }

    fn count(&self) -> usize {
        self.0.lock().expect("not poisoned").len()
    }
}

// Several threads, as `hack/bench` has: on one, the watch that notes each
// probe's pod waits behind the burst's 32 requests, and that wait was
// counted as the controller's.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: hack/e2e"]
async fn capacity_a_tenants_burst_does_not_delay_another_tenants_runs() {
    let busy = TestNamespace::new("e2e-cap-busy").await;
    let quiet = TestNamespace::new("e2e-cap-quiet").await;
    let client = Client::try_default().await.expect("kube client from KUBECONFIG");
    let (busy_pods, quiet_pods) = (PodsSeen::default(), PodsSeen::default());
    busy_pods.watch(&client, &busy.name);
    quiet_pods.watch(&client, &quiet.name);
    tokio::time::sleep(Duration::from_millis(500)).await; // the watches' first list
    // One untimed run first: a controller just installed may still be
    // waiting for its lease or filling its caches.
    let warm_up = PROBES; // an id no probe uses
    runs(&client, &quiet.name)
        .create(&PostParams::default(), &unschedulable_run(warm_up))
        .await
        .expect("warm-up run created");
    let deadline = Instant::now() + Duration::from_secs(120);
    while quiet_pods.get(warm_up).is_none() {
        assert!(
            Instant::now() < deadline,
            "the warm-up run got no pod in 120 s{}",
            quiet.diagnostics()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let started = Instant::now();
    let busy_runs = runs(&client, &busy.name);
    let burst = futures::stream::iter(0..BURST)
        .map(|id| {
            let api = busy_runs.clone();
            async move {
                api.create(&PostParams::default(), &unschedulable_run(id))
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(BURST_CLIENTS)
        .collect::<Vec<_>>();
    let quiet_runs = runs(&client, &quiet.name);
    let probes = async {
        // Let the burst build a backlog first.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut created = Vec::new();
        for id in 0..PROBES {
            let backlog = BURST.saturating_sub(busy_pods.count());
            let at = Instant::now();
            quiet_runs
                .create(&PostParams::default(), &unschedulable_run(id))
                .await
                .expect("probe created");
            created.push((id, at, backlog));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        created
    };
    let (burst, created) = tokio::join!(burst, probes);
    let burst_errors: Vec<String> = burst
        .into_iter()
        .filter_map(|r| r.err().map(|e| e.to_string()))
        .collect();

    let deadline = Instant::now() + Duration::from_secs(60);
    while quiet_pods.count() < PROBES + 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut waits: Vec<Duration> = created
        .iter()
        .map(|(id, at, _)| {
            quiet_pods
                .get(*id)
                .map_or(Duration::MAX, |seen| seen.saturating_duration_since(*at))
        })
        .collect();
    waits.sort();
    let busy_done = busy_pods.count();
    eprintln!(
        "burst of {BURST} in {:?} ({busy_done} pods seen); probe waits: {:?}; backlog at each probe: {:?}",
        started.elapsed(),
        waits,
        created.iter().map(|(_, _, backlog)| backlog).collect::<Vec<_>>()
    );
    // The burst's 500 pending pods go whatever the outcome.
    busy.passed();

    assert!(burst_errors.is_empty(), "burst creates failed: {burst_errors:?}");
    assert!(
        created.iter().any(|(_, _, backlog)| *backlog > 0),
        "the probes were not created during the burst"
    );
    // Nearest-rank p99 of 20 samples is the largest.
    let p99 = waits[(waits.len() * 99).div_ceil(100) - 1];
    assert!(
        p99 < PROBE_LIMIT,
        "p99 time to pod of the quiet tenant's runs is {p99:?} (limit {PROBE_LIMIT:?}); waits {waits:?}{}",
        quiet.diagnostics()
    );
    quiet.passed();
}
