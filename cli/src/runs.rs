//! One view over MyTaskRuns and MyPipelineRuns, for listing and showing
//! them the same way. Pure: built from objects already read.

use cicd_controller::api::{Condition, MyPipelineRun, MyTaskRun};
use cicd_controller::pipeline::LABEL_PIPELINE_RUN;
use jiff::Timestamp;
use kube::ResourceExt;
use serde::Serialize;

/// Which kind of run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RunKind {
    TaskRun,
    PipelineRun,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::TaskRun => "TaskRun",
            RunKind::PipelineRun => "PipelineRun",
        }
    }

    /// The Kubernetes resource, for messages like "cannot get
    /// mytaskruns".
    pub fn resource(self) -> &'static str {
        match self {
            RunKind::TaskRun => "mytaskruns",
            RunKind::PipelineRun => "mypipelineruns",
        }
    }
}

/// Where a run stands, from its Succeeded condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Outcome {
    /// No condition yet: the controller has not seen it.
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pending => "Pending",
            Outcome::Running => "Running",
            Outcome::Succeeded => "Succeeded",
            Outcome::Failed => "Failed",
        }
    }

    pub fn is_done(self) -> bool {
        matches!(self, Outcome::Succeeded | Outcome::Failed)
    }
}

/// What the list, the dashboard and `describe` show of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    /// The run's name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// TaskRun or PipelineRun.
    pub kind: RunKind,
    /// From the Succeeded condition.
    pub outcome: Outcome,
    /// The condition's reason (e.g. `Cancelled`, `Failed`, `Pending`).
    pub reason: String,
    /// The condition's message: on failure, why.
    pub message: String,
    /// When the object was created: sorts the list, gives the age.
    pub created: Option<Timestamp>,
    /// When the controller started it.
    pub started: Option<Timestamp>,
    /// When it finished.
    pub completed: Option<Timestamp>,
    /// The MyPipelineRun a child MyTaskRun belongs to.
    pub parent: Option<String>,
}

fn outcome_of(conditions: &[Condition]) -> (Outcome, String, String) {
    match conditions.iter().find(|c| c.type_ == "Succeeded") {
        None => (Outcome::Pending, String::new(), String::new()),
        Some(c) => {
            let outcome = match c.status.as_str() {
                "True" => Outcome::Succeeded,
                "False" => Outcome::Failed,
                _ => Outcome::Running,
            };
            (outcome, c.reason.clone(), c.message.clone())
        }
    }
}

impl RunSummary {
    pub fn of_task_run(run: &MyTaskRun) -> RunSummary {
        let status = run.status.clone().unwrap_or_default();
        let (outcome, reason, message) = outcome_of(&status.conditions);
        RunSummary {
            name: run.name_any(),
            namespace: run.namespace().unwrap_or_default(),
            kind: RunKind::TaskRun,
            outcome,
            reason,
            message,
            created: run.metadata.creation_timestamp.as_ref().map(|t| t.0),
            started: status.start_time.map(|t| t.0),
            completed: status.completion_time.map(|t| t.0),
            parent: run.labels().get(LABEL_PIPELINE_RUN).cloned(),
        }
    }

    pub fn of_pipeline_run(run: &MyPipelineRun) -> RunSummary {
        let status = run.status.clone().unwrap_or_default();
        let (outcome, reason, message) = outcome_of(&status.conditions);
        RunSummary {
            name: run.name_any(),
            namespace: run.namespace().unwrap_or_default(),
            kind: RunKind::PipelineRun,
            outcome,
            reason,
            message,
            created: run.metadata.creation_timestamp.as_ref().map(|t| t.0),
            started: status.start_time.map(|t| t.0),
            completed: status.completion_time.map(|t| t.0),
            parent: None,
        }
    }

    /// Seconds it ran (so far, when still running).
    pub fn duration_seconds(&self, now: Timestamp) -> Option<i64> {
        let start = self.started?;
        let end = self.completed.unwrap_or(now);
        Some(end.as_second() - start.as_second())
    }
}

/// Newest first; among equal times, by name, so the order is stable.
pub fn sort_newest_first(runs: &mut [RunSummary]) {
    runs.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.name.cmp(&b.name)));
}
