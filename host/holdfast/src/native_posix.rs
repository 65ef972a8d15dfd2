//! The posix driver compiled natively, for `holdfast bench --sandbox`: the SDK's
//! chunked driver over the host's scoped object store — the very code on both sides
//! of the wasm component's boundary — driven through the host's own pipeline with no
//! sandbox between them.
//! The SDK reaches the host through its `volume` traits; here they call
//! `holdfast-chunk` directly where the component's calls cross into wasmtime.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use holdfast_chunk::{
    BlockDigests, ChunkSink, ChunkSource, ChunkStream as HostStream, ProcessedChunk, ReadOptions as HostReadOptions,
    RestoreError, RestoreJob, RestoreWriter,
};
use holdfast_driver::{
    BackupDriver, BackupResult, DriverDescription, DriverError, DriverFailure, DriverId, OpContext, RestoreOutcome,
};
use holdfast_driver_sdk::chunked::{Chunked, ChunkedDriver, ObjectStore};
use holdfast_driver_sdk::settings::Settings;
use holdfast_driver_sdk::volume::{ChunkStream, Host, VolumeChunk, VolumeSource, VolumeTarget};
use holdfast_driver_sdk::{self as sdk, Level, VolumeError};
use holdfast_posix::Posix;
use holdfast_store::{LocalStore, Location, Scope, ScopedStore, StoreError};
use holdfast_types::Backup;

/// The host's store scoped to one operation, called directly where the component's
/// `objects` calls cross into wasmtime.
#[derive(Clone)]
struct NativeObjects(Rc<RefCell<ScopedStore>>);

fn store_error(e: StoreError) -> sdk::DriverError {
    match e {
        StoreError::NotFound(m) => sdk::DriverError::NotFound(m),
        StoreError::Denied(m) => sdk::DriverError::Invalid(m),
        e => sdk::DriverError::Io(e.to_string()),
    }
}

impl ObjectStore for NativeObjects {
    fn put(&self, container: &str, name: &str, data: &[u8]) -> Result<(), sdk::DriverError> {
        self.0.borrow_mut().put(container, name, data).map_err(store_error)
    }
    fn put_chunk(&self, container: &str, name: &str, chunk: impl VolumeChunk) -> Result<(), sdk::DriverError> {
        // As `put-chunk`: the stored bytes go to disk without a copy.
        self.0.borrow_mut().put(container, name, &chunk.stored()).map_err(store_error)
    }
    fn get(&self, container: &str, name: &str) -> Result<Vec<u8>, sdk::DriverError> {
        self.0.borrow().get(container, name).map_err(store_error)
    }
    fn pieces(&self) -> bool {
        true
    }
    fn append(&self, container: &str, name: &str, data: &[u8]) -> Result<(), sdk::DriverError> {
        self.0.borrow_mut().append(container, name, data).map_err(store_error)
    }
    fn get_range(&self, container: &str, name: &str, offset: u64, length: u32) -> Result<Vec<u8>, sdk::DriverError> {
        self.0.borrow().get_range(container, name, offset, length).map_err(store_error)
    }
    fn list(&self, container: &str, prefix: &str) -> Result<BTreeSet<String>, sdk::DriverError> {
        Ok(self.0.borrow().list(container, prefix).map_err(store_error)?.into_iter().collect())
    }
    fn delete(&self, container: &str, name: &str) -> Result<(), sdk::DriverError> {
        self.0.borrow_mut().delete(container, name).map_err(store_error)
    }
    fn flush(&self, _container: &str) -> Result<(), sdk::DriverError> {
        self.0.borrow_mut().flush().map_err(store_error)
    }
}

/// The posix driver's settings over a store handed to each operation.
struct NativeStore;

impl ChunkedDriver for NativeStore {
    type Store = NativeObjects;
    const SERVICE: &'static str = <Posix as ChunkedDriver>::SERVICE;

    fn open(_settings: &Settings) -> Result<NativeObjects, sdk::DriverError> {
        Err(sdk::DriverError::Invalid("the native store is handed to each operation".into()))
    }
}

