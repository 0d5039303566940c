//! The pod of a run: building it (`render`, `resources`) and reading it
//! back (`status`, with the results frames of `results`), placing the pods
//! of a pipeline run that share a claim on one node (`affinity`), and judging
//! a pod's node (`node`), and giving the first step the ServiceAccount's
//! credentials (`credentials`), all pure functions.

pub mod affinity;
pub mod credentials;
pub mod node;
pub mod render;
pub mod resources;
pub mod results;
pub mod status;
