//! The broker's resident memory and CPU time, read from `/proc/<pid>/stat` and
//! `/proc/<pid>/status` (Linux), sampled while a run goes on. Parsing is separate from reading so
//! it is tested on text.

use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

/// How often the sampler reads `/proc`.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(250);

/// Most samples kept (an hour at [`SAMPLE_EVERY`]); later ones only update the peak.
const MAX_SAMPLES: usize = 14_400;

/// One reading of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessSample {
    /// When, Unix microseconds.
    pub at_us: u64,
    /// Resident set size (`VmRSS`), bytes.
    pub rss_bytes: u64,
    /// User plus system CPU time, clock ticks.
    pub cpu_ticks: u64,
}

/// Parses `utime + stime` (fields 14 and 15) from the text of `/proc/<pid>/stat`. The command
/// name (field 2) may hold spaces and parentheses, so fields are counted after its last `)`.
///
/// ```
/// use iot_examples::bench::process::cpu_ticks_from_stat;
/// let stat = "42 (my broker) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 1000 0";
/// assert_eq!(cpu_ticks_from_stat(stat), Some(300));
/// ```
pub fn cpu_ticks_from_stat(stat: &str) -> Option<u64> {
    let after_name = stat.get(stat.rfind(')')? + 1..)?;
    // After the name: state is field 3, so utime (14) is the 12th and stime (15) the 13th here.
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime.saturating_add(stime))
}

/// Parses `VmRSS` (kB) from the text of `/proc/<pid>/status`, in bytes.
///
/// ```
/// use iot_examples::bench::process::rss_bytes_from_status;
/// assert_eq!(rss_bytes_from_status("Name:\tx\nVmRSS:\t    2048 kB\n"), Some(2048 * 1024));
/// assert_eq!(rss_bytes_from_status("Name:\tx\n"), None);
/// ```
pub fn rss_bytes_from_status(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line
        .trim_start_matches("VmRSS:")
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb.saturating_mul(1024))
}

/// Reads one sample of process `pid` now; `None` when it is gone or `/proc` is unreadable.
pub fn sample(pid: u32, at_us: u64) -> Option<ProcessSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(ProcessSample {
        at_us,
        rss_bytes: rss_bytes_from_status(&status)?,
        cpu_ticks: cpu_ticks_from_stat(&stat)?,
    })
}

/// The kernel's clock ticks per second (`USER_HZ`) that `/proc/<pid>/stat` counts in.
fn ticks_per_second() -> u64 {
    rustix::param::clock_ticks_per_second().max(1)
}

/// What the broker used during a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct BrokerUsage {
    /// The broker's process id.
    pub pid: u32,
    /// Resident memory at the first sample, bytes.
    pub rss_start_bytes: u64,
    /// The highest resident memory sampled, bytes.
    pub rss_peak_bytes: u64,
    /// Resident memory at the last sample, bytes.
    pub rss_end_bytes: u64,
    /// CPU used in the measured window, percent of one core (200 = two cores busy).
    pub cpu_percent: f64,
    /// Samples taken.
    pub samples: usize,
}

/// Summarises `samples` (in time order): CPU over the samples inside `[from_us, to_us]`.
pub fn usage(pid: u32, samples: &[ProcessSample], from_us: u64, to_us: u64) -> BrokerUsage {
    let window: Vec<&ProcessSample> = samples
        .iter()
        .filter(|s| s.at_us >= from_us && s.at_us <= to_us)
        .collect();
    let cpu_percent = match (window.first(), window.last()) {
        (Some(a), Some(b)) if b.at_us > a.at_us => {
            let seconds = (b.at_us - a.at_us) as f64 / 1e6;
            let cpu = b.cpu_ticks.saturating_sub(a.cpu_ticks) as f64 / ticks_per_second() as f64;
            cpu / seconds * 100.0
        }
        _ => 0.0,
    };
    BrokerUsage {
        pid,
        rss_start_bytes: samples.first().map_or(0, |s| s.rss_bytes),
        rss_peak_bytes: samples.iter().map(|s| s.rss_bytes).max().unwrap_or(0),
        rss_end_bytes: samples.last().map_or(0, |s| s.rss_bytes),
        cpu_percent,
        samples: samples.len(),
    }
}

/// Samples process `pid` every [`SAMPLE_EVERY`] until `stop` turns true (or its sender is gone);
/// returns the samples, at most [`MAX_SAMPLES`] (later peaks still raise the last one's RSS).
pub async fn sample_until(pid: u32, mut stop: watch::Receiver<bool>) -> Vec<ProcessSample> {
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    if let Some(s) = sample(pid, super::clock::unix_us()) {
                        push_bounded(&mut samples, s);
                    }
                    return samples;
                }
            }
        }
        if let Some(s) = sample(pid, super::clock::unix_us()) {
            push_bounded(&mut samples, s);
        }
    }
}

fn push_bounded(samples: &mut Vec<ProcessSample>, sample: ProcessSample) {
    if samples.len() < MAX_SAMPLES {
        samples.push(sample);
    } else if let Some(last) = samples.last_mut() {
        let peak = last.rss_bytes.max(sample.rss_bytes);
        *last = ProcessSample {
            rss_bytes: peak,
            ..sample
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_not_a_sample() {
        assert_eq!(cpu_ticks_from_stat(""), None);
        assert_eq!(cpu_ticks_from_stat("1 (x) S 1 2"), None);
        assert_eq!(cpu_ticks_from_stat("1 (x) S 1 2 3 4 5 6 7 8 9 a b"), None);
        assert_eq!(rss_bytes_from_status("VmRSS:\tlots kB"), None);
    }

    #[test]
    fn a_name_with_parentheses_is_skipped_whole() {
        let stat = "7 (a) b) R 1 1 1 0 -1 0 0 0 0 0 10 5 0 0";
        assert_eq!(cpu_ticks_from_stat(stat), Some(15));
    }

    #[test]
    fn our_own_process_can_be_sampled() {
        let s = sample(std::process::id(), 1);
        assert!(s.is_some_and(|s| s.rss_bytes > 0));
    }

    #[test]
    fn usage_takes_the_peak_and_the_window() {
        let hz = ticks_per_second();
        let samples = [
            ProcessSample {
                at_us: 0,
                rss_bytes: 10,
                cpu_ticks: 0,
            },
            ProcessSample {
                at_us: 1_000_000,
                rss_bytes: 30,
                cpu_ticks: 0,
            },
            ProcessSample {
                at_us: 2_000_000,
                rss_bytes: 20,
                cpu_ticks: hz,
            },
        ];
        let u = usage(9, &samples, 1_000_000, 2_000_000);
        assert_eq!(
            (u.rss_start_bytes, u.rss_peak_bytes, u.rss_end_bytes),
            (10, 30, 20)
        );
        assert!((u.cpu_percent - 100.0).abs() < 1e-6);
        assert_eq!(usage(9, &[], 0, 1).samples, 0);
    }

    #[test]
    fn the_sample_list_is_bounded() {
        let mut samples = Vec::new();
        for i in 0..MAX_SAMPLES as u64 + 10 {
            push_bounded(
                &mut samples,
                ProcessSample {
                    at_us: i,
                    rss_bytes: i,
                    cpu_ticks: i,
                },
            );
        }
        assert_eq!(samples.len(), MAX_SAMPLES);
        assert_eq!(
            samples.last().map(|s| s.rss_bytes),
            Some(MAX_SAMPLES as u64 + 9)
        );
    }
}
