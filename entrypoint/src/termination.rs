//! The step report: the one definition of what a step container writes into
//! its termination message and what the controller reads back.
//!
//! The encoding is compact JSON, kept small: the kubelet keeps at most 4096
//! bytes of a container's termination message and, per pod, 12 KiB shared
//! evenly by all containers (it cuts the rest off, which breaks the JSON).
//! The step's results therefore travel in its log ([`crate::frame`]); the
//! report only names that frame. `encode` shortens the human message until
//! the report fits the budget it is given, so a report the controller reads
//! is always complete.

use alloc::collections::BTreeMap;
use alloc::string::String;

use serde::{Deserialize, Serialize};

pub use crate::frame::FrameRef;

/// Kubernetes keeps at most this much of a container's termination message.
pub const MESSAGE_LIMIT_BYTES: usize = 4096;
/// Kubernetes keeps at most this much termination message per pod, split
/// evenly over all its containers (init, sidecar and step containers).
pub const POD_MESSAGE_LIMIT_BYTES: usize = 12 * 1024;
/// The largest report without a message (every field at its widest, with a
/// frame; or with an oversized result, whose name is shortened to fit): a
/// pod whose containers get less than this each cannot report reliably.
pub const MIN_REPORT_BYTES: usize = 256;
/// The file a step writes its command's exit code to, in decimal, beside
/// its post file (in its own hand-off directory), where later steps read it
/// as Tekton's `$(steps.<name>.exitCode.path)`.
pub const EXIT_CODE_FILE: &str = "exitCode";
/// Reports written by this crate.
pub const FORMAT_VERSION: u32 = 2;
/// The previous format (results inline), still read so runs started by an
/// older entrypoint finish after an upgrade.
pub const INLINE_RESULTS_VERSION: u32 = 1;

/// The termination-message budget of each container of a pod with
/// `containers` containers.
pub fn report_budget(containers: usize) -> usize {
    (POD_MESSAGE_LIMIT_BYTES / containers.max(1)).min(MESSAGE_LIMIT_BYTES)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Succeeded,
    Failed,
    TimedOut,
    Skipped,
    Signaled,
}

/// A result (or the step's results together) over a limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TooLarge {
    /// The result's name; for the total, the largest result.
    pub result: String,
    /// Bytes of that result's value, or of all the step's results for the total.
    pub bytes: u64,
    /// The limit it is over.
    pub limit: u64,
    /// True when the limit is on all results of the step together.
    #[serde(default, skip_serializing_if = "core::ops::Not::not")]
    pub total: bool,
}

impl core::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let (what, scope, per) = if self.total {
            ("results (largest: ", ") total", "for all results")
        } else {
            ("result ", " is", "per result")
        };
        write!(
            f,
            "{what}{}{scope} {} bytes, over the limit of {} bytes {per}",
            self.result, self.bytes, self.limit
        )
    }
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
    /// Version 1 only: the results inline. Version 2 reports leave it empty
    /// and print the results as a frame in the log instead.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub results: BTreeMap<String, String>,
    /// The step's own step results; only ever in the frame (like version 2
    /// results), for `status.steps[].results`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub step_results: BTreeMap<String, String>,
    /// The results frame this step printed to its log, if it wrote results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<FrameRef>,
    /// Set when the step failed because a result was over a limit, so the
    /// controller can say so with its own reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub too_large: Option<TooLarge>,
}

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// Even without its message the report does not fit the budget.
    #[error(
        "the step report is {total_bytes} bytes without its message, over its termination message budget of {limit} bytes"
    )]
    TooLarge { total_bytes: usize, limit: usize },
    #[error("cannot encode step report as JSON: {0}")]
    Json(#[from] serde_json::Error),
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
    #[error(
        "unsupported step report version {found} (this build understands versions {INLINE_RESULTS_VERSION} and {supported})"
    )]
    UnsupportedVersion { found: u64, supported: u32 },
}

/// Cuts `text` to at most `max` bytes on a char boundary, marking the cut.
pub fn truncate_utf8(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max.saturating_sub(3);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str("...");
    text
}

