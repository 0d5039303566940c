//! Controller settings: flags, each with an environment fallback.

use std::net::SocketAddr;
use std::time::Duration;

use crate::engine::duration::parse_duration;
use crate::engine::limits::{self, Limits};
use crate::pod::results::{
    DEFAULT_MAX_RESULT_BYTES, DEFAULT_MAX_RUN_RESULTS_BYTES, RESULTS_CEILING_BYTES, ResultLimits,
};

pub const DEFAULT_ENTRYPOINT_IMAGE: &str = "127.0.0.1:5000/cicd/entrypoint:dev";
/// A run without `spec.timeout` gets one hour, as in Tekton.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);

#[derive(clap::Args, Debug, Clone)]
pub struct ControllerConfig {
    /// Image with the static entrypoint at /cicd-entrypoint.
    #[arg(long, env = "CICD_ENTRYPOINT_IMAGE", default_value = DEFAULT_ENTRYPOINT_IMAGE)]
    pub entrypoint_image: String,
    /// The same entrypoint as a file the controller can read (its image has
    /// one at /cicd-entrypoint). Given, the controller puts it in a
    /// ConfigMap of each namespace that runs tasks and pods mount it with no
    /// init container; absent, every pod copies it from --entrypoint-image.
    #[arg(long, env = "CICD_ENTRYPOINT_BINARY")]
    pub entrypoint_binary: Option<std::path::PathBuf>,
    /// Timeout of runs that set none (e.g. 1h, 30m; 0 = none).
    #[arg(long, env = "CICD_DEFAULT_TIMEOUT", default_value = "1h", value_parser = parse_duration)]
    pub default_timeout: Duration,
    /// How long the node of a run's pod may be not Ready before the attempt
    /// ends `NodeLost` (or is retried, if the run has retries left). Counted
    /// from the node's Ready transition, which the node lifecycle controller
    /// makes once the kubelet has been silent for its
    /// --node-monitor-grace-period (50 s by default).
    #[arg(long, env = "CICD_NODE_LOST_AFTER", default_value = "40s", value_parser = parse_duration)]
    pub node_lost_after: Duration,
    /// Runs reconciled at the same time (per kind: task runs and pipeline
    /// runs each get this many workers). Reconciles mostly wait on the API
    /// server, so this is well above the core count; see README
    /// "Benchmarks" for the measurements behind the default.
    #[arg(long, env = "CICD_WORKERS", default_value_t = 16)]
    pub workers: u16,
    /// Most of those workers one namespace's runs may hold at once (0: no
    /// cap). The rest stay free for other tenants, and the API server's
    /// queue never holds more than this many of one tenant's requests
    /// ahead of another's; see README "Benchmarks" for the measurements.
    #[arg(long, env = "CICD_WORKERS_PER_NAMESPACE", default_value_t = 8)]
    pub workers_per_namespace: u16,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "CICD_METRICS_ADDRESS", default_value = "0.0.0.0:8080")]
    pub metrics_address: SocketAddr,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "CICD_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// Take a Lease before reconciling, so only one replica works at a time.
    #[arg(long, env = "CICD_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// Namespace of the leader-election Lease (default: cicd-system, where
    /// deploy/ installs the controller; set it when installing elsewhere).
    #[arg(long, env = "CICD_LEASE_NAMESPACE", default_value = "cicd-system")]
    pub lease_namespace: String,
    /// This replica's identity in the Lease (default: the pod name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "CICD_LOG_JSON", default_value_t = false, action = clap::ArgAction::Set)]
    pub log_json: bool,

    // --- Result limits (results travel through the step logs; see
    // --- pod::results). Kept in this block of their own.
    /// Largest value of one result in bytes (arrays and objects as JSON);
    /// at most 1 MiB.
    #[arg(long, env = "CICD_MAX_RESULT_BYTES", default_value_t = DEFAULT_MAX_RESULT_BYTES,
          value_parser = clap::value_parser!(u64).range(1..=RESULTS_CEILING_BYTES))]
    pub max_result_bytes: u64,
    /// Largest total of all of a run's results in bytes; at most 1 MiB.
    #[arg(long, env = "CICD_MAX_RUN_RESULTS_BYTES", default_value_t = DEFAULT_MAX_RUN_RESULTS_BYTES,
          value_parser = clap::value_parser!(u64).range(1..=RESULTS_CEILING_BYTES))]
    pub max_run_results_bytes: u64,

    // --- Run history and queues (controller/history.rs, controller/admission.rs).
    // --- Kept in this block of their own.
    /// Seconds after finishing that a run is deleted when neither it nor its
    /// MyTask/MyPipeline sets ttlSecondsAfterFinished; 0 keeps such runs.
    #[arg(long, env = "CICD_DEFAULT_TTL_SECONDS_AFTER_FINISHED", default_value_t = 0)]
    pub default_ttl_seconds_after_finished: u32,
    /// Most pods of MyTaskRuns running at once in one namespace; beyond it
    /// runs wait `Queued`, oldest first. 0 means no cap.
    #[arg(long, env = "CICD_MAX_RUNNING_PODS_PER_NAMESPACE", default_value_t = 0)]
    pub max_running_pods_per_namespace: u32,

    // --- Resolvers (controller/resolver.rs).
    /// The longest a resolver may take to fetch a remoteTask/remotePipeline
    /// before the run fails `TaskRunResolutionFailed`/`PipelineRunResolutionFailed`.
    #[arg(long, env = "CICD_RESOLVER_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub resolver_timeout: Duration,
    /// Namespaces, besides a run's own, the cluster resolver may read
    /// MyTasks and MyPipelines from (comma-separated; e.g. a shared
    /// catalog). Empty: a run reads only its own namespace.
    #[arg(
        long,
        env = "CICD_CLUSTER_RESOLVER_NAMESPACES",
        value_delimiter = ',',
        default_value = ""
    )]
    pub cluster_resolver_namespaces: Vec<String>,
    /// Hosts the git, http and bundles resolvers may fetch from (comma-separated;
    /// `host` or `host:port`, `*.example.com` for its subdomains). Empty:
    /// any host a run names.
    #[arg(long, env = "CICD_RESOLVER_ALLOWED_HOSTS", value_delimiter = ',', default_value = "")]
    pub resolver_allowed_hosts: Vec<String>,

    // --- Image lookups (controller/registry.rs), for steps that give no
    // command and so run their image's own entrypoint.
    /// Where the controller reaches registries other than at
    /// `https://<registry>` (comma-separated `registry=url`; e.g.
    /// `127.0.0.1:5000=http://10.244.0.1:5000` for a plain-HTTP registry the
    /// nodes reach on their loopback).
    #[arg(long, env = "CICD_REGISTRY_ENDPOINTS", value_delimiter = ',', value_parser = crate::controller::registry::parse_endpoint)]
    pub registry_endpoints: Vec<(String, String)>,
    /// Registries images may be looked up in (comma-separated, as
    /// `--resolver-allowed-hosts`). Empty: any registry a step names.
    #[arg(long, env = "CICD_REGISTRY_ALLOWED_HOSTS", value_delimiter = ',', default_value = "")]
    pub registry_allowed_hosts: Vec<String>,
    /// Bounds on the work one run may cause.
    #[command(flatten)]
    pub limits: LimitFlags,
}

