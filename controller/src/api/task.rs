//! MyTask: a reusable template of ordered steps.

use k8s_openapi::api::core::v1::{
    Container, EnvFromSource, EnvVar, ResourceRequirements, SecurityContext, Volume, VolumeMount,
};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{
    Param, ParamSpec, ParamType, ResultSpec, WorkspaceDeclaration, WorkspaceUsage, any_object, any_object_list,
};
use super::step_action::StepActionRef;

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "cicdoperator.ning1875.io",
    version = "v1",
    kind = "MyTask",
    namespaced,
    shortname = "mt",
    category = "cicd",
    doc = "A template of ordered steps that a MyTaskRun runs as one pod."
)]
#[serde(rename_all = "camelCase")]
pub struct TaskSpec {
    /// A name for people (dashboards, `cicd describe`); not used by the engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A param with `properties` but no `type` is an object (as in Tekton).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "params_typed_by_properties"
    )]
    pub params: Vec<ParamSpec>,
    /// A result with `properties` but no `type` is an object, as a param is.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "results_typed_by_properties"
    )]
    pub results: Vec<ResultSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workspaces: Vec<WorkspaceDeclaration>,
    /// Run in order. A step without a name is named `unnamed-<index>`
    /// when decoded, as Tekton does.
    #[serde(default, deserialize_with = "named_steps")]
    pub steps: Vec<Step>,
    /// Defaults every step inherits unless it sets the field itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_template: Option<StepTemplate>,
    /// Containers that run beside the steps for the whole run (a database,
    /// a docker daemon). They run as native sidecars: started, and ready,
    /// before the first step, and stopped when the last step ends.
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "named_sidecars")]
    #[schemars(schema_with = "any_object_list::<Sidecar>")]
    pub sidecars: Vec<Sidecar>,
    /// Extra pod volumes the steps can mount.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "any_object_list::<Volume>")]
    pub volumes: Vec<Volume>,
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

/// What a failure does to what comes after it: a step's, to the rest of its
/// task run; a pipeline task's, to the rest of its pipeline run.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum OnError {
    /// Record the failure and go on with the next step; the run can still succeed.
    Continue,
    /// Skip the remaining steps and fail the run.
    #[default]
    StopAndFail,
}

impl OnError {
    /// The policy a step's `onError` text names, if it names one.
    pub fn parse(text: &str) -> Option<OnError> {
        match text {
            "continue" => Some(OnError::Continue),
            "stopAndFail" => Some(OnError::StopAndFail),
            _ => None,
        }
    }

    pub fn as_flag(self) -> &'static str {
        match self {
            OnError::Continue => "continue",
            OnError::StopAndFail => "stopAndFail",
        }
    }
}

/// Decodes param declarations; one with `properties` and no `type` is an
/// object param, as Tekton infers.
pub(crate) fn params_typed_by_properties<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<ParamSpec>, D::Error> {
    // Decoded as the typed list (not through an untyped value), so an error
    // keeps its full path, e.g. `spec.params[0].name`. `type` defaults to
    // string, so a param with properties and that default is an object.
    let mut params = Vec::<ParamSpec>::deserialize(deserializer)?;
    for param in &mut params {
        if param.properties.is_some() && param.param_type == ParamType::String {
            param.param_type = ParamType::Object;
        }
    }
    Ok(params)
}

/// Decodes result declarations; one with `properties` and no `type` is an
/// object result (see `params_typed_by_properties`).
fn results_typed_by_properties<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<ResultSpec>, D::Error> {
    let mut results = Vec::<ResultSpec>::deserialize(deserializer)?;
    for result in &mut results {
        if result.properties.is_some() && result.result_type == ParamType::String {
            result.result_type = ParamType::Object;
        }
    }
    Ok(results)
}

/// The name Tekton gives the step at `index` when it has none.
pub fn unnamed_step_name(index: usize) -> String {
    format!("unnamed-{index}")
}

