//! Counters for Prometheus (`GET /metrics`): operations by kind and outcome, bytes
//! and throughput of backups and restores, the queue in front of
//! `--max-operations`, and how long driver calls take. Plain atomics and mutexes:
//! a handful of updates per operation, nothing on the data path.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use holdfast_types::{EventPhase, EventType};

/// Upper bounds (seconds) of the latency buckets.
const BUCKETS: [f64; 14] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 600.0];

/// A Prometheus histogram with [`BUCKETS`].
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    pub fn observe(&mut self, seconds: f64) {
        for (i, le) in BUCKETS.iter().enumerate() {
            if seconds <= *le {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }

    /// `name_bucket{labels,le=…}`, `name_sum`, `name_count` lines.
    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (le, n) in BUCKETS.iter().zip(self.counts) {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {n}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", self.count);
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

/// Labelled histograms, rendered as one metric family.
#[derive(Debug, Default)]
pub struct Histograms(Mutex<BTreeMap<String, Histogram>>);

impl Histograms {
    pub fn observe(&self, labels: String, seconds: f64) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).entry(labels).or_default().observe(seconds);
    }

    pub fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (labels, h) in self.0.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            h.render(out, name, labels);
        }
    }
}

#[derive(Debug, Default)]
struct Transfer {
    bytes: u64,
    seconds: f64,
    last_mb_per_s: f64,
}

#[derive(Debug, Default)]
pub struct Metrics {
    /// (kind, outcome) → count; kind is create, restore or delete.
    operations: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// "backup" / "restore" → bytes moved and time spent.
    transfers: Mutex<BTreeMap<&'static str, Transfer>>,
    queued: AtomicI64,
    driver_calls: Histograms,
}

impl Metrics {
    /// Count an operation's end from its notification (`backup.create.end`, …).
    pub(crate) fn notified(&self, event_type: EventType) {
        let outcome = match event_type.phase {
            EventPhase::End => "success",
            EventPhase::Error => "error",
            EventPhase::Start | EventPhase::Progress => return,
        };
        let kind = event_type.op.as_str().to_owned();
        *self.operations.lock().unwrap_or_else(|e| e.into_inner()).entry((kind, outcome)).or_default() += 1;
    }

    pub(crate) fn transferred(&self, direction: &'static str, bytes: u64, seconds: f64) {
        let mut t = self.transfers.lock().unwrap_or_else(|e| e.into_inner());
        let t = t.entry(direction).or_default();
        t.bytes += bytes;
        t.seconds += seconds;
        t.last_mb_per_s = bytes as f64 / 1e6 / seconds.max(1e-9);
    }

    /// Held while an operation waits for a `--max-operations` slot.
    pub(crate) fn queued(&self) -> QueueGuard<'_> {
        self.queued.fetch_add(1, Ordering::Relaxed);
        QueueGuard(self)
    }

    /// Time one driver call (`call` is the WIT function's name).
    pub fn time_driver<T>(&self, driver: &str, call: &str, f: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let out = f();
        self.driver_calls.observe(format!("driver=\"{driver}\",call=\"{call}\""), started.elapsed().as_secs_f64());
        out
    }

    pub fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP holdfast_operations_total Backup operations ended, by kind and outcome.\n# TYPE holdfast_operations_total counter"
        );
        for ((kind, outcome), n) in self.operations.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "holdfast_operations_total{{kind=\"{kind}\",outcome=\"{outcome}\"}} {n}");
        }
        let transfers = self.transfers.lock().unwrap_or_else(|e| e.into_inner());
        for (name, kind, help, value) in [
            ("holdfast_bytes_total", "counter", "Volume bytes backed up or restored.", 0),
            ("holdfast_transfer_seconds_total", "counter", "Time spent moving those bytes.", 1),
            ("holdfast_last_mb_per_second", "gauge", "Throughput of the last finished backup or restore (MB/s).", 2),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (dir, t) in transfers.iter() {
                let v = [t.bytes as f64, t.seconds, t.last_mb_per_s][value];
                let _ = writeln!(out, "{name}{{direction=\"{dir}\"}} {v}");
            }
        }
        let _ = writeln!(
            out,
            "# HELP holdfast_queued_operations Backups and restores waiting for a --max-operations slot.\n# TYPE holdfast_queued_operations gauge\nholdfast_queued_operations {}",
            self.queued.load(Ordering::Relaxed)
        );
        self.driver_calls.render(out, "holdfast_driver_call_seconds", "Driver (wasm component) call latency.");
    }
}

pub(crate) struct QueueGuard<'a>(&'a Metrics);

impl Drop for QueueGuard<'_> {
    fn drop(&mut self) {
        self.0.queued.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        for name in ["backup.create.end", "backup.create.end", "backup.restore.error", "backup.createprogress"] {
            m.notified(name.parse().unwrap());
        }
        m.transferred("backup", 2_000_000, 1.0);
        {
            let _q = m.queued();
            let mut out = String::new();
            m.render(&mut out);
            assert!(out.contains("holdfast_queued_operations 1"), "{out}");
        }
        assert_eq!(m.time_driver("posix", "backup", || 7), 7);
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains("holdfast_operations_total{kind=\"create\",outcome=\"success\"} 2"), "{out}");
        assert!(out.contains("holdfast_operations_total{kind=\"restore\",outcome=\"error\"} 1"), "{out}");
        assert!(out.contains("holdfast_bytes_total{direction=\"backup\"} 2000000"), "{out}");
        assert!(out.contains("holdfast_last_mb_per_second{direction=\"backup\"} 2"), "{out}");
        assert!(out.contains("holdfast_queued_operations 0"), "{out}");
        assert!(out.contains("holdfast_driver_call_seconds_count{driver=\"posix\",call=\"backup\"} 1"), "{out}");
    }
}
