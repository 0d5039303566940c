//! What reaches a pipeline task's inline `taskSpec` without being declared
//! or passed (Tekton's implicit propagation).
//!
//! Params: precedence, inner scope first: a param the pipeline task passes
//! itself, then the pipeline's value (the run's, else the pipeline's
//! default), then the taskSpec's own default. An object param is taken key
//! by key in that order, so a task may pass only the keys it changes.
//!
//! Workspaces: for a run's embedded `pipelineSpec`, a workspace the run
//! binds is the pipeline's even when undeclared; in any pipeline, an inline
//! taskSpec that reads `$(workspaces.NAME...)` of a pipeline workspace it
//! neither declares nor is given gets it, under the same name.
//!
//! Results: an inline taskSpec that reads `$(tasks.T.results.R)` (or `[*]`,
//! `[i]`) itself gets it as a param the pipeline task passes, so the
//! scheduler orders, checks and substitutes it as any other param.

use std::collections::{BTreeMap, BTreeSet};

use crate::api::{
    Param, ParamSpec, ParamType, ParamValue, PipelineSpec, PipelineTask, PipelineTaskWorkspace,
    PipelineWorkspaceDeclaration, TaskSpec, WorkspaceBinding, WorkspaceDeclaration,
};
use crate::engine::refs::scan;

use super::refs::{TaskVariable, is_artifact_category, parse_task_variable};

/// The names a task spec reads as `$(params.NAME...)` anywhere in its text.
pub fn referenced_params(spec: &TaskSpec) -> BTreeSet<String> {
    referenced(spec, "params.")
}

/// The names a task spec reads as `$(<prefix>NAME...)` anywhere in its text.
fn referenced(spec: &TaskSpec, prefix: &str) -> BTreeSet<String> {
    // Every text of the spec (scripts, args, env, volumes, ...) is in its JSON form.
    let text = serde_json::to_string(spec).unwrap_or_default();
    scan(&text)
        .into_iter()
        .filter_map(|found| {
            let rest = found.expr.strip_prefix(prefix)?;
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            Some(rest[..end].to_string())
        })
        .collect()
}

/// A run's embedded pipelineSpec with the workspaces its run binds and the
/// results its inline taskSpecs read propagated (see the module comment).
pub fn with_propagated_workspaces(spec: &PipelineSpec, bound: &[WorkspaceBinding]) -> PipelineSpec {
    let mut spec = spec.clone();
    for binding in bound {
        if !spec.workspaces.iter().any(|w| w.name == binding.name) {
            spec.workspaces.push(PipelineWorkspaceDeclaration {
                name: binding.name.clone(),
                ..Default::default()
            });
        }
    }
    let pipeline_workspaces: BTreeSet<String> = spec.workspaces.iter().map(|w| w.name.clone()).collect();
    for task in spec.tasks.iter_mut().chain(spec.finally.iter_mut()) {
        with_implicit_result_params(task);
        let Some(task_spec) = task.task_spec.as_mut() else {
            continue;
        };
        for name in referenced(task_spec, "workspaces.") {
            let declared = task_spec.workspaces.iter().any(|w| w.name == name);
            let given = task.workspaces.iter().any(|w| w.name == name);
            if declared || given || !pipeline_workspaces.contains(&name) {
                continue;
            }
            task_spec.workspaces.push(WorkspaceDeclaration {
                name: name.clone(),
                ..Default::default()
            });
            task.workspaces.push(PipelineTaskWorkspace {
                name: name.clone(),
                workspace: Some(name),
                sub_path: None,
            });
        }
    }
    spec
}

/// A pipeline named by reference (or fetched): as Tekton does, its inline
/// taskSpecs get the workspaces the pipeline itself declares when they read
/// them without declaring them; a workspace the run binds beyond those is
/// not the pipeline's and stays out.
pub fn with_declared_workspaces_propagated(spec: &PipelineSpec) -> PipelineSpec {
    with_propagated_workspaces(spec, &[])
}

