//! Components built for `holdfast:backup@0.1.0`, converted to the newest WIT (Zed's
//! `since_v*` modules are the model). The 0.1.0 imports are served by the newest
//! implementations; the 0.1.0 exports are called and their answers converted.
//!
//! What changed in 0.2.0, and how a 0.1.0 driver is served:
//! - SHA-256s came out as hex strings: hexed here from the newest raw bytes.
//! - MD5s were `""` for none and hex both ways: converted to and from `option<bytes>`.
//! - volume errors were strings: the newest typed error, printed.
//! - `host.progress` is gone (the host counts bytes itself): accepted and ignored.
//! - `supports-force-delete()` duplicated `driver-info`: never called.
//! - no `extents`, `changed-extents` or `wasi:http`: a 0.1.0 driver reads everything.

use wasmtime::Store;
use wasmtime::component::Resource;

use crate::bindings as latest;
use crate::bindings::holdfast::backup::types as new;
use crate::bindings::holdfast::backup::volume as new_volume;
use crate::imports::volume::{ChunkRes, SourceRes, StreamRes, TargetRes};
use crate::state::HostState;

wasmtime::component::bindgen!({
    path: "../../wit/holdfast-backup@0.1.0",
    world: "backup-driver",
    imports: { default: trappable },
    exports: { default: async },
    with: {
        "holdfast:backup/volume.source": crate::imports::volume::SourceRes,
        "holdfast:backup/volume.chunk-stream": crate::imports::volume::StreamRes,
        "holdfast:backup/volume.chunk": crate::imports::volume::ChunkRes,
        "holdfast:backup/volume.target": crate::imports::volume::TargetRes,
    },
});

use self::exports::holdfast::backup::driver as old_driver;
use self::holdfast::backup::types as old;
use self::holdfast::backup::volume as old_volume;

fn volume_error_text(e: new::VolumeError) -> String {
    match e {
        new::VolumeError::Invalid(m) => format!("invalid: {m}"),
        new::VolumeError::Corrupt(m) => format!("damaged: {m}"),
        new::VolumeError::Io(m) => m,
    }
}

fn compression(c: old::Compression) -> new::Compression {
    match c {
        old::Compression::None => new::Compression::None,
        old::Compression::Zlib => new::Compression::Zlib,
        old::Compression::Gzip => new::Compression::Gzip,
        old::Compression::Bz2 => new::Compression::Bz2,
        old::Compression::Bzip2 => new::Compression::Bzip2,
        old::Compression::Zstd => new::Compression::Zstd,
    }
}

fn compression_back(c: new::Compression) -> old::Compression {
    match c {
        new::Compression::None => old::Compression::None,
        new::Compression::Zlib => old::Compression::Zlib,
        new::Compression::Gzip => old::Compression::Gzip,
        new::Compression::Bz2 => old::Compression::Bz2,
        new::Compression::Bzip2 => old::Compression::Bzip2,
        new::Compression::Zstd => old::Compression::Zstd,
    }
}

// ---- imports: 0.1.0 calls served by the newest implementation ----

impl old::Host for HostState {}
impl old_volume::Host for HostState {}

impl holdfast::backup::host::Host for HostState {
    fn log(&mut self, level: holdfast::backup::host::Level, message: String) -> wasmtime::Result<()> {
        use holdfast::backup::host::Level as L;
        use latest::holdfast::backup::host::Level as N;
        let level = match level {
            L::Trace => N::Trace,
            L::Debug => N::Debug,
            L::Info => N::Info,
            L::Warn => N::Warn,
            L::Error => N::Error,
        };
        latest::holdfast::backup::host::Host::log(self, level, message)
    }

    fn progress(&mut self, _done: u64, _total: u64) -> wasmtime::Result<()> {
        Ok(())
    }

    fn cancelled(&mut self) -> wasmtime::Result<bool> {
        latest::holdfast::backup::host::Host::cancelled(self)
    }

    fn record_location(&mut self, container: String, service_metadata: String) -> wasmtime::Result<()> {
        latest::holdfast::backup::host::Host::record_location(self, container, service_metadata)
    }
}

impl old_volume::HostSource for HostState {
    fn size(&mut self, src: Resource<SourceRes>) -> wasmtime::Result<u64> {
        new_volume::HostSource::size(self, src)
    }

