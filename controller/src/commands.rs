//! The offline commands: print the CRDs, render pods from YAML. They take
//! text and return text, so they are tested without a cluster.

use std::time::Duration;

use std::collections::BTreeMap;

use crate::api::{
    Condition, MyPipelineRun, MyTaskRun, ParamType, ParamValue, PipelineSpec, RunResult, TaskRunStatus, TaskSpec, crds,
};
use crate::manifests::{ManifestErrors, Manifests};
use crate::pipeline::propagate::{with_declared_workspaces_propagated, with_propagated_workspaces};
use crate::plan::{AttemptInputs, TaskSource, plan_task_run_with};
use crate::pod::render::RenderSettings;
use crate::reconcile::pipelinerun::{Action, Observed, PipelineLookup, decide};

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Manifest(#[from] ManifestErrors),
    #[error("no MyTaskRun found in the input")]
    NoRuns,
    /// Every problem of every run, one per line.
    #[error("{}", .0.join("\n"))]
    Invalid(Vec<String>),
    #[error("cannot write YAML: {0}")]
    Yaml(String),
    /// A file that is not UTF-8 text, with where the first bad byte is.
    #[error("{source_name}: not UTF-8 text at line {line}, byte {offset}")]
    Encoding {
        source_name: String,
        line: usize,
        offset: usize,
    },
    #[error("cannot read {source_name}: {message}")]
    Read { source_name: String, message: String },
}

/// What an offline command has to say: the YAML for stdout, the warnings
/// or errors for stderr, and whether it succeeded. Both binaries
/// (`cicd-controller` and `cicd`) print it the same way.
#[derive(Debug, Default)]
pub struct Printed {
    /// The output documents (empty on failure).
    pub stdout: String,
    /// One line per warning or error.
    pub stderr: Vec<String>,
    /// Exit 0 or 1.
    pub success: bool,
}

impl Printed {
    /// Writes stderr's lines, then stdout, and gives the exit code.
    pub fn print(self) -> std::process::ExitCode {
        for line in &self.stderr {
            eprintln!("{line}");
        }
        print!("{}", self.stdout);
        if self.success {
            std::process::ExitCode::SUCCESS
        } else {
            std::process::ExitCode::FAILURE
        }
    }

    fn failed(error: impl std::fmt::Display) -> Printed {
        Printed {
            stderr: vec![error.to_string()],
            ..Default::default()
        }
    }
}

/// Reads each file (`-` is stdin) as UTF-8 text, named by its path.
pub fn read_sources(files: &[std::path::PathBuf]) -> Result<Vec<(String, String)>, RenderError> {
    files
        .iter()
        .map(|file| {
            let (name, bytes) = if file.as_os_str() == "-" {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes).map(|_| ("stdin".to_string(), bytes))
            } else {
                std::fs::read(file).map(|bytes| (file.display().to_string(), bytes))
            }
            .map_err(|e| RenderError::Read {
                source_name: file.display().to_string(),
                message: e.to_string(),
            })?;
            source_text(&name, &bytes).map(|text| (name, text))
        })
        .collect()
}

/// `render -f FILE...`: the pods and claims the runs in the files would get.
pub fn render_files(files: &[std::path::PathBuf], settings: &RenderSettings, default_timeout: Duration) -> Printed {
    let rendered = read_sources(files).and_then(|inputs| render_yaml(&inputs, settings, default_timeout));
    match rendered {
        Ok(yaml) => Printed {
            stdout: yaml,
            stderr: Vec::new(),
            success: true,
        },
        Err(error) => Printed::failed(error),
    }
}

/// `convert -f FILE... [--allow-lossy]`: Tekton YAML as this project's kinds;
/// every field that cannot be carried over is a warning (or, without
/// `allow_lossy`, the error).
pub fn convert_files(files: &[std::path::PathBuf], allow_lossy: bool) -> Printed {
    let inputs = match read_sources(files) {
        Ok(inputs) => inputs,
        Err(error) => return Printed::failed(error),
    };
    match crate::convert::convert_yaml(&inputs, allow_lossy) {
        Ok(output) => Printed {
            stdout: output.yaml,
            stderr: output.losses.iter().map(|loss| format!("warning: {loss}")).collect(),
            success: true,
        },
        Err(error) => Printed::failed(error),
    }
}

