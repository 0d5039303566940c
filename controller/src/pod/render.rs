//! Building the pod of a run: a pure function of the resolved run.
//!
//! Layout (see `layout`): an init container copies the entrypoint and the
//! step scripts into shared volumes and makes one hand-off and one results
//! directory per step. Where the run's namespace has the entrypoint in a
//! ConfigMap of ours, the pod mounts it instead and has no init container
//! (the kubelet makes the directories, each step writes its own script):
//! a container fewer, which is most of what a run's pod costs the node over
//! a plain one. Each step is a container whose command is the
//! entrypoint, which waits for the previous step's post file, runs the step,
//! prints its results as a frame to its log and reports through the
//! termination message. A step can write only its own directories: it sees
//! the others read-only (hand-off) or not at all (results), so no step can
//! forge another's hand-off or results. Sidecars run as native sidecars
//! (init containers that keep running).

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, EmptyDirVolumeSource, EnvVar, KeyToPath, PersistentVolumeClaim,
    PersistentVolumeClaimVolumeSource, Pod, PodSpec, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::api::{OnError, Sidecar, TaskRunSpec, WorkspaceBinding, WorkspaceUsage};
use crate::engine::resolve::{ResolvedStep, ResolvedTaskRun, ResolvedWorkspace};
use crate::layout;
use crate::names;
use crate::pipeline::LABEL_PIPELINE_RUN;
use cicd_entrypoint::termination::report_budget;

use super::affinity::with_claim_affinity;
use super::credentials::{self, Credentials};
use super::resources::requests_of_largest_step;
use super::results::ResultLimits;

pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "cicd-operator";
pub const LABEL_TASK_RUN: &str = concat!(crate::api_group!(), "/taskRun");
pub const LABEL_TASK: &str = concat!(crate::api_group!(), "/task");
pub const LABEL_ATTEMPT: &str = concat!(crate::api_group!(), "/attempt");

/// Prefix of step container names, so they never clash with sidecars.
pub const STEP_PREFIX: &str = "step-";
pub const SIDECAR_PREFIX: &str = "sidecar-";
pub const PREPARE_CONTAINER: &str = "prepare";

const VOLUME_TOOLS: &str = "cicd-bin";
const VOLUME_SCRIPTS: &str = "cicd-scripts";
const VOLUME_RUN: &str = "cicd-run";
const VOLUME_RESULTS: &str = "cicd-results";
const VOLUME_WORKSPACE: &str = "cicd-workspace";
const VOLUME_HOME: &str = "cicd-home";

/// Installation-wide settings the renderer needs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RenderSettings {
    /// The image holding the static entrypoint at `layout::ENTRYPOINT_IN_IMAGE`.
    pub entrypoint_image: String,
    /// Limits on results, passed to each step's entrypoint and applied again
    /// by the status reader.
    pub results: ResultLimits,
    /// Bounds on what one run may make the controller build (see `engine::limits`).
    pub limits: crate::engine::limits::Limits,
}

/// Where a run's pod gets the entrypoint from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EntrypointSource<'a> {
    /// An init container (`prepare`) copies it out of the entrypoint image
    /// and writes every script: works in any namespace.
    #[default]
    Image,
    /// This ConfigMap of the pod's namespace, made by the controller, holds
    /// it (key `layout::ENTRYPOINT_KEY`): mounted read-only, no init
    /// container. Not for a pod with a sidecar script: sidecars start before
    /// any step, so only an init container could write their scripts.
    ConfigMap(&'a str),
}

impl<'a> EntrypointSource<'a> {
    /// The ConfigMap a pod with these steps and sidecars mounts, if it can
    /// do without the init container: not when a sidecar has a script (it
    /// cannot write its own) or a step reads Tekton's `/tekton/scripts`
    /// (every script is there only when the init container writes them).
    fn config_map_for(self, steps: &[ResolvedStep], sidecars: &[Sidecar]) -> Option<&'a str> {
        let needs_scripts_volume = sidecars.iter().any(|s| s.script.is_some())
            || steps.iter().any(|step| mentions(step, layout::TEKTON_SCRIPTS_DIR));
        match self {
            EntrypointSource::ConfigMap(name) if !needs_scripts_volume => Some(name),
            _ => None,
        }
    }
}

