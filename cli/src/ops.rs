//! What the commands and the dashboard do to the cluster: find a run by
//! name, start, cancel and rerun runs, list them, read their children and
//! events. Every API error is turned into words (see `client`).

use std::collections::BTreeMap;

use cicd_controller::api::{
    MyPipeline, MyPipelineRun, MyTask, MyTaskRun, Param, PipelineRunSpec, PipelineSpec, PodTemplate, RunSpecStatus,
    TaskRunSpec, WorkspaceBinding,
};
use cicd_controller::pipeline::{LABEL_PIPELINE_RUN, LABEL_PIPELINE_TASK};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};

use crate::args::check_params;
use crate::client::{CliError, Cluster, api_error, is_not_found};
use crate::runs::{Outcome, RunKind, RunSummary, sort_newest_first};

/// A run of either kind.
#[derive(Debug, Clone)]
pub enum AnyRun {
    Task(Box<MyTaskRun>),
    Pipeline(Box<MyPipelineRun>),
}

impl AnyRun {
    pub fn summary(&self) -> RunSummary {
        match self {
            AnyRun::Task(run) => RunSummary::of_task_run(run),
            AnyRun::Pipeline(run) => RunSummary::of_pipeline_run(run),
        }
    }

    pub fn name(&self) -> String {
        match self {
            AnyRun::Task(run) => run.name_any(),
            AnyRun::Pipeline(run) => run.name_any(),
        }
    }

    pub fn kind(&self) -> RunKind {
        match self {
            AnyRun::Task(_) => RunKind::TaskRun,
            AnyRun::Pipeline(_) => RunKind::PipelineRun,
        }
    }

    /// The object as JSON, for `-o json|yaml`.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            AnyRun::Task(run) => serde_json::to_value(run.as_ref()),
            AnyRun::Pipeline(run) => serde_json::to_value(run.as_ref()),
        }
        .unwrap_or(serde_json::Value::Null)
    }
}

/// Splits `kind/name` as kubectl writes it (`mpr/x`, `mytaskrun/x`,
/// `mypipelinerun.cicdoperator.ning1875.io/x`): the kind, when one is given,
/// and the name.
pub fn parse_run_ref(text: &str) -> Result<(Option<RunKind>, String), CliError> {
    let Some((kind, name)) = text.split_once('/') else {
        return Ok((None, text.to_string()));
    };
    let kind_word = kind.split('.').next().unwrap_or_default().to_ascii_lowercase();
    let kind = match kind_word.as_str() {
        "mtr" | "mytaskrun" | "mytaskruns" | "taskrun" | "tr" => RunKind::TaskRun,
        "mpr" | "mypipelinerun" | "mypipelineruns" | "pipelinerun" | "pr" => RunKind::PipelineRun,
        _ => {
            return Err(CliError::Invalid(format!(
                "{text:?}: unknown kind {kind:?} (use mtr/NAME, mpr/NAME or just NAME)"
            )));
        }
    };
    Ok((Some(kind), name.to_string()))
}

/// Reads the run `text` names (see [`parse_run_ref`]) in `namespace`: a
/// MyPipelineRun first, then a MyTaskRun.
pub async fn find_run(cluster: &Cluster, namespace: &str, text: &str) -> Result<AnyRun, CliError> {
    let (kind, name) = parse_run_ref(text)?;
    if kind != Some(RunKind::TaskRun) {
        let api: Api<MyPipelineRun> = Api::namespaced(cluster.client.clone(), namespace);
        match api.get_opt(&name).await {
            Ok(Some(run)) => return Ok(AnyRun::Pipeline(Box::new(run))),
            Ok(None) => {}
            Err(e) => return Err(api_error(e, "get", "mypipelineruns", &name, namespace)),
        }
    }
    if kind != Some(RunKind::PipelineRun) {
        let api: Api<MyTaskRun> = Api::namespaced(cluster.client.clone(), namespace);
        match api.get_opt(&name).await {
            Ok(Some(run)) => return Ok(AnyRun::Task(Box::new(run))),
            Ok(None) => {}
            Err(e) => return Err(api_error(e, "get", "mytaskruns", &name, namespace)),
        }
    }
    Err(CliError::NoSuchRun {
        name,
        namespace: namespace.to_string(),
    })
}

