//! Checks a pipeline and the run's inputs before any task starts: task
//! names and sources, the DAG, references, param types, workspaces,
//! timeouts. Every problem names its field.

use std::collections::{BTreeMap, BTreeSet};

use crate::api::{
    Param, ParamValue, PipelineSpec, PipelineTask, PipelineTaskRunSpec, PipelineTimeouts, TaskSpec, WhenExpression,
    WorkspaceBinding,
};
use crate::engine::duration::parse_duration;
use crate::engine::errors::ValidationErrors;
use crate::engine::validate::{
    RunVolumes, is_dns_label, list_or_none, resolve_params, validate_binding, validate_task,
};

use super::dag::{Dag, build_dag};
use super::propagate::{referenced_params, with_propagated_params};
use super::variables::{
    DeclaredResult, DeclaredResults, FinallyStatus, KnownResults, PipelineVariables, substitute_value, task_context,
    when_holds,
};
use crate::engine::propagate::with_propagated;

/// Longest pipeline task name: it becomes a label value.
pub const MAX_TASK_NAME_LEN: usize = 63;

/// What validation needs besides the pipeline.
pub struct PipelineInputs<'a> {
    pub spec: &'a PipelineSpec,
    /// Prefix of every pipeline error: `spec.pipelineSpec` or `MyPipeline "p": spec`.
    pub field: &'a str,
    /// The task of every pipeline task (regular and finally), by pipeline task name.
    pub task_specs: &'a BTreeMap<String, TaskSpec>,
    pub run_params: &'a [Param],
    pub run_workspaces: &'a [WorkspaceBinding],
    pub timeouts: Option<&'a PipelineTimeouts>,
    /// The run's per-task settings, each of which must name a task.
    pub task_run_specs: &'a [PipelineTaskRunSpec],
    pub context: &'a BTreeMap<&'static str, String>,
    /// Most tasks (regular and finally) the pipeline may have.
    pub max_tasks: usize,
    /// Most combinations one matrixed task may have.
    pub max_matrix_combinations: usize,
}

impl PipelineInputs<'_> {
    /// True when the pipeline is the run's own `spec.pipelineSpec` (not a
    /// MyPipeline it names): only then do undeclared run params reach it.
    pub fn is_embedded(&self) -> bool {
        self.field.starts_with("spec.pipelineSpec")
    }
}

/// A pipeline that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidPipeline {
    pub dag: Dag,
    /// The pipeline's params: the run's values, else the defaults.
    pub params: BTreeMap<String, ParamValue>,
    /// The pipeline's workspaces, each with whether the run binds it.
    pub workspaces: BTreeMap<String, bool>,
}

/// Each workspace the pipeline declares, with whether the run binds it.
fn bound_workspaces(inputs: &PipelineInputs<'_>) -> BTreeMap<String, bool> {
    let bound = |name: &str| inputs.run_workspaces.iter().any(|b| b.name == name);
    inputs
        .spec
        .workspaces
        .iter()
        .map(|w| (w.name.clone(), bound(&w.name)))
        .collect()
}

fn check_task(task: &PipelineTask, at: &str, seen: &mut BTreeSet<String>, errors: &mut ValidationErrors) {
    if !is_dns_label(&task.name, MAX_TASK_NAME_LEN) {
        errors.push(
            format!("{at}.name"),
            format!(
                "pipeline task name {:?} is invalid: use at most {MAX_TASK_NAME_LEN} lowercase letters, digits and '-', starting and ending with a letter or digit",
                task.name
            ),
        );
    }
    if !seen.insert(task.name.clone()) {
        errors.push(
            format!("{at}.name"),
            format!("duplicate pipeline task name {:?}", task.name),
        );
    }
    match (&task.task_ref, &task.task_spec, &task.remote_task) {
        (None, None, None) => errors.push(
            format!("{at}.taskRef"),
            "set taskRef (the name of a MyTask), an inline taskSpec or a remoteTask",
        ),
        (Some(name), None, None) if name.is_empty() => errors.push(format!("{at}.taskRef"), "taskRef is empty"),
        (None, Some(spec), None) => validate_task(spec, &format!("{at}.taskSpec"), RunVolumes::Unknown, errors),
        (Some(_), None, None) | (None, None, Some(_)) => {}
        _ => errors.push(
            format!("{at}.taskRef"),
            "set one of taskRef, taskSpec and remoteTask, not several",
        ),
    }
    if let Some(timeout) = &task.timeout
        && let Err(why) = parse_duration(timeout)
    {
        errors.push(format!("{at}.timeout"), why);
    }
    for (index, when) in task.when.iter().enumerate() {
        check_when_form(when, &format!("{at}.when[{index}]"), errors);
    }
    let includes = task.matrix.iter().flat_map(|matrix| matrix.include.iter().enumerate());
    for (entry, include) in includes {
        for (index, when) in include.when.iter().enumerate() {
            check_when_form(when, &format!("{at}.matrix.include[{entry}].when[{index}]"), errors);
        }
    }
}

