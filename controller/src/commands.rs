//! The offline commands: print the CRDs, render pods from YAML. They take
//! text and return text, so they are tested without a cluster.

use std::time::Duration;

use crate::api::{MyTaskRun, TaskSpec, crds};
use crate::manifests::{ManifestError, Manifests};
use crate::plan::{TaskSource, plan_task_run};
use crate::pod::render::RenderSettings;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("no MyTaskRun found in the input")]
    NoRuns,
    /// Every problem of every run, one per line.
    #[error("{}", .0.join("\n"))]
    Invalid(Vec<String>),
    #[error("cannot write YAML: {0}")]
    Yaml(String),
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

fn task_for<'a>(run: &'a MyTaskRun, manifests: &'a Manifests) -> Result<(&'a TaskSpec, TaskSource<'a>), String> {
    let run_name = run.metadata.name.as_deref().unwrap_or_default();
    match (&run.spec.task_ref, &run.spec.task_spec) {
        (_, Some(spec)) => Ok((spec, TaskSource::Inline)),
        (Some(name), None) => manifests
            .task(name)
            .map(|task| (&task.spec, TaskSource::Named(name.as_str())))
            .ok_or_else(|| format!("MyTaskRun {run_name:?}: spec.taskRef: MyTask {name:?} is not in the input files")),
        (None, None) => Err(format!("MyTaskRun {run_name:?}: spec.taskRef: set taskRef or taskSpec")),
    }
}

/// Renders the pod of every MyTaskRun in the input (first attempt), as
/// multi-document YAML. Fails with every validation error found.
pub fn render_yaml(
    inputs: &[(String, String)],
    settings: &RenderSettings,
    default_timeout: Duration,
) -> Result<String, RenderError> {
    let mut manifests = Manifests::default();
    for (source_name, text) in inputs {
        manifests.add_yaml(source_name, text)?;
    }
    if manifests.task_runs.is_empty() {
        return Err(RenderError::NoRuns);
    }
    let mut out = String::new();
    let mut problems = Vec::new();
    for run in &manifests.task_runs {
        let run_name = run.metadata.name.as_deref().unwrap_or_default();
        let (task, source) = match task_for(run, &manifests) {
            Ok(found) => found,
            Err(problem) => {
                problems.push(problem);
                continue;
            }
        };
        match plan_task_run(run, task, source, 0, default_timeout, settings) {
            Ok(plan) => {
                for warning in &plan.resolved.warnings {
                    out.push_str(&format!("# warning: MyTaskRun {run_name:?}: {warning}\n"));
                }
                for claim in &plan.claims {
                    out.push_str("---\n");
                    out.push_str(&serde_saphyr::to_string(claim).map_err(|e| RenderError::Yaml(e.to_string()))?);
                }
                out.push_str("---\n");
                out.push_str(&serde_saphyr::to_string(&plan.pod).map_err(|e| RenderError::Yaml(e.to_string()))?);
            }
            Err(errors) => problems.extend(errors.0.iter().map(|e| format!("MyTaskRun {run_name:?}: {e}"))),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(RenderError::Invalid(problems))
    }
}
