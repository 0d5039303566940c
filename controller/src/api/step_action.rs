//! MyStepAction: one reusable step (Tekton's StepAction) that steps of
//! any task in the namespace run by name (`steps[].ref`).

use k8s_openapi::api::core::v1::{EnvVar, SecurityContext, VolumeMount};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{ParamSpec, ResultSpec, any_object};
use super::task::params_typed_by_properties;

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "cicdoperator.ning1875.io",
    version = "v1",
    kind = "MyStepAction",
    namespaced,
    shortname = "msa",
    category = "cicd",
    doc = "One reusable step: the container a step with `ref: {name: ...}` runs, with params of its own."
)]
#[serde(rename_all = "camelCase")]
pub struct StepActionSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub image: String,
    /// Run like a step's script (without a `#!` line, under `/bin/sh -e`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_object::<SecurityContext>")]
    pub security_context: Option<SecurityContext>,
    /// Mounts of the task's volumes; a name may be a `$(params...)` of the action.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,
    /// The action's own params: `$(params.p)` in its fields means these
    /// (the step gives their values), never the task's.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "params_typed_by_properties"
    )]
    pub params: Vec<ParamSpec>,
    /// Step results the action writes to `$(step.results.<r>.path)`; they
    /// become the referring step's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<ResultSpec>,
}

/// Which MyStepAction a step runs: one of the run's namespace by `name`,
/// or one a resolver fetches (`resolver` + `params`, as a `remoteTask`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct StepActionRef {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Fetches the action when the run starts instead (`name` unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolver: Option<super::ResolverName>,
    /// The resolver's params (the step's own `params` are the action's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<super::Param>,
}

impl StepActionRef {
    /// The reference as a resolver request, when it is one.
    pub fn remote(&self) -> Option<super::RemoteRef> {
        self.resolver.map(|resolver| super::RemoteRef {
            resolver,
            params: self.params.clone(),
        })
    }
}