/// Encodes `report` as JSON of at most `limit` bytes: the message is
/// shortened (or dropped) and, last, the name of an oversized result, until
/// it fits. Fails only if even that is not enough.
pub fn encode(report: &StepReport, limit: usize) -> Result<String, EncodeError> {
    let json = serde_json::to_string(report)?;
    if json.len() <= limit {
        return Ok(json);
    }
    let mut shorter = report.clone();
    let message = shorter.message.take().unwrap_or_default();
    // `,"message":"..."` holds 14 bytes besides the text; escapes can make
    // the text longer than its raw bytes, so each try cuts by what is over.
    let mut room = limit.saturating_sub(json.len() - message.len());
    loop {
        if room <= 14 + 3 {
            shorter.message = None;
        } else {
            shorter.message = Some(truncate_utf8(message.clone(), room - 14));
        }
        let json = serde_json::to_string(&shorter)?;
        if json.len() <= limit {
            return Ok(json);
        }
        if shorter.message.is_some() {
            room -= (json.len() - limit).max(1);
            continue;
        }
        // No message left: shorten the name of the oversized result.
        match shorter.too_large.as_mut() {
            Some(t) if t.result.len() > 3 => {
                let keep = t.result.len().saturating_sub(json.len() - limit);
                t.result = truncate_utf8(core::mem::take(&mut t.result), keep);
            }
            _ => {
                return Err(EncodeError::TooLarge {
                    total_bytes: json.len(),
                    limit,
                });
            }
        }
    }
}

