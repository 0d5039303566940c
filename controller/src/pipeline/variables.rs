//! The values `$(...)` references in a pipeline task resolve to, and
//! substitution of whole param values (which may change type: a string that
//! is exactly `$(params.list[*])` becomes an array).

use std::collections::BTreeMap;

use crate::api::{ParamType, ParamValue, PipelineTask, WhenExpression, WhenOperator};
use crate::engine::errors::ValidationErrors;
use crate::engine::refs::scan;
use crate::engine::substitute::{Resolver, Value, substitute_list, substitute_str};
use crate::engine::validate::list_or_none;

use super::refs::{TaskVariable, is_artifact_category, parse_task_variable};

/// The results each pipeline task declares; None for a task whose
/// definition a resolver fetches when it runs (any result is taken on
/// trust until then).
pub type DeclaredResults = BTreeMap<String, Option<BTreeMap<String, DeclaredResult>>>;

/// What validation knows of a result before it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredResult {
    pub result_type: ParamType,
    /// An object result's declared `properties`: a whole object passed on
    /// is taken to have them (the run checks the written object).
    pub keys: Vec<String>,
}

/// What is known about task results.
#[derive(Debug, Clone, Copy)]
pub enum KnownResults<'a> {
    /// While validating: the result types each pipeline task declares.
    Declared(&'a DeclaredResults),
    /// While running: the values of tasks that succeeded.
    Produced(&'a BTreeMap<String, BTreeMap<String, ParamValue>>),
}

/// What finally tasks (and only they) know of the tasks before them.
#[derive(Debug, Clone, Default)]
pub struct FinallyStatus {
    /// `$(tasks.X.status)`: Succeeded, Failed or None, per task.
    pub tasks: BTreeMap<String, String>,
    /// `$(tasks.X.reason)`: the child's condition reason, empty when X did
    /// not run; per task.
    pub reasons: BTreeMap<String, String>,
    /// `$(tasks.status)`.
    pub aggregate: String,
}

pub struct PipelineVariables<'a> {
    pub params: &'a BTreeMap<String, ParamValue>,
    pub results: KnownResults<'a>,
    /// Some only for finally tasks.
    pub status: Option<&'a FinallyStatus>,
    pub context: &'a BTreeMap<&'static str, String>,
    /// The matrixed tasks, with how many combinations each ran (while
    /// validating, 0: not known yet), for `$(tasks.X.matrix.length)`.
    pub matrix_sizes: &'a BTreeMap<String, usize>,
    /// The pipeline's workspaces, each with whether the run binds it, for
    /// `$(workspaces.w.bound)`.
    pub workspaces: &'a BTreeMap<String, bool>,
}

/// Applies a selector (`""`, `[*]`, `[N]`, `.KEY`) to a value; `what`
/// names the value in errors.
fn select(value: &ParamValue, selector: &str, what: &str) -> Result<ParamValue, String> {
    match (value, selector) {
        (_, "") | (ParamValue::Array(_) | ParamValue::Object(_), "[*]") => Ok(value.clone()),
        (ParamValue::Array(items), index) if index.starts_with('[') && index.ends_with(']') => {
            let position: usize = index[1..index.len() - 1]
                .parse()
                .map_err(|_| format!("{index} is not an index of array {what}"))?;
            items
                .get(position)
                .cloned()
                .map(ParamValue::String)
                .ok_or_else(|| format!("index {position} is out of range: {what} has {} item(s)", items.len()))
        }
        (ParamValue::Object(object), key) if key.starts_with('.') => {
            object.get(&key[1..]).cloned().map(ParamValue::String).ok_or_else(|| {
                let keys: Vec<&str> = object.keys().map(String::as_str).collect();
                format!(
                    "object {what} has no key {:?} (keys: {})",
                    &key[1..],
                    list_or_none(&keys)
                )
            })
        }
        (other, selector) => Err(format!(
            "{selector:?} does not apply to {what}, which is of type {}",
            other.param_type()
        )),
    }
}

/// A value standing in for a result of a declared type, during validation.
fn placeholder(declared: &DeclaredResult, selector: &str) -> Result<ParamValue, String> {
    match (declared.result_type, selector) {
        (ParamType::String, "") => Ok(ParamValue::String(String::new())),
        (ParamType::Object, "" | "[*]") => Ok(ParamValue::Object(
            declared.keys.iter().map(|key| (key.clone(), String::new())).collect(),
        )),
        (ParamType::Array, "" | "[*]") => Ok(ParamValue::empty(ParamType::Array)),
        (ParamType::Array, index) if index.starts_with('[') => Ok(ParamValue::String(String::new())),
        (ParamType::Object, key) if key.starts_with('.') => Ok(ParamValue::String(String::new())),
        (result_type, selector) => Err(format!("{selector:?} does not apply to a result of type {result_type}")),
    }
}