impl ControllerConfig {
    /// The result limits the flags set.
    pub fn result_limits(&self) -> ResultLimits {
        ResultLimits {
            max_result_bytes: self.max_result_bytes,
            max_run_results_bytes: self.max_run_results_bytes,
        }
    }
}

/// The flags of `engine::limits::Limits`: one per limit, each with a default.
#[derive(clap::Args, Debug, Clone)]
pub struct LimitFlags {
    /// Largest size of one field after `$(...)` substitution, in bytes.
    #[arg(long, env = "CICD_MAX_FIELD_BYTES", default_value_t = limits::DEFAULT_MAX_FIELD_BYTES)]
    pub max_field_bytes: usize,
    /// Most items of an array param value or of a command/args list after expansion.
    #[arg(long, env = "CICD_MAX_ARRAY_ITEMS", default_value_t = limits::DEFAULT_MAX_ARRAY_ITEMS)]
    pub max_array_items: usize,
    /// Most steps in one task.
    #[arg(long, env = "CICD_MAX_STEPS", default_value_t = limits::DEFAULT_MAX_STEPS)]
    pub max_steps: usize,
    /// Most sidecars in one task.
    #[arg(long, env = "CICD_MAX_SIDECARS", default_value_t = limits::DEFAULT_MAX_SIDECARS)]
    pub max_sidecars: usize,
    /// Most params a task declares or a run passes.
    #[arg(long, env = "CICD_MAX_PARAMS", default_value_t = limits::DEFAULT_MAX_PARAMS)]
    pub max_params: usize,
    /// Most results a task declares.
    #[arg(long, env = "CICD_MAX_RESULTS", default_value_t = limits::DEFAULT_MAX_RESULTS)]
    pub max_results: usize,
    /// Most workspaces a task declares or a run binds.
    #[arg(long, env = "CICD_MAX_WORKSPACES", default_value_t = limits::DEFAULT_MAX_WORKSPACES)]
    pub max_workspaces: usize,
    /// Most tasks (regular and finally) in one pipeline.
    #[arg(long, env = "CICD_MAX_PIPELINE_TASKS", default_value_t = limits::DEFAULT_MAX_PIPELINE_TASKS)]
    pub max_pipeline_tasks: usize,
    /// Most child runs one matrixed pipeline task fans out to.
    #[arg(
        long,
        env = "CICD_MAX_MATRIX_COMBINATIONS",
        default_value_t = limits::DEFAULT_MAX_MATRIX_COMBINATIONS
    )]
    pub max_matrix_combinations: usize,
    /// Largest rendered pod (as JSON), and all substituted text of one run, in bytes.
    #[arg(long, env = "CICD_MAX_POD_BYTES", default_value_t = limits::DEFAULT_MAX_POD_BYTES)]
    pub max_pod_bytes: usize,
}

impl LimitFlags {
    pub fn limits(&self) -> Limits {
        Limits {
            max_field_bytes: self.max_field_bytes,
            max_array_items: self.max_array_items,
            max_steps: self.max_steps,
            max_sidecars: self.max_sidecars,
            max_params: self.max_params,
            max_results: self.max_results,
            max_workspaces: self.max_workspaces,
            max_pipeline_tasks: self.max_pipeline_tasks,
            max_matrix_combinations: self.max_matrix_combinations,
            max_pod_bytes: self.max_pod_bytes,
        }
    }
}
