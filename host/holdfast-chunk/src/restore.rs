//! The restore writer: drivers queue stored objects, worker threads decompress them,
//! check length (and MD5 when the driver passes one), and write them at their offset.
//! All-zero stretches are not written: on a new (sparse) volume they are already
//! zero, on an existing one the sink punches a hole (Cinder writes them as zeros).
//!
//! Writes of one backup are independent, so workers run them in any order; `flush`
//! is the barrier between the layers of an incremental chain.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::buffer::AlignedBuf;
use crate::codec::{CodecError, Compression, decompress_into};
use crate::digest::{self, hex};
use crate::timing::RestoreTiming;

/// Zero detection granule on restore (Cinder uses 1 MiB; smaller finds more holes).
const GRANULE: usize = 64 * 1024;

/// Something the writer can restore into (implemented by holdfast-volume).
pub trait ChunkSink: Send + Sync + 'static {
    fn size(&self) -> u64;
    /// Write `data` at `offset`. `data` starts 4096-aligned when `offset` is.
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Make `[offset, offset + len)` read as zeros (punch a hole, or write zeros).
    fn zero_range(&self, offset: u64, len: u64) -> io::Result<()>;
    /// Make every completed write durable.
    fn sync(&self) -> io::Result<()>;
    /// The ranges that hold data, when the sink can tell (an RBD image): an empty list
    /// proves the target reads as zeros, so a restore need write only data.
    fn allocated(&self) -> io::Result<Option<Vec<holdfast_types::Extent>>> {
        Ok(None)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("object at offset {offset} with {length} bytes does not fit the {size}-byte volume")]
    OutOfBounds { offset: u64, length: u64, size: u64 },
    #[error("object at offset {offset} with {length} bytes is over the host's limit of {max} bytes per object")]
    TooLarge { offset: u64, length: u64, max: u64 },
    #[error("object at offset {offset}: {source}")]
    Codec { offset: u64, source: CodecError },
    #[error("object at offset {offset}: MD5 {actual} does not match the recorded {expected}")]
    Md5 { offset: u64, expected: String, actual: String },
    #[error("object at offset {offset}: block {block} has SHA-256 {actual}, the sha256file records {expected}")]
    Sha256 { offset: u64, block: u64, expected: String, actual: String },
    #[error("object at offset {offset} with {length} bytes: {reason}")]
    Digests { offset: u64, length: u64, reason: String },
    #[error("writing the volume at offset {offset}: {source}")]
    Write { offset: u64, source: io::Error },
    #[error("syncing the volume: {0}")]
    Sync(io::Error),
    #[error("restore writer stopped: {0}")]
    Stopped(String),
}

pub struct RestoreJob {
    pub offset: u64,
    pub length: u64,
    pub compression: Compression,
    pub data: Vec<u8>,
    /// MD5 of the uncompressed bytes, checked when given.
    pub md5: Option<[u8; 16]>,
    /// SHA-256 of each block of the uncompressed bytes, checked when given.
    pub blocks: Option<BlockDigests>,
}

/// The SHA-256 digests of an object's blocks, as a Cinder sha256file records them.
pub struct BlockDigests {
    pub block_size: u32,
    /// 32-byte values concatenated, one per block; the last block may be short.
    pub digests: Vec<u8>,
}

/// Jobs queued and not yet finished; `flush` waits for zero.
#[derive(Default)]
struct State {
    pending: usize,
}

pub struct RestoreWriter {
    work: Option<Sender<RestoreJob>>,
    /// Jobs' data buffers handed back by the workers, for [`Self::spare_buffer`].
    spare: Receiver<Vec<u8>>,
    /// Set by the first [`Self::spare_buffer`]: until a caller takes buffers back, the
    /// workers free them (a writer fed only fresh buffers would otherwise keep the
    /// first few, 50 MiB each for an object store's objects, to no use).
    recycling: Arc<AtomicBool>,
    /// True until the first flush: later layers of a chain must overwrite with zeros.
    volume_is_new: Arc<AtomicBool>,
    state: Arc<(Mutex<State>, Condvar)>,
    sink: Arc<dyn ChunkSink>,
    written: Arc<AtomicU64>,
    first_error: Arc<Mutex<Option<RestoreError>>>,
    timing: Arc<RestoreTiming>,
    started: Instant,
    queued: AtomicU64,
    workers: usize,
}

