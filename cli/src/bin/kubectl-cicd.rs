//! `kubectl-cicd`: the same program as `cicd`, under the name kubectl finds
//! plugins by, so `kubectl cicd ...` works once it is on PATH.

fn main() -> std::process::ExitCode {
    cicd_cli::cli::main()
}