/// What `cicd start` was asked for.
#[derive(Debug, Clone, Default)]
pub struct StartRequest {
    /// The MyTask or MyPipeline to run.
    pub target: String,
    /// `-p`, parsed.
    pub params: Vec<Param>,
    /// `-w`, parsed.
    pub workspaces: Vec<WorkspaceBinding>,
    /// `--timeout` (a duration such as `10m`).
    pub timeout: Option<String>,
    /// `--service-account`.
    pub service_account: Option<String>,
    /// `--host-network`: the pods use the node's network (to reach servers
    /// on the node's loopback).
    pub host_network: bool,
}

/// Names of objects of a kind in the namespace, for "unknown task" errors.
async fn names_of<K>(api: &Api<K>) -> String
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.list(&ListParams::default().limit(50)).await {
        Ok(list) if list.items.is_empty() => "none".to_string(),
        Ok(list) => list.items.iter().map(|o| o.name_any()).collect::<Vec<_>>().join(", "),
        Err(_) => "unknown".to_string(),
    }
}

/// Declared workspaces that are required and not bound by `-w`.
fn missing_workspaces(what: &str, required: &[&str], given: &[WorkspaceBinding]) -> Result<(), String> {
    let missing: Vec<String> = required
        .iter()
        .filter(|name| !given.iter().any(|b| b.name == **name))
        .map(|name| {
            format!("missing workspace {name:?}: pass -w {name}=emptyDir (or pvc:CLAIM, secret:S, configmap:C)")
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\n({what})", missing.join("\n")))
    }
}

fn pod_template(request: &StartRequest) -> Option<PodTemplate> {
    request.host_network.then(|| PodTemplate {
        host_network: Some(true),
        ..PodTemplate::default()
    })
}

/// Creates a MyTaskRun of the MyTask `request.target`, after checking the
/// params and workspaces against the task. Returns the created run.
/// The MyTask or MyPipeline `name`, or an error that lists what there is.
/// `kind` is `task` or `pipeline`, `resource` its plural.
async fn definition<K>(cluster: &Cluster, kind: &str, resource: &str, name: &str) -> Result<K, CliError>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let ns = cluster.namespace.as_str();
    let api: Api<K> = Api::namespaced(cluster.client.clone(), ns);
    match api.get_opt(name).await {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(CliError::Invalid(format!(
            "unknown {kind} {name:?} in namespace {ns:?} ({}s here: {})",
            K::kind(&()),
            names_of(&api).await
        ))),
        Err(e) => Err(api_error(e, "get", resource, name, ns)),
    }
}

/// Checks `-p` against the declared params (filling defaults' types) and
/// `-w` against the required workspaces.
fn check_request<'a>(
    what: &str,
    params: &[cicd_controller::api::ParamSpec],
    workspaces: impl Iterator<Item = (&'a str, bool)>,
    request: &mut StartRequest,
) -> Result<(), CliError> {
    check_params(what, params, &mut request.params).map_err(CliError::Invalid)?;
    let required: Vec<&str> = workspaces
        .filter(|(_, optional)| !optional)
        .map(|(name, _)| name)
        .collect();
    missing_workspaces(what, &required, &request.workspaces).map_err(CliError::Invalid)
}

pub async fn start_task(cluster: &Cluster, mut request: StartRequest) -> Result<MyTaskRun, CliError> {
    let task: MyTask = definition(cluster, "task", "mytasks", &request.target).await?;
    let declared = task.spec.workspaces.iter().map(|w| (w.name.as_str(), w.optional));
    check_request(
        &format!("task {:?}", request.target),
        &task.spec.params,
        declared,
        &mut request,
    )?;
    let run = MyTaskRun {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-run-", request.target)),
            ..ObjectMeta::default()
        },
        spec: TaskRunSpec {
            task_ref: Some(request.target.clone()),
            pod_template: pod_template(&request),
            params: request.params,
            workspaces: request.workspaces,
            timeout: request.timeout,
            service_account_name: request.service_account,
            ..TaskRunSpec::default()
        },
        status: None,
    };
    let ns = cluster.namespace.as_str();
    let api: Api<MyTaskRun> = Api::namespaced(cluster.client.clone(), ns);
    api.create(&PostParams::default(), &run)
        .await
        .map_err(|e| api_error(e, "create", "mytaskruns", "", ns))
}

