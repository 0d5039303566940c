//! Reading MyTask and MyTaskRun documents from YAML text, for the `render`
//! command and the tests. Errors name the source and document.

use crate::api::{MyPipeline, MyPipelineRun, MyTask, MyTaskRun};

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{source_name}: not valid YAML: {message}")]
    Yaml { source_name: String, message: String },
    #[error("{source_name}: document {index} ({kind} {name:?}): {message}")]
    Decode {
        source_name: String,
        index: usize,
        kind: String,
        name: String,
        message: String,
    },
    #[error(
        "{source_name}: document {index}: kind {kind:?} is not one of MyTask, MyTaskRun, MyPipeline, MyPipelineRun"
    )]
    UnknownKind {
        source_name: String,
        index: usize,
        kind: String,
    },
}

/// The objects found in some YAML.
#[derive(Debug, Default, Clone)]
pub struct Manifests {
    pub tasks: Vec<MyTask>,
    pub task_runs: Vec<MyTaskRun>,
    pub pipelines: Vec<MyPipeline>,
    pub pipeline_runs: Vec<MyPipelineRun>,
}

fn decode<T: serde::de::DeserializeOwned>(
    document: serde_json::Value,
    source_name: &str,
    index: usize,
    kind: &str,
) -> Result<T, ManifestError> {
    let name = document
        .pointer("/metadata/name")
        .and_then(|n| n.as_str())
        .unwrap_or_default()
        .to_string();
    serde_json::from_value(document).map_err(|error| ManifestError::Decode {
        source_name: source_name.to_string(),
        index,
        kind: kind.to_string(),
        name,
        message: error.to_string(),
    })
}

impl Manifests {
    /// Adds every document of a (multi-document) YAML text.
    pub fn add_yaml(&mut self, source_name: &str, text: &str) -> Result<(), ManifestError> {
        let documents: Vec<serde_json::Value> =
            serde_saphyr::from_multiple(text).map_err(|error| ManifestError::Yaml {
                source_name: source_name.to_string(),
                message: error.to_string(),
            })?;
        for (index, document) in documents.into_iter().enumerate() {
            if document.is_null() {
                continue;
            }
            let kind = document
                .get("kind")
                .and_then(|k| k.as_str())
                .unwrap_or_default()
                .to_string();
            match kind.as_str() {
                "MyTask" => self.tasks.push(decode(document, source_name, index, &kind)?),
                "MyTaskRun" => self.task_runs.push(decode(document, source_name, index, &kind)?),
                "MyPipeline" => self.pipelines.push(decode(document, source_name, index, &kind)?),
                "MyPipelineRun" => self.pipeline_runs.push(decode(document, source_name, index, &kind)?),
                _ => {
                    return Err(ManifestError::UnknownKind {
                        source_name: source_name.to_string(),
                        index,
                        kind,
                    });
                }
            }
        }
        Ok(())
    }

    pub fn task(&self, name: &str) -> Option<&MyTask> {
        self.tasks.iter().find(|t| t.metadata.name.as_deref() == Some(name))
    }
}
