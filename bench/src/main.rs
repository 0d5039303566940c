//! `cicd-bench`: raw pods and MyTaskRuns measured side by side on one
//! cluster, in one invocation, so the ratios compare like with like.
//! `hack/bench` builds and runs it against the local cluster; README's
//! "Benchmarks" section quotes what it prints.

mod objects;
mod phases;
mod process;
mod stats;
mod watch;

use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;

use phases::{Bench, Report};

/// The phases of one invocation, in the order they run.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// Controller-only burst: raw pods, then runs (`--burst`).
    Burst,
    /// Runs at a steady rate, controller only (`--steady-rate`, `--steady-seconds`).
    Steady,
    /// Burst whose pods really run one step: raw pods, then runs (`--running`).
    Running,
    /// Probes in namespace B during a burst in namespace A (`--fairness-burst`).
    Fairness,
    /// Controller memory after many finished runs (`--history`).
    History,
}

#[derive(Parser, Debug, Clone)]
#[command(name = "cicd-bench", about = "Raw pods vs MyTaskRuns on the local cluster")]
pub struct Options {
    /// Which phases to run, comma separated (default: all of them).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "burst,steady,running,fairness,history"
    )]
    pub phases: Vec<Which>,
    /// Size of the controller-only burst (pods that cannot be scheduled).
    #[arg(long, default_value_t = 1000)]
    pub burst: usize,
    /// Runs per second of the steady phase (0 skips it).
    #[arg(long, default_value_t = 50)]
    pub steady_rate: u32,
    /// Seconds the steady phase lasts.
    #[arg(long, default_value_t = 120)]
    pub steady_seconds: u64,
    /// Size of the burst whose pods really run one step (0 skips it).
    #[arg(long, default_value_t = 300)]
    pub running: usize,
    /// Size of the other tenant's burst in the fair-share phase (0 skips it).
    #[arg(long, default_value_t = 500)]
    pub fairness_burst: usize,
    /// Probes created in a second namespace during that burst.
    #[arg(long, default_value_t = 20)]
    pub fairness_probes: usize,
    /// Finished runs to accumulate before reading the controller's memory (0 skips it).
    #[arg(long, default_value_t = 5000)]
    pub history: usize,
    /// Create requests in flight at once, for raw pods and runs alike.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// How long one phase may wait for its pods before it is reported as incomplete.
    #[arg(long, default_value = "600", value_parser = seconds)]
    pub phase_timeout: Duration,
    /// Step image (the local registry's bash image).
    #[arg(long, default_value = "127.0.0.1:5000/cicd/bash:5")]
    pub image: String,
    /// Keep the benchmark namespaces afterwards.
    #[arg(long)]
    pub keep: bool,
}

fn seconds(text: &str) -> Result<Duration, String> {
    text.parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| format!("{text:?} is not a whole number of seconds"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    let client = kube::Client::try_default()
        .await
        .context("no cluster: source hack/local-cluster/env.sh first")?;
    let command: Vec<String> = std::env::args().skip(1).collect();
    let bench = Bench::new(client, options).await?;
    let report: Report = bench.run_all().await?;
    println!("{report}");
    println!("command: hack/bench {}", command.join(" "));
    Ok(())
}
