//! The step report: the one definition of what a step container writes into
//! its termination message and what the controller reads back.
//!
//! The encoding is compact JSON. `encode` refuses anything the kubelet would
//! truncate, so a report the controller reads is always complete.

use alloc::collections::BTreeMap;
use alloc::string::String;

use serde::{Deserialize, Serialize};

/// Kubernetes truncates a container's termination message at 4096 bytes.
pub const MESSAGE_LIMIT_BYTES: usize = 4096;
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Succeeded,
    Failed,
    TimedOut,
    Skipped,
    Signaled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepReport {
    /// Always [`FORMAT_VERSION`] when written by this crate.
    pub version: u32,
    pub outcome: Outcome,
    /// The command's real exit code (also with onError continue); 128+signo
    /// if it was killed by a signal; 124 when the step timed out; 127/126
    /// when the command could not be found/started; 125 for errors of the
    /// entrypoint itself.
    pub exit_code: i32,
    /// Unix epoch milliseconds when the command was started (None if skipped).
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    /// Human explanation, e.g. "timed out after 30s".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub results: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The encoded report does not fit in a termination message.
    #[error("{}", too_large_text(result, *result_bytes, *total_bytes, *limit))]
    TooLarge {
        /// Name of the largest result ("" if the report has no results).
        result: String,
        /// Size of that result's value in bytes.
        result_bytes: usize,
        /// Size of the whole encoded report in bytes.
        total_bytes: usize,
        limit: usize,
    },
    #[error("cannot encode step report as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

fn too_large_text(result: &str, result_bytes: usize, total_bytes: usize, limit: usize) -> String {
    if result.is_empty() {
        format!("step report is {total_bytes} bytes, over the termination message limit of {limit} bytes")
    } else {
        format!(
            "result {result} is {result_bytes} bytes; the step report would be {total_bytes} bytes, \
             over the termination message limit of {limit} bytes"
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("termination message is empty (the step wrote no report)")]
    Empty,
    #[error("termination message is {0} bytes, over the {MESSAGE_LIMIT_BYTES}-byte limit (it may have been truncated)")]
    TooLarge(usize),
    #[error("termination message is not a valid step report: {0}")]
    Json(#[from] serde_json::Error),
    #[error("termination message has no numeric \"version\" field")]
    MissingVersion,
    #[error("unsupported step report version {found} (this build understands version {supported})")]
    UnsupportedVersion { found: u64, supported: u32 },
}

/// Encodes `report` as JSON, failing if the kubelet would truncate it.
pub fn encode(report: &StepReport) -> Result<String, EncodeError> {
    let json = serde_json::to_string(report)?;
    if json.len() <= MESSAGE_LIMIT_BYTES {
        return Ok(json);
    }
    let (result, result_bytes) = report
        .results
        .iter()
        .max_by_key(|(_, value)| value.len())
        .map(|(name, value)| (name.clone(), value.len()))
        .unwrap_or_default();
    Err(EncodeError::TooLarge {
        result,
        result_bytes,
        total_bytes: json.len(),
        limit: MESSAGE_LIMIT_BYTES,
    })
}

/// Decodes a termination message written by [`encode`].
pub fn decode(message: &str) -> Result<StepReport, DecodeError> {
    if message.trim().is_empty() {
        return Err(DecodeError::Empty);
    }
    if message.len() > MESSAGE_LIMIT_BYTES {
        return Err(DecodeError::TooLarge(message.len()));
    }
    // Check the version before the shape, so a report from a newer entrypoint
    // says "unsupported version" rather than some field-level JSON error.
    let value: serde_json::Value = serde_json::from_str(message)?;
    let found = value
        .get("version")
        .and_then(serde_json::Value::as_u64)
        .ok_or(DecodeError::MissingVersion)?;
    if found != u64::from(FORMAT_VERSION) {
        return Err(DecodeError::UnsupportedVersion {
            found,
            supported: FORMAT_VERSION,
        });
    }
    Ok(serde_json::from_value(value)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(results: &[(&str, &str)]) -> StepReport {
        StepReport {
            version: FORMAT_VERSION,
            outcome: Outcome::Succeeded,
            exit_code: 0,
            started_at_ms: Some(1_700_000_000_000),
            finished_at_ms: Some(1_700_000_000_250),
            message: None,
            results: results.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn round_trips_every_outcome() {
        for outcome in [
            Outcome::Succeeded,
            Outcome::Failed,
            Outcome::TimedOut,
            Outcome::Skipped,
            Outcome::Signaled,
        ] {
            let mut r = report(&[("digest", "sha256:abc")]);
            r.outcome = outcome;
            r.exit_code = 143;
            r.message = Some("why".into());
            let text = encode(&r).expect("encodes");
            assert_eq!(decode(&text).expect("decodes"), r);
        }
    }

    #[test]
    fn wire_format_is_camel_case_and_omits_empty_fields() {
        let mut r = report(&[]);
        r.started_at_ms = None;
        r.finished_at_ms = None;
        let text = encode(&r).expect("encodes");
        assert_eq!(
            text,
            r#"{"version":1,"outcome":"Succeeded","exitCode":0,"startedAtMs":null,"finishedAtMs":null}"#
        );
        assert_eq!(decode(&text).expect("decodes"), r);
    }

    #[test]
    fn empty_results_round_trip() {
        let r = report(&[]);
        let text = encode(&r).expect("encodes");
        assert!(!text.contains("results"));
        assert!(decode(&text).expect("decodes").results.is_empty());
    }

    #[test]
    fn unicode_round_trips() {
        let r = report(&[("gruß", "héllo 世界 🚀\n\"quoted\" \\ \u{0}")]);
        let text = encode(&r).expect("encodes");
        assert_eq!(decode(&text).expect("decodes"), r);
    }

    /// Builds a report with a small result plus an IMAGE_URL result padded
    /// so the encoding is exactly `size` bytes.
    fn report_of_size(size: usize) -> StepReport {
        let mut r = report(&[("IMAGE_URL", ""), ("small", "y")]);
        let base = encode(&r).expect("encodes").len();
        r.results.insert("IMAGE_URL".into(), "x".repeat(size - base));
        r
    }

    #[test]
    fn exactly_at_the_limit_is_accepted() {
        let r = report_of_size(MESSAGE_LIMIT_BYTES);
        let text = encode(&r).expect("a report of exactly the limit fits");
        assert_eq!(text.len(), MESSAGE_LIMIT_BYTES);
        assert_eq!(decode(&text).expect("decodes"), r);
    }

    #[test]
    fn one_byte_over_the_limit_names_the_largest_result() {
        let r = report_of_size(MESSAGE_LIMIT_BYTES + 1);
        let big = r.results["IMAGE_URL"].len();
        let err = encode(&r).expect_err("one byte over the limit");
        match &err {
            EncodeError::TooLarge {
                result,
                result_bytes,
                total_bytes,
                limit,
            } => {
                assert_eq!(result, "IMAGE_URL");
                assert_eq!(*result_bytes, big);
                assert_eq!(*total_bytes, MESSAGE_LIMIT_BYTES + 1);
                assert_eq!(*limit, MESSAGE_LIMIT_BYTES);
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
        let text = err.to_string();
        assert!(text.contains("IMAGE_URL"), "{text}");
        assert!(text.contains(&format!("{big} bytes")), "{text}");
        assert!(text.contains("4096"), "{text}");
    }

    #[test]
    fn oversized_message_without_results_is_rejected() {
        let mut r = report(&[]);
        r.message = Some("m".repeat(MESSAGE_LIMIT_BYTES));
        let err = encode(&r).expect_err("too large");
        assert!(matches!(&err, EncodeError::TooLarge { result, .. } if result.is_empty()));
        assert!(err.to_string().contains("4096"));
    }

    #[test]
    fn decode_rejects_bad_input_with_a_reason() {
        assert!(matches!(decode(""), Err(DecodeError::Empty)));
        assert!(matches!(decode("not json"), Err(DecodeError::Json(_))));
        // What the kubelet leaves of an over-long message.
        let truncated = &encode(&report(&[("a", "b")])).expect("encodes")[..20];
        assert!(matches!(decode(truncated), Err(DecodeError::Json(_))));
        assert!(matches!(
            decode(r#"{"outcome":"Succeeded"}"#),
            Err(DecodeError::MissingVersion)
        ));
        let err = decode(r#"{"version":2,"somethingNew":true}"#).expect_err("v2");
        assert!(matches!(
            err,
            DecodeError::UnsupportedVersion { found: 2, supported: 1 }
        ));
        assert!(err.to_string().contains("version 2"));
        assert!(matches!(
            decode(&"x".repeat(MESSAGE_LIMIT_BYTES + 1)),
            Err(DecodeError::TooLarge(_))
        ));
        assert!(matches!(
            decode(r#"{"version":1,"outcome":"Exploded","exitCode":0,"startedAtMs":null,"finishedAtMs":null}"#),
            Err(DecodeError::Json(_))
        ));
    }
}