/// A when expression is `input` + `operator` + `values`, or `cel` alone.
fn check_when_form(when: &WhenExpression, at: &str, errors: &mut ValidationErrors) {
    let listed = !when.input.is_empty() || when.operator.is_some() || !when.values.is_empty();
    match (&when.cel, listed) {
        (Some(_), true) => errors.push(
            format!("{at}.cel"),
            "a when expression is either `cel` or `input`/`operator`/`values`, not both",
        ),
        (Some(cel), false) if cel.trim().is_empty() => errors.push(format!("{at}.cel"), "the expression is empty"),
        (Some(_), false) => {}
        (None, _) if when.operator.is_none() => errors.push(
            format!("{at}.operator"),
            "a when expression needs an operator (in, notin), or a `cel` expression",
        ),
        (None, _) if when.values.is_empty() => {
            errors.push(format!("{at}.values"), "a when expression needs at least one value")
        }
        (None, _) => {}
    }
}

/// The result types each pipeline task's task declares, as its consumers
/// see them (a matrixed task's string results are arrays); None for a
/// remote task not fetched yet.
fn declared_results(spec: &PipelineSpec, task_specs: &BTreeMap<String, TaskSpec>) -> DeclaredResults {
    let matrixed = matrixed_tasks(spec);
    let mut results: DeclaredResults = task_specs
        .iter()
        .map(|(name, task_spec)| {
            let declared = task_spec
                .results
                .iter()
                .map(|r| {
                    let keys = r.properties.iter().flat_map(|p| p.keys().cloned()).collect();
                    let declared = DeclaredResult {
                        result_type: r.result_type,
                        keys,
                    };
                    (r.name.clone(), declared)
                })
                .collect();
            if matrixed.contains_key(name) {
                (name.clone(), Some(super::matrix::aggregated_types(&declared)))
            } else {
                (name.clone(), Some(declared))
            }
        })
        .collect();
    for task in spec.all_tasks().filter(|t| t.remote_task.is_some()) {
        results.entry(task.name.clone()).or_insert(None);
    }
    results
}

/// The matrixed tasks, each with an unknown (0) combination count.
fn matrixed_tasks(spec: &PipelineSpec) -> BTreeMap<String, usize> {
    spec.all_tasks()
        .filter(|t| t.matrix.is_some())
        .map(|t| (t.name.clone(), 0))
        .collect()
}

/// Checks the params a pipeline task gives its task: references resolve
/// (results stand in by declared type), and names and types match what
/// the task declares.
fn check_task_params(
    task: &PipelineTask,
    (at, max_combinations): (&str, usize),
    task_spec: &TaskSpec,
    vars: &PipelineVariables<'_>,
    errors: &mut ValidationErrors,
) {
    let context = task_context(vars.context, task);
    let vars = &PipelineVariables {
        context: &context,
        ..*vars
    };
    let given: Vec<Param> = task
        .params
        .iter()
        .enumerate()
        .map(|(index, param)| Param {
            name: param.name.clone(),
            value: substitute_value(&param.value, vars, &format!("{at}.params[{index}].value"), errors),
        })
        .collect();
    let mut substituted = with_propagated_params(task, given, vars.params);
    check_matrix_values(task, (at, max_combinations), task_spec, vars, errors);
    substituted.extend(super::matrix::placeholder_params(task, &task_spec.params));
    // An inline taskSpec receives what it is given without declaring it.
    let declared = match task.task_spec {
        Some(_) => with_propagated(&task_spec.params, &substituted),
        None => task_spec.params.clone(),
    };
    // What an inline taskSpec reads must reach it: declared, passed or propagated.
    if let Some(inline) = &task.task_spec {
        for name in referenced_params(inline) {
            if !declared.iter().any(|p| p.name == name) {
                errors.push(
                    format!("{at}.taskSpec"),
                    format!("$(params.{name}): neither the taskSpec nor the pipeline declares a param {name:?}"),
                );
            }
        }
    }
    let mut param_errors = ValidationErrors::default();
    resolve_params(&declared, &substituted, &format!("{at}.params"), &mut param_errors);
    for error in param_errors.0 {
        let task_name = task
            .task_ref
            .as_deref()
            .map_or("its inline taskSpec".to_string(), |n| format!("MyTask {n:?}"));
        errors.push(error.field, format!("{} ({task_name})", error.message));
    }
    when_holds(&task.when, vars, &format!("{at}.when"), errors);
}