pub async fn start_pipeline(cluster: &Cluster, mut request: StartRequest) -> Result<MyPipelineRun, CliError> {
    let pipeline: MyPipeline = definition(cluster, "pipeline", "mypipelines", &request.target).await?;
    let declared = pipeline.spec.workspaces.iter().map(|w| (w.name.as_str(), w.optional));
    check_request(
        &format!("pipeline {:?}", request.target),
        &pipeline.spec.params,
        declared,
        &mut request,
    )?;
    let run = MyPipelineRun {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-run-", request.target)),
            ..ObjectMeta::default()
        },
        spec: PipelineRunSpec {
            pipeline_ref: Some(request.target.clone()),
            pod_template: pod_template(&request),
            params: request.params,
            workspaces: request.workspaces,
            timeouts: request.timeout.map(|t| cicd_controller::api::PipelineTimeouts {
                pipeline: Some(t),
                ..Default::default()
            }),
            service_account_name: request.service_account,
            ..PipelineRunSpec::default()
        },
        status: None,
    };
    let ns = cluster.namespace.as_str();
    let api: Api<MyPipelineRun> = Api::namespaced(cluster.client.clone(), ns);
    api.create(&PostParams::default(), &run)
        .await
        .map_err(|e| api_error(e, "create", "mypipelineruns", "", ns))
}

/// Sets `spec.status: Cancelled` on the run.
pub async fn cancel(cluster: &Cluster, namespace: &str, run: &AnyRun) -> Result<(), CliError> {
    let patch = Patch::Merge(serde_json::json!({"spec": {"status": "Cancelled"}}));
    let name = run.name();
    let params = PatchParams::default();
    let result = match run.kind() {
        RunKind::TaskRun => Api::<MyTaskRun>::namespaced(cluster.client.clone(), namespace)
            .patch(&name, &params, &patch)
            .await
            .map(|_| ()),
        RunKind::PipelineRun => Api::<MyPipelineRun>::namespaced(cluster.client.clone(), namespace)
            .patch(&name, &params, &patch)
            .await
            .map(|_| ()),
    };
    result.map_err(|e| api_error(e, "patch", run.kind().resource(), &name, namespace))
}

/// The prefix a rerun's generated name starts with: the original's own
/// `generateName`, else its name and a dash.
fn rerun_prefix(meta: &ObjectMeta) -> String {
    match &meta.generate_name {
        Some(prefix) if !prefix.is_empty() => prefix.clone(),
        _ => format!("{}-", meta.name.clone().unwrap_or_default()),
    }
}

/// Labels a rerun keeps: the user's, not the controller's (a rerun of a
/// pipeline's child is not that pipeline's child).
fn user_labels(meta: &ObjectMeta) -> Option<BTreeMap<String, String>> {
    let labels: BTreeMap<String, String> = meta
        .labels
        .iter()
        .flatten()
        .filter(|(key, _)| !key.starts_with(cicd_controller::api::GROUP))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (!labels.is_empty()).then_some(labels)
}

fn fresh_meta(meta: &ObjectMeta) -> ObjectMeta {
    ObjectMeta {
        generate_name: Some(rerun_prefix(meta)),
        labels: user_labels(meta),
        ..ObjectMeta::default()
    }
}

/// A new run with the same spec (not cancelled) and a generated name.
pub async fn rerun(cluster: &Cluster, namespace: &str, run: &AnyRun) -> Result<AnyRun, CliError> {
    match run {
        AnyRun::Task(old) => {
            let mut spec = old.spec.clone();
            spec.status = None::<RunSpecStatus>;
            let new = MyTaskRun {
                metadata: fresh_meta(&old.metadata),
                spec,
                status: None,
            };
            Api::<MyTaskRun>::namespaced(cluster.client.clone(), namespace)
                .create(&PostParams::default(), &new)
                .await
                .map(|r| AnyRun::Task(Box::new(r)))
                .map_err(|e| api_error(e, "create", "mytaskruns", "", namespace))
        }
        AnyRun::Pipeline(old) => {
            let mut spec = old.spec.clone();
            spec.status = None;
            let new = MyPipelineRun {
                metadata: fresh_meta(&old.metadata),
                spec,
                status: None,
            };
            Api::<MyPipelineRun>::namespaced(cluster.client.clone(), namespace)
                .create(&PostParams::default(), &new)
                .await
                .map(|r| AnyRun::Pipeline(Box::new(r)))
                .map_err(|e| api_error(e, "create", "mypipelineruns", "", namespace))
        }
    }
}

