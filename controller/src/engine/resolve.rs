//! Turns (run, task) into a fully resolved run: params chosen, workspaces
//! bound, step template applied and every `$(...)` reference substituted.
//! Everything the pod renderer needs, and every error the user must fix.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::{EnvFromSource, EnvVar, ResourceRequirements, SecurityContext, Volume, VolumeMount};

use crate::api::{
    OnError, ParamValue, ResourcesOverride, ResultSpec, Sidecar, TaskRunSpec, TaskSpec, WorkspaceBinding,
    WorkspaceUsage,
};
use crate::layout;

use super::duration::parse_duration;
use super::errors::ValidationErrors;
use super::limits::{Budget, Limits};
use super::propagate::with_propagated;
use super::substitute::{Resolver, Value, substitute_list, substitute_opt, substitute_str};
use super::validate::{
    RunVolumes, check_declared_step_result, check_known_names, check_step_result_selector, check_volume_names,
    find_step, list_or_none, parse_step_result_part, resolve_params, result_value_source, validate_run_spec,
    validate_task,
};

/// Who the run is; feeds `$(context.*)` and the pod's metadata.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunIdentity {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    /// The MyTask name, or the run's own name for an inline taskSpec.
    pub task_name: String,
    /// 0 for the first attempt, N for the Nth retry.
    pub attempt: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedWorkspace {
    pub name: String,
    pub mount_path: String,
    pub read_only: bool,
    /// None for an optional workspace the run does not bind.
    pub binding: Option<WorkspaceBinding>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedStep {
    pub name: String,
    pub image: String,
    pub script: Option<String>,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub env: Vec<EnvVar>,
    pub env_from: Vec<EnvFromSource>,
    pub working_dir: String,
    pub resources: Option<ResourceRequirements>,
    pub security_context: Option<SecurityContext>,
    pub volume_mounts: Vec<VolumeMount>,
    pub image_pull_policy: Option<String>,
    pub timeout: Option<String>,
    pub on_error: OnError,
    /// The isolated workspaces this step mounts (see `WorkspaceUsage`).
    pub workspaces: Vec<WorkspaceUsage>,
    /// The step results this step declares (its results directory is made
    /// for them).
    pub step_results: Vec<String>,
    /// Earlier steps' results this step's command, args or env refer to:
    /// (the reference's expression, the file the entrypoint reads it from).
    pub step_result_refs: Vec<(String, String)>,
    /// Task results whose `value` is one of this step's step results:
    /// (task result, the step result's file).
    pub results_from_step: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedTaskRun {
    pub identity: RunIdentity,
    /// The task as written (before substitution), kept in the run's status.
    pub task: TaskSpec,
    pub params: BTreeMap<String, ParamValue>,
    pub steps: Vec<ResolvedStep>,
    /// With `$(params...)` substituted, the script as in steps.
    pub sidecars: Vec<Sidecar>,
    /// The task's own pod volumes, with `$(params...)` substituted.
    pub volumes: Vec<Volume>,
    pub workspaces: Vec<ResolvedWorkspace>,
    /// Accepted oddities worth telling the user about.
    pub warnings: Vec<String>,
    /// None when the run has no timeout (`timeout: "0"`).
    pub timeout: Option<Duration>,
}

/// The values `$(...)` references of a task run resolve to.
pub struct TaskVariables<'a> {
    pub params: &'a BTreeMap<String, ParamValue>,
    pub results: Vec<&'a str>,
    pub workspaces: &'a [ResolvedWorkspace],
    /// The task's step names in order, for `$(steps.<s>...)`.
    pub steps: Vec<&'a str>,
    /// The step results each step declares, in step order.
    pub step_results: Vec<Vec<&'a ResultSpec>>,
    pub context: BTreeMap<&'static str, String>,
    /// What substitution may still produce for this run.
    pub budget: Budget,
}

impl TaskVariables<'_> {
    /// The names of the step results step `index` declares.
    fn step_result_names(&self, index: usize) -> Vec<&str> {
        self.step_results[index].iter().map(|r| r.name.as_str()).collect()
    }

    fn param(&self, rest: &str) -> Result<Value, String> {
        let name_len = rest.find(['.', '[']).unwrap_or(rest.len());
        let (name, selector) = rest.split_at(name_len);
        let Some(value) = self.params.get(name) else {
            let known: Vec<&str> = self.params.keys().map(String::as_str).collect();
            return Err(format!(
                "no param named {name:?} is declared (declared: {})",
                list_or_none(&known)
            ));
        };
        match (value, selector) {
            (ParamValue::String(text), "") => Ok(Value::Str(text.clone())),
            // Tekton also takes an array param whole without `[*]`, where an
            // array may stand: as a whole item of command or args.
            (ParamValue::Array(items), "" | "[*]") => Ok(Value::Array(items.clone())),
            (ParamValue::Array(items), index) if index.starts_with('[') && index.ends_with(']') => {
                let position: usize = index[1..index.len() - 1]
                    .parse()
                    .map_err(|_| format!("{index} is not an index of array param {name:?}"))?;
                items.get(position).cloned().map(Value::Str).ok_or_else(|| {
                    format!(
                        "index {position} is out of range: param {name:?} has {} item(s)",
                        items.len()
                    )
                })
            }
            (ParamValue::Array(_), _) => Err(format!(
                "param {name:?} is an array: use $(params.{name}[*]) as a whole item of command or args, or $(params.{name}[N])"
            )),
            (ParamValue::Object(object), key) if key.starts_with('.') => {
                let key = &key[1..];
                object.get(key).cloned().map(Value::Str).ok_or_else(|| {
                    let keys: Vec<&str> = object.keys().map(String::as_str).collect();
                    format!(
                        "object param {name:?} has no key {key:?} (keys: {})",
                        list_or_none(&keys)
                    )
                })
            }
            (ParamValue::Object(_), _) => Err(format!("param {name:?} is an object: use $(params.{name}.KEY)")),
            (ParamValue::String(_), selector) => Err(format!(
                "param {name:?} is a string; {selector:?} applies only to array or object params"
            )),
        }
    }

    fn result(&self, rest: &str) -> Result<Value, String> {
        let (name, field) = rest.split_once('.').unwrap_or((rest, "path"));
        if !self.results.contains(&name) {
            return Err(format!(
                "no result named {name:?} is declared (declared: {})",
                list_or_none(&self.results)
            ));
        }
        match field {
            "path" => Ok(Value::Str(layout::result_path(name))),
            other => Err(format!("results have no field {other:?}; use $(results.{name}.path)")),
        }
    }

    fn workspace(&self, rest: &str) -> Result<Value, String> {
        let Some((name, field)) = rest.split_once('.') else {
            return Err(format!(
                "name a field: $(workspaces.{rest}.path) or $(workspaces.{rest}.bound)"
            ));
        };
        let Some((index, workspace)) = self.workspaces.iter().enumerate().find(|(_, w)| w.name == name) else {
            let known: Vec<&str> = self.workspaces.iter().map(|w| w.name.as_str()).collect();
            return Err(format!(
                "no workspace named {name:?} is declared (declared: {})",
                list_or_none(&known)
            ));
        };
        let bound = workspace.binding.is_some();
        let claim = workspace
            .binding
            .as_ref()
            .and_then(|b| b.persistent_volume_claim.as_ref())
            .map(|claim| claim.claim_name.clone())
            .unwrap_or_default();
        match field {
            "path" if bound => Ok(Value::Str(workspace.mount_path.clone())),
            "path" => Ok(Value::Str(String::new())),
            "bound" => Ok(Value::Str(bound.to_string())),
            "claim" => Ok(Value::Str(claim)),
            "volume" => Ok(Value::Str(self.workspace_volume(index, workspace))),
            other => Err(format!(
                "workspaces have no field {other:?}; use path, bound, claim or volume"
            )),
        }
    }
}