/// The tools volume: the entrypoint's ConfigMap (read and executable by
/// every user), or an emptyDir the init container copies it into.
fn tools_volume(config_map: Option<&str>) -> Volume {
    let Some(name) = config_map else {
        return empty_dir(VOLUME_TOOLS);
    };
    Volume {
        name: VOLUME_TOOLS.to_string(),
        config_map: Some(ConfigMapVolumeSource {
            name: name.to_string(),
            items: Some(vec![KeyToPath {
                key: layout::ENTRYPOINT_KEY.to_string(),
                path: layout::ENTRYPOINT_KEY.to_string(),
                mode: Some(0o555),
            }]),
            default_mode: Some(0o555),
            optional: Some(false),
        }),
        ..Default::default()
    }
}

pub fn step_container_name(step: &str) -> String {
    format!("{STEP_PREFIX}{step}")
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.to_string(),
        mount_path: path.to_string(),
        read_only: read_only.then_some(true),
        ..Default::default()
    }
}

/// A mount of one directory of a volume (subPath).
fn sub_mount(name: &str, sub_path: String, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        sub_path: Some(sub_path),
        ..mount(name, path, read_only)
    }
}

/// Step `index`'s own mounts: the hand-off directory read-only except its
/// own subdirectory, its own results directory, and the previous step's
/// results read-only. The only step of a pod has no other step to keep
/// apart from, so it mounts both volumes whole (see [`own_results_mount`]).
fn step_own_mounts(index: usize, only_step: bool) -> Vec<VolumeMount> {
    if only_step {
        return vec![
            mount(VOLUME_RUN, layout::RUN_DIR, false),
            own_results_mount(index, only_step, layout::RESULTS_DIR),
        ];
    }
    let mut mounts = vec![
        mount(VOLUME_RUN, layout::RUN_DIR, true),
        sub_mount(
            VOLUME_RUN,
            layout::step_sub_path(index),
            &layout::step_run_dir(index),
            false,
        ),
        own_results_mount(index, only_step, layout::RESULTS_DIR),
    ];
    if index > 0 {
        mounts.push(sub_mount(
            VOLUME_RESULTS,
            layout::step_sub_path(index - 1),
            layout::PREVIOUS_RESULTS_DIR,
            true,
        ));
    }
    mounts
}

/// Step `index`'s own results directory at `path`: its subdirectory of the
/// results volume, or the whole volume for the only step of a pod. A
/// subPath mount is a bind mount of its own that the kubelet makes before
/// the container starts and tears down after it, so the only step, which
/// has no other step to keep apart from, mounts the volumes whole.
fn own_results_mount(index: usize, only_step: bool, path: &str) -> VolumeMount {
    match only_step {
        true => mount(VOLUME_RESULTS, path, false),
        false => sub_mount(VOLUME_RESULTS, layout::step_sub_path(index), path, false),
    }
}

