//! Structural checks of a task and of the inputs a run gives it.
//! Reference checks happen during substitution (see `resolve`).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Volume, VolumeMount};

use crate::api::{
    Param, ParamSpec, ParamType, ParamValue, PropertySpec, ResultSpec, Sidecar, Step, StepTemplate, TaskRunSpec,
    TaskSpec, WorkspaceBinding, WorkspaceUsage,
};

use super::duration::parse_duration;
use super::errors::ValidationErrors;

/// Container names are DNS labels: 63 characters; steps get a `step-` prefix.
pub const MAX_STEP_NAME_LEN: usize = 63 - "step-".len();

/// Sidecar containers get a `sidecar-` prefix.
pub const MAX_SIDECAR_NAME_LEN: usize = 63 - "sidecar-".len();

/// Volume names the pod renderer uses itself.
pub const RESERVED_VOLUME_PREFIX: &str = "cicd-";

/// True for a DNS-1123 label: lowercase letters, digits and `-`, starting
/// and ending with a letter or digit.
pub fn is_dns_label(name: &str, max_len: usize) -> bool {
    !name.is_empty()
        && name.len() <= max_len
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// True for a DNS-1123 subdomain, the form of most object names: labels
/// as above joined by dots, at most 253 bytes in all.
pub fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(|label| is_dns_label(label, 63))
}

/// Param, result and workspace names: letters, digits, `_` and `-`,
/// not starting with a digit or `-` (dots would be ambiguous in `$(...)`).
pub fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn check_names<'a>(names: impl Iterator<Item = &'a str>, field: &str, what: &str, errors: &mut ValidationErrors) {
    let mut seen = BTreeSet::new();
    for (index, name) in names.enumerate() {
        let at = format!("{field}[{index}].name");
        if !is_variable_name(name) {
            errors.push(
                &at,
                format!(
                    "{what} name {name:?} is invalid: use letters, digits, '_' and '-', starting with a letter or '_'"
                ),
            );
        }
        if !seen.insert(name) {
            errors.push(&at, format!("duplicate {what} name {name:?}"));
        }
    }
}

/// Entries that each name one of `known` (the `what`s of the `owner`),
/// none twice, as `stepSpecs` name steps and `taskRunSpecs` pipeline
/// tasks; `names` are (the name's field, the name).
pub fn check_known_names<'a>(
    names: impl Iterator<Item = (String, &'a str)>,
    (owner, what): (&str, &str),
    known: &[&str],
    errors: &mut ValidationErrors,
) {
    let mut seen = BTreeSet::new();
    for (at, name) in names {
        if !known.contains(&name) {
            errors.push(
                at,
                format!(
                    "the {owner} has no {what} named {name:?} ({what}s: {})",
                    list_or_none(known)
                ),
            );
        } else if !seen.insert(name) {
            errors.push(at, format!("{what} {name:?} is given twice"));
        }
    }
}

/// The declared default of a param, if it has one. `hasDefault: true`
/// without `default` means the empty value of the param's type.
pub fn declared_default(spec: &ParamSpec) -> Option<ParamValue> {
    match (&spec.default, spec.has_default) {
        (Some(value), _) => Some(value.clone()),
        (None, Some(true)) => Some(ParamValue::empty(spec.param_type)),
        (None, _) => None,
    }
}

/// The keys `properties` declares that `object` lacks, in order.
pub fn missing_keys<'a>(
    properties: &'a BTreeMap<String, PropertySpec>,
    object: &BTreeMap<String, String>,
) -> Vec<&'a str> {
    properties
        .keys()
        .filter(|key| !object.contains_key(*key))
        .map(String::as_str)
        .collect()
}

/// An object value with the keys it lacks taken from the param's object
/// default, as Tekton merges a partial object param; any other value as
/// given.
fn with_default_keys(spec: &ParamSpec, value: &ParamValue) -> ParamValue {
    match (value, declared_default(spec)) {
        (ParamValue::Object(given), Some(ParamValue::Object(mut merged))) => {
            merged.extend(given.iter().map(|(k, v)| (k.clone(), v.clone())));
            ParamValue::Object(merged)
        }
        _ => value.clone(),
    }
}

