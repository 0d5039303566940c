//! `cicd logs`: the steps' output in order, each line prefixed
//! `[task/step]`; a pipeline task by task in DAG order as their pods
//! appear; every attempt of a retried run; ending with the outcome.

use std::collections::BTreeSet;
use std::io::Write;
use std::time::Duration;

use cicd_controller::api::{MyPipelineRun, MyTaskRun};
use cicd_controller::pipeline::dag::build_dag;
use cicd_controller::pod::render::STEP_PREFIX;
use futures::{AsyncBufReadExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::LogParams;

use crate::client::{CliError, Cluster, api_error};
use crate::format::{log_prefix, outcome_line};
use crate::ops::{AnyRun, attempt_pods, children_of, pipeline_spec_of, pod_opt};
use crate::progress::Progress;
use crate::runs::{Outcome, RunSummary};

/// How often a follower reads the run again while waiting.
const POLL: Duration = Duration::from_millis(700);

/// Where lines go and how they look.
pub struct LogPrinter {
    /// Colour the prefixes (stdout is a terminal).
    pub colour: bool,
    /// Wait for more (`-f`) instead of printing what exists.
    pub follow: bool,
    /// The waiting status line.
    pub progress: Progress,
}

impl LogPrinter {
    fn line(&mut self, task: &str, step: &str, text: &str) {
        self.progress.clear();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}{text}", log_prefix(task, step, self.colour));
        let _ = out.flush();
    }

    fn note(&mut self, task: &str, text: &str) {
        self.progress.clear();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "[{task}] {text}");
        let _ = out.flush();
    }
}

/// Prints the logs of `run` and returns how it ended (or stands, when not
/// following).
pub async fn print_run(
    cluster: &Cluster,
    namespace: &str,
    run: &AnyRun,
    printer: &mut LogPrinter,
) -> Result<RunSummary, CliError> {
    let summary = match run {
        AnyRun::Task(task_run) => {
            let task = task_label(task_run);
            print_task_run(cluster, namespace, &task_run_name(task_run), &task, printer).await?
        }
        AnyRun::Pipeline(pipeline_run) => print_pipeline_run(cluster, namespace, pipeline_run, printer).await?,
    };
    printer.progress.clear();
    println!(
        "{}",
        outcome_line(
            summary.kind.as_str(),
            &summary.name,
            summary.outcome,
            &summary.reason,
            &summary.message,
            printer.colour
        )
    );
    Ok(summary)
}

fn task_run_name(run: &MyTaskRun) -> String {
    run.metadata.name.clone().unwrap_or_default()
}

/// The `task` part of the prefix: the pipeline task, else the MyTask, else
/// the run's name.
fn task_label(run: &MyTaskRun) -> String {
    run.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(cicd_controller::pipeline::LABEL_PIPELINE_TASK).cloned())
        .or_else(|| run.spec.task_ref.clone())
        .unwrap_or_else(|| task_run_name(run))
}

async fn get_task_run(cluster: &Cluster, namespace: &str, name: &str) -> Result<MyTaskRun, CliError> {
    Api::<MyTaskRun>::namespaced(cluster.client.clone(), namespace)
        .get(name)
        .await
        .map_err(|e| api_error(e, "get", "mytaskruns", name, namespace))
}

/// Every attempt's pod in turn; when following, waits for the run to end
/// (and for the retry pods it makes on the way).
pub async fn print_task_run(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    task: &str,
    printer: &mut LogPrinter,
) -> Result<RunSummary, CliError> {
    let mut printed = 0usize;
    loop {
        let run = get_task_run(cluster, namespace, name).await?;
        let summary = RunSummary::of_task_run(&run);
        let pods = attempt_pods(&run);
        while printed < pods.len() {
            if pods.len() > 1 || printed > 0 {
                printer.note(task, &format!("attempt {} (pod {})", printed + 1, pods[printed]));
            }
            // Only the newest pod can still be running.
            let follow = printer.follow && printed + 1 == pods.len() && !summary.outcome.is_done();
            print_pod(cluster, namespace, &pods[printed], task, name, follow, printer).await?;
            printed += 1;
        }
        if summary.outcome.is_done() || !printer.follow {
            return Ok(summary);
        }
        // Between attempts, or before the first pod exists.
        let why = if summary.reason.is_empty() {
            "waiting for its pod"
        } else {
            summary.reason.as_str()
        };
        printer.progress.status(&format!("{task}: {why}"));
        tokio::time::sleep(POLL).await;
    }
}

/// Step containers of the pod, in order, with their step names.
fn step_containers(pod: &Pod) -> Vec<(String, String)> {
    pod.spec
        .iter()
        .flat_map(|spec| spec.containers.iter())
        .filter_map(|c| {
            c.name
                .strip_prefix(STEP_PREFIX)
                .map(|step| (c.name.clone(), step.to_string()))
        })
        .collect()
}

/// Has the container started (or finished)? None when the pod is gone.
fn container_started(pod: &Pod, container: &str) -> bool {
    pod.status
        .iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
        .find(|c| c.name == container)
        .and_then(|c| c.state.as_ref())
        .is_some_and(|state| state.running.is_some() || state.terminated.is_some())
}

fn pod_finished(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .is_some_and(|phase| phase == "Succeeded" || phase == "Failed")
}

