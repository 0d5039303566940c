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

#[derive(Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions as YAML.
    Crd,
    /// Print the pod each MyTaskRun in the files would get, or every validation error.
    Render {
        /// A YAML file with MyTask and MyTaskRun documents (repeatable).
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
            let mut inputs = Vec::new();
            for file in &files {
                let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
                let name = file.display().to_string();
                match commands::source_text(&name, &bytes) {
                    Ok(text) => inputs.push((name, text)),
                    Err(error) => {
                        eprintln!("{error}");
                        return Ok(ExitCode::FAILURE);
                    }
                }
            }
            let settings = RenderSettings {
                entrypoint_image,
                limits: limits.limits(),
                ..Default::default()
            };
            match commands::render_yaml(&inputs, &settings, cicd_controller::config::DEFAULT_TIMEOUT) {
                Ok(yaml) => {
                    print!("{yaml}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(error) => {
                    eprintln!("{error}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Convert { files, allow_lossy } => convert(&files, allow_lossy),
        Command::Run(config) => {
            let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(cicd_controller::controller::run(config))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn read_input(file: &std::path::Path) -> anyhow::Result<(String, String)> {
    if file.as_os_str() == "-" {
        let text = std::io::read_to_string(std::io::stdin()).context("cannot read stdin")?;
        return Ok(("stdin".to_string(), text));
    }
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    Ok((file.display().to_string(), text))
}

fn convert(files: &[PathBuf], allow_lossy: bool) -> anyhow::Result<ExitCode> {
    let inputs = files
        .iter()
        .map(|f| read_input(f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    match cicd_controller::convert::convert_yaml(&inputs, allow_lossy) {
        Ok(output) => {
            for loss in &output.losses {
                eprintln!("warning: {loss}");
            }
            print!("{}", output.yaml);
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("{error}");
            Ok(ExitCode::FAILURE)
        }
    }
}
