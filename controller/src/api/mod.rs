//! The custom resources of group `cicdoperator.ning1875.io/v1`, as plain
//! serde types. Nothing here talks to a cluster.

pub mod artifacts;
pub mod common;
pub mod pipeline;
pub mod step_action;
pub mod strict;
pub mod task;
pub mod taskrun;

pub use artifacts::{Artifact, ArtifactValue, Artifacts};
pub use common::*;
pub use pipeline::*;
pub use step_action::*;
pub use task::*;
pub use taskrun::*;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// Every CRD this project installs, in a stable order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        MyTask::crd(),
        MyTaskRun::crd(),
        MyPipeline::crd(),
        MyPipelineRun::crd(),
        MyStepAction::crd(),
    ]
}
