//! Go-style durations (`1h30m`, `45s`, `500ms`), as Tekton users write them.

use std::time::Duration;

/// Parses `0`, or a sequence of number+unit pairs with units h, m, s, ms.
/// Returns a message that quotes the input on error.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err("\"\" is not a duration (use e.g. 30s, 10m, 1h30m, or 0 for none)".into());
    }
    let bad = || format!("{text:?} is not a duration (use e.g. 30s, 10m, 1h30m, or 0 for none)");
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad());
        }
        let number: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        // Like Go, refuse what does not fit in i64 nanoseconds (~292 years)
        // rather than panic (`from_secs_f64`) or wrap later.
        total = Duration::try_from_secs_f64(number * seconds_per_unit)
            .ok()
            .and_then(|part| total.checked_add(part))
            .filter(|total| total.as_nanos() <= i64::MAX as u128)
            .ok_or_else(|| format!("{text:?} is too long a duration (the most is about 292 years)"))?;
    }
    Ok(total)
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
        for bad in ["", "10", "ten minutes", "5d", "m5", "1h-5m"] {
            let error = parse_duration(bad).expect_err(bad);
            assert!(error.contains(&format!("{bad:?}")), "{error}");
        }
    }
}
