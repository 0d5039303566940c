//! From a run and its task to the objects to create: the one composition
//! of resolve + render, shared by the controller and `cicd-controller render`.

use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use crate::api::{MyTaskRun, ResolvedFrom, TaskSpec};
use crate::engine::errors::ValidationErrors;
use crate::engine::resolve::{ResolvedStep, ResolvedTaskRun, RunIdentity, resolve_task_run, run_param_values};
use crate::engine::step_action::{StepActions, inline_step_actions, runs_step_actions};
use crate::image::{ImageLookup, ImageLookups};
use crate::pod::credentials::Credentials;
use crate::pod::render::{EntrypointSource, PodInputs, RenderSettings, claims_to_create, render_pod};

/// What the controller reads from the run's namespace only when an attempt
/// is about to start (after that the run's status and pod hold what came
/// of it).
#[derive(Debug, Clone, Default)]
pub struct AttemptInputs {
    /// The MyStepActions the task's steps run, by name.
    pub step_actions: StepActions,
    /// The credential Secrets of the run's ServiceAccount.
    pub credentials: Credentials,
    /// What the registry said about the images of steps that run their
    /// image's own entrypoint (see `crate::image`), by image.
    pub images: ImageLookups,
    /// A step action a resolver is still fetching (the step's `ref`
    /// field): no attempt can start yet.
    pub fetching: Option<String>,
    /// Where the step actions resolvers fetched came from, by step index,
    /// for the run's status.
    pub fetched_from: Vec<(usize, ResolvedFrom)>,
    /// The ConfigMap of the run's namespace that holds the entrypoint, when
    /// the controller made one there: the pod mounts it and needs no init
    /// container. None: the init container copies it from the image.
    pub entrypoint_config_map: Option<String>,
}

impl AttemptInputs {
    /// Nothing read (a task without step actions, an account without
    /// credentials); a constant, so tests and callers can borrow it.
    pub const NONE: AttemptInputs = AttemptInputs {
        step_actions: StepActions::new(),
        credentials: Credentials {
            secrets: Vec::new(),
            warnings: Vec::new(),
        },
        images: ImageLookups::new(),
        fetching: None,
        fetched_from: Vec::new(),
        entrypoint_config_map: None,
    };

    /// Whether a step action a resolver fetched could not be had: the run
    /// then fails `TaskRunResolutionFailed`, as for a remote task.
    pub fn a_fetch_failed(&self) -> bool {
        self.step_actions
            .iter()
            .any(|(key, action)| key.starts_with("steps[") && action.is_err())
    }

    /// What the attempt waits for before it can start (a step action
    /// being fetched, an image being looked up), as the run's message.
    pub fn waiting_for(&self) -> Option<String> {
        if let Some(field) = &self.fetching {
            return Some(format!("{field}: fetching the step action with its resolver"));
        }
        self.images
            .iter()
            .find(|(_, lookup)| **lookup == ImageLookup::Pending)
            .map(|(image, _)| {
                format!("looking up the entrypoint of image {image:?} in its registry (a step gives no command)")
            })
    }
}

/// Where the run's task came from, for error messages and `context.task.name`.
#[derive(Debug, Clone, Copy)]
pub enum TaskSource<'a> {
    /// A MyTask of this name.
    Named(&'a str),
    /// The run's inline `spec.taskSpec`.
    Inline,
}

/// What a run attempt needs created.
#[derive(Debug, Clone)]
pub struct Plan {
    pub resolved: ResolvedTaskRun,
    pub claims: Vec<PersistentVolumeClaim>,
    pub pod: Pod,
}