fn empty_dir(name: &str) -> Volume {
    Volume {
        name: name.to_string(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    }
}

/// The pod volume behind a workspace binding. A volumeClaimTemplate becomes
/// a claim made for this run (see [`claims_to_create`]).
fn workspace_volume(run_name: &str, index: usize, workspace: &ResolvedWorkspace, binding: &WorkspaceBinding) -> Volume {
    let mut volume = Volume {
        name: layout::workspace_volume_name(index),
        ..Default::default()
    };
    if let Some(claim) = &binding.persistent_volume_claim {
        volume.persistent_volume_claim = Some(claim.clone());
    } else if binding.volume_claim_template.is_some() {
        volume.persistent_volume_claim = Some(PersistentVolumeClaimVolumeSource {
            claim_name: names::claim_name(run_name, &workspace.name),
            read_only: None,
        });
    } else if let Some(config_map) = &binding.config_map {
        volume.config_map = Some(config_map.clone());
    } else if let Some(secret) = &binding.secret {
        volume.secret = Some(secret.clone());
    } else if let Some(projected) = &binding.projected {
        volume.projected = Some(projected.clone());
    } else {
        volume.empty_dir = Some(binding.empty_dir.clone().unwrap_or_default());
    }
    volume
}

/// The pod volume each workspace is mounted from (by index; None when
/// unbound). Workspaces bound to one claim share the first one's volume:
/// two pod volumes of one ReadWriteOnce claim leave the pod unstartable.
fn workspace_volume_names(workspaces: &[ResolvedWorkspace]) -> Vec<Option<String>> {
    let mut volume_of_claim: BTreeMap<&str, String> = BTreeMap::new();
    workspaces
        .iter()
        .enumerate()
        .map(|(index, workspace)| {
            let binding = workspace.binding.as_ref()?;
            let own = layout::workspace_volume_name(index);
            Some(match &binding.persistent_volume_claim {
                Some(claim) => volume_of_claim.entry(claim.claim_name.as_str()).or_insert(own).clone(),
                None => own,
            })
        })
        .collect()
}

/// Claims the run must create before its pod, one per volumeClaimTemplate.
pub fn claims_to_create(resolved: &ResolvedTaskRun, owner: &OwnerReference) -> Vec<PersistentVolumeClaim> {
    resolved
        .workspaces
        .iter()
        .filter_map(|workspace| {
            let template = workspace.binding.as_ref()?.volume_claim_template.as_ref()?;
            let mut claim = template.clone();
            claim.metadata.name = Some(names::claim_name(&resolved.identity.name, &workspace.name));
            claim.metadata.namespace = Some(resolved.identity.namespace.clone());
            claim.metadata.owner_references = Some(vec![owner.clone()]);
            claim.status = None;
            Some(claim)
        })
        .collect()
}

/// The mounts every step gets: tools, scripts (when the init container
/// writes them), the default working directory and the workspaces no step
/// or sidecar isolates (each step adds its own, `step_own_mounts`, and its
/// isolated workspaces).
fn common_step_mounts(workspaces: &PodWorkspaces<'_>, init_writes_scripts: bool) -> Vec<VolumeMount> {
    let mut mounts = vec![mount(VOLUME_TOOLS, layout::TOOLS_DIR, true)];
    if init_writes_scripts {
        mounts.push(mount(VOLUME_SCRIPTS, layout::SCRIPTS_DIR, true));
    }
    mounts.extend([
        mount(VOLUME_WORKSPACE, layout::WORKSPACE_ROOT, false),
        mount(VOLUME_HOME, layout::HOME_DIR, false),
    ]);
    mounts.extend(workspaces.shared_mounts());
    mounts
}

/// The run's workspaces as the pod mounts them: which pod volume backs
/// each, and which are isolated (named by some step or sidecar, and so
/// mounted only into the containers that name them).
struct PodWorkspaces<'a> {
    workspaces: &'a [ResolvedWorkspace],
    /// By index into `workspaces`; None when unbound.
    volumes: Vec<Option<String>>,
    isolated: BTreeSet<&'a str>,
}

impl<'a> PodWorkspaces<'a> {
    fn new(resolved: &'a ResolvedTaskRun) -> Self {
        let step_usages = resolved.steps.iter().flat_map(|step| &step.workspaces);
        let sidecar_usages = resolved.sidecars.iter().flat_map(|sidecar| &sidecar.workspaces);
        PodWorkspaces {
            workspaces: &resolved.workspaces,
            volumes: workspace_volume_names(&resolved.workspaces),
            isolated: step_usages
                .chain(sidecar_usages)
                .map(|usage| usage.name.as_str())
                .collect(),
        }
    }

    /// The mount of workspace `index` at `path`; None when it is unbound.
    fn mount_at(&self, index: usize, path: &str) -> Option<VolumeMount> {
        let workspace = &self.workspaces[index];
        let binding = workspace.binding.as_ref()?;
        let volume = self.volumes[index].as_deref()?;
        let mut workspace_mount = mount(volume, path, workspace.read_only);
        workspace_mount.sub_path = binding.sub_path.clone();
        Some(workspace_mount)
    }

    /// Every container's mounts of the workspaces nobody isolates.
    fn shared_mounts(&self) -> Vec<VolumeMount> {
        self.workspaces
            .iter()
            .enumerate()
            .filter(|(_, workspace)| !self.isolated.contains(workspace.name.as_str()))
            .filter_map(|(index, workspace)| self.mount_at(index, &workspace.mount_path))
            .collect()
    }

    /// One container's mounts of the isolated workspaces it names, each at
    /// the container's own path if it gives one.
    fn isolated_mounts(&self, usages: &[WorkspaceUsage]) -> Vec<VolumeMount> {
        usages
            .iter()
            .filter_map(|usage| {
                let index = self.workspaces.iter().position(|w| w.name == usage.name)?;
                let path = usage
                    .mount_path
                    .as_deref()
                    .unwrap_or(&self.workspaces[index].mount_path);
                self.mount_at(index, path)
            })
            .collect()
    }
}

