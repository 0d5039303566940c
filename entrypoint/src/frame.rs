//! The results frame: how a step's results travel from its entrypoint to the
//! controller through the container's log, which has no size cap of its own,
//! instead of the termination message (4096 bytes per container, 12 KiB per
//! pod).
//!
//! The payload is the step's full report as compact JSON, its results
//! inline and its message uncut (`{"version":2,...,"results":{"name":"value"}}`),
//! which never contains a raw newline. It is cut
//! into lines of at most [`LINE_PAYLOAD_BYTES`] (on UTF-8 boundaries), each
//! printed to stdout as
//!
//! ```text
//! ::cicd-results <id> <i>/<n> <chunk>
//! ```
//!
//! where `<id>` is the first 16 hex digits of the payload's SHA-256 and
//! lines are numbered from 1. Lines stay far below the 16 KiB at which the
//! container runtime splits a log line. The step report (termination
//! message) names the frame with its byte length, line count and full
//! digest ([`FrameRef`]); the controller reads that many lines (plus some
//! slack for stderr that the runtime interleaves) from the end of the log,
//! picks this frame's lines by id, and checks length and digest.
//!
//! Every line carries the marker, id and number, so lines of other output
//! mixed in between are skipped, and the marker is found anywhere in a line,
//! so a command whose last output had no trailing newline cannot hide it.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::sha256;
use crate::termination::StepReport;

/// Starts every frame line.
pub const MARKER: &str = "::cicd-results ";
/// Payload bytes per log line.
pub const LINE_PAYLOAD_BYTES: usize = 4000;
/// Hex digits of the digest that identify a frame's lines.
const ID_LEN: usize = 16;

/// Default largest single result (bytes of its value), also the controller's
/// default for `--max-result-bytes`.
pub const DEFAULT_MAX_RESULT_BYTES: u64 = 64 * 1024;
/// Default largest total of a run's results, also the controller's default
/// for `--max-run-results-bytes`.
pub const DEFAULT_MAX_RUN_RESULTS_BYTES: u64 = 256 * 1024;
/// Neither limit may be set above this: results end up in the run's status,
/// and etcd refuses objects over 1.5 MiB.
pub const RESULTS_CEILING_BYTES: u64 = 1024 * 1024;

/// What the step report says about the frame it printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameRef {
    /// Payload bytes (the JSON object).
    pub bytes: u64,
    /// Number of frame lines.
    pub lines: u32,
    /// SHA-256 of the payload, lowercase hex.
    pub sha256: String,
}

impl FrameRef {
    fn id(&self) -> &str {
        self.sha256.get(..ID_LEN).unwrap_or(&self.sha256)
    }
}

/// Why a frame could not be read back.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("found {found} of the frame's {expected} lines in the log (was the log rotated or cut?)")]
    Incomplete { found: u32, expected: u32 },
    #[error("the frame is {found} bytes, the step report says {expected}")]
    WrongLength { found: u64, expected: u64 },
    #[error("the frame's SHA-256 is {found}, the step report says {expected}")]
    WrongDigest { found: String, expected: String },
    #[error("the frame is not a step report with results: {0}")]
    Json(String),
}

/// The payload of `report`, as printed and as digested. (Its own type,
/// rather than just the results map, also keeps the static binary to one
/// serde_json serializer.)
pub fn payload(report: &StepReport) -> String {
    // A report always serializes (string keys, no floats).
    serde_json::to_string(report).unwrap_or_default()
}

/// The frame's log text (ending in a newline) and its reference for the
/// step report.
pub fn encode(payload: &str) -> (String, FrameRef) {
    let sha = sha256::hex_digest(payload.as_bytes());
    let chunks = chunks(payload);
    let frame = FrameRef {
        bytes: payload.len() as u64,
        lines: chunks.len() as u32,
        sha256: sha,
    };
    let mut text = String::with_capacity(payload.len() + chunks.len() * 48);
    for (i, chunk) in chunks.iter().enumerate() {
        let _ = writeln!(text, "{MARKER}{} {}/{} {chunk}", frame.id(), i + 1, chunks.len());
    }
    (text, frame)
}

/// `text` cut into pieces of at most LINE_PAYLOAD_BYTES on char
/// boundaries; at least one piece.
fn chunks(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while rest.len() > LINE_PAYLOAD_BYTES {
        let mut end = LINE_PAYLOAD_BYTES;
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (head, tail) = rest.split_at(end);
        out.push(head);
        rest = tail;
    }
    out.push(rest);
    out
}

/// `<id> <i>/<n> <chunk>` after a marker, if this is one of `frame`'s
/// lines. The first marker that parses counts: output glued in front of it
/// may contain marker text too, and so may the chunk after it.
fn parse_line<'a>(line: &'a str, frame: &FrameRef) -> Option<(usize, &'a str)> {
    line.match_indices(MARKER)
        .find_map(|(at, _)| parse_after_marker(&line[at + MARKER.len()..], frame))
}

fn parse_after_marker<'a>(rest: &'a str, frame: &FrameRef) -> Option<(usize, &'a str)> {
    let (id, rest) = rest.split_once(' ')?;
    if id != frame.id() {
        return None;
    }
    let (position, chunk) = rest.split_once(' ').unwrap_or((rest, ""));
    let (index, total) = position.split_once('/')?;
    let index: usize = index.parse().ok()?;
    let total: u32 = total.parse().ok()?;
    (total == frame.lines && index >= 1 && index <= total as usize).then_some((index - 1, chunk))
}