impl TaskVariables<'_> {
    /// `$(steps.<s>.exitCode.path)`; `<s>` is the step's name, or Tekton's
    /// container form `step-<name>`. (A step result, `$(steps.<s>.results.<r>)`,
    /// only a later step can read: see `StepVariables`.)
    fn step(&self, rest: &str) -> Result<Value, String> {
        let (name, field) = rest.split_once('.').unwrap_or((rest, ""));
        let index = find_step(&self.steps, name)?;
        match field {
            "exitCode.path" => Ok(Value::Str(layout::exit_code_path(index))),
            results if results.starts_with("results.") => Err(format!(
                "a step result is known only once step {name:?} ends: use it in the command, args or env of a later step"
            )),
            other => Err(format!(
                "steps have no field {other:?}; use $(steps.{name}.exitCode.path) or $(steps.{name}.results.<result>)"
            )),
        }
    }

    /// What populates a workspace, as Tekton's `$(workspaces.w.volume)`
    /// gives it: the claim, config map or secret by name, else the pod
    /// volume (an emptyDir); empty when unbound.
    fn workspace_volume(&self, index: usize, workspace: &ResolvedWorkspace) -> String {
        let Some(binding) = &workspace.binding else {
            return String::new();
        };
        if let Some(claim) = &binding.persistent_volume_claim {
            claim.claim_name.clone()
        } else if binding.volume_claim_template.is_some() {
            let run = self.context.get("taskRun.name").map(String::as_str).unwrap_or_default();
            crate::names::claim_name(run, &workspace.name)
        } else if let Some(config_map) = &binding.config_map {
            config_map.name.clone()
        } else if let Some(secret) = &binding.secret {
            secret.secret_name.clone().unwrap_or_default()
        } else {
            layout::workspace_volume_name(index)
        }
    }
}