/// A matrix's names against the task, and its values (results stand in
/// as empty lists, so the count is checked again when the task starts).
fn check_matrix_values(
    task: &PipelineTask,
    (at, max_combinations): (&str, usize),
    task_spec: &TaskSpec,
    vars: &PipelineVariables<'_>,
    errors: &mut ValidationErrors,
) {
    let Some(matrix) = &task.matrix else {
        return;
    };
    super::matrix::check_matrix(task, at, task_spec, errors);
    super::matrix::combinations(matrix, vars, at, max_combinations, errors);
}

fn check_workspaces(inputs: &PipelineInputs<'_>, errors: &mut ValidationErrors) {
    let spec = inputs.spec;
    let field = inputs.field;
    let declared: BTreeSet<&str> = spec.workspaces.iter().map(|w| w.name.as_str()).collect();
    let mut bound = BTreeSet::new();
    for (index, binding) in inputs.run_workspaces.iter().enumerate() {
        let at = format!("spec.workspaces[{index}]");
        validate_binding(binding, &at, errors);
        if !bound.insert(binding.name.as_str()) {
            errors.push(
                format!("{at}.name"),
                format!("workspace {:?} is bound twice", binding.name),
            );
        }
        if !declared.contains(binding.name.as_str()) {
            errors.push(
                format!("{at}.name"),
                format!(
                    "the pipeline declares no workspace {:?} (declared: {})",
                    binding.name,
                    list_or_none(&declared.iter().copied().collect::<Vec<_>>())
                ),
            );
        }
    }
    for declaration in &spec.workspaces {
        if !declaration.optional && !bound.contains(declaration.name.as_str()) {
            errors.push(
                "spec.workspaces",
                format!(
                    "workspace {:?} is required by the pipeline but the run does not bind it",
                    declaration.name
                ),
            );
        }
    }
    let tasks = spec
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("{field}.tasks[{i}]"), t));
    let finally = spec
        .finally
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("{field}.finally[{i}]"), t));
    for (at, task) in tasks.chain(finally) {
        for (index, workspace) in task.workspaces.iter().enumerate() {
            let pipeline_workspace = workspace.workspace.as_deref().unwrap_or(&workspace.name);
            if !declared.contains(pipeline_workspace) {
                errors.push(
                    format!("{at}.workspaces[{index}].workspace"),
                    format!(
                        "the pipeline declares no workspace {pipeline_workspace:?} (declared: {})",
                        list_or_none(&declared.iter().copied().collect::<Vec<_>>())
                    ),
                );
            }
        }
    }
}

/// Validates everything; on success returns the DAG and the params.
pub fn validate_pipeline(inputs: &PipelineInputs<'_>) -> Result<ValidPipeline, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    if !check_task_count(inputs, &mut errors) {
        return Err(errors);
    }
    check_task_names(inputs, &mut errors);
    let params = check_params(inputs, &mut errors);
    check_workspaces(inputs, &mut errors);
    check_timeouts(inputs, &mut errors);
    super::task_run_specs::check_task_run_specs(inputs.spec, inputs.task_run_specs, &mut errors);
    let dag = match build_dag(inputs.spec, inputs.field) {
        Ok(dag) => Some(dag),
        Err(dag_errors) => {
            errors.0.extend(dag_errors.0);
            None
        }
    };
    let workspaces = bound_workspaces(inputs);
    check_references(inputs, (&params, &workspaces), &mut errors);
    drop_repeated_reference_errors(&mut errors);
    match (errors.is_empty(), dag) {
        (true, Some(dag)) => Ok(ValidPipeline {
            dag,
            params,
            workspaces,
        }),
        _ => Err(errors),
    }
}

/// At least one task, at most the limit. False when over the limit:
/// checking each task of a huge pipeline would be the very work the limit
/// prevents.
fn check_task_count(inputs: &PipelineInputs<'_>, errors: &mut ValidationErrors) -> bool {
    let (spec, field) = (inputs.spec, inputs.field);
    if spec.tasks.is_empty() {
        errors.push(format!("{field}.tasks"), "a pipeline needs at least one task");
    }
    let count = spec.tasks.len() + spec.finally.len();
    if count > inputs.max_tasks {
        errors.push(
            format!("{field}.tasks"),
            format!(
                "{count} tasks (with finally), the limit is {} (controller flag --max-pipeline-tasks)",
                inputs.max_tasks
            ),
        );
        return false;
    }
    true
}

