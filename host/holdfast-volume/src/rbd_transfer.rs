//! Moving volume bytes into and out of RBD backup images, host-side: what
//! `rbd export-diff | rbd import-diff` (and `rbd export | rbd import`) do for Cinder's
//! Ceph driver, without a subprocess and with the work spread over threads, each
//! reading a piece and writing it at the same offset.
//!
//! - [`import`]: a source volume (any backend) into an image, then a snapshot of it:
//!   only the ranges changed since the parent when they are known and the image holds
//!   the parent, checked by sampling; otherwise every byte.
//! - [`export`]: an image at a snapshot onto a restore target: only allocated extents
//!   when the target is known to read as zeros, otherwise every byte.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use holdfast_chunk::{AlignedBuf, ChunkSink, ChunkSource};
use holdfast_rbd::{Image, RbdError};
use holdfast_types::Extent;

/// Largest copy unit: Cinder's default chunk (128 MiB) times the threads would hold
/// gigabytes; pieces of at most this size move as fast.
pub const MAX_PIECE: u64 = 8 << 20;
/// Smallest copy unit.
pub const MIN_PIECE: u64 = 64 << 10;
/// Workers, each with a batch of pieces in flight (a read each, then a write each):
/// a diff's small scattered pieces cost round trips to OSDs, not bytes.
pub const THREADS: usize = 12;

/// Offsets and lengths of pieces are multiples of this (O_DIRECT file sources).
const ALIGN: u64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("cancelled")]
    Cancelled,
    #[error("reading the source at {offset}: {source}")]
    Read { offset: u64, source: io::Error },
    #[error("writing at {offset}: {source}")]
    Write { offset: u64, source: io::Error },
    #[error("{0}")]
    Rbd(#[from] RbdError),
}

impl TransferError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, TransferError::Rbd(e) if e.is_not_found())
    }

    /// The cluster stopped answering ([`STALL`], or a bounded call around the transfer).
    pub fn is_stalled(&self) -> bool {
        matches!(self, TransferError::Rbd(e) if e.is_stalled())
    }
}

/// How a transfer runs and reports.
pub struct Transfer<'a> {
    /// Copy unit in bytes (clamped to [`MIN_PIECE`]..=[`MAX_PIECE`]).
    pub piece: u64,
    /// Set when the operation must stop.
    pub cancel: &'a AtomicBool,
    /// Called with the bytes of each piece done (read or skipped).
    pub progress: &'a (dyn Fn(u64) + Sync),
    /// Fraction of the blocks a diff calls unchanged that [`import`] compares between
    /// source and image afterwards (0: none).
    pub check: f64,
}

/// What [`import`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub by_diff: bool,
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// Why a diff was wanted and not used.
    pub fallback: Option<String>,
}

/// What [`export`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportReport {
    pub by_diff: bool,
    pub bytes_written: u64,
}

/// Where the changes come from, for [`import`].
pub enum Since<'a> {
    /// Everything: a full backup into a fresh image (reads as zeros).
    Nothing,
    /// Everything, over an image that holds older data (zeros must be written).
    Overwrite,
    /// What changed in the source since backup `id`, whose snapshot `image_snap` the
    /// image holds (its head must be that snapshot).
    Parent { id: &'a str, image_snap: &'a str },
}

struct Counters {
    read: AtomicU64,
    written: AtomicU64,
}

/// Split `ranges` (sorted, within `size`) into aligned pieces of at most `piece`.
fn pieces(ranges: &[Extent], size: u64, piece: u64) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for r in ranges {
        let start = r.offset / ALIGN * ALIGN;
        let end = (r.offset + r.len).div_ceil(ALIGN).saturating_mul(ALIGN).min(size);
        let mut at = match out.last() {
            Some(&(o, l)) if o + l > start => o + l,
            _ => start,
        };
        while at < end {
            // Piece boundaries on multiples of `piece`, so pieces line up with objects.
            let next = ((at / piece + 1) * piece).min(end);
            out.push((at, next - at));
            at = next;
        }
    }
    out
}

