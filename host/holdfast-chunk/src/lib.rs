//! The fast paths: everything that touches every byte of a volume.
//!
//! - [`digest`]: SHA-256 per sha block (many at once), MD5, zero detection.
//! - [`sha256_lanes`], [`sha256_ni`], [`md5_lanes`]: many buffers hashed at once (interleaved
//!   SHA-NI chains or vector lanes, whichever this CPU runs faster).
//! - [`codec`]: Cinder's compressions (zstd, zlib/gzip, bz2/bzip2, none) in both directions.
//! - [`buffer`]: page-aligned buffers (O_DIRECT) and the pool that bounds memory.
//! - [`pipeline`]: read → hash → compress on worker threads, chunks handed out in order.
//! - `plan`: what a pipeline reads, and what an incremental skips (checked by a sample).
//! - [`piece`]: how one read is cut into stored chunks (zero stretches, incremental runs).
//! - [`restore`]: decompress → check → write on worker threads, with a flush barrier.
//! - [`timing`]: where a pipeline's or a restore's time went (disk, cores, or the driver).
//!
//! Memory is bounded by construction: a pipeline owns a fixed pool of chunk buffers
//! and every queue between its threads is bounded, so RSS does not grow with volume size.

pub mod buffer;
pub mod codec;
pub mod digest;
pub mod md5_lanes;
pub mod md5_pair;
pub mod piece;
pub mod pipeline;
mod plan;
pub mod priority;
pub mod restore;
pub mod sha256_lanes;
pub mod sha256_ni;
pub mod timing;

pub use buffer::{ALIGN, AlignedBuf};
pub use codec::{CodecError, Compression};
pub use piece::ProcessedChunk;
pub use pipeline::{
    ChangeSource, ChunkSource, ChunkStream, DEFAULT_DIFF_CHECK, PipelineError, ReadOptions, SourceRead, StoredHashes,
    StreamTiming,
};
pub use restore::{BlockDigests, ChunkSink, RestoreError, RestoreJob, RestoreWriter};
