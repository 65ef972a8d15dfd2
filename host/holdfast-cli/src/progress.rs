//! The numbers behind the `--wait` progress bar: the server's progress report
//! (`GET .../backups/{id}/progress`, a Holdfast extension), a throughput
//! meter, and the percent / MB/s / ETA text.

use std::collections::VecDeque;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

/// Throughput is averaged over roughly this much recent history.
pub const RATE_WINDOW: Duration = Duration::from_secs(5);

/// One progress report: `{"progress": {"operation": .., "bytes_done": ..,
/// "bytes_total": .., "percent": ..}}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Progress {
    /// `create`, `restore` or `delete`; `null` while nothing runs.
    pub operation: Option<String>,
    #[serde(default)]
    pub bytes_done: u64,
    #[serde(default)]
    pub bytes_total: u64,
    #[serde(default)]
    pub percent: Option<f64>,
    /// Data bytes actually read or written: holes and zero runs excluded, so the
    /// MB/s shown is the data that moved (absent from older servers).
    #[serde(default)]
    pub bytes_moved: Option<u64>,
}

impl Progress {
    /// The report inside a reply, if an operation is running.
    pub fn from_reply(reply: &Value) -> Option<Self> {
        let progress: Self = serde_json::from_value(reply.get("progress")?.clone()).ok()?;
        progress.operation.is_some().then_some(progress)
    }

    /// Percent complete in `0..=100`: the server's figure when sane, else
    /// computed from the byte counts.
    pub fn percent(&self) -> f64 {
        let pct = match self.percent {
            Some(p) if p.is_finite() => p,
            _ if self.bytes_total > 0 => self.bytes_done as f64 * 100.0 / self.bytes_total as f64,
            _ => 0.0,
        };
        pct.clamp(0.0, 100.0)
    }

    /// Bytes still to go.
    pub fn remaining(&self) -> u64 {
        self.bytes_total.saturating_sub(self.bytes_done)
    }
}

/// Throughput over a sliding window of `(time, bytes_done)` samples.
#[derive(Debug, Clone)]
pub struct RateMeter {
    window: Duration,
    samples: VecDeque<(Duration, u64)>,
}

impl Default for RateMeter {
    fn default() -> Self {
        Self::new(RATE_WINDOW)
    }
}

impl RateMeter {
    pub fn new(window: Duration) -> Self {
        Self { window, samples: VecDeque::new() }
    }

    /// Records `bytes` done at `at` (time since the wait started). A counter
    /// that goes backwards (a new operation) restarts the measurement.
    pub fn record(&mut self, at: Duration, bytes: u64) {
        if self.samples.back().is_some_and(|&(_, b)| bytes < b) {
            self.samples.clear();
        }
        self.samples.push_back((at, bytes));
        while self.samples.len() > 2 && self.samples[1].0 + self.window <= at {
            self.samples.pop_front();
        }
    }

    /// Bytes per second, once two samples are far enough apart.
    pub fn rate(&self) -> Option<f64> {
        let (&(t0, b0), &(t1, b1)) = (self.samples.front()?, self.samples.back()?);
        let secs = t1.checked_sub(t0)?.as_secs_f64();
        (secs > 0.0).then(|| (b1 - b0) as f64 / secs)
    }

    pub fn clear(&mut self) {
        self.samples.clear();
    }
}

/// `42.5%`.
pub fn format_percent(percent: f64) -> String {
    let p = if percent.is_finite() { percent.clamp(0.0, 100.0) } else { 0.0 };
    format!("{p:.1}%")
}

/// Decimal megabytes per second: `123.4 MB/s`; `-- MB/s` while unknown.
pub fn format_rate(bytes_per_sec: Option<f64>) -> String {
    match bytes_per_sec {
        Some(r) if r.is_finite() && r >= 0.0 => format!("{:.1} MB/s", r / 1e6),
        _ => "-- MB/s".to_owned(),
    }
}

/// `ETA 01:05`, `ETA 2:03:04`; `ETA --:--` while the rate is unknown or zero.
pub fn format_eta(remaining: u64, bytes_per_sec: Option<f64>) -> String {
    if remaining == 0 {
        return "ETA 00:00".to_owned();
    }
    let Some(rate) = bytes_per_sec.filter(|r| r.is_finite() && *r > 0.0) else {
        return "ETA --:--".to_owned();
    };
    let secs = (remaining as f64 / rate).ceil();
    if secs >= 100.0 * 3600.0 {
        return "ETA >99h".to_owned();
    }
    let secs = secs as u64;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 { format!("ETA {h}:{m:02}:{s:02}") } else { format!("ETA {m:02}:{s:02}") }
}

