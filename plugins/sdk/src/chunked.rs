//! Cinder's `ChunkedBackupDriver`, once, for every driver that stores named objects:
//! give it an [`ObjectStore`] (put, get, list, delete) and it writes and reads
//! Cinder's chunked layout — objects `<prefix>-00001…`, `<prefix>_sha256file`,
//! `<prefix>_metadata` in a container — with incremental backups against the
//! parent's sha256file, md5 checks on restore, cleanup of a failed backup's objects.
//!
//! A driver implements [`ChunkedDriver`] (its service name and how to open its
//! store) and exports it with [`chunked_driver!`](crate::chunked_driver)`(Type, "name")`,
//! which also stamps its name and version; the posix driver is the reference example.

use std::cell::RefCell;
use std::collections::BTreeSet;

use crate::cinder::{self, ObjectEntry};
use crate::settings::Settings;
use crate::{
    BackupInfo, BackupOutcome, Compression, DriverError, DriverInfo, ReadOptions, Setting, Source, Target, host,
};

/// Where a driver keeps named objects, grouped in containers (a directory, a bucket
/// prefix, a Swift container).
pub trait ObjectStore {
    /// Store `data` as `container/name`, replacing any object of that name. It need
    /// not be durable until [`ObjectStore::flush`].
    fn put(&self, container: &str, name: &str, data: &[u8]) -> Result<(), DriverError>;

    /// The whole object; `DriverError::NotFound` when there is none.
    fn get(&self, container: &str, name: &str) -> Result<Vec<u8>, DriverError>;

    /// Names in `container` that start with `prefix`; an absent container is empty.
    fn list(&self, container: &str, prefix: &str) -> Result<BTreeSet<String>, DriverError>;

    /// Remove `container/name`; one already gone is fine.
    fn delete(&self, container: &str, name: &str) -> Result<(), DriverError>;

    /// Make every object put so far in `container` durable. Object stores whose puts
    /// are durable when they return need not override it.
    fn flush(&self, _container: &str) -> Result<(), DriverError> {
        Ok(())
    }

    /// Called before the first put into `container` (posix: create the directory).
    fn create_container(&self, _container: &str) -> Result<(), DriverError> {
        Ok(())
    }

    /// Called after a delete emptied what it could of `container` (posix: remove the
    /// now-empty directories).
    fn cleanup_container(&self, _container: &str) {}

    /// `check_for_setup_error`: fail if the store cannot take objects.
    fn check(&self) -> Result<(), DriverError> {
        Ok(())
    }
}

/// A driver in Cinder's chunked layout over an [`ObjectStore`].
pub trait ChunkedDriver {
    type Store: ObjectStore;

    /// Cinder's `service` recorded on each backup (its driver class path).
    const SERVICE: &'static str;

    /// Open the store from the operator's settings (called by setup and each call).
    fn open(settings: &Settings) -> Result<Self::Store, DriverError>;

    /// Object size when `backup_file_size` is not set. 8 MiB keeps the host's
    /// pipeline memory small; a multiple of the sha block size, at most 64 MiB.
    fn default_file_size() -> u64 {
        8 << 20
    }

    /// Compression when `backup_compression_algorithm` is not set.
    fn default_compression() -> Compression {
        Compression::Zstd
    }
}

/// What setup parsed, kept for the calls of this instance.
struct Config {
    settings: Vec<Setting>,
    file_size: u64,
    sha_block: u32,
    compression: Compression,
    verify_md5: bool,
}

thread_local! {
    static CONFIG: RefCell<Option<Config>> = const { RefCell::new(None) };
}

fn with_config<T>(f: impl FnOnce(&Config) -> Result<T, DriverError>) -> Result<T, DriverError> {
    CONFIG.with_borrow(|c| match c {
        Some(c) => f(c),
        None => Err(DriverError::Invalid("setup was not called".into())),
    })
}

fn store<D: ChunkedDriver>() -> Result<D::Store, DriverError> {
    with_config(|c| D::open(&Settings::new(c.settings.clone())))
}

/// Objects are flushed in batches of this many bytes: one sync per object stalls
/// small incremental objects on the disk's latency, one at the very end stalls on all
/// of a full backup's write-back at once.
const FLUSH_BATCH: u64 = 64 << 20;
const DEFAULT_SHA_BLOCK: u64 = 32_768;

