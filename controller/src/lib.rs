//! cicd-controller: the API types, the pure engine (substitute, validate,
//! render a pod, read its status) and the Kubernetes controller around them.

pub mod api;
pub mod bundle;
pub mod commands;
pub mod config;
pub mod controller;
pub mod convert;
pub mod engine;
pub mod error;
pub mod http;
pub mod image;
pub mod layout;
pub mod manifests;
pub mod metrics;
pub mod names;
pub mod pipeline;
pub mod plan;
pub mod pod;
pub mod reason;
pub mod reconcile;
pub mod remote;
pub mod telemetry;
