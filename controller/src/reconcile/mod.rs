//! Pure decisions of the controllers: observed state in, actions out.

pub mod admission;
pub mod conditions;
pub mod grace;
pub mod history;
pub mod owner;
pub mod pipelinerun;
pub mod taskrun;
