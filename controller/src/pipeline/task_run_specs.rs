//! A pipeline run's `taskRunSpecs`: per pipeline task, a service account
//! and pod settings over the run-wide ones. Checked before any task starts
//! (an entry for a task the pipeline lacks is an error, not ignored: it is
//! most likely a typo that would put a deploy under the wrong account).

use k8s_openapi::api::core::v1::ResourceRequirements;

use crate::api::{PipelineSpec, PipelineTaskRunSpec, PodTemplate, ResourcesOverride};
use crate::engine::duration::parse_duration;
use crate::engine::errors::ValidationErrors;
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
    }
}

/// The service account and pod template of `task`'s child run: the run's,
/// with the task's entry over them.
pub fn child_run_settings(
    task: &str,
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
    let template = match (run_template, &entry.pod_template) {
        (Some(base), Some(over)) => Some(merged(base, over)),
        (base, over) => over.clone().or_else(|| base.cloned()),
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

        let (account, template) = child_run_settings("deploy", Some(&run_account), Some(&run_template), &given);
        assert_eq!(account.as_deref(), Some("deployer"));
        let template = template.expect("a template");
        assert_eq!(template.node_selector, on_nodes("deploy").node_selector);
        assert_eq!(template.host_network, Some(true));
        assert_eq!(template.priority_class_name.as_deref(), Some("ci"), "kept from the run");

        let (account, template) = child_run_settings("build", Some(&run_account), Some(&run_template), &given);
        assert_eq!((account.as_deref(), template), (Some("builder"), Some(run_template)));

        let only_account = [entry("deploy", Some("deployer"), None)];
        let (account, template) = child_run_settings("deploy", None, None, &only_account);
        assert_eq!((account.as_deref(), template), (Some("deployer"), None));
    }
}