/// Each `$(tasks.T.results.R...)` an inline taskSpec reads (but `.key` of
/// an object, which stays an error) becomes `$(params.P...)`, P a param
/// the taskSpec declares (an array when read with `[*]` or `[i]`) and the
/// pipeline task passes as `$(tasks.T.results.R)`.
fn with_implicit_result_params(task: &mut PipelineTask) {
    let Some(spec) = task.task_spec.as_ref() else {
        return;
    };
    // The references' characters need no JSON escaping, so the JSON text
    // of the spec is rewritten in place and read back.
    let Ok(text) = serde_json::to_string(spec) else {
        return;
    };
    let mut taken: BTreeSet<String> = spec.params.iter().map(|p| p.name.clone()).collect();
    taken.extend(task.params.iter().map(|p| p.name.clone()));
    let mut implicit: BTreeMap<(String, String), (String, bool)> = BTreeMap::new();
    let mut rewritten = String::with_capacity(text.len());
    let mut last = 0;
    for found in scan(&text) {
        let Some(Ok(TaskVariable::Result {
            task: from,
            result,
            selector,
        })) = found.expr.strip_prefix("tasks.").map(parse_task_variable)
        else {
            continue;
        };
        if selector.starts_with('.') {
            continue;
        }
        let (name, array) = implicit
            .entry((from.to_string(), result.to_string()))
            .or_insert_with(|| (fresh_name(&implicit_param_base(from, result), &mut taken), false));
        *array |= !selector.is_empty();
        rewritten.push_str(&text[last..found.start]);
        rewritten.push_str(&format!("$(params.{name}{selector})"));
        last = found.end;
    }
    if implicit.is_empty() {
        return;
    }
    rewritten.push_str(&text[last..]);
    let Ok(mut spec) = serde_json::from_str::<TaskSpec>(&rewritten) else {
        return;
    };
    for ((from, result), (name, array)) in implicit {
        let (param_type, whole) = if array {
            (ParamType::Array, "[*]")
        } else {
            (ParamType::String, "")
        };
        spec.params.push(ParamSpec {
            name: name.clone(),
            param_type,
            ..Default::default()
        });
        let reference = match is_artifact_category(&result) {
            true => format!("$(tasks.{from}.{result})"),
            false => format!("$(tasks.{from}.results.{result}{whole})"),
        };
        task.params.push(Param {
            name,
            value: ParamValue::String(reference),
        });
    }
    task.task_spec = Some(spec);
}

/// The name of the param standing for task `from`'s result `result` (or
/// artifact category `outputs.C` / `inputs.C`, whose dot a name cannot hold).
fn implicit_param_base(from: &str, result: &str) -> String {
    match is_artifact_category(result) {
        true => format!("tasks-{from}-{}", result.replace('.', "-")),
        false => format!("tasks-{from}-results-{result}"),
    }
}

/// `base`, or `base-2`, `base-3`, ... if taken; the name is then taken.
fn fresh_name(base: &str, taken: &mut BTreeSet<String>) -> String {
    let name = (1..)
        .map(|n| {
            if n == 1 {
                base.to_string()
            } else {
                format!("{base}-{n}")
            }
        })
        .find(|name| !taken.contains(name))
        .unwrap_or_else(|| base.to_string());
    taken.insert(name.clone());
    name
}

/// The params `task` gives its child: `given` (its own, substituted) with
/// what propagates to an inline taskSpec (see the module comment). An object
/// the task gives that has fewer keys than the pipeline's object of the same
/// name gets the others from it, the task's own keys winning (inner scope
/// first, key by key); when the taskSpec declares the object's properties,
/// only those.
pub fn with_propagated_params(
    task: &PipelineTask,
    mut given: Vec<Param>,
    pipeline_params: &BTreeMap<String, ParamValue>,
) -> Vec<Param> {
    let Some(spec) = &task.task_spec else {
        return given;
    };
    for param in &mut given {
        let (ParamValue::Object(own), Some(ParamValue::Object(outer))) =
            (&mut param.value, pipeline_params.get(&param.name))
        else {
            continue;
        };
        let properties = spec
            .params
            .iter()
            .find(|declared| declared.name == param.name)
            .and_then(|declared| declared.properties.as_ref());
        for (key, value) in outer {
            if properties.is_none_or(|properties| properties.contains_key(key)) {
                own.entry(key.clone()).or_insert_with(|| value.clone());
            }
        }
    }
    given.extend(propagated_params(task, pipeline_params));
    given
}