/// `implicit` mounts with `own` added; where a container's own mount is at
/// the same path as an implicit one (say a volume at `/workspace`), its own
/// wins, since the kubelet refuses two mounts at one path. Validation keeps
/// own mounts out of `/cicd`, so the pod's machinery is never displaced.
fn with_own_mounts(implicit: Vec<VolumeMount>, own: &[VolumeMount]) -> Vec<VolumeMount> {
    let same_path = |a: &str, b: &str| a.trim_end_matches('/') == b.trim_end_matches('/');
    let mut mounts: Vec<VolumeMount> = implicit
        .into_iter()
        .filter(|m| !own.iter().any(|o| same_path(&o.mount_path, &m.mount_path)))
        .collect();
    mounts.extend(own.iter().cloned());
    mounts
}

/// What every step's entrypoint is told besides its own step.
struct StepContext<'a> {
    result_names: &'a [&'a str],
    workspaces: &'a PodWorkspaces<'a>,
    limits: ResultLimits,
    /// The termination-message budget of each container of the pod.
    report_budget: usize,
    /// Given to the first step only.
    credentials: &'a Credentials,
    /// No init container: each step writes its own script and makes its
    /// own step-results directory.
    own_setup: bool,
    /// Every step of the run: a step naming Tekton's `/tekton/steps` sees
    /// the directories of all of them there.
    steps: &'a [ResolvedStep],
}

/// The entrypoint's arguments for step `index`: wait for the previous
/// step, report, then run the script or command.
fn entrypoint_args(index: usize, step: &ResolvedStep, context: &StepContext<'_>) -> Vec<String> {
    let mut args = vec!["step".to_string()];
    if index > 0 {
        args.extend(["--wait-file".to_string(), layout::post_file(index - 1)]);
    }
    args.extend([
        "--post-file".to_string(),
        layout::post_file(index),
        "--termination-path".to_string(),
        layout::TERMINATION_PATH.to_string(),
        "--max-report-bytes".to_string(),
        context.report_budget.to_string(),
        "--results-dir".to_string(),
        layout::RESULTS_DIR.to_string(),
    ]);
    if !context.result_names.is_empty() {
        args.extend([
            "--results".to_string(),
            context.result_names.join(","),
            "--max-result-bytes".to_string(),
            context.limits.max_result_bytes.to_string(),
            "--max-results-bytes".to_string(),
            context.limits.max_run_results_bytes.to_string(),
        ]);
        if index > 0 {
            args.extend(["--results-from".to_string(), layout::PREVIOUS_RESULTS_DIR.to_string()]);
        }
    }
    if let Some(timeout) = &step.timeout {
        args.extend(["--timeout".to_string(), timeout.clone()]);
    }
    if step.on_error == OnError::Continue {
        args.extend(["--on-error".to_string(), OnError::Continue.as_flag().to_string()]);
    }
    for (expr, file) in &step.step_result_refs {
        args.extend(["--step-result-ref".to_string(), format!("{expr}={file}")]);
    }
    for (result, file) in &step.results_from_step {
        args.extend(["--result-from-step".to_string(), format!("{result}={file}")]);
    }
    for result in &step.step_results {
        let file = layout::step_result_path(index, result);
        args.extend(["--step-result".to_string(), format!("{result}={file}")]);
    }
    if index == 0 {
        args.extend(credentials::entrypoint_args(context.credentials));
    }
    if context.own_setup {
        args.extend(own_setup_args(index, step, context.steps.len() == 1));
    }
    args.push("--".to_string());
    match &step.script {
        Some(_) if context.own_setup => args.push(layout::own_script_path(index, &step.name)),
        Some(_) => args.push(layout::script_path(index, &step.name)),
        None => args.extend(step.command.iter().cloned()),
    }
    args.extend(step.args.iter().cloned());
    args
}

/// What step `index` lays out for itself in a pod without an init
/// container: its script, in its own hand-off directory, and its
/// step-results directory. The kubelet makes the hand-off and results
/// directories (subPath mounts of emptyDirs, writable by every user); the
/// only step of a pod mounts the volumes whole and makes its hand-off
/// directory itself.
fn own_setup_args(index: usize, step: &ResolvedStep, only_step: bool) -> Vec<String> {
    let mut args = Vec::new();
    if only_step {
        args.extend(["--mkdir".to_string(), layout::step_run_dir(index)]);
    }
    if let Some(script) = &step.script {
        args.extend(["--scripts-dir".to_string(), layout::step_run_dir(index)]);
        args.extend(script_args(&layout::script_name(index, &step.name), script));
    }
    if !step.step_results.is_empty() {
        args.extend(["--mkdir".to_string(), layout::step_results_dir(index)]);
    }
    args
}

