//! Types shared by several kinds: params, results, workspaces, conditions.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, EmptyDirVolumeSource, PersistentVolumeClaimVolumeSource, ProjectedVolumeSource,
    ResourceRequirements, SecretVolumeSource,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The API group as a literal, for `concat!`: the apiVersion and every
/// label key are built from it, so it is written once (the `kube` derives
/// need their own literal).
#[macro_export]
macro_rules! api_group {
    () => {
        "cicdoperator.ning1875.io"
    };
}

/// The API group; also the prefix of every label the controller sets.
pub const GROUP: &str = api_group!();
/// The one served and stored version.
pub const VERSION: &str = "v1";
pub const API_VERSION: &str = concat!(api_group!(), "/v1");

/// Schema for an embedded Kubernetes type whose full OpenAPI schema would
/// make the CRD too large for `kubectl apply` (256 KiB annotation limit).
/// The controller and `render` still decode it strictly with `T`'s full
/// schema (see `strict`), naming unknown fields.
pub fn any_object<T: JsonSchema>(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    super::strict::embedded::<T>(
        generator,
        serde_json::json!({
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true
        }),
    )
}

/// Like [`any_object`], for a list of embedded objects.
pub fn any_object_list<T: JsonSchema>(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    super::strict::embedded::<Vec<T>>(
        generator,
        serde_json::json!({
            "type": "array",
            "items": { "type": "object", "x-kubernetes-preserve-unknown-fields": true }
        }),
    )
}

/// A value of a string, array or object param (or result).
fn any_param_value(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "x-kubernetes-preserve-unknown-fields": true })
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ParamType {
    #[default]
    String,
    Array,
    Object,
}

impl std::fmt::Display for ParamType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ParamType::String => "string",
            ParamType::Array => "array",
            ParamType::Object => "object",
        })
    }
}

/// The value of a param or result. YAML decides the shape: a scalar is a
/// string, a sequence an array of strings, a mapping an object of strings.
/// Numbers and booleans (`value: 8080`, `default: true`) are taken as text.
// As in Tekton. The CRD schema accepts any value here, so refusing a number
// would leave an object the apiserver stored but the controller cannot decode.
#[derive(Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(untagged)]
#[schemars(schema_with = "any_param_value")]
pub enum ParamValue {
    String(String),
    Array(Vec<String>),
    Object(BTreeMap<String, String>),
}

/// The text of a scalar param value, or None for null, lists and maps.
fn scalar_text(value: serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(text) => Some(text),
        serde_json::Value::Number(number) => Some(number.to_string()),
        serde_json::Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

impl<'de> Deserialize<'de> for ParamValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        const SHAPE: &str = "a param value must be a string, a list of strings or a map of strings";
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::Array(items) => items
                .into_iter()
                .map(|item| {
                    scalar_text(item).ok_or_else(|| D::Error::custom(format!("{SHAPE}: a list item is not a string")))
                })
                .collect::<Result<_, _>>()
                .map(ParamValue::Array),
            serde_json::Value::Object(entries) => entries
                .into_iter()
                .map(|(key, item)| {
                    scalar_text(item)
                        .map(|text| (key.clone(), text))
                        .ok_or_else(|| D::Error::custom(format!("{SHAPE}: the value of key {key:?} is not a string")))
                })
                .collect::<Result<_, _>>()
                .map(ParamValue::Object),
            serde_json::Value::Null => Err(D::Error::custom(format!("{SHAPE}, not null"))),
            scalar => Ok(ParamValue::String(scalar_text(scalar).unwrap_or_default())),
        }
    }
}

impl ParamValue {
    pub fn param_type(&self) -> ParamType {
        match self {
            ParamValue::String(_) => ParamType::String,
            ParamValue::Array(_) => ParamType::Array,
            ParamValue::Object(_) => ParamType::Object,
        }
    }

    /// The empty value of a type: what `hasDefault: true` without a
    /// `default` stands for.
    pub fn empty(param_type: ParamType) -> Self {
        match param_type {
            ParamType::String => ParamValue::String(String::new()),
            ParamType::Array => ParamValue::Array(Vec::new()),
            ParamType::Object => ParamValue::Object(BTreeMap::new()),
        }
    }
}

/// A param a task or pipeline declares.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParamSpec {
    pub name: String,
    #[serde(rename = "type", default)]
    pub param_type: ParamType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<ParamValue>,
    /// Kept from the original design: `true` makes the param optional even
    /// without a `default` (it then defaults to the empty value of its type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_default: Option<bool>,
    /// For object params: the keys the object must have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<BTreeMap<String, PropertySpec>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct PropertySpec {
    #[serde(rename = "type", default)]
    pub property_type: ParamType,
}

/// A param value given by a run.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct Param {
    pub name: String,
    pub value: ParamValue,
}

/// A result a task or pipeline declares.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResultSpec {
    pub name: String,
    #[serde(rename = "type", default)]
    pub result_type: ParamType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// For object results: the keys the written object must have (a run
    /// whose object lacks one fails `TaskRunInvalidResults`, naming the
    /// keys); others are kept too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<BTreeMap<String, PropertySpec>>,
    /// A task result only: `$(steps.<s>.results.<r>)`, to take the value
    /// of step `<s>`'s step result `<r>` instead of a file the steps write
    /// at `$(results.<name>.path)` (Tekton's `results[].value`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// The resources of one step or sidecar of a run's task, by name (Tekton's