impl Resolver for TaskVariables<'_> {
    fn lookup(&self, expr: &str) -> Result<Value, String> {
        let (namespace, rest) = expr.split_once(['.', '[']).unwrap_or((expr, ""));
        match namespace {
            "params" => self.param(rest),
            "results" => self.result(rest),
            "workspaces" => self.workspace(rest),
            "steps" => self.step(rest),
            "step" => Err(
                "$(step.results.<name>.path) is valid only in the fields of the step that declares the result".into(),
            ),
            "context" => self.context.get(rest).cloned().map(Value::Str).ok_or_else(|| {
                let known: Vec<&str> = self.context.keys().copied().collect();
                format!("unknown context variable (known: {})", known.join(", "))
            }),
            "tasks" => Err("$(tasks.*) refers to pipeline tasks and is only valid in a MyPipeline".into()),
            // Where the first step writes the ServiceAccount's credentials:
            // the run's shared HOME, so a step with a HOME of its own can copy them.
            "credentials" if rest == "path" => Ok(Value::Str(layout::HOME_DIR.to_string())),
            _ => Err("unknown reference".into()),
        }
    }

    fn budget(&self) -> Option<&Budget> {
        Some(&self.budget)
    }
}

/// The number of items of a param value (0 for a string).
fn value_items(value: &ParamValue) -> usize {
    match value {
        ParamValue::String(_) => 0,
        ParamValue::Array(items) => items.len(),
        ParamValue::Object(entries) => entries.len(),
    }
}

/// Checks the counts the limits bound before any work is done: too many
/// steps, params and so on fail the run at once.
fn within_limits(
    run: &TaskRunSpec,
    task: &TaskSpec,
    task_field: &str,
    limits: &Limits,
    errors: &mut ValidationErrors,
) -> bool {
    let counts = [
        (
            format!("{task_field}.steps"),
            "steps",
            task.steps.len(),
            limits.max_steps,
            "max-steps",
        ),
        (
            format!("{task_field}.sidecars"),
            "sidecars",
            task.sidecars.len(),
            limits.max_sidecars,
            "max-sidecars",
        ),
        (
            format!("{task_field}.params"),
            "params",
            task.params.len(),
            limits.max_params,
            "max-params",
        ),
        (
            "spec.params".to_string(),
            "params",
            run.params.len(),
            limits.max_params,
            "max-params",
        ),
        (
            format!("{task_field}.results"),
            "results",
            task.results.len(),
            limits.max_results,
            "max-results",
        ),
        (
            format!("{task_field}.workspaces"),
            "workspaces",
            task.workspaces.len(),
            limits.max_workspaces,
            "max-workspaces",
        ),
        (
            "spec.workspaces".to_string(),
            "workspaces",
            run.workspaces.len(),
            limits.max_workspaces,
            "max-workspaces",
        ),
    ];
    let mut fine = true;
    for (field, what, count, limit, flag) in counts {
        fine &= limits.check_count(&field, what, count, limit, flag, errors);
    }
    let values = run
        .params
        .iter()
        .enumerate()
        .map(|(i, p)| (format!("spec.params[{i}].value"), &p.value))
        .chain(task.params.iter().enumerate().filter_map(|(i, p)| {
            p.default
                .as_ref()
                .map(|value| (format!("{task_field}.params[{i}].default"), value))
        }));
    for (field, value) in values {
        let items = value_items(value);
        fine &= limits.check_count(
            &field,
            "items",
            items,
            limits.max_array_items,
            "max-array-items",
            errors,
        );
    }
    fine
}

