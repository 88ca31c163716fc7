//! Latencies in an HDR histogram (microseconds, 3 significant digits, 1 µs to 10 minutes; larger
//! values are clamped to the top, so recording never fails) and their summary.

use hdrhistogram::Histogram;
use serde::Serialize;

/// The largest latency kept exactly, in microseconds (10 minutes); larger ones are clamped.
const HIGHEST_US: u64 = 600_000_000;

/// A latency histogram in microseconds.
///
/// ```
/// use iot_examples::bench::latency::Latencies;
/// let mut latencies = Latencies::new();
/// for us in 1..=100 {
///     latencies.record(us);
/// }
/// let summary = latencies.summary();
/// assert_eq!(summary.count, 100);
/// assert!(summary.p50_us >= 49 && summary.p50_us <= 51);
/// assert_eq!(summary.max_us, 100);
/// ```
#[derive(Debug, Clone)]
pub struct Latencies {
    histogram: Option<Histogram<u64>>,
}

/// Percentiles of a histogram, in microseconds (all 0 when nothing was recorded).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LatencySummary {
    /// How many values.
    pub count: u64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Largest.
    pub max_us: u64,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies::new()
    }
}

impl Latencies {
    /// An empty histogram.
    pub fn new() -> Latencies {
        Latencies {
            histogram: Histogram::new_with_bounds(1, HIGHEST_US, 3).ok(),
        }
    }

    /// Records one latency (0 counts as 1 µs, anything above 10 minutes as 10 minutes).
    pub fn record(&mut self, us: u64) {
        if let Some(h) = &mut self.histogram {
            h.saturating_record(us.clamp(1, HIGHEST_US));
        }
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Latencies) {
        if let (Some(h), Some(o)) = (&mut self.histogram, &other.histogram) {
            // Same bounds on both sides, so this cannot fail.
            let _ = h.add(o);
        }
    }

    /// The percentiles.
    pub fn summary(&self) -> LatencySummary {
        match &self.histogram {
            Some(h) if !h.is_empty() => LatencySummary {
                count: h.len(),
                p50_us: h.value_at_quantile(0.5),
                p90_us: h.value_at_quantile(0.9),
                p99_us: h.value_at_quantile(0.99),
                p999_us: h.value_at_quantile(0.999),
                max_us: h.max(),
            },
            _ => LatencySummary::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_zero() {
        assert_eq!(Latencies::new().summary(), LatencySummary::default());
    }

    #[test]
    fn merging_adds_counts_and_extremes_are_clamped() {
        let mut a = Latencies::new();
        let mut b = Latencies::new();
        a.record(0);
        b.record(u64::MAX);
        a.merge(&b);
        let s = a.summary();
        assert_eq!(s.count, 2);
        assert!(s.max_us >= HIGHEST_US);
        assert!(s.p50_us <= 1);
    }
}
