//! The one place that turns an API server's answer into what a run does
//! next. Every write the executor makes goes through `classify`, so a
//! refusal is judged the same way for claims, pods and child runs.

/// What an API error means for the run that caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The server refused the request for good (invalid, too large,
    /// forbidden by policy, namespace gone): retrying cannot help, so the
    /// run ends. Carries the server's own words.
    Refused(String),
    /// The server or the network could not serve the request now
    /// (overload, throttling, a quota that may free up, a timeout): try
    /// again later, within the run's timeout.
    Transient(String),
    /// 409: an object of that name exists; whether it is ours decides.
    Conflict,
    /// 404 on the object itself (a stop or cancel of something gone).
    NotFound,
}

/// True for a 403 caused by a ResourceQuota: it frees up when other work
/// of the namespace finishes, so it is worth waiting for. Any other 403
/// (RBAC, a LimitRange, pod security) stays refused however long we wait.
fn is_quota_exceeded(message: &str) -> bool {
    message.contains("exceeded quota")
}

/// The text shown to users: the HTTP code and the server's message.
fn describe(code: u16, message: &str) -> String {
    if message.is_empty() {
        format!("HTTP {code}")
    } else {
        format!("HTTP {code}: {message}")
    }
}

/// Judges an API status by its HTTP code (and, for 403, its message).
pub fn classify_status(code: u16, message: &str) -> Verdict {
    match code {
        409 => Verdict::Conflict,
        404 => Verdict::NotFound,
        403 if is_quota_exceeded(message) => Verdict::Transient(describe(code, message)),
        408 | 425 | 429 => Verdict::Transient(describe(code, message)),
        500..=599 => Verdict::Transient(describe(code, message)),
        _ => Verdict::Refused(describe(code, message)),
    }
}

/// Judges any error of the kube client.
pub fn classify(error: &kube::Error) -> Verdict {
    match error {
        kube::Error::Api(status) => classify_status(status.code, &status.message),
        // Our own request could not be built: trying again builds it again.
        kube::Error::BuildRequest(_) | kube::Error::HttpError(_) => Verdict::Refused(error.to_string()),
        // Connection, TLS, timeouts, a garbled answer: the network's fault.
        other => Verdict::Transient(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_for_good() {
        for code in [400, 401, 413, 422] {
            assert!(matches!(classify_status(code, "no"), Verdict::Refused(_)), "{code}");
        }
        assert_eq!(
            classify_status(403, "pods \"x\" is forbidden: maximum cpu usage per Container is 1"),
            Verdict::Refused("HTTP 403: pods \"x\" is forbidden: maximum cpu usage per Container is 1".into())
        );
    }

    #[test]
    fn transient_failures() {
        for code in [429, 500, 503, 504] {
            assert!(matches!(classify_status(code, "busy"), Verdict::Transient(_)), "{code}");
        }
        assert_eq!(
            classify_status(403, "pods \"x\" is forbidden: exceeded quota: q, requested: pods=1"),
            Verdict::Transient("HTTP 403: pods \"x\" is forbidden: exceeded quota: q, requested: pods=1".into())
        );
    }

    #[test]
    fn conflicts_and_absence_are_left_to_the_caller() {
        assert_eq!(classify_status(409, "exists"), Verdict::Conflict);
        assert_eq!(classify_status(404, "gone"), Verdict::NotFound);
    }
}
