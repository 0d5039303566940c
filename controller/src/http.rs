//! /metrics, /healthz and /readyz.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::error::{Error, Result};
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct Probes {
    /// What /metrics serves.
    pub metrics: Arc<Metrics>,
    /// Set once this replica reaches the API server, leader or not: a
    /// follower is ready to take over, and a rolling update waits for it.
    pub ready: Arc<AtomicBool>,
}

async fn metrics(State(probes): State<Probes>) -> String {
    probes.metrics.encode()
}

async fn ready(State(probes): State<Probes>) -> (StatusCode, &'static str) {
    if probes.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not connected to the API server yet\n")
    }
}

pub fn router(probes: Probes) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(probes)
}

/// Serves until the process ends.
pub async fn serve(address: std::net::SocketAddr, probes: Probes) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| Error::Serve { address, source })?;
    axum::serve(listener, router(probes))
        .await
        .map_err(|source| Error::Serve { address, source })
}
