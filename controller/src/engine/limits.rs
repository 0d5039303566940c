//! Bounds on the work one run can cause. Every field of a run is written by
//! a tenant; without bounds, `$(params.x)` copied into many fields of many
//! steps turns a small run into a pod of hundreds of megabytes and the
//! controller's memory with it. Each limit has a default and a controller
//! flag (see `config`); crossing one fails the run with a message naming
//! the field, the size and the limit.

use std::cell::Cell;

use super::errors::ValidationErrors;

/// The limits, as the controller's flags set them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest size of one field after substitution (a script, an arg, an
    /// env value, a whole command or args list), in bytes. At least the
    /// largest result, since results flow into params and scripts.
    pub max_field_bytes: usize,
    /// Most items of an array: a param value, or a command/args list after
    /// `$(params.x[*])` expansion.
    pub max_array_items: usize,
    /// Most steps in one task.
    pub max_steps: usize,
    /// Most sidecars in one task.
    pub max_sidecars: usize,
    /// Most params a task declares or a run passes.
    pub max_params: usize,
    /// Most results a task declares.
    pub max_results: usize,
    /// Most workspaces a task declares or a run binds.
    pub max_workspaces: usize,
    /// Most tasks (regular and finally) in one pipeline: each becomes a
    /// child run, a pod and a DAG node.
    pub max_pipeline_tasks: usize,
    /// Most child runs one matrixed pipeline task fans out to (its
    /// combinations, `include` entries counted): each is a run and a pod.
    pub max_matrix_combinations: usize,
    /// Largest rendered pod (its JSON), in bytes; well inside etcd's
    /// 1.5 MiB object limit. Also bounds all substituted text of one run.
    pub max_pod_bytes: usize,
}

pub const DEFAULT_MAX_FIELD_BYTES: usize = 512 * 1024;
pub const DEFAULT_MAX_ARRAY_ITEMS: usize = 1024;
pub const DEFAULT_MAX_STEPS: usize = 64;
pub const DEFAULT_MAX_SIDECARS: usize = 16;
pub const DEFAULT_MAX_PARAMS: usize = 256;
pub const DEFAULT_MAX_RESULTS: usize = 64;
pub const DEFAULT_MAX_WORKSPACES: usize = 32;
pub const DEFAULT_MAX_PIPELINE_TASKS: usize = 256;
pub const DEFAULT_MAX_MATRIX_COMBINATIONS: usize = 256;
pub const DEFAULT_MAX_POD_BYTES: usize = 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_field_bytes: DEFAULT_MAX_FIELD_BYTES,
            max_array_items: DEFAULT_MAX_ARRAY_ITEMS,
            max_steps: DEFAULT_MAX_STEPS,
            max_sidecars: DEFAULT_MAX_SIDECARS,
            max_params: DEFAULT_MAX_PARAMS,
            max_results: DEFAULT_MAX_RESULTS,
            max_workspaces: DEFAULT_MAX_WORKSPACES,
            max_pipeline_tasks: DEFAULT_MAX_PIPELINE_TASKS,
            max_matrix_combinations: DEFAULT_MAX_MATRIX_COMBINATIONS,
            max_pod_bytes: DEFAULT_MAX_POD_BYTES,
        }
    }
}

impl Limits {
    /// Records an error when `field` holds more than `limit` items.
    pub fn check_count(
        &self,
        field: &str,
        what: &str,
        count: usize,
        limit: usize,
        flag: &str,
        errors: &mut ValidationErrors,
    ) -> bool {
        if count <= limit {
            return true;
        }
        errors.push(
            field,
            format!("{count} {what}, the limit is {limit} (controller flag --{flag})"),
        );
        false
    }
}

/// What substitution may still produce while resolving one run: a limit
/// per field and a total for the whole run. Shared by every substitution
/// of the run through `&`, hence the `Cell`.
#[derive(Debug)]
pub struct Budget {
    /// Most bytes one field may hold after substitution.
    pub max_field_bytes: usize,
    /// Most items a list may hold after expansion.
    pub max_array_items: usize,
    /// The run's limit on all substituted text, to report it.
    pub total_limit: usize,
    /// Bytes of substituted text the run may still produce.
    remaining: Cell<usize>,
}

impl Budget {
    pub fn new(limits: &Limits) -> Self {
        Budget {
            max_field_bytes: limits.max_field_bytes,
            max_array_items: limits.max_array_items,
            total_limit: limits.max_pod_bytes,
            remaining: Cell::new(limits.max_pod_bytes),
        }
    }

    /// No limits at all: for substitutions whose inputs are bounded elsewhere.
    pub fn unlimited() -> Self {
        Budget {
            max_field_bytes: usize::MAX,
            max_array_items: usize::MAX,
            total_limit: usize::MAX,
            remaining: Cell::new(usize::MAX),
        }
    }

    /// Takes `bytes` from the run's total; the error says why not.
    pub fn take(&self, bytes: usize) -> Result<(), String> {
        let remaining = self.remaining.get();
        if bytes > remaining {
            return Err(format!(
                "the run's substituted text exceeds {} bytes in total, the limit (controller flag --max-pod-bytes)",
                self.total_limit
            ));
        }
        self.remaining.set(remaining - bytes);
        Ok(())
    }

    /// The error for a field that grew past its limit.
    pub fn field_too_large(&self, size: usize) -> String {
        format!(
            "{size} bytes or more after substitution, the limit is {} bytes (controller flag --max-field-bytes)",
            self.max_field_bytes
        )
    }

    /// The error for a list that grew past its item limit.
    pub fn list_too_long(&self, items: usize) -> String {
        format!(
            "{items} items or more after expansion, the limit is {} (controller flag --max-array-items)",
            self.max_array_items
        )
    }
}