fn check_object_keys(spec: &ParamSpec, value: &ParamValue, field: &str, errors: &mut ValidationErrors) {
    if let (Some(properties), ParamValue::Object(object)) = (&spec.properties, value) {
        let missing = missing_keys(properties, object);
        if !missing.is_empty() {
            errors.push(
                field,
                format!("object param {:?} is missing key(s) {}", spec.name, missing.join(", ")),
            );
        }
    }
}

/// The pod volumes besides the task's own that its steps may mount: the
/// run's `podTemplate.volumes`, or Unknown where no run is at hand (a
/// pipeline's inline taskSpec, whose runs get theirs later): mounts are
/// then checked when each run starts.
#[derive(Debug, Clone, Copy)]
pub enum RunVolumes<'a> {
    Known(&'a [Volume]),
    Unknown,
}

/// Checks a task on its own, whatever run uses it. `field` prefixes every
/// error (e.g. `spec` for a MyTask, `spec.taskSpec` when inline).
pub fn validate_task(task: &TaskSpec, field: &str, run_volumes: RunVolumes<'_>, errors: &mut ValidationErrors) {
    check_declared_names(task, field, errors);
    check_param_specs(task, field, errors);
    check_result_specs(task, field, errors);
    check_workspace_paths(task, field, errors);
    check_sidecars(task, field, errors);
    let mut volume_names = check_volumes(task, field, errors);
    let volume_names = match run_volumes {
        RunVolumes::Known(volumes) => {
            volume_names.extend(volumes.iter().map(|v| v.name.as_str()));
            Some(volume_names)
        }
        RunVolumes::Unknown => None,
    };
    check_step_template_mounts(task, field, volume_names.as_ref(), errors);
    check_steps(task, field, volume_names.as_ref(), errors);
    check_step_results(task, field, errors);
    check_isolated_workspaces(task, field, errors);
}

/// The index of the step `name` names: the step's own name, or Tekton's
/// container form `step-<name>`.
pub fn step_index(steps: &[&str], name: &str) -> Option<usize> {
    let position = |wanted: &str| steps.iter().position(|step| *step == wanted);
    position(name).or_else(|| name.strip_prefix("step-").and_then(position))
}

/// `step_index`, or an error listing the steps.
pub fn find_step(steps: &[&str], name: &str) -> Result<usize, String> {
    step_index(steps, name).ok_or_else(|| format!("no step named {name:?} (steps: {})", list_or_none(steps)))
}

/// Ok when step `step` declares step result `result` among `declared`;
/// else an error listing what it declares.
pub fn check_declared_step_result(step: &str, declared: &[&str], result: &str) -> Result<(), String> {
    if declared.contains(&result) {
        return Ok(());
    }
    Err(format!(
        "step {step:?} declares no step result {result:?} (declared: {})",
        list_or_none(declared)
    ))
}

/// `steps.<s>.results.<r>` as (`<s>`, `<r>`).
pub fn parse_step_result_ref(expr: &str) -> Option<(&str, &str)> {
    match parse_step_result_part(expr)? {
        (step, result, "") => Some((step, result)),
        _ => None,
    }
}

/// `steps.<s>.results.<r><selector>` as (`<s>`, `<r>`, `<selector>`): the
/// selector is empty, `[*]`, `[i]` or `.key` (checked by
/// `check_step_result_selector`). A step result's name ends at the first
/// `.` or `[`.
pub fn parse_step_result_part(expr: &str) -> Option<(&str, &str, &str)> {
    let (step, named) = expr.strip_prefix("steps.")?.split_once(".results.")?;
    let end = named.find(['.', '[']).unwrap_or(named.len());
    let (result, selector) = named.split_at(end);
    let plain = |part: &str| !part.is_empty() && !part.contains(['.', '[', ']', '*']);
    (plain(step) && plain(result)).then_some((step, result, selector))
}

