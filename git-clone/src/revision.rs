//! What a `revision` names, and which remote ref to fetch for it. Pure: the
//! remote's refs come in as a list, so every case is unit tested.

/// The kinds of revision the task accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revision {
    /// Empty: the remote's default branch (what its HEAD points to).
    DefaultBranch,
    /// A full 40-hex commit id.
    Commit(String),
    /// A branch or tag name (`main`, `v1.0`) or a full ref (`refs/pull/1/head`).
    Name(String),
}

impl Revision {
    pub fn classify(revision: &str) -> Revision {
        let revision = revision.trim();
        if revision.is_empty() || revision == "HEAD" {
            Revision::DefaultBranch
        } else if revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit()) {
            Revision::Commit(revision.to_ascii_lowercase())
        } else {
            Revision::Name(revision.to_string())
        }
    }
}

/// One ref the remote advertises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRef {
    pub name: String,
    pub oid: String,
}

/// What to fetch so that the revision is in the local repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchPlan {
    /// Fetch one ref (with the requested depth) into `local`, then check out
    /// what `local` points to.
    Ref { remote: String, local: String },
    /// A commit id: fetch every branch and tag in full (a shallow fetch
    /// could miss it, and plain git servers refuse unadvertised ids),
    /// then look the commit up.
    Everything { commit: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// No branch, tag or ref of that name; `known` lists a few that exist.
    NotFound { known: Vec<String> },
    /// The remote has no HEAD (empty repository) and no revision was given.
    NoDefaultBranch,
}

/// Decides which ref of the remote the revision means. A name is tried as
/// a branch, then a tag, then as a full ref name, as `git clone --branch`
/// does (branches win over tags of the same name).
pub fn plan_fetch(
    revision: &Revision,
    remote_refs: &[RemoteRef],
    default_branch: Option<&str>,
) -> Result<FetchPlan, PlanError> {
    let has = |name: &str| remote_refs.iter().any(|r| r.name == name);
    match revision {
        Revision::Commit(commit) => Ok(FetchPlan::Everything { commit: commit.clone() }),
        Revision::DefaultBranch => {
            let branch = default_branch.filter(|b| has(b)).ok_or(PlanError::NoDefaultBranch)?;
            Ok(ref_plan(branch))
        }
        Revision::Name(name) => {
            let candidates = [format!("refs/heads/{name}"), format!("refs/tags/{name}"), name.clone()];
            match candidates.iter().find(|c| c.starts_with("refs/") && has(c)) {
                Some(found) => Ok(ref_plan(found)),
                None => Err(PlanError::NotFound {
                    known: known_names(remote_refs),
                }),
            }
        }
    }
}

/// The local ref a remote ref is fetched into: branches under
/// refs/remotes/origin, tags as tags, anything else under refs/cicd.
fn ref_plan(remote: &str) -> FetchPlan {
    let local = if let Some(branch) = remote.strip_prefix("refs/heads/") {
        format!("refs/remotes/origin/{branch}")
    } else if remote.starts_with("refs/tags/") {
        remote.to_string()
    } else {
        format!("refs/cicd/{}", remote.trim_start_matches("refs/"))
    };
    FetchPlan::Ref {
        remote: remote.to_string(),
        local,
    }
}

/// Up to ten branch and tag names, for "did you mean" in errors.
fn known_names(remote_refs: &[RemoteRef]) -> Vec<String> {
    remote_refs
        .iter()
        .filter_map(|r| {
            r.name
                .strip_prefix("refs/heads/")
                .or_else(|| r.name.strip_prefix("refs/tags/"))
        })
        .filter(|n| !n.ends_with("^{}"))
        .take(10)
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(names: &[&str]) -> Vec<RemoteRef> {
        names
            .iter()
            .map(|n| RemoteRef {
                name: n.to_string(),
                oid: "0".repeat(40),
            })
            .collect()
    }

    #[test]
    fn classifies_empty_head_sha_and_names() {
        assert_eq!(Revision::classify(""), Revision::DefaultBranch);
        assert_eq!(Revision::classify("  "), Revision::DefaultBranch);
        assert_eq!(Revision::classify("HEAD"), Revision::DefaultBranch);
        let sha = "0123456789ABCDEF0123456789abcdef01234567";
        assert_eq!(Revision::classify(sha), Revision::Commit(sha.to_ascii_lowercase()));
        // Short ids cannot be fetched: they are names (and fail as unknown).
        assert_eq!(Revision::classify("0123456"), Revision::Name("0123456".into()));
        assert_eq!(Revision::classify("v1.0"), Revision::Name("v1.0".into()));
        // 40 chars but not hex.
        let not_hex = "g".repeat(40);
        assert_eq!(Revision::classify(&not_hex), Revision::Name(not_hex.clone()));
    }

    #[test]
    fn a_branch_wins_over_a_tag_of_the_same_name() {
        let remote = refs(&["HEAD", "refs/heads/main", "refs/heads/v1", "refs/tags/v1"]);
        let plan = plan_fetch(&Revision::Name("v1".into()), &remote, None);
        assert_eq!(
            plan,
            Ok(FetchPlan::Ref {
                remote: "refs/heads/v1".into(),
                local: "refs/remotes/origin/v1".into()
            })
        );
    }

    #[test]
    fn tags_and_full_refs_are_found() {
        let remote = refs(&["refs/heads/main", "refs/tags/v2", "refs/tags/v2^{}", "refs/pull/7/head"]);
        assert_eq!(
            plan_fetch(&Revision::Name("v2".into()), &remote, None),
            Ok(FetchPlan::Ref {
                remote: "refs/tags/v2".into(),
                local: "refs/tags/v2".into()
            })
        );
        assert_eq!(
            plan_fetch(&Revision::Name("refs/pull/7/head".into()), &remote, None),
            Ok(FetchPlan::Ref {
                remote: "refs/pull/7/head".into(),
                local: "refs/cicd/pull/7/head".into()
            })
        );
    }

    #[test]
    fn the_default_branch_comes_from_the_remote_head() {
        let remote = refs(&["HEAD", "refs/heads/trunk"]);
        assert_eq!(
            plan_fetch(&Revision::DefaultBranch, &remote, Some("refs/heads/trunk")),
            Ok(FetchPlan::Ref {
                remote: "refs/heads/trunk".into(),
                local: "refs/remotes/origin/trunk".into()
            })
        );
        assert_eq!(
            plan_fetch(&Revision::DefaultBranch, &refs(&[]), None),
            Err(PlanError::NoDefaultBranch)
        );
    }

    #[test]
    fn an_unknown_name_lists_what_exists() {
        let remote = refs(&["HEAD", "refs/heads/main", "refs/tags/v1", "refs/tags/v1^{}"]);
        assert_eq!(
            plan_fetch(&Revision::Name("nope".into()), &remote, None),
            Err(PlanError::NotFound {
                known: vec!["main".into(), "v1".into()]
            })
        );
        // "heads/main" is neither a branch name nor a full ref.
        assert!(plan_fetch(&Revision::Name("heads/main".into()), &remote, None).is_err());
    }

    #[test]
    fn a_commit_fetches_everything() {
        let sha = "a".repeat(40);
        assert_eq!(
            plan_fetch(&Revision::Commit(sha.clone()), &[], None),
            Ok(FetchPlan::Everything { commit: sha })
        );
    }
}
