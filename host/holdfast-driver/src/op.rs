//! [`OpContext`]: how the host steers and observes one driver operation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

/// Called with (container, object prefix) when a driver records where its objects go;
/// an `Err` refuses the location (the runtime stops the driver with the reason).
pub type LocationCallback = Box<dyn FnMut(&str, &str) -> Result<(), String> + Send>;

pub struct OpContext {
    /// Set to stop the operation; a driver that never looks is interrupted by its runtime.
    pub cancel: Arc<AtomicBool>,
    /// Bytes of volume processed so far (holes and zero runs included: progress).
    pub done: Arc<AtomicU64>,
    /// Bytes of data actually read from or written to the volume (holes and all-zero
    /// runs excluded: throughput).
    pub moved: Arc<AtomicU64>,
    /// Called when the driver records where its objects live (persist it before data).
    pub on_location: Option<LocationCallback>,
    /// Host worker threads for hashing/compressing or restoring.
    pub workers: usize,
    /// How the backup's read found what changed (set when it starts reading).
    pub change_source: Arc<std::sync::Mutex<Option<holdfast_chunk::ChangeSource>>>,
    /// Fraction of the blocks a volume's diff calls unchanged that a backup re-reads and
    /// compares (Ceph's diff has had bugs): 0.001 by default, 0 for none.
    pub diff_check: f64,
    /// The request's caller, when there was one and the operation still runs for it.
    pub caller: Option<crate::Caller>,
}

impl Default for OpContext {
    fn default() -> Self {
        OpContext {
            cancel: Arc::new(AtomicBool::new(false)),
            done: Arc::new(AtomicU64::new(0)),
            moved: Arc::new(AtomicU64::new(0)),
            on_location: None,
            workers: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            change_source: Arc::default(),
            diff_check: holdfast_chunk::DEFAULT_DIFF_CHECK,
            caller: None,
        }
    }
}
