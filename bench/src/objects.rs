//! What the benchmark creates: namespaces, raw pods, the one-step MyTask
//! and its runs. Runs are untyped (`DynamicObject`), so the benchmark does
//! not depend on the controller's Rust types and measures any build of it.

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

/// Label on every pod and run the benchmark makes: the object's index in
/// its phase, which the watch uses to match a pod to its creation time.
pub const LABEL_ID: &str = "cicd-bench/id";
/// A node label no node has: pods with it as their nodeSelector stay
/// Pending, so only the controller (not the kubelet) is measured.
const NOWHERE: &str = "cicd-bench/nowhere";
/// The MyTask every run refers to.
const TASK: &str = "bench-one-step";
/// The name prefix of the floor phase's MyTasks, one per pod.
const FLOOR_TASK: &str = "floor";

pub fn task_run_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cicdoperator.ning1875.io", "v1", "MyTaskRun"),
        "mytaskruns",
    )
}

fn task_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cicdoperator.ning1875.io", "v1", "MyTask"),
        "mytasks",
    )
}

/// Whether the objects' pods may be scheduled and really run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    Unschedulable,
    Runs,
}

fn node_selector(placement: Placement) -> Value {
    match placement {
        Placement::Unschedulable => json!({ NOWHERE: "true" }),
        Placement::Runs => json!({}),
    }
}

pub async fn create_namespace(client: &Client, name: &str) -> anyhow::Result<()> {
    let namespace: Namespace = serde_json::from_value(json!({ "metadata": { "name": name } }))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await?;
    Ok(())
}

/// Deletes a namespace without waiting for its objects to go.
pub async fn delete_namespace(client: &Client, name: &str) -> anyhow::Result<()> {
    Api::<Namespace>::all(client.clone())
        .delete(name, &DeleteParams::background())
        .await?;
    Ok(())
}

/// Waits until a namespace is gone: true if it went within `timeout`.
pub async fn wait_gone(client: &Client, name: &str, timeout: std::time::Duration) -> anyhow::Result<bool> {
    let namespaces = Api::<Namespace>::all(client.clone());
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if namespaces.get_opt(name).await?.is_none() {
            return Ok(true);
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    Ok(false)
}

/// A pod as a client would create it directly: one container doing what
/// the run's one step does.
pub fn raw_pod(id: usize, image: &str, placement: Placement) -> anyhow::Result<Pod> {
    Ok(serde_json::from_value(json!({
        "metadata": { "name": format!("raw-{id}"), "labels": { LABEL_ID: id.to_string() } },
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": node_selector(placement),
            "containers": [{
                "name": "step",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["/bin/sh", "-c", "true"],
            }],
        },
    }))?)
}

/// Creates [`raw_pod`] `id` in `namespace`.
pub async fn create_raw_pod(
    client: &Client,
    namespace: &str,
    id: usize,
    image: &str,
    placement: Placement,
) -> anyhow::Result<()> {
    Api::<Pod>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &raw_pod(id, image, placement)?)
        .await?;
    Ok(())
}

/// The MyTask of every run: one step that does nothing.
pub async fn create_task(client: &Client, namespace: &str, image: &str) -> anyhow::Result<()> {
    create_named_task(client, namespace, TASK, image).await
}

/// The floor phase's custom object for pod `id`: a MyTask, which goes
/// through the API server's custom-resource path as a run does but which
/// the controller only caches (it writes nothing back).
pub async fn create_floor_task(client: &Client, namespace: &str, id: usize, image: &str) -> anyhow::Result<()> {
    create_named_task(client, namespace, &format!("{FLOOR_TASK}-{id}"), image).await
}

async fn create_named_task(client: &Client, namespace: &str, name: &str, image: &str) -> anyhow::Result<()> {
    let task: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "cicdoperator.ning1875.io/v1",
        "kind": "MyTask",
        "metadata": { "name": name },
        "spec": { "steps": [{ "name": "noop", "image": image, "script": "true" }] },
    }))?;
    Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &task_resource())
        .create(&PostParams::default(), &task)
        .await?;
    Ok(())
}

/// A run of the one-step task; `cancelled` runs end without a pod (the
/// history phase uses them to pile up finished runs cheaply).
pub fn task_run(id: usize, placement: Placement, cancelled: bool) -> anyhow::Result<DynamicObject> {
    let mut spec = json!({
        "taskRef": TASK,
        "podTemplate": { "nodeSelector": node_selector(placement) },
    });
    if cancelled {
        spec["status"] = json!("Cancelled");
    }
    Ok(serde_json::from_value(json!({
        "apiVersion": "cicdoperator.ning1875.io/v1",
        "kind": "MyTaskRun",
        "metadata": { "name": format!("run-{id}"), "labels": { LABEL_ID: id.to_string() } },
        "spec": spec,
    }))?)
}