/// The variables of a step's script: as everywhere, except that an
/// unknown `$(context.*)` stays as written for the shell, as in Tekton
/// (scripts often hold text of their own in that shape).
struct ScriptVariables<'a>(&'a dyn Resolver);

impl Resolver for ScriptVariables<'_> {
    fn lookup(&self, expr: &str) -> Result<Value, String> {
        match self.0.lookup(expr) {
            Err(_) if expr.starts_with("context.") => Ok(Value::Str(format!("$({expr})"))),
            found => found,
        }
    }

    /// The same bounds as every other field: a script is where
    /// amplification would land first.
    fn budget(&self) -> Option<&Budget> {
        self.0.budget()
    }
}

/// One step's or sidecar's view of the variables: `$(workspaces.w.path)`
/// of an isolated workspace it mounts at its own `mountPath` is that path,
/// where the container really sees it.
struct ContainerVariables<'a> {
    task: &'a TaskVariables<'a>,
    /// (workspace, the container's own path), for bound workspaces only.
    own_paths: Vec<(&'a str, &'a str)>,
}

impl<'a> ContainerVariables<'a> {
    fn new(task: &'a TaskVariables<'a>, usages: &'a [WorkspaceUsage]) -> Self {
        let bound = |name: &str| task.workspaces.iter().any(|w| w.name == name && w.binding.is_some());
        let own_paths = usages
            .iter()
            .filter(|usage| bound(&usage.name))
            .filter_map(|usage| Some((usage.name.as_str(), usage.mount_path.as_deref()?)))
            .collect();
        ContainerVariables { task, own_paths }
    }
}

impl Resolver for ContainerVariables<'_> {
    fn lookup(&self, expr: &str) -> Result<Value, String> {
        let own = expr
            .strip_prefix("workspaces.")
            .and_then(|rest| rest.strip_suffix(".path"))
            .and_then(|name| self.own_paths.iter().find(|(workspace, _)| *workspace == name));
        match own {
            Some((_, path)) => Ok(Value::Str((*path).to_string())),
            None => self.task.lookup(expr),
        }
    }

    fn budget(&self) -> Option<&Budget> {
        self.task.budget()
    }
}

/// One step's view of the variables: `$(step.results.<r>.path)` of its own
/// step results, and earlier steps' `$(steps.<s>.results.<r>)`. Those are
/// known only when that step ends, after the pod was made, so where the
/// entrypoint can still replace them (command, args and env: `live` is
/// Some) they are left as written and recorded for it; elsewhere they are
/// an error.
struct StepVariables<'a> {
    container: &'a ContainerVariables<'a>,
    index: usize,
    /// The step result references found: (expression, file).
    live: Option<&'a RefCell<BTreeSet<(String, String)>>>,
    /// The artifact files the step's fields name (`layout::STEP_ARTIFACTS`,
    /// `layout::TASK_ARTIFACTS`): only those are collected from it.
    artifacts: &'a RefCell<BTreeSet<&'static str>>,
}

impl StepVariables<'_> {
    /// `$(step.artifacts.path)` and `$(artifacts.path)`: a file of the
    /// step's own results directory, reported with its step results.
    fn artifacts_path(&self, which: &'static str) -> Value {
        self.artifacts.borrow_mut().insert(which);
        Value::Str(layout::step_result_path(self.index, which))
    }

    fn own_result(&self, rest: &str) -> Result<Value, String> {
        let name = rest
            .strip_prefix("results.")
            .and_then(|field| field.strip_suffix(".path"))
            .ok_or("use $(step.results.<name>.path)")?;
        let declared = self.container.task.step_result_names(self.index);
        if !declared.contains(&name) {
            return Err(format!(
                "this step declares no step result {name:?} (declared: {})",
                list_or_none(&declared)
            ));
        }
        Ok(Value::Str(layout::step_result_path(self.index, name)))
    }

    /// `$(steps.<step>.results.<result><selector>)`: left as written for
    /// the entrypoint; `[*]` of an array as a one-item array, so that only a
    /// whole item of command or args can take it.
    fn earlier_result(&self, expr: &str, (step, result, selector): (&str, &str, &str)) -> Result<Value, String> {
        let task = self.container.task;
        let index = find_step(&task.steps, step)?;
        if index >= self.index {
            return Err(format!(
                "step {step:?} does not run before this step; a step reads the results of earlier steps only"
            ));
        }
        check_declared_step_result(step, &task.step_result_names(index), result)?;
        let declared = task.step_results[index].iter().find(|r| r.name == result);
        let spread = match declared {
            Some(declared) => check_step_result_selector(declared, selector)?,
            None => false,
        };
        let Some(live) = self.live else {
            return Err(format!(
                "a step result is known only once step {step:?} ends, after this field is fixed: use it in command, args or env"
            ));
        };
        live.borrow_mut()
            .insert((expr.to_string(), layout::step_result_path(index, result)));
        let literal = format!("$({expr})");
        Ok(if spread {
            Value::Array(vec![literal])
        } else {
            Value::Str(literal)
        })
    }
}

