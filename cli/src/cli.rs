//! The command line: its arguments (clap) and what each command does.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use jiff::Timestamp;

use crate::args::{parse_params, parse_workspaces};
use crate::client::{CliError, Cluster, connect};
use crate::describe::{describe_pipeline_run, describe_task_run};
use crate::format::runs_table;
use crate::logs::{LogPrinter, exit_code, print_run};
use crate::ops::{self, AnyRun, StartRequest};
use crate::progress::Progress;

#[derive(Parser, Debug)]
#[command(
    name = "cicd",
    version,
    about = "Start, follow and inspect MyTaskRuns and MyPipelineRuns (also as `kubectl cicd`)"
)]
pub struct Cli {
    /// The namespace (default: the kubeconfig context's).
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// The kubeconfig context to use (default: the current one).
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// Every namespace (list, dashboard).
    #[arg(short = 'A', long = "all-namespaces", global = true)]
    pub all_namespaces: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// `-o` formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Json,
    Yaml,
    Name,
}

/// What `start` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    Task,
    Pipeline,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a run of a MyTask or MyPipeline (a generated name) and print it.
    Start {
        /// task or pipeline
        what: Target,
        /// The MyTask or MyPipeline.
        name: String,
        /// A param: KEY=VALUE (VALUE `[a,b]` for an array). Repeatable.
        #[arg(short = 'p', long = "param")]
        params: Vec<String>,
        /// A workspace: NAME=emptyDir | pvc:CLAIM | secret:SECRET | configmap:CONFIGMAP. Repeatable.
        #[arg(short = 'w', long = "workspace")]
        workspaces: Vec<String>,
        /// How long the run may take, e.g. 10m or 1h30m.
        #[arg(long)]
        timeout: Option<String>,
        /// The ServiceAccount the pods run as.
        #[arg(long = "service-account")]
        service_account: Option<String>,
        /// Run the pods on the node's network (to reach servers on its loopback).
        #[arg(long = "host-network")]
        host_network: bool,
        /// Stream the logs and exit with the run's outcome (0 only for Succeeded).
        #[arg(short = 'f', long)]
        follow: bool,
        /// Print the created run as json, yaml, or just its name.
        #[arg(short = 'o', long)]
        output: Option<Output>,
    },
    /// Print a run's logs: steps in order, `[task/step]` before each line.
    Logs {
        /// The run (NAME, mpr/NAME or mtr/NAME).
        run: String,
        /// Follow until the run ends; exit with its outcome.
        #[arg(short = 'f', long)]
        follow: bool,
    },
    /// List runs, newest first.
    #[command(visible_alias = "ls")]
    List {
        /// Also list the MyTaskRuns that pipelines created.
        #[arg(long)]
        children: bool,
        #[arg(short = 'o', long)]
        output: Option<Output>,
    },
    /// Show a run: failure first, params, results, steps, child runs, events.
    Describe {
        run: String,
        /// The object itself as json or yaml.
        #[arg(short = 'o', long)]
        output: Option<Output>,
    },
    /// Cancel a run (sets spec.status: Cancelled).
    Cancel { run: String },
    /// Start a new run with the same spec as RUN.
    Rerun {
        run: String,
        /// Stream the new run's logs and exit with its outcome.
        #[arg(short = 'f', long)]
        follow: bool,
        #[arg(short = 'o', long)]
        output: Option<Output>,
    },
    /// Print the pod each MyTaskRun in the files would get, or every validation error (offline).
    Render {
        /// A YAML file with MyTask and MyTaskRun documents (repeatable).
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<PathBuf>,
        #[arg(long, env = "CICD_ENTRYPOINT_IMAGE", default_value = cicd_controller::config::DEFAULT_ENTRYPOINT_IMAGE)]
        entrypoint_image: String,
    },
    /// Print Tekton (tekton.dev/v1, v1beta1) YAML as this project's kinds (offline).
    /// Fields without an exact equivalent are listed on stderr; then nothing
    /// is printed and the exit code is 1, unless --allow-lossy.
    Convert {
        /// A YAML file of Tekton documents, `-` for stdin (repeatable).
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<PathBuf>,
        /// Print the conversion even when some fields cannot be carried over.
        #[arg(long)]
        allow_lossy: bool,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completion { shell: clap_complete::Shell },
    /// Serve the web dashboard on this machine, with your kubeconfig's credentials.
    Dashboard {
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// The address to listen on. Anything but loopback needs --allow-remote.
        #[arg(long, default_value = "127.0.0.1")]
        address: std::net::IpAddr,
        /// Allow a non-loopback --address: anyone who reaches it acts with your credentials.
        #[arg(long = "allow-remote")]
        allow_remote: bool,
    },
}

