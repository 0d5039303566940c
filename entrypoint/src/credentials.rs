//! Credentials from the run's ServiceAccount, written where git, ssh and
//! registry clients look for them.
//!
//! The controller mounts each credential Secret the run's ServiceAccount
//! lists into the first step's container (nowhere else) and names it here
//! with `--credential KIND:DIR=TARGET`. Before that step's command starts,
//! this module writes, under the run's shared HOME (`--credentials-home`):
//! `.git-credentials` and `.gitconfig` (git over http/https), `.ssh/`
//! (keys, `config`, `known_hosts`) and `.docker/config.json`. Every later
//! step sees them, since the steps of a run share that HOME.
//!
//! The text is built by pure functions (`home_files`) from what a reader
//! returns, so it is tested without a filesystem.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Write as _;

use crate::base64;
use crate::credential::{Credential, Kind, is_space_or_control};
use crate::fsutil::write_atomic;
use crate::os::Path;
use crate::sys;

/// The largest Secret file read (the API server's own limit for a Secret).
const MAX_SECRET_FILE_BYTES: u64 = 1024 * 1024;

/// One file to write under HOME.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeFile {
    pub relative: String,
    pub content: Vec<u8>,
    pub mode: u32,
}

/// Writes the credential files under `home`.
pub fn write(home: &Path, credentials: &[Credential]) -> Result<(), String> {
    let read = |dir: &str, key: &str| -> Result<Option<Vec<u8>>, String> {
        let path = Path::new(dir).join(key);
        match sys::stat(&path) {
            Err(_) => Ok(None),
            Ok(meta) if meta.size > MAX_SECRET_FILE_BYTES => Err(format!(
                "{} is {} bytes, over {MAX_SECRET_FILE_BYTES}",
                path.display(),
                meta.size
            )),
            Ok(_) => sys::read_file(&path)
                .map(Some)
                .map_err(|e| format!("cannot read {}: {e}", path.display())),
        }
    };
    for file in home_files(home, credentials, read)? {
        let path = home.join(&file.relative);
        write_atomic(&path, &file.content, file.mode).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

type Reader<'a> = &'a dyn Fn(&str, &str) -> Result<Option<Vec<u8>>, String>;

/// The files `credentials` make under `home` (the path is written into
/// `.ssh/config`). `read(dir, key)` returns a Secret key's bytes, None when
/// the Secret lacks it.
pub fn home_files(
    home: &Path,
    credentials: &[Credential],
    read: impl Fn(&str, &str) -> Result<Option<Vec<u8>>, String>,
) -> Result<Vec<HomeFile>, String> {
    let read: Reader<'_> = &read;
    let of = |kind: Kind| credentials.iter().filter(move |c| c.kind == kind);
    let mut files = Vec::new();
    let git: Vec<&Credential> = of(Kind::GitBasicAuth).collect();
    if !git.is_empty() {
        files.extend(git_files(&git, read)?);
    }
    let ssh: Vec<&Credential> = of(Kind::GitSsh).collect();
    if !ssh.is_empty() {
        files.extend(ssh_files(home, &ssh, read)?);
    }
    let docker: Vec<&Credential> = credentials
        .iter()
        .filter(|c| matches!(c.kind, Kind::DockerBasicAuth | Kind::DockerConfigJson | Kind::DockerCfg))
        .collect();
    if !docker.is_empty() {
        files.push(docker_file(&docker, read)?);
    }
    Ok(files)
}

/// A key that must be there, as UTF-8.
fn required_text(credential: &Credential, key: &str, read: Reader<'_>) -> Result<String, String> {
    let bytes =
        read(&credential.secret_dir, key)?.ok_or_else(|| format!("{} has no {key:?} key", credential.secret_dir))?;
    String::from_utf8(bytes).map_err(|_| format!("{}: {key:?} is not UTF-8", credential.secret_dir))
}

/// The Secret's name: the last part of its mount directory.
fn secret_name(credential: &Credential) -> String {
    let dir = credential.secret_dir.trim_end_matches('/');
    dir.rsplit('/').next().unwrap_or(dir).to_string()
}

/// `.git-credentials` (the `store` helper's file: one url with user and
/// password per line) and a `.gitconfig` that turns the helper on and
/// names the user per url.
fn git_files(credentials: &[&Credential], read: Reader<'_>) -> Result<Vec<HomeFile>, String> {
    let mut store = String::new();
    let mut config = String::from("[credential]\n\thelper = store\n");
    for credential in credentials {
        let user = required_text(credential, "username", read)?;
        let password = required_text(credential, "password", read)?;
        let (scheme, rest) = credential
            .target
            .split_once("://")
            .ok_or_else(|| format!("{:?} is not a url (scheme://host)", credential.target))?;
        let _ = writeln!(
            store,
            "{scheme}://{}:{}@{rest}",
            percent_encode(&user),
            percent_encode(&password)
        );
        let _ = writeln!(
            config,
            "[credential \"{}\"]\n\tusername = {}",
            credential.target,
            git_config_value(&user)?
        );
    }
    Ok(alloc::vec![
        HomeFile {
            relative: ".git-credentials".into(),
            content: store.into_bytes(),
            mode: 0o600,
        },
        HomeFile {
            relative: ".gitconfig".into(),
            content: config.into_bytes(),
            mode: 0o600,
        },
    ])
}

/// Every byte but RFC 3986's unreserved ones as `%XX`.
fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A line break or other control character (a space is fine in a value).
fn is_space_or_control_but_space(c: char) -> bool {
    c != ' ' && is_space_or_control(c)
}

/// A quoted git-config value (a user name could hold `#`, `;` or spaces).
fn git_config_value(text: &str) -> Result<String, String> {
    if text.chars().any(is_space_or_control_but_space) {
        return Err("a git user name must not hold control characters or line breaks".into());
    }
    Ok(format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\"")))
}