/// How long a transfer may go without finishing a piece before it gives up on the
/// cluster: librbd can block a request for ever (a write waiting on an exclusive lock
/// whose cluster died), past librados's own timeouts. The host also bounds the whole
/// call around a transfer (`holdfast_plugin_host::limits::RBD_QUIET`, 60 s, kept alive
/// by each piece done): that outer guard catches an open or a close that never returns;
/// this shorter inner one fires first while pieces are in flight and stops the workers.
pub const STALL: Duration = Duration::from_secs(45);

/// Pieces a worker moves together: their reads in flight at once, then their writes.
const BATCH: usize = 16;
/// Bytes a batch may hold.
const BATCH_BYTES: u64 = 8 << 20;

type Work = dyn Fn(&mut [(u64, &mut AlignedBuf)]) -> Result<(), TransferError> + Send + Sync;

/// Group pieces into batches of at most [`BATCH`] pieces and [`BATCH_BYTES`] (a piece
/// larger than that is a batch of its own).
fn batches(pieces: Vec<(u64, u64)>) -> Vec<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    let (mut cur, mut bytes) = (Vec::new(), 0);
    for p in pieces {
        if !cur.is_empty() && (cur.len() == BATCH || bytes + p.1 > BATCH_BYTES) {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        bytes += p.1;
        cur.push(p);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Run `work` on every batch of pieces from several threads; the first error stops
/// the rest.
fn run_pieces(pieces: Vec<(u64, u64)>, t: &Transfer<'_>, work: Arc<Work>) -> Result<(), TransferError> {
    let batches = batches(pieces);
    let threads = THREADS.min(batches.len()).max(1);
    let (tx, feed) = mpsc::sync_channel(batches.len());
    for b in batches {
        tx.send(b).expect("the channel holds every batch");
    }
    drop(tx);
    run_batches(feed, threads, t, work)
}

/// Run `work` on the batches `feed` yields until it closes, from `threads` threads; the
/// first error stops the rest. An empty batch only says the feed is still busy.
///
/// The workers are not joined when the cluster stops answering ([`STALL`]): a request
/// librbd never completes cannot be taken back, so its thread, buffers and the handles
/// `work` holds are left to it (and freed if it ever returns) while the operation fails.
fn run_batches(
    feed: mpsc::Receiver<Vec<(u64, u64)>>,
    threads: usize,
    t: &Transfer<'_>,
    work: Arc<Work>,
) -> Result<(), TransferError> {
    let feed = Arc::new(Mutex::new(feed));
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<Result<u64, TransferError>>();
    let mut workers = Vec::new();
    for _ in 0..threads {
        let (feed, stop, tx, work) = (feed.clone(), stop.clone(), tx.clone(), work.clone());
        let worker = std::thread::Builder::new()
            .name("hf-rbd-copy".into())
            .spawn(move || {
                // Grown to the largest piece seen, not the copy unit: a diff's are small.
                let mut bufs: Vec<AlignedBuf> = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let next = feed.lock().expect("feed").recv_timeout(Duration::from_millis(100));
                    let batch = match next {
                        Ok(b) => b,
                        Err(mpsc::RecvTimeoutError::Timeout) => continue,
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    };
                    while bufs.len() < batch.len() {
                        bufs.push(AlignedBuf::new(ALIGN as usize));
                    }
                    let mut io: Vec<(u64, &mut AlignedBuf)> = batch
                        .iter()
                        .zip(bufs.iter_mut())
                        .map(|(&(offset, len), buf)| {
                            if buf.capacity() < len as usize {
                                *buf = AlignedBuf::new(len as usize);
                            }
                            buf.set_len(len as usize);
                            (offset, buf)
                        })
                        .collect();
                    let r = if io.is_empty() { Ok(0) } else { work(&mut io).map(|()| batch.iter().map(|p| p.1).sum()) };
                    let failed = r.is_err();
                    if tx.send(r).is_err() || failed {
                        return;
                    }
                }
            })
            .map_err(|e| TransferError::Read { offset: 0, source: e })?;
        workers.push(worker);
    }
    drop(tx);
    let mut idle = 0;
    let result = loop {
        if t.cancel.load(Ordering::Relaxed) {
            break Err(TransferError::Cancelled);
        }
        match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(Ok(len)) => {
                (t.progress)(len);
                idle = 0;
            }
            Ok(Err(e)) => break Err(e),
            // Every worker finished.
            Err(mpsc::RecvTimeoutError::Disconnected) => break Ok(()),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                idle += 1;
                if idle * 250 >= STALL.as_millis() {
                    break Err(TransferError::Rbd(RbdError::Stalled { what: "moving data".into(), after: STALL }));
                }
            }
        }
    };
    stop.store(true, Ordering::Relaxed);
    // Unless the cluster stopped answering, every worker finishes its batch and drops its
    // handles before we return: an image still open is busy (its removal fails).
    if !matches!(&result, Err(e) if e.is_stalled()) {
        for w in workers {
            let _ = w.join();
        }
    }
    result
}

