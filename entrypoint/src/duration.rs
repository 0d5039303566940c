//! Go-style durations (`1h30m`, `30s`, `1.5s`, `500ms`, `0`), the syntax
//! Kubernetes users already write in task timeouts. The one grammar of the
//! project: the controller validates timeouts with this same parser, so a
//! timeout it accepts is one the entrypoint accepts.
//!
//! Grammar (Go's `time.ParseDuration`, without negatives): an optional `+`,
//! then `0`, or one or more `<number><unit>` with number = digits with at
//! most one `.` (`1.5`, `.5`, `1.`) and unit one of `ns us µs μs ms s m h`.
//! At most `i64::MAX` nanoseconds (about 292 years), as in Go.

use alloc::string::{String, ToString};
use core::time::Duration;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("negative durations are not allowed")]
    Negative,
    #[error("missing unit after {0:?} (use ns, us, ms, s, m or h, e.g. 30s)")]
    MissingUnit(String),
    #[error("unknown unit {0:?} (use ns, us, ms, s, m or h)")]
    UnknownUnit(String),
    #[error("expected a number at {0:?}")]
    ExpectedNumber(String),
    #[error("duration is too large (the most is about 292 years)")]
    Overflow,
}

/// Parses a Go `time.ParseDuration` string. `0` (with or without unit) means
/// a zero duration, which callers treat as "no timeout".
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(DurationError::Empty);
    }
    if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    } else if rest.starts_with('-') {
        return Err(DurationError::Negative);
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(num_len);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(DurationError::ExpectedNumber(rest.to_string()));
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            "" => return Err(DurationError::MissingUnit(number.to_string())),
            other => return Err(DurationError::UnknownUnit(other.to_string())),
        };
        total_nanos = total_nanos
            .checked_add(scaled(number, unit_nanos)?)
            .ok_or(DurationError::Overflow)?;
        rest = next;
    }
    if total_nanos > i64::MAX as u128 {
        return Err(DurationError::Overflow);
    }
    let secs = u64::try_from(total_nanos / 1_000_000_000).map_err(|_| DurationError::Overflow)?;
    // The remainder is below 1e9, so it always fits in u32.
    let nanos = (total_nanos % 1_000_000_000) as u32;
    Ok(Duration::new(secs, nanos))
}

/// `number` (digits with at most one '.') times `unit_nanos`, truncating
/// fractions of a nanosecond like Go does.
fn scaled(number: &str, unit_nanos: u128) -> Result<u128, DurationError> {
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    let mut value: u128 = 0;
    for d in int.bytes() {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u128::from(d - b'0')))
            .ok_or(DurationError::Overflow)?;
    }
    let mut nanos = value.checked_mul(unit_nanos).ok_or(DurationError::Overflow)?;
    let mut scale = unit_nanos;
    for d in frac.bytes() {
        scale /= 10;
        if scale == 0 {
            break;
        }
        nanos += u128::from(d - b'0') * scale;
    }
    Ok(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse(".5m"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("2m3.25s"), Ok(Duration::from_millis(123_250)));
        assert_eq!(parse("10us"), Ok(Duration::from_micros(10)));
        assert_eq!(parse("10µs"), Ok(Duration::from_micros(10)));
        assert_eq!(parse("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(parse("+1s"), Ok(Duration::from_secs(1)));
    }

    #[test]
    fn rejects_bad_durations() {
        assert_eq!(parse(""), Err(DurationError::Empty));
        assert_eq!(parse("-1s"), Err(DurationError::Negative));
        assert_eq!(parse("30"), Err(DurationError::MissingUnit("30".into())));
        assert_eq!(parse("30x"), Err(DurationError::UnknownUnit("x".into())));
        assert_eq!(parse("1d"), Err(DurationError::UnknownUnit("d".into())));
        assert!(matches!(parse("s"), Err(DurationError::ExpectedNumber(_))));
        assert!(matches!(parse("1..2s"), Err(DurationError::ExpectedNumber(_))));
        assert!(matches!(parse("1.s.s"), Err(DurationError::ExpectedNumber(_))));
        assert_eq!(parse("1.s"), Ok(Duration::from_secs(1)));
        assert_eq!(
            parse("99999999999999999999999999999999999999h"),
            Err(DurationError::Overflow)
        );
        // Go's bound: i64 nanoseconds.
        assert_eq!(parse("2562047h"), Ok(Duration::from_secs(2_562_047 * 3600)));
        assert_eq!(parse("2562048h"), Err(DurationError::Overflow));
        assert_eq!(
            parse(&alloc::format!("{}s", "9".repeat(400))),
            Err(DurationError::Overflow)
        );
        assert_eq!(parse("1h-5m"), Err(DurationError::UnknownUnit("h-".into())));
        assert!(matches!(parse("ten minutes"), Err(DurationError::ExpectedNumber(_))));
        assert!(matches!(parse("m5"), Err(DurationError::ExpectedNumber(_))));
    }
}
