//! `$(tasks...)` references: which task (and result) a text points at.

use crate::api::{ParamValue, PipelineTask, WhenExpression};
use crate::engine::refs::scan;

/// What a `$(tasks...)` expression names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskVariable<'a> {
    /// `$(tasks.status)`: the outcome of all non-finally tasks.
    AggregateStatus,
    /// `$(tasks.X.status)`.
    Status { task: &'a str },
    /// `$(tasks.X.reason)`: the reason of the child's condition (empty
    /// when X did not run).
    Reason { task: &'a str },
    /// `$(tasks.X.results.Y)`, with an optional selector: `[*]`, `[N]` or
    /// `.KEY`; also `$(tasks.X.outputs.C)` and `$(tasks.X.inputs.C)`, the
    /// values of X's artifacts of category C (see [`is_artifact_category`]).
    Result {
        task: &'a str,
        result: &'a str,
        selector: &'a str,
    },
    /// `$(tasks.X.matrix.length)` (`result` None): how many combinations
    /// matrixed task X ran; `$(tasks.X.matrix.R.length)`: how many values
    /// its result R aggregates.
    MatrixLength { task: &'a str, result: Option<&'a str> },
}

impl TaskVariable<'_> {
    pub fn task(&self) -> Option<&str> {
        match self {
            TaskVariable::AggregateStatus => None,
            TaskVariable::Status { task }
            | TaskVariable::Reason { task }
            | TaskVariable::Result { task, .. }
            | TaskVariable::MatrixLength { task, .. } => Some(task),
        }
    }
}

/// Parses the part of an expression after `tasks.`; the error explains the
/// accepted forms.
pub fn parse_task_variable(rest: &str) -> Result<TaskVariable<'_>, String> {
    if rest == "status" {
        return Ok(TaskVariable::AggregateStatus);
    }
    let bad = || {
        "use $(tasks.TASK.results.RESULT), $(tasks.TASK.status), $(tasks.TASK.reason), \
         $(tasks.TASK.matrix.length), $(tasks.TASK.matrix.RESULT.length), \
         $(tasks.TASK.outputs.CATEGORY), $(tasks.TASK.inputs.CATEGORY) or $(tasks.status)"
            .to_string()
    };
    let (task, field) = rest.split_once('.').ok_or_else(bad)?;
    match field {
        "status" => return Ok(TaskVariable::Status { task }),
        "reason" => return Ok(TaskVariable::Reason { task }),
        _ if is_artifact_category(field) => {
            return Ok(TaskVariable::Result {
                task,
                result: field,
                selector: "",
            });
        }
        _ => {}
    }
    if let Some(matrix) = field.strip_prefix("matrix.") {
        return match matrix.strip_suffix(".length") {
            _ if matrix == "length" => Ok(TaskVariable::MatrixLength { task, result: None }),
            Some(result) if !result.is_empty() && !result.contains(['.', '[']) => Ok(TaskVariable::MatrixLength {
                task,
                result: Some(result),
            }),
            _ => Err(bad()),
        };
    }
    let result_and_selector = field.strip_prefix("results.").ok_or_else(bad)?;
    let name_len = result_and_selector
        .find(['.', '['])
        .unwrap_or(result_and_selector.len());
    let (result, selector) = result_and_selector.split_at(name_len);
    if result.is_empty() {
        return Err(bad());
    }
    Ok(TaskVariable::Result { task, result, selector })
}

/// Whether a result name stands for a task's artifacts of one category,
/// `outputs.C` or `inputs.C`: the child's status gives them under these
/// names, which no result declared by a task can have (no dots).
pub fn is_artifact_category(result: &str) -> bool {
    let category = result
        .strip_prefix("outputs.")
        .or_else(|| result.strip_prefix("inputs."));
    category.is_some_and(|c| !c.is_empty() && !c.contains(['.', '[', ']']))
}