/// `--script NAME=PART` for each part of `script`, base64-encoded: the
/// kubelet expands `$(VAR)` in args, which would mangle shell code.
fn script_args(name: &str, script: &str) -> Vec<String> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(script.as_bytes());
    script_parts(&encoded)
        .into_iter()
        .flat_map(|part| ["--script".to_string(), format!("{name}={part}")])
        .collect()
}

/// The kernel refuses to start a program with any one argument over 128 KiB
/// (MAX_ARG_STRLEN), and a script can hold a large substituted result: it
/// is passed in parts of at most this many base64 characters.
const SCRIPT_PART_CHARS: usize = 96 * 1024;

/// `encoded` (base64) cut into whole quads of at most SCRIPT_PART_CHARS, so
/// the parts decode one after the other; always at least one part.
fn script_parts(encoded: &str) -> Vec<&str> {
    if encoded.is_empty() {
        return vec![encoded];
    }
    // base64 is ASCII, so any byte offset is a char boundary.
    (0..encoded.len())
        .step_by(SCRIPT_PART_CHARS)
        .map(|start| &encoded[start..(start + SCRIPT_PART_CHARS).min(encoded.len())])
        .collect()
}

/// The init container: copies the entrypoint into the tools volume, writes
/// the scripts, and makes each step's hand-off and results directories
/// (mode 0777, so steps running as any user can write their own). Scripts
/// travel base64-encoded because Kubernetes expands `$(VAR)` in args, which
/// would mangle shell code.
fn prepare_container(settings: &RenderSettings, steps: &[ResolvedStep], sidecars: &[Sidecar]) -> Container {
    let mut args = vec![
        "init".to_string(),
        "--tools-dir".to_string(),
        layout::TOOLS_DIR.to_string(),
        "--scripts-dir".to_string(),
        layout::SCRIPTS_DIR.to_string(),
    ];
    let step_scripts = steps
        .iter()
        .enumerate()
        .filter_map(|(index, step)| Some((layout::script_name(index, &step.name), step.script.as_ref()?)));
    let sidecar_scripts = sidecars.iter().filter_map(|sidecar| {
        Some((
            layout::sidecar_script_name(&sidecar.container.name),
            sidecar.script.as_ref()?,
        ))
    });
    for (name, script) in step_scripts.chain(sidecar_scripts) {
        args.extend(script_args(&name, script));
    }
    for (index, step) in steps.iter().enumerate() {
        args.extend(["--mkdir".to_string(), layout::step_run_dir(index)]);
        // The only step has the whole results volume (`own_results_mount`).
        if steps.len() > 1 {
            args.extend([
                "--mkdir".to_string(),
                format!("{}/{}", layout::RESULTS_DIR, layout::step_sub_path(index)),
            ]);
        }
        if !step.step_results.is_empty() {
            args.extend(["--mkdir".to_string(), layout::step_results_dir(index)]);
        }
    }
    Container {
        name: PREPARE_CONTAINER.to_string(),
        image: Some(settings.entrypoint_image.clone()),
        command: Some(vec![layout::ENTRYPOINT_IN_IMAGE.to_string()]),
        args: Some(args),
        volume_mounts: Some(vec![
            mount(VOLUME_TOOLS, layout::TOOLS_DIR, false),
            mount(VOLUME_SCRIPTS, layout::SCRIPTS_DIR, false),
            mount(VOLUME_RUN, layout::RUN_DIR, false),
            mount(VOLUME_RESULTS, layout::RESULTS_DIR, false),
        ]),
        ..Default::default()
    }
}

