//! Where things live inside a run's pod. The renderer mounts these paths and
//! the variable resolver hands them to steps, so they are defined once.

/// The entrypoint binary, copied here by the init container or mounted
/// here from a ConfigMap.
pub const TOOLS_DIR: &str = "/cicd/bin";
pub const ENTRYPOINT_PATH: &str = "/cicd/bin/entrypoint";
/// Step scripts, written by the init container.
pub const SCRIPTS_DIR: &str = "/cicd/scripts";
/// Hand-off files: step N writes `/cicd/run/N/out` (or `out.err`) when done.
/// Every step sees this directory read-only; only its own `N` is writable.
pub const RUN_DIR: &str = "/cicd/run";
/// Where steps write results: one file per declared result. Each step has
/// its own directory here (subdirectory `N` of the results volume).
pub const RESULTS_DIR: &str = "/cicd/results";
/// The previous step's results directory, read-only; the entrypoint copies
/// its declared results into the step's own before the command starts.
pub const PREVIOUS_RESULTS_DIR: &str = "/cicd/results-previous";
/// Each step's report for the controller; kubelet copies it into the
/// container's termination message.
pub const TERMINATION_PATH: &str = "/cicd/termination";
/// `$HOME` of every step (unless the step sets HOME itself): one writable
/// directory the steps of a run share, so a login or a config written by
/// one step (git, docker, npm) is there for the next.
pub const HOME_DIR: &str = "/cicd/home";
/// Credential Secrets of the run's ServiceAccount, each mounted read-only
/// at `<this>/<secret>` into the first step only (see pod::credentials).
pub const CREDENTIAL_SECRETS_DIR: &str = "/cicd/creds";
/// The default working directory and parent of workspace mounts.
pub const WORKSPACE_ROOT: &str = "/workspace";
/// Tekton's fixed paths of the home and of a step's results: some Tekton
/// tasks write to them by name instead of `$HOME` and
/// `$(results.x.path)`. A step whose command, script or env mentions one
/// gets it as a second mount of ours.
pub const TEKTON_HOME_DIR: &str = "/tekton/home";
pub const TEKTON_RESULTS_DIR: &str = "/tekton/results";
/// Tekton's per-step directories (`step-<name>/exitCode`,
/// `step-<name>/results/<r>`), given as our hand-off directories.
pub const TEKTON_STEPS_DIR: &str = "/tekton/steps";
/// Tekton's scripts directory, given as our scripts directory (read-only).
pub const TEKTON_SCRIPTS_DIR: &str = "/tekton/scripts";

/// Step `name`'s directory under Tekton's `/tekton/steps` (`name` is the
/// container's name, `step-<s>`, or the step's index).
pub fn tekton_step_dir(name: &str) -> String {
    format!("{TEKTON_STEPS_DIR}/{name}")
}
/// The path the entrypoint image keeps its binary at.
pub const ENTRYPOINT_IN_IMAGE: &str = "/cicd-entrypoint";

/// The pod volume of the run's workspace at `index` of the task's
/// declarations (the renderer names it, `$(workspaces.w.volume)` reports it).
pub fn workspace_volume_name(index: usize) -> String {
    format!("cicd-ws-{index}")
}

/// Whether `path` is inside the pod's own machinery (`/cicd`), where no
/// user mount may go: it would hide the entrypoint, scripts or hand-offs.
pub fn is_reserved_path(path: &str) -> bool {
    let normalized = path.trim_end_matches('/');
    normalized == "/cicd" || normalized.starts_with("/cicd/")
}

pub fn post_file(step_index: usize) -> String {
    format!("{RUN_DIR}/{step_index}/out")
}

/// Step `step_index`'s own hand-off directory, writable only by that step.
pub fn step_run_dir(step_index: usize) -> String {
    format!("{RUN_DIR}/{step_index}")
}

/// Where step `step_index` leaves its command's exit code (the entrypoint
/// writes it in its hand-off directory), for `$(steps.<s>.exitCode.path)`.
pub fn exit_code_path(step_index: usize) -> String {
    format!(
        "{}/{}",
        step_run_dir(step_index),
        cicd_entrypoint::termination::EXIT_CODE_FILE
    )
}

/// Where step `step_index` writes its step results: in its hand-off
/// directory, so every later step can read them and none can change them.
pub fn step_results_dir(step_index: usize) -> String {
    format!("{}/results", step_run_dir(step_index))
}

/// Step `step_index`'s step result `result` (`$(step.results.<r>.path)`).
pub fn step_result_path(step_index: usize, result: &str) -> String {
    format!("{}/{result}", step_results_dir(step_index))
}

/// The step result that carries what a step writes at
/// `$(step.artifacts.path)`: a name no user's result can have (those hold
/// no dot), so it travels with the step's results without colliding.
pub const STEP_ARTIFACTS: &str = "cicd.step-artifacts";

/// The same for `$(artifacts.path)`: the task's artifacts, as that step
/// reports them.
pub const TASK_ARTIFACTS: &str = "cicd.task-artifacts";

/// Step `step_index`'s directory inside the run and results volumes.
pub fn step_sub_path(step_index: usize) -> String {
    step_index.to_string()
}

pub fn script_name(step_index: usize, step_name: &str) -> String {
    format!("{step_index}-{step_name}")
}

pub fn script_path(step_index: usize, step_name: &str) -> String {
    format!("{SCRIPTS_DIR}/{}", script_name(step_index, step_name))
}

/// Where a step writes its own script when the pod has no init container
/// to do it: its own hand-off directory, the one place it may write that
/// the next steps can read.
pub fn own_script_path(step_index: usize, step_name: &str) -> String {
    format!("{}/{}", step_run_dir(step_index), script_name(step_index, step_name))
}

/// The key of the entrypoint binary in its ConfigMap, and its file name
/// in `TOOLS_DIR`.
pub const ENTRYPOINT_KEY: &str = "entrypoint";

/// Sidecar scripts share the scripts directory; step scripts start with
/// their index, so the names never meet.
pub fn sidecar_script_name(sidecar_name: &str) -> String {
    format!("sidecar-{sidecar_name}")
}

pub fn sidecar_script_path(sidecar_name: &str) -> String {
    format!("{SCRIPTS_DIR}/{}", sidecar_script_name(sidecar_name))
}

pub fn result_path(result: &str) -> String {
    format!("{RESULTS_DIR}/{result}")
}

pub fn default_workspace_path(workspace: &str) -> String {
    format!("{WORKSPACE_ROOT}/{workspace}")
}
