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
        let window = (readers + workers + 1) as u64;
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
/// 8 MiB reads did, in a window of 4 MiB buffers (32 MiB of them instead of 48).
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

/// Host limit on one chunk: bounds the window's memory at 2 × (readers + workers + 1) × this.
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
mod tests {
    use super::*;
    use crate::codec::decompress_into;
    use crate::digest;
    use std::time::Duration;

    struct MemSource(Vec<u8>);
    impl ChunkSource for MemSource {
        fn size(&self) -> u64 {
            self.0.len() as u64
        }
        fn read_chunk(&self, offset: u64, buf: &mut AlignedBuf) -> io::Result<SourceRead> {
            let o = offset as usize;
            let n = buf.len();
            buf.copy_from_slice(&self.0[o..o + n]);
            Ok(SourceRead::default())
        }
    }

    fn volume() -> Vec<u8> {
        let mut v = vec![0u8; 1 << 20];
        for (i, b) in v[..262_144].iter_mut().enumerate() {
            *b = (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3];
        }
        v[524_288..600_000].fill(b'x');
        v.truncate(1_000_000); // a short last chunk
        v
    }

    #[test]
    fn chunks_come_back_in_order_with_cinder_digests() {
        let data = volume();
        let opts = ReadOptions {
            chunk_size: 131_072,
            sha_block_size: 32_768,
            compression: Compression::Zstd,
            md5: true,
            workers: 3,
            parent: None,
            extents: None,
            diff_check: DEFAULT_DIFF_CHECK,
            stored_hashes: StoredHashes::None,
        };
        let mut s = ChunkStream::start(Arc::new(MemSource(data.clone())), opts).unwrap();
        let mut rebuilt = Vec::new();
        let mut shas = Vec::new();
        while let Some(c) = s.next_chunk().unwrap() {
            assert_eq!(c.offset, rebuilt.len() as u64);
            let raw = c.read(0, c.length).unwrap();
            assert_eq!(c.md5.unwrap(), digest::md5(&raw));
            let mut out = vec![0u8; c.length as usize];
            decompress_into(c.stored_compression, &c.stored_bytes(), &mut out).unwrap();
            assert_eq!(out, raw);
            shas.extend(c.sha256s.iter().copied());
            rebuilt.extend(raw);
        }
        assert_eq!(rebuilt, data);
        let expected: Vec<_> = data.chunks(32_768).map(digest::sha256).collect();
        assert_eq!(shas, expected);
    }

    #[test]
    fn incompressible_chunks_are_stored_raw() {
        let data = noise(262_144, 0x2545_F491_4F6C_DD1D);
        let opts = ReadOptions {
            chunk_size: 65_536,
            sha_block_size: 32_768,
            compression: Compression::Zstd,
            md5: false,
            workers: 2,
            parent: None,
            extents: None,
            diff_check: DEFAULT_DIFF_CHECK,
            stored_hashes: StoredHashes::None,
        };
        let mut s = ChunkStream::start(Arc::new(MemSource(data)), opts).unwrap();
        let c = s.next_chunk().unwrap().unwrap();
        assert_eq!(c.stored_compression, Compression::None);
        assert_eq!(c.stored_len(), 65_536);
    }

    #[test]
    fn stored_digests_are_of_the_stored_bytes() {
        let mut data: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
        data.extend(vec![0u8; 1 << 20]);
        let cases = [
            (Compression::Zstd, StoredHashes::Sha256AndMd5),
            (Compression::None, StoredHashes::Sha256AndMd5),
            (Compression::Zstd, StoredHashes::Md5),
            (Compression::None, StoredHashes::Md5),
            (Compression::Zstd, StoredHashes::None),
        ];
        for (compression, hashed) in cases {
            let opts = ReadOptions {
                chunk_size: 262_144,
                sha_block_size: 32_768,
                compression,
                md5: true,
                workers: 2,
                parent: None,
                extents: None,
                diff_check: DEFAULT_DIFF_CHECK,
                stored_hashes: hashed,
            };
            let mut s = ChunkStream::start(Arc::new(MemSource(data.clone())), opts).unwrap();
            let mut n = 0;
            while let Some(c) = s.next_chunk().unwrap() {
                let stored = c.stored();
                assert_eq!(
                    c.stored_digests(),
                    (digest::sha256(&stored), digest::md5(&stored)),
                    "{compression:?} {hashed:?}"
                );
                assert_eq!(c.stored_md5(), digest::md5(&stored), "{compression:?} {hashed:?}");
                n += 1;
            }
            // Four objects of data, and the zeros: one compressed piece, or four raw ones.
            assert_eq!(n, if compression == Compression::None { 8 } else { 5 }, "{compression:?} {hashed:?}");
        }
    }