/// The text of an input file, or where it stops being UTF-8.
pub fn source_text(source_name: &str, bytes: &[u8]) -> Result<String, RenderError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text.to_string()),
        Err(error) => {
            let offset = error.valid_up_to();
            let line = bytes[..offset].iter().filter(|&&b| b == b'\n').count() + 1;
            Err(RenderError::Encoding {
                source_name: source_name.to_string(),
                line,
                offset,
            })
        }
    }
}

/// All CRDs as one multi-document YAML text (what `deploy/crds.yaml` holds).
pub fn crds_yaml() -> Result<String, RenderError> {
    let mut out = String::new();
    for crd in crds() {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&crd).map_err(|e| RenderError::Yaml(e.to_string()))?);
    }
    Ok(out)
}

/// True when two objects of the input end up in the same namespace: an
/// unset namespace is the one `kubectl apply` is given, so it matches.
fn same_namespace(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

fn task_for<'a>(run: &'a MyTaskRun, manifests: &'a Manifests) -> Result<(&'a TaskSpec, TaskSource<'a>), String> {
    let run_name = run.metadata.name.as_deref().unwrap_or_default();
    let run_namespace = run.metadata.namespace.as_deref();
    match (&run.spec.task_ref, &run.spec.task_spec) {
        (_, Some(spec)) => Ok((spec, TaskSource::Inline)),
        (Some(name), None) => {
            let task = manifests.task(name).ok_or_else(|| {
                if manifests.was_rejected("MyTask", name) {
                    format!("MyTaskRun {run_name:?}: spec.taskRef: MyTask {name:?} has errors (listed above)")
                } else {
                    format!("MyTaskRun {run_name:?}: spec.taskRef: MyTask {name:?} is not in the input files")
                }
            })?;
            let task_namespace = task.metadata.namespace.as_deref();
            if !same_namespace(run_namespace, task_namespace) {
                return Err(format!(
                    "MyTaskRun {run_name:?}: spec.taskRef: MyTask {name:?} is in namespace {:?}, the run in {:?}: \
                     a run can only use tasks of its own namespace",
                    task_namespace.unwrap_or_default(),
                    run_namespace.unwrap_or_default()
                ));
            }
            Ok((&task.spec, TaskSource::Named(name.as_str())))
        }
        (None, None) if run.spec.remote_task.is_some() => Err(format!(
            "MyTaskRun {run_name:?}: spec.remoteTask: render works offline and fetches nothing; put the task in \
             the input and name it with taskRef"
        )),
        (None, None) => Err(format!("MyTaskRun {run_name:?}: spec.taskRef: set taskRef or taskSpec")),
    }
}

/// Renders the pod of every MyTaskRun in the input (first attempt), and of
/// every child of every MyPipelineRun, as multi-document YAML. Fails with
/// every error found, in every document.
pub fn render_yaml(
    inputs: &[(String, String)],
    settings: &RenderSettings,
    default_timeout: Duration,
) -> Result<String, RenderError> {
    let mut manifests = Manifests::default();
    let mut problems = Vec::new();
    for (source_name, text) in inputs {
        if let Err(errors) = manifests.add_yaml(source_name, text) {
            problems.extend(errors.0.iter().map(ToString::to_string));
        }
    }
    if manifests.task_runs.is_empty() && manifests.pipeline_runs.is_empty() && problems.is_empty() {
        return Err(RenderError::NoRuns);
    }
    let mut out = String::new();
    for run in &manifests.task_runs {
        render_task_run(run, &manifests, settings, default_timeout, &mut out, &mut problems)?;
    }
    for run in &manifests.pipeline_runs {
        render_pipeline_run(run, &manifests, settings, default_timeout, &mut out, &mut problems)?;
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(RenderError::Invalid(problems))
    }
}

