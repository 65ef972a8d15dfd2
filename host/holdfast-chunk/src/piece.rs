//! Cutting one read of the volume into the chunks a driver stores.
//!
//! Every sha block of the read is hashed (all-zero blocks get a precomputed digest).
//! Then the read is cut into pieces that tile it in order:
//!
//! | piece | when | costs |
//! |---|---|---|
//! | unchanged | incremental, and every block matches the parent's digest | nothing: no MD5, no compression, nothing stored |
//! | zero | a changed all-zero stretch of ≥ [`ZERO_SPLIT`] (or the whole read) | nothing: MD5 and compressed form come from a cache |
//! | data | the rest | MD5 + compression |
//!
//! Changed pieces never span two reads (Cinder cuts incremental extents at its read
//! buffer too), and Cinder's restore accepts any object layout that tiles the volume.
//! A read may hold several objects (see [`crate::pipeline::LANE_READ`]): stored
//! pieces are cut at the object size, so their MD5s share the lanes.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Mutex;

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender, bounded};

use crate::buffer::AlignedBuf;
use crate::codec::{Compression, Compressor, decompress_into};
use crate::digest::{self, Sha256Digest};
use crate::md5_lanes::md5_many;
use crate::pipeline::{PipelineError, ReadOptions, SourceRead};

/// Zero stretches at least this long become pieces of their own. MD5 is the costliest
/// step (about 0.6 GB/s per core), and zeros are half of a typical volume.
pub const ZERO_SPLIT: usize = 1 << 20;

/// Recycled buffers of one size. Taking never waits (a buffer is made when none is
/// idle): what bounds memory is the pipeline's window of reads, each holding at most a
/// read buffer and an output buffer. Dropped buffers beyond `keep` are unmapped.
#[derive(Clone)]
pub(crate) struct BufPool {
    idle: (Sender<AlignedBuf>, Receiver<AlignedBuf>),
    size: usize,
}

impl BufPool {
    pub(crate) fn new(size: usize, keep: usize) -> Self {
        BufPool { idle: bounded(keep.max(1)), size }
    }

    /// A buffer of the pool's size (its length set to it).
    pub(crate) fn take(&self) -> PooledBuf {
        let mut buf = self.idle.1.try_recv().unwrap_or_else(|_| AlignedBuf::new(self.size));
        buf.set_len(self.size);
        PooledBuf { buf: Some(buf), pool: self.idle.0.clone() }
    }
}

/// A buffer that goes back to its pool when dropped.
pub(crate) struct PooledBuf {
    pub(crate) buf: Option<AlignedBuf>,
    pub(crate) pool: Sender<AlignedBuf>,
}

impl std::ops::Deref for PooledBuf {
    type Target = AlignedBuf;
    fn deref(&self) -> &AlignedBuf {
        self.buf.as_ref().expect("present until drop")
    }
}

impl std::ops::DerefMut for PooledBuf {
    fn deref_mut(&mut self) -> &mut AlignedBuf {
        self.buf.as_mut().expect("present until drop")
    }
}

impl AsRef<[u8]> for PooledBuf {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl Drop for PooledBuf {
    fn drop(&mut self) {
        if let Some(b) = self.buf.take() {
            let _ = self.pool.try_send(b);
        }
    }
}

#[derive(Clone)]
enum Stored {
    /// Compressed bytes, or raw ones: slices of the read's buffer or of its output
    /// buffer, which go back to their pools when the last piece using them is dropped.
    Bytes(Bytes),
    /// An uncompressed all-zero piece.
    Zeros,
    /// Unchanged since the parent: nothing to store.
    Nothing,
}

/// One piece of the volume, hashed and compressed, as the driver sees it through the host.
pub struct ProcessedChunk {
    pub offset: u64,
    pub length: u64,
    pub sha256s: Vec<Sha256Digest>,
    pub md5: Option<[u8; 16]>,
    pub is_zero: bool,
    /// Every block matches the parent backup (incremental reads only).
    pub unchanged: bool,
    /// Read from the volume (false for a stretch the volume's diff says is as in the
    /// parent: it was not read at all).
    pub read: bool,
    pub stored_compression: Compression,
    stored: Stored,
    /// Digests of the stored bytes the read asked for, computed on the workers.
    hashed: Hashed,
}

/// What the workers computed of a piece's stored bytes.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Hashed {
    sha256: Option<Sha256Digest>,
    md5: Option<[u8; 16]>,
}

/// SHA-256 and MD5 of a piece's stored bytes.
pub type StoredDigests = (Sha256Digest, [u8; 16]);

impl ProcessedChunk {
    /// SHA-256 and MD5 of [`Self::stored`]: from the workers when the read asked for
    /// them, else computed now.
    pub fn stored_digests(&self) -> StoredDigests {
        let sha256 = self.hashed.sha256.unwrap_or_else(|| digest::sha256(&self.stored()));
        (sha256, self.stored_md5())
    }