fn check_task_names(inputs: &PipelineInputs<'_>, errors: &mut ValidationErrors) {
    let (spec, field) = (inputs.spec, inputs.field);
    let mut seen = BTreeSet::new();
    for (index, task) in spec.tasks.iter().enumerate() {
        check_task(task, &format!("{field}.tasks[{index}]"), &mut seen, errors);
    }
    for (index, task) in spec.finally.iter().enumerate() {
        check_task(task, &format!("{field}.finally[{index}]"), &mut seen, errors);
    }
}

/// The pipeline's params with the run's values; each default of the
/// declared type.
fn check_params(inputs: &PipelineInputs<'_>, errors: &mut ValidationErrors) -> BTreeMap<String, ParamValue> {
    let (spec, field) = (inputs.spec, inputs.field);
    // A run's params the pipeline does not declare reach an embedded
    // pipelineSpec (propagation); a pipeline referenced by name ignores
    // them, as Tekton does.
    let declared = with_propagated(&spec.params, inputs.run_params);
    let mut params = resolve_params(&declared, inputs.run_params, "spec.params", errors);
    if !inputs.is_embedded() {
        params.retain(|name, _| spec.params.iter().any(|p| &p.name == name));
    }
    for (index, param) in spec.params.iter().enumerate() {
        if let Some(default) = &param.default
            && default.param_type() != param.param_type
        {
            errors.push(
                format!("{field}.params[{index}].default"),
                format!(
                    "param {:?} is of type {} but its default is {}",
                    param.name,
                    param.param_type,
                    default.param_type()
                ),
            );
        }
    }
    params
}

fn check_timeouts(inputs: &PipelineInputs<'_>, errors: &mut ValidationErrors) {
    let Some(timeouts) = inputs.timeouts else {
        return;
    };
    for (name, value) in [
        ("pipeline", &timeouts.pipeline),
        ("tasks", &timeouts.tasks),
        ("finally", &timeouts.finally),
    ] {
        if let Some(value) = value
            && let Err(why) = parse_duration(value)
        {
            errors.push(format!("spec.timeouts.{name}"), why);
        }
    }
}

/// Every `$(...)` in the tasks' params and the pipeline's results, and the
/// param types, against what each task declares.
fn check_references(
    inputs: &PipelineInputs<'_>,
    (params, workspaces): (&BTreeMap<String, ParamValue>, &BTreeMap<String, bool>),
    errors: &mut ValidationErrors,
) {
    let (spec, field) = (inputs.spec, inputs.field);
    let results = declared_results(spec, inputs.task_specs);
    let matrix_sizes = matrixed_tasks(spec);
    let regular_results: DeclaredResults = results
        .iter()
        .filter(|(name, _)| spec.tasks.iter().any(|t| &t.name == *name))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // Stand-ins: only the variables' existence is checked here.
    let succeeded = |t: &PipelineTask| (t.name.clone(), "Succeeded".to_string());
    let finally_status = FinallyStatus {
        tasks: spec.tasks.iter().map(succeeded).collect(),
        reasons: spec.tasks.iter().map(succeeded).collect(),
        aggregate: "Succeeded".to_string(),
    };
    let regular_vars = PipelineVariables {
        params,
        results: KnownResults::Declared(&regular_results),
        status: None,
        context: inputs.context,
        matrix_sizes: &matrix_sizes,
        workspaces,
    };
    let finally_vars = PipelineVariables {
        status: Some(&finally_status),
        ..regular_vars
    };
    let tasks = spec
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("{field}.tasks[{i}]"), t, &regular_vars));
    let finally = spec
        .finally
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("{field}.finally[{i}]"), t, &finally_vars));
    for (at, task, vars) in tasks.chain(finally) {
        if let Some(task_spec) = inputs.task_specs.get(&task.name) {
            check_task_params(task, (&at, inputs.max_matrix_combinations), task_spec, vars, errors);
        }
        super::schedule::sub_paths(task, vars, &at, errors);
    }
    let all_vars = PipelineVariables {
        results: KnownResults::Declared(&results),
        ..finally_vars
    };
    for (index, result) in spec.results.iter().enumerate() {
        substitute_value(
            &result.value,
            &all_vars,
            &format!("{field}.results[{index}].value"),
            errors,
        );
    }
}

/// The DAG and the substitution both report a bad `$(tasks...)`
/// reference; keeps the first report of each reference in each field.
fn drop_repeated_reference_errors(errors: &mut ValidationErrors) {
    let mut reported = BTreeSet::new();
    errors.0.retain(|error| {
        let reference = error.message.split(": ").next().unwrap_or_default();
        !reference.starts_with("$(") || reported.insert((error.field.clone(), reference.to_string()))
    });
}
