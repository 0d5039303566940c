//! StepActions: a step with `ref: {name: x}` runs MyStepAction `x` of the
//! run's namespace (with `ref: {resolver, params}`, the one a resolver
//! fetches). Its container fields (image, command or script, env,
//! ...) and step results become the step's, with the action's
//! `$(params.p)` filled from the step's `params` (else the action's
//! defaults). This happens before the task is validated and resolved, so
//! every later stage sees plain steps, and the run's task snapshot keeps
//! them: a later edit of the action does not change a run in flight.

use std::collections::{BTreeMap, BTreeSet};

use crate::api::{Param, ParamSpec, ParamType, ParamValue, RemoteRef, Step, StepActionRef, StepActionSpec, TaskSpec};

use super::errors::ValidationErrors;
use super::limits::{Budget, Limits};
use super::resolve::TaskVariables;
use super::substitute::{Resolver, Value, substitute_list, substitute_opt, substitute_str};
use super::validate::resolve_params;

/// The step actions a task refers to, by [`action_key`]: each decoded, or
/// why it cannot be (a malformed one fails the run naming the field, as a
/// malformed MyTask does).
pub type StepActions = BTreeMap<String, Result<StepActionSpec, String>>;

/// Where step `index`'s action is found in [`StepActions`]: by its name,
/// or, fetched by a resolver, as `steps[<index>]` (no name has brackets).
pub fn action_key(index: usize, reference: &StepActionRef) -> String {
    match reference.resolver {
        Some(_) => fetched_action_key(index),
        None => reference.name.clone(),
    }
}

/// The key of the action a resolver fetched for step `index`.
pub fn fetched_action_key(index: usize) -> String {
    format!("steps[{index}]")
}

/// The MyStepActions the task's steps refer to by name.
pub fn referenced(task: &TaskSpec) -> BTreeSet<&str> {
    task.steps
        .iter()
        .filter_map(|step| step.step_ref.as_ref())
        .filter(|reference| reference.resolver.is_none())
        .map(|reference| reference.name.as_str())
        .collect()
}

/// The steps whose action a resolver fetches: (step index, request).
pub fn remote_references(task: &TaskSpec) -> Vec<(usize, RemoteRef)> {
    task.steps
        .iter()
        .enumerate()
        .filter_map(|(index, step)| Some((index, step.step_ref.as_ref()?.remote()?)))
        .collect()
}

/// Whether any step runs a step action (named or fetched).
pub fn runs_step_actions(task: &TaskSpec) -> bool {
    task.steps.iter().any(|step| step.step_ref.is_some())
}

/// A step action's view of references: its own params; anything else
/// (`$(params...)` of the task given through the step's params,
/// `$(step.results...)`, `$(workspaces...)`) is left for the task's
/// resolution.
struct ActionVariables<'a> {
    task: TaskVariables<'a>,
    /// Params given as one whole array or object reference: name -> the
    /// reference's expression without `[*]`. `$(params.p[i])`, `.key` and
    /// `[*]` of such a param become that reference's.
    references: &'a BTreeMap<String, String>,
    /// Keys of such object params that the referenced object lacks, with
    /// the action's defaults for them: `$(params.p.key)` takes the default.
    missing_keys: &'a BTreeMap<String, BTreeMap<String, String>>,
}

impl Resolver for ActionVariables<'_> {
    fn lookup(&self, expr: &str) -> Result<Value, String> {
        let Some(rest) = expr.strip_prefix("params.") else {
            return Ok(Value::Str(format!("$({expr})")));
        };
        let (name, selector) = rest.split_at(rest.find(['.', '[']).unwrap_or(rest.len()));
        let missing = |key| self.missing_keys.get(name).and_then(|keys| keys.get(key));
        if let Some(default) = selector.strip_prefix('.').and_then(missing) {
            return Ok(Value::Str(default.clone()));
        }
        match (self.references.get(name), selector) {
            (Some(inner), "[*]") => Ok(Value::Array(vec![format!("$({inner}[*])")])),
            (Some(inner), selector) if !selector.is_empty() => Ok(Value::Str(format!("$({inner}{selector})"))),
            _ => self.task.lookup(expr),
        }
    }

    fn budget(&self) -> Option<&Budget> {
        self.task.budget()
    }
}