/// A stand-in for a result of a task not fetched yet: an array for `[*]`,
/// else a string.
fn unknown_placeholder(selector: &str) -> ParamValue {
    match selector {
        "[*]" => ParamValue::empty(ParamType::Array),
        _ => ParamValue::String(String::new()),
    }
}

impl PipelineVariables<'_> {
    /// The whole value an expression stands for.
    pub fn value(&self, expr: &str) -> Result<ParamValue, String> {
        let (namespace, rest) = expr.split_once('.').unwrap_or((expr, ""));
        match namespace {
            "params" => {
                let name_len = rest.find(['.', '[']).unwrap_or(rest.len());
                let (name, selector) = rest.split_at(name_len);
                let value = self.params.get(name).ok_or_else(|| {
                    let known: Vec<&str> = self.params.keys().map(String::as_str).collect();
                    format!(
                        "the pipeline declares no param {name:?} (declared: {})",
                        list_or_none(&known)
                    )
                })?;
                select(value, selector, &format!("param {name:?}"))
            }
            "tasks" => self.task_value(parse_task_variable(rest)?),
            "context" => match self.context.get(rest) {
                Some(value) => Ok(ParamValue::String(value.clone())),
                // The child run's own context (`task.retry-count`,
                // `taskRun.name`): left for it to resolve, as in Tekton.
                None if rest.starts_with("task.") || rest.starts_with("taskRun.") => {
                    Ok(ParamValue::String(format!("$(context.{rest})")))
                }
                None => {
                    let known: Vec<&str> = self.context.keys().copied().collect();
                    Err(format!("unknown context variable (known: {})", known.join(", ")))
                }
            },
            "workspaces" => self.workspace_value(rest),
            _ => Err(format!(
                "$({namespace}...) is not available in a pipeline task; use params, tasks, workspaces or context"
            )),
        }
    }

    /// `$(workspaces.w.bound)`: whether the run binds pipeline workspace
    /// `w`. `$(workspaces.w.path)` is left as written for the task, whose
    /// own workspace `w` it then names (as in Tekton; the pipeline need
    /// not declare `w`, the task must).
    fn workspace_value(&self, rest: &str) -> Result<ParamValue, String> {
        let (name, field) = rest.rsplit_once('.').unwrap_or((rest, ""));
        if field == "path" {
            return Ok(ParamValue::String(format!("$(workspaces.{name}.path)")));
        }
        let bound = self.workspaces.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.workspaces.keys().map(String::as_str).collect();
            format!(
                "the pipeline declares no workspace {name:?} (declared: {})",
                list_or_none(&known)
            )
        })?;
        match field {
            "bound" => Ok(ParamValue::String(bound.to_string())),
            other => Err(format!("a pipeline knows a workspace's bound and path, not {other:?}")),
        }
    }

    fn task_value(&self, variable: TaskVariable<'_>) -> Result<ParamValue, String> {
        match variable {
            TaskVariable::AggregateStatus => self
                .status
                .map(|s| ParamValue::String(s.aggregate.clone()))
                .ok_or_else(|| "$(tasks.status) is only available to finally tasks".to_string()),
            TaskVariable::Status { task } => {
                let status = self
                    .status
                    .ok_or_else(|| format!("$(tasks.{task}.status) is only available to finally tasks"))?;
                status.tasks.get(task).cloned().map(ParamValue::String).ok_or_else(|| {
                    format!("no pipeline task named {task:?} (finally tasks can read the status of tasks only)")
                })
            }
            TaskVariable::Reason { task } => {
                let status = self
                    .status
                    .ok_or_else(|| format!("$(tasks.{task}.reason) is only available to finally tasks"))?;
                status
                    .reasons
                    .get(task)
                    .cloned()
                    .map(ParamValue::String)
                    .ok_or_else(|| {
                        format!("no pipeline task named {task:?} (finally tasks can read the reason of tasks only)")
                    })
            }
            TaskVariable::MatrixLength { task, result } => self.matrix_length(task, result),
            TaskVariable::Result { task, result, selector } => match self.results {
                KnownResults::Declared(declared) => {
                    let Some(results) = declared
                        .get(task)
                        .ok_or_else(|| format!("no pipeline task named {task:?}"))?
                    else {
                        return Ok(unknown_placeholder(selector));
                    };
                    // A task does not declare its artifacts: known when it ran.
                    if is_artifact_category(result) {
                        return Ok(ParamValue::String(String::new()));
                    }
                    let declared = results.get(result).ok_or_else(|| {
                        let known: Vec<&str> = results.keys().map(String::as_str).collect();
                        format!(
                            "task {task:?} declares no result {result:?} (declared: {})",
                            list_or_none(&known)
                        )
                    })?;
                    placeholder(declared, selector)
                }
                KnownResults::Produced(produced) => {
                    let results = produced
                        .get(task)
                        .ok_or_else(|| format!("task {task:?} has no results: it did not succeed"))?;
                    let value = results.get(result).ok_or_else(|| match result.split_once('.') {
                        Some((kind, category)) if is_artifact_category(result) => {
                            format!("task {task:?} succeeded but wrote no {kind} artifacts of category {category:?}")
                        }
                        _ => format!("task {task:?} succeeded but did not produce result {result:?}"),
                    })?;
                    select(value, selector, &format!("result {result:?} of task {task:?}"))
                }
            },
        }
    }
}

