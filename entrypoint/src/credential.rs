//! The `--credential KIND:DIR=TARGET` flag, shared by the controller (which
//! writes it for the first step) and the entrypoint (which writes the
//! credential files it names; see `credentials`).

use alloc::string::{String, ToString};

/// What a credential Secret holds and where it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `kubernetes.io/basic-auth` for git over http(s); TARGET is the url.
    GitBasicAuth,
    /// `kubernetes.io/ssh-auth` for git over ssh; TARGET is `host[:port]`.
    GitSsh,
    /// `kubernetes.io/basic-auth` for a registry; TARGET is its url.
    DockerBasicAuth,
    /// `kubernetes.io/dockerconfigjson`: its `auths` join config.json.
    DockerConfigJson,
    /// `kubernetes.io/dockercfg` (the legacy format: the `auths` map alone).
    DockerCfg,
}

impl Kind {
    pub const ALL: [(Kind, &'static str); 5] = [
        (Kind::GitBasicAuth, "git-basic-auth"),
        (Kind::GitSsh, "git-ssh"),
        (Kind::DockerBasicAuth, "docker-basic-auth"),
        (Kind::DockerConfigJson, "docker-config-json"),
        (Kind::DockerCfg, "docker-cfg"),
    ];
}

/// One `--credential KIND:DIR=TARGET`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub kind: Kind,
    /// The mounted Secret (one file per key).
    pub secret_dir: String,
    /// The url or host it is for; empty for the docker config kinds.
    pub target: String,
}

/// Parses `KIND:DIR=TARGET` (`KIND:DIR` for the docker config kinds).
pub fn parse(value: &str) -> Result<Credential, String> {
    let (kind_text, rest) = value.split_once(':').ok_or("expected KIND:DIR=TARGET")?;
    let kind = Kind::ALL
        .iter()
        .find(|(_, name)| *name == kind_text)
        .map(|(kind, _)| *kind)
        .ok_or_else(|| format!("unknown kind {kind_text:?}"))?;
    let (dir, target) = match rest.split_once('=') {
        Some((dir, target)) => (dir, target),
        None => (rest, ""),
    };
    if dir.is_empty() {
        return Err("empty DIR".into());
    }
    let needs_target = !matches!(kind, Kind::DockerConfigJson | Kind::DockerCfg);
    if needs_target == target.is_empty() {
        return Err(if needs_target {
            "missing =TARGET"
        } else {
            "takes no =TARGET"
        }
        .into());
    }
    check_target(target)?;
    Ok(Credential {
        kind,
        secret_dir: dir.to_string(),
        target: target.to_string(),
    })
}

/// A url or host goes into config files line by line: no whitespace,
/// quotes, backslashes or control characters that could start another line
/// or setting.
pub fn check_target(target: &str) -> Result<(), String> {
    match target
        .chars()
        .find(|&c| is_space_or_control(c) || matches!(c, '"' | '\\' | '#' | ';'))
    {
        Some(c) => Err(format!(
            "{target:?}: character {c:?} is not allowed in a credential's url or host"
        )),
        None => Ok(()),
    }
}

impl Kind {
    pub fn name(self) -> &'static str {
        Kind::ALL
            .iter()
            .find(|(kind, _)| *kind == self)
            .map_or("", |(_, name)| *name)
    }
}

impl core::fmt::Display for Credential {
    /// The flag's value: `KIND:DIR=TARGET`, or `KIND:DIR` without a target.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}:{}", self.kind.name(), self.secret_dir)?;
        if !self.target.is_empty() {
            write!(f, "={}", self.target)?;
        }
        Ok(())
    }
}

/// ASCII whitespace and C0/C1 control characters, without the Unicode
/// tables `char::is_whitespace` would link into the static binary.
pub fn is_space_or_control(c: char) -> bool {
    c.is_ascii_whitespace() || c.is_ascii_control() || ('\u{80}'..='\u{9f}').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_kind_and_refuses_what_could_break_a_config_line() {
        let git = parse("git-basic-auth:/c/s=https://git.example").expect("parses");
        assert_eq!(git.kind, Kind::GitBasicAuth);
        assert_eq!(git.secret_dir, "/c/s");
        assert_eq!(git.target, "https://git.example");
        assert_eq!(parse("docker-config-json:/c/d").expect("parses").target, "");
        assert!(parse("docker-cfg:/c/d=x").unwrap_err().contains("takes no"));
        assert!(parse("git-ssh:/c/s").unwrap_err().contains("missing"));
        assert!(parse("ftp:/c/s=x").unwrap_err().contains("unknown kind"));
        let err = parse("git-ssh:/c/s=host\n    ProxyCommand sh").unwrap_err();
        assert!(err.contains("not allowed"), "{err}");
    }

    #[test]
    fn the_flag_value_parses_back_to_itself() {
        for text in [
            "git-basic-auth:/c/s=https://git.example",
            "git-ssh:/c/k=h:2222",
            "docker-cfg:/c/d",
        ] {
            assert_eq!(parse(text).expect("parses").to_string(), text);
        }
    }
}
