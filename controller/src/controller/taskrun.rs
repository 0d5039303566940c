//! The MyTaskRun reconciler: fetch what `decide` needs, carry out what it
//! returns. All judgement lives in `reconcile::taskrun`.

use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::{Pod, Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::DynamicObject;
use kube::{Api, ResourceExt};
use tracing::info;

use crate::api::{Condition, MyTask, MyTaskRun, ResolvedFrom, TaskRunStatus, TaskSpec};
use crate::engine::step_action::{StepActions, fetched_action_key, referenced, remote_references};
use crate::engine::validate::is_dns_subdomain;
use crate::error::{Error, Result};
use crate::image::ImageLookups;
use crate::metrics::ReasonLabel;
use crate::names;
use crate::plan::{AttemptInputs, TaskSource, images_to_look_up};
use crate::pod::credentials::{Credentials, MAX_CREDENTIAL_SECRETS, SecretFacts, credentials_of};
use crate::reason;
use crate::reconcile::conditions::is_progress_only;
use crate::reconcile::taskrun::{Action, Observed, TaskLookup, current_attempt, decide, is_done, succeeded_condition};

use super::context::{Context, Requeue, object_key};
use super::decode::{Loaded, load_run};
use super::execute::{RunKind, Work, execute};
use super::registry::look_up_images;
use super::resolver::{Resolution, RunKey};

/// What an attempt about to start reads from the run's own namespace
/// (never another tenant's): the MyStepActions its steps run, the
/// credential Secrets of its ServiceAccount, the entrypoints of the
/// images of steps that give no command (from their registries), and our
/// entrypoint ConfigMap there (made if missing).
/// Nothing is read while the task itself is missing or being fetched.
async fn attempt_inputs(
    run: &MyTaskRun,
    task: &TaskLookup<'_>,
    namespace: &str,
    ctx: &Context,
) -> Result<AttemptInputs> {
    let (spec, source) = match task {
        TaskLookup::Found { name, spec } | TaskLookup::Resolved { name, spec, .. } => (*spec, TaskSource::Named(name)),
        TaskLookup::Inline(spec) => (*spec, TaskSource::Inline),
        _ => return Ok(AttemptInputs::default()),
    };
    let (step_actions, fetched) = step_actions(run, spec, namespace, ctx).await?;
    let account = service_account(run, namespace, ctx).await?;
    let settings = (ctx.settings.default_timeout, &ctx.settings.render);
    let wanted = images_to_look_up(run, spec, source, current_attempt(run), settings, &step_actions);
    let images = if wanted.is_empty() {
        ImageLookups::new()
    } else {
        let key = run_key(run, namespace, run.metadata.uid.as_deref().unwrap_or_default());
        look_up_images(ctx, key, &wanted, &pull_secrets(run, account.as_ref()))
    };
    let entrypoint_config_map = match &ctx.entrypoint_maps {
        Some(maps) => maps.config_map(&ctx.client, namespace).await,
        None => None,
    };
    Ok(AttemptInputs {
        step_actions,
        credentials: credentials(run, account.as_ref(), namespace, ctx).await?,
        images,
        fetching: fetched.fetching,
        fetched_from: fetched.from,
        entrypoint_config_map,
    })
}

/// The run as the resolvers and registry lookups know it; `uid` keys
/// their background work (the run's uid, or it and a step).
fn run_key<'a>(run: &'a MyTaskRun, namespace: &'a str, uid: &'a str) -> RunKey<'a> {
    RunKey {
        kind: "MyTaskRun",
        namespace,
        name: run.metadata.name.as_deref().unwrap_or_default(),
        uid,
    }
}

/// The run's ServiceAccount (`default` unless named), from the cache; None
/// if it does not exist (creating the pod then fails naming it).
async fn service_account(run: &MyTaskRun, namespace: &str, ctx: &Context) -> Result<Option<ServiceAccount>> {
    let name = run.spec.service_account();
    if !is_dns_subdomain(name) {
        // Not a name an object can have (validation fails the run naming
        // it); asking the API server for it would only be refused.
        return Ok(None);
    }
    let accounts: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), namespace);
    ctx.stores.service_account(&accounts, namespace, name).await
}