    /// MD5 of [`Self::stored`] (as [`Self::stored_digests`], without the SHA-256).
    pub fn stored_md5(&self) -> [u8; 16] {
        self.hashed.md5.unwrap_or_else(|| match &self.stored {
            Stored::Zeros => digest::md5_of_zeros(self.length),
            _ => digest::md5(&self.stored()),
        })
    }

    /// A stretch the volume's own change tracking says is as in the parent backup:
    /// not read, its digests the parent's.
    pub(crate) fn skipped(offset: u64, length: u64, sha256s: Vec<Sha256Digest>) -> ProcessedChunk {
        ProcessedChunk {
            offset,
            length,
            sha256s,
            md5: None,
            is_zero: false,
            unchanged: true,
            read: false,
            stored_compression: Compression::None,
            stored: Stored::Nothing,
            hashed: Hashed::default(),
        }
    }

    /// The bytes to store: compressed, or raw when compressing did not shrink them;
    /// empty for an unchanged piece.
    pub fn stored_bytes(&self) -> Vec<u8> {
        match &self.stored {
            Stored::Bytes(v) => v.to_vec(),
            Stored::Zeros => vec![0u8; self.length as usize],
            Stored::Nothing => Vec::new(),
        }
    }

    /// [`Self::stored_bytes`] shared, without a copy where there are bytes.
    pub fn stored_shared(&self) -> Bytes {
        match &self.stored {
            Stored::Bytes(v) => v.clone(),
            _ => Bytes::from(self.stored_bytes()),
        }
    }

    /// [`Self::stored_bytes`] without a copy where there are bytes.
    pub fn stored(&self) -> std::borrow::Cow<'_, [u8]> {
        match &self.stored {
            Stored::Bytes(v) => std::borrow::Cow::Borrowed(&v[..]),
            _ => std::borrow::Cow::Owned(self.stored_bytes()),
        }
    }

    pub fn stored_len(&self) -> u64 {
        match &self.stored {
            Stored::Bytes(v) => v.len() as u64,
            Stored::Zeros => self.length,
            Stored::Nothing => 0,
        }
    }

    /// Raw bytes `[offset, offset + len)` of this piece (relative to the piece).
    pub fn read(&self, offset: u64, len: u64) -> Result<Vec<u8>, PipelineError> {
        let end = offset.checked_add(len).filter(|&e| e <= self.length);
        let Some(end) = end else {
            return Err(PipelineError::Options(format!(
                "read of {len} bytes at {offset} is outside a chunk of {} bytes",
                self.length
            )));
        };
        let (start, end) = (offset as usize, end as usize);
        Ok(match &self.stored {
            Stored::Bytes(v) if self.stored_compression == Compression::None => v[start..end].to_vec(),
            Stored::Zeros => vec![0u8; end - start],
            Stored::Bytes(v) => {
                let mut all = vec![0u8; self.length as usize];
                decompress_into(self.stored_compression, v, &mut all)?;
                all[start..end].to_vec()
            }
            Stored::Nothing => {
                return Err(PipelineError::Options("an unchanged chunk keeps no bytes; read the parent".into()));
            }
        })
    }
}

/// An all-zero piece of some length as it is stored: its MD5, its compression, the
/// bytes kept, and their digests when the read asks for them.
type ZeroPiece = (Option<[u8; 16]>, Compression, Stored, Hashed);

/// Precomputed results for all-zero pieces and blocks, shared by the workers (one
/// cache per stream: its options do not change).
pub(crate) struct ZeroCache {
    block_digest: Sha256Digest,
    by_len: Mutex<HashMap<u64, ZeroPiece>>,
}

impl ZeroCache {
    pub(crate) fn new(block: usize) -> Self {
        ZeroCache { block_digest: digest::sha256(&vec![0u8; block]), by_len: Mutex::new(HashMap::new()) }
    }

