//! Prometheus metrics of the controller, served at /metrics.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabel {
    pub error: String,
}

pub struct Metrics {
    registry: Registry,
    pub reconciles: Counter,
    pub reconcile_errors: Family<ErrorLabel, Counter>,
    pub reconcile_duration: Histogram,
    pub runs_started: Counter,
    /// Finished runs by the reason of their final condition.
    pub runs_finished: Family<ReasonLabel, Counter>,
    pub run_duration: Histogram,
    pub pipeline_reconciles: Counter,
    pub pipeline_runs_started: Counter,
    /// Finished pipeline runs by the reason of their final condition.
    pub pipeline_runs_finished: Family<ReasonLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("cicd");
        let reconciles = Counter::default();
        let reconcile_errors = Family::<ErrorLabel, Counter>::default();
        // Reconciles take milliseconds: 1 ms .. ~4 s.
        let reconcile_duration = Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
            0.001, 2.0, 13,
        ));
        let runs_started = Counter::default();
        let runs_finished = Family::<ReasonLabel, Counter>::default();
        // Runs take seconds to hours: 1 s .. ~4.5 h.
        let run_duration = Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(1.0, 2.0, 15));
        registry.register("taskrun_reconciles", "Reconciles of MyTaskRuns", reconciles.clone());
        registry.register(
            "taskrun_reconcile_errors",
            "Reconciles that failed, by error kind",
            reconcile_errors.clone(),
        );
        registry.register(
            "taskrun_reconcile_duration_seconds",
            "Time spent in one reconcile",
            reconcile_duration.clone(),
        );
        registry.register(
            "taskruns_started",
            "MyTaskRuns whose first pod was created",
            runs_started.clone(),
        );
        registry.register(
            "taskruns_finished",
            "MyTaskRuns finished, by final reason",
            runs_finished.clone(),
        );
        registry.register(
            "taskrun_duration_seconds",
            "From a run's start to its completion",
            run_duration.clone(),
        );
        let pipeline_reconciles = Counter::default();
        let pipeline_runs_started = Counter::default();
        let pipeline_runs_finished = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "pipelinerun_reconciles",
            "Reconciles of MyPipelineRuns",
            pipeline_reconciles.clone(),
        );
        registry.register(
            "pipelineruns_started",
            "MyPipelineRuns whose first task run was created",
            pipeline_runs_started.clone(),
        );
        registry.register(
            "pipelineruns_finished",
            "MyPipelineRuns finished, by final reason",
            pipeline_runs_finished.clone(),
        );
        Metrics {
            registry,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            runs_started,
            runs_finished,
            run_duration,
            pipeline_reconciles,
            pipeline_runs_started,
            pipeline_runs_finished,
        }
    }
}

impl Metrics {
    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