/// The text next to the bar: ` 42.5%    123.4 MB/s  ETA 00:12`, padded so
/// the bar keeps its width while the numbers change.
/// `percent  MB/s  ETA`: the rate is of data moved, the ETA from how fast the whole
/// volume (holes too) goes by.
pub fn status_line(progress: &Progress, data_per_sec: Option<f64>, volume_per_sec: Option<f64>) -> String {
    format!(
        "{:>6}  {:>12}  {}",
        format_percent(progress.percent()),
        format_rate(data_per_sec),
        format_eta(progress.remaining(), volume_per_sec)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn parses_reports() {
        let reply = json!({"progress": {"operation": "create", "bytes_done": 5, "bytes_total": 10, "percent": 50.0}});
        let p = Progress::from_reply(&reply).unwrap();
        assert_eq!(p.operation.as_deref(), Some("create"));
        assert_eq!((p.bytes_done, p.bytes_total, p.remaining()), (5, 10, 5));
        let idle = json!({"progress": {"operation": null, "bytes_done": 0, "bytes_total": 0, "percent": 0.0}});
        assert_eq!(Progress::from_reply(&idle), None);
        assert_eq!(Progress::from_reply(&json!({"other": 1})), None);
        assert_eq!(Progress::from_reply(&json!({"progress": {"operation": 3}})), None);
    }

    #[test]
    fn percent_prefers_server_then_bytes() {
        let mut p = Progress {
            operation: Some("restore".into()),
            bytes_done: 1,
            bytes_total: 4,
            percent: Some(30.0),
            bytes_moved: None,
        };
        assert_eq!(p.percent(), 30.0);
        p.percent = None;
        assert_eq!(p.percent(), 25.0);
        p.percent = Some(f64::NAN);
        assert_eq!(p.percent(), 25.0);
        p.percent = Some(140.0);
        assert_eq!(p.percent(), 100.0);
        p = Progress {
            operation: Some("delete".into()),
            bytes_done: 0,
            bytes_total: 0,
            percent: None,
            bytes_moved: None,
        };
        assert_eq!(p.percent(), 0.0);
    }

    #[test]
    fn percent_formatting() {
        assert_eq!(format_percent(0.0), "0.0%");
        assert_eq!(format_percent(42.46), "42.5%");
        assert_eq!(format_percent(100.0), "100.0%");
        assert_eq!(format_percent(-3.0), "0.0%");
        assert_eq!(format_percent(f64::INFINITY), "0.0%");
    }

    #[test]
    fn rate_formatting() {
        assert_eq!(format_rate(None), "-- MB/s");
        assert_eq!(format_rate(Some(0.0)), "0.0 MB/s");
        assert_eq!(format_rate(Some(123_456_789.0)), "123.5 MB/s");
        assert_eq!(format_rate(Some(f64::NAN)), "-- MB/s");
    }

    #[test]
    fn eta_formatting() {
        assert_eq!(format_eta(0, None), "ETA 00:00");
        assert_eq!(format_eta(100, None), "ETA --:--");
        assert_eq!(format_eta(100, Some(0.0)), "ETA --:--");
        assert_eq!(format_eta(65_000_000, Some(1e6)), "ETA 01:05");
        assert_eq!(format_eta(7_384, Some(1.0)), "ETA 2:03:04");
        assert_eq!(format_eta(u64::MAX, Some(1.0)), "ETA >99h");
    }

    #[test]
    fn rate_meter_measures_recent_throughput() {
        let mut m = RateMeter::new(secs(1.0));
        assert_eq!(m.rate(), None);
        m.record(secs(0.0), 0);
        assert_eq!(m.rate(), None);
        m.record(secs(0.5), 5_000_000);
        assert_eq!(m.rate(), Some(10e6));
        // Speed drops; old samples leave the window.
        for i in 1..=10u32 {
            m.record(secs(0.5 + f64::from(i) * 0.2), 5_000_000 + u64::from(i) * 200_000);
        }
        let rate = m.rate().unwrap();
        assert!((rate - 1e6).abs() < 1.0, "{rate}");
    }

    #[test]
    fn rate_meter_restarts_when_counter_goes_back() {
        let mut m = RateMeter::default();
        m.record(secs(0.0), 0);
        m.record(secs(1.0), 1_000);
        m.record(secs(1.2), 10);
        assert_eq!(m.rate(), None);
        m.clear();
        assert_eq!(m.rate(), None);
    }

    #[test]
    fn status_line_combines_everything() {
        let p = Progress {
            bytes_moved: None,
            operation: Some("create".into()),
            bytes_done: 50_000_000,
            bytes_total: 100_000_000,
            percent: Some(50.0),
        };
        assert_eq!(status_line(&p, Some(10e6), Some(10e6)), " 50.0%     10.0 MB/s  ETA 00:05");
        assert_eq!(status_line(&p, None, None), " 50.0%       -- MB/s  ETA --:--");
        // Sparse data: 2 MB/s of data moved while the volume goes by at 10 MB/s.
        assert_eq!(status_line(&p, Some(2e6), Some(10e6)), " 50.0%      2.0 MB/s  ETA 00:05");
    }
}