    /// `bytes`: the piece itself (all zeros).
    fn get(&self, compressor: &mut Compressor, opts: &ReadOptions, bytes: &[u8]) -> Result<ZeroPiece, PipelineError> {
        let length = bytes.len() as u64;
        if let Some(c) = self.by_len.lock().expect("zero cache lock").get(&length) {
            return Ok(c.clone());
        }
        let md5 = opts.md5.then(|| digest::md5_of_zeros(length));
        let piece = match compressor.compress(opts.compression, bytes)? {
            Some(p) if (p.len() as u64) < length => {
                let hashed = Hashed {
                    sha256: opts.stored_hashes.sha256().then(|| digest::sha256(&p)),
                    md5: opts.stored_hashes.any().then(|| digest::md5(&p)),
                };
                // Copied out: the compressor's Vec has room for the whole piece.
                (md5, opts.compression, Stored::Bytes(Bytes::copy_from_slice(&p)), hashed)
            }
            _ => {
                let hashed = Hashed {
                    sha256: opts.stored_hashes.sha256().then(|| digest::sha256(bytes)),
                    md5: opts.stored_hashes.any().then(|| md5.unwrap_or_else(|| digest::md5_of_zeros(length))),
                };
                (md5, Compression::None, Stored::Zeros, hashed)
            }
        };
        self.by_len.lock().expect("zero cache lock").insert(length, piece.clone());
        Ok(piece)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Unchanged,
    Zero,
    Data,
}

/// The raw bytes' MD5 and the stored bytes' digests of a read's data pieces, as `opts`
/// asks (`data`: each piece's index in `out` and its bytes in `buf`). Every MD5 of the
/// read goes through [`md5_many`] at once: on a backup they are the workers' largest
/// cost, and one piece's chain cannot use a core's width. An uncompressed piece's
/// stored bytes are its raw ones: one MD5 serves both.
fn data_digests(opts: &ReadOptions, buf: &[u8], out: &mut [ProcessedChunk], data: &[(usize, Range<usize>)]) {
    let stored_md5 = opts.stored_hashes.any();
    if !opts.md5 && !stored_md5 {
        return;
    }
    // (piece, raw?) for each buffer hashed.
    let mut whose = Vec::with_capacity(data.len() * 2);
    let mut bufs: Vec<&[u8]> = Vec::with_capacity(data.len() * 2);
    for (i, range) in data {
        let packed = match &out[*i].stored {
            Stored::Bytes(b) if out[*i].stored_compression != Compression::None => Some(&b[..]),
            _ => None,
        };
        if opts.md5 || (stored_md5 && packed.is_none()) {
            whose.push((*i, true));
            bufs.push(&buf[range.clone()]);
        }
        if let (true, Some(p)) = (stored_md5, packed) {
            whose.push((*i, false));
            bufs.push(p);
        }
    }
    let md5s = md5_many(&bufs);
    // Which buffer is the stored form: the packed one, or the raw one stored as it is.
    let is_stored: Vec<bool> =
        whose.iter().map(|&(i, raw)| raw == (out[i].stored_compression == Compression::None)).collect();
    let shas: Vec<Option<Sha256Digest>> = bufs
        .iter()
        .zip(&is_stored)
        .map(|(b, &stored)| (opts.stored_hashes.sha256() && stored).then(|| digest::sha256(b)))
        .collect();
    for (((&(i, raw), md5), sha), stored) in whose.iter().zip(md5s).zip(shas).zip(is_stored) {
        let piece = &mut out[i];
        if raw && opts.md5 {
            piece.md5 = Some(md5);
        }
        if stored && stored_md5 {
            piece.hashed = Hashed { sha256: sha, md5: Some(md5) };
        }
    }
}

/// Cut runs `(first block, end block, kind)` of one read so that no stored piece is
/// longer than an object (`per_object` blocks; a read may hold several), on the
/// object grid from the read's start. Compressed zeros stay whole: they store a few
/// hundred bytes whatever their length, and a file per object of zeros would cost a
/// create and an fsync each.
fn split_at_objects(
    runs: Vec<(usize, usize, Kind)>,
    per_object: usize,
    compression: Compression,
) -> Vec<(usize, usize, Kind)> {
    let per_object = per_object.max(1);
    let mut out = Vec::with_capacity(runs.len());
    for (first, end, k) in runs {
        let split = k == Kind::Data || (k == Kind::Zero && compression == Compression::None);
        if !split {
            out.push((first, end, k));
            continue;
        }
        let mut at = first;
        while at < end {
            let next = ((at / per_object + 1) * per_object).min(end);
            out.push((at, next, k));
            at = next;
        }
    }
    out
}

/// Cut one read (at volume `offset`) into pieces; see the module docs. zstd output
/// goes into one buffer from `outputs` for the whole read (each compressed piece is
/// smaller than its raw bytes, so they fit); raw pieces keep slices of `buf` itself,
/// but those shorter than an object are copied there too: a read with a few scattered
/// changes then gives its buffer back at once.
pub(crate) fn process(
    compressor: &mut Compressor,
    zeros: &ZeroCache,
    opts: &ReadOptions,
    offset: u64,
    buf: PooledBuf,
    read: SourceRead,
    outputs: &BufPool,
) -> Result<Vec<ProcessedChunk>, PipelineError> {
    let len = buf.len();
    let block = opts.sha_block_size as usize;
    let nblocks = len.div_ceil(block);
    let block_range = |i: usize| i * block..((i + 1) * block).min(len);
    let zero: Vec<bool> = (0..nblocks).map(|b| read.hole || digest::is_zero(&buf[block_range(b)])).collect();
    let digests = digest::sha256_blocks(&buf, block, &zero, &zeros.block_digest);
    let first_block = (offset / block as u64) as usize;
    let kind = |b: usize| {
        let unchanged = opts.parent.as_ref().is_some_and(|p| p.get(first_block + b) == Some(&digests[b]));
        if unchanged {
            Kind::Unchanged
        } else if zero[b] {
            Kind::Zero
        } else {
            Kind::Data
        }
    };
    // Runs of equal kind; short zero runs are just data.
    let mut runs: Vec<(usize, usize, Kind)> = Vec::new();
    let mut i = 0;
    while i < nblocks {
        let k = kind(i);
        let mut j = i + 1;
        while j < nblocks && kind(j) == k {
            j += 1;
        }
        let k = if k == Kind::Zero && j - i < (ZERO_SPLIT / block).max(1) && !(i == 0 && j == nblocks) {
            Kind::Data
        } else {
            k
        };
        match runs.last_mut() {
            Some(last) if last.2 == k && k == Kind::Data => last.1 = j,
            _ => runs.push((i, j, k)),
        }
        i = j;
    }
    let runs = split_at_objects(runs, (opts.chunk_size / block as u64) as usize, opts.compression);
    // Where each data piece's stored bytes are until the buffers are shared out.
    // (Every piece's stored bytes are at most its raw ones, so a read's fit in one
    // output buffer of the read's length.)
    enum At {
        Raw(Range<usize>),
        Packed(Range<usize>),
        /// Raw bytes, copied into the output buffer.
        Copied(Range<usize>),
        Own(Vec<u8>),
    }
    let object = opts.chunk_size as usize;
    let mut out = Vec::with_capacity(runs.len());
    let mut data = Vec::new();
    let mut at = Vec::new();
    let mut packed: Option<PooledBuf> = None;
    let mut packed_len = 0;
    for (first, end, k) in runs {
        let range = first * block..(end * block).min(len);
        let bytes = &buf[range.clone()];
        let length = bytes.len() as u64;
        let sha256s = digests[first..end].to_vec();
        let offset = offset + range.start as u64;
        let (md5, stored_compression, stored, hashed) = match k {
            Kind::Unchanged => (None, Compression::None, Stored::Nothing, Hashed::default()),
            Kind::Zero => zeros.get(compressor, opts, bytes)?,
            Kind::Data => {
                let kept = match opts.compression {
                    Compression::None => At::Raw(range.clone()),
                    Compression::Zstd => {
                        let dst = packed.get_or_insert_with(|| outputs.take());
                        let room = &mut dst.spare_mut()[packed_len..packed_len + bytes.len() - 1];
                        match compressor.zstd_into(bytes, room)? {
                            Some(n) => {
                                packed_len += n;
                                At::Packed(packed_len - n..packed_len)
                            }
                            // A short piece (an incremental's change) is copied out rather
                            // than keeping the whole read buffer until it is stored.
                            None if bytes.len() < object => {
                                dst.spare_mut()[packed_len..packed_len + bytes.len()].copy_from_slice(bytes);
                                packed_len += bytes.len();
                                At::Copied(packed_len - bytes.len()..packed_len)
                            }
                            None => At::Raw(range.clone()),
                        }
                    }
                    other => match compressor.compress(other, bytes)? {
                        Some(p) if (p.len() as u64) < length => At::Own(p),
                        _ => At::Raw(range.clone()),
                    },
                };
                let compression =
                    if matches!(kept, At::Raw(_) | At::Copied(_)) { Compression::None } else { opts.compression };
                // Digests once every piece of the read is cut (`data_digests`).
                data.push((out.len(), range.clone()));
                at.push((out.len(), kept));
                (None, compression, Stored::Nothing, Hashed::default())
            }
        };
        let is_zero = k == Kind::Zero || (k == Kind::Unchanged && zero[first..end].iter().all(|&z| z));
        out.push(ProcessedChunk {
            offset,
            length,
            sha256s,
            md5,
            is_zero,
            unchanged: k == Kind::Unchanged,
            read: true,
            hashed,
            stored_compression,
            stored,
        });
    }
    // Share the buffers out: each goes back to its pool once its last piece is dropped.
    let raw = Bytes::from_owner(buf);
    let packed = packed.map(Bytes::from_owner);
    for (i, kept) in at {
        out[i].stored = Stored::Bytes(match kept {
            At::Raw(r) => raw.slice(r),
            At::Packed(r) | At::Copied(r) => packed.as_ref().expect("packed pieces have a buffer").slice(r),
            At::Own(v) => Bytes::from(v),
        });
    }
    data_digests(opts, &raw, &mut out, &data);
    Ok(out)
}