/// Whether `selector` fits the declared step result's type: Ok(true) for
/// `[*]` (every element, a whole item of command or args), Ok(false) for
/// one value, else an error saying how to refer to it.
pub fn check_step_result_selector(declared: &ResultSpec, selector: &str) -> Result<bool, String> {
    let name = &declared.name;
    let index = selector
        .strip_prefix('[')
        .and_then(|i| i.strip_suffix(']'))
        .filter(|i| *i == "*" || i.parse::<usize>().is_ok());
    let key = selector.strip_prefix('.').filter(|k| !k.is_empty());
    match (declared.result_type, selector, index, key) {
        (ParamType::String, "", _, _) => Ok(false),
        (ParamType::Array, _, Some("*"), _) => Ok(true),
        (ParamType::Array, _, Some(_), _) => Ok(false),
        (ParamType::Object, _, _, Some(key)) => match &declared.properties {
            Some(properties) if !properties.contains_key(key) => Err(format!(
                "step result {name:?} declares no key {key:?} (properties: {})",
                list_or_none(&properties.keys().map(String::as_str).collect::<Vec<_>>())
            )),
            _ => Ok(false),
        },
        (ParamType::Array, _, _, _) => Err(format!(
            "step result {name:?} is an array: take every element with [*] (as a whole item of command or args) or one with [<index>]"
        )),
        (ParamType::Object, _, _, _) => Err(format!("step result {name:?} is an object: take one key with .<key>")),
        (ParamType::String, _, _, _) => Err(format!(
            "step result {name:?} is a string: refer to it whole, without {selector:?}"
        )),
    }
}

/// Where a task result's `value` comes from: (the step's index, its step
/// result). The value must be exactly `$(steps.<s>.results.<r>)` of a
/// step result the task declares.
pub fn result_value_source<'a>(task: &TaskSpec, value: &'a str) -> Result<(usize, &'a str), String> {
    let (step, result) = value
        .strip_prefix("$(")
        .and_then(|inner| inner.strip_suffix(')'))
        .and_then(parse_step_result_ref)
        .ok_or_else(|| format!("value {value:?} must be exactly one reference $(steps.<step>.results.<result>)"))?;
    let names: Vec<&str> = task.steps.iter().map(|s| s.name.as_str()).collect();
    let index = find_step(&names, step)?;
    // A step action's step results are known once it is inlined (a
    // pipeline's inline taskSpec is checked before): checked then.
    if task.steps[index].step_ref.is_none() {
        let declared: Vec<&str> = task.steps[index].results.iter().map(|r| r.name.as_str()).collect();
        check_declared_step_result(step, &declared, result)?;
    }
    Ok((index, result))
}

/// Step results: valid, unique names without a `value`; and a task
/// result's `value` names a step result that exists, of the same type.
fn check_step_results(task: &TaskSpec, field: &str, errors: &mut ValidationErrors) {
    for (index, step) in task.steps.iter().enumerate() {
        let at = format!("{field}.steps[{index}].results");
        check_names(step.results.iter().map(|r| r.name.as_str()), &at, "step result", errors);
        for (result_index, result) in step.results.iter().enumerate() {
            if result.value.is_some() {
                errors.push(
                    format!("{at}[{result_index}].value"),
                    format!(
                        "a step result's value is what the step writes to $(step.results.{}.path); value belongs on a task result",
                        result.name
                    ),
                );
            }
        }
    }
    for (index, result) in task.results.iter().enumerate() {
        let Some(value) = &result.value else { continue };
        let at = format!("{field}.results[{index}].value");
        match result_value_source(task, value) {
            Ok((step, source)) => {
                let declared = task.steps[step].results.iter().find(|r| r.name == source);
                if let Some(declared) = declared.filter(|d| d.result_type != result.result_type) {
                    errors.push(
                        &at,
                        format!(
                            "result {:?} is of type {} but step result {source:?} is of type {}",
                            result.name, result.result_type, declared.result_type
                        ),
                    );
                }
            }
            Err(why) => errors.push(&at, why),
        }
    }
}

