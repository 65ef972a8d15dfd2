//! `holdfast:backup/volume`: host-owned chunks of the source volume and the restore target.
//! The guest holds handles; hashing, compression and volume I/O run on host threads.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use holdfast_chunk::{
    BlockDigests, ChunkStream, Compression, PipelineError, ProcessedChunk, ReadOptions as HostReadOptions,
    RestoreError, RestoreJob, RestoreWriter, StoredHashes,
};
use holdfast_driver::ObjectApi;
use wasmtime::component::Resource;
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, StreamError};

use crate::bindings::holdfast::backup::types::{Compression as WitCompression, Extent as WitExtent, VolumeError};
use crate::bindings::holdfast::backup::volume::{
    Host, HostChunk, HostChunkStream, HostHeldBytes, HostSource, HostTarget, ReadOptions, StoredDigests, StreamEnd,
    WriteCheck,
};
use crate::limits::{
    MAX_CHUNK_READ, MAX_LIVE_CHUNKS, MAX_LIVE_HELD, MAX_LIVE_STREAMS, MAX_READ_EXTENTS, MAX_SNAPSHOT_NAME,
    MAX_WRITE_DATA, MAX_WRITE_LENGTH,
};
use crate::state::HostState;

pub struct SourceRes {
    pub(crate) volume: Arc<dyn holdfast_chunk::ChunkSource>,
}

pub struct StreamRes {
    stream: ChunkStream,
}

pub struct ChunkRes {
    pub(crate) chunk: ProcessedChunk,
    /// Its stored bytes shared, made once (an all-zero piece stored raw has no buffer,
    /// and `write-stored` is called once per slice the stream takes).
    shared: std::cell::OnceCell<bytes::Bytes>,
}

/// `held-bytes`: a download's body kept in host memory for the guest (WIT 0.2.8).
pub struct HeldRes {
    data: Vec<u8>,
    /// What it counts against the driver's grant (`GuestLimiter::hold`): the room it
    /// may keep (its Vec's capacity, give or take the allocator's rounding).
    counted: u64,
    /// How a `read-from` failed: every later one ends the same way (the bytes of that
    /// read are gone, so what is held has a gap).
    ended: Option<StreamEnd>,
}

/// Most a `held-bytes` asks its stream for in one read (a `read-from` call reads until
/// the stream has nothing ready; the stream's own pieces are smaller).
const HELD_READ: usize = 4 << 20;

impl ChunkRes {
    fn new(chunk: ProcessedChunk) -> Self {
        ChunkRes { chunk, shared: std::cell::OnceCell::new() }
    }

    /// The stored bytes, shared without a copy.
    pub(crate) fn stored(&self) -> bytes::Bytes {
        self.shared.get_or_init(|| self.chunk.stored_shared()).clone()
    }
}

/// `chunk.stored-bytes` answered from the chunk's own buffer: the generated binding
/// returns a `Vec`, so every object's stored bytes were copied into a fresh allocation
/// (and its pages faulted in and zeroed) only to be copied again into the guest; an
/// `Arc` of the buffer is lowered into guest memory straight away. Replaces the
/// generated definition in `linker` (same name, same type).
pub(crate) fn link_stored_bytes(linker: &mut wasmtime::component::Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    // The newest `volume` interface (older 0.2.x guests bind to it by semver).
    let newest = crate::wit::WitVersion::SUPPORTED[crate::wit::WitVersion::SUPPORTED.len() - 1];
    let name = format!("holdfast:backup/volume@{}", newest.as_str());
    let defined = linker.instance(&name).and_then(|mut volume| {
        volume.func_wrap(
            "[method]chunk.stored-bytes",
            |store: wasmtime::StoreContextMut<'_, HostState>, (c,): (Resource<ChunkRes>,)| {
                Ok((store.data().table.get(&c)?.stored(),))
            },
        )
    });
    linker.allow_shadowing(false);
    defined
}

