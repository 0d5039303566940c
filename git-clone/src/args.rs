//! Command line of `cicd-git-clone`. The task passes every param as a flag;
//! optional workspaces that are not bound arrive as empty strings.

use std::path::{Component, Path, PathBuf};

use clap::Parser;

#[derive(Parser, Debug, Clone, PartialEq, Eq)]
#[command(name = "cicd-git-clone", about = "Clone a git repository at a branch, tag or commit")]
pub struct Args {
    /// Repository URL (https://, http://, git://, ssh://, user@host:path or a local path).
    #[arg(long)]
    pub url: String,
    /// Branch, tag, full ref or 40-hex commit; empty for the remote's default branch.
    #[arg(long, default_value = "")]
    pub revision: String,
    /// History depth to fetch; 0 fetches everything. Ignored for commit ids.
    #[arg(long, default_value = "1", allow_hyphen_values = true)]
    pub depth: String,
    /// Directory (usually the `output` workspace) that receives the checkout.
    #[arg(long)]
    pub output: PathBuf,
    /// Subdirectory of --output to clone into; empty for --output itself.
    #[arg(long, default_value = "")]
    pub subdirectory: String,
    /// "false" accepts any TLS certificate.
    #[arg(long, default_value = "true")]
    pub ssl_verify: String,
    /// Directory with id_ed25519/id_rsa/id_ecdsa and known_hosts; empty for none.
    #[arg(long, default_value = "")]
    pub ssh_directory: String,
    /// Directory with `username` and `password` files; empty for none.
    #[arg(long, default_value = "")]
    pub basic_auth: String,
    /// "false" keeps what is already in the target directory.
    #[arg(long, default_value = "true")]
    pub delete_existing: String,
    /// Where to write the checked-out commit id.
    #[arg(long)]
    pub result_commit: Option<PathBuf>,
    /// Where to write the URL that was cloned.
    #[arg(long)]
    pub result_url: Option<PathBuf>,
}

/// Validated settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub url: String,
    pub revision: String,
    /// None: full history.
    pub depth: Option<u32>,
    pub target: PathBuf,
    pub ssl_verify: bool,
    pub ssh_directory: Option<PathBuf>,
    pub basic_auth: Option<PathBuf>,
    /// A user and password given directly (the controller's git resolver
    /// with a `gitToken`); used when no `basic_auth` directory is given.
    pub login: Option<(String, String)>,
    /// A git credential store file (`$HOME/.git-credentials`, which the
    /// engine writes from the run's ServiceAccount), read when no
    /// `basic_auth` directory is given. The command line sets it; a library
    /// caller (the controller's git resolver) leaves it None.
    pub git_credentials: Option<PathBuf>,
    pub delete_existing: bool,
    pub result_commit: Option<PathBuf>,
    pub result_url: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgsError {
    #[error("url is empty")]
    EmptyUrl,
    #[error("depth {0:?} is not a non-negative number")]
    Depth(String),
    #[error("{name} must be \"true\" or \"false\", got {value:?}")]
    Bool { name: &'static str, value: String },
    #[error("subdirectory {0:?} must be a relative path inside the workspace (no \"..\")")]
    Subdirectory(String),
}

impl Args {
    pub fn settings(&self) -> Result<Settings, ArgsError> {
        let url = self.url.trim().to_string();
        if url.is_empty() {
            return Err(ArgsError::EmptyUrl);
        }
        let depth: u32 = self
            .depth
            .trim()
            .parse()
            .map_err(|_| ArgsError::Depth(self.depth.clone()))?;
        Ok(Settings {
            url,
            revision: self.revision.trim().to_string(),
            depth: (depth > 0).then_some(depth),
            target: join_subdirectory(&self.output, &self.subdirectory)?,
            ssl_verify: parse_bool("sslVerify", &self.ssl_verify)?,
            ssh_directory: non_empty_path(&self.ssh_directory),
            basic_auth: non_empty_path(&self.basic_auth),
            login: None,
            git_credentials: None,
            delete_existing: parse_bool("deleteExisting", &self.delete_existing)?,
            result_commit: self.result_commit.clone(),
            result_url: self.result_url.clone(),
        })
    }
}

fn parse_bool(name: &'static str, value: &str) -> Result<bool, ArgsError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err(ArgsError::Bool {
            name,
            value: value.to_string(),
        }),
    }
}

