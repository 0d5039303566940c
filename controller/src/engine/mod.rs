//! The pure engine: durations, references, substitution, validation and
//! resolution of a run against its task. No I/O.

pub mod duration;
pub mod errors;
pub mod limits;
pub mod propagate;
pub mod refs;
pub mod resolve;
pub mod step_action;
pub mod substitute;
pub mod validate;
