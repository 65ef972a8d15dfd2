//! The host a chunked driver talks to, as traits: in a component they are the WIT
//! imports (`source`, `target`, `host`); a native build (the sandbox-cost benchmark)
//! implements them over the host's own pipeline, so the very same driver code runs
//! on both sides of the sandbox.

use crate::{Compression, DriverError, Level, ReadOptions, VolumeError};

/// One hashed, compressed stretch of the source volume.
pub trait VolumeChunk {
    fn offset(&self) -> u64;
    fn length(&self) -> u64;
    /// SHA-256 per sha block, 32 raw bytes each.
    fn sha256s(&self) -> Vec<u8>;
    fn md5(&self) -> Option<Vec<u8>>;
    fn unchanged(&self) -> bool;
    fn stored_compression(&self) -> Compression;
    fn stored_bytes(&self) -> Vec<u8>;
    /// The same, borrowed where the chunk already holds them (native builds).
    fn stored(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Owned(self.stored_bytes())
    }
    /// SHA-256 and MD5 of the stored bytes, from the host (object stores' payload checks).
    fn stored_digests(&self) -> crate::StoredDigests;
    /// MD5 of the stored bytes alone, from the host (Swift's ETag).
    fn stored_md5(&self) -> Vec<u8>;
    /// The WIT handle behind it, in a component (the host's object store can then
    /// store the chunk without its bytes entering the component).
    fn as_wit(&self) -> Option<&crate::Chunk> {
        None
    }
    /// Its stored bytes as a request body: in a component the chunk itself, whose
    /// bytes the host writes into the request (`chunk.write-stored`, WIT 0.2.7);
    /// natively a copy.
    fn into_body(self) -> crate::http::Body
    where
        Self: Sized,
    {
        crate::http::Body::Bytes(self.stored_bytes())
    }
}

/// The source volume of a backup.
pub trait VolumeSource {
    type Chunk: VolumeChunk;
    type Stream: ChunkStream<Chunk = Self::Chunk>;
    fn size(&self) -> u64;
    /// The extents changed since `since` (a snapshot of this volume, or the id of an
    /// earlier backup of it); `None` when the volume cannot tell.
    fn changed_extents(&self, since: &str) -> Result<Option<Vec<crate::Extent>>, VolumeError>;
    fn chunks(&self, options: &ReadOptions) -> Result<Self::Stream, VolumeError>;
}

/// Chunks in volume order.
pub trait ChunkStream {
    type Chunk: VolumeChunk;
    fn next_chunk(&self) -> Result<Option<Self::Chunk>, VolumeError>;
}

/// The volume a restore writes.
pub trait VolumeTarget {
    fn write(
        &self,
        offset: u64,
        length: u64,
        compression: Compression,
        data: &[u8],
        md5: Option<&[u8]>,
    ) -> Result<(), VolumeError>;
    /// `write`, checked against the SHA-256 of each `block_size`-byte block of the
    /// uncompressed object (`sha256s`: their 32-byte values concatenated).
    fn write_checked(
        &self,
        offset: u64,
        length: u64,
        compression: Compression,
        data: &[u8],
        block_size: u32,
        sha256s: &[u8],
    ) -> Result<(), VolumeError>;
    fn flush(&self) -> Result<(), VolumeError>;
    /// The WIT handle behind it, in a component (the host's object store can then
    /// restore an object onto it without the bytes entering the component).
    fn as_wit(&self) -> Option<&crate::Target> {
        None
    }
}

/// The host services of the current call.
pub trait Host {
    fn cancelled(&self) -> bool;
    fn record_location(&self, container: &str, service_metadata: &str);
    fn log(&self, level: Level, message: &str);
}

impl From<VolumeError> for DriverError {
    fn from(e: VolumeError) -> Self {
        DriverError::Volume(e)
    }
}

// ---- the WIT imports ----

/// The host of a component: the `holdfast:backup/host` imports.
pub struct WitHost;

impl Host for WitHost {
    fn cancelled(&self) -> bool {
        crate::host::cancelled()
    }
    fn record_location(&self, container: &str, service_metadata: &str) {
        crate::host::record_location(container, service_metadata)
    }
    fn log(&self, level: Level, message: &str) {
        crate::host::log(level, message)
    }
}

impl VolumeChunk for crate::Chunk {
    fn offset(&self) -> u64 {
        crate::Chunk::offset(self)
    }
    fn length(&self) -> u64 {
        crate::Chunk::length(self)
    }
    fn sha256s(&self) -> Vec<u8> {
        crate::Chunk::sha256s(self)
    }
    fn md5(&self) -> Option<Vec<u8>> {
        crate::Chunk::md5(self)
    }
    fn unchanged(&self) -> bool {
        crate::Chunk::unchanged(self)
    }
    fn stored_compression(&self) -> Compression {
        crate::Chunk::stored_compression(self)
    }
    fn stored_bytes(&self) -> Vec<u8> {
        crate::Chunk::stored_bytes(self)
    }
    fn stored_digests(&self) -> crate::StoredDigests {
        crate::Chunk::stored_digests(self)
    }
    fn stored_md5(&self) -> Vec<u8> {
        crate::Chunk::stored_md5(self)
    }
    fn as_wit(&self) -> Option<&crate::Chunk> {
        Some(self)
    }
    fn into_body(self) -> crate::http::Body {
        crate::http::Body::Chunk(self)
    }
}

impl VolumeSource for crate::Source {
    type Chunk = crate::Chunk;
    type Stream = crate::ChunkStream;
    fn size(&self) -> u64 {
        crate::Source::size(self)
    }
    fn changed_extents(&self, since: &str) -> Result<Option<Vec<crate::Extent>>, VolumeError> {
        crate::Source::changed_extents(self, since)
    }
    fn chunks(&self, options: &ReadOptions) -> Result<crate::ChunkStream, VolumeError> {
        crate::Source::chunks(self, options)
    }
}

impl ChunkStream for crate::ChunkStream {
    type Chunk = crate::Chunk;
    fn next_chunk(&self) -> Result<Option<crate::Chunk>, VolumeError> {
        crate::ChunkStream::next(self)
    }
}

impl VolumeTarget for crate::Target {
    fn write(
        &self,
        offset: u64,
        length: u64,
        compression: Compression,
        data: &[u8],
        md5: Option<&[u8]>,
    ) -> Result<(), VolumeError> {
        crate::Target::write(self, offset, length, compression, data, md5)
    }
    fn write_checked(
        &self,
        offset: u64,
        length: u64,
        compression: Compression,
        data: &[u8],
        block_size: u32,
        sha256s: &[u8],
    ) -> Result<(), VolumeError> {
        crate::Target::write_checked(self, offset, length, compression, data, block_size, sha256s)
    }
    fn flush(&self) -> Result<(), VolumeError> {
        crate::Target::flush(self)
    }
    fn as_wit(&self) -> Option<&crate::Target> {
        Some(self)
    }
}