/// Params, results and workspaces: valid, unique names.
fn check_declared_names(task: &TaskSpec, field: &str, errors: &mut ValidationErrors) {
    check_names(
        task.params.iter().map(|p| p.name.as_str()),
        &format!("{field}.params"),
        "param",
        errors,
    );
    check_names(
        task.results.iter().map(|r| r.name.as_str()),
        &format!("{field}.results"),
        "result",
        errors,
    );
    check_names(
        task.workspaces.iter().map(|w| w.name.as_str()),
        &format!("{field}.workspaces"),
        "workspace",
        errors,
    );
}

/// Each declared param: its default matches its type and keys.
fn check_param_specs(task: &TaskSpec, field: &str, errors: &mut ValidationErrors) {
    for (index, param) in task.params.iter().enumerate() {
        let at = format!("{field}.params[{index}]");
        if param.default.is_some() && param.has_default == Some(false) {
            errors.push(
                format!("{at}.hasDefault"),
                format!(
                    "param {:?} has a default but hasDefault is false; remove one of them",
                    param.name
                ),
            );
        }
        // An object default may lack keys that the run's value gives
        // (Tekton merges the two): those are checked when a run resolves it.
        if let Some(default) = &param.default
            && default.param_type() != param.param_type
        {
            errors.push(
                format!("{at}.default"),
                format!(
                    "param {:?} is of type {} but its default is {}",
                    param.name,
                    param.param_type,
                    default.param_type()
                ),
            );
        }
        if param.properties.is_some() && param.param_type != ParamType::Object {
            errors.push(
                format!("{at}.properties"),
                format!(
                    "param {:?} has properties but is of type {}, not object",
                    param.name, param.param_type
                ),
            );
        }
    }
}

/// Each declared result: `properties` only on an object result.
fn check_result_specs(task: &TaskSpec, field: &str, errors: &mut ValidationErrors) {
    for (index, result) in task.results.iter().enumerate() {
        if result.properties.is_some() && result.result_type != ParamType::Object {
            errors.push(
                format!("{field}.results[{index}].properties"),
                format!(
                    "result {:?} has properties but is of type {}, not object",
                    result.name, result.result_type
                ),
            );
        }
    }
}

/// Workspace mount paths: absolute, not the pod's own, not shared.
fn check_workspace_paths(task: &TaskSpec, field: &str, errors: &mut ValidationErrors) {
    let mut mount_paths = BTreeSet::new();
    for (index, workspace) in task.workspaces.iter().enumerate() {
        let at = format!("{field}.workspaces[{index}].mountPath");
        let path = workspace
            .mount_path
            .clone()
            .unwrap_or_else(|| crate::layout::default_workspace_path(&workspace.name));
        let normalized = path.trim_end_matches('/');
        if !path.starts_with('/') {
            errors.push(
                &at,
                format!(
                    "mountPath {path:?} of workspace {:?} must be an absolute path",
                    workspace.name
                ),
            );
        } else if normalized == crate::layout::WORKSPACE_ROOT
            || normalized.is_empty()
            || crate::layout::is_reserved_path(normalized)
        {
            errors.push(
                &at,
                format!(
                    "mountPath {path:?} of workspace {:?} is used by the pod itself; pick another path",
                    workspace.name
                ),
            );
        } else if !mount_paths.insert(normalized.to_string()) {
            errors.push(
                &at,
                format!(
                    "mountPath {path:?} of workspace {:?} is used by another workspace",
                    workspace.name
                ),
            );
        }
    }
}

