//! cicd-controller: the API types, the pure engine (substitute, validate,
//! render a pod, read its status) and the Kubernetes controller around them.

pub mod api;
pub mod engine;
pub mod layout;
pub mod names;
pub mod pod;
pub mod reason;
