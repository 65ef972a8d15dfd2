//! The backup pipeline: reader threads fill buffers from the source, worker threads
//! hash (SHA-256 per sha block, MD5) and compress each chunk, and the consumer takes
//! chunks back in volume order.
//!
//! ```text
//! source ──readers──> [work queue, bounded] ──workers (N)──> [done queue, bounded] ──reorder──> next()
//!    ^                                            │                                        │
//!    └── read buffers ◄───────────────────────────┴── output buffers ◄── pieces dropped ───┘
//! ```
//!
//! The window is the memory bound: readers start a chunk only while it is fewer than
//! `window` chunks ahead of the consumer, and each chunk holds at most its read buffer
//! (its raw pieces are slices of it) and one output buffer (its compressed pieces).
//! Buffers are recycled through pools and unmapped when the stream ends.
//! All-zero chunks (holes, or zeros read) cost no hashing or compressing: their
//! digests and compressed form are computed once per length and reused.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, bounded};

use crate::buffer::AlignedBuf;
use crate::codec::{CodecError, Compression, Compressor};
use crate::digest::Sha256Digest;
use crate::piece::{BufPool, PooledBuf, ProcessedChunk, ZeroCache, process};
pub use crate::plan::{ChangeSource, DEFAULT_DIFF_CHECK};
use crate::plan::{Planned, plan_checked};
pub use crate::timing::StreamTiming;
use crate::timing::Timing;
use holdfast_types::Extent;

/// What a source reports about one read.
#[derive(Debug, Clone, Copy, Default)]
pub struct SourceRead {
    /// The source knows the whole range is unallocated (a hole): the buffer was zeroed, not read.
    pub hole: bool,
}

/// Something the pipeline can read a volume from (implemented by holdfast-volume).
pub trait ChunkSource: Send + Sync + 'static {
    fn size(&self) -> u64;
    /// Fill `buf` (its length is the chunk length) with the bytes at `offset`.
    fn read_chunk(&self, offset: u64, buf: &mut AlignedBuf) -> io::Result<SourceRead>;
    /// The ranges that may hold data, in order; `None` when the source cannot tell.
    fn extents(&self) -> io::Result<Option<Vec<Extent>>> {
        Ok(None)
    }
    /// The ranges changed since the snapshot `since` of this volume; `None` when the
    /// source cannot tell (plain files: the digests find the changes).
    fn changed_extents(&self, _since: &str) -> io::Result<Option<Vec<Extent>>> {
        Ok(None)
    }
    /// [`ChunkSource::changed_extents`] as it is found: `each` gets the changes span by
    /// span, in order (perhaps none in a span), and returns false to stop early. False
    /// when the source cannot tell.
    fn changed_extents_by_span(&self, since: &str, each: &mut dyn FnMut(Vec<Extent>) -> bool) -> io::Result<bool> {
        Ok(self.changed_extents(since)?.map(each).is_some())
    }
    /// Reads to keep in flight: a local disk wants a few, a network volume (RBD, each
    /// request a round trip to an OSD) many.
    fn readers(&self) -> usize {
        READERS
    }
    /// Fill several buffers at once (each its own chunk). A network volume overrides it
    /// to put every request in flight together.
    fn read_batch(&self, reads: &mut [(u64, &mut AlignedBuf)]) -> io::Result<()> {
        for (offset, buf) in reads.iter_mut() {
            self.read_chunk(*offset, buf)?;
        }
        Ok(())
    }
    /// The volume backend it reads (`file`, `rbd`): a Ceph driver moves only the diff
    /// when it is `rbd`.
    fn backend(&self) -> &'static str {
        "file"
    }
}

#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// The object size: no stored piece is longer (compressed zeros aside, see
    /// `piece::split_at_objects`). Reads may cover several ([`LANE_READ`]).
    pub chunk_size: u64,
    pub sha_block_size: u32,
    pub compression: Compression,
    pub md5: bool,
    /// Hashing/compressing threads.
    pub workers: usize,
    /// The parent backup's digest per sha block (incremental backups): matching
    /// blocks are not stored.
    pub parent: Option<Arc<Vec<Sha256Digest>>>,
    /// Read only these ranges (widened to sha blocks, merged); the whole volume when `None`.
    /// With `parent` they are the ranges changed since it: everything else comes back
    /// as unchanged chunks carrying the parent's digests, without being read.
    pub extents: Option<Vec<Extent>>,
    /// With `extents` and `parent`: the fraction of the blocks said to be unchanged
    /// that is read anyway and checked against the parent's digests before anything
    /// else. One mismatch and the whole volume is read instead (change tracking has
    /// had bugs; a wrong incremental must never be silent).
    pub diff_check: f64,
    /// Which digests of each piece's stored (compressed) bytes the workers compute
    /// ahead: what an object store checks a payload with
    /// ([`ProcessedChunk::stored_digests`], [`ProcessedChunk::stored_md5`]).
    pub stored_hashes: StoredHashes,
}

