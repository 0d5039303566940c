//! Pure decisions of the controllers: observed state in, actions out.

pub mod conditions;
pub mod owner;
pub mod pipelinerun;
pub mod taskrun;
