//! `convert`: Tekton YAML (tekton.dev/v1 and v1beta1 Task, TaskRun,
//! Pipeline, PipelineRun, StepAction) in, this project's kinds out. Other
//! kinds (Secrets, ConfigMaps, ...) pass through unchanged. Pure: text in,
//! text out, so `cicd-controller convert` and the `cicd` CLI share it.
//!
//! Every Tekton field is carried over, renamed, or reported as a [`Loss`]
//! naming the field: nothing is dropped silently. Each converted document
//! is decoded into our typed kind before it is printed, so the output is
//! known to be readable by the controller.

mod fields;
mod tekton;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::api::{API_VERSION, MyPipeline, MyPipelineRun, MyStepAction, MyTask, MyTaskRun, strict};

pub use fields::Loss;
use fields::{Fields, Losses};
use tekton::Converter;

/// What a conversion produced.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvertOutput {
    /// Multi-document YAML: the converted and passed-through documents, in input order.
    pub yaml: String,
    /// What could not be mapped exactly (empty for an exact conversion).
    pub losses: Vec<Loss>,
    /// How many documents were converted (not counting passed-through ones).
    pub converted: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("{source_name}: not valid YAML: {message}")]
    Yaml { source_name: String, message: String },
    /// A converted document that our kinds cannot hold (a wrongly typed value in the input).
    #[error("{document}: {message}")]
    Invalid { document: String, message: String },
    /// Losses found and `allow_lossy` not set: one per line.
    #[error(
        "{}\n{} field(s) cannot be converted exactly; nothing was written (pass --allow-lossy to write the rest anyway)",
        .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"),
        .0.len()
    )]
    Lossy(Vec<Loss>),
    #[error("cannot write YAML: {0}")]
    Output(String),
}

/// Metadata the apiserver sets; meaningless on a new object, so dropped quietly.
const SERVER_METADATA: &[&str] = &[
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// The annotation kubectl keeps the applied Tekton object in; it would
/// describe the old kind, so it is not carried over.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

fn metadata(value: Option<Value>, losses: &mut Losses) -> Value {
    let mut fields = Fields::of(value.unwrap_or(Value::Null), "metadata", losses);
    let mut out = Map::new();
    for key in ["name", "generateName", "namespace", "labels"] {
        fields.copy(key, &mut out);
    }
    if let Some(Value::Object(mut annotations)) = fields.take("annotations") {
        annotations.remove(LAST_APPLIED);
        if !annotations.is_empty() {
            out.insert("annotations".into(), Value::Object(annotations));
        }
    }
    for key in SERVER_METADATA {
        fields.take(key);
    }
    fields.unsupported(
        "ownerReferences",
        "owner references are not carried over; dropped",
        losses,
    );
    fields.unsupported("finalizers", "finalizers are not carried over; dropped", losses);
    fields.finish(losses);
    Value::Object(out)
}

/// Our kind for a Tekton kind, or None when it is not a Tekton kind we map.
fn our_kind(kind: &str) -> Option<&'static str> {
    match kind {
        "Task" | "ClusterTask" => Some("MyTask"),
        "TaskRun" => Some("MyTaskRun"),
        "Pipeline" => Some("MyPipeline"),
        "PipelineRun" => Some("MyPipelineRun"),
        "StepAction" => Some("MyStepAction"),
        _ => None,
    }
}

fn is_tekton(api_version: &str) -> bool {
    api_version.starts_with("tekton.dev/")
}

fn to_yaml<T: Serialize>(value: &T) -> Result<String, ConvertError> {
    serde_saphyr::to_string(value).map_err(|e| ConvertError::Output(e.to_string()))
}

/// Decodes a converted document into our typed kind and prints it, so the
/// output is known to decode (and its fields come out in our order).
fn typed_yaml(kind: &str, document: Value, name: &str, losses: &mut Losses) -> Result<String, ConvertError> {
    /// Fields passed on whole keep Tekton's spelling: a field whose name
    /// differs from ours only in case is ours (Tekton reads it so); any
    /// other field we do not know is reported, never dropped silently.
    fn check<T>(mut document: Value, name: &str, losses: &mut Losses) -> Result<String, ConvertError>
    where
        T: serde::de::DeserializeOwned + Serialize + schemars::JsonSchema + 'static,
    {
        strict::match_field_case::<T>(&mut document);
        for problem in strict::unknown_fields_of::<T>(&document) {
            losses.push(problem.path, format!("{}; dropped", problem.message));
        }
        let typed: T = serde_path_to_error::deserialize(document).map_err(|error| ConvertError::Invalid {
            document: name.to_string(),
            message: format!("{}: {}", error.path(), error.inner()),
        })?;
        to_yaml(&typed)
    }
    match kind {
        "MyTask" => check::<MyTask>(document, name, losses),
        "MyTaskRun" => check::<MyTaskRun>(document, name, losses),
        "MyPipeline" => check::<MyPipeline>(document, name, losses),
        "MyStepAction" => check::<MyStepAction>(document, name, losses),
        _ => check::<MyPipelineRun>(document, name, losses),
    }
}