/// Isolated workspaces: every step and sidecar names only workspaces the
/// task declares, each once, and its own mountPath (if any) is absolute and
/// outside `/cicd`.
fn check_isolated_workspaces(task: &TaskSpec, field: &str, errors: &mut ValidationErrors) {
    let declared: Vec<(&str, String)> = task
        .workspaces
        .iter()
        .map(|w| {
            let path = w
                .mount_path
                .clone()
                .unwrap_or_else(|| crate::layout::default_workspace_path(&w.name));
            (w.name.as_str(), path.trim_end_matches('/').to_string())
        })
        .collect();
    let steps = task
        .steps
        .iter()
        .enumerate()
        .map(|(index, step)| (format!("{field}.steps[{index}]"), &step.workspaces));
    let sidecars = task
        .sidecars
        .iter()
        .enumerate()
        .map(|(index, sidecar)| (format!("{field}.sidecars[{index}]"), &sidecar.workspaces));
    for (at, usages) in steps.chain(sidecars) {
        check_workspace_usages(usages, &declared, &at, errors);
    }
}

/// `declared`: each workspace of the task with its mount path.
fn check_workspace_usages(
    usages: &[WorkspaceUsage],
    declared: &[(&str, String)],
    at: &str,
    errors: &mut ValidationErrors,
) {
    let mut seen = BTreeSet::new();
    for (index, usage) in usages.iter().enumerate() {
        let here = format!("{at}.workspaces[{index}]");
        if !declared.iter().any(|(name, _)| *name == usage.name) {
            let names: Vec<&str> = declared.iter().map(|(name, _)| *name).collect();
            errors.push(
                format!("{here}.name"),
                format!(
                    "workspace {:?} is not declared by the task (declared: {})",
                    usage.name,
                    list_or_none(&names)
                ),
            );
        } else if !seen.insert(usage.name.as_str()) {
            errors.push(
                format!("{here}.name"),
                format!("workspace {:?} is named twice", usage.name),
            );
        }
        let Some(path) = &usage.mount_path else { continue };
        if !path.starts_with('/') {
            errors.push(
                format!("{here}.mountPath"),
                format!("mountPath {path:?} must be an absolute path"),
            );
        } else if crate::layout::is_reserved_path(path) {
            errors.push(
                format!("{here}.mountPath"),
                format!("mountPath {path:?} is inside /cicd, which the pod itself uses; pick another path"),
            );
        } else if let Some((other, _)) = declared
            .iter()
            .find(|(name, declared_path)| *name != usage.name && declared_path == path.trim_end_matches('/'))
        {
            errors.push(
                format!("{here}.mountPath"),
                format!("mountPath {path:?} is where workspace {other:?} is mounted; pick another path"),
            );
        }
    }
}

/// A step's, the step template's or a sidecar's own mounts stay out of
/// `/cicd`; elsewhere (even at `/workspace`) they win over the implicit ones.
fn check_own_mount_paths(mounts: &[VolumeMount], at: &str, errors: &mut ValidationErrors) {
    for (index, mount) in mounts.iter().enumerate() {
        if crate::layout::is_reserved_path(&mount.mount_path) {
            errors.push(
                format!("{at}.volumeMounts[{index}].mountPath"),
                format!(
                    "mountPath {:?} is inside /cicd, which the pod itself uses; pick another path",
                    mount.mount_path
                ),
            );
        }
    }
}

/// Sidecars: valid unique names and an image.
fn check_sidecars(task: &TaskSpec, field: &str, errors: &mut ValidationErrors) {
    let mut sidecar_names = BTreeSet::new();
    for (
        index,
        Sidecar {
            container: sidecar,
            script,
            ..
        },
    ) in task.sidecars.iter().enumerate()
    {
        let at = format!("{field}.sidecars[{index}]");
        if script.is_some() && sidecar.command.as_ref().is_some_and(|c| !c.is_empty()) {
            errors.push(
                format!("{at}.script"),
                format!("sidecar {:?} has both a script and a command; use one", sidecar.name),
            );
        }
        if !is_dns_label(&sidecar.name, MAX_SIDECAR_NAME_LEN) {
            errors.push(
                format!("{at}.name"),
                format!(
                    "sidecar name {:?} is invalid: use at most {MAX_SIDECAR_NAME_LEN} lowercase letters, digits and '-', starting and ending with a letter or digit",
                    sidecar.name
                ),
            );
        }
        if !sidecar_names.insert(sidecar.name.as_str()) {
            errors.push(
                format!("{at}.name"),
                format!("duplicate sidecar name {:?}", sidecar.name),
            );
        }
        if sidecar.image.as_deref().is_none_or(str::is_empty) {
            errors.push(
                format!("{at}.image"),
                format!("sidecar {:?} has no image", sidecar.name),
            );
        }
        check_own_mount_paths(sidecar.volume_mounts.as_deref().unwrap_or_default(), &at, errors);
    }
}

