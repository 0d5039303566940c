//! `cicd describe`: one run in words, the failure first when it failed,
//! then params, results, steps (times, exit codes), child runs and events.
//! The text is made from objects already read, so it is tested offline.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use cicd_controller::api::{MyPipelineRun, MyTaskRun, Param, ParamValue, ResolvedFrom, RunResult, StepState};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Event;

use crate::format::{age, short_duration, table};
use crate::runs::{Outcome, RunSummary};

/// A param or result value on one line.
pub fn value_text(value: &ParamValue) -> String {
    match value {
        ParamValue::String(text) => text.clone(),
        ParamValue::Array(items) => format!("[{}]", items.join(", ")),
        ParamValue::Object(map) => {
            let pairs: Vec<String> = map.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            format!("{{{}}}", pairs.join(", "))
        }
    }
}

fn header(out: &mut String, summary: &RunSummary, now: Timestamp) {
    if summary.outcome == Outcome::Failed && !summary.message.is_empty() {
        let _ = writeln!(out, "FAILED: {}\n", summary.message);
    }
    let _ = writeln!(out, "Name:       {}", summary.name);
    let _ = writeln!(out, "Namespace:  {}", summary.namespace);
    let _ = writeln!(out, "Kind:       {}", summary.kind.as_str());
    let reason = if summary.reason.is_empty() {
        String::new()
    } else {
        format!(" ({})", summary.reason)
    };
    let _ = writeln!(out, "Status:     {}{reason}", summary.outcome.as_str());
    if summary.outcome != Outcome::Failed && !summary.message.is_empty() {
        let _ = writeln!(out, "Message:    {}", summary.message);
    }
    let _ = writeln!(out, "Age:        {}", age(summary.created, now));
    if let Some(seconds) = summary.duration_seconds(now) {
        let _ = writeln!(out, "Duration:   {}", short_duration(seconds));
    }
    if let Some(parent) = &summary.parent {
        let _ = writeln!(out, "Pipeline:   {parent}");
    }
}

fn params_section(out: &mut String, params: &[Param]) {
    if params.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nParams:");
    for param in params {
        let _ = writeln!(out, "  {} = {}", param.name, value_text(&param.value));
    }
}

fn results_section(out: &mut String, results: &[RunResult]) {
    if results.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nResults:");
    for result in results {
        let _ = writeln!(out, "  {} = {}", result.name, value_text(&result.value));
    }
}

fn time_text(time: Option<Timestamp>) -> String {
    time.map_or_else(|| "-".to_string(), |t| t.strftime("%H:%M:%S").to_string())
}

/// The steps table: state, exit code, start and finish, how long.
pub fn steps_table(steps: &[StepState]) -> String {
    let rows: Vec<Vec<String>> = steps
        .iter()
        .map(|step| {
            let started = step.started_at.as_ref().map(|t| t.0);
            let finished = step.finished_at.as_ref().map(|t| t.0);
            let took = match (started, finished) {
                (Some(s), Some(f)) => short_duration(f.as_second() - s.as_second()),
                _ => "-".to_string(),
            };
            let state = if step.reason.is_empty() {
                step.state.clone()
            } else {
                format!("{} ({})", step.state, step.reason)
            };
            vec![
                step.name.clone(),
                state,
                step.exit_code.map_or_else(|| "-".to_string(), |c| c.to_string()),
                time_text(started),
                time_text(finished),
                took,
            ]
        })
        .collect();
    table(&["STEP", "STATE", "EXIT", "STARTED", "FINISHED", "TOOK"], &rows)
}

