//! The pod of a run: building it (`render`, `resources`) and reading it
//! back (`status`), both pure functions.

pub mod render;
pub mod resources;
pub mod status;