fn step_container(
    index: usize,
    step: &ResolvedStep,
    context: &StepContext<'_>,
    common_mounts: &[VolumeMount],
    resources: Option<k8s_openapi::api::core::v1::ResourceRequirements>,
) -> Container {
    let mut implicit = common_mounts.to_vec();
    implicit.extend(context.workspaces.isolated_mounts(&step.workspaces));
    implicit.extend(step_own_mounts(index, context.steps.len() == 1));
    implicit.extend(tekton_path_mounts(index, context.steps));
    if index == 0 {
        implicit.extend(credentials::mounts(context.credentials));
    }
    let mounts = with_own_mounts(implicit, &step.volume_mounts);
    Container {
        name: step_container_name(&step.name),
        image: Some(step.image.clone()),
        command: Some(vec![layout::ENTRYPOINT_PATH.to_string()]),
        args: Some(entrypoint_args(index, step, context)),
        env: Some(env_with_home(&step.env)),
        env_from: (!step.env_from.is_empty()).then(|| step.env_from.clone()),
        working_dir: Some(step.working_dir.clone()),
        resources,
        security_context: step.security_context.clone(),
        volume_mounts: Some(mounts),
        image_pull_policy: step.image_pull_policy.clone(),
        termination_message_path: Some(layout::TERMINATION_PATH.to_string()),
        termination_message_policy: Some("File".to_string()),
        ..Default::default()
    }
}

/// Whether the step's script, command, args or env name `path`.
fn mentions(step: &ResolvedStep, path: &str) -> bool {
    let texts = step.script.iter().chain(step.command.iter()).chain(step.args.iter());
    let env_values = step.env.iter().filter_map(|var| var.value.as_ref());
    texts.chain(env_values).any(|text| text.contains(path))
}

/// Tekton's `/tekton/home`, `/tekton/results`, `/tekton/steps` and
/// `/tekton/scripts`, for a step that names them: the same directories as
/// ours (so results written there are this step's results, and
/// `/tekton/steps/step-<s>/exitCode` is step `s`'s exit code). Only then:
/// every mount adds to a pod's start.
fn tekton_path_mounts(index: usize, steps: &[ResolvedStep]) -> Vec<VolumeMount> {
    let step = &steps[index];
    let mentions = |path: &str| mentions(step, path);
    let mut mounts = Vec::new();
    if mentions(layout::TEKTON_SCRIPTS_DIR) {
        // The pod then has the scripts volume (see `config_map_for`).
        mounts.push(mount(VOLUME_SCRIPTS, layout::TEKTON_SCRIPTS_DIR, true));
    }
    if mentions(layout::TEKTON_HOME_DIR) {
        mounts.push(mount(VOLUME_HOME, layout::TEKTON_HOME_DIR, false));
    }
    if mentions(layout::TEKTON_RESULTS_DIR) {
        mounts.push(own_results_mount(index, steps.len() == 1, layout::TEKTON_RESULTS_DIR));
    }
    if mentions(layout::TEKTON_STEPS_DIR) {
        mounts.extend(tekton_steps_mounts(index, steps));
    }
    mounts
}

/// Tekton's per-step directories, `/tekton/steps/step-<name>` and its alias
/// `/tekton/steps/<index>`: each is that step's hand-off directory (exit code,
/// step results), writable only by the step itself, as ours are.
fn tekton_steps_mounts(index: usize, steps: &[ResolvedStep]) -> Vec<VolumeMount> {
    steps
        .iter()
        .enumerate()
        .flat_map(|(other, step)| {
            let sub_path = layout::step_sub_path(other);
            let read_only = other != index;
            [
                layout::tekton_step_dir(&step_container_name(&step.name)),
                layout::tekton_step_dir(&other.to_string()),
            ]
            .map(|path| sub_mount(VOLUME_RUN, sub_path.clone(), &path, read_only))
        })
        .collect()
}

/// A step's env with `HOME` set to the shared home, unless the step sets
/// HOME itself (its own value wins, as any env var of its own does).
fn env_with_home(env: &[EnvVar]) -> Vec<EnvVar> {
    let mut env = env.to_vec();
    if !env.iter().any(|var| var.name == "HOME") {
        env.push(EnvVar {
            name: "HOME".to_string(),
            value: Some(layout::HOME_DIR.to_string()),
            value_from: None,
        });
    }
    env
}