fn clamp_piece(piece: u64) -> u64 {
    (piece.clamp(MIN_PIECE, MAX_PIECE) / ALIGN).max(1) * ALIGN
}

/// Copy `ranges` of `source` into `image`; all-zero pieces are skipped when the image
/// already reads as zeros there (`zeros_there`), else discarded.
fn copy_in(
    source: &Arc<dyn ChunkSource>,
    image: &Arc<Image>,
    ranges: &[Extent],
    zeros_there: bool,
    t: &Transfer<'_>,
    n: &Arc<Counters>,
) -> Result<(), TransferError> {
    let list = pieces(ranges, source.size(), clamp_piece(t.piece));
    run_pieces(list, t, copy_work(source, image, zeros_there, n))
}

/// Copy what changed in `source` since backup `since` into `image` while the changes
/// are still being found, span by span, as `rbd export-diff | rbd import-diff` overlaps
/// them. The changes in order, or why the diff cannot be used (nothing copied is wrong
/// then, only incomplete: the caller copies everything).
fn copy_changes(
    source: &Arc<dyn ChunkSource>,
    image: &Arc<Image>,
    since: &str,
    t: &Transfer<'_>,
    n: &Arc<Counters>,
) -> Result<Result<Vec<Extent>, String>, TransferError> {
    let (size, piece) = (source.size(), clamp_piece(t.piece));
    let (tx, feed) = mpsc::sync_channel::<Vec<(u64, u64)>>(4 * THREADS);
    let (src, id) = (source.clone(), since.to_owned());
    // Left to finish on its own when the copy fails: its sends fail once the workers
    // are gone, and it stops at the next span.
    let finder = std::thread::Builder::new()
        .name("hf-rbd-diff".into())
        .spawn(move || {
            let mut all = Vec::new();
            let known = src.changed_extents_by_span(&id, &mut |span| {
                let found = batches(pieces(&span, size, piece));
                all.extend(span);
                if found.is_empty() {
                    // Nothing here: still tell the workers the diff goes on.
                    return tx.send(Vec::new()).is_ok();
                }
                found.into_iter().all(|b| tx.send(b).is_ok())
            });
            known.map(|k| k.then_some(all))
        })
        .map_err(|e| TransferError::Read { offset: 0, source: e })?;
    run_batches(feed, THREADS, t, copy_work(source, image, false, n))?;
    Ok(match finder.join() {
        Ok(Ok(Some(all))) => Ok(all),
        Ok(Ok(None)) => Err(format!("the source cannot tell what changed since backup {since}")),
        Ok(Err(e)) => Err(format!("the source's diff since backup {since} failed: {e}")),
        Err(_) => Err(format!("the diff since backup {since} panicked")),
    })
}

/// Read each piece of a batch from `source` and write it at the same offset of `image`.
fn copy_work(source: &Arc<dyn ChunkSource>, image: &Arc<Image>, zeros_there: bool, n: &Arc<Counters>) -> Arc<Work> {
    let (source, image, n) = (source.clone(), image.clone(), n.clone());
    Arc::new(move |batch: &mut [(u64, &mut AlignedBuf)]| {
        let first = batch.first().map_or(0, |b| b.0);
        source.read_batch(batch).map_err(|e| TransferError::Read { offset: first, source: e })?;
        let mut writes: Vec<(u64, &[u8])> = Vec::with_capacity(batch.len());
        for (offset, buf) in batch.iter() {
            n.read.fetch_add(buf.len() as u64, Ordering::Relaxed);
            if holdfast_chunk::digest::is_zero(buf) {
                if !zeros_there {
                    image.write_zeroes(*offset, buf.len() as u64)?;
                }
            } else {
                writes.push((*offset, &buf[..]));
                n.written.fetch_add(buf.len() as u64, Ordering::Relaxed);
            }
        }
        Ok(image.write_many(&writes)?)
    })
}

