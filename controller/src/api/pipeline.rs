//! MyPipeline and MyPipelineRun: a DAG of tasks that pass results.
//! (The types; the scheduler and reconciler live elsewhere.)

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{
    Condition, Param, ParamSpec, ParamValue, RemoteRef, ResolvedFrom, RunResult, RunSpecStatus, WorkspaceBinding,
    any_object,
};
use super::task::TaskSpec;
use super::taskrun::PodTemplate;

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "cicdoperator.ning1875.io",
    version = "v1",
    kind = "MyPipeline",
    namespaced,
    shortname = "mp",
    category = "cicd",
    doc = "A DAG of tasks; a MyPipelineRun runs it."
)]
#[serde(rename_all = "camelCase")]
pub struct PipelineSpec {
    /// A name for people (dashboards, `cicd describe`); not used by the engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A param with `properties` but no `type` is an object (as in Tekton).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "super::task::params_typed_by_properties"
    )]
    pub params: Vec<ParamSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workspaces: Vec<PipelineWorkspaceDeclaration>,
    #[serde(default)]
    pub tasks: Vec<PipelineTask>,
    /// Tasks run after all others, whatever happened to them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finally: Vec<PipelineTask>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<PipelineResultSpec>,
    /// Runs of this definition wait for, or replace, other runs of the same
    /// group; a run's own `concurrency` takes precedence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<super::common::Concurrency>,
    /// Seconds after a run of this definition finishes before the controller
    /// deletes it (with its pods and claims); a run's own value wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds_after_finished: Option<u32>,
    /// How many succeeded runs of this definition to keep in the namespace;
    /// older ones (by completion time) are deleted. Unset keeps all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successful_runs_history_limit: Option<u32>,
    /// How many failed (or cancelled) runs of this definition to keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_runs_history_limit: Option<u32>,
}

impl PipelineSpec {
    /// The regular tasks, then the finally tasks: every task a run may start.
    pub fn all_tasks(&self) -> impl Iterator<Item = &PipelineTask> {
        self.tasks.iter().chain(&self.finally)
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipelineWorkspaceDeclaration {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipelineTask {
    pub name: String,
    /// A name for people, shown beside `name` by `cicd describe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_ref: Option<String>,
    /// Described in full in the CRD, so the API server refuses unknown fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_spec: Option<TaskSpec>,
    /// A task fetched by a resolver (`git` or `cluster`) when the task's run
    /// starts: its child MyTaskRun gets this `remoteTask` and resolves it
    /// (the same rules as a MyTaskRun's). Until then its params and results
    /// are taken on trust; once fetched they are checked as any task's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_task: Option<super::common::RemoteRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<Param>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workspaces: Vec<PipelineTaskWorkspace>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub run_after: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub when: Vec<WhenExpression>,
    /// Fans the task out: one child run per combination of these params.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matrix: Option<Matrix>,
    /// What the task's failure does to the pipeline run: `stopAndFail` (the
    /// default) starts no new task and fails the run; `continue` ignores it,
    /// so the tasks after it still run and the run can succeed (Tekton's
    /// pipeline task `onError`). The task's results are then missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_error: Option<super::task::OnError>,
}

impl PipelineTask {
    /// Whether the pipeline run goes on when this task fails.
    pub fn failure_ignored(&self) -> bool {
        self.on_error == Some(super::task::OnError::Continue)
    }
}

/// The params a matrixed pipeline task is run with, one child run per
/// combination (see `pipeline::matrix` for how they are formed).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Matrix {
    /// Each param's list of values (an array, or a reference to one such as
    /// `$(params.list[*])`); every combination of them is one child.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<Param>,
    /// Extra params for the combinations they match, or extra combinations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<MatrixInclude>,
}

/// One `matrix.include` entry: string params added to every combination
/// whose matrix values equal its own, or a combination of its own when it
/// matches none.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MatrixInclude {
    /// A label for people and messages; it changes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Each a string value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<Param>,
    /// Conditions on the entry itself: when one does not hold, the entry is
    /// left out (so a list param can switch platforms of a build on or off).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub when: Vec<WhenExpression>,
}

/// Binds a pipeline workspace to a workspace of one task.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipelineTaskWorkspace {
    /// The task's workspace name.
    pub name: String,
    /// The pipeline's workspace name; defaults to `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_path: Option<String>,
}