/// `.ssh/id_<secret>` per key, a `.ssh/config` block per host pointing at
/// it, and `.ssh/known_hosts` from the Secrets' `known_hosts` keys. A host
/// whose Secret gives no known_hosts accepts the key it first sees
/// (`accept-new`; the pod's `.ssh` is new, so: any key).
fn ssh_files(home: &Path, credentials: &[&Credential], read: Reader<'_>) -> Result<Vec<HomeFile>, String> {
    let mut files = Vec::new();
    let mut config = String::new();
    let mut known_hosts = String::new();
    for credential in credentials {
        let key = read(&credential.secret_dir, "ssh-privatekey")?
            .ok_or_else(|| format!("{} has no \"ssh-privatekey\" key", credential.secret_dir))?;
        let key_file = format!(".ssh/id_{}", secret_name(credential));
        let (host, port) = match credential.target.rsplit_once(':') {
            Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => (host, Some(port)),
            _ => (credential.target.as_str(), None),
        };
        let _ = writeln!(config, "Host {host}\n    HostName {host}");
        if let Some(port) = port {
            let _ = writeln!(config, "    Port {port}");
        }
        let _ = writeln!(config, "    IdentityFile {}", home.join(&key_file).display());
        match read(&credential.secret_dir, "known_hosts")? {
            Some(listed) => {
                known_hosts.push_str(&String::from_utf8_lossy(&listed));
                if !known_hosts.ends_with('\n') {
                    known_hosts.push('\n');
                }
            }
            None => config.push_str("    StrictHostKeyChecking accept-new\n"),
        }
        files.push(HomeFile {
            relative: key_file,
            content: key,
            mode: 0o600,
        });
    }
    files.push(HomeFile {
        relative: ".ssh/config".into(),
        content: config.into_bytes(),
        mode: 0o600,
    });
    files.push(HomeFile {
        relative: ".ssh/known_hosts".into(),
        content: known_hosts.into_bytes(),
        mode: 0o644,
    });
    Ok(files)
}

/// `.docker/config.json`: one `auths` object holding every registry entry,
/// from basic-auth Secrets and from the `auths` of docker config Secrets,
/// copied as written. No JSON library: it would add a third to the
/// binary, and the API server has already checked that a docker config
/// Secret holds JSON; the scan below still refuses text that is not one
/// whole object, so the joined file stays valid.
fn docker_file(credentials: &[&Credential], read: Reader<'_>) -> Result<HomeFile, String> {
    let mut entries: Vec<String> = Vec::new();
    for credential in credentials {
        let dir = &credential.secret_dir;
        match credential.kind {
            Kind::DockerBasicAuth => {
                let user = required_text(credential, "username", read)?;
                let password = required_text(credential, "password", read)?;
                let pair = format!("{user}:{password}");
                entries.push(format!(
                    "{}:{{\"username\":{},\"password\":{},\"auth\":\"{}\"}}",
                    json_string(&credential.target),
                    json_string(&user),
                    json_string(&password),
                    base64::encode(pair.as_bytes())
                ));
            }
            Kind::DockerConfigJson => {
                let text = required_text(credential, ".dockerconfigjson", read)?;
                let auths = member_object(&text, "auths")
                    .map_err(|e| format!("{dir}/.dockerconfigjson: {e}"))?
                    .ok_or_else(|| format!("{dir}/.dockerconfigjson has no \"auths\" object"))?;
                entries.push(object_members(auths).map_err(|e| format!("{dir}/.dockerconfigjson: {e}"))?);
            }
            Kind::DockerCfg => {
                let text = required_text(credential, ".dockercfg", read)?;
                entries.push(object_members(&text).map_err(|e| format!("{dir}/.dockercfg: {e}"))?);
            }
            Kind::GitBasicAuth | Kind::GitSsh => {}
        }
    }
    entries.retain(|entry| !entry.is_empty());
    Ok(HomeFile {
        relative: ".docker/config.json".into(),
        content: format!("{{\"auths\":{{{}}}}}\n", entries.join(",")).into_bytes(),
        mode: 0o600,
    })
}

fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The text of the object that top-level member `key` of JSON object
/// `text` holds (braces included); None when there is no such member.
fn member_object<'a>(text: &'a str, key: &str) -> Result<Option<&'a str>, String> {
    let bytes = text.as_bytes();
    let mut at = skip_space(bytes, 0);
    if bytes.get(at) != Some(&b'{') {
        return Err("not a JSON object".into());
    }
    at = skip_space(bytes, at + 1);
    while bytes.get(at) == Some(&b'"') {
        let key_end = skip_value(bytes, at)?;
        let name = &text[at + 1..key_end - 1];
        at = skip_space(bytes, key_end);
        if bytes.get(at) != Some(&b':') {
            return Err("not valid JSON (expected ':' after a key)".into());
        }
        let value_start = skip_space(bytes, at + 1);
        let value_end = skip_value(bytes, value_start)?;
        if name == key && bytes.get(value_start) == Some(&b'{') {
            return Ok(Some(&text[value_start..value_end]));
        }
        at = skip_space(bytes, value_end);
        if bytes.get(at) == Some(&b',') {
            at = skip_space(bytes, at + 1);
        }
    }
    Ok(None)
}

/// The members of a JSON object's text, without its braces; refused unless
/// the text is one whole object, so the members join another object's.
fn object_members(object: &str) -> Result<String, String> {
    let bytes = object.as_bytes();
    let start = skip_space(bytes, 0);
    if bytes.get(start) != Some(&b'{') {
        return Err("not a JSON object".into());
    }
    let end = skip_value(bytes, start)?;
    if skip_space(bytes, end) != bytes.len() {
        return Err("not valid JSON (text after the object)".into());
    }
    Ok(object[start + 1..end - 1]
        .trim_matches(|c: char| c.is_ascii_whitespace())
        .to_string())
}

fn skip_space(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at).is_some_and(u8::is_ascii_whitespace) {
        at += 1;
    }
    at
}