impl Resolver for StepVariables<'_> {
    fn lookup(&self, expr: &str) -> Result<Value, String> {
        match expr {
            "step.artifacts.path" => return Ok(self.artifacts_path(layout::STEP_ARTIFACTS)),
            "artifacts.path" => return Ok(self.artifacts_path(layout::TASK_ARTIFACTS)),
            _ => {}
        }
        if let Some(rest) = expr.strip_prefix("step.") {
            return self.own_result(rest);
        }
        match parse_step_result_part(expr) {
            Some(part) => self.earlier_result(expr, part),
            None => self.container.lookup(expr),
        }
    }

    fn budget(&self) -> Option<&Budget> {
        self.container.budget()
    }
}

fn context_variables(identity: &RunIdentity) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("taskRun.name", identity.name.clone()),
        ("taskRun.namespace", identity.namespace.clone()),
        ("taskRun.uid", identity.uid.clone()),
        ("task.name", identity.task_name.clone()),
        ("task.retry-count", identity.attempt.to_string()),
    ])
}

/// The params with this run's own `$(context...)` replaced in their values:
/// a pipeline passes `$(context.task.retry-count)` on for the child to
/// fill in (as Tekton applies contexts after params). Other text is kept.
/// At most [`MAX_CONTEXTS_PER_VALUE`] references per value are filled, so
/// a value cannot grow without bound (a run's name is up to 253 bytes).
fn with_context(mut params: BTreeMap<String, ParamValue>, identity: &RunIdentity) -> BTreeMap<String, ParamValue> {
    const MAX_CONTEXTS_PER_VALUE: usize = 16;
    let context = context_variables(identity);
    let fill = |text: &mut String| {
        let count = text.matches("$(context.").count();
        if count > 0 && count <= MAX_CONTEXTS_PER_VALUE {
            for (key, value) in &context {
                *text = text.replace(&format!("$(context.{key})"), value);
            }
        }
    };
    for value in params.values_mut() {
        match value {
            ParamValue::String(text) => fill(text),
            ParamValue::Array(items) => items.iter_mut().for_each(fill),
            ParamValue::Object(object) => object.values_mut().for_each(fill),
        }
    }
    params
}

/// Binds every declared workspace, and mounts bindings the task does not
/// declare (accepted, with a warning: the original design's runs do this).
fn resolve_workspaces(
    task: &TaskSpec,
    task_name: &str,
    bindings: &[WorkspaceBinding],
    errors: &mut ValidationErrors,
    warnings: &mut Vec<String>,
) -> Vec<ResolvedWorkspace> {
    let mut resolved = Vec::new();
    for declaration in &task.workspaces {
        let binding = bindings.iter().find(|b| b.name == declaration.name).cloned();
        if binding.is_none() && !declaration.optional {
            errors.push(
                "spec.workspaces",
                format!(
                    "workspace {:?} is required by task {task_name:?} but the run does not bind it",
                    declaration.name
                ),
            );
        }
        let read_only = declaration.read_only || binding.as_ref().is_some_and(WorkspaceBinding::is_read_only_source);
        resolved.push(ResolvedWorkspace {
            name: declaration.name.clone(),
            mount_path: declaration
                .mount_path
                .clone()
                .unwrap_or_else(|| layout::default_workspace_path(&declaration.name)),
            read_only,
            binding,
        });
    }
    for binding in bindings {
        if task.workspaces.iter().any(|d| d.name == binding.name) {
            continue;
        }
        let mount_path = layout::default_workspace_path(&binding.name);
        warnings.push(format!(
            "workspace {:?} is bound by the run but task {task_name:?} does not declare it; it is mounted at {mount_path}",
            binding.name
        ));
        resolved.push(ResolvedWorkspace {
            name: binding.name.clone(),
            mount_path,
            read_only: binding.is_read_only_source(),
            binding: Some(binding.clone()),
        });
    }
    resolved
}

