//! `cicd-controller`: run the controller, or use the offline commands.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use cicd_controller::commands;
use cicd_controller::config::{ControllerConfig, LimitFlags};
use cicd_controller::pod::render::RenderSettings;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cicd-controller",
    version,
    about = "Kubernetes-native CI/CD: runs MyTaskRuns and MyPipelineRuns"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at startup: the size of the controller's flags in the enum
// costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions as YAML.
    Crd,
    /// Print the pod each MyTaskRun in the files would get, and every child (with its pod) of each
    /// MyPipelineRun, or every validation error.
    Render {
        /// A YAML file with MyTask, MyTaskRun, MyPipeline, MyPipelineRun and MyStepAction documents
        /// (repeatable).
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<PathBuf>,
        #[arg(long, env = "CICD_ENTRYPOINT_IMAGE", default_value = cicd_controller::config::DEFAULT_ENTRYPOINT_IMAGE)]
        entrypoint_image: String,
        /// The limits the controller would apply (same flags as `run`).
        #[command(flatten)]
        limits: LimitFlags,
    },
    /// Print Tekton (tekton.dev/v1, v1beta1) YAML as this project's kinds.
    /// Fields without an exact equivalent are listed on stderr; then
    /// nothing is printed and the exit code is 1, unless --allow-lossy.
    Convert {
        /// A YAML file of Tekton documents, `-` for stdin (repeatable).
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<PathBuf>,
        /// Print the conversion even when some fields cannot be carried over.
        #[arg(long)]
        allow_lossy: bool,
    },
    /// Run the controller against the cluster in the current kubeconfig.
    Run(ControllerConfig),
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Crd => {
            print!("{}", commands::crds_yaml()?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Render {
            files,
            entrypoint_image,
            limits,
        } => {
            let settings = RenderSettings {
                entrypoint_image,
                limits: limits.limits(),
                ..Default::default()
            };
            Ok(commands::render_files(&files, &settings, cicd_controller::config::DEFAULT_TIMEOUT).print())
        }
        Command::Convert { files, allow_lossy } => Ok(commands::convert_files(&files, allow_lossy).print()),
        Command::Run(config) => {
            let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(cicd_controller::controller::run(config))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