impl PipelineVariables<'_> {
    /// `$(tasks.X.matrix.length)` and `$(tasks.X.matrix.R.length)`, as strings.
    fn matrix_length(&self, task: &str, result: Option<&str>) -> Result<ParamValue, String> {
        let size = *self
            .matrix_sizes
            .get(task)
            .ok_or_else(|| format!("task {task:?} has no matrix (or did not run)"))?;
        let Some(result) = result else {
            return Ok(ParamValue::String(size.to_string()));
        };
        match self.task_value(TaskVariable::Result {
            task,
            result,
            selector: "",
        })? {
            ParamValue::Array(items) => Ok(ParamValue::String(items.len().to_string())),
            other => Err(format!(
                "result {result:?} of matrixed task {task:?} is of type {}; only string results are aggregated",
                other.param_type()
            )),
        }
    }
}

impl Resolver for PipelineVariables<'_> {
    fn lookup(&self, expr: &str) -> Result<Value, String> {
        match self.value(expr)? {
            ParamValue::String(text) => Ok(Value::Str(text)),
            ParamValue::Array(items) => Ok(Value::Array(items)),
            ParamValue::Object(_) => Err(format!(
                "$({expr}) is an object: use it as a whole param value, or select a key"
            )),
        }
    }
}

/// Substitutes a param value. A string that is exactly one reference takes
/// the referenced value whole, with its type; arrays expand `[*]` items.
pub fn substitute_value(
    value: &ParamValue,
    vars: &PipelineVariables<'_>,
    field: &str,
    errors: &mut ValidationErrors,
) -> ParamValue {
    match value {
        ParamValue::String(text) => {
            if let [only] = scan(text).as_slice()
                && only.start == 0
                && only.end == text.len()
            {
                return match vars.value(only.expr) {
                    Ok(whole) => whole,
                    Err(why) => {
                        errors.push(field, format!("$({}): {why}", only.expr));
                        value.clone()
                    }
                };
            }
            ParamValue::String(substitute_str(text, vars, field, errors))
        }
        ParamValue::Array(items) => ParamValue::Array(substitute_list(items, vars, field, errors)),
        ParamValue::Object(map) => ParamValue::Object(
            map.iter()
                .map(|(key, text)| {
                    (
                        key.clone(),
                        substitute_str(text, vars, &format!("{field}.{key}"), errors),
                    )
                })
                .collect(),
        ),
    }
}

/// True when every expression holds. Inputs, values and CEL expressions
/// are substituted first; a CEL expression that cannot be evaluated is an
/// error naming it (and does not hold).
pub fn when_holds(
    expressions: &[WhenExpression],
    vars: &PipelineVariables<'_>,
    field: &str,
    errors: &mut ValidationErrors,
) -> bool {
    let mut holds = true;
    for (index, expression) in expressions.iter().enumerate() {
        let at = format!("{field}[{index}]");
        if let Some(written) = &expression.cel {
            let cel = substitute_str(written, vars, &format!("{at}.cel"), errors);
            // While validating, results stand in as empty strings: an
            // expression reading them is judged when its task is due.
            let judged = !(matches!(vars.results, KnownResults::Declared(_)) && written.contains("$(tasks."));
            holds &= super::cel::evaluate(&cel).unwrap_or_else(|why| {
                if judged {
                    errors.push(format!("{at}.cel"), format!("{cel:?}: {why}"));
                }
                false
            });
            continue;
        }
        let input = substitute_str(&expression.input, vars, &format!("{at}.input"), errors);
        let values = substitute_list(&expression.values, vars, &format!("{at}.values"), errors);
        let found = values.contains(&input);
        holds &= match expression.operator {
            Some(WhenOperator::In) => found,
            Some(WhenOperator::NotIn) => !found,
            // Refused by validation before any run.
            None => false,
        };
    }
    holds
}

/// The run's context plus what is particular to one pipeline task
/// (`$(context.pipelineTask.retries)`).
pub fn task_context(context: &BTreeMap<&'static str, String>, task: &PipelineTask) -> BTreeMap<&'static str, String> {
    let mut context = context.clone();
    context.insert("pipelineTask.retries", task.retries.unwrap_or(0).to_string());
    context
}

/// `$(context...)` variables of a pipeline run.
pub fn context_variables(
    run_name: &str,
    namespace: &str,
    uid: &str,
    pipeline_name: &str,
) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("pipelineRun.name", run_name.to_string()),
        ("pipelineRun.namespace", namespace.to_string()),
        ("pipelineRun.uid", uid.to_string()),
        ("pipeline.name", pipeline_name.to_string()),
    ])
}