/// A step action's variables: its params and nothing else of a task's.
fn params_only<'a>(params: &'a BTreeMap<String, ParamValue>, limits: &Limits) -> TaskVariables<'a> {
    TaskVariables {
        params,
        results: Vec::new(),
        workspaces: &[],
        steps: Vec::new(),
        step_results: Vec::new(),
        context: BTreeMap::new(),
        budget: Budget::new(limits),
    }
}

/// Only the action's own params, for filling its defaults; any other
/// reference is left for later.
struct SiblingParams<'a>(TaskVariables<'a>);

impl Resolver for SiblingParams<'_> {
    fn lookup(&self, expr: &str) -> Result<Value, String> {
        let own = expr
            .strip_prefix("params.")
            .map(|rest| &rest[..rest.find(['.', '[']).unwrap_or(rest.len())])
            .is_some_and(|name| self.0.params.contains_key(name));
        if own {
            self.0.lookup(expr)
        } else {
            Ok(Value::Str(format!("$({expr})")))
        }
    }

    fn budget(&self) -> Option<&Budget> {
        self.0.budget()
    }
}

/// A default that names another param of the action (`default:
/// "$(params.message) world"`) takes that param's value, as in Tekton. One
/// pass over the values as given or defaulted, so defaults naming each
/// other are never followed round in a loop.
fn fill_defaults_from_params(
    (declared, given): (&[ParamSpec], &[Param]),
    params: &mut BTreeMap<String, ParamValue>,
    at: &str,
    limits: &Limits,
    errors: &mut ValidationErrors,
) {
    let before = params.clone();
    let vars = SiblingParams(params_only(&before, limits));
    for (index, spec) in declared.iter().enumerate() {
        if given.iter().any(|param| param.name == spec.name) {
            continue;
        }
        let Some(value) = params.get_mut(&spec.name) else {
            continue;
        };
        let field = format!("{at}.params[{index}].default");
        match value {
            ParamValue::String(text) => *text = substitute_str(text, &vars, &field, errors),
            ParamValue::Array(items) => {
                for (item_index, item) in items.iter_mut().enumerate() {
                    *item = substitute_str(item, &vars, &format!("{field}[{item_index}]"), errors);
                }
            }
            ParamValue::Object(map) => {
                for (key, item) in map.iter_mut() {
                    *item = substitute_str(item, &vars, &format!("{field}.{key}"), errors);
                }
            }
        }
    }
}

/// Container fields a step that refers to a step action takes from it;
/// setting one on the step as well is an error (which one would win?).
fn own_container_fields(step: &Step) -> Vec<&'static str> {
    [
        ("image", step.image.is_some()),
        ("script", step.script.is_some()),
        ("command", !step.command.is_empty()),
        ("args", !step.args.is_empty()),
        ("env", !step.env.is_empty()),
        ("envFrom", !step.env_from.is_empty()),
        ("workingDir", step.working_dir.is_some()),
        ("securityContext", step.security_context.is_some()),
        ("volumeMounts", !step.volume_mounts.is_empty()),
        ("results", !step.results.is_empty()),
    ]
    .into_iter()
    .filter_map(|(field, set)| set.then_some(field))
    .collect()
}