/// One input document, with where it came from.
struct Document {
    /// `file.yaml: Task "build"`, or `file.yaml: document 2` without a name.
    label: String,
    value: Value,
}

fn read_documents(inputs: &[(String, String)]) -> Result<Vec<Document>, ConvertError> {
    let mut documents = Vec::new();
    for (source_name, text) in inputs {
        let values: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|error| ConvertError::Yaml {
            source_name: source_name.clone(),
            message: error.to_string(),
        })?;
        for (index, value) in values.into_iter().enumerate() {
            if value.is_null() {
                continue;
            }
            let kind = value.get("kind").and_then(Value::as_str).unwrap_or_default();
            let label = match value.pointer("/metadata/name").and_then(Value::as_str) {
                Some(name) => format!("{source_name}: {kind} {name:?}"),
                None => format!("{source_name}: document {index} ({kind})"),
            };
            documents.push(Document { label, value });
        }
    }
    Ok(documents)
}

/// Converts one Tekton document of a kind we map.
fn convert_document(
    converter: &Converter,
    document: Value,
    kind: &'static str,
    label: &str,
    losses: &mut Losses,
) -> Result<String, ConvertError> {
    let mut fields = Fields::of(document, "", losses);
    let tekton_kind = fields.take_str("kind", losses).unwrap_or_default();
    fields.take("apiVersion");
    fields.take("status"); // the state of an old run, not part of what to run
    if tekton_kind == "ClusterTask" {
        losses.push(
            "kind",
            "a ClusterTask becomes a namespaced MyTask: apply it in every namespace that uses it",
        );
    }
    let metadata = metadata(fields.take("metadata"), losses);
    let spec = fields.take("spec").unwrap_or(Value::Null);
    let spec = match kind {
        "MyTask" => converter.task_spec(spec, "spec", losses),
        "MyTaskRun" => converter.task_run_spec(spec, "spec", losses),
        "MyPipeline" => converter.pipeline_spec(spec, "spec", losses),
        "MyStepAction" => converter.step_action_spec(spec, "spec", losses),
        _ => converter.pipeline_run_spec(spec, "spec", losses),
    };
    fields.finish(losses);
    let converted = serde_json::json!({
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": metadata,
        "spec": spec,
    });
    typed_yaml(kind, converted, label, losses)
}

/// Converts every document of the inputs (`(source name, YAML text)`
/// pairs). With `allow_lossy` false, any loss is an error listing them
/// all; with it true, the losses come back beside the output.
pub fn convert_yaml(inputs: &[(String, String)], allow_lossy: bool) -> Result<ConvertOutput, ConvertError> {
    let documents = read_documents(inputs)?;
    let converter = Converter;
    let mut yaml = String::new();
    let mut all_losses = Vec::new();
    let mut converted = 0;
    for Document { label, value } in documents {
        let mut losses = Losses {
            document: label.clone(),
            items: Vec::new(),
        };
        let api_version = value.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if !is_tekton(api_version) {
            yaml.push_str("---\n");
            yaml.push_str(&to_yaml(&value)?);
            continue;
        }
        match (our_kind(&kind), api_version) {
            // StepActions were v1alpha1 before they reached v1beta1.
            (Some(ours), "tekton.dev/v1" | "tekton.dev/v1beta1")
            | (Some(ours @ "MyStepAction"), "tekton.dev/v1alpha1") => {
                yaml.push_str("---\n");
                yaml.push_str(&convert_document(&converter, value, ours, &label, &mut losses)?);
                converted += 1;
            }
            _ => losses.push(
                "kind",
                format!("{api_version} {kind} has no equivalent here; the document is dropped"),
            ),
        }
        all_losses.extend(losses.items);
    }
    if !allow_lossy && !all_losses.is_empty() {
        return Err(ConvertError::Lossy(all_losses));
    }
    Ok(ConvertOutput {
        yaml,
        losses: all_losses,
        converted,
    })
}