/// Env vars of the template, overridden by the step's own of the same name.
fn merge_env(template: &[EnvVar], step: &[EnvVar]) -> Vec<EnvVar> {
    let mut merged: Vec<EnvVar> = template
        .iter()
        .filter(|t| !step.iter().any(|s| s.name == t.name))
        .cloned()
        .collect();
    merged.extend(step.iter().cloned());
    merged
}

fn substitute_env(env: &mut [EnvVar], vars: &dyn Resolver, field: &str, errors: &mut ValidationErrors) {
    for (index, var) in env.iter_mut().enumerate() {
        substitute_opt(&mut var.value, vars, &format!("{field}.env[{index}].value"), errors);
    }
}

/// Substitutes every string inside a JSON value; `field` grows with the path.
fn substitute_json(value: &mut serde_json::Value, vars: &dyn Resolver, field: &str, errors: &mut ValidationErrors) {
    match value {
        serde_json::Value::String(text) => *text = substitute_str(text, vars, field, errors),
        serde_json::Value::Array(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                substitute_json(item, vars, &format!("{field}[{index}]"), errors);
            }
        }
        serde_json::Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                substitute_json(item, vars, &format!("{field}.{key}"), errors);
            }
        }
        _ => {}
    }
}

/// A task volume with `$(params...)` replaced in any of its strings (a
/// ConfigMap's name, a hostPath, ...). Volumes are plain data, so the
/// substitution goes through their JSON form.
fn substitute_volume(volume: &Volume, vars: &dyn Resolver, field: &str, errors: &mut ValidationErrors) -> Volume {
    let Ok(mut json) = serde_json::to_value(volume) else {
        return volume.clone();
    };
    substitute_json(&mut json, vars, field, errors);
    match serde_json::from_value(json) {
        Ok(substituted) => substituted,
        Err(error) => {
            errors.push(field, format!("after substitution the volume is invalid: {error}"));
            volume.clone()
        }
    }
}

/// The values of the task's params in this run: given, else defaulted (a
/// partial object merged with its default). An inline taskSpec receives
/// every param of the run, declared or not (propagation).
pub fn run_param_values(
    run: &TaskRunSpec,
    task: &TaskSpec,
    errors: &mut ValidationErrors,
) -> BTreeMap<String, ParamValue> {
    let declared = match run.task_spec {
        Some(_) => with_propagated(&task.params, &run.params),
        None => task.params.clone(),
    };
    resolve_params(&declared, &run.params, "spec.params", errors)
}

