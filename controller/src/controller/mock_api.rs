//! A scripted API server behind a real `kube::Client`, for fast unit tests
//! of the I/O layer: every request is logged and answered by a closure.
//! The real cluster proves the same paths in the e2e suites.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use serde_json::Value;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `GET`, `POST`, `PATCH` ...
    pub method: String,
    /// The path without the query.
    pub path: String,
    /// The JSON body (Null if there was none).
    pub body: Value,
}

/// Answers a request with an HTTP code and a JSON body.
type Answer = dyn Fn(&Seen) -> (u16, Value) + Send + Sync;

/// The scripted server; clone it into `kube::Client::new`.
#[derive(Clone)]
pub struct MockApi {
    /// How to answer each request.
    answer: Arc<Answer>,
    /// Every request so far, in order.
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl MockApi {
    pub fn new(answer: impl Fn(&Seen) -> (u16, Value) + Send + Sync + 'static) -> Self {
        MockApi {
            answer: Arc::new(answer),
            seen: Arc::default(),
        }
    }

    pub fn client(&self) -> kube::Client {
        kube::Client::new(self.clone(), "default")
    }

    /// The requests so far, as `METHOD path`.
    pub fn requests(&self) -> Vec<String> {
        self.seen
            .lock()
            .map(|seen| seen.iter().map(|s| format!("{} {}", s.method, s.path)).collect())
            .unwrap_or_default()
    }

    /// The bodies of the requests whose path ends with `suffix`.
    pub fn bodies(&self, method: &str, suffix: &str) -> Vec<Value> {
        self.seen
            .lock()
            .map(|seen| {
                seen.iter()
                    .filter(|s| s.method == method && s.path.ends_with(suffix))
                    .map(|s| s.body.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A Kubernetes `Status` error body, as the API server sends it.
pub fn status(code: u16, reason: &str, message: &str) -> (u16, Value) {
    (
        code,
        serde_json::json!({
            "apiVersion": "v1",
            "kind": "Status",
            "status": "Failure",
            "code": code,
            "reason": reason,
            "message": message,
        }),
    )
}

impl tower_service::Service<Request<kube::client::Body>> for MockApi {
    type Response = Response<Full<Bytes>>;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<kube::client::Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let method = request.method().to_string();
            let path = request.uri().path().to_string();
            let bytes = request
                .into_body()
                .collect()
                .await
                .map(|body| body.to_bytes())
                .unwrap_or_default();
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let seen = Seen { method, path, body };
            let (code, answer) = (this.answer)(&seen);
            if let Ok(mut log) = this.seen.lock() {
                log.push(seen);
            }
            let response = Response::builder()
                .status(code)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(answer.to_string())))
                .unwrap_or_default();
            Ok(response)
        })
    }
}
