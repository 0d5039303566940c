//! Controller settings: flags, each with an environment fallback.

use std::net::SocketAddr;
use std::time::Duration;

use crate::engine::duration::parse_duration;
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
    /// Timeout of runs that set none (e.g. 1h, 30m; 0 = none).
    #[arg(long, env = "CICD_DEFAULT_TIMEOUT", default_value = "1h", value_parser = parse_duration)]
    pub default_timeout: Duration,
    /// Runs reconciled at the same time.
    #[arg(long, env = "CICD_WORKERS", default_value_t = 4)]
    pub workers: u16,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "CICD_METRICS_ADDRESS", default_value = "0.0.0.0:8080")]
    pub metrics_address: SocketAddr,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "CICD_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// Take a Lease before reconciling, so only one replica works at a time.
    #[arg(long, env = "CICD_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// Namespace of the leader-election Lease (default: the pod's namespace).
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
