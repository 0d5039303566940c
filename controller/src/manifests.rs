//! Reading our documents from YAML text, for the `render` command and the
//! tests, with the controller's strict decoder (`api::strict`) and the
//! checks the API server makes (apiVersion, kind, `metadata.name` syntax).
//! Every document is read and every problem reported, each naming the
//! source, the document's index and first line, and the field.

use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::strict::{self, StrictError};
use crate::api::{API_VERSION, MyPipeline, MyPipelineRun, MyStepAction, MyTask, MyTaskRun};
use crate::engine::step_action::StepActions;

/// The kinds a document may have.
pub const KINDS: [&str; 5] = ["MyTask", "MyTaskRun", "MyPipeline", "MyPipelineRun", "MyStepAction"];

/// Longest `metadata.name` the API server accepts (a DNS subdomain).
pub const MAX_NAME_LENGTH: usize = 253;

/// One problem with one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    /// The file (or other source) the document came from.
    pub source_name: String,
    /// 0-based position of the document in its source.
    pub index: usize,
    /// 1-based line of the source where the document starts.
    pub line: usize,
    /// `MyTask "t1"`, or empty when the kind is not known yet.
    pub object: String,
    /// What is wrong, with the field path.
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: document {} (line {})", self.source_name, self.index, self.line)?;
        if !self.object.is_empty() {
            write!(f, " ({})", self.object)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem of every document read, one per line.
#[derive(Debug, Clone, PartialEq, Eq, Default, thiserror::Error)]
pub struct ManifestErrors(pub Vec<ManifestError>);

impl fmt::Display for ManifestErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

/// The objects found in some YAML.
#[derive(Debug, Default, Clone)]
pub struct Manifests {
    pub tasks: Vec<MyTask>,
    pub task_runs: Vec<MyTaskRun>,
    pub pipelines: Vec<MyPipeline>,
    pub pipeline_runs: Vec<MyPipelineRun>,
    pub step_actions: Vec<MyStepAction>,
    /// (kind, name) of each document refused, so a run that refers to one
    /// is not also told it does not exist.
    pub rejected: Vec<(String, String)>,
}

/// One document of a YAML stream: its text and first line.
struct Document<'a> {
    text: &'a str,
    line: usize,
}

/// True for a line that starts a new YAML document (`---`, possibly
/// followed by content).
fn is_document_start(line: &str) -> bool {
    line == "---" || line.starts_with("--- ") || line.starts_with("---\t") || line == "---\r"
}

/// Splits a YAML stream at its `---` lines, keeping each part's first line
/// number, so each document is parsed (and fails) on its own. A `---` at
/// the start of a line can only be a document marker: block scalars are
/// indented.
fn split_documents(text: &str) -> Vec<Document<'_>> {
    let mut documents = Vec::new();
    let mut start = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (number, line) in text.split_inclusive('\n').enumerate() {
        if is_document_start(line.trim_end_matches('\n')) && offset > start {
            documents.push(Document {
                text: &text[start..offset],
                line: start_line,
            });
            start = offset;
            start_line = number + 1;
        }
        offset += line.len();
    }
    documents.push(Document {
        text: &text[start..],
        line: start_line,
    });
    documents
}

/// Like the API server on create, a document with `generateName` and no
/// name gets one: the prefix plus five characters, shown as `xxxxx` here
/// (the server picks random ones), so `render` accepts what `kubectl
/// create` accepts.
fn name_from_generate_name(document: &mut Value) {
    let has_name = text_of(document, "/metadata/name").is_some_and(|name| !name.is_empty());
    let prefix = text_of(document, "/metadata/generateName").map(str::to_string);
    if let (false, Some(prefix), Some(metadata)) = (has_name, prefix, document.get_mut("metadata"))
        && let Some(metadata) = metadata.as_object_mut()
    {
        metadata.insert("name".to_string(), Value::String(format!("{prefix}xxxxx")));
    }
}

/// The `metadata.name` rules of the API server (a DNS-1123 subdomain), or
/// what is wrong.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("metadata.name: required field is missing".to_string());
    }
    if name.len() > MAX_NAME_LENGTH {
        return Err(format!(
            "metadata.name: {} characters, at most {MAX_NAME_LENGTH} are allowed",
            name.len()
        ));
    }
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !name.chars().all(allowed) || !edge(name.chars().next()) || !edge(name.chars().last()) {
        return Err(format!(
            "metadata.name: {name:?} is not a valid name: lower-case letters, digits, '-' and '.', \
             starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// A name as shown in messages: long ones cut, so a huge name cannot make
/// a huge message.
fn short(name: &str) -> String {
    const SHOWN: usize = 64;
    match name.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}...", &name[..cut]),
        None => name.to_string(),
    }
}

fn text_of<'v>(document: &'v Value, pointer: &str) -> Option<&'v str> {
    document.pointer(pointer).and_then(Value::as_str)
}

fn strict_decode<K: DeserializeOwned + schemars::JsonSchema + 'static>(document: Value) -> Result<K, StrictError> {
    strict::decode_value(document)
}

impl Manifests {
    /// Adds every document of a (multi-document) YAML text. Documents that
    /// are fine are added even when others are not; the error lists every
    /// problem of every document.
    pub fn add_yaml(&mut self, source_name: &str, text: &str) -> Result<(), ManifestErrors> {
        let mut errors = ManifestErrors::default();
        for (index, document) in split_documents(text).into_iter().enumerate() {
            let error = |object: String, message: String| ManifestError {
                source_name: source_name.to_string(),
                index,
                line: document.line,
                object,
                message,
            };
            let value: Value = match serde_saphyr::from_str(document.text) {
                Ok(value) => value,
                Err(problem) => {
                    errors
                        .0
                        .push(error(String::new(), yaml_problem(&problem, document.line)));
                    continue;
                }
            };
            if value.is_null() {
                continue;
            }
            if let Err(problems) = self.add_document(value) {
                let (object, messages) = problems;
                errors
                    .0
                    .extend(messages.into_iter().map(|message| error(object.clone(), message)));
            }
        }
        if errors.0.is_empty() { Ok(()) } else { Err(errors) }
    }

