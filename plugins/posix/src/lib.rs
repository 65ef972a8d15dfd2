//! The posix/NFS backup driver: Cinder's chunked layout in the directory the host
//! preopened at `/backup`. Byte-for-byte what Cinder's PosixBackupDriver writes and
//! reads (shared/docs/cinder-backup.md §4), with zstd as the default compression.
//!
//! The host hashes and compresses each chunk; this driver names objects, writes
//! them, and keeps the metadata and sha256file.

use std::cell::RefCell;
use std::collections::BTreeSet;

use holdfast_driver_sdk::cinder::{self, ObjectEntry};
use holdfast_driver_sdk::settings::Settings;
use holdfast_driver_sdk::store::Store;
use holdfast_driver_sdk::{
    BackupInfo, BackupOutcome, Compression, Driver, DriverError, DriverInfo, Level, ReadOptions, Setting, Source,
    Target, host, log,
};

const MOUNT: &str = "/backup";
const SERVICE: &str = "cinder.backup.drivers.posix.PosixBackupDriver";
/// Holdfast's default object size: 8 MiB keeps the host pipeline's memory small
/// (Cinder's 1999994880 also works, at (workers + 2) × that much RAM). Must be a
/// multiple of the sha block size; the host caps it at 64 MiB.
const DEFAULT_FILE_SIZE: u64 = 8 << 20;
const DEFAULT_SHA_BLOCK: u64 = 32_768;

struct Config {
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

fn io_err(what: &str, path: &str, e: std::io::Error) -> DriverError {
    DriverError::Io(format!("{what} {path}: {e}"))
}

/// Names of the entries of `container` that start with `prefix`.
fn entries_with_prefix(store: &Store, container: &str, prefix: &str) -> Result<BTreeSet<String>, DriverError> {
    let dir = store.path(container);
    let entries = std::fs::read_dir(&dir).map_err(|e| io_err("listing", &dir, e))?;
    Ok(entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).filter(|n| n.starts_with(prefix)).collect())
}