/// `task` with every step that refers to a step action replaced by the
/// action's fields. `actions` holds the actions found by name; a missing
/// one is an error naming the step's `ref.name`. `task_params` are the
/// run's values of the task's params (see `resolve::run_param_values`).
pub fn inline_step_actions(
    task: &TaskSpec,
    field: &str,
    (actions, task_params): (&StepActions, &BTreeMap<String, ParamValue>),
    limits: &Limits,
) -> Result<TaskSpec, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    let mut inlined = task.clone();
    for (index, step) in inlined.steps.iter_mut().enumerate() {
        let at = format!("{field}.steps[{index}]");
        let Some(reference) = step.step_ref.take() else {
            continue;
        };
        if !check_reference(&reference, &at, &mut errors) {
            continue;
        }
        let what = match reference.resolver {
            Some(_) => format!("the step action {at}.ref fetched"),
            None => format!("step action {:?}", reference.name),
        };
        for own in own_container_fields(step) {
            errors.push(
                format!("{at}.{own}"),
                format!("the step runs {what}, which sets {own}; remove it from the step"),
            );
        }
        let action = match actions.get(&action_key(index, &reference)) {
            Some(Ok(action)) => action,
            Some(Err(problem)) if reference.resolver.is_some() => {
                errors.push(format!("{at}.ref"), format!("the step action cannot be had: {problem}"));
                continue;
            }
            Some(Err(problem)) => {
                errors.push(
                    format!("{at}.ref.name"),
                    format!("MyStepAction {:?} cannot be read: {problem}", reference.name),
                );
                continue;
            }
            None if reference.resolver.is_some() => {
                errors.push(
                    format!("{at}.ref"),
                    "the step action is fetched when the run starts (`render` fetches nothing)",
                );
                continue;
            }
            None => {
                errors.push(
                    format!("{at}.ref.name"),
                    format!("no MyStepAction named {:?} in the run's namespace", reference.name),
                );
                continue;
            }
        };
        let (given, references) = split_whole_references(&action.params, &step.params);
        let mut params = resolve_params(&action.params, &given, &format!("{at}.params"), &mut errors);
        let action_at = match reference.resolver {
            Some(_) => format!("{at}.ref (fetched): spec"),
            None => format!("MyStepAction {:?}: spec", reference.name),
        };
        let defaults = (action.params.as_slice(), given.as_slice());
        fill_defaults_from_params(defaults, &mut params, &action_at, limits, &mut errors);
        let missing_keys = missing_object_keys(&action.params, &references, task_params);
        let whole = WholeReferences {
            references: &references,
            missing_keys: &missing_keys,
        };
        apply_action(step, action, (&params, whole), &action_at, limits, &mut errors);
    }
    errors.into_result(inlined)
}

/// The inner expression of a step's param value that is exactly one whole
/// array or object reference (`$(params.a[*])`, `$(steps.s.results.r[*])`)
/// given to a param of that type: a value only the task's resolution or
/// the entrypoint knows.
fn whole_reference<'a, 's>(declared: &'s [ParamSpec], given: &'a Param) -> Option<(&'a str, &'s ParamSpec)> {
    let ParamValue::String(text) = &given.value else {
        return None;
    };
    let spec = declared.iter().find(|p| p.name == given.name)?;
    if spec.param_type == ParamType::String {
        return None;
    }
    let inner = text
        .strip_prefix("$(")?
        .strip_suffix("[*])")
        .filter(|inner| !inner.contains(['$', '(', ')']))?;
    Some((inner, spec))
}

/// The step's params with each whole array or object reference replaced
/// by a stand-in of its type, and those references by param name.
fn split_whole_references(declared: &[ParamSpec], given: &[Param]) -> (Vec<Param>, BTreeMap<String, String>) {
    let mut references = BTreeMap::new();
    let params = given
        .iter()
        .map(|param| {
            let Some((inner, spec)) = whole_reference(declared, param) else {
                return param.clone();
            };
            references.insert(param.name.clone(), inner.to_string());
            Param {
                name: param.name.clone(),
                value: stand_in(spec),
            }
        })
        .collect();
    (params, references)
}

