//! Where things live inside a run's pod. The renderer mounts these paths and
//! the variable resolver hands them to steps, so they are defined once.

/// The entrypoint binary, copied here by the init container.
pub const TOOLS_DIR: &str = "/cicd/bin";
pub const ENTRYPOINT_PATH: &str = "/cicd/bin/entrypoint";
/// Step scripts, written by the init container.
pub const SCRIPTS_DIR: &str = "/cicd/scripts";
/// Hand-off files: step N writes `/cicd/run/N/out` (or `out.err`) when done.
pub const RUN_DIR: &str = "/cicd/run";
/// Where steps write results: one file per declared result.
pub const RESULTS_DIR: &str = "/cicd/results";
/// Each step's report for the controller; kubelet copies it into the
/// container's termination message.
pub const TERMINATION_PATH: &str = "/cicd/termination";
/// The default working directory and parent of workspace mounts.
pub const WORKSPACE_ROOT: &str = "/workspace";
/// The path the entrypoint image keeps its binary at.
pub const ENTRYPOINT_IN_IMAGE: &str = "/cicd-entrypoint";

pub fn post_file(step_index: usize) -> String {
    format!("{RUN_DIR}/{step_index}/out")
}

pub fn script_name(step_index: usize, step_name: &str) -> String {
    format!("{step_index}-{step_name}")
}

pub fn script_path(step_index: usize, step_name: &str) -> String {
    format!("{SCRIPTS_DIR}/{}", script_name(step_index, step_name))
}

pub fn result_path(result: &str) -> String {
    format!("{RESULTS_DIR}/{result}")
}

pub fn default_workspace_path(workspace: &str) -> String {
    format!("{WORKSPACE_ROOT}/{workspace}")
}