/// The params propagated to `task`: for an inline taskSpec, every pipeline
/// param it reads or declares that the task does not pass itself. None for
/// a task referenced by name, which gets only what the task passes.
fn propagated_params(task: &PipelineTask, pipeline_params: &BTreeMap<String, ParamValue>) -> Vec<Param> {
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
        let propagated = with_propagated_params(&task, Vec::new(), &pipeline);
        let names: Vec<(&str, &ParamValue)> = propagated.iter().map(|p| (p.name.as_str(), &p.value)).collect();
        assert_eq!(names, vec![("declared", &text("d")), ("read", &text("r"))]);
    }

    #[test]
    fn artifacts_an_inline_task_reads_become_params_it_is_passed() {
        let task = inline_task("check '$(tasks.build.outputs.image)'", &[]);
        let spec = PipelineSpec {
            tasks: vec![task],
            ..PipelineSpec::default()
        };
        let propagated = with_declared_workspaces_propagated(&spec);
        let task = &propagated.tasks[0];
        let task_spec = task.task_spec.as_ref().expect("inline");
        assert_eq!(
            task_spec.steps[0].script.as_deref(),
            Some("check '$(params.tasks-build-outputs-image)'")
        );
        assert_eq!(task.params[0].name, "tasks-build-outputs-image");
        assert_eq!(task.params[0].value, text("$(tasks.build.outputs.image)"));
        assert_eq!(task_spec.params[0].param_type, ParamType::String);
    }

    #[test]
    fn results_an_inline_task_reads_become_params_it_is_passed() {
        let mut task = inline_task(
            "echo $(tasks.make.results.uid) $(tasks.make.results.uid) $(tasks.list.results.files[0]) $(tasks.o.results.obj.key)",
            &["tasks-make-results-uid"],
        );
        task.params.push(Param {
            name: "tasks-list-results-files".into(),
            value: text("taken by the author"),
        });
        let spec = PipelineSpec {
            tasks: vec![task],
            ..PipelineSpec::default()
        };
        let propagated = with_declared_workspaces_propagated(&spec);
        let task = &propagated.tasks[0];
        let task_spec = task.task_spec.as_ref().expect("inline");
        assert_eq!(
            task_spec.steps[0].script.as_deref(),
            Some(
                "echo $(params.tasks-make-results-uid-2) $(params.tasks-make-results-uid-2) \
                 $(params.tasks-list-results-files-2[0]) $(tasks.o.results.obj.key)"
            ),
            "names already taken get a suffix; an object key stays as written"
        );
        let passed: Vec<(&str, &ParamValue)> = task.params.iter().map(|p| (p.name.as_str(), &p.value)).collect();
        assert_eq!(
            passed[1..],
            [
                ("tasks-list-results-files-2", &text("$(tasks.list.results.files[*])")),
                ("tasks-make-results-uid-2", &text("$(tasks.make.results.uid)")),
            ]
        );
        let declared: Vec<(&str, ParamType)> = task_spec.params[1..]
            .iter()
            .map(|p| (p.name.as_str(), p.param_type))
            .collect();
        assert_eq!(
            declared,
            [
                ("tasks-list-results-files-2", ParamType::Array),
                ("tasks-make-results-uid-2", ParamType::String)
            ]
        );
    }

    #[test]
    fn an_object_the_task_passes_gets_the_pipeline_object_s_other_keys() {
        let object = |pairs: &[(&str, &str)]| {
            ParamValue::Object(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
        };
        let pipeline = BTreeMap::from([(
            "repo".to_string(),
            object(&[("url", "outer.example"), ("commit", "abc123")]),
        )]);
        let mut task = inline_task(
            "echo $(params.repo.url) $(params.repo.commit) $(params.repo.branch)",
            &[],
        );
        task.params.push(Param {
            name: "repo".into(),
            value: object(&[("url", "inner.example"), ("branch", "main")]),
        });
        let params = with_propagated_params(&task, task.params.clone(), &pipeline);
        assert_eq!(
            params,
            vec![Param {
                name: "repo".into(),
                value: object(&[("url", "inner.example"), ("branch", "main"), ("commit", "abc123")]),
            }],
            "the task's own keys win; the pipeline's fill the rest"
        );
    }

    #[test]
    fn a_param_the_task_passes_itself_is_not_overridden() {
        let pipeline = BTreeMap::from([("who".to_string(), text("pipeline"))]);
        let mut task = inline_task("echo $(params.who)", &[]);
        task.params.push(Param {
            name: "who".into(),
            value: text("task"),
        });
        assert!(with_propagated_params(&task, Vec::new(), &pipeline).is_empty());
    }

    #[test]
    fn an_embedded_spec_gets_the_run_s_workspaces_where_its_inline_tasks_read_them() {
        let mut reader = inline_task("cat $(workspaces.source.path)/f $(workspaces.cache.path)", &[]);
        reader.name = "reader".into();
        let mut own = inline_task("ls $(workspaces.source.path)", &[]);
        own.name = "own".into();
        own.workspaces.push(PipelineTaskWorkspace {
            name: "source".into(),
            workspace: Some("other".into()),
            sub_path: None,
        });
        let spec = PipelineSpec {
            tasks: vec![reader, own],
            ..Default::default()
        };
        let bound = [WorkspaceBinding {
            name: "source".into(),
            ..Default::default()
        }];
        let propagated = with_propagated_workspaces(&spec, &bound);
        let declared: Vec<&str> = propagated.workspaces.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(
            declared,
            vec!["source"],
            "the run's binding is the pipeline's workspace"
        );
        let reader = &propagated.tasks[0];
        let given: Vec<(&str, Option<&str>)> = reader
            .workspaces
            .iter()
            .map(|w| (w.name.as_str(), w.workspace.as_deref()))
            .collect();
        assert_eq!(
            given,
            vec![("source", Some("source"))],
            "cache is no pipeline workspace"
        );
        let inline = reader.task_spec.as_ref().expect("inline");
        assert_eq!(inline.workspaces.len(), 1);
        assert_eq!(propagated.tasks[1], spec.tasks[1], "a task's own binding is left alone");
    }

    #[test]
    fn a_referenced_task_gets_nothing_implicitly() {
        let pipeline = BTreeMap::from([("who".to_string(), text("pipeline"))]);
        let task = PipelineTask {
            name: "t".into(),
            task_ref: Some("named".into()),
            ..PipelineTask::default()
        };
        assert!(with_propagated_params(&task, Vec::new(), &pipeline).is_empty());
    }
}