/// The digests of stored bytes a backend's uploads carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoredHashes {
    /// None (a local store).
    #[default]
    None,
    /// MD5 alone: Swift's `ETag`.
    Md5,
    /// SHA-256 and MD5: S3's signed payload hash and `Content-MD5`.
    Sha256AndMd5,
}

impl StoredHashes {
    pub fn any(self) -> bool {
        self != StoredHashes::None
    }

    pub fn sha256(self) -> bool {
        self == StoredHashes::Sha256AndMd5
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("invalid read options: {0}")]
    Options(String),
    #[error("reading the volume at offset {offset}: {source}")]
    Read { offset: u64, source: io::Error },
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("pipeline thread failed: {0}")]
    Thread(String),
}

type Done = (u64, Result<Vec<ProcessedChunk>, PipelineError>);

/// Chunks of a volume in order. Dropping it stops the threads.
pub struct ChunkStream {
    done: Receiver<Done>,
    /// Reads handed out so far; readers stay within a window of it.
    consumed: Arc<AtomicU64>,
    pending: BTreeMap<u64, Vec<ProcessedChunk>>,
    /// Pieces of the current read, handed out front to back.
    ready: std::collections::VecDeque<ProcessedChunk>,
    next_seq: u64,
    total: u64,
    stop: Arc<AtomicBool>,
    change_source: ChangeSource,
    timing: Arc<Timing>,
    started: Instant,
    _threads: Vec<JoinHandle<()>>,
}