/// Every `$(tasks...)` reference in a text, with its parse result.
pub fn task_variables(text: &str) -> Vec<(String, Result<TaskVariable<'_>, String>)> {
    scan(text)
        .into_iter()
        .filter_map(|found| {
            let rest = found.expr.strip_prefix("tasks.")?;
            Some((found.expr.to_string(), parse_task_variable(rest)))
        })
        .collect()
}

/// The strings of a param value, each with its field suffix.
pub fn value_texts(value: &ParamValue) -> Vec<(String, &str)> {
    match value {
        ParamValue::String(text) => vec![(String::new(), text.as_str())],
        ParamValue::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, text)| (format!("[{i}]"), text.as_str()))
            .collect(),
        ParamValue::Object(map) => map
            .iter()
            .map(|(key, text)| (format!(".{key}"), text.as_str()))
            .collect(),
    }
}

/// Every text of a pipeline task that may hold references, with the field
/// it sits in relative to the task (`params[0].value`, `when[1].input`).
pub fn task_texts(task: &PipelineTask) -> Vec<(String, &str)> {
    let mut texts = Vec::new();
    for (index, param) in task.params.iter().enumerate() {
        for (suffix, text) in value_texts(&param.value) {
            texts.push((format!("params[{index}].value{suffix}"), text));
        }
    }
    texts.extend(super::matrix::matrix_texts(task));
    texts.extend(when_texts("when", &task.when));
    texts
}

/// The texts of the when expressions at `field` (`when`,
/// `matrix.include[0].when`), each with its field.
pub fn when_texts<'a>(field: &str, whens: &'a [WhenExpression]) -> Vec<(String, &'a str)> {
    let mut texts = Vec::new();
    for (index, when) in whens.iter().enumerate() {
        texts.push((format!("{field}[{index}].input"), when.input.as_str()));
        if let Some(cel) = &when.cel {
            texts.push((format!("{field}[{index}].cel"), cel.as_str()));
        }
        for (value_index, value) in when.values.iter().enumerate() {
            texts.push((format!("{field}[{index}].values[{value_index}]"), value.as_str()));
        }
    }
    texts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(parse_task_variable("status"), Ok(TaskVariable::AggregateStatus));
        assert_eq!(parse_task_variable("a.status"), Ok(TaskVariable::Status { task: "a" }));
        assert_eq!(parse_task_variable("a.reason"), Ok(TaskVariable::Reason { task: "a" }));
        assert_eq!(
            parse_task_variable("a.results.R[*]"),
            Ok(TaskVariable::Result {
                task: "a",
                result: "R",
                selector: "[*]"
            })
        );
        assert_eq!(
            parse_task_variable("a.results.R.key"),
            Ok(TaskVariable::Result {
                task: "a",
                result: "R",
                selector: ".key"
            })
        );
        assert_eq!(
            parse_task_variable("a.matrix.length"),
            Ok(TaskVariable::MatrixLength {
                task: "a",
                result: None
            })
        );
        assert_eq!(
            parse_task_variable("a.matrix.R.length"),
            Ok(TaskVariable::MatrixLength {
                task: "a",
                result: Some("R")
            })
        );
        assert!(parse_task_variable("a.matrix.R").is_err());
        assert!(parse_task_variable("a.matrix.R[0].length").is_err());
        assert_eq!(
            parse_task_variable("a.outputs.image"),
            Ok(TaskVariable::Result {
                task: "a",
                result: "outputs.image",
                selector: ""
            }),
            "an artifact category, under the name the child's status gives it"
        );
        assert!(parse_task_variable("a.inputs.src").is_ok());
        assert!(parse_task_variable("a.outputs.R[0]").is_err());
        assert!(parse_task_variable("a.outputs.").is_err());
        assert!(parse_task_variable("a.output.R").is_err());
        assert!(parse_task_variable("a").is_err());
    }

    #[test]
    fn finds_task_references_in_text_only() {
        let found = task_variables("x=$(tasks.a.results.R) y=$(params.p) z=$(tasks.b.status)");
        let exprs: Vec<&str> = found.iter().map(|(e, _)| e.as_str()).collect();
        assert_eq!(exprs, vec!["tasks.a.results.R", "tasks.b.status"]);
    }
}
