//! The pod of a run: building it (`render`, `resources`) and reading it
//! back (`status`, with the results frames of `results`), all pure functions.

pub mod render;
pub mod resources;
pub mod results;
pub mod status;