    #[test]
    fn a_read_of_several_objects_cuts_them_on_the_object_grid() {
        // 3 MiB: data, a 1.5 MiB zero stretch from 0.75 MiB, data again; 256 KiB objects.
        let mut data: Vec<u8> = (0..3u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        data[786_432..2_359_296].fill(0);
        for compression in [Compression::Zstd, Compression::None] {
            let opts = ReadOptions { compression, ..zstd_with_md5(262_144, StoredHashes::None) };
            assert_eq!(read_size(&opts), LANE_READ, "32 objects per read");
            let scan = ReadOptions { parent: Some(Arc::new(Vec::new())), ..opts.clone() };
            assert_eq!(read_size(&scan), SCAN_READ, "16 objects per read against a parent");
            let mut s = ChunkStream::start(Arc::new(MemSource(data.clone())), opts).unwrap();
            assert_eq!(s.chunk_count(), 1);
            let mut pieces = Vec::new();
            while let Some(c) = s.next_chunk().unwrap() {
                assert_eq!(c.md5.unwrap(), digest::md5(&data[c.offset as usize..(c.offset + c.length) as usize]));
                assert!(c.stored_len() <= 262_144, "{compression:?}: {} stored bytes", c.stored_len());
                pieces.push((c.offset, c.length, c.is_zero));
            }
            let zeros: Vec<_> = pieces.iter().filter(|p| p.2).map(|p| (p.0, p.1)).collect();
            let data_pieces: Vec<_> = pieces.iter().filter(|p| !p.2).map(|p| (p.0, p.1)).collect();
            assert!(data_pieces.iter().all(|&(o, l)| o % 262_144 == 0 && l == 262_144), "{data_pieces:?}");
            match compression {
                Compression::None => assert_eq!(
                    zeros,
                    [
                        (786_432, 262_144),
                        (1_048_576, 262_144),
                        (1_310_720, 262_144),
                        (1_572_864, 262_144),
                        (1_835_008, 262_144),
                        (2_097_152, 262_144)
                    ]
                ),
                _ => assert_eq!(zeros, [(786_432, 1_572_864)], "compressed zeros stay one piece"),
            }
        }
    }

    /// A full read of `chunk_size` chunks, zstd, with Cinder's MD5 and 32 KiB blocks.
    fn zstd_with_md5(chunk_size: u64, stored_hashes: StoredHashes) -> ReadOptions {
        ReadOptions {
            chunk_size,
            sha_block_size: 32_768,
            compression: Compression::Zstd,
            md5: true,
            workers: 2,
            parent: None,
            extents: None,
            diff_check: DEFAULT_DIFF_CHECK,
            stored_hashes,
        }
    }

    /// Each piece of `s` not unchanged since the parent, with its raw bytes (its MD5
    /// checked against them first).
    fn for_each_changed(s: &mut ChunkStream, data: &[u8], mut each: impl FnMut(&ProcessedChunk, &[u8])) {
        while let Some(c) = s.next_chunk().unwrap() {
            if c.unchanged {
                continue;
            }
            let raw = &data[c.offset as usize..(c.offset + c.length) as usize];
            assert_eq!(c.md5.unwrap(), digest::md5(raw));
            each(&c, raw);
        }
    }

    fn noise(len: usize, mut x: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn changed_extents_off_the_object_grid_stay_within_an_object_each() {
        // An incremental told which extents changed: its reads start where they start
        // (here 96 KiB into the volume), and each stored piece is still at most one object.
        let mut data: Vec<u8> = (0..6u32 << 20).map(|i| (i % 251) as u8).collect();
        let parent: Vec<_> = data.chunks(32_768).map(digest::sha256).collect();
        let changed = Extent { offset: 98_304, len: 3 << 20 };
        data[98_304..98_304 + (3 << 20)].copy_from_slice(&noise(3 << 20, 7));
        let opts = ReadOptions {
            parent: Some(Arc::new(parent)),
            extents: Some(vec![changed]),
            diff_check: 1.0,
            ..zstd_with_md5(1 << 20, StoredHashes::None)
        };
        let mut s = ChunkStream::start(Arc::new(MemSource(data.clone())), opts).unwrap();
        assert_eq!(s.change_source(), &ChangeSource::RbdDiff);
        let mut stored = Vec::new();
        for_each_changed(&mut s, &data, |c, _| {
            assert!(c.length <= 1 << 20 && c.stored_len() <= 1 << 20, "{} at {}", c.length, c.offset);
            stored.push((c.offset, c.length));
        });
        let o = 98_304;
        assert_eq!(stored, [(o, 1 << 20), (o + (1 << 20), 1 << 20), (o + (2 << 20), 1 << 20)]);
    }

    #[test]
    fn a_short_incompressible_tail_is_stored_whole() {
        // The volume ends 40,000 bytes into a sha block, in random bytes.
        let mut data: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
        data.extend(noise(40_000, 3));
        let mut s =
            ChunkStream::start(Arc::new(MemSource(data.clone())), zstd_with_md5(1 << 20, StoredHashes::Md5)).unwrap();
        let mut tail = None;
        // A full read: every piece is a changed one.
        for_each_changed(&mut s, &data, |c, raw| {
            let mut out = vec![0u8; raw.len()];
            decompress_into(c.stored_compression, &c.stored(), &mut out).unwrap();
            assert_eq!(out, raw);
            assert_eq!(c.stored_md5(), digest::md5(&c.stored()));
            tail = Some((c.offset, c.length, c.stored_compression));
        });
        assert_eq!(tail, Some((1 << 20, 40_000, Compression::None)));
    }

    #[test]
    fn long_zero_stretches_become_their_own_chunks() {
        let mut data = vec![7u8; 4 << 20];
        data[(1 << 20)..(3 << 20)].fill(0);
        data[(3 << 20) + 100] = 0; // a zero byte inside data is just data
        data[(3 << 20) + 40_000..(3 << 20) + 80_000].fill(0); // short zero run: stays inside
        let opts = zstd_with_md5(4 << 20, StoredHashes::None);
        let mut s = ChunkStream::start(Arc::new(MemSource(data.clone())), opts).unwrap();
        let mut pieces = Vec::new();
        while let Some(c) = s.next_chunk().unwrap() {
            pieces.push((c.offset, c.length, c.is_zero));
            let raw = &data[c.offset as usize..(c.offset + c.length) as usize];
            assert_eq!(c.md5.unwrap(), digest::md5(raw));
            assert_eq!(c.sha256s, raw.chunks(32_768).map(digest::sha256).collect::<Vec<_>>());
        }
        assert_eq!(pieces, [(0, 1 << 20, false), (1 << 20, 2 << 20, true), (3 << 20, 1 << 20, false)]);
    }

    #[test]
    fn raw_and_compressed_pieces_of_one_read_keep_their_own_bytes() {
        // One read: random (stored raw, a slice of the read buffer), zeros (a piece of
        // their own), text (compressed into the read's output buffer), random again.
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut random = |n: usize| -> Vec<u8> {
            (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 32) as u8
                })
                .collect()
        };
        let mut data = random(1 << 20);
        data.extend(vec![0u8; 2 << 20]);
        data.extend(b"the backup of a volume ".iter().cycle().take(1 << 20));
        data.extend(random(1 << 20));
        let opts = zstd_with_md5(8 << 20, StoredHashes::Md5);
        for _ in 0..3 {
            // Several streams: buffers come back from the pools between them.
            let mut s = ChunkStream::start(Arc::new(MemSource(data.clone())), opts.clone()).unwrap();
            let mut got = Vec::new();
            while let Some(c) = s.next_chunk().unwrap() {
                let raw = &data[c.offset as usize..(c.offset + c.length) as usize];
                let mut out = vec![0u8; c.length as usize];
                decompress_into(c.stored_compression, &c.stored(), &mut out).unwrap();
                assert_eq!(out, raw, "piece at {}", c.offset);
                assert_eq!(c.md5.unwrap(), digest::md5(raw));
                assert_eq!(c.stored_md5(), digest::md5(&c.stored()));
                got.push((c.offset, c.length, c.stored_compression));
            }
            assert_eq!(
                got,
                [
                    (0, 1 << 20, Compression::None),
                    (1 << 20, 2 << 20, Compression::Zstd),
                    (3 << 20, 2 << 20, Compression::Zstd)
                ]
            );
        }
    }

