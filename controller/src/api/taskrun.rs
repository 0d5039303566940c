//! MyTaskRun: one execution of a MyTask, as one pod.

use k8s_openapi::api::core::v1::{
    Affinity, LocalObjectReference, PodSecurityContext, ResourceRequirements, Toleration, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::artifacts::{Artifact, Artifacts};
use super::common::{
    Condition, Param, RemoteRef, ResolvedFrom, RunResult, RunSpecStatus, WorkspaceBinding, any_object, any_object_list,
};
use super::task::TaskSpec;

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "cicdoperator.ning1875.io",
    version = "v1",
    kind = "MyTaskRun",
    namespaced,
    status = "TaskRunStatus",
    shortname = "mtr",
    category = "cicd",
    doc = "Runs a MyTask (by name, or inline) as one pod.",
    printcolumn = r#"{"name":"Succeeded","type":"string","jsonPath":".status.conditions[?(@.type==\"Succeeded\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Succeeded\")].reason"}"#,
    printcolumn = r#"{"name":"StartTime","type":"date","jsonPath":".status.startTime"}"#,
    printcolumn = r#"{"name":"CompletionTime","type":"date","jsonPath":".status.completionTime"}"#,
    printcolumn = r#"{"name":"Message","type":"string","jsonPath":".status.conditions[?(@.type==\"Succeeded\")].message"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct TaskRunSpec {
    /// The name of a MyTask in the run's own namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_ref: Option<String>,
    /// A task written inline instead of `taskRef` (described in full in the
    /// CRD, so the API server refuses unknown fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_spec: Option<TaskSpec>,
    /// A task fetched by a resolver (git, cluster) instead of `taskRef` or
    /// `taskSpec`; Tekton's `taskRef: {resolver, params}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_task: Option<RemoteRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<Param>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workspaces: Vec<WorkspaceBinding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// A duration such as `10m` or `1h30m`; default 1h; `0` means none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// How many more times a failed attempt is tried, each in a new pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// `Cancelled` stops the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RunSpecStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_template: Option<PodTemplate>,
    /// What the whole run needs (Tekton's task-level `computeResources`):
    /// every step gets these limits and the pod requests these requests
    /// once (steps run one at a time); it replaces the steps' own
    /// `resources`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_object::<ResourceRequirements>")]
    pub compute_resources: Option<ResourceRequirements>,
    /// Per step, by name: resources replacing the step's own (not together
    /// with `computeResources`, which already sets every step's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub step_specs: Vec<super::common::ResourcesOverride>,
    /// Per sidecar, by name: resources replacing the sidecar's own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sidecar_specs: Vec<super::common::ResourcesOverride>,
    /// Overrides the definition's `concurrency` (see MyTask).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<super::common::Concurrency>,
    /// Seconds after the run finishes before the controller deletes it
    /// (with its pods and claims); overrides the definition's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds_after_finished: Option<u32>,
}

impl TaskRunSpec {
    /// The ServiceAccount the run's pod runs as: `default` when none is
    /// named, and when the name is empty (Tekton's examples write
    /// `serviceAccountName: ""` for the default).
    pub fn service_account(&self) -> &str {
        match self.service_account_name.as_deref() {
            None | Some("") => "default",
            Some(name) => name,
        }
    }
}

/// Pod-level settings a run passes through to its pod.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "any_object_list::<Toleration>")]
    pub tolerations: Vec<Toleration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_object::<Affinity>")]
    pub affinity: Option<Affinity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_object::<PodSecurityContext>")]
    pub security_context: Option<PodSecurityContext>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_network: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_class_name: Option<String>,
    /// Extra pod volumes the task's steps (and step template) may mount
    /// besides the task's own `volumes`, e.g. a cache the cluster provides.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "any_object_list::<Volume>")]
    pub volumes: Vec<Volume>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskRunStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepState>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<RunResult>,
    /// What the steps wrote at `$(artifacts.path)` and
    /// `$(step.artifacts.path)`, in step order: the run's provenance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<Artifacts>,
    /// Problems that did not stop the run, e.g. a workspace binding the
    /// task does not declare.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Earlier failed attempts, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retries_status: Vec<AttemptStatus>,
    /// The task as it was resolved when the run started, so later edits of
    /// the MyTask do not change what this run means.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_object::<TaskSpec>")]
    pub task_spec: Option<TaskSpec>,
    /// Where `remoteTask`'s resolver found the task (unset for taskRef and
    /// taskSpec).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_from: Option<ResolvedFrom>,
    /// Where each step action a resolver fetched (`steps[].ref: {resolver,
    /// params}`) came from, for the current attempt: what ran, as
    /// `resolvedFrom` says for a remote task.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub step_actions_resolved_from: Vec<StepActionSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Where the step action of one step was fetched from.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepActionSource {
    /// The step's name in the task (as inlined: `unnamed-<i>` if it had none).
    pub step: String,
    pub resolved_from: ResolvedFrom,
}

/// What one step did, as read from its container and the entrypoint's report.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepState {
    pub name: String,
    pub container: String,
    /// Waiting, Running or Terminated.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    /// The step results this step wrote (Tekton's `status.steps[].results`),
    /// typed as the step declares them; read once the pod has finished.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<RunResult>,
    /// What the step wrote at `$(step.artifacts.path)`: the artifacts it
    /// read...
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<Artifact>,
    /// ...and those it made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<Artifact>,
}

/// A failed attempt kept when the run is retried.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptStatus {
    pub pod_name: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
}
