//! Go-style durations (`1h30m`, `45s`, `500ms`), as Tekton users write them.
//! The grammar lives in one place, the entrypoint crate
//! (`cicd_entrypoint::duration`), so the controller accepts exactly the
//! timeouts the entrypoint does; this adds messages that quote the input.

use std::time::Duration;

use cicd_entrypoint::duration::{self, DurationError};

/// Parses `0`, or a sequence of number+unit pairs (units ns, us, ms, s, m,
/// h). Returns a message that quotes the input on error.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    duration::parse(text).map_err(|error| match error {
        DurationError::Overflow => format!("{text:?} is too long a duration (the most is about 292 years)"),
        other => format!("{text:?} is not a duration: {other} (use e.g. 30s, 10m, 1h30m, or 0 for none)"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1m0.5s"), Ok(Duration::from_millis(60_500)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        // The entrypoint's grammar, now also the controller's.
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("10us"), Ok(Duration::from_micros(10)));
        assert_eq!(parse_duration(" 30s "), Ok(Duration::from_secs(30)));
    }

    #[test]
    fn rejects_overflowing_durations_instead_of_panicking() {
        let nines = format!("{}s", "9".repeat(400));
        for huge in ["99999999999999999999h", "2562048h", nines.as_str()] {
            let error = parse_duration(huge).expect_err(huge);
            assert!(error.contains(&format!("{huge:?}")), "{error}");
        }
        assert_eq!(parse_duration("2562047h"), Ok(Duration::from_secs(2_562_047 * 3600)));
    }

    #[test]
    fn rejects_garbage_with_the_input_quoted() {
        for bad in ["", "10", "ten minutes", "5d", "m5", "1h-5m", "-1s", "1..2s"] {
            let error = parse_duration(bad).expect_err(bad);
            assert!(error.contains(&format!("{bad:?}")), "{error}");
        }
    }

    /// Every input the two sides see the same way: what one accepts the
    /// other accepts with the same value (they are the same parser now;
    /// this guards against someone adding a second one again).
    #[test]
    fn agrees_with_the_entrypoint() {
        for text in ["0", "1h", "1.5h", "30s", "500ms", "7ns", "+1s", "", "1d", "1"] {
            assert_eq!(parse_duration(text).ok(), duration::parse(text).ok(), "{text:?}");
        }
    }
}