/// Every run in `namespace` (None: all namespaces), newest first. Child
/// MyTaskRuns of pipelines are left out unless `children`.
pub async fn list_runs(
    cluster: &Cluster,
    namespace: Option<&str>,
    children: bool,
) -> Result<Vec<RunSummary>, CliError> {
    let where_ = namespace.unwrap_or("(all)");
    let (task_api, pipeline_api): (Api<MyTaskRun>, Api<MyPipelineRun>) = match namespace {
        Some(ns) => (
            Api::namespaced(cluster.client.clone(), ns),
            Api::namespaced(cluster.client.clone(), ns),
        ),
        None => (Api::all(cluster.client.clone()), Api::all(cluster.client.clone())),
    };
    let params = ListParams::default();
    let task_runs = task_api
        .list(&params)
        .await
        .map_err(|e| api_error(e, "list", "mytaskruns", "", where_))?;
    let pipeline_runs = pipeline_api
        .list(&params)
        .await
        .map_err(|e| api_error(e, "list", "mypipelineruns", "", where_))?;
    let mut runs: Vec<RunSummary> = pipeline_runs.items.iter().map(RunSummary::of_pipeline_run).collect();
    runs.extend(
        task_runs
            .items
            .iter()
            .map(RunSummary::of_task_run)
            .filter(|run| children || run.parent.is_none()),
    );
    sort_newest_first(&mut runs);
    Ok(runs)
}

/// The child MyTaskRuns of a pipeline run, by pipeline task name. A
/// matrixed task has several; the one kept stands for them all: a failed
/// one, else one not finished, else the first by name.
pub async fn children_of(
    cluster: &Cluster,
    namespace: &str,
    run_name: &str,
) -> Result<BTreeMap<String, MyTaskRun>, CliError> {
    let api: Api<MyTaskRun> = Api::namespaced(cluster.client.clone(), namespace);
    let list = api
        .list(&ListParams::default().labels(&format!("{LABEL_PIPELINE_RUN}={run_name}")))
        .await
        .map_err(|e| api_error(e, "list", "mytaskruns", "", namespace))?;
    Ok(representatives(list.items))
}

/// One child per pipeline task (see [`children_of`]).
pub fn representatives(runs: Vec<MyTaskRun>) -> BTreeMap<String, MyTaskRun> {
    // Lower ranks win: the state a matrixed task's one node should show.
    let rank = |run: &MyTaskRun| match RunSummary::of_task_run(run).outcome {
        Outcome::Failed => 0,
        Outcome::Pending | Outcome::Running => 1,
        Outcome::Succeeded => 2,
    };
    let mut kept: BTreeMap<String, MyTaskRun> = BTreeMap::new();
    for run in runs {
        let Some(task) = run.labels().get(LABEL_PIPELINE_TASK).cloned() else {
            continue;
        };
        let better = kept
            .get(&task)
            .is_none_or(|old| (rank(&run), run.name_any()) < (rank(old), old.name_any()));
        if better {
            kept.insert(task, run);
        }
    }
    kept
}

/// The pipeline a run executes: the copy the controller resolved into its
/// status, else the inline spec, else the named MyPipeline as it is now.
pub async fn pipeline_spec_of(
    cluster: &Cluster,
    namespace: &str,
    run: &MyPipelineRun,
) -> Result<PipelineSpec, CliError> {
    if let Some(spec) = run.status.as_ref().and_then(|s| s.pipeline_spec.clone()) {
        return Ok(spec);
    }
    if let Some(spec) = run.spec.pipeline_spec.clone() {
        return Ok(spec);
    }
    let name = run.spec.pipeline_ref.clone().unwrap_or_default();
    let api: Api<MyPipeline> = Api::namespaced(cluster.client.clone(), namespace);
    api.get(&name)
        .await
        .map(|p| p.spec)
        .map_err(|e| api_error(e, "get", "mypipelines", &name, namespace))
}

/// Events about the object `name`, oldest first.
pub async fn events_of(cluster: &Cluster, namespace: &str, name: &str) -> Result<Vec<Event>, CliError> {
    let api: Api<Event> = Api::namespaced(cluster.client.clone(), namespace);
    let list = api
        .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
        .await
        .map_err(|e| api_error(e, "list", "events", "", namespace))?;
    let mut events = list.items;
    // Older clients set lastTimestamp, newer ones eventTime.
    events.sort_by_key(|e| {
        e.last_timestamp
            .as_ref()
            .map(|t| t.0)
            .or_else(|| e.event_time.as_ref().map(|t| t.0))
    });
    Ok(events)
}

