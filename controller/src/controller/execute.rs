//! The one executor of both reconcilers: carries out a decision's actions
//! (claims, pods, child runs, stops, cancels, events, the status write,
//! the requeue) and turns every failure into an outcome for the run, with
//! `classify` as the only judge of API errors:
//!
//! - refused for good: the run ends with the object's own reason
//!   (`PodCreationFailed`, `ClaimCreationFailed`, `ChildCreationFailed`)
//!   and the server's message;
//! - name taken by an object this run does not control: the run ends with
//!   `PodNameTaken` / `ClaimNameTaken` / `ChildNameTaken`, naming it;
//! - transient: `Succeeded` stays Unknown with a `...Retrying` reason and
//!   the server's message, what was not made is forgotten so the next
//!   reconcile makes it again, and the run is tried again after an
//!   exponential backoff (per object). The run's timeout keeps running.

use std::fmt::Debug;
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tracing::{info, warn};

use crate::api::{Condition, MyTaskRun};
use crate::error::{Error, Result};
use crate::reason;
use crate::reconcile::conditions::set_succeeded;
use crate::reconcile::owner::{is_controlled_by, name_taken};
use crate::reconcile::taskrun::Notice;

use super::classify::{Verdict, classify};
use super::context::{Context, FIELD_MANAGER, Requeue, object_key, sooner};
use super::decode::dynamic_api;
use super::status_writer::replace_status;

/// One thing to do, for either run kind.
#[derive(Debug, Clone)]
pub enum Work<S> {
    CreateClaim(Box<PersistentVolumeClaim>),
    /// Create the pod; an existing one is adopted only if this run controls it.
    CreatePod(Box<Pod>),
    /// Create a child run; an existing one is adopted only if this run controls it.
    CreateChild(Box<MyTaskRun>),
    /// Stop a pod's containers but keep the pod, so its logs stay readable.
    StopPod(String),
    /// Set `spec.status: Cancelled` on a child run.
    CancelChild(String),
    Publish(Notice),
    WriteStatus(Box<S>),
    RequeueAfter(Duration),
}

/// What the executor needs to know about a run kind.
pub trait RunKind:
    Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + Debug + DeserializeOwned + Send + Sync
{
    type Status: Serialize + Clone + PartialEq + Default + Debug;
    /// The kind's name, as in messages (`MyTaskRun`).
    const KIND: &'static str;
    fn status(&self) -> Option<&Self::Status>;
    fn conditions(status: &mut Self::Status) -> &mut Vec<Condition>;
    /// True if `new` only reports progress over `old` (see `Pacing`): it
    /// records nothing a later decision depends on, such as a pod or child
    /// made or an attempt ended. Such a write may wait a moment.
    fn is_progress_only(_old: &Self::Status, _new: &Self::Status) -> bool {
        false
    }
    fn completion_time(status: &mut Self::Status) -> &mut Option<Time>;
    /// Forgets what the decision recorded as made but was not (the pod's
    /// name), so the next reconcile makes it again instead of taking it
    /// for deleted.
    fn forget_unmade(_status: &mut Self::Status) {}
    /// Children to cancel when the run ends because of a refusal.
    fn children(_status: &Self::Status) -> Vec<String> {
        Vec::new()
    }
    /// Metrics and logs after a status write.
    fn written(ctx: &Context, run: &Self, status: &Self::Status);
}

/// Which object a creation was for, and the reasons that go with it.
#[derive(Debug, Clone, Copy)]
struct Made {
    /// As in messages: `pod`, `claim`, `child MyTaskRun`.
    what: &'static str,
    failed: &'static str,
    retrying: &'static str,
    taken: &'static str,
}

const POD: Made = Made {
    what: "pod",
    failed: reason::POD_CREATION_FAILED,
    retrying: reason::POD_CREATION_RETRYING,
    taken: reason::POD_NAME_TAKEN,
};
const CLAIM: Made = Made {
    what: "PersistentVolumeClaim",
    failed: reason::CLAIM_CREATION_FAILED,
    retrying: reason::CLAIM_CREATION_RETRYING,
    taken: reason::CLAIM_NAME_TAKEN,
};
const CHILD: Made = Made {
    what: "MyTaskRun",
    failed: reason::CHILD_CREATION_FAILED,
    retrying: reason::CHILD_CREATION_RETRYING,
    taken: reason::CHILD_NAME_TAKEN,
};

/// A creation that did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setback {
    /// True if the run ends; false if it is tried again later.
    pub ends_run: bool,
    pub reason: &'static str,
    pub message: String,
}