pub struct TargetRes {
    pub(crate) writer: RestoreWriter,
    /// The volume itself, for `rbd.export-to` (which writes it directly).
    pub(crate) sink: Arc<dyn holdfast_chunk::ChunkSink>,
    /// The manager created the volume for this restore (it reads as zeros).
    pub(crate) is_new: bool,
}

pub(crate) fn to_host(c: WitCompression) -> Compression {
    match c {
        WitCompression::None => Compression::None,
        WitCompression::Zlib => Compression::Zlib,
        WitCompression::Gzip => Compression::Gzip,
        WitCompression::Bz2 => Compression::Bz2,
        WitCompression::Bzip2 => Compression::Bzip2,
        WitCompression::Zstd => Compression::Zstd,
    }
}

pub(crate) fn to_wit(c: Compression) -> WitCompression {
    match c {
        Compression::None => WitCompression::None,
        Compression::Zlib => WitCompression::Zlib,
        Compression::Gzip => WitCompression::Gzip,
        Compression::Bz2 => WitCompression::Bz2,
        Compression::Bzip2 => WitCompression::Bzip2,
        Compression::Zstd => WitCompression::Zstd,
    }
}

fn pipeline_error(e: PipelineError) -> VolumeError {
    match e {
        PipelineError::Options(m) => VolumeError::Invalid(m),
        e => VolumeError::Io(e.to_string()),
    }
}

fn restore_error(e: RestoreError) -> VolumeError {
    match e {
        RestoreError::OutOfBounds { .. } | RestoreError::TooLarge { .. } => VolumeError::Invalid(e.to_string()),
        RestoreError::Codec { .. } | RestoreError::Md5 { .. } => VolumeError::Corrupt(e.to_string()),
        e => VolumeError::Io(e.to_string()),
    }
}

fn extents_to_wit(extents: Option<Vec<holdfast_types::Extent>>) -> Option<Vec<WitExtent>> {
    extents.map(|e| e.into_iter().map(|e| WitExtent { offset: e.offset, length: e.len }).collect())
}

impl Host for HostState {}

impl HostSource for HostState {
    fn size(&mut self, src: Resource<SourceRes>) -> wasmtime::Result<u64> {
        Ok(holdfast_chunk::ChunkSource::size(&*self.table.get(&src)?.volume))
    }

    fn extents(&mut self, src: Resource<SourceRes>) -> wasmtime::Result<Result<Option<Vec<WitExtent>>, VolumeError>> {
        let volume = self.table.get(&src)?.volume.clone();
        Ok(volume.extents().map(extents_to_wit).map_err(|e| VolumeError::Io(e.to_string())))
    }

    fn changed_extents(
        &mut self,
        src: Resource<SourceRes>,
        since: String,
    ) -> wasmtime::Result<Result<Option<Vec<WitExtent>>, VolumeError>> {
        if since.len() > MAX_SNAPSHOT_NAME {
            return Ok(Err(VolumeError::Invalid(format!("snapshot name is over {MAX_SNAPSHOT_NAME} bytes"))));
        }
        let volume = self.table.get(&src)?.volume.clone();
        Ok(volume.changed_extents(&since).map(extents_to_wit).map_err(|e| VolumeError::Io(e.to_string())))
    }