/// The pod, or None when it is gone.
pub async fn pod_opt(cluster: &Cluster, namespace: &str, name: &str) -> Result<Option<Pod>, CliError> {
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), namespace);
    match api.get(name).await {
        Ok(pod) => Ok(Some(pod)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(api_error(e, "get", "pods", name, namespace)),
    }
}

/// The pods of a task run's attempts, oldest first: each recorded retry's,
/// then the current one.
pub fn attempt_pods(run: &MyTaskRun) -> Vec<String> {
    let Some(status) = run.status.as_ref() else {
        return Vec::new();
    };
    let mut pods: Vec<String> = status.retries_status.iter().map(|a| a.pod_name.clone()).collect();
    if let Some(current) = &status.pod_name
        && !pods.contains(current)
    {
        pods.push(current.clone());
    }
    pods
}

#[cfg(test)]
mod tests {
    use super::*;
    use cicd_controller::api::{AttemptStatus, TaskRunStatus};

    #[test]
    fn run_refs_accept_kubectl_spellings() {
        assert_eq!(parse_run_ref("x").expect("ok"), (None, "x".into()));
        assert_eq!(
            parse_run_ref("mpr/x").expect("ok"),
            (Some(RunKind::PipelineRun), "x".into())
        );
        assert_eq!(
            parse_run_ref("mytaskrun.cicdoperator.ning1875.io/x").expect("ok"),
            (Some(RunKind::TaskRun), "x".into())
        );
        assert!(parse_run_ref("pod/x").is_err());
    }

    fn child(name: &str, task: &str, condition: Option<&str>) -> MyTaskRun {
        MyTaskRun {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(BTreeMap::from([(LABEL_PIPELINE_TASK.to_string(), task.to_string())])),
                ..ObjectMeta::default()
            },
            spec: TaskRunSpec::default(),
            status: condition.map(|status| TaskRunStatus {
                conditions: vec![cicd_controller::api::Condition {
                    type_: "Succeeded".into(),
                    status: status.into(),
                    reason: String::new(),
                    message: String::new(),
                    last_transition_time: None,
                }],
                ..TaskRunStatus::default()
            }),
        }
    }

    #[test]
    fn a_matrixed_task_is_shown_by_its_worst_child() {
        let kept = representatives(vec![
            child("r-build-0-a", "build", Some("True")),
            child("r-build-1-b", "build", Some("False")),
            child("r-build-2-c", "build", None),
            child("r-test-0-d", "test", Some("True")),
            child("r-test-1-e", "test", Some("Unknown")),
            child("r-lint", "lint", Some("True")),
        ]);
        let names: Vec<(&str, String)> = kept.iter().map(|(t, r)| (t.as_str(), r.name_any())).collect();
        assert_eq!(
            names,
            [
                ("build", "r-build-1-b".to_string()),
                ("lint", "r-lint".to_string()),
                ("test", "r-test-1-e".to_string())
            ]
        );
    }

    #[test]
    fn attempts_list_retries_then_the_current_pod() {
        let run = MyTaskRun {
            metadata: ObjectMeta::default(),
            spec: TaskRunSpec::default(),
            status: Some(TaskRunStatus {
                pod_name: Some("r-pod-retry1".into()),
                retries_status: vec![AttemptStatus {
                    pod_name: "r-pod".into(),
                    ..AttemptStatus::default()
                }],
                ..TaskRunStatus::default()
            }),
        };
        assert_eq!(attempt_pods(&run), ["r-pod", "r-pod-retry1"]);
    }

    #[test]
    fn reruns_reuse_the_generated_prefix_and_drop_controller_labels() {
        let mut labels = BTreeMap::new();
        labels.insert(LABEL_PIPELINE_RUN.to_string(), "p".to_string());
        labels.insert("team".to_string(), "a".to_string());
        let meta = ObjectMeta {
            name: Some("build-run-abcde".into()),
            generate_name: Some("build-run-".into()),
            labels: Some(labels),
            ..ObjectMeta::default()
        };
        let fresh = fresh_meta(&meta);
        assert_eq!(fresh.generate_name.as_deref(), Some("build-run-"));
        assert_eq!(
            fresh.labels.map(|l| l.into_keys().collect::<Vec<_>>()),
            Some(vec!["team".to_string()])
        );
        let named = ObjectMeta {
            name: Some("tr1".into()),
            ..ObjectMeta::default()
        };
        assert_eq!(rerun_prefix(&named), "tr1-");
    }
}