    #[test]
    fn incremental_reads_store_only_changed_runs() {
        let mut data = vec![0u8; 2 << 20];
        for (i, b) in data.iter_mut().enumerate() {
            *b = (i % 251) as u8;
        }
        let parent: Vec<_> = data.chunks(32_768).map(digest::sha256).collect();
        data[40_000] ^= 1; // block 1
        data[100_000..110_000].fill(9); // blocks 3
        data[(1 << 20) + 5] ^= 1; // block 32, in the second read
        let opts = ReadOptions {
            chunk_size: 1 << 20,
            sha_block_size: 32_768,
            compression: Compression::Zstd,
            md5: true,
            workers: 2,
            parent: Some(Arc::new(parent)),
            extents: None,
            diff_check: DEFAULT_DIFF_CHECK,
            stored_hashes: StoredHashes::None,
        };
        let mut s = ChunkStream::start(Arc::new(MemSource(data.clone())), opts).unwrap();
        let (mut changed, mut shas) = (Vec::new(), Vec::new());
        while let Some(c) = s.next_chunk().unwrap() {
            shas.extend(c.sha256s.iter().copied());
            if !c.unchanged {
                changed.push((c.offset, c.length));
                assert_eq!(c.md5.unwrap(), digest::md5(&data[c.offset as usize..(c.offset + c.length) as usize]));
            } else {
                assert_eq!(c.stored_len(), 0);
            }
        }
        assert_eq!(changed, [(32_768, 32_768), (98_304, 32_768), (1 << 20, 32_768)]);
        assert_eq!(shas, data.chunks(32_768).map(digest::sha256).collect::<Vec<_>>(), "every block's digest");
    }