    fn chunks(
        &mut self,
        src: Resource<SourceRes>,
        o: old_volume::ReadOptions,
    ) -> wasmtime::Result<Result<Resource<StreamRes>, String>> {
        let options = new_volume::ReadOptions {
            chunk_size: o.chunk_size,
            sha_block_size: o.sha_block_size,
            compression: compression(o.compression),
            md5: o.md5,
            parent_sha256s: o.parent_sha256s,
            extents: None,
        };
        Ok(new_volume::HostSource::chunks(self, src, options)?.map_err(volume_error_text))
    }

    fn drop(&mut self, rep: Resource<SourceRes>) -> wasmtime::Result<()> {
        new_volume::HostSource::drop(self, rep)
    }
}

impl old_volume::HostChunkStream for HostState {
    fn next(&mut self, s: Resource<StreamRes>) -> wasmtime::Result<Result<Option<Resource<ChunkRes>>, String>> {
        Ok(new_volume::HostChunkStream::next(self, s)?.map_err(volume_error_text))
    }

    fn drop(&mut self, rep: Resource<StreamRes>) -> wasmtime::Result<()> {
        new_volume::HostChunkStream::drop(self, rep)
    }
}

impl old_volume::HostChunk for HostState {
    fn offset(&mut self, c: Resource<ChunkRes>) -> wasmtime::Result<u64> {
        new_volume::HostChunk::offset(self, c)
    }

    fn length(&mut self, c: Resource<ChunkRes>) -> wasmtime::Result<u64> {
        new_volume::HostChunk::length(self, c)
    }

    fn sha256s(&mut self, c: Resource<ChunkRes>) -> wasmtime::Result<Vec<String>> {
        let raw = new_volume::HostChunk::sha256s(self, c)?;
        Ok(raw.chunks(32).map(holdfast_chunk::digest::hex).collect())
    }

    fn md5(&mut self, c: Resource<ChunkRes>) -> wasmtime::Result<String> {
        Ok(new_volume::HostChunk::md5(self, c)?.map(|d| holdfast_chunk::digest::hex(&d)).unwrap_or_default())
    }

    fn is_zero(&mut self, c: Resource<ChunkRes>) -> wasmtime::Result<bool> {
        new_volume::HostChunk::is_zero(self, c)
    }

    fn unchanged(&mut self, c: Resource<ChunkRes>) -> wasmtime::Result<bool> {
        new_volume::HostChunk::unchanged(self, c)
    }

    fn stored_compression(&mut self, c: Resource<ChunkRes>) -> wasmtime::Result<old::Compression> {
        Ok(compression_back(new_volume::HostChunk::stored_compression(self, c)?))
    }

    fn stored_bytes(&mut self, c: Resource<ChunkRes>) -> wasmtime::Result<Vec<u8>> {
        new_volume::HostChunk::stored_bytes(self, c)
    }

    fn read(&mut self, c: Resource<ChunkRes>, offset: u64, length: u32) -> wasmtime::Result<Vec<u8>> {
        // 0.1.0 had no error here: a bad read traps, as it did.
        new_volume::HostChunk::read(self, c, offset, length)?
            .map_err(|e| wasmtime::Error::msg(format!("chunk.read: {}", volume_error_text(e))))
    }

    fn drop(&mut self, rep: Resource<ChunkRes>) -> wasmtime::Result<()> {
        new_volume::HostChunk::drop(self, rep)
    }
}

impl old_volume::HostTarget for HostState {
    fn size(&mut self, t: Resource<TargetRes>) -> wasmtime::Result<u64> {
        new_volume::HostTarget::size(self, t)
    }

    fn write(
        &mut self,
        t: Resource<TargetRes>,
        offset: u64,
        length: u64,
        c: old::Compression,
        data: Vec<u8>,
        md5: Option<String>,
    ) -> wasmtime::Result<Result<(), String>> {
        let md5 = match md5.as_deref() {
            None | Some("") => None,
            Some(hex) => match holdfast_chunk::digest::from_hex::<16>(hex) {
                Some(d) => Some(d.to_vec()),
                None => return Ok(Err(format!("invalid: MD5 {hex:?} is not 32 hex digits"))),
            },
        };
        Ok(new_volume::HostTarget::write(self, t, offset, length, compression(c), data, md5)?
            .map_err(volume_error_text))
    }

