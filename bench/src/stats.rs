//! Percentiles over measured durations.

use std::time::Duration;

/// Durations of one kind (e.g. time to pod) across the objects of a phase.
#[derive(Debug, Default, Clone)]
pub struct Sample {
    sorted: Vec<Duration>,
}

impl Sample {
    pub fn new(mut values: Vec<Duration>) -> Self {
        values.sort();
        Sample { sorted: values }
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// The nearest-rank percentile `p` (0-100); zero for an empty sample.
    pub fn percentile(&self, p: f64) -> Duration {
        if self.sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.sorted.len() as f64).ceil() as usize;
        self.sorted[rank.clamp(1, self.sorted.len()) - 1]
    }
}

/// Milliseconds with one decimal, for the report.
pub fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let sample = Sample::new((1..=100).rev().map(Duration::from_millis).collect());
        assert_eq!(sample.percentile(50.0), Duration::from_millis(50));
        assert_eq!(sample.percentile(99.0), Duration::from_millis(99));
        assert_eq!(sample.percentile(100.0), Duration::from_millis(100));
        assert_eq!(Sample::new(vec![]).percentile(50.0), Duration::ZERO);
    }
}