    fn chunks(
        &mut self,
        src: Resource<SourceRes>,
        options: ReadOptions,
    ) -> wasmtime::Result<Result<Resource<StreamRes>, VolumeError>> {
        if self.live_streams >= MAX_LIVE_STREAMS {
            return Ok(Err(VolumeError::Invalid(format!(
                "{MAX_LIVE_STREAMS} chunk streams are open already (limit); drop one first"
            ))));
        }
        let volume = self.table.get(&src)?.volume.clone();
        let parent = match options.parent_sha256s {
            None => None,
            Some(bytes) if let Some(digests) = holdfast_chunk::digest::sha256_list(&bytes) => Some(Arc::new(digests)),
            Some(bytes) => {
                return Ok(Err(VolumeError::Invalid(format!(
                    "parent-sha256s has {} bytes, not a multiple of 32",
                    bytes.len()
                ))));
            }
        };
        let extents = match options.extents {
            Some(e) if e.len() > MAX_READ_EXTENTS => {
                return Ok(Err(VolumeError::Invalid(format!(
                    "{} extents to read, over the host's limit of {MAX_READ_EXTENTS}",
                    e.len()
                ))));
            }
            e => e.map(|e| e.into_iter().map(|e| holdfast_types::Extent { offset: e.offset, len: e.length }).collect()),
        };
        let opts = HostReadOptions {
            chunk_size: options.chunk_size,
            sha_block_size: options.sha_block_size,
            compression: to_host(options.compression),
            md5: options.md5,
            workers: self.op.workers,
            parent,
            extents,
            diff_check: self.op.diff_check,
            // Object-store drivers ask for them with every chunk: hashed on the workers,
            // ahead, not on the driver's thread when it asks. Swift needs the MD5 alone,
            // and so does S3 with Content-MD5 (its default; the SDK's S3 store since WIT
            // 0.2.8 then signs the payload by it): a driver that asks for the SHA-256
            // too (`stored-digests`) gets it computed then.
            stored_hashes: match self.network.object_api() {
                Some(ObjectApi::S3 | ObjectApi::Swift) => StoredHashes::Md5,
                None => StoredHashes::None,
            },
        };
        match ChunkStream::start(volume, opts) {
            Ok(stream) => {
                tracing::info!(change_source = stream.change_source().as_str(), "reading the volume");
                *self.op.change_source.lock().expect("change source") = Some(stream.change_source().clone());
                self.live_streams += 1;
                Ok(Ok(self.table.push(StreamRes { stream })?))
            }
            Err(e) => Ok(Err(pipeline_error(e))),
        }
    }

    fn drop(&mut self, rep: Resource<SourceRes>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}

impl HostChunkStream for HostState {
    fn next(&mut self, s: Resource<StreamRes>) -> wasmtime::Result<Result<Option<Resource<ChunkRes>>, VolumeError>> {
        if self.live_chunks >= MAX_LIVE_CHUNKS {
            return Err(wasmtime::Error::msg(format!(
                "driver holds {MAX_LIVE_CHUNKS} chunks without dropping them (limit)"
            )));
        }
        let next = self.table.get_mut(&s)?.stream.next_chunk();
        match next {
            Ok(Some(chunk)) => {
                self.op.done.fetch_add(chunk.length, Ordering::Relaxed);
                if !chunk.is_zero && chunk.read {
                    self.op.moved.fetch_add(chunk.length, Ordering::Relaxed);
                }
                self.live_chunks += 1;
                if let Err(why) = self.limits.hold(chunk.stored_len()) {
                    return Err(wasmtime::Error::msg(format!(
                        "driver holds {} chunks without dropping them: {why}",
                        self.live_chunks
                    )));
                }
                Ok(Ok(Some(self.table.push(ChunkRes::new(chunk))?)))
            }
            Ok(None) => Ok(Ok(None)),
            Err(e) => Ok(Err(pipeline_error(e))),
        }
    }

