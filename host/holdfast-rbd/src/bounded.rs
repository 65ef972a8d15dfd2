//! Calls that may never return. librados's timeouts bound a single request, but librbd
//! can wait for ever on a cluster that died (an open registering its watch, a write
//! waiting for an exclusive lock, a close flushing): [`bounded`] runs such work on a
//! thread of its own and gives up on it when it goes quiet for too long.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::RbdError;

/// Beaten by long work (a transfer, per piece) to say it still moves; work that never
/// beats must finish within the quiet limit.
#[derive(Clone)]
pub struct Heartbeat {
    start: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Heartbeat {
    fn new() -> Heartbeat {
        Heartbeat { start: Instant::now(), last_ms: Arc::new(AtomicU64::new(0)) }
    }

    pub fn beat(&self) {
        self.last_ms.store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn quiet_for(&self) -> Duration {
        self.start.elapsed().saturating_sub(Duration::from_millis(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// Run `work` on its own thread; fail with [`RbdError::Stalled`] naming `what` when it
/// neither finishes nor beats its [`Heartbeat`] for `quiet`.
///
/// A stalled call cannot be taken back: its thread, and every handle `work` owns, are
/// left to it (freed if it ever returns) and the caller goes on. So `work` must own
/// what it touches, images included, and drop them itself.
pub fn bounded<T, E>(
    what: &str,
    quiet: Duration,
    work: impl FnOnce(&Heartbeat) -> Result<T, E> + Send + 'static,
) -> Result<T, E>
where
    T: Send + 'static,
    E: From<RbdError> + Send + 'static,
{
    let beat = Heartbeat::new();
    let (tx, rx) = mpsc::sync_channel(1);
    let theirs = beat.clone();
    std::thread::Builder::new()
        .name("hf-rbd-call".into())
        .spawn(move || {
            let _ = tx.send(work(&theirs));
        })
        .map_err(|e| E::from(RbdError::Invalid(format!("{what}: starting a thread: {e}"))))?;
    loop {
        let wait = quiet.saturating_sub(beat.quiet_for()).max(Duration::from_millis(10));
        match rx.recv_timeout(wait) {
            Ok(r) => return r,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(E::from(RbdError::Invalid(format!("{what}: the call's thread panicked"))));
            }
            Err(mpsc::RecvTimeoutError::Timeout) if beat.quiet_for() >= quiet => {
                return Err(E::from(RbdError::Stalled { what: what.to_owned(), after: quiet }));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: Duration = Duration::from_millis(200);

    #[test]
    fn answers_come_back_and_silence_fails() {
        assert_eq!(bounded::<_, RbdError>("quick", Q, |_| Ok(7)).unwrap(), 7);
        let t = Instant::now();
        let e = bounded::<(), RbdError>("stuck", Q, |_| {
            std::thread::sleep(Duration::from_secs(5));
            Ok(())
        })
        .unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert!(e.is_stalled(), "{e}");
        assert!(e.to_string().contains("stuck"), "{e}");
    }

    #[test]
    fn beating_work_runs_past_the_quiet_limit() {
        let r = bounded::<_, RbdError>("busy", Q, |beat| {
            for _ in 0..8 {
                std::thread::sleep(Duration::from_millis(60));
                beat.beat();
            }
            Ok("done")
        });
        assert_eq!(r.unwrap(), "done");
    }

    #[test]
    fn a_panic_is_an_error_not_a_hang() {
        // Patient: printing the panic's backtrace can take longer than Q.
        let e = bounded::<(), RbdError>("boom", Duration::from_secs(30), |_| panic!("inside")).unwrap_err();
        assert!(e.to_string().contains("panicked"), "{e}");
    }
}
