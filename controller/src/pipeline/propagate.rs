//! Pipeline params that reach a pipeline task's inline `taskSpec` without
//! the task passing them (Tekton's implicit propagation). Precedence, inner
//! scope first: a param the pipeline task passes itself, then the
//! pipeline's value (the run's, else the pipeline's default), then the
//! taskSpec's own default.

use std::collections::{BTreeMap, BTreeSet};

use crate::api::{Param, ParamValue, PipelineTask, TaskSpec};
use crate::engine::refs::scan;

/// The names a task spec reads as `$(params.NAME...)` anywhere in its text.
pub fn referenced_params(spec: &TaskSpec) -> BTreeSet<String> {
    // Every text of the spec (scripts, args, env, volumes, ...) is in its JSON form.
    let text = serde_json::to_string(spec).unwrap_or_default();
    scan(&text)
        .into_iter()
        .filter_map(|found| {
            let rest = found.expr.strip_prefix("params.")?;
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            Some(rest[..end].to_string())
        })
        .collect()
}

/// The params propagated to `task`: for an inline taskSpec, every pipeline
/// param it reads or declares that the task does not pass itself. None for
/// a task referenced by name, which gets only what the task passes.
pub fn propagated_params(task: &PipelineTask, pipeline_params: &BTreeMap<String, ParamValue>) -> Vec<Param> {
    let Some(spec) = &task.task_spec else {
        return Vec::new();
    };
    let mut wanted = referenced_params(spec);
    wanted.extend(spec.params.iter().map(|p| p.name.clone()));
    let from_matrix = super::matrix::param_names(task);
    wanted
        .into_iter()
        .filter(|name| !task.params.iter().any(|p| &p.name == name))
        .filter(|name| !from_matrix.contains(name.as_str()))
        .filter_map(|name| {
            let value = pipeline_params.get(&name)?.clone();
            Some(Param { name, value })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ParamSpec, Step};

    fn text(value: &str) -> ParamValue {
        ParamValue::String(value.into())
    }

    fn inline_task(script: &str, declares: &[&str]) -> PipelineTask {
        PipelineTask {
            name: "t".into(),
            task_spec: Some(TaskSpec {
                params: declares
                    .iter()
                    .map(|name| ParamSpec {
                        name: (*name).into(),
                        default: Some(text("inner default")),
                        ..ParamSpec::default()
                    })
                    .collect(),
                steps: vec![Step {
                    name: "s".into(),
                    script: Some(script.into()),
                    ..Step::default()
                }],
                ..TaskSpec::default()
            }),
            ..PipelineTask::default()
        }
    }

    #[test]
    fn an_inline_task_gets_the_pipeline_params_it_reads_or_declares() {
        let pipeline = BTreeMap::from([
            ("read".to_string(), text("r")),
            ("declared".to_string(), text("d")),
            ("unused".to_string(), text("u")),
        ]);
        let task = inline_task("echo $(params.read) $(params.missing)", &["declared"]);
        let propagated = propagated_params(&task, &pipeline);
        let names: Vec<(&str, &ParamValue)> = propagated.iter().map(|p| (p.name.as_str(), &p.value)).collect();
        assert_eq!(names, vec![("declared", &text("d")), ("read", &text("r"))]);
    }

    #[test]
    fn a_param_the_task_passes_itself_is_not_overridden() {
        let pipeline = BTreeMap::from([("who".to_string(), text("pipeline"))]);
        let mut task = inline_task("echo $(params.who)", &[]);
        task.params.push(Param {
            name: "who".into(),
            value: text("task"),
        });
        assert!(propagated_params(&task, &pipeline).is_empty());
    }

    #[test]
    fn a_referenced_task_gets_nothing_implicitly() {
        let pipeline = BTreeMap::from([("who".to_string(), text("pipeline"))]);
        let task = PipelineTask {
            name: "t".into(),
            task_ref: Some("named".into()),
            ..PipelineTask::default()
        };
        assert!(propagated_params(&task, &pipeline).is_empty());
    }
}