fn yaml_of<T: serde::Serialize>(object: &T) -> Result<String, RenderError> {
    serde_saphyr::to_string(object).map_err(|e| RenderError::Yaml(e.to_string()))
}

/// The claims and pod of one task run, or its errors (prefixed with `label`).
fn render_task_run(
    run: &MyTaskRun,
    manifests: &Manifests,
    settings: &RenderSettings,
    default_timeout: Duration,
    out: &mut String,
    problems: &mut Vec<String>,
) -> Result<bool, RenderError> {
    let run_name = run.metadata.name.as_deref().unwrap_or_default();
    let (task, source) = match task_for(run, manifests) {
        Ok(found) => found,
        Err(problem) => {
            problems.push(problem);
            return Ok(false);
        }
    };
    // Offline there is no ServiceAccount to read: the pod shows no credentials.
    let inputs = AttemptInputs {
        step_actions: manifests.step_actions(),
        ..AttemptInputs::default()
    };
    match plan_task_run_with(run, task, source, 0, (default_timeout, settings), &inputs) {
        Ok(plan) => {
            for warning in &plan.resolved.warnings {
                out.push_str(&format!("# warning: MyTaskRun {run_name:?}: {warning}\n"));
            }
            for claim in &plan.claims {
                out.push_str("---\n");
                out.push_str(&yaml_of(claim)?);
            }
            out.push_str("---\n");
            out.push_str(&yaml_of(&plan.pod)?);
            Ok(true)
        }
        Err(errors) => {
            problems.extend(errors.0.iter().map(|e| format!("MyTaskRun {run_name:?}: {e}")));
            Ok(false)
        }
    }
}

/// The child a pipeline run would create marked as succeeded, each result
/// standing in as its own reference, so the next tasks can be rendered.
fn as_succeeded(mut child: MyTaskRun, manifests: &Manifests) -> MyTaskRun {
    let results = task_for(&child, manifests)
        .map(|(task, _)| task.results.clone())
        .unwrap_or_default();
    let task_name = child
        .metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(crate::pipeline::LABEL_PIPELINE_TASK))
        .cloned()
        .unwrap_or_default();
    child.status = Some(TaskRunStatus {
        conditions: vec![Condition {
            type_: "Succeeded".into(),
            status: "True".into(),
            reason: crate::reason::SUCCEEDED.into(),
            message: String::new(),
            last_transition_time: None,
        }],
        results: results
            .iter()
            .map(|result| RunResult {
                name: result.name.clone(),
                result_type: result.result_type,
                value: placeholder(
                    result.result_type,
                    &format!("$(tasks.{task_name}.results.{})", result.name),
                ),
            })
            .collect(),
        ..Default::default()
    });
    child
}

fn placeholder(kind: ParamType, text: &str) -> ParamValue {
    match kind {
        ParamType::String => ParamValue::String(text.to_string()),
        ParamType::Array => ParamValue::Array(vec![text.to_string()]),
        ParamType::Object => ParamValue::Object(Default::default()),
    }
}

/// The comment line before a child's pod; a matrixed task's child also
/// shows its params, which tell the combinations apart.
fn child_header(run_name: &str, child: &MyTaskRun) -> String {
    let name = child.metadata.name.as_deref().unwrap_or_default();
    let matrixed = child
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(crate::pipeline::ANNOTATION_MATRIX_COMBINATIONS));
    if !matrixed {
        return format!("# MyPipelineRun {run_name:?}: child MyTaskRun {name:?}\n");
    }
    let params: Vec<String> = child
        .spec
        .params
        .iter()
        .map(|p| match &p.value {
            ParamValue::String(text) => format!("{}={text}", p.name),
            other => format!("{}={}", p.name, serde_json::to_string(other).unwrap_or_default()),
        })
        .collect();
    format!(
        "# MyPipelineRun {run_name:?}: child MyTaskRun {name:?} (params: {})\n",
        params.join(", ")
    )
}