/// `setup`: Cinder's settings (`backup_file_size`, `backup_sha_block_size_bytes`,
/// `backup_compression_algorithm`, `restore_verify_md5`), then the store's check.
pub fn setup<D: ChunkedDriver>(config: Vec<Setting>) -> Result<DriverInfo, DriverError> {
    let s = Settings::new(config.clone());
    let file_size = s.u64_or("backup_file_size", D::default_file_size())?;
    let sha_block = s.u64_or("backup_sha_block_size_bytes", DEFAULT_SHA_BLOCK)?;
    if sha_block == 0 || sha_block > u64::from(u32::MAX) || file_size == 0 || file_size % sha_block != 0 {
        return Err(DriverError::Invalid("Chunk size is not multiple of block size for creating hash.".into()));
    }
    let compression = match s.get("backup_compression_algorithm") {
        Some(algo) => Compression::parse(algo)
            .ok_or_else(|| DriverError::Invalid(format!("unknown backup_compression_algorithm {algo:?}")))?,
        None => D::default_compression(),
    };
    let verify_md5 = s.get("restore_verify_md5").is_none_or(|v| v != "false");
    D::open(&s)?.check()?;
    CONFIG.set(Some(Config { settings: config, file_size, sha_block: sha_block as u32, compression, verify_md5 }));
    Ok(DriverInfo { service: D::SERVICE.into(), supports_force_delete: true })
}

fn location(info: &BackupInfo) -> Result<(&str, &str), DriverError> {
    match (&info.container, &info.service_metadata) {
        (Some(c), Some(p)) => Ok((c, p)),
        _ => Err(DriverError::Invalid(format!("backup {} has no container or object prefix", info.id))),
    }
}

/// `backup`: objects for the changed chunks, then sha256file and metadata; on any
/// failure the objects written so far are removed.
pub fn backup<D: ChunkedDriver>(
    info: BackupInfo,
    parent: Option<BackupInfo>,
    volume_meta: Option<String>,
    source: &Source,
) -> Result<BackupOutcome, DriverError> {
    let (file_size, sha_block, compression) = with_config(|c| Ok((c.file_size, c.sha_block, c.compression)))?;
    if source.size() == 0 {
        return Err(DriverError::Invalid("volume size is 0".into()));
    }
    let store = store::<D>()?;
    let parent_sha256s = match &parent {
        Some(p) => Some(parent_digests(&store, p, sha_block)?),
        None => None,
    };
    let container = info.container.clone().unwrap_or_else(|| cinder::default_container(&info.id));
    cinder::validate_container(&container)?;
    let prefix = cinder::object_prefix(&info);
    store.create_container(&container)?;
    host::record_location(&container, &prefix);
    let options =
        ReadOptions { chunk_size: file_size, sha_block_size: sha_block, compression, md5: true, parent_sha256s };
    match write_objects(&store, &info, &container, &prefix, volume_meta.as_deref(), source, options) {
        Ok(object_count) => Ok(BackupOutcome { container, service_metadata: prefix, object_count }),
        Err(e) => {
            crate::log(crate::Level::Warn, format!("backup {} failed ({e}); removing its objects", info.id));
            remove_objects(&store, &container, &prefix)?;
            Err(e)
        }
    }
}

fn write_objects<S: ObjectStore>(
    store: &S,
    info: &BackupInfo,
    container: &str,
    prefix: &str,
    volume_meta: Option<&str>,
    source: &Source,
    options: ReadOptions,
) -> Result<u32, DriverError> {
    let stream = source.chunks(&options).map_err(DriverError::Invalid)?;
    let (mut objects, mut sha256s, mut unflushed) = (Vec::new(), Vec::new(), 0u64);
    while let Some(chunk) = stream.next().map_err(DriverError::Io)? {
        if host::cancelled() {
            return Err(DriverError::Cancelled);
        }
        sha256s.extend(chunk.sha256s());
        if chunk.unchanged() {
            continue; // incremental: as in the parent; only its digests go into our sha256file
        }
        let name = cinder::object_name(prefix, objects.len() as u32 + 1);
        let bytes = chunk.stored_bytes();
        store.put(container, &name, &bytes)?;
        unflushed += bytes.len() as u64;
        if unflushed >= FLUSH_BATCH {
            store.flush(container)?;
            unflushed = 0;
        }
        objects.push(ObjectEntry {
            name,
            offset: chunk.offset(),
            length: chunk.length(),
            compression: chunk.stored_compression().name().to_owned(),
            md5: chunk.md5(),
        });
    }
    // Every object is durable before the files that make the backup complete.
    store.flush(container)?;
    let sha = cinder::sha256file_json(info, options.sha_block_size, &sha256s);
    store.put(container, &format!("{prefix}{}", cinder::SHA256FILE_SUFFIX), sha.as_bytes())?;
    let meta = cinder::metadata_json(info, &objects, volume_meta);
    store.put(container, &format!("{prefix}{}", cinder::METADATA_SUFFIX), meta.as_bytes())?;
    store.flush(container)?;
    Ok(objects.len() as u32)
}