    fn drop(&mut self, rep: Resource<StreamRes>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        self.live_streams = self.live_streams.saturating_sub(1);
        Ok(())
    }
}

impl HostChunk for HostState {
    fn offset(&mut self, c: Resource<ChunkRes>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&c)?.chunk.offset)
    }

    fn length(&mut self, c: Resource<ChunkRes>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&c)?.chunk.length)
    }

    fn sha256s(&mut self, c: Resource<ChunkRes>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.table.get(&c)?.chunk.sha256s.concat())
    }

    fn md5(&mut self, c: Resource<ChunkRes>) -> wasmtime::Result<Option<Vec<u8>>> {
        Ok(self.table.get(&c)?.chunk.md5.map(|d| d.to_vec()))
    }

    fn is_zero(&mut self, c: Resource<ChunkRes>) -> wasmtime::Result<bool> {
        Ok(self.table.get(&c)?.chunk.is_zero)
    }

    fn unchanged(&mut self, c: Resource<ChunkRes>) -> wasmtime::Result<bool> {
        Ok(self.table.get(&c)?.chunk.unchanged)
    }

    fn stored_compression(&mut self, c: Resource<ChunkRes>) -> wasmtime::Result<WitCompression> {
        Ok(to_wit(self.table.get(&c)?.chunk.stored_compression))
    }

    /// What `chunk.stored-bytes` means; the linker serves it with [`link_stored_bytes`],
    /// which answers the same bytes without copying them first.
    fn stored_bytes(&mut self, c: Resource<ChunkRes>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.table.get(&c)?.chunk.stored_bytes())
    }

    fn stored_md5(&mut self, c: Resource<ChunkRes>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.table.get(&c)?.chunk.stored_md5().to_vec())
    }

    fn stored_digests(&mut self, c: Resource<ChunkRes>) -> wasmtime::Result<StoredDigests> {
        let (sha256, md5) = self.table.get(&c)?.chunk.stored_digests();
        Ok(StoredDigests { sha256: sha256.to_vec(), md5: md5.to_vec() })
    }

    fn read(
        &mut self,
        c: Resource<ChunkRes>,
        offset: u64,
        length: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, VolumeError>> {
        if length > MAX_CHUNK_READ {
            return Ok(Err(VolumeError::Invalid(format!("chunk.read of {length} bytes is over {MAX_CHUNK_READ}"))));
        }
        Ok(self.table.get(&c)?.chunk.read(offset, u64::from(length)).map_err(pipeline_error))
    }

    /// Writes copies of what the stream takes now (its budget, ~1 MiB): a slice of the
    /// chunk's buffer would keep the whole buffer alive in a stream the driver never
    /// sends, after the chunk is dropped and no longer counted.
    fn write_stored(
        &mut self,
        c: Resource<ChunkRes>,
        out: Resource<DynOutputStream>,
        offset: u64,
    ) -> wasmtime::Result<Result<u64, VolumeError>> {
        let bytes = self.table.get(&c)?.stored();
        let Some(mut at) = usize::try_from(offset).ok().filter(|&o| o <= bytes.len()) else {
            return Ok(Err(VolumeError::Invalid(format!(
                "chunk.write-stored from {offset}: the chunk stores {} bytes",
                bytes.len()
            ))));
        };
        let stream = self.table.get_mut(&out)?;
        let failed = |e: StreamError| match e {
            StreamError::Closed => Ok(Err(VolumeError::Io("chunk.write-stored: the stream is closed".into()))),
            StreamError::LastOperationFailed(e) => Ok(Err(VolumeError::Io(format!("chunk.write-stored: {e:#}")))),
            StreamError::Trap(e) => Err(e),
        };
        while at < bytes.len() {
            let n = match stream.check_write() {
                Ok(0) => break,
                Ok(n) => n.min(bytes.len() - at),
                Err(e) => return failed(e),
            };
            if let Err(e) = stream.write(bytes::Bytes::copy_from_slice(&bytes[at..at + n])) {
                return failed(e);
            }
            at += n;
        }
        Ok(Ok(at as u64))
    }

    fn stored_length(&mut self, c: Resource<ChunkRes>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&c)?.chunk.stored_len())
    }

    fn drop(&mut self, rep: Resource<ChunkRes>) -> wasmtime::Result<()> {
        let held = self.table.delete(rep)?;
        self.live_chunks = self.live_chunks.saturating_sub(1);
        self.limits.release(held.chunk.stored_len());
        Ok(())
    }
}