/// The native posix driver, as the manager sees any driver.
pub struct NativePosix {
    id: DriverId,
    store: Arc<LocalStore>,
    settings: Vec<sdk::Setting>,
}

impl NativePosix {
    pub fn new(root: &std::path::Path, settings: Vec<(String, String)>) -> anyhow::Result<Self> {
        let settings: Vec<sdk::Setting> =
            settings.into_iter().map(|(key, value)| sdk::Setting { key, value }).collect();
        let id = DriverId {
            name: "posix-native".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            sha256: "0".repeat(64),
            wit_version: sdk::WIT_VERSION.into(),
        };
        Ok(NativePosix { id, store: Arc::new(LocalStore::open_checked(root)?), settings })
    }

    /// A fresh instance per call, configured by setup, its store scoped — as the
    /// plugin host does.
    fn instance(&self, op: &'static str, scope: Scope) -> Result<(Chunked<NativeStore>, NativeObjects), DriverError> {
        let objects = NativeObjects(Rc::new(RefCell::new(ScopedStore::new(self.store.clone(), scope))));
        let (c, _) = Chunked::setup_with(self.settings.clone(), objects.clone()).map_err(|e| self.failed(op, e))?;
        Ok((c, objects))
    }

    fn failed(&self, op: &'static str, e: sdk::DriverError) -> DriverError {
        let error = match e {
            sdk::DriverError::Invalid(m) => DriverFailure::Invalid(m),
            sdk::DriverError::NotFound(m) => DriverFailure::NotFound(m),
            sdk::DriverError::Io(m) => DriverFailure::Io(m),
            sdk::DriverError::Cancelled => DriverFailure::Cancelled,
            sdk::DriverError::Volume(v) => DriverFailure::Other(format!("volume: {v:?}")),
            sdk::DriverError::Other(m) => DriverFailure::Other(m),
        };
        DriverError::Driver { driver: self.id.name.clone(), op, error }
    }
}

fn info(b: &Backup) -> sdk::BackupInfo {
    let t = b.created_at;
    sdk::BackupInfo {
        id: b.id.clone(),
        volume_id: b.volume_id.clone(),
        name: b.display_name.clone(),
        description: b.display_description.clone(),
        created_at: sdk::Timestamp { seconds: t.seconds(), nanoseconds: t.subsec_micros() * 1000 },
        parent_id: b.parent_id.clone(),
        container: b.container.clone(),
        service_metadata: b.service_metadata.clone(),
        size_bytes: b.size_bytes,
        object_count: u32::try_from(b.object_count).unwrap_or(u32::MAX),
    }
}

/// The host services, over the operation's context and its store.
struct NativeHost(RefCell<OpContext>, Option<NativeObjects>);

impl Host for NativeHost {
    fn cancelled(&self) -> bool {
        self.0.borrow().cancel.load(Ordering::Relaxed)
    }
    fn record_location(&self, container: &str, service_metadata: &str) {
        let mut op = self.0.borrow_mut();
        let refused = op.on_location.as_mut().and_then(|cb| cb(container, service_metadata).err());
        if let Some(why) = refused {
            // The SDK's call returns nothing: stop the operation as the host would.
            tracing::warn!(reason = %why, "location refused; stopping the backup");
            op.cancel.store(true, Ordering::Relaxed);
        } else if let Some(objects) = &self.1 {
            let own = Location::new(container, service_metadata);
            if objects.0.borrow_mut().bind_write(own).is_err() {
                op.cancel.store(true, Ordering::Relaxed);
            }
        }
    }
    fn log(&self, level: Level, message: &str) {
        if matches!(level, Level::Warn | Level::Error) {
            tracing::warn!(target: "holdfast::driver", "{message}");
        }
    }
}

struct NativeSource<'a> {
    volume: Arc<dyn ChunkSource>,
    host: &'a NativeHost,
}

struct NativeStream<'a> {
    stream: RefCell<HostStream>,
    host: &'a NativeHost,
}