/// The parent's digests, checked against this driver's sha block size (Cinder: a
/// changed block size needs a full backup).
fn parent_digests<S: ObjectStore>(store: &S, parent: &BackupInfo, sha_block: u32) -> Result<Vec<u8>, DriverError> {
    let (container, prefix) =
        location(parent).map_err(|_| DriverError::Invalid(format!("parent backup {} has no objects", parent.id)))?;
    let (block, digests) =
        cinder::parse_sha256file(&store.get(container, &format!("{prefix}{}", cinder::SHA256FILE_SUFFIX))?)?;
    if block != u64::from(sha_block) {
        return Err(DriverError::Invalid(format!(
            "parent backup {} used {block}-byte sha blocks, this driver uses {sha_block}; do a full backup",
            parent.id
        )));
    }
    Ok(digests)
}

/// `restore`: each layer's objects onto the target, full backup first, checking that
/// the store holds exactly the objects the metadata lists.
pub fn restore<D: ChunkedDriver>(
    chain: Vec<BackupInfo>,
    target: &Target,
    _volume_is_new: bool,
) -> Result<Vec<Option<String>>, DriverError> {
    let verify = with_config(|c| Ok(c.verify_md5))?;
    let store = store::<D>()?;
    let mut metas = Vec::new();
    for (layer, info) in chain.iter().enumerate() {
        let (container, prefix) = location(info)?;
        let meta = cinder::parse_metadata(&store.get(container, &format!("{prefix}{}", cinder::METADATA_SUFFIX))?)?;
        let mut present = store.list(container, prefix)?;
        present.remove(&format!("{prefix}{}", cinder::METADATA_SUFFIX));
        present.remove(&format!("{prefix}{}", cinder::SHA256FILE_SUFFIX));
        let listed: BTreeSet<String> = meta.objects.iter().map(|o| o.name.clone()).collect();
        if present != listed {
            return Err(DriverError::Invalid(format!(
                "backup {}: actual object list does not match object list stored in metadata",
                info.id
            )));
        }
        for o in &meta.objects {
            if host::cancelled() {
                return Err(DriverError::Cancelled);
            }
            let compression = Compression::parse(&o.compression)
                .ok_or_else(|| DriverError::Invalid(format!("{}: unknown compression {:?}", o.name, o.compression)))?;
            let data = store.get(container, &o.name)?;
            let md5 = (verify && !o.md5.is_empty()).then(|| o.md5.clone());
            target
                .write(o.offset, o.length, compression, &data, md5.as_deref())
                .map_err(|e| DriverError::Io(format!("{}: {e}", o.name)))?;
        }
        // Later layers of the chain must land after this one.
        target.flush().map_err(DriverError::Io)?;
        host::progress(layer as u64 + 1, chain.len() as u64);
        metas.push(meta.volume_meta);
    }
    Ok(metas)
}

/// `delete`: every object of the backup; a backup that never reached the store, or
/// objects already gone, are fine.
pub fn delete<D: ChunkedDriver>(info: BackupInfo) -> Result<(), DriverError> {
    let Ok((container, prefix)) = location(&info) else { return Ok(()) };
    cinder::validate_container(container)?;
    remove_objects(&store::<D>()?, container, prefix)
}

fn remove_objects<S: ObjectStore>(store: &S, container: &str, prefix: &str) -> Result<(), DriverError> {
    for name in store.list(container, prefix)? {
        store.delete(container, &name)?;
    }
    store.cleanup_container(container);
    Ok(())
}

/// Implement the WIT `driver` interface for a [`ChunkedDriver`] and export it
/// (the export exists only in the wasm build).
#[macro_export]
macro_rules! chunked_driver {
    ($driver:ident, $name:literal) => {
        $crate::driver_manifest!($name);

        impl $crate::Driver for $driver {
            fn setup(config: Vec<$crate::Setting>) -> Result<$crate::DriverInfo, $crate::DriverError> {
                $crate::chunked::setup::<$driver>(config)
            }
            fn backup(
                info: $crate::BackupInfo,
                parent: Option<$crate::BackupInfo>,
                volume_meta: Option<String>,
                source: &$crate::Source,
            ) -> Result<$crate::BackupOutcome, $crate::DriverError> {
                $crate::chunked::backup::<$driver>(info, parent, volume_meta, source)
            }
            fn restore(
                chain: Vec<$crate::BackupInfo>,
                target: &$crate::Target,
                volume_is_new: bool,
            ) -> Result<Vec<Option<String>>, $crate::DriverError> {
                $crate::chunked::restore::<$driver>(chain, target, volume_is_new)
            }
            fn delete(info: $crate::BackupInfo) -> Result<(), $crate::DriverError> {
                $crate::chunked::delete::<$driver>(info)
            }
            fn export_record(_info: $crate::BackupInfo) -> Result<String, $crate::DriverError> {
                // Cinder's chunked drivers keep everything in the store: nothing to add.
                Ok("{}".into())
            }
            fn import_record(_info: $crate::BackupInfo, _driver_info: String) -> Result<(), $crate::DriverError> {
                Ok(())
            }
            fn supports_force_delete() -> bool {
                true
            }
        }

        #[cfg(target_arch = "wasm32")]
        $crate::export_driver!($driver with_types_in $crate::bindings);
    };
}
