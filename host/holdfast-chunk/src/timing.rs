//! Where a read stream's time goes, summed over its threads: whether a slow backup
//! waits on the disk, on the cores, or on the driver and its store. The pipeline
//! counts; `StreamTiming::log` reports when the stream ends
//! (`HOLDFAST_LOG=holdfast_chunk=debug`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The pipeline's counters, shared by its threads.
#[derive(Debug, Default)]
pub(crate) struct Timing {
    /// Readers in `read_chunk`.
    pub(crate) reading: AtomicNanos,
    /// Readers waiting for the consumer to move the window on.
    pub(crate) window: AtomicNanos,
    /// Workers hashing and compressing.
    pub(crate) busy: AtomicNanos,
    /// Workers waiting for a read.
    pub(crate) idle: AtomicNanos,
    /// The consumer waiting for the next read in volume order.
    pub(crate) waiting: AtomicNanos,
}

impl Timing {
    /// The figures so far, for a stream that began at `started`.
    pub(crate) fn since(&self, started: Instant) -> StreamTiming {
        StreamTiming {
            elapsed: started.elapsed(),
            reading: self.reading.get(),
            window_full: self.window.get(),
            workers_busy: self.busy.get(),
            workers_idle: self.idle.get(),
            consumer_waiting: self.waiting.get(),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct AtomicNanos(AtomicU64);

impl AtomicNanos {
    pub(crate) fn add_since(&self, start: Instant) {
        self.0.fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }

    fn get(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::Relaxed))
    }
}

/// [`crate::pipeline::ChunkStream::timing`]: each figure summed over the threads doing
/// it. A reader blocked on a full work queue is counted nowhere, a worker blocked
/// handing on its result counts as idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamTiming {
    /// Since the stream started.
    pub elapsed: Duration,
    /// Reading the source.
    pub reading: Duration,
    /// Readers held back by the window (the consumer or a slow read ahead of them).
    pub window_full: Duration,
    /// Workers hashing and compressing.
    pub workers_busy: Duration,
    /// Workers with nothing to do.
    pub workers_idle: Duration,
    /// The consumer waiting for the next piece; the rest of `elapsed` it spent on its
    /// own work (a driver storing the pieces).
    pub consumer_waiting: Duration,
}

impl StreamTiming {
    /// The "pipeline timing" debug line of a stream that handed out `reads` of `of`.
    pub(crate) fn log(&self, reads: u64, of: u64) {
        let ms = |d: Duration| d.as_millis() as u64;
        tracing::debug!(
            reads,
            of,
            elapsed_ms = ms(self.elapsed),
            reading_ms = ms(self.reading),
            window_full_ms = ms(self.window_full),
            workers_busy_ms = ms(self.workers_busy),
            workers_idle_ms = ms(self.workers_idle),
            consumer_waiting_ms = ms(self.consumer_waiting),
            consumer_working_ms = ms(self.elapsed.saturating_sub(self.consumer_waiting)),
            "pipeline timing"
        );
    }
}

/// Where a restore's time goes, summed over its workers (`RestoreWriter`); logged as
/// "restore timing" at each flush (`HOLDFAST_LOG=holdfast_chunk=debug`).
#[derive(Debug, Default)]
pub(crate) struct RestoreTiming {
    /// The driver handing objects to the workers: waiting while every worker is busy
    /// and the queue full (a send that finds room takes microseconds).
    pub(crate) queueing: AtomicNanos,
    /// Workers decompressing and checking.
    pub(crate) unpacking: AtomicNanos,
    /// Workers writing to the volume.
    pub(crate) writing: AtomicNanos,
}

impl RestoreTiming {
    /// The line for `objects` queued to `workers` since `started`; the workers' idle
    /// time is what their unpacking and writing leave of it.
    pub(crate) fn log(&self, started: Instant, workers: usize, objects: u64) {
        let ms = |d: Duration| d.as_millis() as u64;
        let elapsed = started.elapsed();
        let busy = self.unpacking.get() + self.writing.get();
        tracing::debug!(
            objects,
            workers,
            elapsed_ms = ms(elapsed),
            driver_queueing_ms = ms(self.queueing.get()),
            workers_unpacking_ms = ms(self.unpacking.get()),
            workers_writing_ms = ms(self.writing.get()),
            workers_idle_ms = ms((elapsed * workers as u32).saturating_sub(busy)),
            "restore timing"
        );
    }
}