/// Native sidecars: init containers with `restartPolicy: Always` start
/// (and pass their startup probes) before the steps and are stopped by the
/// kubelet when the last step ends, so the pod completes.
/// A sidecar with a script runs the file `prepare` wrote (so Kubernetes'
/// `$(VAR)` expansion of commands never touches the script).
/// A script or command runs under the entrypoint's `hold`, which keeps the
/// container up if it ends first: the kubelet restarts a native sidecar
/// that exits, with a growing back-off, and starts no step until it has
/// seen it running (one that writes a file and exits could block the pod).
/// A sidecar that runs its image's own entrypoint is left as it is.
fn sidecar_containers(
    sidecars: &[Sidecar],
    common_mounts: &[VolumeMount],
    workspaces: &PodWorkspaces<'_>,
) -> Vec<Container> {
    sidecars
        .iter()
        .map(
            |Sidecar {
                 container: sidecar,
                 script,
                 workspaces: usages,
             }| {
                let mut container = sidecar.clone();
                container.name = format!("{SIDECAR_PREFIX}{}", sidecar.name);
                container.restart_policy = Some("Always".to_string());
                let mut implicit: Vec<VolumeMount> = common_mounts
                    .iter()
                    .filter(|m| m.name.starts_with("cicd-ws-") || m.name == VOLUME_WORKSPACE)
                    .cloned()
                    .collect();
                implicit.extend(workspaces.isolated_mounts(usages));
                if script.is_some() {
                    container.command = Some(vec![layout::sidecar_script_path(&sidecar.name)]);
                    implicit.push(mount(VOLUME_SCRIPTS, layout::SCRIPTS_DIR, true));
                }
                if let Some(command) = container.command.take() {
                    let hold = [layout::ENTRYPOINT_PATH, "hold", "--"].map(String::from);
                    container.command = Some(hold.into_iter().chain(command).collect());
                    implicit.push(mount(VOLUME_TOOLS, layout::TOOLS_DIR, true));
                }
                let own = sidecar.volume_mounts.as_deref().unwrap_or_default();
                container.volume_mounts = Some(with_own_mounts(implicit, own));
                container
            },
        )
        .collect()
}

/// The failure threshold of a sidecar's startup probe made from its
/// readiness probe when the run has no timeout: about a day at the default
/// period, which no CI sidecar should need.
const UNBOUNDED_READY_PROBES: i32 = 10_000;

/// Steps start once a sidecar is ready, as in Tekton: the kubelet starts a
/// pod's next container after a native sidecar's startup probe passes (its
/// readiness probe only marks the pod ready), so a sidecar with a readiness
/// probe and no startup probe gets a copy as its startup probe. A startup
/// probe that keeps failing restarts the container, so the copy fails only
/// after the run's timeout (a readiness probe never restarts anything).
fn wait_until_ready(sidecar: &mut Container, timeout: Option<std::time::Duration>) {
    if sidecar.startup_probe.is_some() {
        return;
    }
    let Some(mut probe) = sidecar.readiness_probe.clone() else {
        return;
    };
    let period = probe.period_seconds.unwrap_or(10).max(1);
    let until_timeout = match timeout {
        Some(timeout) => i32::try_from(timeout.as_secs() / period as u64 + 1).unwrap_or(i32::MAX),
        None => UNBOUNDED_READY_PROBES,
    };
    probe.failure_threshold = Some(probe.failure_threshold.unwrap_or(3).max(until_timeout));
    // The API server takes no other success threshold for a startup probe.
    probe.success_threshold = Some(1);
    sidecar.startup_probe = Some(probe);
}

/// Labels of the run's pod: the run's own labels plus ours.
pub fn pod_labels(resolved: &ResolvedTaskRun, run_labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut labels = run_labels.clone();
    labels.insert(LABEL_MANAGED_BY.to_string(), MANAGED_BY.to_string());
    labels.insert(LABEL_TASK_RUN.to_string(), names::dns_label(&[&resolved.identity.name]));
    labels.insert(
        LABEL_TASK.to_string(),
        names::dns_label(&[&resolved.identity.task_name]),
    );
    labels.insert(LABEL_ATTEMPT.to_string(), resolved.identity.attempt.to_string());
    labels
}

/// What a pod takes from the run's namespace besides the run: the
/// credentials of its ServiceAccount and where the entrypoint is.
#[derive(Debug, Clone, Copy)]
pub struct PodInputs<'a> {
    pub credentials: &'a Credentials,
    pub entrypoint: EntrypointSource<'a>,
}

