//! What the run caches keep of a finished run: a stand-in holding only what
//! its history still decides on (its TTL and its definition's limits), so
//! the controller's memory stays flat as finished runs pile up.
//!
//! A finished run is never decided on again, so its spec and status (task
//! snapshot, steps, results, often tens of kB) need not stay in memory. The
//! stand-in's facts are kept as one flat JSON object: every nested object
//! of `serde_json` costs a whole B-tree node (about 640 bytes) however few
//! its keys, and with 5,000 finished runs the nested shape of the whole run
//! cost about 10 MiB more than this one (issue 11).

use std::collections::BTreeMap;

use kube::api::DynamicObject;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::stores::slim_meta;

/// Data key marking a finished run's stand-in in the run caches: its
/// reconcile has nothing left to do but keep the run's history.
pub const FINISHED: &str = "cicdFinished";
/// Our labels and annotations (concurrency group, namespace queue) are
/// the only ones a finished run's history reads.
const OUR_PREFIX: &str = "cicdoperator.ning1875.io/";

/// What a finished run's history needs, read from a whole run or its stand-in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinishedFacts {
    /// Its `Succeeded` condition is `True`: counted against the
    /// successful-runs limit, else the failed-runs one.
    pub succeeded: bool,
    /// `status.completionTime` (RFC 3339): its TTL counts from here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    /// The run's own `spec.ttlSecondsAfterFinished`, which wins over its
    /// definition's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl_seconds_after_finished: Option<u32>,
    /// `ttlSecondsAfterFinished` of the definition, from the run's snapshot
    /// of it (the definition may have changed or gone since).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub definition_ttl_seconds_after_finished: Option<u32>,
    /// The definition's `successfulRunsHistoryLimit`, from the snapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub successful_runs_history_limit: Option<u32>,
    /// The definition's `failedRunsHistoryLimit`, from the snapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_runs_history_limit: Option<u32>,
    /// The MyTask or MyPipeline the run names (`taskRef` / `pipelineRef`
    /// by name): the history it counts in. None for inline specs and
    /// remote references, which have no history.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub definition: Option<String>,
}

impl FinishedFacts {
    /// The facts of a whole run, if it is finished (its `Succeeded`
    /// condition is True or False).
    fn of_whole(data: &Value) -> Option<FinishedFacts> {
        let state = succeeded_status(data)?;
        if state == "Unknown" {
            return None;
        }
        // A run has one of the two snapshots and one of the two references.
        let snapshot = ["/status/taskSpec", "/status/pipelineSpec"]
            .iter()
            .find_map(|at| data.pointer(at).filter(|v| v.is_object()))
            .unwrap_or(&Value::Null);
        let definition = ["/spec/taskRef", "/spec/pipelineRef"]
            .iter()
            .find_map(|at| data.pointer(at)?.as_str());
        Some(FinishedFacts {
            succeeded: state == "True",
            completion_time: data
                .pointer("/status/completionTime")
                .and_then(Value::as_str)
                .map(str::to_string),
            ttl_seconds_after_finished: small_number(data.get("spec"), "ttlSecondsAfterFinished"),
            definition_ttl_seconds_after_finished: small_number(Some(snapshot), "ttlSecondsAfterFinished"),
            successful_runs_history_limit: small_number(Some(snapshot), "successfulRunsHistoryLimit"),
            failed_runs_history_limit: small_number(Some(snapshot), "failedRunsHistoryLimit"),
            definition: definition.map(str::to_string),
        })
    }
}

/// The facts of a finished run, whole or a stand-in; None while it runs.
pub fn finished_facts(object: &DynamicObject) -> Option<FinishedFacts> {
    if is_finished_stand_in(object) {
        FinishedFacts::deserialize(&object.data).ok()
    } else {
        FinishedFacts::of_whole(&object.data)
    }
}

/// Whether a cached run is a finished run's stand-in.
pub fn is_finished_stand_in(object: &DynamicObject) -> bool {
    object.data.get(FINISHED).is_some_and(|v| v == true)
}

/// The status (`True`, `False`, `Unknown`) of the `Succeeded` condition of
/// a run read as untyped JSON: the one reader for the places that must
/// see a run that cannot be decoded (the cache, the queues, the decoder).
pub fn succeeded_status(data: &Value) -> Option<&str> {
    data.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").is_some_and(|t| t == "Succeeded"))?
        .get("status")?
        .as_str()
}

/// A non-negative integer field, capped at `u32::MAX`.
fn small_number(value: Option<&Value>, field: &str) -> Option<u32> {
    let number = value?.get(field)?.as_u64()?;
    Some(u32::try_from(number).unwrap_or(u32::MAX))
}

