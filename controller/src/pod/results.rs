//! Results that travel through the steps' logs: the limits on them, and
//! the frames the controller fetched, as input to the pure status reader.
//!
//! Each step's entrypoint prints its results as a frame at the end of its
//! own container's log and names the frame (bytes, lines, SHA-256) in its
//! small termination report (`cicd_entrypoint::frame`). Once the pod has
//! finished, `controller::results` reads each frame once with `pods/log`
//! and hands the decoded results here; a step's results are only ever read
//! from that step's own container.

use std::collections::BTreeMap;

pub use cicd_entrypoint::frame::FrameValues;
use cicd_entrypoint::frame::{self, FrameRef};
pub use cicd_entrypoint::frame::{DEFAULT_MAX_RESULT_BYTES, DEFAULT_MAX_RUN_RESULTS_BYTES, RESULTS_CEILING_BYTES};

/// Lines read from a log beyond the frame's own, for output of the step that
/// the container runtime writes in between (stderr is a separate pipe).
pub const SLACK_LINES: u32 = 64;
/// A second, wider look when the first did not find the whole frame.
pub const WIDE_SLACK_LINES: u32 = 4096;
/// The container runtime splits log lines at 16 KiB; a line of other output
/// in the tail is at most this long.
const MAX_LOG_LINE_BYTES: u64 = 16 * 1024;

/// How large results may be. The defaults are the issue's: 64 KiB per
/// result, 256 KiB per run; neither can be set above
/// [`RESULTS_CEILING_BYTES`] (1 MiB), well inside etcd's object size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResultLimits {
    /// Largest value of any one result (string, or the JSON of an array or
    /// object), in bytes.
    pub max_result_bytes: u64,
    /// Largest total of all of a run's results, in bytes.
    pub max_run_results_bytes: u64,
}

impl Default for ResultLimits {
    fn default() -> Self {
        ResultLimits {
            max_result_bytes: DEFAULT_MAX_RESULT_BYTES,
            max_run_results_bytes: DEFAULT_MAX_RUN_RESULTS_BYTES,
        }
    }
}

impl ResultLimits {
    /// The most log text worth reading for `frame` with `slack` extra lines:
    /// the frame's lines (payload plus at most 64 bytes of marker each) and
    /// `slack` lines of other output.
    pub fn log_bytes_for(frame: &FrameRef, slack: u32) -> u64 {
        frame.bytes + u64::from(frame.lines) * 64 + u64::from(slack) * MAX_LOG_LINE_BYTES
    }

    /// Whether a frame of this size can hold results within the limits
    /// (its payload is a report: a little more than the values).
    pub fn frame_is_within(&self, frame: &FrameRef) -> bool {
        frame.bytes <= self.max_run_results_bytes + FRAME_OVERHEAD_BYTES
    }
}

/// The frame's payload is the step's report with its results: names,
/// quotes, escapes and the report's own fields on top of the values.
/// Escaping can double a value's size, so this is generous.
const FRAME_OVERHEAD_BYTES: u64 = 64 * 1024;

/// One step's frame as the controller fetched it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The step's task and step results, decoded and checked against the
    /// report's digest.
    Results(FrameValues),
    /// The frame could not be read; the text says why (for the condition).
    Unreadable(String),
    /// The report names a frame larger than any within the limits; it was
    /// not read.
    TooLarge { bytes: u64 },
}

/// The frames fetched for a pod, by step container name, and the limits
/// they are held to. Empty until the pod has finished.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FetchedResults {
    pub limits: ResultLimits,
    /// Container name -> what its log held.
    pub frames: BTreeMap<String, Fetched>,
}

impl FetchedResults {
    pub fn new(limits: ResultLimits) -> Self {
        FetchedResults {
            limits,
            frames: BTreeMap::new(),
        }
    }
}

/// Decodes `frame` out of a log tail (pure; the I/O layer fetches the tail).
pub fn decode_frame(log: &str, frame: &FrameRef) -> Result<FrameValues, String> {
    frame::decode(log, frame).map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_limits() {
        let limits = ResultLimits::default();
        assert_eq!(limits.max_result_bytes, 65_536);
        assert_eq!(limits.max_run_results_bytes, 262_144);
        assert_eq!(RESULTS_CEILING_BYTES, 1_048_576);
    }

    #[test]
    fn frames_beyond_the_run_limit_are_not_read() {
        let limits = ResultLimits::default();
        let frame = |bytes| FrameRef {
            bytes,
            lines: 1,
            sha256: String::new(),
        };
        assert!(limits.frame_is_within(&frame(262_144)));
        assert!(!limits.frame_is_within(&frame(10 << 20)));
        assert_eq!(ResultLimits::log_bytes_for(&frame(1000), 2), 1000 + 64 + 2 * 16384);
    }
}