/// The owner reference that ties the pod (and claims) to the run, so they
/// are garbage-collected with it and their events wake the controller.
pub fn owner_reference(run: &MyTaskRun) -> OwnerReference {
    OwnerReference {
        api_version: crate::api::API_VERSION.to_string(),
        kind: "MyTaskRun".to_string(),
        name: run.metadata.name.clone().unwrap_or_default(),
        uid: run.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

pub fn identity(run: &MyTaskRun, source: TaskSource<'_>, attempt: u32) -> RunIdentity {
    let name = run.metadata.name.clone().unwrap_or_default();
    RunIdentity {
        task_name: match source {
            TaskSource::Named(task) => task.to_string(),
            TaskSource::Inline => name.clone(),
        },
        name,
        namespace: run.metadata.namespace.clone().unwrap_or_else(|| "default".to_string()),
        uid: run.metadata.uid.clone().unwrap_or_default(),
        attempt,
    }
}

/// Refuses a pod larger than `limit` as JSON (what the API server stores),
/// rather than have the server refuse it, over and over.
fn check_pod_size(pod: &Pod, limit: usize) -> Result<(), ValidationErrors> {
    let size = serde_json::to_vec(pod).map(|json| json.len()).unwrap_or(usize::MAX);
    if size <= limit {
        return Ok(());
    }
    Err(ValidationErrors::from(crate::engine::errors::FieldError::new(
        "pod",
        format!("the rendered pod is {size} bytes, the limit is {limit} bytes (controller flag --max-pod-bytes)"),
    )))
}

/// Validates the run against `task` and renders attempt `attempt`, for a
/// task whose steps run no MyStepAction (see [`plan_task_run_with`]).
pub fn plan_task_run(
    run: &MyTaskRun,
    task: &TaskSpec,
    source: TaskSource<'_>,
    attempt: u32,
    default_timeout: Duration,
    settings: &RenderSettings,
) -> Result<Plan, ValidationErrors> {
    plan_task_run_with(
        run,
        task,
        source,
        attempt,
        (default_timeout, settings),
        &AttemptInputs::default(),
    )
}

/// Inlines the MyStepActions the task's steps run (from `inputs`),
/// validates the run against the task and renders attempt `attempt` with
/// the ServiceAccount's credentials. The plan's `resolved.task` is the task
/// with the actions inlined: the run's snapshot.
pub fn plan_task_run_with(
    run: &MyTaskRun,
    task: &TaskSpec,
    source: TaskSource<'_>,
    attempt: u32,
    (default_timeout, settings): (Duration, &RenderSettings),
    inputs: &AttemptInputs,
) -> Result<Plan, ValidationErrors> {
    let task_field = task_field(source);
    let timing = (default_timeout, settings);
    let mut resolved = inline_and_resolve(run, task, (source, attempt), timing, &inputs.step_actions)?;
    run_image_entrypoints(&mut resolved, &inputs.images, &task_field)?;
    let owner = owner_reference(run);
    let labels = run.metadata.labels.clone().unwrap_or_default();
    resolved.warnings.extend(inputs.credentials.warnings.iter().cloned());
    let pod_inputs = PodInputs {
        credentials: &inputs.credentials,
        entrypoint: match &inputs.entrypoint_config_map {
            Some(name) => EntrypointSource::ConfigMap(name),
            None => EntrypointSource::Image,
        },
    };
    let pod = render_pod(&resolved, &run.spec, (&labels, &owner), settings, pod_inputs);
    check_pod_size(&pod, settings.limits.max_pod_bytes)?;
    let claims = claims_to_create(&resolved, &owner);
    Ok(Plan { resolved, claims, pod })
}

/// How the run's task is named in messages.
fn task_field(source: TaskSource<'_>) -> String {
    match source {
        TaskSource::Named(name) => format!("MyTask {name:?}: spec"),
        TaskSource::Inline => "spec.taskSpec".to_string(),
    }
}

/// The task with its step actions inlined, resolved against the run for
/// attempt `attempt`: what both the plan and the image lookups start from.
fn inline_and_resolve(
    run: &MyTaskRun,
    task: &TaskSpec,
    (source, attempt): (TaskSource<'_>, u32),
    (default_timeout, settings): (Duration, &RenderSettings),
    step_actions: &StepActions,
) -> Result<ResolvedTaskRun, ValidationErrors> {
    let task_field = task_field(source);
    let inlined;
    let task = if !runs_step_actions(task) {
        task
    } else {
        // Problems with the run's params are reported by the resolution.
        let task_params = run_param_values(&run.spec, task, &mut ValidationErrors::default());
        let inputs = (step_actions, &task_params);
        inlined = inline_step_actions(task, &task_field, inputs, &settings.limits)?;
        &inlined
    };
    let identity = identity(run, source, attempt);
    resolve_task_run(
        &identity,
        &run.spec,
        task,
        &task_field,
        default_timeout,
        &settings.limits,
    )
}

/// Whether a step runs its image's own entrypoint: it gives neither a
/// command nor a script (only, perhaps, args).
fn runs_image_entrypoint(step: &ResolvedStep) -> bool {
    step.script.is_none() && step.command.is_empty()
}

/// The images (as substituted) whose entrypoint the attempt needs looked
/// up before it can start. Empty when the run is invalid: planning it
/// reports why, and no registry is asked on its behalf.
pub fn images_to_look_up(
    run: &MyTaskRun,
    task: &TaskSpec,
    source: TaskSource<'_>,
    attempt: u32,
    timing: (Duration, &RenderSettings),
    step_actions: &StepActions,
) -> Vec<String> {
    let Ok(resolved) = inline_and_resolve(run, task, (source, attempt), timing, step_actions) else {
        return Vec::new();
    };
    let mut images: Vec<String> = resolved
        .steps
        .iter()
        .filter(|step| runs_image_entrypoint(step))
        .map(|step| step.image.clone())
        .collect();
    images.sort();
    images.dedup();
    images
}

/// Gives each step that runs its image's own entrypoint the command line
/// the container runtime would have run (see `ImageCommand::command_line`),
/// so the entrypoint wrapper can run it in its turn.
fn run_image_entrypoints(
    resolved: &mut ResolvedTaskRun,
    images: &ImageLookups,
    task_field: &str,
) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::default();
    for (index, step) in resolved.steps.iter_mut().enumerate() {
        if !runs_image_entrypoint(step) {
            continue;
        }
        let at = format!("{task_field}.steps[{index}].image");
        let runs = format!(
            "step {:?} has no command or script, so it runs image {:?}'s own entrypoint",
            step.name, step.image
        );
        match images.get(&step.image) {
            Some(ImageLookup::Found(command)) => {
                let line = command.command_line(&step.args);
                if line.is_empty() {
                    errors.push(at, format!("{runs}, and the image sets neither ENTRYPOINT nor CMD"));
                    continue;
                }
                step.command = line;
                step.args = Vec::new();
            }
            Some(ImageLookup::Failed(why)) => errors.push(at, format!("{runs}, which could not be looked up: {why}")),
            Some(ImageLookup::Pending) | None => errors.push(
                at,
                format!("{runs}, which was not looked up (`render` reads no registry: give the step a command)"),
            ),
        }
    }
    errors.into_result(())
}
