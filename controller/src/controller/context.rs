//! What every reconcile shares, and the small I/O helpers both
//! reconcilers use.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::{Event, EventType, Recorder};
use tracing::warn;

use crate::error::Error;
use crate::metrics::{ErrorLabel, Metrics};
use crate::reconcile::taskrun::DecideSettings;

/// The field manager of every write, so server-side apply sees one owner.
pub const FIELD_MANAGER: &str = "cicd-controller";
/// How soon a failed reconcile is tried again.
const ERROR_REQUEUE: Duration = Duration::from_secs(5);
/// Kubernetes rejects event notes over 1 kB.
const MAX_EVENT_NOTE: usize = 1000;

pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub settings: DecideSettings,
    pub metrics: Arc<Metrics>,
}

/// True if the error is an API status with this HTTP code.
pub fn is_status(error: &kube::Error, code: u16) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == code)
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// The sooner of two optional requeue delays.
pub fn sooner(current: Option<Duration>, after: Duration) -> Option<Duration> {
    Some(current.map_or(after, |c| c.min(after)))
}

impl Context {
    /// Publishes a Kubernetes Event about `object`. A failure is logged,
    /// never fatal: events are for people, the status is the record.
    pub async fn publish(&self, object: &ObjectReference, warning: bool, reason: &str, message: &str) {
        let event = Event {
            type_: if warning { EventType::Warning } else { EventType::Normal },
            reason: reason.to_string(),
            note: Some(truncate(message, MAX_EVENT_NOTE)),
            action: "Reconcile".to_string(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, object).await {
            warn!(object = ?object.name, %error, "cannot publish event");
        }
    }

    /// Counts and logs a failed reconcile and schedules another try.
    pub fn requeue_after_error(&self, object: &str, error: &Error) -> Requeue {
        self.metrics
            .reconcile_errors
            .get_or_create(&ErrorLabel {
                error: error.kind().to_string(),
            })
            .inc();
        warn!(%object, %error, "reconcile failed; retrying");
        Requeue::requeue(ERROR_REQUEUE)
    }
}
