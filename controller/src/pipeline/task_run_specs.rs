//! A pipeline run's `taskRunSpecs`: per pipeline task, a service account
//! and pod settings over the run-wide ones. Checked before any task starts
//! (an entry for a task the pipeline lacks is an error, not ignored: it is
//! most likely a typo that would put a deploy under the wrong account).

use k8s_openapi::api::core::v1::ResourceRequirements;

use crate::api::{Param, ParamValue, PipelineSpec, PipelineTask, PipelineTaskRunSpec, PodTemplate, ResourcesOverride};
use crate::engine::duration::parse_duration;
use crate::engine::errors::ValidationErrors;
use crate::engine::refs::scan;
use crate::engine::substitute::{Resolver, Value as Substituted, substitute_str};
use crate::engine::validate::check_known_names;

/// Every entry names a task of the pipeline, once.
pub fn check_task_run_specs(spec: &PipelineSpec, given: &[PipelineTaskRunSpec], errors: &mut ValidationErrors) {
    let tasks: Vec<&str> = spec.all_tasks().map(|t| t.name.as_str()).collect();
    let names = given.iter().enumerate().map(|(index, entry)| {
        (
            format!("spec.taskRunSpecs[{index}].pipelineTaskName"),
            entry.pipeline_task_name.as_str(),
        )
    });
    check_known_names(names, ("pipeline", "task"), &tasks, errors);
    for (index, entry) in given.iter().enumerate() {
        if let Some(timeout) = &entry.timeout
            && let Err(why) = parse_duration(timeout)
        {
            errors.push(format!("spec.taskRunSpecs[{index}].timeout"), why);
        }
        if let (Some(template), Some(task)) = (
            &entry.pod_template,
            spec.all_tasks().find(|t| t.name == entry.pipeline_task_name),
        ) {
            check_template_references(
                template,
                task,
                &format!("spec.taskRunSpecs[{index}].podTemplate"),
                errors,
            );
        }
    }
}

/// The string params a pipeline task passes its child runs, by name: its
/// own, its matrix's and its matrix includes' (a list param is one string
/// per child).
fn passed_string_params(task: &PipelineTask) -> Vec<&str> {
    let own = task
        .params
        .iter()
        .filter(|p| matches!(p.value, ParamValue::String(_)))
        .map(|p| p.name.as_str());
    let matrix = task.matrix.iter().flat_map(|m| {
        let includes = m.include.iter().flat_map(|i| i.params.iter());
        m.params.iter().chain(includes).map(|p| p.name.as_str())
    });
    own.chain(matrix).collect()
}

/// A taskRunSpecs pod template may read `$(params.<name>)` of the string
/// params its task passes (Tekton places each child of a matrix this way),
/// and nothing else: any other reference would reach the pod literally.
fn check_template_references(template: &PodTemplate, task: &PipelineTask, field: &str, errors: &mut ValidationErrors) {
    let passed = passed_string_params(task);
    for text in template_strings(template) {
        for found in scan(&text) {
            let known = found
                .expr
                .strip_prefix("params.")
                .is_some_and(|name| passed.contains(&name));
            if !known {
                errors.push(
                    field,
                    format!(
                        "$({}): a taskRunSpecs pod template can read only $(params.<name>) of the string params \
                         task {:?} passes (passed: {})",
                        found.expr,
                        task.name,
                        if passed.is_empty() {
                            "none".to_string()
                        } else {
                            passed.join(", ")
                        }
                    ),
                );
            }
        }
    }
}

/// Every string in a pod template (keys and values), as JSON gives them.
fn template_strings(template: &PodTemplate) -> Vec<String> {
    let mut out = Vec::new();
    // A typed PodTemplate always serializes; its depth is fixed by its type.
    if let Ok(mut value) = serde_json::to_value(template) {
        for_each_string(&mut value, &mut |text| out.push(text.clone()));
    }
    out
}

/// Calls `each` on every string of a JSON value, object keys included.
fn for_each_string(value: &mut serde_json::Value, each: &mut dyn FnMut(&mut String)) {
    match value {
        serde_json::Value::String(text) => each(text),
        serde_json::Value::Array(items) => items.iter_mut().for_each(|item| for_each_string(item, each)),
        serde_json::Value::Object(fields) => {
            for (mut key, mut item) in std::mem::take(fields) {
                each(&mut key);
                for_each_string(&mut item, each);
                fields.insert(key, item);
            }
        }
        _ => {}
    }
}

/// The child's string params, as references in its pod template see them.
struct ChildParams<'a>(&'a [Param]);

