//! Entry point: parse flags, clone, write the task results.

use std::fs;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use cicd_git_clone::args::Args;
use cicd_git_clone::clone::clone;
use clap::Parser;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line that names what failed; no backtrace noise in task logs.
            eprintln!("cicd-git-clone: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let started = Instant::now();
    let mut settings = Args::parse().settings()?;
    settings.git_credentials = std::env::var_os("HOME")
        .map(|home| std::path::PathBuf::from(home).join(".git-credentials"))
        .filter(|store| store.is_file());
    let revision = if settings.revision.is_empty() {
        "(default branch)"
    } else {
        settings.revision.as_str()
    };
    eprintln!(
        "cicd-git-clone: cloning {} at {revision} into {}",
        settings.url,
        settings.target.display()
    );
    let cloned = clone(&settings)?;
    if let Some(path) = &settings.result_commit {
        fs::write(path, &cloned.commit).with_context(|| format!("writing result {}", path.display()))?;
    }
    if let Some(path) = &settings.result_url {
        fs::write(path, &settings.url).with_context(|| format!("writing result {}", path.display()))?;
    }
    eprintln!(
        "cicd-git-clone: checked out {} ({}) in {:.1}s",
        cloned.commit,
        cloned.fetched_ref.as_deref().unwrap_or("commit id"),
        started.elapsed().as_secs_f64()
    );
    println!("{}", cloned.commit);
    Ok(())
}