/// What a step's frame carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrameValues {
    /// Task results this step wrote, by name.
    pub results: BTreeMap<String, String>,
    /// The step's own step results, by name.
    pub step_results: BTreeMap<String, String>,
}

/// Reads `frame` back out of a log tail. Later copies of a line win, as the
/// entrypoint prints the real frame last.
pub fn decode(log: &str, frame: &FrameRef) -> Result<FrameValues, FrameError> {
    let lines = frame.lines as usize;
    let mut pieces: Vec<Option<&str>> = alloc::vec![None; lines];
    for line in log.lines() {
        if let Some((index, chunk)) = parse_line(line, frame) {
            pieces[index] = Some(chunk);
        }
    }
    let found = pieces.iter().filter(|p| p.is_some()).count() as u32;
    if found != frame.lines {
        return Err(FrameError::Incomplete {
            found,
            expected: frame.lines,
        });
    }
    let payload: String = pieces.into_iter().flatten().collect();
    if payload.len() as u64 != frame.bytes {
        return Err(FrameError::WrongLength {
            found: payload.len() as u64,
            expected: frame.bytes,
        });
    }
    let sha = sha256::hex_digest(payload.as_bytes());
    if sha != frame.sha256 {
        return Err(FrameError::WrongDigest {
            found: sha,
            expected: frame.sha256.clone(),
        });
    }
    serde_json::from_str::<StepReport>(&payload)
        .map(|report| FrameValues {
            results: report.results,
            step_results: report.step_results,
        })
        .map_err(|e| FrameError::Json(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn payload(results: &BTreeMap<String, String>) -> String {
        super::payload(&StepReport {
            version: crate::termination::FORMAT_VERSION,
            outcome: crate::termination::Outcome::Succeeded,
            exit_code: 0,
            started_at_ms: Some(1),
            finished_at_ms: Some(2),
            message: None,
            results: results.clone(),
            step_results: BTreeMap::new(),
            frame: None,
            too_large: None,
        })
    }

    #[test]
    fn round_trips_small_and_large_values() {
        let big: String = (0..200_000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        let unicode = "héllo 世界 🚀\n\"quoted\" \\ \u{0} \r".repeat(500);
        for r in [
            results(&[("a", "1")]),
            results(&[("big", &big), ("u", &unicode), ("empty", "")]),
            BTreeMap::new(),
        ] {
            let (text, frame) = encode(&payload(&r));
            assert!(
                text.lines().all(|l| l.len() <= LINE_PAYLOAD_BYTES + 64),
                "bounded lines"
            );
            assert_eq!(text.lines().count() as u32, frame.lines);
            assert_eq!(decode(&text, &frame).map(|v| v.results), Ok(r));
        }
    }

    #[test]
    fn carries_step_results_apart_from_task_results() {
        let mut report: StepReport =
            serde_json::from_str(&payload(&results(&[("digest", "sha256:1")]))).expect("payload");
        report.step_results = results(&[("digest", "[\"a\",\"b\"]"), ("only-step", "x")]);
        let (text, frame) = encode(&super::payload(&report));
        let values = decode(&text, &frame).expect("decodes");
        assert_eq!(values.results, results(&[("digest", "sha256:1")]));
        assert_eq!(values.step_results, report.step_results);
    }

    #[test]
    fn skips_interleaved_lines_and_finds_glued_markers() {
        let r = results(&[("x", &"y".repeat(9000)), ("m", "::cicd-results 0123 1/1 {}")]);
        let (text, frame) = encode(&payload(&r));
        let mut mixed = String::from("output ::cicd-results without a newline at the end");
        for (i, line) in text.lines().enumerate() {
            mixed.push_str(line);
            mixed.push('\n');
            if i == 0 {
                mixed.push_str("stderr: interleaved\n");
            }
        }
        assert_eq!(decode(&mixed, &frame).map(|v| v.results), Ok(r));
    }

    #[test]
    fn last_copy_wins_and_other_frames_are_ignored() {
        let fake = results(&[("x", "forged")]);
        let real = results(&[("x", "real")]);
        let (fake_text, _) = encode(&payload(&fake));
        let (real_text, frame) = encode(&payload(&real));
        let log = format!("{fake_text}{real_text}");
        assert_eq!(decode(&log, &frame).map(|v| v.results), Ok(real));
    }

    #[test]
    fn reports_missing_lines_and_bad_digests() {
        let r = results(&[("x", &"z".repeat(10_000))]);
        let (text, frame) = encode(&payload(&r));
        let cut: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
        assert_eq!(
            decode(&cut, &frame),
            Err(FrameError::Incomplete {
                found: frame.lines - 1,
                expected: frame.lines
            })
        );
        let tampered = text.replacen("zzz", "zzy", 1);
        assert!(matches!(decode(&tampered, &frame), Err(FrameError::WrongDigest { .. })));
        let mut short = frame.clone();
        short.bytes -= 1;
        assert!(matches!(decode(&text, &short), Err(FrameError::WrongLength { .. })));
    }

    #[test]
    fn cuts_on_char_boundaries() {
        let text = "é".repeat(LINE_PAYLOAD_BYTES);
        let pieces = chunks(&text);
        assert!(pieces.iter().all(|p| p.len() <= LINE_PAYLOAD_BYTES));
        assert_eq!(pieces.concat(), text);
    }
}
