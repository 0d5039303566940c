//! cicd-controller: the API types, the pure engine (substitute, validate,
//! render a pod, read its status) and the Kubernetes controller around them.

pub mod api;
pub mod engine;
pub mod layout;
pub mod names;
pub mod pod;
pub mod reason;
pub mod manifests;
pub mod pipeline;
pub mod plan;
pub mod commands;
pub mod config;
pub mod controller;
pub mod error;
pub mod http;
pub mod metrics;
pub mod reconcile;
pub mod telemetry;