impl Resolver for ChildParams<'_> {
    fn lookup(&self, expr: &str) -> Result<Substituted, String> {
        let name = expr.strip_prefix("params.").ok_or("not a param")?;
        match self.0.iter().find(|p| p.name == name).map(|p| &p.value) {
            Some(ParamValue::String(value)) => Ok(Substituted::Str(value.clone())),
            _ => Err(format!("no string param {name:?}")),
        }
    }
}

/// `template` with `$(params.<name>)` in its strings (keys and values)
/// replaced by the child's own param values (`check_task_run_specs`
/// allowed only those).
fn with_child_params(template: &PodTemplate, params: &[Param]) -> PodTemplate {
    let Ok(mut value) = serde_json::to_value(template) else {
        return template.clone();
    };
    let mut ignored = ValidationErrors::default();
    for_each_string(&mut value, &mut |text| {
        *text = substitute_str(text, &ChildParams(params), "", &mut ignored);
    });
    serde_json::from_value(value).unwrap_or_else(|_| template.clone())
}

/// The service account and pod template of `task`'s child run with
/// `params`: the run's, with the task's entry over them (its pod template's
/// `$(params.<name>)` replaced by the child's values).
pub fn child_run_settings(
    task: &str,
    params: &[Param],
    run_service_account: Option<&String>,
    run_template: Option<&PodTemplate>,
    given: &[PipelineTaskRunSpec],
) -> (Option<String>, Option<PodTemplate>) {
    let Some(entry) = given.iter().find(|entry| entry.pipeline_task_name == task) else {
        return (run_service_account.cloned(), run_template.cloned());
    };
    let service_account = entry
        .service_account_name
        .clone()
        .or_else(|| run_service_account.cloned());
    let over = entry.pod_template.as_ref().map(|over| with_child_params(over, params));
    let template = match (run_template, over) {
        (Some(base), Some(over)) => Some(merged(base, &over)),
        (base, over) => over.or_else(|| base.cloned()),
    };
    (service_account, template)
}

/// The timeout `task`'s entry gives its child runs, over the task's own.
pub fn child_timeout_override<'a>(task: &str, given: &'a [PipelineTaskRunSpec]) -> Option<&'a String> {
    given
        .iter()
        .find(|entry| entry.pipeline_task_name == task)
        .and_then(|entry| entry.timeout.as_ref())
}

/// The `computeResources` of `task`'s child run, from its entry.
pub fn child_compute_resources(task: &str, given: &[PipelineTaskRunSpec]) -> Option<ResourceRequirements> {
    given
        .iter()
        .find(|entry| entry.pipeline_task_name == task)
        .and_then(|entry| entry.compute_resources.clone())
}

/// The `stepSpecs` and `sidecarSpecs` of `task`'s child run, from its entry.
pub fn child_resource_overrides(
    task: &str,
    given: &[PipelineTaskRunSpec],
) -> (Vec<ResourcesOverride>, Vec<ResourcesOverride>) {
    given
        .iter()
        .find(|entry| entry.pipeline_task_name == task)
        .map(|entry| (entry.step_specs.clone(), entry.sidecar_specs.clone()))
        .unwrap_or_default()
}

/// `over` unless it is empty.
fn list_or<T: Clone>(over: &[T], base: &[T]) -> Vec<T> {
    if over.is_empty() { base.to_vec() } else { over.to_vec() }
}

