//! What the benchmark creates: namespaces, raw pods, the one-step MyTask
//! and its runs. Runs are untyped (`DynamicObject`), so the benchmark does
//! not depend on the controller's Rust types and measures any build of it.

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
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

/// A pod shaped as a run's pod is (its volumes, mounts, entrypoint and
/// script), made by a client: `template` is the pod the controller made
/// for one run, renamed for `id` and freed of what ties it to that run
/// (owner, labels, node) and of the API token volume the API server adds
/// again. Running these beside raw pods and runs separates what the pod's
/// shape costs the kubelet from what the controller costs.
pub fn run_shaped_pod(template: &Pod, id: usize) -> Pod {
    let mut spec = template.spec.clone().unwrap_or_default();
    spec.node_name = None;
    let api_token = |name: &str| name.starts_with("kube-api-access-");
    if let Some(volumes) = spec.volumes.as_mut() {
        volumes.retain(|volume| !api_token(&volume.name));
    }
    for container in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        if let Some(mounts) = container.volume_mounts.as_mut() {
            mounts.retain(|mount| !api_token(&mount.name));
        }
    }
    Pod {
        metadata: ObjectMeta {
            name: Some(format!("shaped-{id}")),
            labels: Some([(LABEL_ID.to_string(), id.to_string())].into()),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// The ConfigMaps a pod mounts, copied for another namespace (name, labels
/// and data only).
pub async fn copy_config_maps(client: &Client, pod: &Pod, from: &str, to: &str) -> anyhow::Result<()> {
    let names = pod
        .spec
        .iter()
        .flat_map(|spec| spec.volumes.iter().flatten())
        .filter_map(|volume| Some(volume.config_map.as_ref()?.name.clone()));
    let (source, target) = (
        Api::<ConfigMap>::namespaced(client.clone(), from),
        Api::<ConfigMap>::namespaced(client.clone(), to),
    );
    for name in names {
        let found = source.get(&name).await?;
        let copy = ConfigMap {
            metadata: ObjectMeta {
                name: Some(name),
                labels: found.metadata.labels,
                ..ObjectMeta::default()
            },
            data: found.data,
            binary_data: found.binary_data,
            immutable: found.immutable,
        };
        target.create(&PostParams::default(), &copy).await?;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_shaped_pod_keeps_the_shape_and_drops_what_ties_it_to_the_run() {
        let template: Pod = serde_json::from_value(json!({
            "metadata": { "name": "run-0-pod", "labels": { "cicdoperator.ning1875.io/taskRun": "run-0" },
                          "ownerReferences": [{ "apiVersion": "v1", "kind": "X", "name": "run-0", "uid": "u" }] },
            "spec": {
                "nodeName": "node-1",
                "containers": [{ "name": "step-noop", "image": "i", "volumeMounts": [
                    { "name": "cicd-bin", "mountPath": "/cicd/bin" },
                    { "name": "kube-api-access-x1", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount" },
                ] }],
                "volumes": [
                    { "name": "cicd-bin", "configMap": { "name": "cicd-entrypoint-1" } },
                    { "name": "kube-api-access-x1", "projected": { "sources": [] } },
                ],
            },
        }))
        .expect("a pod");
        let copy = run_shaped_pod(&template, 7);
        assert_eq!(copy.metadata.name.as_deref(), Some("shaped-7"));
        assert!(copy.metadata.owner_references.is_none());
        assert_eq!(
            copy.metadata.labels,
            Some([(LABEL_ID.to_string(), "7".to_string())].into())
        );
        let spec = copy.spec.expect("a spec");
        assert_eq!(spec.node_name, None);
        let volumes: Vec<&str> = spec.volumes.iter().flatten().map(|v| v.name.as_str()).collect();
        assert_eq!(volumes, ["cicd-bin"]);
        let mounts: Vec<&str> = spec.containers[0]
            .volume_mounts
            .iter()
            .flatten()
            .map(|m| m.name.as_str())
            .collect();
        assert_eq!(mounts, ["cicd-bin"]);
    }
}