/// Why the container waits, e.g. `ErrImagePull: ...`.
fn waiting_reason(pod: &Pod, container: &str) -> Option<String> {
    let status = pod
        .status
        .iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
        .find(|c| c.name == container)?;
    let waiting = status.state.as_ref()?.waiting.as_ref()?;
    let reason = waiting.reason.clone().unwrap_or_default();
    Some(match &waiting.message {
        Some(message) => format!("{reason}: {message}"),
        None => reason,
    })
}

/// The logs of each step container of `pod_name`, in order. When
/// following, waits for each step to start, then streams it to its end.
async fn print_pod(
    cluster: &Cluster,
    namespace: &str,
    pod_name: &str,
    task: &str,
    run_name: &str,
    follow: bool,
    printer: &mut LogPrinter,
) -> Result<(), CliError> {
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), namespace);
    let Some(mut pod) = pod_opt(cluster, namespace, pod_name).await? else {
        printer.note(task, &format!("pod {pod_name} is gone; its logs with it"));
        return Ok(());
    };
    for (container, step) in step_containers(&pod) {
        while follow && !container_started(&pod, &container) && !pod_finished(&pod) {
            // A run that ended (timeout, cancel) leaves steps that never start.
            if RunSummary::of_task_run(&get_task_run(cluster, namespace, run_name).await?)
                .outcome
                .is_done()
            {
                break;
            }
            let why = waiting_reason(&pod, &container).unwrap_or_else(|| "pod starting".to_string());
            printer.progress.status(&format!("{task}/{step}: {why}"));
            tokio::time::sleep(POLL).await;
            match pod_opt(cluster, namespace, pod_name).await? {
                Some(fresh) => pod = fresh,
                None => return Ok(()),
            }
        }
        if !container_started(&pod, &container) && !follow {
            continue;
        }
        let params = LogParams {
            container: Some(container.clone()),
            follow,
            ..LogParams::default()
        };
        let stream = match pods.log_stream(pod_name, &params).await {
            Ok(stream) => stream,
            // A step that never started has no log; say so and go on.
            Err(kube::Error::Api(status)) if status.code == 400 => continue,
            Err(e) => return Err(api_error(e, "get", "pods/log", pod_name, namespace)),
        };
        let mut lines = stream.lines();
        while let Some(line) = lines.try_next().await.map_err(|e| CliError::Api {
            verb: "read".into(),
            resource: format!("the log of {pod_name}/{container}"),
            message: e.to_string(),
        })? {
            printer.line(task, &step, &line);
        }
        if follow && let Some(fresh) = pod_opt(cluster, namespace, pod_name).await? {
            pod = fresh;
        }
    }
    Ok(())
}

/// The pipeline's tasks in the order their logs are printed: the DAG's
/// order, then the finally tasks.
fn print_order(spec: &cicd_controller::api::PipelineSpec) -> Vec<String> {
    let mut order = build_dag(spec, "spec")
        .map(|dag| dag.order)
        .unwrap_or_else(|_| spec.tasks.iter().map(|t| t.name.clone()).collect());
    order.extend(spec.finally.iter().map(|t| t.name.clone()));
    order
}

async fn print_pipeline_run(
    cluster: &Cluster,
    namespace: &str,
    run: &MyPipelineRun,
    printer: &mut LogPrinter,
) -> Result<RunSummary, CliError> {
    let name = run.metadata.name.clone().unwrap_or_default();
    let api: Api<MyPipelineRun> = Api::namespaced(cluster.client.clone(), namespace);
    let mut done: BTreeSet<String> = BTreeSet::new();
    loop {
        let run = api
            .get(&name)
            .await
            .map_err(|e| api_error(e, "get", "mypipelineruns", &name, namespace))?;
        let summary = RunSummary::of_pipeline_run(&run);
        let Ok(spec) = pipeline_spec_of(cluster, namespace, &run).await else {
            // The controller has not resolved the pipeline yet, or it is gone.
            if summary.outcome.is_done() || !printer.follow {
                return Ok(summary);
            }
            printer.progress.status(&format!("{name}: waiting for the controller"));
            tokio::time::sleep(POLL).await;
            continue;
        };
        let children = children_of(cluster, namespace, &name).await?;
        let skipped = run.status.as_ref().map(|s| s.skipped_tasks.clone()).unwrap_or_default();
        let mut waiting_for = None;
        for task in print_order(&spec) {
            if done.contains(&task) {
                continue;
            }
            if let Some(skip) = skipped.iter().find(|s| s.name == task) {
                printer.note(&task, &format!("skipped: {}", skip.reason));
            } else if let Some(child) = children.get(&task) {
                print_task_run(cluster, namespace, &task_run_name(child), &task, printer).await?;
            } else if summary.outcome.is_done() || !printer.follow {
                // Never started, and never will.
            } else {
                waiting_for = Some(task);
                break;
            }
            done.insert(task);
        }
        let fresh = api
            .get(&name)
            .await
            .map(|r| RunSummary::of_pipeline_run(&r))
            .map_err(|e| api_error(e, "get", "mypipelineruns", &name, namespace))?;
        match waiting_for {
            None if fresh.outcome.is_done() || !printer.follow => return Ok(fresh),
            None => printer.progress.status(&format!("{name}: finishing")),
            Some(task) => printer
                .progress
                .status(&format!("{task}: waiting for its run to start")),
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The exit code for how a run ended: 0 only for success.
pub fn exit_code(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Succeeded => 0,
        Outcome::Failed => 1,
        // Not finished (logs without -f): not a failure of the command.
        Outcome::Pending | Outcome::Running => 0,
    }
}