/// The complement of `ranges` in `[0, size)`.
fn gaps(ranges: &[Extent], size: u64) -> Vec<Extent> {
    let mut out = Vec::new();
    let mut at = 0;
    for r in ranges {
        if r.offset > at {
            out.push(Extent { offset: at, len: r.offset - at });
        }
        at = at.max(r.offset + r.len);
    }
    if at < size {
        out.push(Extent { offset: at, len: size - at });
    }
    out
}

/// Sampled check after a diff import: `fraction` of the pieces outside the changed
/// ranges, compared between the source and the image. The first difference is returned.
fn check_unchanged(
    source: &dyn ChunkSource,
    image: &Image,
    changed: &[Extent],
    fraction: f64,
) -> Result<Option<u64>, TransferError> {
    const BLOCK: u64 = 64 << 10;
    if fraction <= 0.0 {
        return Ok(None);
    }
    let size = source.size();
    let unchanged = gaps(changed, size);
    let blocks: u64 = unchanged.iter().map(|r| r.len / BLOCK).sum();
    if blocks == 0 {
        return Ok(None);
    }
    let want = ((blocks as f64 * fraction).ceil() as u64).clamp(1, blocks);
    let step = (blocks / want).max(1);
    // A different sample each time: a fixed one would check the same blocks forever.
    let mut pick = rand_below(step);
    let mut offsets = Vec::new();
    let mut seen = 0u64;
    for r in &unchanged {
        let first = r.offset.div_ceil(BLOCK);
        let count = (r.offset + r.len) / BLOCK - first.min((r.offset + r.len) / BLOCK);
        while pick < seen + count {
            offsets.push((first + (pick - seen)) * BLOCK);
            pick += step;
        }
        seen += count;
    }
    // In batches, every read of a batch in flight at once (a sample of a 10 GiB image is
    // 164 blocks: one at a time they cost a round trip each, twice).
    for group in offsets.chunks(32) {
        let mut src: Vec<AlignedBuf> = group.iter().map(|_| AlignedBuf::new(BLOCK as usize)).collect();
        let mut dst: Vec<Vec<u8>> = group.iter().map(|_| vec![0u8; BLOCK as usize]).collect();
        let mut reads: Vec<(u64, &mut AlignedBuf)> = group.iter().copied().zip(src.iter_mut()).collect();
        source.read_batch(&mut reads).map_err(|e| TransferError::Read { offset: group[0], source: e })?;
        let mut theirs: Vec<(u64, &mut [u8])> = group.iter().copied().zip(dst.iter_mut().map(|d| &mut d[..])).collect();
        image.read_many(&mut theirs)?;
        if let Some(i) = (0..group.len()).find(|&i| src[i][..] != dst[i][..]) {
            return Ok(Some(group[i]));
        }
    }
    Ok(None)
}

fn rand_below(n: u64) -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    u64::from(nanos) % n.max(1)
}

