//! Text for people: ages and durations like kubectl's, aligned tables,
//! log prefixes with colour on a terminal. Pure.

use jiff::Timestamp;

use crate::runs::{Outcome, RunSummary};

/// `45s`, `3m12s`, `2h5m`, `3d4h`: the two largest units, as kubectl
/// prints ages.
pub fn short_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let (d, h, m, sec) = (s / 86_400, (s / 3600) % 24, (s / 60) % 60, s % 60);
    if d > 0 {
        format!("{d}d{h}h")
    } else if h > 0 {
        format!("{h}h{m}m")
    } else if m > 0 {
        format!("{m}m{sec}s")
    } else {
        format!("{sec}s")
    }
}

/// Age of a timestamp at `now`, or `-` when unknown.
pub fn age(time: Option<Timestamp>, now: Timestamp) -> String {
    time.map_or_else(|| "-".to_string(), |t| short_duration(now.as_second() - t.as_second()))
}

/// Columns padded to their widest cell, separated by three spaces, as
/// kubectl prints tables.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                let pad = widths[i] + 3 - cell.chars().count();
                out.push_str(&" ".repeat(pad));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// The `cicd list` table. `namespaces` adds a NAMESPACE column (-A).
pub fn runs_table(runs: &[RunSummary], now: Timestamp, namespaces: bool) -> String {
    let mut header = vec!["NAME", "KIND", "STATUS", "REASON", "AGE", "DURATION"];
    if namespaces {
        header.insert(0, "NAMESPACE");
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|run| {
            let mut row = vec![
                run.name.clone(),
                run.kind.as_str().to_string(),
                run.outcome.as_str().to_string(),
                if run.reason.is_empty() {
                    "-".to_string()
                } else {
                    run.reason.clone()
                },
                age(run.created, now),
                run.duration_seconds(now)
                    .map_or_else(|| "-".to_string(), short_duration),
            ];
            if namespaces {
                row.insert(0, run.namespace.clone());
            }
            row
        })
        .collect();
    table(&header, &rows)
}

/// ANSI colours for log prefixes, picked by a stable hash of the task so
/// each task keeps its colour.
const PALETTE: [u8; 6] = [36, 33, 35, 32, 34, 96];

/// `[task/step] ` with a colour (on a terminal) per task.
pub fn log_prefix(task: &str, step: &str, colour: bool) -> String {
    if !colour {
        return format!("[{task}/{step}] ");
    }
    let hash = task
        .bytes()
        .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
    let code = PALETTE[hash % PALETTE.len()];
    format!("\x1b[{code}m[{task}/{step}]\x1b[0m ")
}

/// The last line `logs` prints: how the run ended.
pub fn outcome_line(kind: &str, name: &str, outcome: Outcome, reason: &str, message: &str, colour: bool) -> String {
    let word = outcome.as_str();
    let word = match (colour, outcome) {
        (true, Outcome::Succeeded) => format!("\x1b[32m{word}\x1b[0m"),
        (true, Outcome::Failed) => format!("\x1b[31m{word}\x1b[0m"),
        _ => word.to_string(),
    };
    let mut line = format!("{kind} {name} {word}");
    if !reason.is_empty() && reason != outcome.as_str() {
        line.push_str(&format!(" ({reason})"));
    }
    if !message.is_empty() && outcome == Outcome::Failed {
        line.push_str(&format!(": {message}"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runs::RunKind;

    #[test]
    fn durations_use_the_two_largest_units() {
        assert_eq!(short_duration(0), "0s");
        assert_eq!(short_duration(59), "59s");
        assert_eq!(short_duration(192), "3m12s");
        assert_eq!(short_duration(7500), "2h5m");
        assert_eq!(short_duration(3 * 86_400 + 4 * 3600 + 5), "3d4h");
        assert_eq!(short_duration(-5), "0s", "clock skew is not a negative age");
    }

    #[test]
    fn tables_align_columns() {
        let text = table(
            &["NAME", "X"],
            &[vec!["a-long-name".into(), "1".into()], vec!["b".into(), "22".into()]],
        );
        assert_eq!(text, "NAME          X\na-long-name   1\nb             22\n");
    }

    #[test]
    fn the_runs_table_shows_age_duration_and_reason() {
        let now: Timestamp = "2026-01-01T00:10:00Z".parse().expect("time");
        let run = RunSummary {
            name: "build-run-x1".into(),
            namespace: "team".into(),
            kind: RunKind::PipelineRun,
            outcome: Outcome::Failed,
            reason: "Cancelled".into(),
            message: String::new(),
            created: Some("2026-01-01T00:00:00Z".parse().expect("time")),
            started: Some("2026-01-01T00:00:01Z".parse().expect("time")),
            completed: Some("2026-01-01T00:01:31Z".parse().expect("time")),
            parent: None,
        };
        let text = runs_table(std::slice::from_ref(&run), now, true);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["NAMESPACE", "NAME", "KIND", "STATUS", "REASON", "AGE", "DURATION"]
        );
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            [
                "team",
                "build-run-x1",
                "PipelineRun",
                "Failed",
                "Cancelled",
                "10m0s",
                "1m30s"
            ]
        );
    }

    #[test]
    fn prefixes_are_plain_off_a_terminal() {
        assert_eq!(log_prefix("clone", "fetch", false), "[clone/fetch] ");
        let coloured = log_prefix("clone", "fetch", true);
        assert!(
            coloured.starts_with("\x1b[") && coloured.contains("[clone/fetch]"),
            "{coloured:?}"
        );
        assert_eq!(log_prefix("clone", "a", true)[..5], log_prefix("clone", "b", true)[..5]);
    }

    #[test]
    fn the_outcome_line_carries_the_failure() {
        let line = outcome_line(
            "PipelineRun",
            "p",
            Outcome::Failed,
            "Failed",
            "task build failed",
            false,
        );
        assert_eq!(line, "PipelineRun p Failed: task build failed");
        let line = outcome_line("TaskRun", "t", Outcome::Succeeded, "Succeeded", "", false);
        assert_eq!(line, "TaskRun t Succeeded");
    }
}