    fn flush(&mut self, t: Resource<TargetRes>) -> wasmtime::Result<Result<(), String>> {
        Ok(new_volume::HostTarget::flush(self, t)?.map_err(volume_error_text))
    }

    fn drop(&mut self, rep: Resource<TargetRes>) -> wasmtime::Result<()> {
        new_volume::HostTarget::drop(self, rep)
    }
}

// ---- exports: the 0.1.0 driver's answers, as the newest types ----

fn setting(s: &new::Setting) -> old::Setting {
    old::Setting { key: s.key.clone(), value: s.value.clone() }
}

fn info(b: &new::BackupInfo) -> old::BackupInfo {
    old::BackupInfo {
        id: b.id.clone(),
        volume_id: b.volume_id.clone(),
        name: b.name.clone(),
        description: b.description.clone(),
        created_at: old::Timestamp { seconds: b.created_at.seconds, nanoseconds: b.created_at.nanoseconds },
        parent_id: b.parent_id.clone(),
        container: b.container.clone(),
        service_metadata: b.service_metadata.clone(),
        size_bytes: b.size_bytes,
        object_count: b.object_count,
    }
}

fn error(e: old::DriverError) -> new::DriverError {
    match e {
        old::DriverError::Invalid(m) => new::DriverError::Invalid(m),
        old::DriverError::NotFound(m) => new::DriverError::NotFound(m),
        old::DriverError::Io(m) => new::DriverError::Io(m),
        old::DriverError::Cancelled => new::DriverError::Cancelled,
        old::DriverError::Other(m) => new::DriverError::Other(m),
    }
}

type Answer<T> = wasmtime::Result<Result<T, new::DriverError>>;

/// One instance of a 0.1.0 component, called with the newest types.
pub(crate) struct Driver0_1(pub(crate) BackupDriver);

impl Driver0_1 {
    fn exports(&self) -> &old_driver::Guest {
        self.0.holdfast_backup_driver()
    }

    pub async fn setup(
        &self,
        store: &mut Store<HostState>,
        config: &[new::Setting],
    ) -> Answer<latest::exports::holdfast::backup::driver::DriverInfo> {
        let config: Vec<old::Setting> = config.iter().map(setting).collect();
        Ok(self.exports().call_setup(store, &config).await?.map_err(error).map(|i| {
            latest::exports::holdfast::backup::driver::DriverInfo {
                service: i.service,
                supports_force_delete: i.supports_force_delete,
            }
        }))
    }

    pub async fn backup(
        &self,
        store: &mut Store<HostState>,
        backup: &new::BackupInfo,
        parent: Option<&new::BackupInfo>,
        volume_meta: Option<&str>,
        source: Resource<SourceRes>,
    ) -> Answer<latest::exports::holdfast::backup::driver::BackupOutcome> {
        let parent = parent.map(info);
        let r = self.exports().call_backup(store, &info(backup), parent.as_ref(), volume_meta, source).await?;
        Ok(r.map_err(error).map(|o| latest::exports::holdfast::backup::driver::BackupOutcome {
            container: o.container,
            service_metadata: o.service_metadata,
            object_count: o.object_count,
        }))
    }

    pub async fn restore(
        &self,
        store: &mut Store<HostState>,
        chain: &[new::BackupInfo],
        target: Resource<TargetRes>,
        volume_is_new: bool,
    ) -> Answer<Vec<Option<String>>> {
        let chain: Vec<old::BackupInfo> = chain.iter().map(info).collect();
        Ok(self.exports().call_restore(store, &chain, target, volume_is_new).await?.map_err(error))
    }

    pub async fn delete(&self, store: &mut Store<HostState>, backup: &new::BackupInfo) -> Answer<()> {
        Ok(self.exports().call_delete(store, &info(backup)).await?.map_err(error))
    }

    pub async fn export_record(&self, store: &mut Store<HostState>, backup: &new::BackupInfo) -> Answer<String> {
        Ok(self.exports().call_export_record(store, &info(backup)).await?.map_err(error))
    }

    pub async fn import_record(
        &self,
        store: &mut Store<HostState>,
        backup: &new::BackupInfo,
        driver_info: &str,
    ) -> Answer<()> {
        Ok(self.exports().call_import_record(store, &info(backup), driver_info).await?.map_err(error))
    }
}