/// Extra volumes: no reserved or duplicate names. Returns their names.
fn check_volumes<'a>(task: &'a TaskSpec, field: &str, errors: &mut ValidationErrors) -> BTreeSet<&'a str> {
    check_volume_names(&task.volumes, &format!("{field}.volumes"), &BTreeSet::new(), errors)
}

/// Pod volume names at `field` (`...volumes`): none with the pod's own
/// prefix, none given twice, none of `taken` (the task's own, for a run's
/// podTemplate volumes). Returns the names.
pub fn check_volume_names<'a>(
    volumes: &'a [Volume],
    field: &str,
    taken: &BTreeSet<&str>,
    errors: &mut ValidationErrors,
) -> BTreeSet<&'a str> {
    let mut names = BTreeSet::new();
    for (index, volume) in volumes.iter().enumerate() {
        let at = format!("{field}[{index}].name");
        let name = volume.name.as_str();
        if name.starts_with(RESERVED_VOLUME_PREFIX) {
            errors.push(
                &at,
                format!("volume name {name:?} is reserved (prefix {RESERVED_VOLUME_PREFIX:?})"),
            );
        } else if taken.contains(name) {
            errors.push(&at, format!("the task declares a volume {name:?} itself"));
        }
        if !names.insert(name) {
            errors.push(&at, format!("duplicate volume name {name:?}"));
        }
    }
    names
}

/// The step template mounts only declared volumes.
fn check_step_template_mounts(
    task: &TaskSpec,
    field: &str,
    volume_names: Option<&BTreeSet<&str>>,
    errors: &mut ValidationErrors,
) {
    if let Some(template) = &task.step_template {
        let at = format!("{field}.stepTemplate");
        check_own_mount_paths(&template.volume_mounts, &at, errors);
        check_mounted_volumes(&template.volume_mounts, "stepTemplate", &at, volume_names, errors);
    }
}

/// Each of `mounts` names a volume of the task or of the run's podTemplate
/// (when the run is known).
fn check_mounted_volumes(
    mounts: &[VolumeMount],
    who: &str,
    at: &str,
    volume_names: Option<&BTreeSet<&str>>,
    errors: &mut ValidationErrors,
) {
    let Some(volume_names) = volume_names else { return };
    for (mount_index, mount) in mounts.iter().enumerate() {
        if !volume_names.contains(mount.name.as_str()) {
            errors.push(
                format!("{at}.volumeMounts[{mount_index}].name"),
                format!(
                    "{who} mounts volume {:?}, which neither spec.volumes nor the run's podTemplate.volumes declares",
                    mount.name
                ),
            );
        }
    }
}

/// A literal `onError` must name a policy; one with `$(...)` is checked
/// once substituted (`resolve`).
fn check_on_error(on_error: Option<&str>, at: &str, errors: &mut ValidationErrors) {
    let Some(text) = on_error else { return };
    if !text.contains("$(") && crate::api::OnError::parse(text).is_none() {
        errors.push(
            format!("{at}.onError"),
            format!("onError is {text:?}; it must be \"continue\" or \"stopAndFail\""),
        );
    }
}

