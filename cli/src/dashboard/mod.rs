//! `cicd dashboard`: a small web UI served from this binary. It talks to
//! the cluster with the user's own kubeconfig credentials, so the browser
//! can do exactly what the user's kubectl can, no more. Pages are plain
//! HTML/CSS/JS compiled in (no build step); live updates come from a
//! watch of the runs, sent to the page as server-sent events.
//!
//! Because a local port is reachable by any page the browser opens, the
//! server refuses requests whose Host is not the loopback name it serves
//! (DNS rebinding) and actions without the `x-cicd-dashboard` header, which
//! a cross-site form cannot send.

mod api;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::client::{CliError, Cluster};

/// What every handler needs.
#[derive(Clone)]
pub struct AppState {
    /// The user's connection.
    pub cluster: Cluster,
    /// The namespace shown (None with -A: all).
    pub scope: Option<String>,
    /// Requests must name this host (or a loopback alias) in Host.
    pub port: u16,
    /// Skip the loopback Host check (--allow-remote).
    pub remote: bool,
}

/// The header every state-changing request must carry.
pub const ACTION_HEADER: &str = "x-cicd-dashboard";

const INDEX_HTML: &str = include_str!("assets/index.html");
const RUN_HTML: &str = include_str!("assets/run.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The router, for `serve` and for tests that bind their own port.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }))
        .route(
            "/run/{namespace}/{kind}/{name}",
            get(|| async { asset("text/html; charset=utf-8", RUN_HTML) }),
        )
        .route(
            "/static/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/static/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }),
        )
        .route("/api/runs", get(api::runs))
        .route("/api/watch", get(api::watch))
        .route("/api/run/{namespace}/{kind}/{name}", get(api::run_detail))
        .route("/api/run/{namespace}/{kind}/{name}/cancel", post(api::cancel))
        .route("/api/run/{namespace}/{kind}/{name}/rerun", post(api::rerun))
        .route("/api/logs/{namespace}/{pod}/{container}", get(api::logs))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// Is `host` (a Host header) this server on loopback?
fn loopback_host(host: &str, port: u16) -> bool {
    ["127.0.0.1", "localhost", "[::1]"]
        .iter()
        .any(|name| host == format!("{name}:{port}") || (port == 80 && host == *name))
}

async fn guard(State(state): State<AppState>, headers: HeaderMap, request: Request, next: Next) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if !state.remote && !loopback_host(host, state.port) {
        return (
            StatusCode::FORBIDDEN,
            format!("Host {host:?} is not this loopback dashboard"),
        )
            .into_response();
    }
    if request.method() != Method::GET && !headers.contains_key(ACTION_HEADER) {
        return (
            StatusCode::FORBIDDEN,
            format!("actions need the {ACTION_HEADER} header"),
        )
            .into_response();
    }
    next.run(request).await
}

/// Serves until Ctrl-C.
pub async fn serve(cluster: Cluster, scope: Option<String>, address: SocketAddr) -> Result<(), CliError> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| CliError::Invalid(format!("cannot listen on {address}: {e}")))?;
    let bound = listener.local_addr().map_err(|e| CliError::Invalid(e.to_string()))?;
    let state = AppState {
        cluster,
        scope: scope.clone(),
        port: bound.port(),
        remote: !address.ip().is_loopback(),
    };
    println!(
        "dashboard on http://{bound}/ ({}; Ctrl-C stops it)",
        scope.map_or_else(|| "all namespaces".to_string(), |ns| format!("namespace {ns}"))
    );
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| CliError::Invalid(format!("dashboard server: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_on_our_port_pass() {
        assert!(loopback_host("127.0.0.1:8080", 8080));
        assert!(loopback_host("localhost:8080", 8080));
        assert!(!loopback_host("127.0.0.1:9090", 8080));
        assert!(!loopback_host("evil.example:8080", 8080));
        assert!(!loopback_host("", 8080));
    }
}
