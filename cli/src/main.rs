//! `cicd`: the command line of cicd-operator.

fn main() -> std::process::ExitCode {
    cicd_cli::cli::main()
}