/// For each object param given whole as a task param (`$(params.o[*])`),
/// the keys of the action's default that the task's value of `o` lacks,
/// with their defaults: as in Tekton, the action's default fills the keys
/// the task's object does not have (and all of them when the task's param
/// is not an object). A reference to a param the task does not have, or
/// to a step's result (known only when the step has run), fills nothing.
fn missing_object_keys(
    declared: &[ParamSpec],
    references: &BTreeMap<String, String>,
    task_params: &BTreeMap<String, ParamValue>,
) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut missing = BTreeMap::new();
    for spec in declared {
        let Some(ParamValue::Object(defaults)) = &spec.default else {
            continue;
        };
        let Some(task_value) = references
            .get(&spec.name)
            .and_then(|inner| inner.strip_prefix("params."))
            .and_then(|name| task_params.get(name))
        else {
            continue;
        };
        let has = |key: &String| matches!(task_value, ParamValue::Object(given) if given.contains_key(key));
        let filled: BTreeMap<String, String> = defaults
            .iter()
            .filter(|(key, _)| !has(key))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        if !filled.is_empty() {
            missing.insert(spec.name.clone(), filled);
        }
    }
    missing
}

/// A step's params given as one whole array or object reference.
#[derive(Clone, Copy)]
struct WholeReferences<'a> {
    /// Param name -> the reference's expression without `[*]`.
    references: &'a BTreeMap<String, String>,
    /// See [`missing_object_keys`].
    missing_keys: &'a BTreeMap<String, BTreeMap<String, String>>,
}

/// What stands in for such a param while its declaration is checked: the
/// empty value of its type, with an object's declared keys.
fn stand_in(spec: &ParamSpec) -> ParamValue {
    match (spec.param_type, &spec.properties) {
        (ParamType::Object, Some(properties)) => {
            ParamValue::Object(properties.keys().map(|key| (key.clone(), String::new())).collect())
        }
        (param_type, _) => ParamValue::empty(param_type),
    }
}

/// A reference names an action or a resolver, not both; false (reported)
/// when it does not.
fn check_reference(reference: &StepActionRef, at: &str, errors: &mut ValidationErrors) -> bool {
    match (reference.name.is_empty(), reference.resolver) {
        (true, None) => errors.push(
            format!("{at}.ref.name"),
            "a step action reference needs a name or a resolver",
        ),
        (false, Some(_)) => errors.push(
            format!("{at}.ref"),
            format!("ref names {:?} and a resolver: give one", reference.name),
        ),
        (true, Some(_)) | (false, None) => return true,
    }
    false
}

/// Writes the action's fields into `step`, its params substituted.
fn apply_action(
    step: &mut Step,
    action: &StepActionSpec,
    (params, whole): (&BTreeMap<String, ParamValue>, WholeReferences<'_>),
    at: &str,
    limits: &Limits,
    errors: &mut ValidationErrors,
) {
    let vars = ActionVariables {
        task: params_only(params, limits),
        references: whole.references,
        missing_keys: whole.missing_keys,
    };
    step.params.clear();
    step.image = Some(substitute_str(&action.image, &vars, &format!("{at}.image"), errors));
    step.script = action.script.clone();
    substitute_opt(&mut step.script, &vars, &format!("{at}.script"), errors);
    step.command = substitute_list(&action.command, &vars, &format!("{at}.command"), errors);
    step.args = substitute_list(&action.args, &vars, &format!("{at}.args"), errors);
    step.env = action.env.clone();
    for (index, var) in step.env.iter_mut().enumerate() {
        substitute_opt(&mut var.value, &vars, &format!("{at}.env[{index}].value"), errors);
    }
    step.working_dir = action.working_dir.clone();
    substitute_opt(&mut step.working_dir, &vars, &format!("{at}.workingDir"), errors);
    step.security_context = action.security_context.clone();
    step.volume_mounts = action.volume_mounts.clone();
    for (index, mount) in step.volume_mounts.iter_mut().enumerate() {
        mount.name = substitute_str(&mount.name, &vars, &format!("{at}.volumeMounts[{index}].name"), errors);
    }
    step.results = action.results.clone();
}