/// Spelled `in` and `notin`, as in Tekton.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WhenOperator {
    In,
    NotIn,
}

/// Runs a task only when `input` is (or is not) one of `values`, or when
/// the CEL expression `cel` holds (one form or the other).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct WhenExpression {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub input: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<WhenOperator>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// A CEL expression over substituted text, e.g.
    /// `"'$(params.branch)'.startsWith('release-')"` (see `pipeline::cel`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cel: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipelineResultSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Usually `$(tasks.<task>.results.<result>)`; a list or a map of
    /// such strings makes an array or object result (Tekton's form), and a
    /// whole array or object reference (`...results.r[*]`) one of its type.
    pub value: ParamValue,
}

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "cicdoperator.ning1875.io",
    version = "v1",
    kind = "MyPipelineRun",
    namespaced,
    status = "PipelineRunStatus",
    shortname = "mpr",
    category = "cicd",
    doc = "Runs a MyPipeline: one MyTaskRun per pipeline task.",
    printcolumn = r#"{"name":"Succeeded","type":"string","jsonPath":".status.conditions[?(@.type==\"Succeeded\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Succeeded\")].reason"}"#,
    printcolumn = r#"{"name":"StartTime","type":"date","jsonPath":".status.startTime"}"#,
    printcolumn = r#"{"name":"CompletionTime","type":"date","jsonPath":".status.completionTime"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct PipelineRunSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_ref: Option<String>,
    /// Described in full in the CRD, so the API server refuses unknown fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_spec: Option<PipelineSpec>,
    /// A pipeline fetched by a resolver (git, cluster) instead of
    /// `pipelineRef` or `pipelineSpec`; Tekton's `pipelineRef: {resolver, params}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_pipeline: Option<RemoteRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<Param>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workspaces: Vec<WorkspaceBinding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<PipelineTimeouts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RunSpecStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_template: Option<PodTemplate>,
    /// Settings for the runs of single pipeline tasks, over the run-wide
    /// `serviceAccountName` and `podTemplate` (Tekton's `taskRunSpecs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub task_run_specs: Vec<PipelineTaskRunSpec>,
    /// Overrides the definition's `concurrency` (see MyTask).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<super::common::Concurrency>,
    /// Seconds after the run finishes before the controller deletes it
    /// (with its pods and claims); overrides the definition's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds_after_finished: Option<u32>,
}

/// What the child run of one pipeline task gets instead of the run-wide
/// settings: a deploy task under another service account, a build task on
/// other nodes.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipelineTaskRunSpec {
    /// The pipeline task (regular or finally) these settings are for.
    pub pipeline_task_name: String,
    /// Replaces the run's `serviceAccountName` for this task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Merged over the run's `podTemplate`, field by field; a field set
    /// here wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_template: Option<PodTemplate>,
    /// The child run's `computeResources` (see MyTaskRun).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_object::<ResourceRequirements>")]
    pub compute_resources: Option<ResourceRequirements>,
    /// The child run's `stepSpecs` (see MyTaskRun).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub step_specs: Vec<super::common::ResourcesOverride>,
    /// The child run's `sidecarSpecs` (see MyTaskRun).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sidecar_specs: Vec<super::common::ResourcesOverride>,
    /// Replaces the pipeline task's `timeout` for this run (`"0"`: none), so
    /// one run can give a slow task more time without editing the pipeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct PipelineTimeouts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finally: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipelineRunStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub child_references: Vec<ChildReference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_tasks: Vec<SkippedTask>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<RunResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_object::<PipelineSpec>")]
    pub pipeline_spec: Option<PipelineSpec>,
    /// Where `remotePipeline`'s resolver found the pipeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_from: Option<ResolvedFrom>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChildReference {
    pub name: String,
    pub pipeline_task_name: String,
    pub kind: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SkippedTask {
    pub name: String,
    pub reason: String,
}