/// Carries out `work` for `run` and says when to look at it again.
pub async fn execute<R: RunKind>(run: &R, work: Vec<Work<R::Status>>, ctx: &Context) -> Result<Requeue> {
    let namespace = run.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let mut executor = Executor {
        run,
        ctx,
        key: object_key(R::KIND, &namespace, &run.name_any()),
        namespace,
        setback: None,
        written: false,
        requeue: None,
    };
    for item in work {
        executor.carry_out(item).await?;
    }
    executor.finish().await
}

struct Executor<'a, R: RunKind> {
    run: &'a R,
    ctx: &'a Context,
    namespace: String,
    /// The backoff key of the run.
    key: String,
    /// The first creation that failed; later creations are skipped (a pod
    /// without its claim would never start).
    setback: Option<Setback>,
    /// Whether a status was written (a setback must always be recorded).
    written: bool,
    requeue: Option<Duration>,
}

impl<R: RunKind> Executor<'_, R> {
    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        Api::namespaced(self.ctx.client.clone(), &self.namespace)
    }

    fn uid(&self) -> String {
        self.run.meta().uid.clone().unwrap_or_default()
    }

    async fn carry_out(&mut self, item: Work<R::Status>) -> Result<()> {
        match item {
            Work::CreateClaim(claim) => self.create(*claim, CLAIM).await,
            Work::CreatePod(pod) => self.create(*pod, POD).await,
            Work::CreateChild(child) => self.create_child(*child).await,
            Work::StopPod(name) => self.stop_pod(&name).await?,
            Work::CancelChild(name) => self.cancel_child(&name).await?,
            Work::Publish(notice) => self.publish(&notice).await,
            Work::WriteStatus(status) => self.write_status(*status).await?,
            Work::RequeueAfter(after) => self.requeue = sooner(self.requeue, after),
        }
        Ok(())
    }

    fn create_params() -> PostParams {
        PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        }
    }

    /// Creates a pod or claim; on 409 adopts it only if this run controls it.
    async fn create<K>(&mut self, object: K, made: Made)
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned,
    {
        if self.setback.is_some() {
            return;
        }
        let name = object.name_any();
        let api: Api<K> = self.api();
        let error = match api.create(&Self::create_params(), &object).await {
            Ok(_) => {
                info!(run = %self.run.name_any(), %name, what = made.what, "created");
                return;
            }
            Err(error) => error,
        };
        let setback = match classify(&error) {
            Verdict::Conflict => match api.get_opt(&name).await {
                Ok(Some(existing)) => self.judge_existing(existing.meta(), &name, made),
                Ok(None) => Some(self.retrying(made, &name, "it was being deleted".into())),
                Err(error) => Some(self.setback_of(&error, made, &name)),
            },
            _ => Some(self.setback_of(&error, made, &name)),
        };
        self.setback = setback;
    }

    /// Creates a child run. An existing one is read untyped: it need not
    /// decode to be judged by its owner.
    async fn create_child(&mut self, child: MyTaskRun) {
        if self.setback.is_some() {
            return;
        }
        let name = child.name_any();
        let api: Api<MyTaskRun> = self.api();
        let error = match api.create(&Self::create_params(), &child).await {
            Ok(_) => {
                info!(run = %self.run.name_any(), child = %name, "created task run");
                return;
            }
            Err(error) => error,
        };
        let setback = match classify(&error) {
            Verdict::Conflict => {
                let (children, _) = dynamic_api::<MyTaskRun>(&self.ctx.client, Some(&self.namespace));
                match children.get_opt(&name).await {
                    Ok(Some(existing)) => self.judge_existing(&existing.metadata, &name, CHILD),
                    Ok(None) => Some(self.retrying(CHILD, &name, "it was being deleted".into())),
                    Err(error) => Some(self.setback_of(&error, CHILD, &name)),
                }
            }
            _ => Some(self.setback_of(&error, CHILD, &name)),
        };
        self.setback = setback;
    }

    /// Adopts an object made by an earlier reconcile (maybe of a previous
    /// controller), never one that another owner controls.
    fn judge_existing(&self, meta: &ObjectMeta, name: &str, made: Made) -> Option<Setback> {
        if is_controlled_by(meta, &self.uid()) {
            info!(run = %self.run.name_any(), %name, what = made.what, "adopted existing object");
            return None;
        }
        Some(Setback {
            ends_run: true,
            reason: made.taken,
            message: name_taken(made.what, name, R::KIND, &self.run.name_any()),
        })
    }

    fn setback_of(&self, error: &kube::Error, made: Made, name: &str) -> Setback {
        match classify(error) {
            Verdict::Transient(message) => self.retrying(made, name, message),
            Verdict::Refused(message) => Setback {
                ends_run: true,
                reason: made.failed,
                message: format!("{} {name:?} was refused by the API server: {message}", made.what),
            },
            // A create answered 404: the namespace is gone or going.
            Verdict::NotFound | Verdict::Conflict => Setback {
                ends_run: true,
                reason: made.failed,
                message: format!("{} {name:?} was refused by the API server: {error}", made.what),
            },
        }
    }

    fn retrying(&self, made: Made, name: &str, message: String) -> Setback {
        Setback {
            ends_run: false,
            reason: made.retrying,
            message: format!("{} {name:?} could not be created yet ({message}); retrying", made.what),
        }
    }

    /// Lowering activeDeadlineSeconds makes the kubelet stop every
    /// container but keeps the pod and its logs.
    async fn stop_pod(&self, name: &str) -> Result<()> {
        let patch = json!({ "spec": { "activeDeadlineSeconds": 1 } });
        let pods: Api<Pod> = self.api();
        match pods.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => info!(pod = %name, "stopping pod"),
            Err(error) => self.best_effort(error, "stop pod", name)?,
        }
        Ok(())
    }

    async fn cancel_child(&self, name: &str) -> Result<()> {
        let patch = json!({ "spec": { "status": "Cancelled" } });
        let (children, _) = dynamic_api::<MyTaskRun>(&self.ctx.client, Some(&self.namespace));
        match children
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => info!(child = %name, "cancelled task run"),
            Err(error) => self.best_effort(error, "cancel task run", name)?,
        }
        Ok(())
    }

    /// A stop or cancel that failed: gone or already final is fine, refused
    /// is logged (retrying cannot help), transient is tried again.
    fn best_effort(&self, error: kube::Error, what: &str, name: &str) -> Result<()> {
        match classify(&error) {
            Verdict::NotFound => Ok(()),
            Verdict::Refused(message) => {
                warn!(%name, %message, "cannot {what}");
                Ok(())
            }
            Verdict::Transient(_) | Verdict::Conflict => Err(Error::Kube(error)),
        }
    }

    async fn publish(&self, notice: &Notice) {
        let reference = self.run.object_ref(&());
        self.ctx
            .publish(&reference, notice.warning, &notice.reason, &notice.message)
            .await;
    }

    /// Writes the decided status, with the setback (if any) recorded in it.
    async fn write_status(&mut self, mut status: R::Status) -> Result<()> {
        self.written = true;
        if let Some(setback) = self.setback.clone() {
            self.record_setback(&mut status, &setback).await?;
        }
        if self.run.status() == Some(&status) {
            return Ok(());
        }
        if let Some(wait) = self.hold_back(&status) {
            // The newest status is decided again, and written, then.
            self.requeue = sooner(self.requeue, wait);
            return Ok(());
        }
        replace_status::<R>(self.ctx, &self.namespace, &self.run.name_any(), &status).await?;
        R::written(self.ctx, self.run, &status);
        Ok(())
    }

    /// How long to hold back a write that only reports progress, if the
    /// run's status was written too recently (a second ago, longer while
    /// many runs are in progress; see `Pacing`).
    fn hold_back(&self, status: &R::Status) -> Option<Duration> {
        let stored = self.run.status()?;
        let progress_only = self.setback.is_none() && R::is_progress_only(stored, status);
        progress_only.then(|| self.ctx.pacing.hold_back(&self.key)).flatten()
    }

    async fn record_setback(&self, status: &mut R::Status, setback: &Setback) -> Result<()> {
        let now = Time(Timestamp::now());
        R::forget_unmade(status);
        if setback.ends_run {
            warn!(run = %self.run.name_any(), reason = setback.reason, message = %setback.message, "run refused");
            set_succeeded(
                R::conditions(status),
                "False",
                setback.reason,
                setback.message.clone(),
                now.clone(),
            );
            *R::completion_time(status) = Some(now);
            for child in R::children(status) {
                self.cancel_child(&child).await?;
            }
            self.publish(&Notice {
                warning: true,
                reason: setback.reason.to_string(),
                message: setback.message.clone(),
            })
            .await;
        } else {
            set_succeeded(
                R::conditions(status),
                "Unknown",
                setback.reason,
                setback.message.clone(),
                now,
            );
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<Requeue> {
        if self.setback.is_some() && !self.written {
            let stored = self.run.status().cloned().unwrap_or_default();
            self.write_status(stored).await?;
        }
        match &self.setback {
            Some(setback) if !setback.ends_run => {
                let delay = self.ctx.backoff.failed(&self.key);
                warn!(run = %self.run.name_any(), message = %setback.message, retry_in = ?delay, "creation failed; backing off");
                self.requeue = sooner(self.requeue, delay);
            }
            Some(_) => {
                // The run has ended: nothing to look at again.
                self.ctx.backoff.succeeded(&self.key);
                self.requeue = None;
            }
            None => self.ctx.backoff.succeeded(&self.key),
        }
        Ok(match self.requeue {
            Some(after) => Requeue::requeue(after),
            None => Requeue::await_change(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use kube::runtime::events::{Recorder, Reporter};
    use serde_json::{Value, json};

    use super::*;
    use crate::api::{TaskRunSpec, TaskRunStatus, TaskSpec};
    use crate::controller::context::{Backoff, Events};
    use crate::controller::mock_api::{MockApi, Seen, status};
    use crate::controller::status_writer::PROGRESS_WRITE_INTERVAL;
    use crate::controller::stores::{Stores, Versions};
    use crate::metrics::Metrics;
    use crate::plan::AttemptInputs;
    use crate::pod::render::RenderSettings;
    use crate::pod::results::FetchedResults;
    use crate::reconcile::taskrun::{Action, DecideSettings, Observed, TaskLookup, decide};

    static NO_INPUTS: AttemptInputs = AttemptInputs::NONE;

    const PODS: &str = "/api/v1/namespaces/ci/pods";
    const RUN_STATUS: &str = "/mytaskruns/tr/status";

    fn settings() -> DecideSettings {
        DecideSettings {
            render: RenderSettings {
                entrypoint_image: "127.0.0.1:5000/cicd/entrypoint:dev".into(),
                ..Default::default()
            },
            default_timeout: Duration::from_secs(3600),
            node_lost_after: Duration::from_secs(40),
        }
    }

    fn task() -> TaskSpec {
        serde_json::from_value(json!({
            "steps": [{"name": "one", "image": "127.0.0.1:5000/cicd/bash:5", "script": "echo hi"}]
        }))
        .expect("a task")
    }

    fn run(timeout: &str) -> MyTaskRun {
        let mut run = MyTaskRun::new(
            "tr",
            TaskRunSpec {
                task_spec: Some(task()),
                timeout: Some(timeout.into()),
                ..Default::default()
            },
        );
        run.metadata.namespace = Some("ci".into());
        run.metadata.uid = Some("uid-1".into());
        run
    }

    fn context(api: &MockApi) -> Context {
        let client = api.client();
        let reporter = Reporter {
            controller: "test".into(),
            instance: None,
        };
        Context {
            client: client.clone(),
            events: Events::start(Recorder::new(client, reporter)),
            stores: Stores::new().0,
            versions: Versions::default(),
            pacing: Default::default(),
            settings: settings(),
            metrics: Arc::new(Metrics::default()),
            backoff: Backoff::default(),
            queues: Default::default(),
            history: Default::default(),
            resolver: Default::default(),
            resolutions: Default::default(),
            registry: Default::default(),
            images: Default::default(),
            entrypoint_maps: None,
        }
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + seconds).expect("valid time")
    }

    fn actions(run: &MyTaskRun, now: i64) -> Vec<Work<TaskRunStatus>> {
        let task = task();
        let observed = Observed {
            run,
            task: TaskLookup::Inline(&task),
            pod: None,
            results: &FetchedResults::default(),
            node: None,
            inputs: &NO_INPUTS,
            now: at(now),
        };
        decide(observed, &settings()).into_iter().map(work_of).collect()
    }

    fn work_of(action: Action) -> Work<TaskRunStatus> {
        match action {
            Action::CreateClaim(claim) => Work::CreateClaim(claim),
            Action::CreatePod(pod) => Work::CreatePod(pod),
            Action::StopPod(name) => Work::StopPod(name),
            Action::Publish(notice) => Work::Publish(notice),
            Action::WriteStatus(status) => Work::WriteStatus(status),
            Action::RequeueAfter(after) => Work::RequeueAfter(after),
        }
    }

    /// The server: `pods` answers pod requests; the status write and
    /// events always succeed.
    fn server(run: &MyTaskRun, pods: impl Fn(&Seen) -> (u16, Value) + Send + Sync + 'static) -> MockApi {
        let stored = serde_json::to_value(run).expect("run serializes");
        MockApi::new(move |seen| {
            if seen.path.ends_with(RUN_STATUS) {
                (200, stored.clone())
            } else if seen.path.contains("/events") {
                (201, seen.body.clone())
            } else if seen.path.starts_with(PODS) {
                pods(seen)
            } else {
                status(404, "NotFound", "not scripted")
            }
        })
    }

    /// The status the executor wrote last.
    fn written(api: &MockApi) -> TaskRunStatus {
        let bodies = api.bodies("PATCH", RUN_STATUS);
        let last = bodies.last().expect("a status write");
        // A JSON patch that sets the whole status (see `status_writer`).
        assert_eq!(last[0]["op"], "add", "{last}");
        assert_eq!(last[0]["path"], "/status", "{last}");
        serde_json::from_value(last[0]["value"].clone()).expect("a status")
    }

    fn condition(status: &TaskRunStatus) -> (String, String, String) {
        let condition = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Succeeded")
            .expect("Succeeded");
        (
            condition.status.clone(),
            condition.reason.clone(),
            condition.message.clone(),
        )
    }

    #[tokio::test]
    async fn a_pod_too_large_ends_the_run_with_the_server_message() {
        let run = run("1h");
        let api = server(&run, |_| {
            status(
                413,
                "RequestEntityTooLarge",
                "request entity too large: limit is 3145728",
            )
        });
        let ctx = context(&api);
        let requeue = execute(&run, actions(&run, 0), &ctx).await.expect("executes");
        assert_eq!(requeue, Requeue::await_change(), "a refusal is not retried");
        let (state, reason, message) = condition(&written(&api));
        assert_eq!((state.as_str(), reason.as_str()), ("False", "PodCreationFailed"));
        assert_eq!(
            message,
            "pod \"tr-pod\" was refused by the API server: HTTP 413: request entity too large: limit is 3145728"
        );
        assert!(written(&api).completion_time.is_some());
        ctx.events.idle().await; // events are published in the background
        let events = api.bodies("POST", "/events");
        assert!(events.iter().any(|e| e["reason"] == "PodCreationFailed"), "{events:?}");
    }

    #[tokio::test]
    async fn a_server_error_backs_off_and_the_run_then_times_out() {
        let mut run = run("30s");
        let api = server(&run, |_| status(500, "InternalError", "etcdserver: request timed out"));
        let ctx = context(&api);

        let first = execute(&run, actions(&run, 0), &ctx).await.expect("executes");
        assert_eq!(first, Requeue::requeue(Duration::from_secs(1)));
        let status = written(&api);
        let (state, reason, message) = condition(&status);
        assert_eq!((state.as_str(), reason.as_str()), ("Unknown", "PodCreationRetrying"));
        assert!(message.contains("HTTP 500: etcdserver: request timed out"), "{message}");
        assert_eq!(status.pod_name, None, "the pod that was not made is not recorded");

        run.status = Some(status);
        let second = execute(&run, actions(&run, 3), &ctx).await.expect("executes");
        assert_eq!(second, Requeue::requeue(Duration::from_secs(2)), "exponential");
        assert_eq!(api.bodies("POST", PODS).len(), 2, "the pod was tried again");

        run.status = Some(written(&api));
        execute(&run, actions(&run, 31), &ctx).await.expect("executes");
        assert_eq!(api.bodies("POST", PODS).len(), 2, "no try after the timeout");
        let (state, reason, message) = condition(&written(&api));
        assert_eq!((state.as_str(), reason.as_str()), ("False", "TaskRunTimeout"));
        assert!(message.contains("etcdserver: request timed out"), "{message}");
    }

    #[tokio::test]
    async fn a_quota_refusal_is_waited_for() {
        let run = run("1h");
        let api = server(&run, |_| {
            status(
                403,
                "Forbidden",
                "pods \"tr-pod\" is forbidden: exceeded quota: q, requested: pods=1",
            )
        });
        let ctx = context(&api);
        let requeue = execute(&run, actions(&run, 0), &ctx).await.expect("executes");
        assert_eq!(requeue, Requeue::requeue(Duration::from_secs(1)));
        let (state, reason, message) = condition(&written(&api));
        assert_eq!((state.as_str(), reason.as_str()), ("Unknown", "PodCreationRetrying"));
        assert!(message.contains("exceeded quota"), "{message}");
    }

    fn existing_pod(owner_uid: &str) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "tr-pod",
                "namespace": "ci",
                "ownerReferences": [{
                    "apiVersion": "v1", "kind": "Whatever", "name": "w",
                    "uid": owner_uid, "controller": true
                }]
            }
        })
    }

    #[tokio::test]
    async fn a_conflict_with_a_foreign_pod_is_refused() {
        let run = run("1h");
        let api = server(&run, |seen| match seen.method.as_str() {
            "POST" => status(409, "AlreadyExists", "pods \"tr-pod\" already exists"),
            _ => (200, existing_pod("someone-else")),
        });
        let ctx = context(&api);
        execute(&run, actions(&run, 0), &ctx).await.expect("executes");
        let (state, reason, message) = condition(&written(&api));
        assert_eq!((state.as_str(), reason.as_str()), ("False", "PodNameTaken"));
        assert_eq!(message, "pod \"tr-pod\" exists and is not owned by MyTaskRun \"tr\"");
        assert!(
            api.requests().iter().all(|r| !r.starts_with("PATCH /api/v1")),
            "the foreign pod is not touched: {:?}",
            api.requests()
        );
    }

    #[tokio::test]
    async fn a_conflict_with_our_own_pod_adopts_it() {
        let run = run("1h");
        let api = server(&run, |seen| match seen.method.as_str() {
            "POST" => status(409, "AlreadyExists", "pods \"tr-pod\" already exists"),
            _ => (200, existing_pod("uid-1")),
        });
        let ctx = context(&api);
        let requeue = execute(&run, actions(&run, 0), &ctx).await.expect("executes");
        assert_eq!(requeue, Requeue::requeue(Duration::from_secs(3600)));
        let status = written(&api);
        let (state, reason, _) = condition(&status);
        assert_eq!((state.as_str(), reason.as_str()), ("Unknown", "Pending"));
        assert_eq!(status.pod_name.as_deref(), Some("tr-pod"));
    }

    fn with_condition(status: &TaskRunStatus, reason: &str, message: &str) -> TaskRunStatus {
        let mut status = status.clone();
        let now = Time(Timestamp::now());
        set_succeeded(&mut status.conditions, "Unknown", reason, message.into(), now);
        status
    }

    /// A run whose first reconcile created its pod and wrote its status
    /// (the one PATCH so far), with that status in hand.
    async fn started_once() -> (MyTaskRun, MockApi, Context) {
        let mut run = run("1h");
        let api = server(&run, |seen| (201, seen.body.clone()));
        let ctx = context(&api);
        execute(&run, actions(&run, 0), &ctx).await.expect("executes");
        run.status = Some(written(&api));
        (run, api, ctx)
    }

    #[tokio::test]
    async fn progress_written_less_than_a_second_after_the_last_write_waits_but_a_new_reason_does_not() {
        let (run, api, ctx) = started_once().await;
        let stored = run.status.clone().expect("status");

        let progress = with_condition(&stored, "Pending", "0/1 nodes are available");
        let requeue = execute(&run, vec![Work::WriteStatus(Box::new(progress))], &ctx)
            .await
            .expect("executes");
        assert_eq!(api.bodies("PATCH", RUN_STATUS).len(), 1, "the progress waits");
        let wait = requeue.after().expect("looked at again when it may be written");
        assert!(wait <= PROGRESS_WRITE_INTERVAL && !wait.is_zero(), "{wait:?}");

        let running = with_condition(&stored, "Running", "step \"one\" is running");
        execute(&run, vec![Work::WriteStatus(Box::new(running))], &ctx)
            .await
            .expect("executes");
        assert_eq!(
            api.bodies("PATCH", RUN_STATUS).len(),
            2,
            "a new reason is written at once"
        );
        assert_eq!(condition(&written(&api)).1, "Running");
    }

    #[tokio::test]
    async fn progress_is_written_once_the_interval_has_passed() {
        let (run, api, ctx) = started_once().await;
        tokio::time::sleep(PROGRESS_WRITE_INTERVAL).await;
        let progress = with_condition(run.status.as_ref().expect("status"), "Pending", "0/1 nodes");
        execute(&run, vec![Work::WriteStatus(Box::new(progress))], &ctx)
            .await
            .expect("executes");
        assert_eq!(api.bodies("PATCH", RUN_STATUS).len(), 2);
        assert_eq!(condition(&written(&api)).2, "0/1 nodes");
    }
}