    #[test]
    fn short_incompressible_changes_are_stored_raw_and_whole() {
        // Random 32 KiB changes (stored raw, copied out of the read) between compressible
        // ones, for a local store and for an object store's payload digests.
        let mut data: Vec<u8> = (0..2u32 << 20).map(|i| (i % 251) as u8).collect();
        let parent: Vec<_> = data.chunks(32_768).map(digest::sha256).collect();
        for (i, at) in [65_536usize, 196_608, (1 << 20) + 32_768].into_iter().enumerate() {
            data[at..at + 32_768].copy_from_slice(&noise(32_768, 0x9E37_79B9_7F4A_7C15 + i as u64));
        }
        data[500_000] ^= 1;
        for hashes in [StoredHashes::None, StoredHashes::Sha256AndMd5] {
            let opts = ReadOptions { parent: Some(Arc::new(parent.clone())), ..zstd_with_md5(1 << 20, hashes) };
            let mut s = ChunkStream::start(Arc::new(MemSource(data.clone())), opts).unwrap();
            let mut stored = Vec::new();
            for_each_changed(&mut s, &data, |c, raw| {
                let bytes = c.stored();
                let mut out = vec![0u8; raw.len()];
                decompress_into(c.stored_compression, &bytes, &mut out).unwrap();
                assert_eq!(out, raw);
                assert_eq!(c.stored_digests(), (digest::sha256(&bytes), digest::md5(&bytes)));
                stored.push((c.offset, c.stored_compression));
            });
            assert_eq!(
                stored,
                [
                    (65_536, Compression::None),
                    (196_608, Compression::None),
                    (491_520, Compression::Zstd),
                    ((1 << 20) + 32_768, Compression::None)
                ],
                "{hashes:?}"
            );
        }
    }

