//! Pure decisions of the controllers: observed state in, actions out.

pub mod pipelinerun;
pub mod taskrun;
