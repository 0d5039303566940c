//! Reading the steps' results frames from their container logs (`pods/log`,
//! which the controller's ServiceAccount may read; the run's own needs no
//! permission at all). Called once every step has ended (see
//! `is_finished`): logs stay readable for as long as the pod exists, so a
//! controller restarted between the steps ending and the status being
//! written simply reads them again.
//!
//! Each step's frame is read only from that step's own container, with
//! `tailLines`/`limitBytes` sized from the frame its report names, and is
//! checked against the report's length and SHA-256 (`pod::results`).

use futures::AsyncReadExt as _;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::LogParams;
use tracing::{debug, warn};

use cicd_entrypoint::frame::FrameRef;
use cicd_entrypoint::termination;

use crate::error::Result;
use crate::pod::results::{Fetched, FetchedResults, ResultLimits, SLACK_LINES, WIDE_SLACK_LINES, decode_frame};
use crate::pod::status::ended_steps;

/// For this long after a step finished, a frame that does not check out is
/// retried (the runtime may still be writing the log) rather than reported.
const SETTLE_SECONDS: i64 = 30;

/// The frames of a finished pod's steps; nothing while a step still runs.
/// Returns an error (the reconcile is retried) when the API server cannot
/// serve a log, or a frame is not whole yet shortly after its step ended.
pub async fn fetch(pods: &Api<Pod>, pod: Option<&Pod>, limits: ResultLimits) -> Result<FetchedResults> {
    let mut fetched = FetchedResults::new(limits);
    let Some(pod) = pod.filter(|pod| is_finished(pod)) else {
        return Ok(fetched);
    };
    let name = pod.metadata.name.clone().unwrap_or_default();
    let statuses = pod.status.as_ref().and_then(|s| s.container_statuses.as_ref());
    for status in statuses.into_iter().flatten() {
        let Some(frame) = frame_of(status) else { continue };
        let outcome = if limits.frame_is_within(&frame) {
            read_frame(pods, &name, status, &frame).await?
        } else {
            Fetched::TooLarge { bytes: frame.bytes }
        };
        fetched.frames.insert(status.name.clone(), outcome);
    }
    Ok(fetched)
}

/// The pod has finished, or every step container of it has ended: the
/// steps' logs are whole then, and the outcome waits on nothing else (the
/// kubelet gives the pod its final phase seconds later on a busy node).
fn is_finished(pod: &Pod) -> bool {
    let Some(status) = pod.status.as_ref() else {
        return false;
    };
    matches!(status.phase.as_deref(), Some("Succeeded") | Some("Failed"))
        || ended_steps(status.container_statuses.as_deref().unwrap_or_default()).is_some()
}

/// The frame a terminated step's report names, if any.
fn frame_of(status: &ContainerStatus) -> Option<FrameRef> {
    let terminated = status.state.as_ref()?.terminated.as_ref()?;
    let report = termination::decode(terminated.message.as_deref()?).ok()?;
    report.frame
}

/// Reads one frame: the tail the report calls for, then a wider one.
async fn read_frame(pods: &Api<Pod>, pod: &str, status: &ContainerStatus, frame: &FrameRef) -> Result<Fetched> {
    let mut last_problem = String::new();
    for slack in [SLACK_LINES, WIDE_SLACK_LINES] {
        let log = log_tail(pods, pod, &status.name, frame, slack).await?;
        match decode_frame(&log, frame) {
            Ok(values) => {
                debug!(%pod, container = %status.name, bytes = frame.bytes, "read results frame");
                return Ok(Fetched::Results(values));
            }
            Err(problem) => last_problem = problem,
        }
    }
    if recently_finished(status) {
        warn!(%pod, container = %status.name, problem = %last_problem, "results frame not whole yet; retrying");
        return Err(crate::error::Error::ResultsNotReady(format!(
            "{pod}/{}: {last_problem}",
            status.name
        )));
    }
    Ok(Fetched::Unreadable(last_problem))
}

/// The last `frame.lines + slack` lines of the container's log, at most
/// the bytes those lines can hold.
async fn log_tail(pods: &Api<Pod>, pod: &str, container: &str, frame: &FrameRef, slack: u32) -> Result<String> {
    let params = LogParams {
        container: Some(container.to_string()),
        tail_lines: Some(i64::from(frame.lines) + i64::from(slack)),
        limit_bytes: i64::try_from(ResultLimits::log_bytes_for(frame, slack)).ok(),
        ..Default::default()
    };
    let mut stream = pods.log_stream(pod, &params).await?;
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).await.map_err(|error| {
        crate::error::Error::ResultsNotReady(format!("{pod}/{container}: reading the log: {error}"))
    })?;
    // The frame itself is UTF-8; other output in the tail need not be.
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn recently_finished(status: &ContainerStatus) -> bool {
    let finished = status
        .state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .and_then(|t| t.finished_at.as_ref());
    finished.is_none_or(|t| Timestamp::now().as_second() - t.0.as_second() < SETTLE_SECONDS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(phase: &str, containers: &[(&str, &str)]) -> Pod {
        let statuses: Vec<_> = containers
            .iter()
            .map(|(name, state)| {
                let state = match *state {
                    "ended" => json!({ "terminated": { "exitCode": 0 } }),
                    "running" => json!({ "running": {} }),
                    _ => json!({ "waiting": { "reason": "ContainerCreating" } }),
                };
                json!({ "name": name, "image": "i", "imageID": "", "ready": false, "restartCount": 0, "state": state })
            })
            .collect();
        serde_json::from_value(json!({ "status": { "phase": phase, "containerStatuses": statuses } }))
            .expect("a decodable pod")
    }

    #[test]
    fn a_pod_is_finished_once_its_phase_is_final_or_every_step_has_ended() {
        assert!(is_finished(&pod("Succeeded", &[])));
        assert!(is_finished(&pod("Failed", &[("step-a", "running")])));
        assert!(is_finished(&pod(
            "Pending",
            &[("step-a", "ended"), ("step-b", "ended")]
        )));
        // A sidecar still running does not hold the logs back.
        assert!(is_finished(&pod(
            "Running",
            &[("step-a", "ended"), ("sidecar-db", "running")]
        )));

        assert!(!is_finished(&pod(
            "Running",
            &[("step-a", "ended"), ("step-b", "running")]
        )));
        assert!(!is_finished(&pod("Pending", &[("step-a", "waiting")])));
        // Before the kubelet's first report there is nothing to go by.
        assert!(!is_finished(&pod("Pending", &[])));
        assert!(!is_finished(&pod("Running", &[("sidecar-db", "ended")])));
    }
}