/// Write `source` into `image` (resized to the source), then snapshot it as `snap`.
///
/// With [`Since::Parent`], only the ranges the source says changed since that backup
/// are moved, when the source can tell; then a sample of the other blocks is compared,
/// and any failure or difference falls back to a whole copy (logged loudly). The
/// snapshot is made last, so an interrupted import leaves no snapshot a later backup
/// could take as its parent.
pub fn import(
    source: &Arc<dyn ChunkSource>,
    image: &Arc<Image>,
    since: Since<'_>,
    snap: &str,
    t: &Transfer<'_>,
) -> Result<ImportReport, TransferError> {
    let size = source.size();
    let n = Arc::new(Counters { read: AtomicU64::new(0), written: AtomicU64::new(0) });
    if image.size()? != size {
        image.resize(size)?;
    }
    let whole = [Extent { offset: 0, len: size }];
    let mut report = ImportReport::default();
    match since {
        Since::Nothing => {
            // Only what may hold data; the new image reads zeros elsewhere.
            let ranges = source.extents().ok().flatten().unwrap_or_else(|| whole.to_vec());
            copy_in(source, image, &ranges, true, t, &n)?;
        }
        Since::Overwrite => copy_in(source, image, &whole, false, t, &n)?,
        Since::Parent { id, image_snap } => {
            let started = std::time::Instant::now();
            let by_diff = match head_is(image, image_snap) {
                Ok(true) => match copy_changes(source, image, id, t, &n) {
                    Ok(Ok(changed)) => {
                        tracing::debug!(copied = ?started.elapsed(), extents = changed.len(), "diff moved");
                        match check_unchanged(&**source, image, &changed, t.check) {
                            Ok(None) => Ok(()),
                            Ok(Some(at)) => Err(format!(
                                "the sampled check found the block at {at} differs though the diff called it unchanged"
                            )),
                            Err(e) if e.is_stalled() => return Err(e),
                            Err(e) => Err(format!("the sampled check failed: {e}")),
                        }
                    }
                    Ok(Err(why)) => Err(why),
                    // Stopped, or a cluster that stopped answering: no whole copy either.
                    Err(e) if matches!(e, TransferError::Cancelled) || e.is_stalled() => return Err(e),
                    Err(e) => Err(format!("moving the diff failed: {e}")),
                },
                Ok(false) => Err(format!("the image changed since its snapshot {image_snap}")),
                Err(e) => Err(format!("checking the image against {image_snap}: {e}")),
            };
            match by_diff {
                Ok(()) => report.by_diff = true,
                Err(why) => {
                    tracing::error!(%why, "RBD diff import not used: copying the whole volume instead");
                    report.fallback = Some(why);
                    copy_in(source, image, &whole, false, t, &n)?;
                }
            }
        }
    }
    let flushing = std::time::Instant::now();
    image.flush()?;
    image.snap_create(snap)?;
    tracing::debug!(snapshot = ?flushing.elapsed(), "flushed and snapshotted");
    report.bytes_read = n.read.load(Ordering::Relaxed);
    report.bytes_written = n.written.load(Ordering::Relaxed);
    Ok(report)
}

/// Whether the image's head is still its snapshot `snap` (nothing written since).
fn head_is(image: &Image, snap: &str) -> Result<bool, RbdError> {
    let snaps = image.snapshots()?;
    // The parent's snapshot must be the newest: a later one means another backup wrote
    // on top of it.
    if snaps.last().map(|s| s.name.as_str()) != Some(snap) {
        return Ok(false);
    }
    // Whole objects are enough to tell (and cheap with the object map).
    Ok(image.diff(Some(snap), true)?.is_empty())
}