impl ChunkStream {
    pub fn start(source: Arc<dyn ChunkSource>, opts: ReadOptions) -> Result<ChunkStream, PipelineError> {
        let block = u64::from(opts.sha_block_size);
        if block < MIN_SHA_BLOCK {
            return Err(PipelineError::Options(format!(
                "sha block size {block} is under the host's minimum of {MIN_SHA_BLOCK} bytes"
            )));
        }
        if opts.chunk_size == 0 || !opts.chunk_size.is_multiple_of(block) {
            return Err(PipelineError::Options(format!(
                "chunk size {} is not a multiple of the sha block size {}",
                opts.chunk_size, opts.sha_block_size
            )));
        }
        if opts.chunk_size > MAX_CHUNK_SIZE {
            return Err(PipelineError::Options(format!(
                "chunk size {} is over the host's limit of {MAX_CHUNK_SIZE} bytes",
                opts.chunk_size
            )));
        }
        let workers = opts.workers.max(1);
        let size = source.size();
        let read_size = read_size(&opts);
        let (plan, change_source) = plan_checked(source.as_ref(), &opts, read_size, size, block)?;
        let reads = Arc::new(plan);
        let total = reads.len() as u64;
        // Memory is bounded by the window: reads may run at most `window` chunks ahead of
        // the consumer, and each holds at most its read buffer (raw pieces keep slices of
        // it) and one output buffer (its compressed pieces), until the consumer drops
        // the pieces: up to 2 × window chunks, plus one read per piece a consumer keeps
        // (the SDK drops each at once). Big chunks (object stores' 50 MiB objects) take
        // fewer readers, so the read buffers alone stay near PIPELINE_BYTES.
        let fit = usize::try_from(PIPELINE_BYTES / read_size).unwrap_or(usize::MAX);
        // A scan against a parent hashes and compares, nothing more: it keeps up with
        // the disk, so a read in flight while the last one is handed on counts there.
        let wanted = if opts.parent.is_some() { source.readers().max(SCAN_READERS) } else { source.readers() };
        let readers = wanted.clamp(1, MAX_READERS).min(fit.saturating_sub(workers + 1).max(1));
        // A full backup's window holds one read beyond those at work (readers, workers,
        // the consumer's), so that a worker done with its read finds the next one
        // waiting while the consumer stores in bursts (a file per object): an 8 MiB read
        // is ~3 ms of disk, and the workers had sat idle ~0.5 s of a 1 GiB backup's
        // 1.1 s. Taking turns with and without it (`holdfast bench --rounds 3
        // --no-restic`, 9 and 15 rounds): 1,072 against 946 MB/s, 1.65 against 1.83
        // CPU-s per GiB, peaks 109 against 96 MiB. Not for a scan (bound by the disk,
        // its four readers already ahead) nor for big objects (object stores' 50 MiB),
        // where a read more is 100 MiB more.
        let spare = u64::from(opts.parent.is_none() && read_size <= LANE_READ);
        let window = (readers + workers + 1) as u64 + spare;
        let buf_len = usize::try_from(read_size).expect("at most LANE_READ or MAX_CHUNK_SIZE");
        let reads_pool = BufPool::new(buf_len, window as usize + 1);
        let outputs = BufPool::new(buf_len, window as usize);
        let (work_tx, work_rx) = bounded::<(u64, u64, PooledBuf, SourceRead)>(workers);
        let (done_tx, done_rx) = bounded::<Done>(workers + readers);
        let stop = Arc::new(AtomicBool::new(false));
        let consumed = Arc::new(AtomicU64::new(0));
        let zeros = Arc::new(ZeroCache::new(block as usize));
        let timing = Arc::new(Timing::default());

        let mut threads = Vec::new();
        for r in 0..readers as u64 {
            let (stop, done_tx, source, consumed) = (stop.clone(), done_tx.clone(), source.clone(), consumed.clone());
            let reads = reads.clone();
            let opts_parent = opts.parent.clone();
            let (reads_pool, work_tx, timing) = (reads_pool.clone(), work_tx.clone(), timing.clone());
            let spawn = std::thread::Builder::new().name(format!("hf-read-{r}")).spawn(move || {
                crate::priority::lower_this_thread();
                // Reader r takes chunks r, r + readers, …: several requests in flight.
                for seq in (r..total).step_by(readers) {
                    let held = Instant::now();
                    while seq >= consumed.load(Ordering::Acquire) + window {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        std::thread::sleep(std::time::Duration::from_micros(200));
                    }
                    timing.window.add_since(held);
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let Extent { offset, len } = match reads[seq as usize] {
                        Planned::Read(e) => e,
                        Planned::Skip(e) => {
                            let parent = opts_parent.as_ref().expect("skips are planned only with a parent");
                            let first = (e.offset / block) as usize;
                            let sha256s = parent[first..first + e.len.div_ceil(block) as usize].to_vec();
                            let chunk = ProcessedChunk::skipped(e.offset, e.len, sha256s);
                            if done_tx.send((seq, Ok(vec![chunk]))).is_err() {
                                return;
                            }
                            continue;
                        }
                    };
                    let mut buf = reads_pool.take();
                    buf.set_len(len as usize);
                    let reading = Instant::now();
                    let read = source.read_chunk(offset, &mut buf);
                    timing.reading.add_since(reading);
                    match read {
                        Ok(read) => {
                            if work_tx.send((seq, offset, buf, read)).is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            let _ = done_tx.send((seq, Err(PipelineError::Read { offset, source: e })));
                            return;
                        }
                    }
                }
            });
            threads.push(spawn.map_err(|e| PipelineError::Thread(e.to_string()))?);
        }
        drop(work_tx);
        for i in 0..workers {
            let (work_rx, done_tx, zeros, stop) = (work_rx.clone(), done_tx.clone(), zeros.clone(), stop.clone());
            let (outputs, timing) = (outputs.clone(), timing.clone());
            let opts = opts.clone();
            let spawn = std::thread::Builder::new().name(format!("hf-hash-{i}")).spawn(move || {
                crate::priority::lower_this_thread();
                let mut compressor = Compressor::new();
                let mut idle = Instant::now();
                while let Ok((seq, offset, buf, read)) = work_rx.recv() {
                    timing.idle.add_since(idle);
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let busy = Instant::now();
                    let result = process(&mut compressor, &zeros, &opts, offset, buf, read, &outputs);
                    timing.busy.add_since(busy);
                    idle = Instant::now();
                    if done_tx.send((seq, result)).is_err() {
                        return;
                    }
                }
            });
            threads.push(spawn.map_err(|e| PipelineError::Thread(e.to_string()))?);
        }
        Ok(ChunkStream {
            done: done_rx,
            consumed,
            pending: BTreeMap::new(),
            ready: Default::default(),
            next_seq: 0,
            total,
            stop,
            change_source,
            timing,
            started: Instant::now(),
            _threads: threads,
        })
    }

