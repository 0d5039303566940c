//! SSH helpers that need no network: where an SSH url points, and whether a
//! host key is listed in a known_hosts file.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Host, port and user of an SSH remote, from `ssh://[user@]host[:port]/path`
/// or the scp-like `[user@]host:path`. None for any other URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshEndpoint {
    pub user: Option<String>,
    pub host: String,
    pub port: u16,
}

pub fn ssh_endpoint(url: &str) -> Option<SshEndpoint> {
    if let Some(rest) = url.strip_prefix("ssh://").or_else(|| url.strip_prefix("git+ssh://")) {
        let authority = rest.split('/').next()?;
        let (user, host_port) = split_user(authority);
        let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
            // [::1]:2222
            let (host, after) = bracketed.split_once(']')?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().ok()?,
                None => 22,
            };
            (host.to_string(), port)
        } else {
            match host_port.rsplit_once(':') {
                Some((host, p)) => (host.to_string(), p.parse().ok()?),
                None => (host_port.to_string(), 22),
            }
        };
        return (!host.is_empty()).then_some(SshEndpoint { user, host, port });
    }
    if url.contains("://") {
        return None;
    }
    // scp-like: a colon before any slash (otherwise it is a local path).
    let (authority, _path) = url.split_once(':')?;
    if authority.is_empty() || authority.contains('/') {
        return None;
    }
    let (user, host) = split_user(authority);
    Some(SshEndpoint {
        user,
        host: host.to_string(),
        port: 22,
    })
}

fn split_user(authority: &str) -> (Option<String>, &str) {
    match authority.rsplit_once('@') {
        Some((user, host)) => (Some(user.to_string()), host),
        None => (None, authority),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyCheck {
    /// A line for this host has exactly this key.
    Match,
    /// The host is listed, but with other keys: refuse (possible spoofing).
    Mismatch,
    /// The host is not listed at all.
    Unknown,
}

/// Looks the host key up in known_hosts text. Host patterns are compared
/// literally (`host` for port 22, `[host]:port` otherwise); hashed entries
/// (`|1|...`, from `ssh-keyscan -H`) and wildcards are not understood and
/// count as other hosts.
pub fn check_host_key(known_hosts: &str, host: &str, port: u16, key: &[u8]) -> HostKeyCheck {
    let wanted = if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    };
    let mut listed = false;
    for line in known_hosts.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('@') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(hosts), Some(_kind), Some(encoded)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        if !hosts.split(',').any(|h| h == wanted) {
            continue;
        }
        listed = true;
        if STANDARD.decode(encoded).is_ok_and(|k| k == key) {
            return HostKeyCheck::Match;
        }
    }
    if listed {
        HostKeyCheck::Mismatch
    } else {
        HostKeyCheck::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(user: Option<&str>, host: &str, port: u16) -> Option<SshEndpoint> {
        Some(SshEndpoint {
            user: user.map(str::to_string),
            host: host.into(),
            port,
        })
    }

    #[test]
    fn parses_ssh_urls() {
        assert_eq!(
            ssh_endpoint("ssh://git@127.0.0.1:2222/srv/app.git"),
            endpoint(Some("git"), "127.0.0.1", 2222)
        );
        assert_eq!(
            ssh_endpoint("ssh://example.org/app.git"),
            endpoint(None, "example.org", 22)
        );
        assert_eq!(
            ssh_endpoint("ssh://git@[::1]:2200/app.git"),
            endpoint(Some("git"), "::1", 2200)
        );
        assert_eq!(
            ssh_endpoint("git@github.example:team/app.git"),
            endpoint(Some("git"), "github.example", 22)
        );
    }

    #[test]
    fn other_urls_are_not_ssh() {
        assert_eq!(ssh_endpoint("https://example.org/app.git"), None);
        assert_eq!(ssh_endpoint("git://127.0.0.1:9418/app.git"), None);
        assert_eq!(ssh_endpoint("/srv/git/app.git"), None);
        assert_eq!(ssh_endpoint("./a:b"), None);
        assert_eq!(ssh_endpoint("ssh://git@host:notaport/app.git"), None);
    }

    #[test]
    fn host_keys_are_matched_by_host_and_port() {
        let key = b"key-bytes";
        let other = b"other";
        let encoded = STANDARD.encode(key);
        let text = format!(
            "# comment\n\n[127.0.0.1]:2222 ssh-ed25519 {encoded}\nexample.org,10.0.0.1 ssh-ed25519 {}\n",
            STANDARD.encode(other)
        );
        assert_eq!(check_host_key(&text, "127.0.0.1", 2222, key), HostKeyCheck::Match);
        assert_eq!(check_host_key(&text, "127.0.0.1", 22, key), HostKeyCheck::Unknown);
        assert_eq!(check_host_key(&text, "10.0.0.1", 22, other), HostKeyCheck::Match);
        assert_eq!(check_host_key(&text, "example.org", 22, key), HostKeyCheck::Mismatch);
        assert_eq!(
            check_host_key("garbage line\n", "example.org", 22, key),
            HostKeyCheck::Unknown
        );
    }
}
