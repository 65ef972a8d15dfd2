//! When a driver call must stop. Checked at every epoch tick while guest code runs
//! (so a guest spinning without calling the host is stopped too).

use std::time::{Duration, Instant};

/// The limit on the call in progress.
#[derive(Debug, Clone, Copy)]
pub enum Deadline {
    /// A control call (`setup`, `delete`, `export-record`, `import-record`): a fixed
    /// time from its start.
    Until { at: Instant, call: &'static str, limit: Duration },
    /// A backup or restore: a time without progress (volume bytes read or written).
    NoProgress { limit: Duration, seen: u64, since: Instant },
}

impl Deadline {
    pub fn control(call: &'static str, limit: Duration) -> Self {
        Deadline::Until { at: Instant::now() + limit, call, limit }
    }

    pub fn no_progress(limit: Duration, done: u64) -> Self {
        Deadline::NoProgress { limit, seen: done, since: Instant::now() }
    }

    /// Why the call must stop now, given the bytes done so far; `None` to go on.
    pub fn check(&mut self, done: u64) -> Option<String> {
        match self {
            Deadline::Until { at, call, limit } => (Instant::now() >= *at).then(|| {
                format!("{call} ran past its {} s deadline (the backend's control_timeout)", limit.as_secs_f64())
            }),
            Deadline::NoProgress { limit, seen, since } => {
                if done != *seen {
                    (*seen, *since) = (done, Instant::now());
                    None
                } else {
                    (since.elapsed() >= *limit)
                        .then(|| format!("no progress for {} s (the backend's call_timeout)", limit.as_secs_f64()))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_calls_end_at_their_deadline_and_data_calls_when_they_stall() {
        let mut d = Deadline::control("delete", Duration::from_millis(30));
        assert!(d.check(0).is_none());
        std::thread::sleep(Duration::from_millis(40));
        assert!(d.check(0).unwrap().contains("delete ran past its 0.03 s deadline"));

        let mut d = Deadline::no_progress(Duration::from_millis(30), 0);
        for done in 1..5 {
            std::thread::sleep(Duration::from_millis(15));
            assert!(d.check(done).is_none(), "moving keeps it alive");
        }
        std::thread::sleep(Duration::from_millis(40));
        assert!(d.check(4).unwrap().contains("no progress"));
    }
}