/// Validates the run against its task and resolves everything.
/// `task_field` names where the task came from in errors, e.g.
/// `spec.taskSpec` or `MyTask t1: spec`.
pub fn resolve_task_run(
    identity: &RunIdentity,
    run: &TaskRunSpec,
    task: &TaskSpec,
    task_field: &str,
    default_timeout: Duration,
    limits: &Limits,
) -> Result<ResolvedTaskRun, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    let mut warnings = Vec::new();
    if !within_limits(run, task, task_field, limits, &mut errors) {
        return Err(errors);
    }
    validate_run_spec(run, &mut errors);
    let run_volumes = run
        .pod_template
        .as_ref()
        .map_or(&[][..], |template| &template.volumes[..]);
    validate_task(task, task_field, RunVolumes::Known(run_volumes), &mut errors);
    check_run_volumes(task, run_volumes, &mut errors);
    check_resource_overrides(run, task, &mut errors);

    let params = with_context(run_param_values(run, task, &mut errors), identity);
    let workspaces = resolve_workspaces(task, &identity.task_name, &run.workspaces, &mut errors, &mut warnings);
    let vars = TaskVariables {
        params: &params,
        results: task.results.iter().map(|r| r.name.as_str()).collect(),
        workspaces: &workspaces,
        steps: task.steps.iter().map(|step| step.name.as_str()).collect(),
        step_results: task.steps.iter().map(|step| step.results.iter().collect()).collect(),
        context: context_variables(identity),
        budget: Budget::new(limits),
    };

    let template = task.step_template.clone().unwrap_or_default();
    let mut steps = Vec::with_capacity(task.steps.len());
    for (index, step) in task.steps.iter().enumerate() {
        let at = format!("{task_field}.steps[{index}]");
        if let Some(reference) = &step.step_ref {
            // `step_action::inline_step_actions` replaces these before resolution.
            errors.push(
                format!("{at}.ref.name"),
                format!("MyStepAction {:?} was not found", reference.name),
            );
        }
        let container = ContainerVariables::new(&vars, &step.workspaces);
        let found = RefCell::new(BTreeSet::new());
        let artifacts = RefCell::new(BTreeSet::new());
        let live = StepVariables {
            container: &container,
            index,
            live: Some(&found),
            artifacts: &artifacts,
        };
        let vars = StepVariables {
            container: &container,
            index,
            live: None,
            artifacts: &artifacts,
        };
        let mut env = merge_env(&template.env, &step.env);
        substitute_env(&mut env, &live, &at, &mut errors);
        let image = step
            .image
            .clone()
            .or_else(|| template.image.clone())
            .unwrap_or_default();
        let working_dir = step
            .working_dir
            .clone()
            .or_else(|| template.working_dir.clone())
            .unwrap_or_else(|| layout::WORKSPACE_ROOT.to_string());
        let mut env_from = template.env_from.clone();
        env_from.extend(step.env_from.iter().cloned());
        let mut volume_mounts = template.volume_mounts.clone();
        volume_mounts.extend(step.volume_mounts.iter().cloned());
        substitute_mounts(&mut volume_mounts, &vars, &at, &mut errors);
        let mut script = step.script.clone();
        substitute_opt(
            &mut script,
            &ScriptVariables(&vars),
            &format!("{at}.script"),
            &mut errors,
        );
        steps.push(ResolvedStep {
            name: step.name.clone(),
            image: substitute_str(&image, &vars, &format!("{at}.image"), &mut errors),
            script,
            command: substitute_list(&step.command, &live, &format!("{at}.command"), &mut errors),
            args: substitute_list(&step.args, &live, &format!("{at}.args"), &mut errors),
            env,
            env_from,
            working_dir: substitute_str(&working_dir, &vars, &format!("{at}.workingDir"), &mut errors),
            // The run's computeResources (for the whole task) or its
            // stepSpecs entry win over the step's own.
            resources: run
                .compute_resources
                .clone()
                .or_else(|| overridden(&run.step_specs, &step.name))
                .or_else(|| step.resources.clone())
                .or_else(|| template.resources.clone()),
            security_context: step
                .security_context
                .clone()
                .or_else(|| template.security_context.clone()),
            volume_mounts,
            image_pull_policy: step
                .image_pull_policy
                .clone()
                .or_else(|| template.image_pull_policy.clone()),
            timeout: step.timeout.clone(),
            on_error: resolve_on_error(step.on_error.as_deref(), &vars, &format!("{at}.onError"), &mut errors),
            workspaces: step.workspaces.clone(),
            step_results: step
                .results
                .iter()
                .map(|r| r.name.clone())
                .chain(artifacts.into_inner().into_iter().map(String::from))
                .collect(),
            step_result_refs: found.into_inner().into_iter().collect(),
            results_from_step: Vec::new(),
        });
    }
    for result in &task.results {
        // A value that names no step result was reported by validate_task.
        if let Some(Ok((index, step_result))) = result.value.as_deref().map(|v| result_value_source(task, v)) {
            steps[index]
                .results_from_step
                .push((result.name.clone(), layout::step_result_path(index, step_result)));
        }
    }

    let mut sidecars = task.sidecars.clone();
    for (
        index,
        Sidecar {
            container: sidecar,
            script,
            workspaces: usages,
        },
    ) in sidecars.iter_mut().enumerate()
    {
        let at = format!("{task_field}.sidecars[{index}]");
        let vars = ContainerVariables::new(&vars, usages);
        substitute_opt(script, &ScriptVariables(&vars), &format!("{at}.script"), &mut errors);
        substitute_opt(&mut sidecar.image, &vars, &format!("{at}.image"), &mut errors);
        if let Some(command) = sidecar.command.as_mut() {
            *command = substitute_list(command, &vars, &format!("{at}.command"), &mut errors);
        }
        if let Some(args) = sidecar.args.as_mut() {
            *args = substitute_list(args, &vars, &format!("{at}.args"), &mut errors);
        }
        if let Some(env) = sidecar.env.as_mut() {
            substitute_env(env, &vars, &at, &mut errors);
        }
        if let Some(mounts) = sidecar.volume_mounts.as_mut() {
            substitute_mounts(mounts, &vars, &at, &mut errors);
        }
        if let Some(resources) = overridden(&run.sidecar_specs, &sidecar.name) {
            sidecar.resources = Some(resources);
        }
    }

    let volumes = task
        .volumes
        .iter()
        .enumerate()
        .map(|(index, volume)| substitute_volume(volume, &vars, &format!("{task_field}.volumes[{index}]"), &mut errors))
        .collect();

    let timeout = match run.timeout.as_deref().map(parse_duration) {
        None => Some(default_timeout),
        Some(Ok(Duration::ZERO)) => None,
        Some(Ok(timeout)) => Some(timeout),
        Some(Err(_)) => None, // reported by validate_run_spec
    };

    errors.into_result(ResolvedTaskRun {
        identity: identity.clone(),
        task: task.clone(),
        params,
        steps,
        sidecars,
        volumes,
        workspaces,
        warnings,
        timeout,
    })
}