impl HostState {
    /// Hand an object to the target's writer, counting it as progress once queued.
    pub(crate) fn queue(
        &mut self,
        t: &Resource<TargetRes>,
        job: RestoreJob,
    ) -> wasmtime::Result<Result<(), VolumeError>> {
        let (length, stored) = (job.length, job.data.len());
        if length > MAX_WRITE_LENGTH || stored > MAX_WRITE_DATA {
            return Ok(Err(VolumeError::Invalid(format!(
                "an object of {length} bytes ({stored} stored) is over the host's limit of {MAX_WRITE_LENGTH}"
            ))));
        }
        let r = self.table.get(t)?.writer.write(job);
        if r.is_ok() {
            self.op.done.fetch_add(length, Ordering::Relaxed);
        }
        Ok(r.map_err(restore_error))
    }
}

impl HostTarget for HostState {
    fn size(&mut self, t: Resource<TargetRes>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&t)?.writer.size())
    }

    fn write(
        &mut self,
        t: Resource<TargetRes>,
        offset: u64,
        length: u64,
        compression: WitCompression,
        data: Vec<u8>,
        md5: Option<Vec<u8>>,
    ) -> wasmtime::Result<Result<(), VolumeError>> {
        let md5 = match md5.map(|m| <[u8; 16]>::try_from(m.as_slice())) {
            None => None,
            Some(Ok(m)) => Some(m),
            Some(Err(_)) => return Ok(Err(VolumeError::Invalid("an MD5 is 16 bytes".into()))),
        };
        let job = RestoreJob { offset, length, compression: to_host(compression), data, md5, blocks: None };
        self.queue(&t, job)
    }

    fn write_checked(
        &mut self,
        t: Resource<TargetRes>,
        offset: u64,
        length: u64,
        compression: WitCompression,
        data: Vec<u8>,
        block_size: u32,
        sha256s: Vec<u8>,
    ) -> wasmtime::Result<Result<(), VolumeError>> {
        // The writer checks the digests' count against the length before queueing.
        let blocks = Some(BlockDigests { block_size, digests: sha256s });
        let job = RestoreJob { offset, length, compression: to_host(compression), data, md5: None, blocks };
        self.queue(&t, job)
    }

    fn write_held(
        &mut self,
        t: Resource<TargetRes>,
        offset: u64,
        length: u64,
        compression: WitCompression,
        data: Resource<HeldRes>,
        check: WriteCheck,
    ) -> wasmtime::Result<Result<(), VolumeError>> {
        // The bytes the driver would have passed to `write` or `write-checked`.
        let data = self.take_held(data)?.data;
        match check {
            WriteCheck::None => HostTarget::write(self, t, offset, length, compression, data, None),
            WriteCheck::Md5(md5) => HostTarget::write(self, t, offset, length, compression, data, Some(md5)),
            WriteCheck::Sha256Blocks((block_size, digests)) => {
                HostTarget::write_checked(self, t, offset, length, compression, data, block_size, digests)
            }
        }
    }

    fn flush(&mut self, t: Resource<TargetRes>) -> wasmtime::Result<Result<(), VolumeError>> {
        Ok(self.table.get(&t)?.writer.flush().map_err(restore_error))
    }

    fn drop(&mut self, rep: Resource<TargetRes>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}

impl HostHeldBytes for HostState {
    fn new(&mut self, capacity: u64) -> wasmtime::Result<Resource<HeldRes>> {
        if self.live_held >= MAX_LIVE_HELD {
            return Err(wasmtime::Error::msg(format!(
                "driver holds {MAX_LIVE_HELD} held-bytes without dropping them (limit)"
            )));
        }
        // Room set aside counts against the grant as it is made, and is taken only up to
        // the largest object a write takes. Room announced beyond what the grant has
        // left is not set aside at all: the body cannot fit, and `read-from` says so,
        // where taking the rest of the grant would fail the driver's own next
        // allocation instead.
        // Counted first, then reserved: no capacity is ever held uncounted.
        let wanted = capacity.min(MAX_WRITE_DATA as u64);
        let room = if wanted <= self.limits.holdable() && self.limits.hold(wanted).is_ok() { wanted } else { 0 };
        let mut data = Vec::new();
        let room = if data.try_reserve_exact(room as usize).is_ok() {
            room
        } else {
            self.limits.release(room);
            0
        };
        self.live_held += 1;
        Ok(self.table.push(HeldRes { data, counted: room, ended: None })?)
    }