/// The pull Secrets the kubelet would use for the run's pod: the run's
/// podTemplate's, then its ServiceAccount's.
fn pull_secrets(run: &MyTaskRun, account: Option<&ServiceAccount>) -> Vec<String> {
    let from_template = run.spec.pod_template.iter().flat_map(|t| t.image_pull_secrets.iter());
    let from_account = account.into_iter().flat_map(|a| a.image_pull_secrets.iter().flatten());
    super::registry::pull_secret_names(from_template.chain(from_account))
}

/// The step actions the task's steps run, by `action_key`, and how the
/// fetches of the remote ones are going. At most as many as a task may
/// have steps: a task over that fails on its step count anyway.
async fn step_actions(
    run: &MyTaskRun,
    spec: &TaskSpec,
    namespace: &str,
    ctx: &Context,
) -> Result<(StepActions, Fetches)> {
    let mut found = StepActions::new();
    for name in referenced(spec).into_iter().take(ctx.settings.render.limits.max_steps) {
        // From the watch-fed cache (the API server when the cache lacks it).
        // One that does not exist is left out: the run fails naming the step.
        if let Some(action) = ctx.stores.step_action(&ctx.client, namespace, name).await? {
            found.insert(name.to_string(), action.map(|action| action.spec));
        }
    }
    let fetches = fetch_step_actions(run, spec, namespace, ctx, &mut found).await?;
    Ok((found, fetches))
}

/// How the fetches of a run's remote step actions are going.
#[derive(Default)]
struct Fetches {
    /// The `ref` field of the first one not fetched yet (the run is woken
    /// when it is).
    fetching: Option<String>,
    /// Where each one fetched came from, by step index.
    from: Vec<(usize, ResolvedFrom)>,
}

/// The actions of `ref: {resolver, params}` steps, fetched in the
/// background, one fetch per step, into `found` (one that cannot be had is
/// kept with why); the first not fetched yet. Once all are, their outcomes
/// are dropped from the resolver's memory: the plan inlines them now.
async fn fetch_step_actions(
    run: &MyTaskRun,
    spec: &TaskSpec,
    namespace: &str,
    ctx: &Context,
    found: &mut StepActions,
) -> Result<Fetches> {
    let uid = run.metadata.uid.as_deref().unwrap_or_default();
    let mut fetches = Fetches::default();
    let mut keys = Vec::new();
    for (index, remote) in remote_references(spec)
        .into_iter()
        .take(ctx.settings.render.limits.max_steps)
    {
        let field = format!("steps[{index}].ref");
        let fetch_key = format!("{uid}/{field}");
        let key = run_key(run, namespace, &fetch_key);
        let action = match super::resolver::step_action(ctx, key, &remote, &field).await? {
            Resolution::Found(fetched) => {
                fetches.from.push((index, fetched.from));
                Ok(fetched.spec)
            }
            Resolution::Failed(why) => Err(why),
            Resolution::Fetching(_) => {
                fetches.fetching.get_or_insert(field);
                continue;
            }
        };
        found.insert(fetched_action_key(index), action);
        keys.push(fetch_key);
    }
    if fetches.fetching.is_none() {
        keys.iter().for_each(|key| ctx.resolutions.forget(key));
    }
    Ok(fetches)
}

/// The credential Secrets of the run's ServiceAccount (see
/// `pod::credentials`). A missing account gives none; a listed Secret that
/// does not exist is skipped, as the kubelet could not mount it either.
/// Only the first MAX_CREDENTIAL_SECRETS listed are read.
async fn credentials(
    run: &MyTaskRun,
    account: Option<&ServiceAccount>,
    namespace: &str,
    ctx: &Context,
) -> Result<Credentials> {
    let account_name = run.spec.service_account();
    let Some(account) = account else {
        return Ok(Credentials::default());
    };
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let mut found = Vec::new();
    let mut forbidden = Vec::new();
    for listed in account.secrets.iter().flatten().take(MAX_CREDENTIAL_SECRETS) {
        let Some(name) = listed.name.as_deref() else { continue };
        let secret = match secrets.get_opt(name).await {
            Ok(secret) => secret,
            // An install whose RBAC lets the controller read no Secrets here
            // (a namespace that opted out): the run goes on without them.
            Err(kube::Error::Api(status)) if status.code == 403 => {
                forbidden.push(format!(
                    "ServiceAccount {account_name:?} lists Secret {name:?}, which the controller may not read (403 Forbidden): its credentials are not given to the run"
                ));
                continue;
            }
            Err(error) => return Err(error.into()),
        };
        if let Some(secret) = secret {
            // Only the name, type and annotations are kept: the data stays in the Secret.
            found.push((
                name.to_string(),
                secret.type_.unwrap_or_else(|| "Opaque".to_string()),
                secret.metadata.annotations.unwrap_or_default(),
            ));
        }
    }
    let facts: Vec<SecretFacts<'_>> = found
        .iter()
        .map(|(name, secret_type, annotations)| SecretFacts {
            name,
            secret_type,
            annotations,
        })
        .collect();
    let mut credentials = credentials_of(account_name, &facts);
    credentials.warnings.extend(forbidden);
    Ok(credentials)
}