/// `$(...)` in a container's mounts (Tekton mounts a workspace's volume in
/// a sidecar as `name: $(workspaces.w.volume)`, `mountPath:
/// $(workspaces.w.path)`).
fn substitute_mounts(mounts: &mut [VolumeMount], vars: &dyn Resolver, at: &str, errors: &mut ValidationErrors) {
    for (index, mount) in mounts.iter_mut().enumerate() {
        let at = format!("{at}.volumeMounts[{index}]");
        mount.name = substitute_str(&mount.name, vars, &format!("{at}.name"), errors);
        mount.mount_path = substitute_str(&mount.mount_path, vars, &format!("{at}.mountPath"), errors);
        substitute_opt(&mut mount.sub_path, vars, &format!("{at}.subPath"), errors);
    }
}

/// The resources the run's `stepSpecs`/`sidecarSpecs` give container `name`.
fn overridden(overrides: &[ResourcesOverride], name: &str) -> Option<ResourceRequirements> {
    overrides
        .iter()
        .find(|entry| entry.name == name)
        .map(|entry| entry.compute_resources.clone())
}

/// `stepSpecs` and `sidecarSpecs` name containers of the task, once each;
/// `stepSpecs` and the task-level `computeResources` exclude each other.
fn check_resource_overrides(run: &TaskRunSpec, task: &TaskSpec, errors: &mut ValidationErrors) {
    if run.compute_resources.is_some() && !run.step_specs.is_empty() {
        errors.push(
            "spec.stepSpecs",
            "set computeResources (every step's) or stepSpecs (per step), not both",
        );
    }
    let steps: Vec<&str> = task.steps.iter().map(|s| s.name.as_str()).collect();
    let sidecars: Vec<&str> = task.sidecars.iter().map(|s| s.container.name.as_str()).collect();
    for (field, what, overrides, known) in [
        ("spec.stepSpecs", "step", &run.step_specs, &steps),
        ("spec.sidecarSpecs", "sidecar", &run.sidecar_specs, &sidecars),
    ] {
        let names = overrides
            .iter()
            .enumerate()
            .map(|(index, entry)| (format!("{field}[{index}].name"), entry.name.as_str()));
        check_known_names(names, ("task", what), known, errors);
    }
}

/// The run's `podTemplate.volumes`: not a name of ours, of the task's own
/// volumes, or given twice (the pod would be refused).
fn check_run_volumes(task: &TaskSpec, volumes: &[Volume], errors: &mut ValidationErrors) {
    let own: BTreeSet<&str> = task.volumes.iter().map(|volume| volume.name.as_str()).collect();
    check_volume_names(volumes, "spec.podTemplate.volumes", &own, errors);
}

/// A step's `onError` once its `$(params...)` are substituted; a value
/// that names no policy is an error naming the field and the value.
fn resolve_on_error(text: Option<&str>, vars: &dyn Resolver, field: &str, errors: &mut ValidationErrors) -> OnError {
    let Some(text) = text else {
        return OnError::default();
    };
    let value = substitute_str(text, vars, field, errors);
    OnError::parse(&value).unwrap_or_else(|| {
        errors.push(
            field,
            format!("onError is {value:?}; it must be \"continue\" or \"stopAndFail\""),
        );
        OnError::default()
    })
}