fn events_section(out: &mut String, events: &[Event], now: Timestamp) {
    let _ = writeln!(out, "\nEvents:");
    if events.is_empty() {
        let _ = writeln!(out, "  none");
        return;
    }
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                e.type_.clone().unwrap_or_default(),
                e.reason.clone().unwrap_or_default(),
                age(e.last_timestamp.as_ref().map(|t| t.0), now),
                e.message.clone().unwrap_or_default(),
            ]
        })
        .collect();
    for line in table(&["TYPE", "REASON", "AGE", "MESSAGE"], &rows).lines() {
        let _ = writeln!(out, "  {line}");
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

/// Where a resolver found the run's definition: `Task:  greet (git
/// URL, tasks/greet.yaml at COMMIT)`.
fn fetched_line(out: &mut String, what: &str, from: Option<&ResolvedFrom>) {
    let Some(from) = from else { return };
    let place = match (&from.path, &from.commit) {
        (Some(path), Some(commit)) => format!("{}, {path} at {commit}", from.uri),
        _ => from.uri.clone(),
    };
    let label = format!("{what}:");
    let _ = writeln!(out, "{label:<12}{} ({} resolver: {place})", from.name, from.resolver);
}

/// The full text of a MyTaskRun.
pub fn describe_task_run(run: &MyTaskRun, events: &[Event], now: Timestamp) -> String {
    let mut out = String::new();
    header(&mut out, &RunSummary::of_task_run(run), now);
    let status = run.status.clone().unwrap_or_default();
    if let Some(task) = &run.spec.task_ref {
        let _ = writeln!(out, "Task:       {task}");
    }
    fetched_line(&mut out, "Task", status.resolved_from.as_ref());
    if let Some(display_name) = status.task_spec.as_ref().and_then(|t| t.display_name.as_ref()) {
        let _ = writeln!(out, "Shown as:   {display_name}");
    }
    if let Some(pod) = &status.pod_name {
        let _ = writeln!(out, "Pod:        {pod}");
    }
    params_section(&mut out, &run.spec.params);
    results_section(&mut out, &status.results);
    if !status.steps.is_empty() {
        let _ = writeln!(out, "\nSteps:");
        out.push_str(&indent(&steps_table(&status.steps)));
    }
    if !status.retries_status.is_empty() {
        let _ = writeln!(out, "\nEarlier attempts:");
        for (i, attempt) in status.retries_status.iter().enumerate() {
            let _ = writeln!(
                out,
                "  {}. {} {}: {}",
                i + 1,
                attempt.pod_name,
                attempt.reason,
                attempt.message
            );
        }
    }
    for warning in &status.warnings {
        let _ = writeln!(out, "Warning: {warning}");
    }
    events_section(&mut out, events, now);
    out
}

/// The full text of a MyPipelineRun with its children (by pipeline task).
pub fn describe_pipeline_run(
    run: &MyPipelineRun,
    children: &BTreeMap<String, MyTaskRun>,
    events: &[Event],
    now: Timestamp,
) -> String {
    let mut out = String::new();
    header(&mut out, &RunSummary::of_pipeline_run(run), now);
    let status = run.status.clone().unwrap_or_default();
    if let Some(pipeline) = &run.spec.pipeline_ref {
        let _ = writeln!(out, "Pipeline:   {pipeline}");
    }
    fetched_line(&mut out, "Pipeline", status.resolved_from.as_ref());
    let spec = status.pipeline_spec.as_ref();
    if let Some(display_name) = spec.and_then(|p| p.display_name.as_ref()) {
        let _ = writeln!(out, "Shown as:   {display_name}");
    }
    params_section(&mut out, &run.spec.params);
    results_section(&mut out, &status.results);
    // A pipeline task with a display name shows it beside its name.
    let task_title = |task: &str| -> String {
        let display_name = spec
            .into_iter()
            .flat_map(|p| p.all_tasks())
            .find(|t| t.name == task)
            .and_then(|t| t.display_name.as_ref());
        match display_name {
            Some(shown) => format!("{task} ({shown})"),
            None => task.to_string(),
        }
    };
    let mut by_start: Vec<(&String, &MyTaskRun)> = children.iter().collect();
    by_start.sort_by_key(|(_, child)| child.status.as_ref().and_then(|s| s.start_time.as_ref()).map(|t| t.0));
    let mut rows: Vec<Vec<String>> = by_start
        .into_iter()
        .map(|(task, child)| {
            let s = RunSummary::of_task_run(child);
            vec![
                task_title(task),
                s.name.clone(),
                s.outcome.as_str().to_string(),
                if s.reason.is_empty() {
                    "-".into()
                } else {
                    s.reason.clone()
                },
                s.duration_seconds(now).map_or_else(|| "-".to_string(), short_duration),
            ]
        })
        .collect();
    for skipped in &status.skipped_tasks {
        rows.push(vec![
            skipped.name.clone(),
            "-".into(),
            "Skipped".into(),
            skipped.reason.clone(),
            "-".into(),
        ]);
    }
    if !rows.is_empty() {
        let _ = writeln!(out, "\nTask runs:");
        out.push_str(&indent(&table(&["TASK", "RUN", "STATUS", "REASON", "DURATION"], &rows)));
    }
    for (task, child) in children {
        let steps = child.status.as_ref().map(|s| s.steps.clone()).unwrap_or_default();
        if steps.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\nSteps of {task}:");
        out.push_str(&indent(&steps_table(&steps)));
    }
    events_section(&mut out, events, now);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task_run(yaml: &str) -> MyTaskRun {
        serde_saphyr::from_str(yaml).expect("run yaml")
    }

    const FAILED: &str = r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyTaskRun
metadata: {name: tr1, namespace: team, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  taskRef: t1
  params: [{name: IMAGE, value: reg/app}]
status:
  conditions: [{type: Succeeded, status: "False", reason: Failed, message: "step build exited with code 2"}]
  startTime: "2026-01-01T00:00:01Z"
  completionTime: "2026-01-01T00:00:31Z"
  podName: tr1-pod
  steps:
    - {name: build, container: step-build, state: Terminated, exitCode: 2, reason: Error,
       startedAt: "2026-01-01T00:00:02Z", finishedAt: "2026-01-01T00:00:30Z"}
"#;

    #[test]
    fn a_failed_run_starts_with_its_failure() {
        let now: Timestamp = "2026-01-01T00:01:00Z".parse().expect("time");
        let text = describe_task_run(&task_run(FAILED), &[], now);
        assert!(text.starts_with("FAILED: step build exited with code 2\n"), "{text}");
        assert!(text.contains("Status:     Failed (Failed)"), "{text}");
        assert!(text.contains("Duration:   30s"), "{text}");
        assert!(text.contains("IMAGE = reg/app"), "{text}");
        let step_line = text
            .lines()
            .find(|l| l.trim_start().starts_with("build"))
            .expect("step row");
        let cells: Vec<&str> = step_line.split_whitespace().collect();
        assert_eq!(
            cells,
            ["build", "Terminated", "(Error)", "2", "00:00:02", "00:00:30", "28s"]
        );
    }

    #[test]
    fn display_names_show_beside_the_names() {
        let now: Timestamp = "2026-01-01T00:01:00Z".parse().expect("time");
        let run: MyPipelineRun = serde_saphyr::from_str(
            r#"
apiVersion: cicdoperator.ning1875.io/v1
kind: MyPipelineRun
metadata: {name: pr1, namespace: team}
spec: {pipelineRef: ship}
status:
  pipelineSpec:
    displayName: Ship the app
    tasks:
      - {name: build, displayName: Build the image, taskRef: t1}
      - {name: test, taskRef: t1}
"#,
        )
        .expect("pipeline run yaml");
        let child = task_run(FAILED);
        let children: BTreeMap<String, MyTaskRun> =
            [("build".to_string(), child.clone()), ("test".to_string(), child)].into();
        let text = describe_pipeline_run(&run, &children, &[], now);
        assert!(text.contains("Shown as:   Ship the app\n"), "{text}");
        let title = |row: &str| text.lines().find(|l| l.trim_start().starts_with(row)).map(str::trim);
        assert!(
            title("build (Build the image)").is_some_and(|l| l.contains("tr1")),
            "{text}"
        );
        assert!(title("test ").is_some(), "{text}");
        let mut with_task_spec = task_run(FAILED);
        with_task_spec.status.as_mut().expect("status").task_spec =
            serde_saphyr::from_str("{displayName: Compile, steps: []}").ok();
        assert!(describe_task_run(&with_task_spec, &[], now).contains("Shown as:   Compile\n"));
    }

    #[test]
    fn a_fetched_task_says_where_it_came_from() {
        let now: Timestamp = "2026-01-01T00:01:00Z".parse().expect("time");
        let mut run = task_run(FAILED);
        run.spec.task_ref = None;
        run.status.as_mut().expect("status").resolved_from = Some(ResolvedFrom {
            resolver: "git".into(),
            name: "greet".into(),
            uri: "git://h/catalog.git".into(),
            commit: Some("abc123".into()),
            path: Some("tasks/greet.yaml".into()),
        });
        let text = describe_task_run(&run, &[], now);
        assert!(
            text.contains("Task:       greet (git resolver: git://h/catalog.git, tasks/greet.yaml at abc123)\n"),
            "{text}"
        );
    }

    #[test]
    fn values_print_on_one_line() {
        assert_eq!(value_text(&ParamValue::Array(vec!["a".into(), "b".into()])), "[a, b]");
    }
}