/// The name a resolver found the run's task under (its status records it).
fn resolved_name(run: &MyTaskRun) -> &str {
    run.status
        .as_ref()
        .and_then(|s| s.resolved_from.as_ref())
        .map_or("", |from| from.name.as_str())
}

pub async fn reconcile(object: Arc<DynamicObject>, ctx: Arc<Context>) -> Result<Requeue> {
    let started = Instant::now();
    ctx.metrics.reconciles.inc();
    let result = reconcile_object(&object, &ctx).await;
    ctx.metrics.reconcile_duration.observe(started.elapsed().as_secs_f64());
    result
}

async fn reconcile_object(cached: &DynamicObject, ctx: &Context) -> Result<Requeue> {
    let finished = |run: &MyTaskRun| is_done(run.status.as_ref());
    match load_run::<MyTaskRun>(cached, reason::VALIDATION_FAILED, finished, ctx).await? {
        Loaded::Run(run) => reconcile_run(&run, ctx).await,
        Loaded::Wait(requeue) => Ok(requeue),
        // Finished (or gone): its group and its history (see `history`).
        Loaded::Done(requeue) => super::history::after_finish::<MyTaskRun>(cached, requeue, ctx).await,
    }
}

async fn reconcile_run(run: &MyTaskRun, ctx: &Context) -> Result<Requeue> {
    let namespace = run.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let name = run.name_any();

    let empty = TaskSpec::default();
    let fetched: Option<Result<MyTask, String>>;
    let resolution: Resolution<TaskSpec>;
    let snapshot = run.status.as_ref().and_then(|s| s.task_spec.as_ref());
    let task = match (&run.spec.task_ref, &run.spec.task_spec, &run.spec.remote_task, snapshot) {
        (_, Some(inline), _, _) => TaskLookup::Inline(inline),
        (Some(task_name), None, _, Some(spec)) => TaskLookup::Found { name: task_name, spec },
        (Some(task_name), None, _, None) => {
            // Only the run's own namespace: a run must not reach into another tenant's tasks.
            // Decoded on its own: a too-deep MyTask is reported, not retried.
            // From the cache; read from the API server if the cache lacks it.
            fetched = ctx.stores.task(&ctx.client, &namespace, task_name).await?;
            match &fetched {
                Some(Ok(task)) => TaskLookup::Found {
                    name: task_name,
                    spec: &task.spec,
                },
                Some(Err(problem)) => TaskLookup::Malformed {
                    name: task_name,
                    problem,
                },
                None => TaskLookup::Missing { name: task_name },
            }
        }
        // Fetched when the run started: the snapshot, under the fetched name.
        (None, None, Some(_), Some(spec)) => TaskLookup::Found {
            name: resolved_name(run),
            spec,
        },
        (None, None, Some(remote), None) => {
            let key = run_key(run, &namespace, run.metadata.uid.as_deref().unwrap_or_default());
            resolution = super::resolver::task(ctx, key, remote).await?;
            match &resolution {
                Resolution::Found(found) => TaskLookup::Resolved {
                    name: &found.from.name,
                    spec: &found.spec,
                    from: &found.from,
                },
                Resolution::Fetching(what) => TaskLookup::Resolving { what },
                Resolution::Failed(problem) => TaskLookup::Unresolved { problem },
            }
        }
        // Neither taskRef nor taskSpec: validation reports it.
        (None, None, None, _) => TaskLookup::Inline(&empty),
    };
    // Concurrency groups (see `admission`): a queued run stops here, before any pod.
    let (replaced, _slot) = match super::admission::gate(run, super::admission::task_definition(&task), ctx).await? {
        super::admission::Gate::Go { run, slot } => (run, slot),
        super::admission::Gate::Stop(requeue) => return Ok(requeue),
    };
    let run = replaced.as_deref().unwrap_or(run);
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let pod_name = names::pod_name(&name, current_attempt(run));
    let recorded = run.status.as_ref().and_then(|s| s.pod_name.as_deref()) == Some(pod_name.as_str());
    let pod = ctx.stores.pod(&pods, &namespace, &pod_name, recorded).await?;
    let results = super::results::fetch(&pods, pod.as_ref(), ctx.settings.render.results).await?;
    let node = pod.as_ref().and_then(|pod| ctx.stores.node_of(pod));
    let inputs = match pod {
        None => attempt_inputs(run, &task, &namespace, ctx).await?,
        Some(_) => AttemptInputs::default(),
    };

    let actions = decide(
        Observed {
            run,
            task,
            pod: pod.as_ref(),
            results: &results,
            node: node.as_ref(),
            inputs: &inputs,
            now: Timestamp::now(),
        },
        &ctx.settings,
    );
    execute(run, actions.into_iter().map(Work::from).collect(), ctx).await
}