/// Parses the command line, runs it, prints an error as `error: ...`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the parsed command; the exit code is the run's outcome for the
/// commands that follow one.
pub async fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Render {
            files,
            entrypoint_image,
        } => return Ok(render(&files, entrypoint_image)),
        Command::Convert { files, allow_lossy } => {
            return Ok(cicd_controller::commands::convert_files(&files, allow_lossy).print());
        }
        Command::Completion { shell } => {
            let mut command = Cli::command();
            // Completion is for the name the user typed: cicd or kubectl-cicd.
            let name = std::env::args()
                .next()
                .and_then(|arg0| {
                    PathBuf::from(arg0)
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                })
                .unwrap_or_else(|| "cicd".to_string());
            clap_complete::generate(shell, &mut command, name, &mut std::io::stdout());
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let cluster = connect(cli.context.as_deref(), cli.namespace.as_deref()).await?;
    let namespace = cluster.namespace.clone();
    match cli.command {
        Command::Start {
            what,
            name,
            params,
            workspaces,
            timeout,
            service_account,
            host_network,
            follow,
            output,
        } => {
            let request = StartRequest {
                target: name,
                params: parse_params(&params).map_err(|e| CliError::Invalid(e.to_string()))?,
                workspaces: parse_workspaces(&workspaces).map_err(|e| CliError::Invalid(e.to_string()))?,
                timeout,
                service_account,
                host_network,
            };
            let created = match what {
                Target::Task => AnyRun::Task(Box::new(ops::start_task(&cluster, request).await?)),
                Target::Pipeline => AnyRun::Pipeline(Box::new(ops::start_pipeline(&cluster, request).await?)),
            };
            created_then_follow(&cluster, &namespace, created, follow, output).await
        }
        Command::Logs { run, follow } => {
            let found = ops::find_run(&cluster, &namespace, &run).await?;
            follow_logs(&cluster, &namespace, &found, follow).await
        }
        Command::List { children, output } => {
            let scope = (!cli.all_namespaces).then_some(namespace.as_str());
            let runs = ops::list_runs(&cluster, scope, children).await?;
            match output {
                None => print!("{}", runs_table(&runs, Timestamp::now(), cli.all_namespaces)),
                Some(Output::Name) => runs.iter().for_each(|r| println!("{}", r.name)),
                Some(Output::Json) => println!("{}", serde_json::to_string_pretty(&runs).unwrap_or_default()),
                Some(Output::Yaml) => print!("{}", serde_saphyr::to_string(&runs).unwrap_or_default()),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Describe { run, output } => {
            let found = ops::find_run(&cluster, &namespace, &run).await?;
            match output {
                Some(format) => print_object(&found, format),
                None => print!("{}", describe_text(&cluster, &namespace, &found).await?),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Cancel { run } => {
            let found = ops::find_run(&cluster, &namespace, &run).await?;
            ops::cancel(&cluster, &namespace, &found).await?;
            println!("{} {} cancelled", found.kind().as_str(), found.name());
            Ok(ExitCode::SUCCESS)
        }
        Command::Rerun { run, follow, output } => {
            let found = ops::find_run(&cluster, &namespace, &run).await?;
            let created = ops::rerun(&cluster, &namespace, &found).await?;
            created_then_follow(&cluster, &namespace, created, follow, output).await
        }
        Command::Dashboard {
            port,
            address,
            allow_remote,
        } => {
            if !address.is_loopback() && !allow_remote {
                return Err(CliError::Invalid(format!(
                    "--address {address} is not loopback: anyone who reaches it would act with your credentials; add --allow-remote if you mean it"
                )));
            }
            if !address.is_loopback() {
                eprintln!("WARNING: serving on {address}: anyone who can reach this port acts on the cluster as you");
            }
            let scope = (!cli.all_namespaces).then(|| namespace.clone());
            crate::dashboard::serve(cluster, scope, std::net::SocketAddr::new(address, port)).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Render { .. } | Command::Convert { .. } | Command::Completion { .. } => Ok(ExitCode::SUCCESS),
    }
}

fn print_object(run: &AnyRun, format: Output) {
    match format {
        Output::Json => println!("{}", serde_json::to_string_pretty(&run.to_json()).unwrap_or_default()),
        Output::Yaml => print!("{}", serde_saphyr::to_string(&run.to_json()).unwrap_or_default()),
        Output::Name => println!("{}", run.name()),
    }
}

async fn created_then_follow(
    cluster: &Cluster,
    namespace: &str,
    created: AnyRun,
    follow: bool,
    output: Option<Output>,
) -> Result<ExitCode, CliError> {
    match output {
        Some(format) => print_object(&created, format),
        None => println!(
            "{} {} created in namespace {namespace}",
            created.kind().as_str(),
            created.name()
        ),
    }
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    follow_logs(cluster, namespace, &created, true).await
}

async fn follow_logs(cluster: &Cluster, namespace: &str, run: &AnyRun, follow: bool) -> Result<ExitCode, CliError> {
    let mut printer = LogPrinter {
        colour: std::io::stdout().is_terminal(),
        follow,
        progress: Progress::default(),
    };
    let summary = print_run(cluster, namespace, run, &mut printer).await?;
    Ok(ExitCode::from(if follow { exit_code(summary.outcome) } else { 0 }))
}

async fn describe_text(cluster: &Cluster, namespace: &str, run: &AnyRun) -> Result<String, CliError> {
    let events = ops::events_of(cluster, namespace, &run.name())
        .await
        .unwrap_or_default();
    let now = Timestamp::now();
    Ok(match run {
        AnyRun::Task(task_run) => describe_task_run(task_run, &events, now),
        AnyRun::Pipeline(pipeline_run) => {
            let children = ops::children_of(cluster, namespace, &run.name()).await?;
            describe_pipeline_run(pipeline_run, &children, &events, now)
        }
    })
}

/// `cicd render`: the controller library's own offline render.
fn render(files: &[PathBuf], entrypoint_image: String) -> ExitCode {
    let settings = cicd_controller::pod::render::RenderSettings {
        entrypoint_image,
        ..Default::default()
    };
    cicd_controller::commands::render_files(files, &settings, cicd_controller::config::DEFAULT_TIMEOUT).print()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn start_takes_repeated_params_and_workspaces() {
        let cli = Cli::try_parse_from([
            "cicd",
            "-n",
            "team",
            "start",
            "pipeline",
            "build",
            "-p",
            "a=1",
            "-p",
            "b=2",
            "-w",
            "src=emptyDir",
            "--follow",
        ])
        .expect("parses");
        assert_eq!(cli.namespace.as_deref(), Some("team"));
        match cli.command {
            Command::Start {
                what,
                params,
                workspaces,
                follow,
                ..
            } => {
                assert_eq!(what, Target::Pipeline);
                assert_eq!(params, ["a=1", "b=2"]);
                assert_eq!(workspaces, ["src=emptyDir"]);
                assert!(follow);
            }
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn ls_is_list() {
        let cli = Cli::try_parse_from(["cicd", "ls", "-A", "-o", "json"]).expect("parses");
        assert!(cli.all_namespaces);
        assert!(matches!(
            cli.command,
            Command::List {
                output: Some(Output::Json),
                ..
            }
        ));
    }
}
