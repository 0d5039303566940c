//! Git's credential store file (`~/.git-credentials`): one
//! `scheme://user:password@host[:port][/path]` per line, user and password
//! percent-encoded. The engine writes it from the run's ServiceAccount
//! Secrets (`tekton.dev/git-<n>` basic-auth), so a clone with no basic-auth
//! workspace still logs in where the account has a login.

/// The user and password stored for `url`: the first line with the same
/// scheme and host (and port), whose path, if any, starts `url`'s path.
pub fn lookup(store: &str, url: &str) -> Option<(String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let (authority, path) = split_path(rest);
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    store.lines().find_map(|line| {
        let (line_scheme, line_rest) = line.trim().split_once("://")?;
        let (line_authority, line_path) = split_path(line_rest);
        let (login, line_host) = line_authority.rsplit_once('@')?;
        let (user, password) = login.split_once(':')?;
        let same =
            line_scheme.eq_ignore_ascii_case(scheme) && line_host.eq_ignore_ascii_case(host) && within(path, line_path);
        same.then(|| (percent_decode(user), percent_decode(password)))
    })
}

/// Whether `path` is `prefix` or below it (whole segments: `/team-a`
/// does not cover `/team-ab`).
fn within(path: &str, prefix: &str) -> bool {
    prefix.is_empty() || path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
}

/// (`host[:port]` with any login, `/path` or "").
fn split_path(rest: &str) -> (&str, &str) {
    match rest.find('/') {
        Some(at) => (&rest[..at], rest[at..].trim_end_matches('/')),
        None => (rest, ""),
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STORE: &str = "https://ci%20bot:p%40ss%3A%2Fw@git.example\n\
                         http://team-a:a@10.0.0.1:8080/team-a\n\
                         http://team-b:b@10.0.0.1:8080/team-b\n";

    #[test]
    fn finds_the_login_by_scheme_host_port_and_path_prefix() {
        assert_eq!(
            lookup(STORE, "https://git.example/org/app.git"),
            Some(("ci bot".to_string(), "p@ss:/w".to_string()))
        );
        assert_eq!(
            lookup(STORE, "http://10.0.0.1:8080/team-b/app.git"),
            Some(("team-b".to_string(), "b".to_string()))
        );
    }

    #[test]
    fn another_scheme_host_port_or_path_finds_nothing() {
        assert_eq!(lookup(STORE, "http://git.example/org/app.git"), None);
        assert_eq!(lookup(STORE, "https://git.example.evil/app.git"), None);
        assert_eq!(lookup(STORE, "http://10.0.0.1:8081/team-a/app.git"), None);
        assert_eq!(lookup(STORE, "http://10.0.0.1:8080/team-c/app.git"), None);
        assert_eq!(lookup(STORE, "http://10.0.0.1:8080/team-ab/app.git"), None);
        assert_eq!(lookup(STORE, "git@git.example:org/app.git"), None);
        assert_eq!(lookup("not a line\n", "https://git.example/x"), None);
    }
}
