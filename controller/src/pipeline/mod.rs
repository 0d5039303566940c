//! Pipelines, purely: the DAG of a MyPipeline, its validation, the
//! variables (`$(params.x)`, `$(tasks.X.results.Y)`, `$(tasks.X.status)`)
//! and the scheduler that says which task runs next. No I/O.

pub mod cel;
pub mod dag;
pub mod matrix;
pub mod propagate;
pub mod refs;
pub mod schedule;
pub mod task_run_specs;
pub mod validate;
pub mod variables;

/// Label on a child MyTaskRun: the MyPipelineRun it belongs to.
pub const LABEL_PIPELINE_RUN: &str = concat!(crate::api_group!(), "/pipelineRun");
/// Label on a child MyTaskRun: its pipeline task.
pub const LABEL_PIPELINE_TASK: &str = concat!(crate::api_group!(), "/pipelineTask");
/// Label on a child MyTaskRun: the MyPipeline, when the run names one.
pub const LABEL_PIPELINE: &str = concat!(crate::api_group!(), "/pipeline");

/// Annotation on each child of a matrixed pipeline task: how many
/// combinations the task has, so the reconciler knows which children to
/// expect (`<run>-<task>-<index>-<hash>`, index 0 to count - 1).
pub const ANNOTATION_MATRIX_COMBINATIONS: &str = concat!(crate::api_group!(), "/matrixCombinations");

/// Why a pipeline task did not run (`status.skippedTasks[].reason`).
pub mod skip {
    /// Its `when` expressions were false.
    pub const WHEN_FALSE: &str = "WhenExpressionsEvaluatedToFalse";
    /// Its matrix has no combinations (a param's list is empty). Like a
    /// false `when`, tasks that only run after it still run.
    pub const MATRIX_EMPTY: &str = "MatrixHasNoCombinations";
    /// It needs the results of a task that was skipped, or runs after a
    /// task skipped for a reason other than its own `when`.
    pub const PARENT_SKIPPED: &str = "ParentTasksSkipped";
    /// A task failed, so no new tasks start.
    pub const STOPPING: &str = "PipelineRunStopping";
    pub const CANCELLED: &str = "PipelineRunCancelled";
    pub const TIMEOUT: &str = "PipelineRunTimeout";
    /// `timeouts.tasks` ran out before it could start.
    pub const TASKS_TIMEOUT: &str = "TasksTimedOut";
    /// A finally task needs results of a task that did not succeed.
    pub const RESULTS_MISSING: &str = "ResultsMissing";
}