impl RestoreWriter {
    pub fn new(sink: Arc<dyn ChunkSink>, workers: usize, volume_is_new: bool) -> io::Result<Self> {
        let workers = workers.max(1);
        let (tx, rx) = bounded::<RestoreJob>(workers);
        // Enough for every job that can be in flight: queued, on a worker, being filled.
        let (spare_tx, spare) = bounded::<Vec<u8>>(2 * workers + 2);
        let recycling = Arc::new(AtomicBool::new(false));
        let state = Arc::new((Mutex::new(State::default()), Condvar::new()));
        let written = Arc::new(AtomicU64::new(0));
        let first_error = Arc::new(Mutex::new(None));
        let is_new = Arc::new(AtomicBool::new(volume_is_new));
        let timing = Arc::new(RestoreTiming::default());
        for i in 0..workers {
            let (is_new, timing) = (is_new.clone(), timing.clone());
            let (rx, state, sink, written, first_error) =
                (rx.clone(), state.clone(), sink.clone(), written.clone(), first_error.clone());
            let (spare_tx, recycling) = (spare_tx.clone(), recycling.clone());
            std::thread::Builder::new().name(format!("hf-restore-{i}")).spawn(move || {
                crate::priority::lower_this_thread();
                let mut buf = AlignedBuf::new(GRANULE);
                while let Ok(job) = rx.recv() {
                    let (offset, length) = (job.offset, job.length);
                    let r = apply(&*sink, &mut buf, &job, is_new.load(Ordering::Relaxed), &timing);
                    if recycling.load(Ordering::Relaxed) {
                        let _ = spare_tx.try_send(job.data);
                    }
                    let (lock, cvar) = &*state;
                    let mut st = lock.lock().expect("restore state lock");
                    match r {
                        Ok(()) => {
                            written.fetch_add(length, Ordering::Relaxed);
                        }
                        Err(e) => {
                            tracing::warn!(offset, length, error = %e, "restore write failed");
                            first_error.lock().expect("error lock").get_or_insert(e);
                        }
                    }
                    st.pending -= 1;
                    cvar.notify_all();
                }
            })?;
        }
        Ok(RestoreWriter {
            work: Some(tx),
            spare,
            recycling,
            volume_is_new: is_new,
            state,
            sink,
            written,
            first_error,
            timing,
            started: Instant::now(),
            queued: AtomicU64::new(0),
            workers,
        })
    }

    pub fn size(&self) -> u64 {
        self.sink.size()
    }

    /// Bytes of objects written so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// An empty buffer for the next job's data: one a worker has finished with, when
    /// there is one. A restore's objects (1 MiB each by default) were each a fresh
    /// allocation freed on a worker's thread, which kept the allocator's pages
    /// churning (and, purged at once, faulting in again for the next object).
    pub fn spare_buffer(&self) -> Vec<u8> {
        self.recycling.store(true, Ordering::Relaxed);
        let mut buf = self.spare.try_recv().unwrap_or_default();
        buf.clear();
        buf
    }