    /// How this read finds what changed.
    pub fn change_source(&self) -> &ChangeSource {
        &self.change_source
    }

    /// Where the stream's time has gone so far.
    pub fn timing(&self) -> StreamTiming {
        self.timing.since(self.started)
    }

    /// Number of reads the volume is cut into.
    pub fn chunk_count(&self) -> u64 {
        self.total
    }

    /// The next chunk in volume order, or `None` after the last one.
    pub fn next_chunk(&mut self) -> Result<Option<ProcessedChunk>, PipelineError> {
        loop {
            if let Some(c) = self.ready.pop_front() {
                return Ok(Some(c));
            }
            if self.next_seq >= self.total {
                return Ok(None);
            }
            if let Some(pieces) = self.pending.remove(&self.next_seq) {
                self.next_seq += 1;
                self.consumed.store(self.next_seq, Ordering::Release);
                self.ready.extend(pieces);
                continue;
            }
            let waiting = Instant::now();
            let done = self.done.recv();
            self.timing.waiting.add_since(waiting);
            match done {
                Ok((_, Err(e))) => {
                    // A read error stops the reader: report it now, whatever its position.
                    self.next_seq = self.total;
                    return Err(e);
                }
                Ok((seq, Ok(pieces))) => {
                    self.pending.insert(seq, pieces);
                }
                Err(_) => return Err(PipelineError::Thread("pipeline threads exited early".into())),
            }
        }
    }
}

impl Drop for ChunkStream {
    fn drop(&mut self) {
        // The threads exit on their own: workers when `done` closes, the reader on
        // `stop` or when the work queue closes. Buffers return to their pools as the
        // queues drop, so nothing stays blocked.
        self.stop.store(true, Ordering::Relaxed);
        self.timing().log(self.next_seq, self.total);
    }
}

/// Reader threads for a local file: one 8 MiB O_DIRECT read at a time keeps this
/// machine's disk at its ceiling (the kernel splits it into many requests); a second
/// reader bought nothing measurable and cost two more 8 MiB buffers in the window
/// (`holdfast bench`, 3 rounds each way: 669–680 against 593–657 MB/s, 145 against
/// 163–167 MiB peak).
pub const READERS: usize = 1;

/// Reader threads at least, for an incremental (a parent's digests to compare with):
/// unchanged reads are dropped as soon as they are hashed, and the scan is bound by
/// the disk, not the cores. Four reads of [`SCAN_READ`] keep 16 MiB in flight, as two
/// 8 MiB reads did, in a window of 4 MiB buffers (32 MiB of them instead of 48; a full
/// backup's window has one read more, a scan's does not).
pub const SCAN_READERS: usize = 4;

/// What one read of a scan against a parent covers (whole objects, up to this much):
/// half of [`LANE_READ`], so that the scan's readers and window hold half the memory;
/// an incremental's changed objects are few, and four MD5 lanes serve them.
pub const SCAN_READ: u64 = 4 << 20;

/// What the read buffers may take together before readers are cut (never below one).
pub const PIPELINE_BYTES: u64 = 256 << 20;

/// Most reader threads a source may ask for.
pub const MAX_READERS: usize = 32;

/// Smallest sha block a reader accepts: a 1-byte block would make 32 bytes of
/// digests per byte read (Cinder's default is 32 KiB).
pub const MIN_SHA_BLOCK: u64 = 4096;

/// Host limit on one chunk: bounds the window's memory at 2 × (readers + workers + 1) × this
/// (a full backup's reads of up to [`LANE_READ`] have one more in the window).
pub const MAX_CHUNK_SIZE: u64 = 64 << 20;

/// What one read covers when objects need an MD5 each: a whole number of objects,
/// up to this much. An MD5 is one chain of dependent steps; eight objects of one read
/// go through the eight lanes of [`crate::md5_lanes`] together, where one object per
/// read left seven lanes idle.
pub const LANE_READ: u64 = 8 << 20;

/// The length of one read: [`LANE_READ`] ([`SCAN_READ`] against a parent) worth of
/// whole objects (chunks) when their MD5s are wanted, else one chunk (an RBD source
/// batches its own reads).
pub(crate) fn read_size(opts: &ReadOptions) -> u64 {
    let lanes = if opts.parent.is_some() { SCAN_READ } else { LANE_READ };
    if opts.md5 && opts.chunk_size < lanes { opts.chunk_size * (lanes / opts.chunk_size) } else { opts.chunk_size }
}

#[cfg(test)]
mod tests;
