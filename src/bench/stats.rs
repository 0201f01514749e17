//! Summary statistics for the figures: nearest-rank percentiles over latency samples and the
//! median that `--runs N` reports. Pure functions, no IO.

use std::time::Duration;

/// Latency samples of one workload, kept in microseconds (enough resolution for loopback,
/// four bytes per sample so a long run stays small).
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    micros: Vec<u32>,
}

impl Latencies {
    /// An empty set with room for `capacity` samples.
    pub fn with_capacity(capacity: usize) -> Self {
        Latencies { micros: Vec::with_capacity(capacity) }
    }

    /// Records one sample (saturating at about 71 minutes).
    pub fn record(&mut self, elapsed: Duration) {
        self.micros.push(u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX));
    }

    /// Moves every sample of `other` into this set.
    pub fn merge(&mut self, other: Latencies) {
        self.micros.extend(other.micros);
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.micros.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.micros.is_empty()
    }

    /// The `p`-th percentile (0 < p <= 100) in milliseconds, by the nearest-rank method; `None`
    /// when there are no samples.
    pub fn percentile_ms(&mut self, p: f64) -> Option<f64> {
        if self.micros.is_empty() {
            return None;
        }
        self.micros.sort_unstable();
        Some(f64::from(self.micros[nearest_rank(self.micros.len(), p)]) / 1000.0)
    }
}

/// Zero-based index of the nearest-rank `p`-th percentile among `n` sorted samples (n > 0).
fn nearest_rank(n: usize, p: f64) -> usize {
    let rank = (p.clamp(0.0, 100.0) / 100.0 * n as f64).ceil() as usize;
    rank.clamp(1, n) - 1
}

/// The median of `values` (the mean of the two middle values for an even count); `None` for an
/// empty slice. NaNs sort last and so never hide a real value.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 { sorted[mid] } else { (sorted[mid - 1] + sorted[mid]) / 2.0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut l = Latencies::default();
        assert_eq!(l.percentile_ms(50.0), None);
        for ms in 1..=100u64 {
            l.record(Duration::from_millis(101 - ms));
        }
        assert_eq!(l.percentile_ms(50.0), Some(50.0));
        assert_eq!(l.percentile_ms(99.0), Some(99.0));
        assert_eq!(l.percentile_ms(100.0), Some(100.0));
        assert_eq!(l.percentile_ms(0.1), Some(1.0));
        let mut one = Latencies::default();
        one.record(Duration::from_micros(1500));
        assert_eq!(one.percentile_ms(99.0), Some(1.5));
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }
}