/// The end (exclusive) of the JSON value starting at `at`: a string with
/// its escapes, an object or array by balanced brackets (outside strings),
/// anything else up to the next `,`, `}` or `]`.
fn skip_value(bytes: &[u8], at: usize) -> Result<usize, String> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate().skip(at) {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => {
                    in_string = false;
                    if depth == 0 {
                        return Ok(i + 1);
                    }
                }
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' if depth == 0 => return Ok(i),
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Ok(i + 1);
                }
            }
            b',' if depth == 0 => return Ok(i),
            _ => {}
        }
    }
    Err("not valid JSON (it ends early)".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::parse;
    use std::collections::BTreeMap;

    fn secrets(files: &[(&str, &str, &str)]) -> impl Fn(&str, &str) -> Result<Option<Vec<u8>>, String> {
        let map: BTreeMap<(String, String), Vec<u8>> = files
            .iter()
            .map(|(dir, key, value)| ((dir.to_string(), key.to_string()), value.as_bytes().to_vec()))
            .collect();
        move |dir: &str, key: &str| Ok(map.get(&(dir.to_string(), key.to_string())).cloned())
    }

    fn text_of(files: &[HomeFile], relative: &str) -> String {
        let file = files
            .iter()
            .find(|f| f.relative == relative)
            .unwrap_or_else(|| panic!("no {relative} in {files:?}"));
        String::from_utf8(file.content.clone()).expect("utf-8")
    }

    #[test]
    fn git_basic_auth_makes_a_store_file_and_a_gitconfig() {
        let credentials = [parse("git-basic-auth:/c/git=http://10.0.0.1:8080").expect("parses")];
        let read = secrets(&[("/c/git", "username", "ci bot"), ("/c/git", "password", "p@ss:/w")]);
        let files = home_files(Path::new("/h"), &credentials, read).expect("files");
        assert_eq!(
            text_of(&files, ".git-credentials"),
            "http://ci%20bot:p%40ss%3A%2Fw@10.0.0.1:8080\n"
        );
        assert_eq!(
            text_of(&files, ".gitconfig"),
            "[credential]\n\thelper = store\n[credential \"http://10.0.0.1:8080\"]\n\tusername = \"ci bot\"\n"
        );
        assert!(files.iter().all(|f| f.mode == 0o600));
    }

    #[test]
    fn a_missing_key_names_the_secret_and_the_key() {
        let credentials = [parse("git-basic-auth:/c/git=https://h").expect("parses")];
        let err = home_files(Path::new("/h"), &credentials, secrets(&[("/c/git", "username", "u")])).unwrap_err();
        assert!(err.contains("/c/git") && err.contains("\"password\""), "{err}");
    }

    #[test]
    fn ssh_keys_get_a_config_block_per_host_and_known_hosts_when_given() {
        let credentials = [
            parse("git-ssh:/c/one=git.example").expect("parses"),
            parse("git-ssh:/c/two=10.0.0.2:2222").expect("parses"),
        ];
        let read = secrets(&[
            ("/c/one", "ssh-privatekey", "KEY1"),
            ("/c/one", "known_hosts", "git.example ssh-ed25519 AAAA"),
            ("/c/two", "ssh-privatekey", "KEY2"),
        ]);
        let files = home_files(Path::new("/cicd/home"), &credentials, read).expect("files");
        assert_eq!(text_of(&files, ".ssh/id_one"), "KEY1");
        assert_eq!(text_of(&files, ".ssh/id_two"), "KEY2");
        assert_eq!(
            text_of(&files, ".ssh/config"),
            "Host git.example\n    HostName git.example\n    IdentityFile /cicd/home/.ssh/id_one\n\
             Host 10.0.0.2\n    HostName 10.0.0.2\n    Port 2222\n    IdentityFile /cicd/home/.ssh/id_two\n    \
             StrictHostKeyChecking accept-new\n"
        );
        assert_eq!(text_of(&files, ".ssh/known_hosts"), "git.example ssh-ed25519 AAAA\n");
    }

    #[test]
    fn docker_entries_from_every_source_meet_in_one_auths_object() {
        let credentials = [
            parse("docker-basic-auth:/c/reg=registry.local:5000").expect("parses"),
            parse("docker-config-json:/c/json").expect("parses"),
            parse("docker-cfg:/c/cfg").expect("parses"),
        ];
        let read = secrets(&[
            ("/c/reg", "username", "u\"1"),
            ("/c/reg", "password", "pw"),
            (
                "/c/json",
                ".dockerconfigjson",
                r#"{"credsStore":"x}", "auths": {"a.example": {"auth": "YTpi"}}, "other": [1, {"b": "}"}]}"#,
            ),
            ("/c/cfg", ".dockercfg", r#" {"c.example": {"auth": "Yzpk"}} "#),
        ]);
        let files = home_files(Path::new("/h"), &credentials, read).expect("files");
        let text = text_of(&files, ".docker/config.json");
        let parsed: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        let auths = &parsed["auths"];
        assert_eq!(auths["registry.local:5000"]["username"], "u\"1");
        assert_eq!(auths["registry.local:5000"]["auth"], "dSIxOnB3");
        assert_eq!(auths["a.example"]["auth"], "YTpi");
        assert_eq!(auths["c.example"]["auth"], "Yzpk");
        assert_eq!(parsed.as_object().map(|o| o.len()), Some(1));
    }

    #[test]
    fn a_docker_config_that_is_not_an_object_is_refused_with_the_file() {
        let credentials = [parse("docker-cfg:/c/cfg").expect("parses")];
        let read = secrets(&[("/c/cfg", ".dockercfg", r#"{"a": 1} trailing"#)]);
        let err = home_files(Path::new("/h"), &credentials, read).unwrap_err();
        assert!(
            err.contains("/c/cfg/.dockercfg") && err.contains("not valid JSON"),
            "{err}"
        );
        let credentials = [parse("docker-config-json:/c/json").expect("parses")];
        let read = secrets(&[("/c/json", ".dockerconfigjson", r#"{"auths": {"a": "#)]);
        let err = home_files(Path::new("/h"), &credentials, read).unwrap_err();
        assert!(err.contains("/c/json/.dockerconfigjson: not valid JSON"), "{err}");
    }
}