    /// Checks and adds one document; on error, the object it claims to be
    /// and every problem.
    fn add_document(&mut self, mut document: Value) -> Result<(), (String, Vec<String>)> {
        let kind = text_of(&document, "/kind").unwrap_or_default().to_string();
        name_from_generate_name(&mut document);
        let name = text_of(&document, "/metadata/name").unwrap_or_default().to_string();
        let object = if kind.is_empty() {
            String::new()
        } else {
            format!("{kind} {:?}", short(&name))
        };
        let mut problems = Vec::new();
        if !document.is_object() {
            return Err((
                object,
                vec!["a document must be a mapping with apiVersion, kind, metadata and spec".into()],
            ));
        }
        match text_of(&document, "/apiVersion") {
            Some(API_VERSION) => {}
            Some(other) => problems.push(format!("apiVersion: {other:?} is not {API_VERSION:?}")),
            None => problems.push(format!("apiVersion: required field is missing (use {API_VERSION:?})")),
        }
        if !KINDS.contains(&kind.as_str()) {
            problems.push(format!("kind: {kind:?} is not one of {}", KINDS.join(", ")));
            return Err((object, problems));
        }
        if let Err(problem) = check_name(&name) {
            problems.push(problem);
        }
        let decoded = match kind.as_str() {
            "MyTask" => strict_decode(document).map(|task| self.tasks.push(task)),
            "MyTaskRun" => strict_decode(document).map(|run| self.task_runs.push(run)),
            "MyPipeline" => strict_decode(document).map(|pipeline| self.pipelines.push(pipeline)),
            "MyStepAction" => strict_decode(document).map(|action| self.step_actions.push(action)),
            _ => strict_decode(document).map(|run| self.pipeline_runs.push(run)),
        };
        if let Err(StrictError(found)) = decoded {
            problems.extend(found.iter().map(ToString::to_string));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            self.rejected.push((kind, name));
            Err((object, problems))
        }
    }

    /// True if a document of this kind and name was refused.
    pub fn was_rejected(&self, kind: &str, name: &str) -> bool {
        self.rejected.iter().any(|(k, n)| k == kind && n == name)
    }

    /// The step actions of these manifests, as a run's namespace would
    /// give them to the runs (see `engine::step_action`).
    pub fn step_actions(&self) -> StepActions {
        self.step_actions
            .iter()
            .map(|action| {
                (
                    action.metadata.name.clone().unwrap_or_default(),
                    Ok(action.spec.clone()),
                )
            })
            .collect()
    }

    pub fn task(&self, name: &str) -> Option<&MyTask> {
        self.tasks.iter().find(|t| t.metadata.name.as_deref() == Some(name))
    }

    pub fn pipeline(&self, name: &str) -> Option<&MyPipeline> {
        self.pipelines.iter().find(|p| p.metadata.name.as_deref() == Some(name))
    }
}

/// A YAML syntax error, its line counted from the start of the source.
fn yaml_problem(problem: &serde_saphyr::Error, first_line: usize) -> String {
    // The plain message: no source snippet, no line relative to the document.
    let text = problem.without_snippet().to_string();
    let first = text.lines().next().unwrap_or_default();
    let message = first.strip_prefix("error: ").unwrap_or(first);
    let message = match message.split_once(": ") {
        Some((place, rest)) if place.starts_with("line ") && place.contains(" column ") => rest,
        _ => message,
    };
    match problem.location() {
        Some(location) => format!(
            "not valid YAML at line {}, column {}: {message}",
            (first_line + location.line() as usize).saturating_sub(1),
            location.column()
        ),
        None => format!("not valid YAML: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_split_with_their_lines() {
        let parts = split_documents("a: 1\n---\nb: 2\n--- \nc: 3\n");
        let lines: Vec<usize> = parts.iter().map(|d| d.line).collect();
        assert_eq!(lines, [1, 2, 4]);
        assert_eq!(parts[1].text, "---\nb: 2\n");
    }

    #[test]
    fn names_follow_the_api_servers_rules() {
        assert!(check_name("tr-1.a").is_ok());
        assert!(check_name("Tr1").is_err());
        assert!(check_name("-a").is_err());
        assert!(check_name(&"a".repeat(254)).is_err());
        assert!(check_name("").is_err());
    }

    #[test]
    fn every_document_is_reported_at_once() {
        let yaml = "apiVersion: v9\nkind: MyTask\nmetadata: {name: t}\nspec: {steps: []}\n---\n\
                    apiVersion: cicdoperator.ning1875.io/v1\nkind: MyTaskRun\nmetadata: {name: Bad}\n\
                    spec: {taskRef: t, timout: 1s}\n";
        let errors = Manifests::default()
            .add_yaml("f.yaml", yaml)
            .expect_err("two bad documents");
        let text = errors.to_string();
        assert_eq!(errors.0.len(), 3, "{text}");
        assert!(
            text.contains("f.yaml: document 0 (line 1) (MyTask \"t\"): apiVersion"),
            "{text}"
        );
        assert!(
            text.contains("document 1 (line 5) (MyTaskRun \"Bad\"): metadata.name"),
            "{text}"
        );
        assert!(
            text.contains("spec.timout: unknown field, did you mean timeout?"),
            "{text}"
        );
    }
}