fn non_empty_path(value: &str) -> Option<PathBuf> {
    let value = value.trim();
    (!value.is_empty()).then(|| PathBuf::from(value))
}

/// `output/subdirectory`, refusing anything that would leave `output`.
pub fn join_subdirectory(output: &Path, subdirectory: &str) -> Result<PathBuf, ArgsError> {
    let sub = Path::new(subdirectory.trim());
    let mut target = output.to_path_buf();
    for component in sub.components() {
        match component {
            Component::Normal(part) => target.push(part),
            Component::CurDir => {}
            _ => return Err(ArgsError::Subdirectory(subdirectory.to_string())),
        }
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &[&str]) -> Result<Settings, ArgsError> {
        let mut argv = vec![
            "cicd-git-clone",
            "--url",
            "ssh://git@127.0.0.1:2222/app.git",
            "--output",
            "/workspace/output",
        ];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv).expect("clap accepts the flags").settings()
    }

    #[test]
    fn defaults_are_a_shallow_clone_of_the_default_branch() {
        let settings = parse(&[]).expect("valid");
        assert_eq!(settings.revision, "");
        assert_eq!(settings.depth, Some(1));
        assert_eq!(settings.target, PathBuf::from("/workspace/output"));
        assert!(settings.ssl_verify);
        assert!(settings.delete_existing);
        assert_eq!(settings.ssh_directory, None);
        assert_eq!(settings.basic_auth, None);
    }

    #[test]
    fn unbound_workspaces_arrive_empty_and_mean_none() {
        let settings = parse(&["--ssh-directory", "", "--basic-auth", " "]).expect("valid");
        assert_eq!(settings.ssh_directory, None);
        assert_eq!(settings.basic_auth, None);
        let settings = parse(&["--ssh-directory", "/workspace/ssh-directory"]).expect("valid");
        assert_eq!(settings.ssh_directory, Some(PathBuf::from("/workspace/ssh-directory")));
    }

    #[test]
    fn depth_zero_is_full_history() {
        assert_eq!(parse(&["--depth", "0"]).expect("valid").depth, None);
        assert_eq!(parse(&["--depth", "25"]).expect("valid").depth, Some(25));
        assert_eq!(parse(&["--depth", "-1"]), Err(ArgsError::Depth("-1".into())));
        assert_eq!(parse(&["--depth", "one"]), Err(ArgsError::Depth("one".into())));
    }

    #[test]
    fn booleans_are_checked() {
        assert!(!parse(&["--ssl-verify", "false"]).expect("valid").ssl_verify);
        assert!(!parse(&["--delete-existing", "False"]).expect("valid").delete_existing);
        assert!(matches!(
            parse(&["--ssl-verify", "maybe"]),
            Err(ArgsError::Bool { name: "sslVerify", .. })
        ));
    }

    #[test]
    fn subdirectory_stays_inside_the_output() {
        assert_eq!(
            parse(&["--subdirectory", "src/app"]).expect("valid").target,
            PathBuf::from("/workspace/output/src/app")
        );
        assert_eq!(
            parse(&["--subdirectory", "./app/"]).expect("valid").target,
            PathBuf::from("/workspace/output/app")
        );
        assert!(parse(&["--subdirectory", "../etc"]).is_err());
        assert!(parse(&["--subdirectory", "/etc"]).is_err());
    }

    #[test]
    fn an_empty_url_is_refused() {
        let args = Args::try_parse_from(["cicd-git-clone", "--url", " ", "--output", "/o"]).expect("clap accepts");
        assert_eq!(args.settings(), Err(ArgsError::EmptyUrl));
    }
}