/// `stepSpecs`/`sidecarSpecs`): they replace what the task gives it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourcesOverride {
    /// The step's or sidecar's name in the task.
    pub name: String,
    #[schemars(schema_with = "any_object::<ResourceRequirements>")]
    pub compute_resources: ResourceRequirements,
}

/// A result as recorded in a run's status.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct RunResult {
    pub name: String,
    #[serde(rename = "type", default)]
    pub result_type: ParamType,
    pub value: ParamValue,
}

/// A workspace a task declares: a directory its steps share, whose storage
/// the run chooses.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceDeclaration {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Defaults to /workspace/<name>.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_path: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

/// A step's or sidecar's claim on one of the task's workspaces (Tekton's
/// isolated workspaces). A workspace that any step or sidecar names is
/// mounted only into the containers that name it, so a secret held in a
/// workspace reaches only the step that needs it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceUsage {
    /// A workspace the task declares.
    pub name: String,
    /// Where this container sees it; the workspace's own path when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_path: Option<String>,
}

/// The storage a run binds to a declared workspace: exactly one source.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceBinding {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_dir: Option<EmptyDirVolumeSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim: Option<PersistentVolumeClaimVolumeSource>,
    /// A claim made for this run (and owned by it), deleted with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_object::<k8s_openapi::api::core::v1::PersistentVolumeClaim>")]
    pub volume_claim_template: Option<k8s_openapi::api::core::v1::PersistentVolumeClaim>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ConfigMapVolumeSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretVolumeSource>,
    /// Several sources (config maps, secrets, the downward API, a service
    /// account token) in one directory; mounted read-only, as a config map
    /// or secret is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projected: Option<ProjectedVolumeSource>,
}

impl WorkspaceBinding {
    /// Config maps, secrets and projections are the cluster's data, never
    /// written by a step: such a workspace is mounted read-only.
    pub fn is_read_only_source(&self) -> bool {
        self.config_map.is_some() || self.secret.is_some() || self.projected.is_some()
    }

    /// The names of the volume sources set on this binding, to check that
    /// exactly one is.
    pub fn sources(&self) -> Vec<&'static str> {
        let mut sources = Vec::new();
        if self.empty_dir.is_some() {
            sources.push("emptyDir");
        }
        if self.persistent_volume_claim.is_some() {
            sources.push("persistentVolumeClaim");
        }
        if self.volume_claim_template.is_some() {
            sources.push("volumeClaimTemplate");
        }
        if self.config_map.is_some() {
            sources.push("configMap");
        }
        if self.secret.is_some() {
            sources.push("secret");
        }
        if self.projected.is_some() {
            sources.push("projected");
        }
        sources
    }
}

/// A status condition. Only `Succeeded` is used: True, False, or Unknown
/// while the run is in progress.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
}

/// Marks a run for cancellation when set in `spec.status`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum RunSpecStatus {
    Cancelled,
}

/// What a run in a concurrency group does when the group is full.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ConcurrencyPolicy {
    /// Wait (`Succeeded=Unknown`, reason `Queued`) until a slot is free;
    /// runs start in creation order.
    #[default]
    Queue,
    /// A newer run replaces the older ones: they are cancelled, queued or running.
    CancelInProgress,
}

/// Limits how many runs of one group run at a time in a namespace, like a
/// CI system's concurrency groups (e.g. one deployment per environment).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Concurrency {
    /// The group's name; `$(params.x)` is replaced by the run's params, so
    /// `deploy-$(params.env)` makes one group per environment. At most 253
    /// bytes after substitution, printable text.
    pub group: String,
    /// How many runs of the group may run at once (default 1, at most 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
    /// `Queue` (default) or `CancelInProgress`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<ConcurrencyPolicy>,
}

/// Which resolver fetches a `remoteTask` or `remotePipeline`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ResolverName {
    /// A MyTask or MyPipeline of the cluster: the run's namespace, or one an
    /// administrator allows (`--cluster-resolver-namespaces`).
    Cluster,
    /// A file of a git repository (`url`, `revision`, `pathInRepo`), our kind
    /// or Tekton's (converted as `convert` does, refused if lossy).
    Git,
    /// A file at an http:// or https:// `url`, read as the git resolver's.
    Http,
    /// A Tekton bundle: the layer of OCI image `bundle` that holds the
    /// `kind` named `name` (see `crate::bundle`).
    Bundles,
}

/// A task or pipeline fetched by a resolver when the run starts, instead
/// of named in the run's namespace. What was fetched is kept in the run's
/// status (`taskSpec`/`pipelineSpec`, `resolvedFrom`), so the run never
/// changes meaning when the source moves on.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct RemoteRef {
    pub resolver: ResolverName,
    /// The resolver's inputs, as strings: `cluster`: `name`, and optional
    /// `kind` (`task`/`pipeline`) and `namespace`; `git`: `url`, `pathInRepo`,
    /// and optional `revision` (a branch, tag or commit; default: the
    /// repository's default branch); `http`: `url`; `bundles`: `bundle`,
    /// `name`, `kind`, and optional `secret` (a pull Secret).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<Param>,
}

/// Where a resolver found a run's task or pipeline, for audits and for
/// `context.task.name` after the fetch.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedFrom {
    /// `cluster`, `git`, `http` or `bundles`.
    pub resolver: String,
    /// The fetched object's `metadata.name`.
    pub name: String,
    /// `namespace/name` (cluster), the repository url (git), the url
    /// (http), or the image with the digest read (bundles).
    pub uri: String,
    /// The commit the file was read at (git): the revision as it was when
    /// the run started; for a bundle, the digest of the manifest read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The file read (git only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}