    #[test]
    fn timing_tells_a_slow_disk_from_a_slow_consumer() {
        // 8 reads of 1 MiB, no MD5: one read per chunk, one reader, a window of four.
        struct Slow(MemSource, Duration);
        impl ChunkSource for Slow {
            fn size(&self) -> u64 {
                self.0.size()
            }
            fn read_chunk(&self, offset: u64, buf: &mut AlignedBuf) -> io::Result<SourceRead> {
                std::thread::sleep(self.1);
                self.0.read_chunk(offset, buf)
            }
            fn readers(&self) -> usize {
                1
            }
        }
        let opts = ReadOptions { md5: false, ..zstd_with_md5(1 << 20, StoredHashes::None) };
        let data = noise(8 << 20, 5);
        let pause = Duration::from_millis(40);
        // The stream's timing after its first piece and at its end: the first piece's
        // wait (threads starting, a loaded machine) is the same either way.
        let run = |read_pause: Duration, consume_pause: Duration| {
            let source = Slow(MemSource(data.clone()), read_pause);
            let mut s = ChunkStream::start(Arc::new(source), opts.clone()).unwrap();
            let mut first = None;
            while s.next_chunk().unwrap().is_some() {
                first.get_or_insert_with(|| s.timing());
                std::thread::sleep(consume_pause);
            }
            (first.unwrap(), s.timing())
        };
        // A slow disk: the reads take the time, and the consumer waits for them.
        let (_, disk) = run(pause, Duration::ZERO);
        assert!(disk.reading >= pause * 8, "{disk:?}");
        assert!(disk.consumer_waiting >= pause * 6, "{disk:?}");
        assert!(disk.window_full * 4 < disk.consumer_waiting, "{disk:?}");
        // A slow consumer: the reader waits on the window (reads 5 to 7, about a pause
        // each; bounds with room for a loaded machine, where the pipeline's threads run
        // at idle priority), the workers for work; the consumer, once started, little.
        let (first, consumer) = run(Duration::ZERO, pause);
        assert!(consumer.window_full >= pause, "{consumer:?}");
        assert!(consumer.workers_idle >= pause * 2, "{consumer:?}");
        assert!(consumer.consumer_waiting - first.consumer_waiting < consumer.window_full, "{consumer:?}");
        for t in [disk, consumer] {
            assert!(t.workers_busy > Duration::ZERO && t.elapsed >= t.consumer_waiting, "{t:?}");
        }
    }

    #[test]
    fn bad_options_are_refused() {
        let opts = ReadOptions {
            chunk_size: 100_000,
            sha_block_size: 32_768,
            compression: Compression::None,
            md5: false,
            workers: 1,
            parent: None,
            extents: None,
            diff_check: DEFAULT_DIFF_CHECK,
            stored_hashes: StoredHashes::None,
        };
        assert!(ChunkStream::start(Arc::new(MemSource(vec![0; 10])), opts).is_err());
    }

    #[test]
    fn extents_read_only_those_ranges_widened_to_blocks() {
        let data = volume();
        let opts = ReadOptions {
            chunk_size: 131_072,
            sha_block_size: 32_768,
            compression: Compression::None,
            md5: false,
            workers: 2,
            parent: None,
            extents: Some(vec![Extent { offset: 600_000, len: 1 }, Extent { offset: 40_000, len: 300_000 }]),
            diff_check: DEFAULT_DIFF_CHECK,
            stored_hashes: StoredHashes::None,
        };
        let mut s = ChunkStream::start(Arc::new(MemSource(data.clone())), opts).unwrap();
        let mut got = Vec::new();
        while let Some(c) = s.next_chunk().unwrap() {
            got.push((c.offset, c.length));
            assert_eq!(c.read(0, c.length).unwrap(), data[c.offset as usize..(c.offset + c.length) as usize]);
        }
        // [32768, 360448) cut at the chunk size, then the block holding byte 600000.
        assert_eq!(got, [(32_768, 131_072), (163_840, 131_072), (294_912, 65_536), (589_824, 32_768)]);
    }

