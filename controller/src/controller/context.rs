//! What every reconcile shares.

use std::sync::Arc;

use kube::Client;
use kube::runtime::events::Recorder;

use crate::metrics::Metrics;
use crate::reconcile::taskrun::DecideSettings;

pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub settings: DecideSettings,
    pub metrics: Arc<Metrics>,
}

/// The field manager of every write, so server-side apply sees one owner.
pub const FIELD_MANAGER: &str = "cicd-controller";
