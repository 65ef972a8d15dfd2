//! When a driver call must stop, and the watch that stops it. A call into a guest
//! runs as an async wasmtime call beside a watchdog: guest code yields at every epoch
//! tick and WASI calls (a sleep, a poll) are futures, so whichever comes first — the
//! call's end or the watchdog's reason — ends it; a stopped call's future is dropped
//! with the instance. A guest spinning without calling the host and a guest blocked
//! in a WASI call are stopped alike, within a tick of the limit.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::limits::{CANCEL_GRACE, EPOCH_TICK};

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

/// The limits on one instance's calls, watched from outside its store.
#[derive(Clone)]
pub struct Watch {
    deadline: Arc<Mutex<Deadline>>,
    done: Arc<AtomicU64>,
    cancel: Arc<AtomicBool>,
}

impl Watch {
    pub fn new(deadline: Deadline, done: Arc<AtomicU64>, cancel: Arc<AtomicBool>) -> Self {
        Watch { deadline: Arc::new(Mutex::new(deadline)), done, cancel }
    }

    /// The limit for the next call.
    pub fn set(&self, deadline: Deadline) {
        *self.deadline.lock().expect("deadline lock") = deadline;
    }

    /// Volume bytes moved so far.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Resolves with the reason once the call must stop: its deadline, or a
    /// cancellation it did not obey within the grace period (time to clean up).
    async fn expired(&self) -> String {
        let mut cancelled_at: Option<Instant> = None;
        loop {
            tokio::time::sleep(EPOCH_TICK).await;
            if let Some(why) = self.deadline.lock().expect("deadline lock").check(self.done()) {
                return why;
            }
            if self.cancel.load(Ordering::Relaxed)
                && cancelled_at.get_or_insert_with(Instant::now).elapsed() > CANCEL_GRACE
            {
                return "cancelled by the host".into();
            }
        }
    }

    /// Run one call into the guest until it ends or must stop.
    pub fn run<T>(&self, call: impl Future<Output = wasmtime::Result<T>>) -> wasmtime::Result<T> {
        wasmtime_wasi::runtime::in_tokio(async {
            tokio::select! {
                r = call => r,
                why = self.expired() => Err(wasmtime::Error::msg(why)),
            }
        })
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