struct NativeChunk(ProcessedChunk);

impl VolumeChunk for NativeChunk {
    fn offset(&self) -> u64 {
        self.0.offset
    }
    fn length(&self) -> u64 {
        self.0.length
    }
    fn sha256s(&self) -> Vec<u8> {
        self.0.sha256s.concat()
    }
    fn md5(&self) -> Option<Vec<u8>> {
        self.0.md5.map(|d| d.to_vec())
    }
    fn unchanged(&self) -> bool {
        self.0.unchanged
    }
    fn stored_compression(&self) -> sdk::Compression {
        self.0.stored_compression.into()
    }
    fn stored_bytes(&self) -> Vec<u8> {
        self.0.stored_bytes()
    }
    fn stored(&self) -> std::borrow::Cow<'_, [u8]> {
        self.0.stored()
    }
    fn stored_digests(&self) -> sdk::StoredDigests {
        let (sha256, md5) = self.0.stored_digests();
        sdk::StoredDigests { sha256: sha256.to_vec(), md5: md5.to_vec() }
    }
    fn stored_md5(&self) -> Vec<u8> {
        self.0.stored_md5().to_vec()
    }
}

impl<'a> VolumeSource for NativeSource<'a> {
    type Chunk = NativeChunk;
    type Stream = NativeStream<'a>;
    fn size(&self) -> u64 {
        self.volume.size()
    }
    fn changed_extents(&self, since: &str) -> Result<Option<Vec<sdk::Extent>>, VolumeError> {
        let e = self.volume.changed_extents(since).map_err(|e| VolumeError::Io(e.to_string()))?;
        Ok(e.map(|e| e.into_iter().map(|e| sdk::Extent { offset: e.offset, length: e.len }).collect()))
    }
    fn chunks(&self, o: &sdk::ReadOptions) -> Result<NativeStream<'a>, VolumeError> {
        let parent = match &o.parent_sha256s {
            None => None,
            Some(b) => Some(Arc::new(
                holdfast_chunk::digest::sha256_list(b)
                    .ok_or_else(|| VolumeError::Invalid("parent-sha256s is not a multiple of 32 bytes".into()))?,
            )),
        };
        let opts = HostReadOptions {
            chunk_size: o.chunk_size,
            sha_block_size: o.sha_block_size,
            compression: o.compression.into(),
            md5: o.md5,
            workers: self.host.0.borrow().workers,
            parent,
            extents: o
                .extents
                .as_ref()
                .map(|e| e.iter().map(|e| holdfast_types::Extent { offset: e.offset, len: e.length }).collect()),
            diff_check: holdfast_chunk::DEFAULT_DIFF_CHECK,
            stored_hashes: holdfast_chunk::StoredHashes::None,
        };
        let stream = HostStream::start(self.volume.clone(), opts).map_err(|e| VolumeError::Io(e.to_string()))?;
        Ok(NativeStream { stream: RefCell::new(stream), host: self.host })
    }
}

impl ChunkStream for NativeStream<'_> {
    type Chunk = NativeChunk;
    fn next_chunk(&self) -> Result<Option<NativeChunk>, VolumeError> {
        let next = self.stream.borrow_mut().next_chunk().map_err(|e| VolumeError::Io(e.to_string()))?;
        if let Some(c) = &next {
            let op = self.host.0.borrow();
            op.done.fetch_add(c.length, Ordering::Relaxed);
            if !c.is_zero && c.read {
                op.moved.fetch_add(c.length, Ordering::Relaxed);
            }
        }
        Ok(next.map(NativeChunk))
    }
}

struct NativeTarget<'a> {
    writer: RestoreWriter,
    host: &'a NativeHost,
}

impl NativeTarget<'_> {
    fn queue(&self, job: RestoreJob) -> Result<(), VolumeError> {
        let length = job.length;
        self.writer.write(job).map_err(restore_error)?;
        self.host.0.borrow().done.fetch_add(length, Ordering::Relaxed);
        Ok(())
    }
}