/// Every child of a pipeline run, wave after wave (each wave's children
/// taken as succeeded), and their pods; or the pipeline's errors.
fn render_pipeline_run(
    run: &MyPipelineRun,
    manifests: &Manifests,
    settings: &RenderSettings,
    default_timeout: Duration,
    out: &mut String,
    problems: &mut Vec<String>,
) -> Result<(), RenderError> {
    let run_name = run.metadata.name.as_deref().unwrap_or_default();
    let namespace = run.metadata.namespace.as_deref();
    if run.spec.remote_pipeline.is_some() {
        problems.push(format!(
            "MyPipelineRun {run_name:?}: spec.remotePipeline: render works offline and fetches nothing; put the \
             pipeline in the input and name it with pipelineRef"
        ));
        return Ok(());
    }
    let found = run
        .spec
        .pipeline_ref
        .as_deref()
        .map(|name| (name, manifests.pipeline(name)));
    if let Some((name, Some(pipeline))) = found
        && !same_namespace(namespace, pipeline.metadata.namespace.as_deref())
    {
        problems.push(format!(
            "MyPipelineRun {run_name:?}: spec.pipelineRef: MyPipeline {name:?} is in another namespace: \
             a run can only use pipelines of its own namespace"
        ));
        return Ok(());
    }
    let propagated: PipelineSpec;
    let pipeline = match (&run.spec.pipeline_ref, &run.spec.pipeline_spec, found) {
        (Some(_), Some(_), _) | (None, None, _) => PipelineLookup::Unspecified,
        (None, Some(inline), _) => {
            propagated = with_propagated_workspaces(inline, &run.spec.workspaces);
            PipelineLookup::Inline(&propagated)
        }
        (Some(_), None, Some((name, Some(found)))) => {
            propagated = with_declared_workspaces_propagated(&found.spec);
            PipelineLookup::Found {
                name,
                spec: &propagated,
            }
        }
        (Some(name), None, _) => PipelineLookup::Missing { name },
    };
    let tasks: BTreeMap<String, TaskSpec> = manifests
        .tasks
        .iter()
        .filter(|task| same_namespace(namespace, task.metadata.namespace.as_deref()))
        .map(|task| (task.metadata.name.clone().unwrap_or_default(), task.spec.clone()))
        .collect();
    let mut run = run.clone();
    // Children count as the run's only when they name its uid as their
    // controller; a run read from a file has none, so it gets a stand-in.
    run.metadata.uid.get_or_insert_with(|| "render".to_string());
    let mut children: Vec<MyTaskRun> = Vec::new();
    let now = k8s_openapi::jiff::Timestamp::UNIX_EPOCH;
    // Each wave starts at least one child, so there are at most as many
    // waves as tasks; the bound only guards against a scheduler bug.
    let tasks_in_pipeline = match pipeline {
        PipelineLookup::Found { spec, .. } | PipelineLookup::Inline(spec) => spec.tasks.len() + spec.finally.len(),
        _ => 0,
    };
    for _ in 0..=tasks_in_pipeline {
        let observed = Observed {
            run: &run,
            pipeline,
            tasks: &tasks,
            children: &children,
            problems: &[],
            now,
        };
        let mut started = Vec::new();
        for action in decide(observed, default_timeout, &settings.limits) {
            match action {
                Action::CreateChild(child) => started.push(*child),
                Action::WriteStatus(status) => {
                    if let Some(failed) = status.conditions.iter().find(|c| c.status == "False") {
                        problems.push(format!("MyPipelineRun {run_name:?}: {}", failed.message));
                        return Ok(());
                    }
                    run.status = Some(*status);
                }
                _ => {}
            }
        }
        if started.is_empty() {
            return Ok(());
        }
        for child in started {
            out.push_str(&child_header(run_name, &child));
            if !render_task_run(&child, manifests, settings, default_timeout, out, problems)? {
                return Ok(());
            }
            children.push(as_succeeded(child, manifests));
        }
    }
    Ok(())
}
