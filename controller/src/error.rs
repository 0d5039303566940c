//! Errors of the controller's I/O layer. The pure engine reports user
//! mistakes as `ValidationErrors`, which end up in a run's status instead.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API error: {0}")]
    Kube(#[from] kube::Error),
    #[error("object has no {0}")]
    MissingField(&'static str),
    #[error("leader election failed: {0}")]
    Lease(#[from] kube_lease_manager::LeaseManagerError),
    /// A step's results frame is not whole in its log yet (retried).
    #[error("results not readable yet: {0}")]
    ResultsNotReady(String),
    /// A reconcile panicked (a bug): the object is retried with backoff.
    #[error("the reconcile panicked")]
    Panicked,
    #[error("cannot use the entrypoint binary {path} (--entrypoint-binary): {reason}")]
    EntrypointBinary { path: String, reason: String },
    #[error("cannot serve metrics on {address}: {source}")]
    Serve {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::MissingField(_) => "missing_field",
            Error::Lease(_) => "lease",
            Error::ResultsNotReady(_) => "results_not_ready",
            Error::Serve { .. } => "serve",
            Error::EntrypointBinary { .. } => "entrypoint_binary",
            Error::Panicked => "panicked",
        }
    }
}