fn restore_error(e: RestoreError) -> VolumeError {
    VolumeError::Io(e.to_string())
}

impl VolumeTarget for NativeTarget<'_> {
    fn write(
        &self,
        offset: u64,
        length: u64,
        compression: sdk::Compression,
        data: &[u8],
        md5: Option<&[u8]>,
    ) -> Result<(), VolumeError> {
        let md5 = md5.and_then(|m| <[u8; 16]>::try_from(m).ok());
        // The component's data arrives as a new host buffer too: copy, as its call does.
        let job =
            RestoreJob { offset, length, compression: compression.into(), data: data.to_vec(), md5, blocks: None };
        self.queue(job)
    }
    fn write_checked(
        &self,
        offset: u64,
        length: u64,
        compression: sdk::Compression,
        data: &[u8],
        block_size: u32,
        sha256s: &[u8],
    ) -> Result<(), VolumeError> {
        let blocks = Some(BlockDigests { block_size, digests: sha256s.to_vec() });
        let job =
            RestoreJob { offset, length, compression: compression.into(), data: data.to_vec(), md5: None, blocks };
        self.queue(job)
    }
    fn flush(&self) -> Result<(), VolumeError> {
        self.writer.flush().map_err(restore_error)
    }
}

impl BackupDriver for NativePosix {
    fn id(&self) -> &DriverId {
        &self.id
    }

    fn setup(&self) -> Result<DriverDescription, DriverError> {
        let objects = NativeObjects(Rc::new(RefCell::new(ScopedStore::new(self.store.clone(), Scope::none()))));
        let (_, d) =
            Chunked::<NativeStore>::setup_with(self.settings.clone(), objects).map_err(|e| self.failed("setup", e))?;
        Ok(DriverDescription { service: d.service, supports_force_delete: d.supports_force_delete })
    }

    fn backup(
        &self,
        op: OpContext,
        backup: &Backup,
        parent: Option<&Backup>,
        volume_meta: Option<&str>,
        source: Arc<dyn ChunkSource>,
    ) -> Result<BackupResult, DriverError> {
        let (c, objects) = self.instance("backup", Scope::for_backup(parent))?;
        let host = NativeHost(RefCell::new(op), Some(objects));
        let src = NativeSource { volume: source, host: &host };
        let out = c
            .backup(&host, info(backup), parent.map(info), volume_meta.map(str::to_owned), &src)
            .map_err(|e| self.failed("backup", e))?;
        Ok(BackupResult {
            container: out.container,
            service_metadata: out.service_metadata,
            object_count: out.object_count,
        })
    }

    fn restore(
        &self,
        op: OpContext,
        chain: &[Backup],
        target: Arc<dyn ChunkSink>,
        volume_is_new: bool,
    ) -> Result<RestoreOutcome, DriverError> {
        let (c, _) = self.instance("restore", Scope::for_restore(chain))?;
        let host_err = |m: String| DriverError::Host { driver: self.id.name.clone(), message: m };
        let writer = RestoreWriter::new(target, op.workers, volume_is_new).map_err(|e| host_err(e.to_string()))?;
        let host = NativeHost(RefCell::new(op), None);
        let target = NativeTarget { writer, host: &host };
        let metas =
            c.restore(&host, chain.iter().map(info).collect(), &target).map_err(|e| self.failed("restore", e))?;
        target.writer.flush().map_err(|e| host_err(e.to_string()))?;
        Ok(RestoreOutcome { volume_metas: metas })
    }

    fn delete(&self, _op: OpContext, backup: &Backup) -> Result<(), DriverError> {
        let (c, objects) = self.instance("delete", Scope::for_delete(backup))?;
        c.delete(info(backup)).map_err(|e| self.failed("delete", e))?;
        objects.0.borrow_mut().prune();
        Ok(())
    }

    fn export_record(&self, _backup: &Backup) -> Result<String, DriverError> {
        Ok("{}".into())
    }

    fn import_record(&self, _backup: &Backup, _driver_info: &str) -> Result<(), DriverError> {
        Ok(())
    }
}