/// Steps: at least one; names, images, script or command, timeouts and mounts.
fn check_steps(task: &TaskSpec, field: &str, volume_names: Option<&BTreeSet<&str>>, errors: &mut ValidationErrors) {
    if task.steps.is_empty() {
        errors.push(format!("{field}.steps"), "a task needs at least one step");
    }
    let template = task.step_template.clone().unwrap_or_default();
    let mut step_names = BTreeSet::new();
    for (index, step) in task.steps.iter().enumerate() {
        let at = format!("{field}.steps[{index}]");
        if !is_dns_label(&step.name, MAX_STEP_NAME_LEN) {
            errors.push(
                format!("{at}.name"),
                format!(
                    "step name {:?} is invalid: use at most {MAX_STEP_NAME_LEN} lowercase letters, digits and '-', starting and ending with a letter or digit",
                    step.name
                ),
            );
        }
        if !step_names.insert(step.name.as_str()) {
            errors.push(format!("{at}.name"), format!("duplicate step name {:?}", step.name));
        }
        check_on_error(step.on_error.as_deref(), &at, errors);
        // A step action's fields are checked once inlined (see `step_action`).
        if step.step_ref.is_none() {
            check_container_fields(step, &template, &at, errors);
            if !step.params.is_empty() {
                errors.push(
                    format!("{at}.params"),
                    "params are the values of a step action's params, and this step has no ref",
                );
            }
        }
        if let Some(timeout) = &step.timeout
            && let Err(why) = parse_duration(timeout)
        {
            errors.push(format!("{at}.timeout"), why);
        }
        check_own_mount_paths(&step.volume_mounts, &at, errors);
        let who = format!("step {:?}", step.name);
        check_mounted_volumes(&step.volume_mounts, &who, &at, volume_names, errors);
    }
}

/// A plain step's image, and not both a script and a command.
fn check_container_fields(step: &Step, template: &StepTemplate, at: &str, errors: &mut ValidationErrors) {
    if step
        .image
        .as_deref()
        .or(template.image.as_deref())
        .is_none_or(str::is_empty)
    {
        errors.push(
            format!("{at}.image"),
            format!("step {:?} has no image (and stepTemplate sets none)", step.name),
        );
    }
    // Neither a script nor a command: the step runs its image's own
    // entrypoint, looked up in the registry when the attempt starts.
    if step.script.is_some() && !step.command.is_empty() {
        errors.push(
            format!("{at}.script"),
            format!("step {:?} sets both script and command; use one", step.name),
        );
    }
}

/// The params a run resolves to: its own values, else the defaults.
/// Reports undeclared, duplicate, mistyped and missing params.
pub fn resolve_params(
    declared: &[ParamSpec],
    given: &[Param],
    field: &str,
    errors: &mut ValidationErrors,
) -> BTreeMap<String, ParamValue> {
    let mut values = BTreeMap::new();
    let by_name: BTreeMap<&str, &ParamSpec> = declared.iter().map(|p| (p.name.as_str(), p)).collect();
    for (index, param) in given.iter().enumerate() {
        let at = format!("{field}[{index}]");
        let Some(spec) = by_name.get(param.name.as_str()) else {
            let known: Vec<&str> = by_name.keys().copied().collect();
            errors.push(
                format!("{at}.name"),
                format!(
                    "param {:?} is not declared (declared: {})",
                    param.name,
                    list_or_none(&known)
                ),
            );
            continue;
        };
        if values.contains_key(&param.name) {
            errors.push(format!("{at}.name"), format!("param {:?} is given twice", param.name));
            continue;
        }
        if param.value.param_type() != spec.param_type {
            errors.push(
                format!("{at}.value"),
                format!(
                    "param {:?} is declared as {} but the value given is {}",
                    param.name,
                    spec.param_type,
                    param.value.param_type()
                ),
            );
            // Stand in the empty value of the declared type, so every use
            // of the param is not reported again as undeclared.
            values.insert(param.name.clone(), ParamValue::empty(spec.param_type));
            continue;
        }
        let value = with_default_keys(spec, &param.value);
        check_object_keys(spec, &value, &format!("{at}.value"), errors);
        values.insert(param.name.clone(), value);
    }
    for spec in declared {
        if values.contains_key(&spec.name) || given.iter().any(|p| p.name == spec.name) {
            continue;
        }
        match declared_default(spec) {
            Some(default) => {
                let missing = match (&spec.properties, &default) {
                    (Some(properties), ParamValue::Object(object)) => missing_keys(properties, object),
                    _ => Vec::new(),
                };
                if !missing.is_empty() {
                    errors.push(
                        field,
                        format!(
                            "object param {:?} is not given and its default is missing key(s) {}",
                            spec.name,
                            missing.join(", ")
                        ),
                    );
                }
                values.insert(spec.name.clone(), default);
            }
            None => errors.push(
                field,
                format!(
                    "param {:?} is required (it has no default) but was not given",
                    spec.name
                ),
            ),
        }
    }
    values
}