    #[test]
    fn tiny_sha_blocks_and_odd_chunk_sizes_are_refused() {
        let opts = |chunk_size, sha_block_size| ReadOptions {
            chunk_size,
            sha_block_size,
            compression: Compression::None,
            md5: false,
            workers: 1,
            parent: None,
            extents: None,
            diff_check: DEFAULT_DIFF_CHECK,
            stored_hashes: StoredHashes::None,
        };
        let src = || Arc::new(MemSource(vec![0; 65_536]));
        for (chunk, block) in [(4096, 1), (65_536, 2048), (65_536, 0), (10_000, 4096), (128 << 20, 4096)] {
            assert!(
                matches!(ChunkStream::start(src(), opts(chunk, block)), Err(PipelineError::Options(_))),
                "{chunk} {block}"
            );
        }
        assert!(ChunkStream::start(src(), opts(65_536, 4096)).is_ok());
    }

    /// A source that counts the bytes it is asked for.
    struct Counted(Vec<u8>, AtomicU64);
    impl ChunkSource for Counted {
        fn size(&self) -> u64 {
            self.0.len() as u64
        }
        fn read_chunk(&self, offset: u64, buf: &mut AlignedBuf) -> io::Result<SourceRead> {
            self.1.fetch_add(buf.len() as u64, Ordering::Relaxed);
            let o = offset as usize;
            let n = buf.len();
            buf.copy_from_slice(&self.0[o..o + n]);
            Ok(SourceRead::default())
        }
    }

    fn digests_of(source: Arc<dyn ChunkSource>, opts: ReadOptions) -> (Vec<Sha256Digest>, ChangeSource) {
        let mut s = ChunkStream::start(source, opts).unwrap();
        let mut out = Vec::new();
        let mut next = 0;
        while let Some(c) = s.next_chunk().unwrap() {
            assert_eq!(c.offset, next, "chunks tile the volume");
            next += c.length;
            out.extend(c.sha256s);
        }
        (out, s.change_source().clone())
    }

    #[test]
    fn changed_extents_read_only_the_changes_and_keep_the_parents_digests() {
        let block = 32_768u64;
        let mut data: Vec<u8> = (0..4 << 20).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let opts = |parent: Option<Vec<Sha256Digest>>, extents: Option<Vec<Extent>>, check: f64| ReadOptions {
            chunk_size: 262_144,
            sha_block_size: block as u32,
            compression: Compression::None,
            md5: false,
            workers: 2,
            parent: parent.map(Arc::new),
            extents,
            diff_check: check,
            stored_hashes: StoredHashes::None,
        };
        let (parent, how) = digests_of(Arc::new(MemSource(data.clone())), opts(None, None, 0.0));
        assert_eq!(how, ChangeSource::Full);

        // One block changes; the diff says so.
        data[1_000_000..1_000_100].fill(7);
        let changed = vec![Extent { offset: 1_000_000, len: 100 }];
        let (want, _) = digests_of(Arc::new(MemSource(data.clone())), opts(None, None, 0.0));
        let src = Arc::new(Counted(data.clone(), AtomicU64::new(0)));
        let (got, how) = digests_of(src.clone(), opts(Some(parent.clone()), Some(changed.clone()), 0.001));
        assert_eq!(how, ChangeSource::RbdDiff);
        assert_eq!(got, want, "the new digest list is whole: the parent's where nothing changed");
        let read = src.1.load(Ordering::Relaxed);
        assert!(read <= 2 * block, "read {read} bytes: the changed block and one sampled block");

        // A diff that misses a change: the sampled check (here every block) catches it
        // and the whole volume is read, so the backup is still right.
        data[3_000_000] ^= 0xFF;
        let (want, _) = digests_of(Arc::new(MemSource(data.clone())), opts(None, None, 0.0));
        let src = Arc::new(Counted(data.clone(), AtomicU64::new(0)));
        let (got, how) = digests_of(src.clone(), opts(Some(parent.clone()), Some(changed), 1.0));
        assert_eq!(how, ChangeSource::ShaScan);
        assert_eq!(got, want);

        // A volume grown since the parent: the new part is read, whatever the diff says.
        data.extend(std::iter::repeat_n(9u8, 65_536));
        let (want, _) = digests_of(Arc::new(MemSource(data.clone())), opts(None, None, 0.0));
        let (got, _) = digests_of(Arc::new(MemSource(data)), opts(Some(parent), Some(vec![]), 0.0));
        assert_eq!(got.len(), want.len());
        assert_eq!(got[want.len() - 2..], want[want.len() - 2..]);
    }
}