/// Remove a backup's objects; missing files are fine. Empty default container
/// directories are removed too (Cinder leaves them behind).
fn remove_objects(store: &Store, container: &str, prefix: &str) -> Result<(), DriverError> {
    let names = match entries_with_prefix(store, container, prefix) {
        Ok(n) => n,
        Err(DriverError::Io(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    for name in names {
        let path = store.path(&format!("{container}/{name}"));
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("removing", &path, e)),
        }
    }
    let mut dir = container.to_owned();
    while !dir.is_empty() && std::fs::remove_dir(store.path(&dir)).is_ok() {
        dir = dir.rsplit_once('/').map(|(parent, _)| parent.to_owned()).unwrap_or_default();
    }
    Ok(())
}

/// The driver; exported as the component's `driver` interface in the wasm build.
pub struct Posix;

impl Driver for Posix {
    fn setup(config: Vec<Setting>) -> Result<DriverInfo, DriverError> {
        let s = Settings::new(config);
        let file_size = s.u64_or("backup_file_size", DEFAULT_FILE_SIZE)?;
        let sha_block = s.u64_or("backup_sha_block_size_bytes", DEFAULT_SHA_BLOCK)?;
        if sha_block == 0 || sha_block > u64::from(u32::MAX) || file_size == 0 || file_size % sha_block != 0 {
            return Err(DriverError::Invalid("Chunk size is not multiple of block size for creating hash.".into()));
        }
        let algo = s.get("backup_compression_algorithm").unwrap_or("zstd");
        let compression = Compression::parse(algo)
            .ok_or_else(|| DriverError::Invalid(format!("unknown backup_compression_algorithm {algo:?}")))?;
        let verify_md5 = s.get("restore_verify_md5").is_none_or(|v| v != "false");
        // check_for_setup_error: the directory must exist and take a file.
        let store = Store::open(MOUNT)?;
        let probe = ".holdfast-setup-probe";
        store.write_unsynced(probe, b"ok")?; // writability is the question, not durability
        std::fs::remove_file(store.path(probe)).map_err(|e| io_err("removing", probe, e))?;
        CONFIG.set(Some(Config { file_size, sha_block: sha_block as u32, compression, verify_md5 }));
        Ok(DriverInfo { service: SERVICE.into(), supports_force_delete: true })
    }

    fn backup(
        info: BackupInfo,
        parent: Option<BackupInfo>,
        volume_meta: Option<String>,
        source: &Source,
    ) -> Result<BackupOutcome, DriverError> {
        let (file_size, sha_block, compression) = with_config(|c| Ok((c.file_size, c.sha_block, c.compression)))?;
        if source.size() == 0 {
            return Err(DriverError::Invalid("volume size is 0".into()));
        }
        let store = Store::open(MOUNT)?;
        let parent_sha256s = match &parent {
            Some(p) => Some(parent_digests(&store, p, sha_block)?),
            None => None,
        };
        let container = info.container.clone().unwrap_or_else(|| cinder::default_container(&info.id));
        cinder::validate_container(&container)?;
        let prefix = cinder::object_prefix(&info);
        let dir = store.path(&container);
        std::fs::create_dir_all(&dir).map_err(|e| io_err("creating", &dir, e))?;
        host::record_location(&container, &prefix);

        let result = write_objects(
            &store,
            &info,
            &container,
            &prefix,
            volume_meta.as_deref(),
            source,
            ReadOptions { chunk_size: file_size, sha_block_size: sha_block, compression, md5: true, parent_sha256s },
        );
        match result {
            Ok(object_count) => Ok(BackupOutcome { container, service_metadata: prefix, object_count }),
            Err(e) => {
                log(Level::Warn, format!("backup {} failed ({e}); removing its objects", info.id));
                remove_objects(&store, &container, &prefix)?;
                Err(e)
            }
        }
    }

    fn restore(
        chain: Vec<BackupInfo>,
        target: &Target,
        _volume_is_new: bool,
    ) -> Result<Vec<Option<String>>, DriverError> {
        let verify = with_config(|c| Ok(c.verify_md5))?;
        let store = Store::open(MOUNT)?;
        let total: u64 = chain.len() as u64;
        let mut metas = Vec::new();
        for (layer, info) in chain.iter().enumerate() {
            let (Some(container), Some(prefix)) = (&info.container, &info.service_metadata) else {
                return Err(DriverError::Invalid(format!("backup {} has no container or object prefix", info.id)));
            };
            let meta_name = format!("{container}/{prefix}{}", cinder::METADATA_SUFFIX);
            let meta = cinder::parse_metadata(&store.read(&meta_name)?)?;
            let mut expected: BTreeSet<String> = entries_with_prefix(&store, container, prefix)?;
            expected.remove(&format!("{prefix}{}", cinder::METADATA_SUFFIX));
            expected.remove(&format!("{prefix}{}", cinder::SHA256FILE_SUFFIX));
            let listed: BTreeSet<String> = meta.objects.iter().map(|o| o.name.clone()).collect();
            if expected != listed {
                return Err(DriverError::Invalid(format!(
                    "backup {}: actual object list does not match object list stored in metadata",
                    info.id
                )));
            }
            for o in &meta.objects {
                if host::cancelled() {
                    return Err(DriverError::Cancelled);
                }
                let compression = Compression::parse(&o.compression).ok_or_else(|| {
                    DriverError::Invalid(format!("{}: unknown compression {:?}", o.name, o.compression))
                })?;
                let data = store.read(&format!("{container}/{}", o.name))?;
                let md5 = (verify && !o.md5.is_empty()).then(|| o.md5.clone());
                target
                    .write(o.offset, o.length, compression, &data, md5.as_deref())
                    .map_err(|e| DriverError::Io(format!("{}: {e}", o.name)))?;
            }
            // Later layers of the chain must land after this one.
            target.flush().map_err(DriverError::Io)?;
            host::progress(layer as u64 + 1, total);
            metas.push(meta.volume_meta);
        }
        Ok(metas)
    }

    fn delete(info: BackupInfo) -> Result<(), DriverError> {
        let (Some(container), Some(prefix)) = (&info.container, &info.service_metadata) else {
            return Ok(()); // never reached the store
        };
        cinder::validate_container(container)?;
        remove_objects(&Store::open(MOUNT)?, container, prefix)
    }

    fn export_record(_backup: BackupInfo) -> Result<String, DriverError> {
        Ok("{}".into())
    }

    fn import_record(_backup: BackupInfo, _driver_info: String) -> Result<(), DriverError> {
        Ok(())
    }

    fn supports_force_delete() -> bool {
        true
    }
}

/// Objects are synced in batches of this many bytes: one fsync per object stalls
/// small incremental objects on the disk's latency, one at the very end stalls on
/// all of a full backup's write-back at once.
const SYNC_BATCH: u64 = 64 << 20;

fn sync_all(store: &Store, paths: &mut Vec<String>) -> Result<(), DriverError> {
    for p in paths.drain(..) {
        store.sync(&p)?;
    }
    Ok(())
}

/// The parent's digests, checked against this driver's sha block size (Cinder: a
/// changed block size needs a full backup).
fn parent_digests(store: &Store, parent: &BackupInfo, sha_block: u32) -> Result<Vec<u8>, DriverError> {
    let (Some(container), Some(prefix)) = (&parent.container, &parent.service_metadata) else {
        return Err(DriverError::Invalid(format!("parent backup {} has no objects", parent.id)));
    };
    let file = format!("{container}/{prefix}{}", cinder::SHA256FILE_SUFFIX);
    let (block, digests) = cinder::parse_sha256file(&store.read(&file)?)?;
    if block != u64::from(sha_block) {
        return Err(DriverError::Invalid(format!(
            "parent backup {} used {block}-byte sha blocks, this driver uses {sha_block}; do a full backup",
            parent.id
        )));
    }
    Ok(digests)
}

fn write_objects(
    store: &Store,
    info: &BackupInfo,
    container: &str,
    prefix: &str,
    volume_meta: Option<&str>,
    source: &Source,
    options: ReadOptions,
) -> Result<u32, DriverError> {
    let stream = source.chunks(&options).map_err(DriverError::Invalid)?;
    let mut objects = Vec::new();
    let mut sha256s = Vec::new();
    let (mut unsynced, mut unsynced_bytes) = (Vec::new(), 0u64);
    while let Some(chunk) = stream.next().map_err(DriverError::Io)? {
        if host::cancelled() {
            return Err(DriverError::Cancelled);
        }
        if chunk.unchanged() {
            // Incremental: same as the parent; only the digests go into our sha256file.
            sha256s.extend(chunk.sha256s());
            continue;
        }
        let name = cinder::object_name(prefix, objects.len() as u32 + 1);
        let path = format!("{container}/{name}");
        let bytes = chunk.stored_bytes();
        store.write_unsynced(&path, &bytes)?;
        unsynced_bytes += bytes.len() as u64;
        unsynced.push(path);
        if unsynced_bytes >= SYNC_BATCH {
            sync_all(store, &mut unsynced)?;
            unsynced_bytes = 0;
        }
        sha256s.extend(chunk.sha256s());
        objects.push(ObjectEntry {
            name,
            offset: chunk.offset(),
            length: chunk.length(),
            compression: chunk.stored_compression().name().to_owned(),
            md5: chunk.md5(),
        });
    }
    // Every object is durable before the files that make the backup complete.
    sync_all(store, &mut unsynced)?;
    let sha = cinder::sha256file_json(info, options.sha_block_size, &sha256s);
    store.write(&format!("{container}/{prefix}{}", cinder::SHA256FILE_SUFFIX), sha.as_bytes())?;
    let meta = cinder::metadata_json(info, &objects, volume_meta);
    store.write(&format!("{container}/{prefix}{}", cinder::METADATA_SUFFIX), meta.as_bytes())?;
    store.sync(container)?;
    Ok(objects.len() as u32)
}

// Exports only exist in the wasm build: native symbol names cannot hold WIT's `:`/`@`.
#[cfg(target_arch = "wasm32")]
holdfast_driver_sdk::export_driver!(Posix with_types_in holdfast_driver_sdk::bindings);