    /// Queue one object. Blocks while every worker is busy (bounded memory).
    pub fn write(&self, job: RestoreJob) -> Result<(), RestoreError> {
        self.check()?;
        // The worker allocates `length` before decompressing: bound it first.
        let max = crate::pipeline::MAX_CHUNK_SIZE;
        if job.length > max {
            return Err(RestoreError::TooLarge { offset: job.offset, length: job.length, max });
        }
        let size = self.sink.size();
        if job.offset.checked_add(job.length).is_none_or(|end| end > size) {
            return Err(RestoreError::OutOfBounds { offset: job.offset, length: job.length, size });
        }
        if let Some(b) = &job.blocks {
            let (offset, length) = (job.offset, job.length);
            let (min, max) = (crate::pipeline::MIN_SHA_BLOCK, crate::pipeline::MAX_CHUNK_SIZE);
            if !(min..=max).contains(&u64::from(b.block_size)) {
                let reason = format!("a block size of {} is outside {min}..={max}", b.block_size);
                return Err(RestoreError::Digests { offset, length, reason });
            }
            let want = length.div_ceil(u64::from(b.block_size)) * 32;
            if b.digests.len() as u64 != want {
                let reason = format!("{} bytes of SHA-256 digests, {want} expected", b.digests.len());
                return Err(RestoreError::Digests { offset, length, reason });
            }
        }
        self.state.0.lock().expect("restore state lock").pending += 1;
        let queueing = Instant::now();
        let sent = self.work.as_ref().map(|w| w.send(job));
        self.timing.queueing.add_since(queueing);
        if !matches!(sent, Some(Ok(()))) {
            self.state.0.lock().expect("restore state lock").pending -= 1;
            return Err(RestoreError::Stopped("workers are gone".into()));
        }
        self.queued.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Wait for every queued object, then make the volume durable.
    pub fn flush(&self) -> Result<(), RestoreError> {
        let (lock, cvar) = &*self.state;
        let mut st = lock.lock().expect("restore state lock");
        while st.pending > 0 {
            st = cvar.wait(st).expect("restore state lock");
        }
        drop(st);
        self.timing.log(self.started, self.workers, self.queued.load(Ordering::Relaxed));
        // Anything written after this point is a later layer: zeros must overwrite.
        self.volume_is_new.store(false, Ordering::Relaxed);
        self.check()?;
        self.sink.sync().map_err(RestoreError::Sync)
    }

    fn check(&self) -> Result<(), RestoreError> {
        let mut slot = self.first_error.lock().expect("error lock");
        match slot.take() {
            Some(e) => {
                // Keep refusing after the first report.
                *slot = Some(RestoreError::Stopped(e.to_string()));
                Err(e)
            }
            None => Ok(()),
        }
    }
}

impl Drop for RestoreWriter {
    fn drop(&mut self) {
        self.work.take();
    }
}

fn zero_md5(len: usize) -> [u8; 16] {
    static CACHE: std::sync::OnceLock<Mutex<std::collections::HashMap<usize, [u8; 16]>>> = std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(d) = cache.lock().expect("md5 cache lock").get(&len) {
        return *d;
    }
    let d = digest::md5_of_zeros(len as u64);
    cache.lock().expect("md5 cache lock").insert(len, d);
    d
}

/// Unpack a job into `buf`, check it (its blocks' SHA-256s or its MD5, when given)
/// and write it.
fn apply(
    sink: &dyn ChunkSink,
    buf: &mut AlignedBuf,
    job: &RestoreJob,
    volume_is_new: bool,
    timing: &RestoreTiming,
) -> Result<(), RestoreError> {
    let (offset, expected) = (job.offset, job.md5);
    let unpacking = Instant::now();
    let unpacked = unpack(buf, job).and_then(|()| check_md5(buf, offset, expected));
    timing.unpacking.add_since(unpacking);
    unpacked?;
    let writing = Instant::now();
    let written = write(sink, buf, offset, volume_is_new);
    timing.writing.add_since(writing);
    written
}

/// An unpacked object against the MD5 its driver passed, if any.
fn check_md5(buf: &[u8], offset: u64, expected: Option<[u8; 16]>) -> Result<(), RestoreError> {
    let Some(expected) = expected else { return Ok(()) };
    // Zero objects are common (the backup pipeline cuts them out): their MD5 is cached.
    let actual = if digest::is_zero(buf) { zero_md5(buf.len()) } else { digest::md5(buf) };
    if actual != expected {
        return Err(RestoreError::Md5 { offset, expected: hex(&expected), actual: hex(&actual) });
    }
    Ok(())
}

/// Decompress a job into `buf` (sized to its length).
fn unpack(buf: &mut AlignedBuf, job: &RestoreJob) -> Result<(), RestoreError> {
    let offset = job.offset;
    let len = job.length as usize;
    if buf.capacity() < len {
        *buf = AlignedBuf::new(len);
    }
    buf.set_len(len);
    decompress_into(job.compression, &job.data, buf).map_err(|source| RestoreError::Codec { offset, source })?;
    match &job.blocks {
        Some(b) => check_blocks(buf, offset, b),
        None => Ok(()),
    }
}

/// Each block's SHA-256 against the recorded one (all-zero blocks against the one
/// digest of zeros, without hashing them).
fn check_blocks(buf: &[u8], offset: u64, b: &BlockDigests) -> Result<(), RestoreError> {
    let size = b.block_size as usize;
    let zero: Vec<bool> = buf.chunks(size).map(|block| block.len() == size && digest::is_zero(block)).collect();
    // The zero blocks share one digest: the first of them hashed once.
    let zero_digest =
        zero.iter().position(|&z| z).map(|i| digest::sha256(&buf[i * size..(i + 1) * size])).unwrap_or_default();
    let actual = digest::sha256_blocks(buf, size, &zero, &zero_digest);
    for (i, (actual, expected)) in actual.iter().zip(b.digests.chunks_exact(32)).enumerate() {
        if actual[..] != *expected {
            return Err(RestoreError::Sha256 {
                offset,
                block: offset / size as u64 + i as u64,
                expected: hex(expected),
                actual: hex(actual),
            });
        }
    }
    Ok(())
}

/// Write an unpacked object at `offset`: its data, and its zeros where the volume may
/// hold something else.
fn write(sink: &dyn ChunkSink, buf: &[u8], offset: u64, volume_is_new: bool) -> Result<(), RestoreError> {
    let len = buf.len();
    // Coalesce granules into runs of data and runs of zeros.
    let mut pos = 0;
    while pos < len {
        let zero = digest::is_zero(&buf[pos..(pos + GRANULE).min(len)]);
        let mut end = (pos + GRANULE).min(len);
        while end < len && digest::is_zero(&buf[end..(end + GRANULE).min(len)]) == zero {
            end = (end + GRANULE).min(len);
        }
        let at = offset + pos as u64;
        if !zero {
            sink.write_at(at, &buf[pos..end]).map_err(|source| RestoreError::Write { offset: at, source })?;
        } else if !volume_is_new {
            sink.zero_range(at, (end - pos) as u64).map_err(|source| RestoreError::Write { offset: at, source })?;
        }
        pos = end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Compressor;

    struct MemSink(Mutex<Vec<u8>>);
    impl ChunkSink for MemSink {
        fn size(&self) -> u64 {
            self.0.lock().unwrap().len() as u64
        }
        fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
            let o = offset as usize;
            self.0.lock().unwrap()[o..o + data.len()].copy_from_slice(data);
            Ok(())
        }
        fn zero_range(&self, offset: u64, len: u64) -> io::Result<()> {
            let o = offset as usize;
            self.0.lock().unwrap()[o..o + len as usize].fill(0);
            Ok(())
        }
        fn sync(&self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn writes_layers_and_zeros_over_old_data() {
        let sink = Arc::new(MemSink(Mutex::new(vec![0xEE; 400_000])));
        let w = RestoreWriter::new(sink.clone(), 2, false).unwrap();
        let mut data = vec![0u8; 200_000];
        data[150_000..].fill(7);
        let packed = Compressor::new().compress(Compression::Zstd, &data).unwrap().unwrap();
        let md5 = digest::md5(&data);
        w.write(RestoreJob {
            offset: 0,
            length: 200_000,
            compression: Compression::Zstd,
            data: packed,
            md5: Some(md5),
            blocks: None,
        })
        .unwrap();
        w.flush().unwrap();
        let got = sink.0.lock().unwrap().clone();
        assert_eq!(&got[..200_000], &data[..]);
        assert!(got[200_000..].iter().all(|&b| b == 0xEE));
        assert_eq!(w.written(), 200_000);
    }

    #[test]
    fn a_finished_jobs_buffer_comes_back_empty_for_the_next() {
        let sink = Arc::new(MemSink(Mutex::new(vec![0; 8192])));
        let w = RestoreWriter::new(sink.clone(), 2, true).unwrap();
        assert_eq!(w.spare_buffer().capacity(), 0, "nothing finished yet");
        let mut data = w.spare_buffer();
        data.extend_from_slice(&[5; 4096]);
        let job =
            RestoreJob { offset: 4096, length: 4096, compression: Compression::None, data, md5: None, blocks: None };
        w.write(job).unwrap();
        w.flush().unwrap();
        assert!(sink.0.lock().unwrap()[4096..].iter().all(|&b| b == 5));
        let again = w.spare_buffer();
        assert!(again.is_empty() && again.capacity() >= 4096, "the written job's buffer, cleared");
    }

    #[test]
    fn buffers_are_not_kept_for_a_caller_that_never_takes_them() {
        let sink = Arc::new(MemSink(Mutex::new(vec![0; 8192])));
        let w = RestoreWriter::new(sink, 2, true).unwrap();
        let job = RestoreJob {
            offset: 0,
            length: 4096,
            compression: Compression::None,
            data: vec![5; 4096],
            md5: None,
            blocks: None,
        };
        w.write(job).unwrap();
        w.flush().unwrap();
        assert!(w.spare.is_empty(), "freed by the worker, not kept");
    }

    #[test]
    fn bad_md5_and_bounds_are_reported() {
        let sink = Arc::new(MemSink(Mutex::new(vec![0; 1000])));
        let w = RestoreWriter::new(sink, 1, true).unwrap();
        let job = |offset, md5: Option<[u8; 16]>| RestoreJob {
            offset,
            length: 10,
            compression: Compression::None,
            data: vec![1; 10],
            md5,
            blocks: None,
        };
        assert!(matches!(w.write(job(995, None)), Err(RestoreError::OutOfBounds { .. })));
        w.write(job(0, Some([0; 16]))).unwrap();
        assert!(matches!(w.flush(), Err(RestoreError::Md5 { .. })));
        assert!(w.write(job(0, None)).is_err(), "the writer keeps refusing after an error");
    }

    #[test]
    fn each_queued_object_is_written_or_refused_on_its_own() {
        // One worker and a queue of objects: each good one lands, the one with a wrong
        // MD5 is refused by offset.
        let n = 9usize;
        let len = 70_000usize;
        let sink = Arc::new(MemSink(Mutex::new(vec![0xEE; n * len])));
        let w = RestoreWriter::new(sink.clone(), 1, true).unwrap();
        let object = |i: usize| -> Vec<u8> { (0..len).map(|j| (i * 31 + j * 7) as u8 | 1).collect() };
        for i in 0..n {
            let data = object(i);
            let md5 = if i == 5 { [9; 16] } else { digest::md5(&data) };
            let packed = Compressor::new().compress(Compression::Zstd, &data).unwrap().unwrap();
            let job = RestoreJob {
                offset: (i * len) as u64,
                length: len as u64,
                compression: Compression::Zstd,
                data: packed,
                md5: Some(md5),
                blocks: None,
            };
            // A refusal may show on a later write already.
            if w.write(job).is_err() {
                break;
            }
        }
        match w.flush() {
            Err(RestoreError::Md5 { offset, .. }) => assert_eq!(offset, (5 * len) as u64),
            Err(RestoreError::Stopped(_)) => {}
            other => panic!("expected the bad MD5 to be reported, got {other:?}"),
        }
        let got = sink.0.lock().unwrap().clone();
        for i in 0..5 {
            assert_eq!(&got[i * len..(i + 1) * len], &object(i)[..], "object {i}");
        }
        assert!(got[5 * len..6 * len].iter().all(|&b| b == 0xEE), "the refused object is not written");
    }

    #[test]
    fn block_digests_are_checked_and_their_count_validated() {
        let len = 3 * 4096 + 100;
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let digests: Vec<u8> = data.chunks(4096).flat_map(digest::sha256).collect();
        let job = |digests: Vec<u8>, block_size| RestoreJob {
            offset: 0,
            length: len as u64,
            compression: Compression::None,
            data: data.clone(),
            md5: None,
            blocks: Some(BlockDigests { block_size, digests }),
        };
        let sink = Arc::new(MemSink(Mutex::new(vec![0; len])));
        let w = RestoreWriter::new(sink.clone(), 1, true).unwrap();
        w.write(job(digests.clone(), 4096)).unwrap();
        w.flush().unwrap();
        assert_eq!(*sink.0.lock().unwrap(), data);
        // Too few digests, or a block under the minimum: refused before any work.
        assert!(matches!(w.write(job(digests[..64].to_vec(), 4096)), Err(RestoreError::Digests { .. })));
        assert!(matches!(w.write(job(digests.clone(), 512)), Err(RestoreError::Digests { .. })));
        assert!(matches!(w.write(job(digests[..32].to_vec(), u32::MAX)), Err(RestoreError::Digests { .. })));
        // A wrong digest of the last (short) block: reported with the block's number.
        let mut bad = digests.clone();
        bad[3 * 32] ^= 1;
        let sink = Arc::new(MemSink(Mutex::new(vec![0; len])));
        let w = RestoreWriter::new(sink.clone(), 1, true).unwrap();
        w.write(job(bad, 4096)).unwrap();
        assert!(matches!(w.flush(), Err(RestoreError::Sha256 { block: 3, .. })));
        assert!(sink.0.lock().unwrap().iter().all(|&b| b == 0), "nothing of a refused object is written");
    }
}