/// A run as the cache keeps it: whole while it is going (without managed
/// fields and kubectl's copy); once finished, a stand-in of its metadata
/// (our labels and annotations only) and its [`FinishedFacts`], marked
/// [`FINISHED`].
pub fn slim_run(mut object: DynamicObject) -> DynamicObject {
    slim_meta(&mut object.metadata);
    let Some(facts) = FinishedFacts::of_whole(&object.data) else {
        return object;
    };
    let meta = &mut object.metadata;
    meta.labels = ours(meta.labels.take());
    meta.annotations = ours(meta.annotations.take());
    let mut data = serde_json::to_value(facts).unwrap_or_else(|_| Value::Object(Default::default()));
    if let Some(fields) = data.as_object_mut() {
        fields.insert(FINISHED.to_string(), Value::Bool(true));
    }
    object.data = data;
    object
}

/// The entries of a label or annotation map with our prefix, if any.
fn ours(map: Option<BTreeMap<String, String>>) -> Option<BTreeMap<String, String>> {
    let kept: BTreeMap<String, String> = map?.into_iter().filter(|(k, _)| k.starts_with(OUR_PREFIX)).collect();
    (!kept.is_empty()).then_some(kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(state: &str) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "cicdoperator.ning1875.io/v1",
            "kind": "MyTaskRun",
            "metadata": {
                "name": "tr", "namespace": "ci", "uid": "u",
                "labels": {"team": "a", "cicdoperator.ning1875.io/concurrency-group": "g"},
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "note": "n"}
            },
            "spec": {"taskRef": "t"},
            "status": {
                "conditions": [{"type": "Succeeded", "status": state, "reason": "Why", "message": "long text"}],
                "completionTime": "2026-01-01T00:00:00Z",
                "taskSpec": {"steps": [{"name": "one", "image": "x", "script": "a long script"}]},
                "steps": [{"name": "one"}]
            }
        }))
        .expect("a run")
    }

    #[test]
    fn a_going_run_is_cached_whole_but_kubectl_s_copy() {
        let going = slim_run(run("Unknown"));
        assert!(!is_finished_stand_in(&going));
        assert_eq!(going.data["spec"]["taskRef"], "t");
        assert_eq!(going.data["status"]["steps"][0]["name"], "one");
        assert_eq!(going.metadata.labels.as_ref().map(BTreeMap::len), Some(2));
        let annotations: Vec<&String> = going.metadata.annotations.iter().flatten().map(|(k, _)| k).collect();
        assert_eq!(annotations, ["note"]);
        assert_eq!(finished_facts(&going), None);
    }

    #[test]
    fn a_finished_run_is_cached_as_a_flat_stand_in_of_its_facts() {
        let done = slim_run(run("True"));
        assert!(is_finished_stand_in(&done));
        assert_eq!(
            done.data,
            json!({FINISHED: true, "succeeded": true, "completionTime": "2026-01-01T00:00:00Z", "definition": "t"})
        );
        let labels: Vec<&String> = done.metadata.labels.iter().flatten().map(|(k, _)| k).collect();
        assert_eq!(labels, ["cicdoperator.ning1875.io/concurrency-group"]);
        assert_eq!(done.metadata.annotations, None);
        assert!(!finished_facts(&slim_run(run("False"))).expect("finished").succeeded);
    }

    #[test]
    fn a_stand_in_reads_back_the_facts_of_the_whole_run() {
        let mut finished = run("True");
        finished.data["spec"]["ttlSecondsAfterFinished"] = json!(30);
        finished.data["status"]["taskSpec"]["ttlSecondsAfterFinished"] = json!(60);
        finished.data["status"]["taskSpec"]["successfulRunsHistoryLimit"] = json!(2);
        finished.data["status"]["taskSpec"]["failedRunsHistoryLimit"] = json!(99_999_999_999u64);
        let whole = finished_facts(&finished).expect("finished");
        assert_eq!(
            whole,
            FinishedFacts {
                succeeded: true,
                completion_time: Some("2026-01-01T00:00:00Z".into()),
                ttl_seconds_after_finished: Some(30),
                definition_ttl_seconds_after_finished: Some(60),
                successful_runs_history_limit: Some(2),
                failed_runs_history_limit: Some(u32::MAX),
                definition: Some("t".into()),
            }
        );
        assert_eq!(finished_facts(&slim_run(finished)), Some(whole));
    }

    #[test]
    fn a_pipeline_run_s_facts_come_from_its_pipeline_snapshot_and_reference() {
        let mut finished = run("False");
        finished.data["spec"] = json!({"pipelineRef": "p"});
        finished.data["status"]["taskSpec"] = Value::Null;
        finished.data["status"]["pipelineSpec"] = json!({"failedRunsHistoryLimit": 3});
        let facts = finished_facts(&slim_run(finished)).expect("finished");
        assert_eq!(facts.definition.as_deref(), Some("p"));
        assert_eq!(facts.failed_runs_history_limit, Some(3));
    }
}