/// Decodes the steps and names the unnamed ones, so every later stage
/// (validation, the pod, the status) sees one name per step.
fn named_steps<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<Step>, D::Error> {
    let mut steps = Vec::<Step>::deserialize(deserializer)?;
    for (index, step) in steps.iter_mut().enumerate() {
        if step.name.is_empty() {
            step.name = unnamed_step_name(index);
        }
    }
    Ok(steps)
}

/// Decodes the sidecars and names the unnamed ones as steps are named
/// (their containers are `sidecar-unnamed-<i>`).
fn named_sidecars<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<Sidecar>, D::Error> {
    let mut sidecars = Vec::<Sidecar>::deserialize(deserializer)?;
    for (index, sidecar) in sidecars.iter_mut().enumerate() {
        if sidecar.container.name.is_empty() {
            sidecar.container.name = unnamed_step_name(index);
        }
    }
    Ok(sidecars)
}

/// One step: a container image and either a script or a command.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// Optional: `unnamed-<index>` when left out.
    #[serde(default)]
    pub name: String,
    /// A name for people; the step is still known by `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Falls back to the stepTemplate's image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// A script run as an executable file; without a `#!` line it runs
    /// under `/bin/sh -e`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_from: Vec<EnvFromSource>,
    /// Defaults to /workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_object::<SecurityContext>")]
    pub security_context: Option<SecurityContext>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    /// A duration such as `30s` or `1h30m`; the step is killed after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// `continue` or `stopAndFail` (the default). Text rather than the
    /// enum because Tekton lets it be a `$(params...)` reference; the
    /// value is checked once substituted (`OnError::parse`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_error: Option<String>,
    /// Isolated workspaces: the task's workspaces this step mounts (see
    /// `WorkspaceUsage`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workspaces: Vec<WorkspaceUsage>,
    /// Step results (strings): values this step writes to
    /// `$(step.results.<r>.path)` for later steps, which read them as
    /// `$(steps.<name>.results.<r>)` in their command, args and env, and
    /// for the task's `results[].value`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<ResultSpec>,
    /// Runs MyStepAction `name` of the run's namespace: its image, command
    /// or script, env and step results become this step's (which then sets
    /// none of those itself); name, timeout, onError and workspaces stay
    /// the step's.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub step_ref: Option<StepActionRef>,
    /// Values for the step action's params (only with `ref`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<Param>,
}

/// A container that runs beside the steps: a Kubernetes container, or the
/// image with a `script` run the way a step's is (written to a file; a
/// script without a `#!` line runs under `/bin/sh -e`).
#[derive(Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct Sidecar {
    #[serde(flatten)]
    pub container: Container,
    /// Instead of `command`; `args` are passed to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// Isolated workspaces: the task's workspaces this sidecar mounts (see
    /// `WorkspaceUsage`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workspaces: Vec<WorkspaceUsage>,
}

/// By hand, because serde's `flatten` would lose the path of an error
/// inside the container (`sidecars[0].ports[0].containerPort`).
impl<'de> Deserialize<'de> for Sidecar {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        use serde_json::Value;
        let mut fields = serde_json::Map::<String, Value>::deserialize(deserializer)?;
        // serde's own message for a mistyped script, under its own name.
        let script = fields
            .remove("script")
            .map(Option::<String>::deserialize)
            .transpose()
            .map_err(|error| D::Error::custom(super::strict::nested_message("script", error)))?
            .flatten();
        let workspaces = fields
            .remove("workspaces")
            .map(serde_path_to_error::deserialize::<_, Vec<WorkspaceUsage>>)
            .transpose()
            .map_err(|error| {
                let inner = super::strict::nested_error(error);
                D::Error::custom(super::strict::nested_message("workspaces", inner))
            })?
            .unwrap_or_default();
        let container = serde_path_to_error::deserialize(Value::Object(fields))
            .map_err(|error| D::Error::custom(super::strict::nested_error(error)))?;
        Ok(Sidecar {
            container,
            script,
            workspaces,
        })
    }
}

/// Fields every step inherits unless it sets them itself. Env vars merge
/// by name, the step's winning.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepTemplate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_from: Vec<EnvFromSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_object::<SecurityContext>")]
    pub security_context: Option<SecurityContext>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
}