/// Decodes a termination message written by [`encode`] (or by a version 1
/// entrypoint).
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
    if found != u64::from(FORMAT_VERSION) && found != u64::from(INLINE_RESULTS_VERSION) {
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
    use alloc::string::ToString;

    fn report(message: Option<&str>) -> StepReport {
        StepReport {
            version: FORMAT_VERSION,
            outcome: Outcome::Succeeded,
            exit_code: 0,
            started_at_ms: Some(1_700_000_000_000),
            finished_at_ms: Some(1_700_000_000_250),
            message: message.map(str::to_string),
            results: BTreeMap::new(),
            step_results: BTreeMap::new(),
            frame: None,
            too_large: None,
        }
    }

    /// Every field at its widest (times until the year 2286), with a frame.
    fn widest() -> StepReport {
        let mut r = report(None);
        r.outcome = Outcome::Succeeded;
        r.exit_code = i32::MIN;
        r.started_at_ms = Some(9_999_999_999_999);
        r.finished_at_ms = Some(9_999_999_999_999);
        r.frame = Some(FrameRef {
            bytes: u64::MAX,
            lines: u32::MAX,
            sha256: "f".repeat(64),
        });
        r
    }

    /// A failed step with an oversized result of a 253-byte name.
    fn widest_failure() -> StepReport {
        let mut r = widest();
        r.outcome = Outcome::Signaled;
        r.frame = None;
        r.too_large = Some(TooLarge {
            result: "r".repeat(253),
            bytes: u64::MAX,
            limit: u64::MAX,
            total: true,
        });
        r
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate_utf8("short".into(), 10), "short");
        assert_eq!(truncate_utf8("abcdefghij".into(), 6), "abc...");
        let t = truncate_utf8("ééééé".into(), 8);
        assert!(t.len() <= 8 && t.ends_with("..."), "{t}");
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
            let mut r = widest();
            r.outcome = outcome;
            r.exit_code = 143;
            r.message = Some("why".into());
            let text = encode(&r, MESSAGE_LIMIT_BYTES).expect("encodes");
            assert_eq!(decode(&text).expect("decodes"), r);
        }
    }

    #[test]
    fn wire_format_is_camel_case_and_omits_empty_fields() {
        let mut r = report(None);
        r.started_at_ms = None;
        r.finished_at_ms = None;
        let text = encode(&r, MESSAGE_LIMIT_BYTES).expect("encodes");
        assert_eq!(
            text,
            r#"{"version":2,"outcome":"Succeeded","exitCode":0,"startedAtMs":null,"finishedAtMs":null}"#
        );
        assert_eq!(decode(&text).expect("decodes"), r);
        r.frame = Some(FrameRef {
            bytes: 10,
            lines: 1,
            sha256: "ab".into(),
        });
        let text = encode(&r, MESSAGE_LIMIT_BYTES).expect("encodes");
        assert!(
            text.ends_with(r#","frame":{"bytes":10,"lines":1,"sha256":"ab"}}"#),
            "{text}"
        );
    }

    #[test]
    fn version_1_reports_with_inline_results_still_decode() {
        let text = r#"{"version":1,"outcome":"Succeeded","exitCode":0,"startedAtMs":1,"finishedAtMs":2,"results":{"IMAGE_URL":"x"}}"#;
        let r = decode(text).expect("v1 decodes");
        assert_eq!(r.version, 1);
        assert_eq!(r.results.get("IMAGE_URL").map(String::as_str), Some("x"));
        assert_eq!(r.frame, None);
    }

    #[test]
    fn unicode_messages_round_trip() {
        let r = report(Some("héllo 世界 🚀\n\"quoted\" \\ \u{0}"));
        let text = encode(&r, MESSAGE_LIMIT_BYTES).expect("encodes");
        assert_eq!(decode(&text).expect("decodes"), r);
    }

    #[test]
    fn the_widest_report_without_a_message_fits_the_minimum() {
        let text = encode(&widest(), MESSAGE_LIMIT_BYTES).expect("encodes");
        assert!(text.len() <= MIN_REPORT_BYTES, "{} bytes: {text}", text.len());
        let mut failure = widest_failure();
        failure.message = Some("x".repeat(1000));
        let text = encode(&failure, MIN_REPORT_BYTES).expect("fits with a shorter name");
        assert!(text.len() <= MIN_REPORT_BYTES, "{} bytes: {text}", text.len());
        let back = decode(&text).expect("decodes");
        let too_large = back.too_large.expect("kept");
        assert!(too_large.result.starts_with("rrr") && too_large.result.ends_with("..."));
        assert_eq!(too_large.bytes, u64::MAX);
    }

    #[test]
    fn exactly_at_the_limit_is_kept_whole() {
        let base = encode(&report(Some("")), MESSAGE_LIMIT_BYTES).expect("encodes").len();
        let r = report(Some(&"m".repeat(MESSAGE_LIMIT_BYTES - base)));
        let text = encode(&r, MESSAGE_LIMIT_BYTES).expect("a report of exactly the limit fits");
        assert_eq!(text.len(), MESSAGE_LIMIT_BYTES);
        assert_eq!(decode(&text).expect("decodes"), r);
    }

    #[test]
    fn over_the_budget_the_message_is_shortened_to_fit() {
        for budget in [MIN_REPORT_BYTES, 585, 1024, MESSAGE_LIMIT_BYTES] {
            for message in ["m".repeat(5000), "\"\\\n".repeat(3000), "世界".repeat(2000)] {
                let mut r = if budget == 585 { widest_failure() } else { widest() };
                r.message = Some(message.clone());
                let text = encode(&r, budget).expect("fits after shortening");
                assert!(text.len() <= budget, "{} > {budget}", text.len());
                let back = decode(&text).expect("decodes");
                assert_eq!(back.frame, r.frame);
                assert_eq!(back.too_large, r.too_large);
                if let Some(m) = back.message {
                    assert!(m.ends_with("...") && message.starts_with(m.trim_end_matches("...")));
                }
            }
        }
    }

    #[test]
    fn a_report_that_cannot_fit_is_refused() {
        let err = encode(&widest(), 100).expect_err("too small a budget");
        assert!(matches!(err, EncodeError::TooLarge { limit: 100, .. }));
        assert!(err.to_string().contains("100 bytes"), "{err}");
    }

    #[test]
    fn budgets_follow_the_kubelet() {
        assert_eq!(report_budget(1), MESSAGE_LIMIT_BYTES);
        assert_eq!(report_budget(3), MESSAGE_LIMIT_BYTES);
        assert_eq!(report_budget(4), 3072);
        assert_eq!(report_budget(21), 585);
        assert_eq!(report_budget(0), MESSAGE_LIMIT_BYTES);
    }

    #[test]
    fn too_large_names_result_size_and_limit() {
        let one = TooLarge {
            result: "IMAGE_URL".into(),
            bytes: 5000,
            limit: 4096,
            total: false,
        };
        assert_eq!(
            one.to_string(),
            "result IMAGE_URL is 5000 bytes, over the limit of 4096 bytes per result"
        );
        let all = TooLarge { total: true, ..one };
        assert_eq!(
            all.to_string(),
            "results (largest: IMAGE_URL) total 5000 bytes, over the limit of 4096 bytes for all results"
        );
    }

    #[test]
    fn decode_rejects_bad_input_with_a_reason() {
        assert!(matches!(decode(""), Err(DecodeError::Empty)));
        assert!(matches!(decode("not json"), Err(DecodeError::Json(_))));
        // What the kubelet leaves of an over-long message.
        let truncated = &encode(&widest(), MESSAGE_LIMIT_BYTES).expect("encodes")[..20];
        assert!(matches!(decode(truncated), Err(DecodeError::Json(_))));
        assert!(matches!(
            decode(r#"{"outcome":"Succeeded"}"#),
            Err(DecodeError::MissingVersion)
        ));
        let err = decode(r#"{"version":3,"somethingNew":true}"#).expect_err("v3");
        assert!(matches!(
            err,
            DecodeError::UnsupportedVersion { found: 3, supported: 2 }
        ));
        assert!(err.to_string().contains("version 3"));
        assert!(matches!(
            decode(&"x".repeat(MESSAGE_LIMIT_BYTES + 1)),
            Err(DecodeError::TooLarge(_))
        ));
        assert!(matches!(
            decode(r#"{"version":2,"outcome":"Exploded","exitCode":0,"startedAtMs":null,"finishedAtMs":null}"#),
            Err(DecodeError::Json(_))
        ));
    }
}
