//! The reasons a run's `Succeeded` condition can carry. Users match on
//! these in scripts and dashboards, so they are stable strings.

pub const PENDING: &str = "Pending";
/// Waiting for a slot in its concurrency group (or its namespace); the
/// message says where it stands in the queue.
pub const QUEUED: &str = "Queued";
pub const RUNNING: &str = "Running";
pub const SUCCEEDED: &str = "Succeeded";
pub const FAILED: &str = "Failed";
/// `$(tasks.t.reason)` of a pipeline task with `onError: continue` that failed.
pub const FAILURE_IGNORED: &str = "FailureIgnored";
pub const TIMEOUT: &str = "TaskRunTimeout";
pub const CANCELLED: &str = "TaskRunCancelled";
pub const IMAGE_PULL_FAILED: &str = "ImagePullFailed";
pub const CREATE_CONTAINER_CONFIG_ERROR: &str = "CreateContainerConfigError";
pub const RESOLUTION_FAILED: &str = "TaskRunResolutionFailed";
/// A `remoteTask`/`remotePipeline` is being fetched, or a named MyTask or
/// MyPipeline not created yet is waited for (Succeeded=Unknown).
pub const RESOLVING: &str = "Resolving";
pub const VALIDATION_FAILED: &str = "TaskRunValidationFailed";
pub const INVALID_RESULTS: &str = "TaskRunInvalidResults";
/// A result, or all of a run's results together, over its limit
/// (`--max-result-bytes`, `--max-run-results-bytes`); the message names the
/// result, its size and the limit.
pub const RESULT_TOO_LARGE: &str = "TaskRunResultLargerThanAllowedLimit";
/// A step's results frame could not be read back from its log.
pub const RESULTS_UNREADABLE: &str = "TaskRunResultsUnreadable";
pub const POD_DELETED: &str = "PodDeleted";
pub const POD_EVICTED: &str = "PodEvicted";
pub const POD_CREATION_FAILED: &str = "PodCreationFailed";
pub const NODE_LOST: &str = "NodeLost";

// The API server refused an object the run needs, for good.
pub const CLAIM_CREATION_FAILED: &str = "ClaimCreationFailed";
pub const CHILD_CREATION_FAILED: &str = "ChildCreationFailed";
// An object exists under the expected name but another owner controls it.
pub const POD_NAME_TAKEN: &str = "PodNameTaken";
pub const CLAIM_NAME_TAKEN: &str = "ClaimNameTaken";
pub const CHILD_NAME_TAKEN: &str = "ChildNameTaken";
// The API server could not make the object yet; retried with backoff
// (Succeeded stays Unknown) until it works or the run times out.
pub const POD_CREATION_RETRYING: &str = "PodCreationRetrying";
pub const CLAIM_CREATION_RETRYING: &str = "ClaimCreationRetrying";
pub const CHILD_CREATION_RETRYING: &str = "ChildCreationRetrying";

// Pipeline runs.
pub const COMPLETED: &str = "Completed";
pub const PIPELINE_TIMEOUT: &str = "PipelineRunTimeout";
pub const PIPELINE_CANCELLED: &str = "PipelineRunCancelled";
pub const PIPELINE_RESOLUTION_FAILED: &str = "PipelineRunResolutionFailed";
pub const PIPELINE_VALIDATION_FAILED: &str = "PipelineRunValidationFailed";