    fn read_from(
        &mut self,
        h: Resource<HeldRes>,
        input: Resource<DynInputStream>,
    ) -> wasmtime::Result<Result<u64, StreamEnd>> {
        if let Some(end) = &self.table.get(&h)?.ended {
            return Ok(Err(end.clone()));
        }
        let mut read = 0u64;
        loop {
            let (len, counted) = {
                let held = self.table.get(&h)?;
                (held.data.len(), held.counted as usize)
            };
            let room = (MAX_WRITE_DATA + 1).saturating_sub(len).min(HELD_READ);
            let bytes = match self.table.get_mut(&input)?.read(room) {
                Ok(b) if b.is_empty() => return Ok(Ok(read)),
                Ok(b) => b,
                Err(StreamError::Closed) if read == 0 => return Ok(Err(StreamEnd::Closed)),
                Err(StreamError::Closed) => return Ok(Ok(read)),
                Err(StreamError::LastOperationFailed(e)) => {
                    return self.held_ended(&h, StreamEnd::Failed(format!("{e:#}")));
                }
                Err(StreamError::Trap(e)) => return Err(e),
            };
            let needed = len + bytes.len();
            if needed > MAX_WRITE_DATA {
                let why = format!("held-bytes: over {MAX_WRITE_DATA} bytes, the largest object the host writes");
                return self.held_ended(&h, StreamEnd::Refused(why));
            }
            if needed > counted {
                // Grown as a Vec would (doubling, up to the largest write), or by what it
                // needs when the grant has no room for the doubling; what is counted
                // is what it may keep.
                let doubled = needed.max(counted.saturating_mul(2).min(MAX_WRITE_DATA));
                let target = if self.limits.hold((doubled - counted) as u64).is_ok() {
                    doubled
                } else if let Err(why) = self.limits.hold((needed - counted) as u64) {
                    return self.held_ended(&h, StreamEnd::Refused(format!("held-bytes: {why}")));
                } else {
                    needed
                };
                let held = self.table.get_mut(&h)?;
                if held.data.try_reserve_exact(target - len).is_err() {
                    self.limits.release((target - counted) as u64);
                    return self.held_ended(&h, StreamEnd::Refused("held-bytes: the host is out of memory".into()));
                }
                held.counted = target as u64;
            }
            self.table.get_mut(&h)?.data.extend_from_slice(&bytes);
            read += bytes.len() as u64;
        }
    }

    fn length(&mut self, h: Resource<HeldRes>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&h)?.data.len() as u64)
    }

    fn read(
        &mut self,
        h: Resource<HeldRes>,
        offset: u64,
        length: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, VolumeError>> {
        if length > MAX_CHUNK_READ {
            return Ok(Err(VolumeError::Invalid(format!(
                "held-bytes.read of {length} bytes is over {MAX_CHUNK_READ}"
            ))));
        }
        let data = &self.table.get(&h)?.data;
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(data.len());
        let end = start.saturating_add(length as usize).min(data.len());
        Ok(Ok(data[start..end].to_vec()))
    }

    fn drop(&mut self, h: Resource<HeldRes>) -> wasmtime::Result<()> {
        self.take_held(h).map(drop)
    }
}

impl HostState {
    /// `h` out of the table, no longer counted against the driver's grant.
    fn take_held(&mut self, h: Resource<HeldRes>) -> wasmtime::Result<HeldRes> {
        let held = self.table.delete(h)?;
        self.live_held = self.live_held.saturating_sub(1);
        self.limits.release(held.counted);
        Ok(held)
    }

    /// A `read-from` that failed or was refused, and every later one on `h`.
    fn held_ended(&mut self, h: &Resource<HeldRes>, end: StreamEnd) -> wasmtime::Result<Result<u64, StreamEnd>> {
        self.table.get_mut(h)?.ended = Some(end.clone());
        Ok(Err(end))
    }
}