impl From<Action> for Work<TaskRunStatus> {
    fn from(action: Action) -> Self {
        match action {
            Action::CreateClaim(claim) => Work::CreateClaim(claim),
            Action::CreatePod(pod) => Work::CreatePod(pod),
            Action::StopPod(name) => Work::StopPod(name),
            Action::Publish(notice) => Work::Publish(notice),
            Action::WriteStatus(status) => Work::WriteStatus(status),
            Action::RequeueAfter(after) => Work::RequeueAfter(after),
        }
    }
}

impl RunKind for MyTaskRun {
    type Status = TaskRunStatus;
    const KIND: &'static str = "MyTaskRun";

    fn status(&self) -> Option<&TaskRunStatus> {
        self.status.as_ref()
    }

    fn conditions(status: &mut TaskRunStatus) -> &mut Vec<Condition> {
        &mut status.conditions
    }

    fn completion_time(status: &mut TaskRunStatus) -> &mut Option<Time> {
        &mut status.completion_time
    }

    /// Steps, results and the message may wait; the pod, the attempts and
    /// the times a decision reads may not.
    fn is_progress_only(old: &TaskRunStatus, new: &TaskRunStatus) -> bool {
        is_progress_only(&old.conditions, &new.conditions)
            && old.pod_name == new.pod_name
            && old.retries_status == new.retries_status
            && old.start_time == new.start_time
            && new.completion_time.is_none()
            && old.task_spec == new.task_spec
    }

    fn forget_unmade(status: &mut TaskRunStatus) {
        status.pod_name = None;
    }

    fn written(ctx: &Context, run: &MyTaskRun, status: &TaskRunStatus) {
        let had_pod = run.status.as_ref().is_some_and(|s| s.pod_name.is_some());
        if !had_pod && status.pod_name.is_some() && status.retries_status.is_empty() {
            ctx.metrics.runs_started.inc();
        }
        let finished = succeeded_condition(Some(status)).filter(|c| c.status != "Unknown");
        if let Some(condition) = finished {
            ctx.metrics
                .runs_finished
                .get_or_create(&ReasonLabel {
                    reason: condition.reason.clone(),
                })
                .inc();
            if let (Some(start), Some(end)) = (&status.start_time, &status.completion_time) {
                let seconds = (end.0.as_millisecond() - start.0.as_millisecond()) as f64 / 1000.0;
                ctx.metrics.run_duration.observe(seconds.max(0.0));
            }
            info!(run = %run.name_any(), reason = %condition.reason, "run finished");
        }
    }
}

pub fn error_policy(run: Arc<DynamicObject>, error: &Error, ctx: Arc<Context>) -> Requeue {
    let key = object_key("MyTaskRun", &run.namespace().unwrap_or_default(), &run.name_any());
    ctx.requeue_after_error(&key, error)
}