/// `over` with every field it leaves unset taken from `base`.
fn merged(base: &PodTemplate, over: &PodTemplate) -> PodTemplate {
    PodTemplate {
        node_selector: over.node_selector.clone().or_else(|| base.node_selector.clone()),
        tolerations: list_or(&over.tolerations, &base.tolerations),
        affinity: over.affinity.clone().or_else(|| base.affinity.clone()),
        security_context: over.security_context.clone().or_else(|| base.security_context.clone()),
        image_pull_secrets: list_or(&over.image_pull_secrets, &base.image_pull_secrets),
        host_network: over.host_network.or(base.host_network),
        priority_class_name: over
            .priority_class_name
            .clone()
            .or_else(|| base.priority_class_name.clone()),
        runtime_class_name: over
            .runtime_class_name
            .clone()
            .or_else(|| base.runtime_class_name.clone()),
        volumes: list_or(&over.volumes, &base.volumes),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::api::PipelineTask;

    fn pipeline(tasks: &[&str], finally: &[&str]) -> PipelineSpec {
        let task = |name: &&str| PipelineTask {
            name: name.to_string(),
            ..Default::default()
        };
        PipelineSpec {
            tasks: tasks.iter().map(task).collect(),
            finally: finally.iter().map(task).collect(),
            ..Default::default()
        }
    }

    fn entry(task: &str, account: Option<&str>, template: Option<PodTemplate>) -> PipelineTaskRunSpec {
        PipelineTaskRunSpec {
            pipeline_task_name: task.into(),
            service_account_name: account.map(Into::into),
            pod_template: template,
            ..Default::default()
        }
    }

    fn on_nodes(pool: &str) -> PodTemplate {
        PodTemplate {
            node_selector: Some(BTreeMap::from([("pool".to_string(), pool.to_string())])),
            ..Default::default()
        }
    }

    #[test]
    fn an_entry_for_a_missing_or_repeated_task_is_an_error_naming_it() {
        let spec = pipeline(&["build"], &["notify"]);
        let given = [
            entry("build", None, None),
            entry("notify", None, None),
            entry("deploy", None, None),
            entry("build", None, None),
        ];
        let mut errors = ValidationErrors::default();
        check_task_run_specs(&spec, &given, &mut errors);
        let found: Vec<(String, String)> = errors.0.iter().map(|e| (e.field.clone(), e.message.clone())).collect();
        assert_eq!(
            found,
            [
                (
                    "spec.taskRunSpecs[2].pipelineTaskName".to_string(),
                    "the pipeline has no task named \"deploy\" (tasks: build, notify)".to_string()
                ),
                (
                    "spec.taskRunSpecs[3].pipelineTaskName".to_string(),
                    "task \"build\" is given twice".to_string()
                ),
            ]
        );
    }

    #[test]
    fn a_task_s_entry_wins_field_by_field_over_the_run_s_settings() {
        let run_account = "builder".to_string();
        let mut run_template = on_nodes("general");
        run_template.priority_class_name = Some("ci".into());
        let mut deploy_template = on_nodes("deploy");
        deploy_template.host_network = Some(true);
        let given = [entry("deploy", Some("deployer"), Some(deploy_template))];

        let (account, template) = child_run_settings("deploy", &[], Some(&run_account), Some(&run_template), &given);
        assert_eq!(account.as_deref(), Some("deployer"));
        let template = template.expect("a template");
        assert_eq!(template.node_selector, on_nodes("deploy").node_selector);
        assert_eq!(template.host_network, Some(true));
        assert_eq!(template.priority_class_name.as_deref(), Some("ci"), "kept from the run");

        let (account, template) = child_run_settings("build", &[], Some(&run_account), Some(&run_template), &given);
        assert_eq!((account.as_deref(), template), (Some("builder"), Some(run_template)));

        let only_account = [entry("deploy", Some("deployer"), None)];
        let (account, template) = child_run_settings("deploy", &[], None, None, &only_account);
        assert_eq!((account.as_deref(), template), (Some("deployer"), None));
    }

    fn param(name: &str, value: &str) -> Param {
        Param {
            name: name.into(),
            value: ParamValue::String(value.into()),
        }
    }

    #[test]
    fn an_entry_s_pod_template_reads_the_child_s_params() {
        let mut template = on_nodes("$(params.pool)");
        template.priority_class_name = Some("ci-$(params.tier)".into());
        let given = [entry("build", None, Some(template))];
        let params = [param("pool", "arm64"), param("tier", "low")];
        let (_, template) = child_run_settings("build", &params, None, None, &given);
        let template = template.expect("a template");
        assert_eq!(template.node_selector, on_nodes("arm64").node_selector);
        assert_eq!(template.priority_class_name.as_deref(), Some("ci-low"));
    }

    #[test]
    fn an_entry_s_pod_template_may_read_only_params_its_task_passes() {
        let mut spec = pipeline(&["build"], &[]);
        spec.tasks[0].params = vec![param("tier", "low")];
        spec.tasks[0].matrix = Some(crate::api::Matrix {
            params: vec![Param {
                name: "pool".into(),
                value: ParamValue::Array(vec!["a".into(), "b".into()]),
            }],
            include: Vec::new(),
        });
        let mut template = on_nodes("$(params.pool)");
        template.priority_class_name = Some("$(params.tier)-$(params.zone)-$(tasks.x.results.y)".into());
        let mut errors = ValidationErrors::default();
        check_task_run_specs(&spec, &[entry("build", None, Some(template))], &mut errors);
        let found: Vec<(String, String)> = errors.0.iter().map(|e| (e.field.clone(), e.message.clone())).collect();
        let expected = |expr: &str| {
            (
                "spec.taskRunSpecs[0].podTemplate".to_string(),
                format!(
                    "$({expr}): a taskRunSpecs pod template can read only $(params.<name>) of the string params \
                     task \"build\" passes (passed: tier, pool)"
                ),
            )
        };
        assert_eq!(found, [expected("params.zone"), expected("tasks.x.results.y")]);
    }
}