pub fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// True when a `subPath` would leave its volume: absolute, or with a `..`.
pub fn sub_path_escapes(sub_path: &str) -> bool {
    sub_path.starts_with('/') || sub_path.split('/').any(|part| part == "..")
}

/// Checks one workspace binding on its own: one source, a sane subPath.
pub fn validate_binding(binding: &WorkspaceBinding, field: &str, errors: &mut ValidationErrors) {
    let sources = binding.sources();
    match sources.len() {
        1 => {}
        0 => errors.push(
            field,
            format!(
                "workspace binding {:?} has no volume source (set one of emptyDir, persistentVolumeClaim, volumeClaimTemplate, configMap, secret)",
                binding.name
            ),
        ),
        _ => errors.push(
            field,
            format!("workspace binding {:?} sets {} sources ({}); set exactly one", binding.name, sources.len(), sources.join(", ")),
        ),
    }
    if let Some(sub_path) = &binding.sub_path
        && sub_path_escapes(sub_path)
    {
        errors.push(
            format!("{field}.subPath"),
            format!(
                "subPath {sub_path:?} of workspace {:?} must be relative and must not contain '..'",
                binding.name
            ),
        );
    }
}

/// Checks what a run says apart from its task: one task source, a valid
/// timeout, bindings that are well formed and not repeated.
pub fn validate_run_spec(spec: &TaskRunSpec, errors: &mut ValidationErrors) {
    let sources = [
        spec.task_ref.is_some(),
        spec.task_spec.is_some(),
        spec.remote_task.is_some(),
    ];
    match sources.iter().filter(|set| **set).count() {
        0 => errors.push(
            "spec.taskRef",
            "set taskRef (the name of a MyTask), an inline taskSpec or a remoteTask",
        ),
        1 if spec.task_ref.as_deref() == Some("") => errors.push("spec.taskRef", "taskRef is empty"),
        1 => {}
        _ => errors.push(
            "spec.taskRef",
            "set one of taskRef, taskSpec and remoteTask, not several",
        ),
    }
    if let Some(timeout) = &spec.timeout
        && let Err(why) = parse_duration(timeout)
    {
        errors.push("spec.timeout", why);
    }
    let account = spec.service_account();
    if !is_dns_subdomain(account) {
        // Quoted at most 253 characters long: the longest name there is.
        let shown: String = account.chars().take(253).collect();
        let cut = if shown.len() < account.len() { "..." } else { "" };
        errors.push(
            "spec.serviceAccountName",
            format!(
                "{shown:?}{cut} is not a ServiceAccount name (lowercase letters, digits, '-' and '.', at most 253)"
            ),
        );
    }
    let mut seen = BTreeSet::new();
    for (index, binding) in spec.workspaces.iter().enumerate() {
        let at = format!("spec.workspaces[{index}]");
        validate_binding(binding, &at, errors);
        if !seen.insert(binding.name.as_str()) {
            errors.push(
                format!("{at}.name"),
                format!("workspace {:?} is bound twice", binding.name),
            );
        }
    }
}