/// Renders the pod of one attempt of a run.
pub fn render_pod(
    resolved: &ResolvedTaskRun,
    run: &TaskRunSpec,
    (run_labels, owner): (&BTreeMap<String, String>, &OwnerReference),
    settings: &RenderSettings,
    PodInputs {
        credentials,
        entrypoint,
    }: PodInputs<'_>,
) -> Pod {
    let identity = &resolved.identity;
    let result_names: Vec<&str> = resolved.task.results.iter().map(|r| r.name.as_str()).collect();
    let workspaces = PodWorkspaces::new(resolved);
    let config_map = entrypoint.config_map_for(&resolved.steps, &resolved.sidecars);
    let common_mounts = common_step_mounts(&workspaces, config_map.is_none());

    // The kubelet shares 12 KiB of termination messages among all containers:
    // the steps, the prepare container (if any) and the sidecars.
    let prepare = usize::from(config_map.is_none());
    let context = StepContext {
        result_names: &result_names,
        workspaces: &workspaces,
        limits: settings.results,
        report_budget: report_budget(resolved.steps.len() + prepare + resolved.sidecars.len()),
        credentials,
        own_setup: config_map.is_some(),
        steps: &resolved.steps,
    };
    let mut resources: Vec<_> = resolved.steps.iter().map(|s| s.resources.clone()).collect();
    requests_of_largest_step(&mut resources);
    let containers: Vec<Container> = resolved
        .steps
        .iter()
        .zip(resources)
        .enumerate()
        .map(|(index, (step, resources))| step_container(index, step, &context, &common_mounts, resources))
        .collect();

    let mut init_containers = Vec::new();
    let mut volumes = vec![tools_volume(config_map)];
    if config_map.is_none() {
        init_containers.push(prepare_container(settings, &resolved.steps, &resolved.sidecars));
        volumes.push(empty_dir(VOLUME_SCRIPTS));
    }
    let mut sidecars = sidecar_containers(&resolved.sidecars, &common_mounts, &workspaces);
    for sidecar in &mut sidecars {
        wait_until_ready(sidecar, resolved.timeout);
    }
    init_containers.extend(sidecars);
    volumes.extend([
        empty_dir(VOLUME_RUN),
        empty_dir(VOLUME_RESULTS),
        empty_dir(VOLUME_WORKSPACE),
        empty_dir(VOLUME_HOME),
    ]);
    for (index, (workspace, volume)) in resolved.workspaces.iter().zip(&workspaces.volumes).enumerate() {
        // A workspace sharing an earlier one's claim adds no volume.
        if let Some(binding) = &workspace.binding
            && volume.as_deref() == Some(layout::workspace_volume_name(index).as_str())
        {
            volumes.push(workspace_volume(&identity.name, index, workspace, binding));
        }
    }
    volumes.extend(resolved.volumes.iter().cloned());
    let template = run.pod_template.clone().unwrap_or_default();
    volumes.extend(template.volumes.iter().cloned());
    volumes.extend(credentials::volumes(credentials));

    let host_network = template.host_network.unwrap_or(false);
    let mut labels = pod_labels(resolved, run_labels);
    // Pods of one pipeline run sharing a claim go to one node (see `affinity`).
    let affinity = with_claim_affinity(
        run_labels.get(LABEL_PIPELINE_RUN).map(String::as_str),
        &volumes,
        &mut labels,
        template.affinity.clone(),
    );
    Pod {
        metadata: ObjectMeta {
            name: Some(names::pod_name(&identity.name, identity.attempt)),
            namespace: Some(identity.namespace.clone()),
            labels: Some(labels),
            owner_references: Some(vec![owner.clone()]),
            ..Default::default()
        },
        spec: Some(PodSpec {
            init_containers: (!init_containers.is_empty()).then_some(init_containers),
            containers,
            volumes: Some(volumes),
            restart_policy: Some("Never".to_string()),
            service_account_name: run.service_account_name.clone().filter(|name| !name.is_empty()),
            active_deadline_seconds: resolved.timeout.map(|t| t.as_secs().max(1) as i64),
            // Service links add an env var per Service to every step: noise,
            // and more names for Kubernetes' own $(VAR) expansion to hit.
            enable_service_links: Some(false),
            node_selector: template.node_selector.clone(),
            tolerations: (!template.tolerations.is_empty()).then(|| template.tolerations.clone()),
            affinity,
            security_context: template.security_context.clone(),
            image_pull_secrets: (!template.image_pull_secrets.is_empty()).then(|| template.image_pull_secrets.clone()),
            host_network: template.host_network,
            dns_policy: host_network.then(|| "ClusterFirstWithHostNet".to_string()),
            priority_class_name: template.priority_class_name.clone(),
            runtime_class_name: template.runtime_class_name.clone(),
            ..Default::default()
        }),
        status: None,
    }
}