/// Restore `image` (opened at the backup's snapshot) onto `target`.
///
/// When the target is new or provably empty only the image's allocated extents are
/// written; otherwise every byte up to the backup's size. With `discard_excess` the
/// target's bytes past the backup's size are zeroed.
pub fn export(
    image: &Arc<Image>,
    target: &Arc<dyn ChunkSink>,
    target_is_new: bool,
    discard_excess: bool,
    t: &Transfer<'_>,
) -> Result<ExportReport, TransferError> {
    let size = image.size()?;
    let tsize = target.size();
    let len = size.min(tsize);
    let empty = target_is_new || matches!(target.allocated(), Ok(Some(a)) if a.iter().all(|e| e.offset >= len));
    let allocated: Vec<Extent> = image
        .diff(None, false)?
        .into_iter()
        .filter(|e| e.exists && e.offset < len)
        .map(|e| Extent { offset: e.offset, len: e.len.min(len - e.offset) })
        .collect();
    let written = Arc::new(AtomicU64::new(0));
    let (img, sink, count) = (image.clone(), target.clone(), written.clone());
    let write = move |batch: &mut [(u64, &mut AlignedBuf)]| -> Result<(), TransferError> {
        let mut reads: Vec<(u64, &mut [u8])> = batch.iter_mut().map(|(o, b)| (*o, &mut b[..])).collect();
        img.read_many(&mut reads)?;
        for (offset, buf) in batch.iter() {
            let io = |e| TransferError::Write { offset: *offset, source: e };
            if holdfast_chunk::digest::is_zero(buf) {
                if !empty {
                    sink.zero_range(*offset, buf.len() as u64).map_err(io)?;
                }
            } else {
                sink.write_at(*offset, buf).map_err(io)?;
                count.fetch_add(buf.len() as u64, Ordering::Relaxed);
            }
        }
        Ok(())
    };
    run_pieces(pieces(&allocated, len, clamp_piece(t.piece)), t, Arc::new(write))?;
    if !empty {
        for g in gaps(&allocated, len) {
            target.zero_range(g.offset, g.len).map_err(|e| TransferError::Write { offset: g.offset, source: e })?;
            (t.progress)(g.len);
        }
    }
    if discard_excess && tsize > size {
        target.zero_range(size, tsize - size).map_err(|e| TransferError::Write { offset: size, source: e })?;
    }
    target.sync().map_err(|e| TransferError::Write { offset: 0, source: e })?;
    Ok(ExportReport { by_diff: empty, bytes_written: written.load(Ordering::Relaxed) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(offset: u64, len: u64) -> Extent {
        Extent { offset, len }
    }

    #[test]
    fn batches_hold_up_to_16_pieces_or_8_mib() {
        let small: Vec<(u64, u64)> = (0..40).map(|i| (i * 8192, 4096)).collect();
        assert_eq!(batches(small).iter().map(Vec::len).collect::<Vec<_>>(), vec![16, 16, 8]);
        let big = vec![(0, 8 << 20), (8 << 20, 8 << 20), (16 << 20, 4096)];
        assert_eq!(batches(big).iter().map(Vec::len).collect::<Vec<_>>(), vec![1, 1, 1]);
    }

    #[test]
    fn pieces_are_aligned_merged_and_bounded() {
        let p = pieces(&[e(100, 10), e(5000, 9000), e(9000, 100)], 1 << 20, 8192);
        assert_eq!(p, vec![(0, 4096), (4096, 4096), (8192, 8192)]);
        // The end of the volume cuts the last piece.
        assert_eq!(pieces(&[e(0, 10_000)], 10_000, 8192), vec![(0, 8192), (8192, 1808)]);
    }

    #[test]
    fn fed_batches_all_move_while_the_feed_is_still_busy() {
        let (tx, feed) = mpsc::sync_channel(2);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mine = seen.clone();
        let work: Arc<Work> = Arc::new(move |batch: &mut [(u64, &mut AlignedBuf)]| {
            mine.lock().unwrap().extend(batch.iter().map(|(o, b)| (*o, b.len() as u64)));
            Ok(())
        });
        let feeder = std::thread::spawn(move || {
            for i in 0..20u64 {
                // Pings (nothing found yet) between the batches, one piece larger than the rest.
                tx.send(Vec::new()).unwrap();
                tx.send(vec![(i * 65536, if i == 7 { 1 << 20 } else { 4096 })]).unwrap();
            }
        });
        let done = AtomicU64::new(0);
        let progress = |n| {
            done.fetch_add(n, Ordering::Relaxed);
        };
        let t = Transfer { piece: MIN_PIECE, cancel: &AtomicBool::new(false), progress: &progress, check: 0.0 };
        run_batches(feed, 3, &t, work).unwrap();
        feeder.join().unwrap();
        let mut seen = seen.lock().unwrap().clone();
        seen.sort();
        assert_eq!(seen.len(), 20);
        assert_eq!(seen[7], (7 * 65536, 1 << 20));
        assert_eq!(done.load(Ordering::Relaxed), 19 * 4096 + (1 << 20));
    }

    #[test]
    fn gaps_complement_the_ranges() {
        assert_eq!(gaps(&[e(10, 10), e(15, 10), e(40, 5)], 50), vec![e(0, 10), e(25, 15), e(45, 5)]);
        assert_eq!(gaps(&[], 7), vec![e(0, 7)]);
    }
}
