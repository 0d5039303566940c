//! The dashboard's JSON, event-stream and log endpoints. Each maps the
//! user's own API errors (403 included) to an HTTP status and a message the
//! page shows.

use std::collections::BTreeMap;
use std::convert::Infallible;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use cicd_controller::api::{MyPipelineRun, MyTaskRun, StepState};
use futures::{AsyncBufReadExt, Stream, StreamExt, TryStreamExt};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::api::LogParams;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use serde::{Deserialize, Serialize};

use super::AppState;
use crate::client::CliError;
use crate::describe::value_text;
use crate::graph::{Graph, TaskState, layout};
use crate::ops::{self, AnyRun, attempt_pods};
use crate::runs::{RunKind, RunSummary};

/// An error as the page receives it: a status and `{"error": "..."}`.
pub struct ApiError(StatusCode, String);

impl From<CliError> for ApiError {
    fn from(error: CliError) -> Self {
        let status = match &error {
            CliError::Forbidden { .. } => StatusCode::FORBIDDEN,
            CliError::NotFound { .. } | CliError::NoSuchRun { .. } => StatusCode::NOT_FOUND,
            CliError::Invalid(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::BAD_GATEWAY,
        };
        ApiError(status, error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

/// `/api/runs` filters.
#[derive(Deserialize, Default)]
pub struct RunsQuery {
    /// Only this namespace (within the dashboard's scope).
    namespace: Option<String>,
    /// Pending, Running, Succeeded or Failed.
    status: Option<String>,
    /// A part of the name.
    name: Option<String>,
}

/// The namespace a request may look at: the dashboard's own scope wins.
fn effective_namespace(state: &AppState, wanted: Option<&str>) -> Option<String> {
    match (&state.scope, wanted.filter(|w| !w.is_empty())) {
        (Some(scope), _) => Some(scope.clone()),
        (None, wanted) => wanted.map(str::to_string),
    }
}

/// Keeps the runs the filters ask for.
pub fn filter_runs(runs: Vec<RunSummary>, status: Option<&str>, name: Option<&str>) -> Vec<RunSummary> {
    runs.into_iter()
        .filter(|run| status.is_none_or(|s| s.is_empty() || run.outcome.as_str().eq_ignore_ascii_case(s)))
        .filter(|run| name.is_none_or(|n| run.name.contains(n)))
        .collect()
}

pub async fn runs(
    State(state): State<AppState>,
    Query(query): Query<RunsQuery>,
) -> Result<Json<Vec<RunSummary>>, ApiError> {
    let namespace = effective_namespace(&state, query.namespace.as_deref());
    let runs = ops::list_runs(&state.cluster, namespace.as_deref(), false).await?;
    Ok(Json(filter_runs(runs, query.status.as_deref(), query.name.as_deref())))
}

/// What changed, as the page hears it.
#[derive(Serialize)]
struct Change {
    kind: &'static str,
    namespace: String,
    name: String,
}

fn change_event<K: ResourceExt>(
    kind: &'static str,
    event: Result<watcher::Event<K>, watcher::Error>,
) -> Option<SseEvent> {
    let object = match event {
        Ok(watcher::Event::Apply(object) | watcher::Event::Delete(object)) => object,
        Ok(watcher::Event::InitDone) => return Some(SseEvent::default().event("ready").data("{}")),
        Ok(_) => return None,
        Err(error) => return Some(SseEvent::default().event("problem").data(error.to_string())),
    };
    let change = Change {
        kind,
        namespace: object.namespace().unwrap_or_default(),
        name: object.name_any(),
    };
    SseEvent::default().event("change").json_data(change).ok()
}

/// Server-sent events: `change` whenever a run (of any kind, children
/// included) is created, updated or deleted in the namespace.
pub async fn watch(
    State(state): State<AppState>,
    Query(query): Query<RunsQuery>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let namespace = effective_namespace(&state, query.namespace.as_deref());
    let client = state.cluster.client.clone();
    let (tasks, pipelines): (Api<MyTaskRun>, Api<MyPipelineRun>) = match &namespace {
        Some(ns) => (Api::namespaced(client.clone(), ns), Api::namespaced(client, ns)),
        None => (Api::all(client.clone()), Api::all(client)),
    };
    let tasks = watcher(tasks, watcher::Config::default())
        .default_backoff()
        .filter_map(|e| async move { change_event("TaskRun", e) });
    let pipelines = watcher(pipelines, watcher::Config::default())
        .default_backoff()
        .filter_map(|e| async move { change_event("PipelineRun", e) });
    let stream = futures::stream::select(tasks, pipelines).map(Ok);
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// A step as the run page shows it, with where its log is.
#[derive(Serialize)]
struct StepView {
    name: String,
    state: String,
    reason: String,
    exit_code: Option<i32>,
    started: Option<Timestamp>,
    finished: Option<Timestamp>,
    /// The pod and container to read the log from.
    pod: String,
    container: String,
}

/// One task run with its attempts' pods.
#[derive(Serialize)]
struct TaskView {
    /// The pipeline task (or the MyTask, for a lone task run).
    task: String,
    run: RunSummary,
    steps: Vec<StepView>,
    /// Every attempt's pod, oldest first.
    pods: Vec<String>,
}

#[derive(Serialize)]
struct EventView {
    #[serde(rename = "type")]
    type_: String,
    reason: String,
    message: String,
    object: String,
    time: Option<Timestamp>,
}

/// Everything the run page draws.
#[derive(Serialize)]
struct RunDetail {
    summary: RunSummary,
    params: Vec<(String, String)>,
    results: Vec<(String, String)>,
    graph: Option<Graph>,
    graph_error: Option<String>,
    tasks: Vec<TaskView>,
    events: Vec<EventView>,
}

fn step_views(steps: &[StepState], pod: &str) -> Vec<StepView> {
    steps
        .iter()
        .map(|s| StepView {
            name: s.name.clone(),
            state: s.state.clone(),
            reason: s.reason.clone(),
            exit_code: s.exit_code,
            started: s.started_at.as_ref().map(|t| t.0),
            finished: s.finished_at.as_ref().map(|t| t.0),
            pod: pod.to_string(),
            container: s.container.clone(),
        })
        .collect()
}

/// Steps the status does not list yet (the pod is still starting) are
/// taken from the pod's step containers, so the page can follow them.
fn steps_from_pod(pod: &Pod) -> Vec<StepView> {
    pod.spec
        .iter()
        .flat_map(|spec| spec.containers.iter())
        .filter_map(|c| {
            let step = c.name.strip_prefix(cicd_controller::pod::render::STEP_PREFIX)?;
            Some(StepView {
                name: step.to_string(),
                state: "Waiting".to_string(),
                reason: String::new(),
                exit_code: None,
                started: None,
                finished: None,
                pod: pod.name_any(),
                container: c.name.clone(),
            })
        })
        .collect()
}

async fn task_view(state: &AppState, namespace: &str, task: String, run: &MyTaskRun) -> TaskView {
    let status = run.status.clone().unwrap_or_default();
    let pod = status.pod_name.clone().unwrap_or_default();
    let mut steps = step_views(&status.steps, &pod);
    if steps.is_empty()
        && !pod.is_empty()
        && let Ok(Some(found)) = ops::pod_opt(&state.cluster, namespace, &pod).await
    {
        steps = steps_from_pod(&found);
    }
    TaskView {
        task,
        run: RunSummary::of_task_run(run),
        steps,
        pods: attempt_pods(run),
    }
}

fn kind_of(kind: &str) -> Result<RunKind, ApiError> {
    match kind {
        "TaskRun" => Ok(RunKind::TaskRun),
        "PipelineRun" => Ok(RunKind::PipelineRun),
        other => Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("unknown kind {other:?} (TaskRun or PipelineRun)"),
        )),
    }
}

async fn load(state: &AppState, namespace: &str, kind: &str, name: &str) -> Result<AnyRun, ApiError> {
    let prefix = match kind_of(kind)? {
        RunKind::TaskRun => "mtr",
        RunKind::PipelineRun => "mpr",
    };
    Ok(ops::find_run(&state.cluster, namespace, &format!("{prefix}/{name}")).await?)
}

fn pairs(items: impl Iterator<Item = (String, String)>) -> Vec<(String, String)> {
    items.collect()
}

async fn pipeline_detail(
    state: &AppState,
    namespace: &str,
    run: &MyPipelineRun,
) -> Result<(Option<Graph>, Option<String>, Vec<TaskView>), ApiError> {
    let children = ops::children_of(&state.cluster, namespace, &run.name_any()).await?;
    let mut states: BTreeMap<String, TaskState> = children
        .iter()
        .map(|(task, child)| {
            let s = RunSummary::of_task_run(child);
            (
                task.clone(),
                TaskState {
                    state: s.outcome.as_str().to_string(),
                    reason: s.reason,
                    task_run: Some(s.name),
                },
            )
        })
        .collect();
    for skipped in run.status.iter().flat_map(|s| s.skipped_tasks.iter()) {
        states.insert(
            skipped.name.clone(),
            TaskState {
                state: "Skipped".to_string(),
                reason: skipped.reason.clone(),
                task_run: None,
            },
        );
    }
    let (graph, graph_error) = match ops::pipeline_spec_of(&state.cluster, namespace, run).await {
        Ok(spec) => match layout(&spec, &states) {
            Ok(graph) => (Some(graph), None),
            Err(why) => (None, Some(why)),
        },
        Err(why) => (None, Some(why.to_string())),
    };
    let mut tasks = Vec::new();
    // In the graph's order (columns, then rows), so the page lists tasks as drawn.
    let mut order: Vec<(u32, u32, String)> = graph
        .iter()
        .flat_map(|g| g.nodes.iter().map(|n| (n.column, n.row, n.name.clone())))
        .collect();
    order.sort();
    for (_, _, task) in order {
        if let Some(child) = children.get(&task) {
            tasks.push(task_view(state, namespace, task, child).await);
        }
    }
    Ok((graph, graph_error, tasks))
}

pub async fn run_detail(
    State(state): State<AppState>,
    Path((namespace, kind, name)): Path<(String, String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let namespace = effective_namespace(&state, Some(&namespace)).unwrap_or(namespace);
    let run = load(&state, &namespace, &kind, &name).await?;
    let events: Vec<EventView> = ops::events_of(&state.cluster, &namespace, &name)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|e| EventView {
            type_: e.type_.unwrap_or_default(),
            reason: e.reason.unwrap_or_default(),
            message: e.message.unwrap_or_default(),
            object: e.involved_object.name.unwrap_or_default(),
            time: e.last_timestamp.map(|t| t.0),
        })
        .collect();
    let detail = match &run {
        AnyRun::Task(task_run) => {
            let task = task_run.spec.task_ref.clone().unwrap_or_else(|| name.clone());
            RunDetail {
                summary: run.summary(),
                params: pairs(
                    task_run
                        .spec
                        .params
                        .iter()
                        .map(|p| (p.name.clone(), value_text(&p.value))),
                ),
                results: pairs(
                    task_run
                        .status
                        .iter()
                        .flat_map(|s| s.results.iter())
                        .map(|r| (r.name.clone(), value_text(&r.value))),
                ),
                graph: None,
                graph_error: None,
                tasks: vec![task_view(&state, &namespace, task, task_run).await],
                events,
            }
        }
        AnyRun::Pipeline(pipeline_run) => {
            let (graph, graph_error, tasks) = pipeline_detail(&state, &namespace, pipeline_run).await?;
            RunDetail {
                summary: run.summary(),
                params: pairs(
                    pipeline_run
                        .spec
                        .params
                        .iter()
                        .map(|p| (p.name.clone(), value_text(&p.value))),
                ),
                results: pairs(
                    pipeline_run
                        .status
                        .iter()
                        .flat_map(|s| s.results.iter())
                        .map(|r| (r.name.clone(), value_text(&r.value))),
                ),
                graph,
                graph_error,
                tasks,
                events,
            }
        }
    };
    Ok(Json(serde_json::to_value(detail).unwrap_or_default()))
}

pub async fn cancel(
    State(state): State<AppState>,
    Path((namespace, kind, name)): Path<(String, String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let namespace = effective_namespace(&state, Some(&namespace)).unwrap_or(namespace);
    let run = load(&state, &namespace, &kind, &name).await?;
    ops::cancel(&state.cluster, &namespace, &run).await?;
    Ok(Json(
        serde_json::json!({ "message": format!("{} {name} cancelled", run.kind().as_str()) }),
    ))
}

pub async fn rerun(
    State(state): State<AppState>,
    Path((namespace, kind, name)): Path<(String, String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let namespace = effective_namespace(&state, Some(&namespace)).unwrap_or(namespace);
    let run = load(&state, &namespace, &kind, &name).await?;
    let created = ops::rerun(&state.cluster, &namespace, &run).await?;
    Ok(Json(serde_json::json!({
        "message": format!("started {}", created.name()),
        "kind": created.kind().as_str(),
        "name": created.name(),
        "namespace": namespace,
    })))
}

/// `/api/logs` options.
#[derive(Deserialize, Default)]
pub struct LogQuery {
    /// Keep the response open and stream new lines until the step ends.
    #[serde(default)]
    follow: bool,
    /// Send as an attachment (the download link).
    #[serde(default)]
    download: bool,
}

pub async fn logs(
    State(state): State<AppState>,
    Path((namespace, pod, container)): Path<(String, String, String)>,
    Query(query): Query<LogQuery>,
) -> Result<Response, ApiError> {
    let namespace = effective_namespace(&state, Some(&namespace)).unwrap_or(namespace);
    let pods: Api<Pod> = Api::namespaced(state.cluster.client.clone(), &namespace);
    let params = LogParams {
        container: Some(container.clone()),
        follow: query.follow,
        ..LogParams::default()
    };
    let stream = match pods.log_stream(&pod, &params).await {
        Ok(stream) => stream,
        // The container has not started yet: the page waits and asks again.
        Err(kube::Error::Api(status)) if status.code == 400 => {
            return Err(ApiError(StatusCode::BAD_REQUEST, status.message.clone()));
        }
        Err(e) => return Err(crate::client::api_error(e, "get", "pods/log", &pod, &namespace).into()),
    };
    let body = Body::from_stream(stream.lines().map_ok(|line| line + "\n"));
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    // Lines must reach the page as they come, not when a buffer fills.
    headers.insert("x-content-type-options", header::HeaderValue::from_static("nosniff"));
    if query.download {
        let file = format!("attachment; filename=\"{pod}-{container}.log\"");
        if let Ok(value) = header::HeaderValue::from_str(&file) {
            headers.insert(header::CONTENT_DISPOSITION, value);
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runs::Outcome;

    fn summary(name: &str, outcome: Outcome) -> RunSummary {
        RunSummary {
            name: name.into(),
            namespace: "ns".into(),
            kind: RunKind::TaskRun,
            outcome,
            reason: String::new(),
            message: String::new(),
            created: None,
            started: None,
            completed: None,
            parent: None,
        }
    }

    #[test]
    fn filters_by_status_and_name_part() {
        let runs = vec![
            summary("build-1", Outcome::Succeeded),
            summary("build-2", Outcome::Failed),
            summary("deploy-1", Outcome::Failed),
        ];
        let names = |runs: Vec<RunSummary>| runs.into_iter().map(|r| r.name).collect::<Vec<_>>();
        assert_eq!(
            names(filter_runs(runs.clone(), Some("failed"), None)),
            ["build-2", "deploy-1"]
        );
        assert_eq!(
            names(filter_runs(runs.clone(), None, Some("build"))),
            ["build-1", "build-2"]
        );
        assert_eq!(
            names(filter_runs(runs.clone(), Some("Failed"), Some("build"))),
            ["build-2"]
        );
        assert_eq!(names(filter_runs(runs, Some(""), None)).len(), 3);
    }
}
