//! The `instances` grant: at most N instances of a backend's driver run at once;
//! further calls wait on their data thread until one ends.

use std::sync::{Arc, Condvar, Mutex};

#[derive(Debug)]
pub struct InstanceGate {
    free: Mutex<u32>,
    freed: Condvar,
}

/// One running instance; dropping it frees the place.
#[derive(Debug)]
pub struct InstancePermit(Arc<InstanceGate>);

impl InstanceGate {
    pub fn new(places: u32) -> Arc<InstanceGate> {
        Arc::new(InstanceGate { free: Mutex::new(places.max(1)), freed: Condvar::new() })
    }

    pub fn enter(self: &Arc<Self>) -> InstancePermit {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        InstancePermit(self.clone())
    }
}

impl Drop for InstancePermit {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn no_more_than_n_at_once() {
        let gate = InstanceGate::new(2);
        let (now, peak) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (gate, now, peak) = (gate.clone(), now.clone(), peak.clone());
                std::thread::spawn(move || {
                    let _p = gate.enter();
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    now.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }
}
