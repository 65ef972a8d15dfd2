//! Cinder's `ChunkedBackupDriver`, once, for every driver that stores named objects:
//! give it an [`ObjectStore`] (put, get, list, delete) and it writes and reads
//! Cinder's chunked layout — objects `<prefix>-00001…`, `<prefix>_sha256file`,
//! `<prefix>_metadata` in a container — with incremental backups against the
//! parent's sha256file, md5 checks on restore, cleanup of a failed backup's objects.
//!
//! A driver implements [`ChunkedDriver`] (its service name and how to open its
//! store) and exports it with [`chunked_driver!`](crate::chunked_driver)`(Type, "name")`,
//! which also stamps its name and version; the posix driver is the reference example.
//!
//! [`Chunked`] talks to the host through the [`crate::volume`] traits, so the same
//! code also runs natively (the sandbox-cost benchmark drives it that way).

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::thread::LocalKey;

use crate::cinder::{self, ObjectEntry};
use crate::settings::Settings;
use crate::sha256file;
use crate::volume::{ChunkStream, Host, VolumeChunk, VolumeSource, VolumeTarget};
use crate::{BackupInfo, BackupOutcome, Compression, DriverError, DriverInfo, Level, ReadOptions, Setting};

/// An object fetched for a restore: its bytes in the driver, or kept by the host (a
/// download's body, WIT 0.2.8 `held-bytes`), which writes it onto the target from there.
pub enum Fetched {
    Bytes(Vec<u8>),
    Held(crate::HeldBytes),
}

impl Fetched {
    /// The bytes in the driver (copied out of the host, 16 MiB at a time, when it
    /// holds them): for the checks only the driver can make.
    pub fn into_bytes(self) -> Result<Vec<u8>, DriverError> {
        match self {
            Fetched::Bytes(b) => Ok(b),
            Fetched::Held(h) => {
                let len = h.length();
                let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
                while (out.len() as u64) < len {
                    let piece = h.read(out.len() as u64, 16 << 20)?;
                    if piece.is_empty() {
                        break;
                    }
                    out.extend_from_slice(&piece);
                }
                Ok(out)
            }
        }
    }
}

/// Where a driver keeps named objects, grouped in containers (a directory, a bucket
/// prefix, a Swift container).
pub trait ObjectStore {
    /// Store `data` as `container/name`, replacing any object of that name. It need
    /// not be durable until [`ObjectStore::flush`].
    fn put(&self, container: &str, name: &str, data: &[u8]) -> Result<(), DriverError>;

    /// Store a chunk's stored bytes as an object. By default through [`Self::put`];
    /// the host's store takes the chunk itself, and an object store's upload keeps it
    /// until the answer (the host writes its bytes into the request).
    fn put_chunk(&self, container: &str, name: &str, chunk: impl VolumeChunk) -> Result<(), DriverError> {
        self.put(container, name, &chunk.stored_bytes())
    }

    /// The whole object; `DriverError::NotFound` when there is none.
    fn get(&self, container: &str, name: &str) -> Result<Vec<u8>, DriverError>;

    /// Every object of `names`, in order, handed to `each` with its index. Stores that
    /// can keep several downloads in flight override it (S3, Swift); at most that many
    /// objects are held at once.
    fn get_each(
        &self,
        container: &str,
        names: &[String],
        each: &mut dyn FnMut(usize, Fetched) -> Result<(), DriverError>,
    ) -> Result<(), DriverError> {
        for (i, name) in names.iter().enumerate() {
            each(i, Fetched::Bytes(self.get(container, name)?))?;
        }
        Ok(())
    }

    /// Whether [`Self::append`] and [`Self::get_range`] work (the host's store, since
    /// WIT 0.2.6): then the sha256file is written and read in pieces and no longer
    /// grows the driver's memory with the volume (an incremental still holds its
    /// parent's raw digests, 1 MB per GiB, until the host has them). Without them it is
    /// held whole (~2.3 MB of text per GiB of volume).
    fn pieces(&self) -> bool {
        false
    }

    /// Add `data` to the end of `container/name` (see [`Self::pieces`]).
    fn append(&self, container: &str, name: &str, _data: &[u8]) -> Result<(), DriverError> {
        Err(DriverError::Invalid(format!("{container}/{name}: this store cannot append to an object")))
    }

    /// Up to `length` bytes of `container/name` from `offset`, fewer only at its end
    /// (see [`Self::pieces`]).
    fn get_range(&self, container: &str, name: &str, _offset: u64, _length: u32) -> Result<Vec<u8>, DriverError> {
        Err(DriverError::Invalid(format!("{container}/{name}: this store cannot read part of an object")))
    }

    /// Whether [`Self::restore_object`] can write onto `target` (the host's store onto
    /// the host's target, since WIT 0.2.6): a restore's objects then never enter the
    /// driver.
    fn restores_onto(&self, _target: &impl VolumeTarget) -> bool {
        false
    }

    /// Restore `container/name` onto `target` as [`VolumeTarget::write_checked`] with
    /// its bytes would (see [`Self::restores_onto`]).
    #[allow(clippy::too_many_arguments)]
    fn restore_object(
        &self,
        container: &str,
        name: &str,
        _target: &impl VolumeTarget,
        _offset: u64,
        _length: u64,
        _compression: Compression,
        _block_size: u32,
        _sha256s: &[u8],
    ) -> Result<(), DriverError> {
        Err(DriverError::Invalid(format!("{container}/{name}: this store cannot restore an object by itself")))
    }

    /// Names in `container` that start with `prefix`; an absent container is empty.
    fn list(&self, container: &str, prefix: &str) -> Result<BTreeSet<String>, DriverError>;

    /// Remove `container/name`; one already gone is fine.
    fn delete(&self, container: &str, name: &str) -> Result<(), DriverError>;

    /// Make every object put so far in `container` durable. Object stores whose puts
    /// are durable when they return need not override it.
    fn flush(&self, _container: &str) -> Result<(), DriverError> {
        Ok(())
    }

    /// Volume bytes a backup puts between flushes; `None`: one flush, after the last
    /// object. A store of files wants them synced in batches ([`FLUSH_BATCH`], the
    /// default); S3 and Swift say `None`: their flush waits for every upload in flight,
    /// and a drain every few objects kept fewer of them moving than they allow.
    fn flush_every(&self) -> Option<u64> {
        Some(FLUSH_BATCH)
    }

    /// Whether `container` is a name this store can hold (posix: a relative path).
    fn check_container(&self, container: &str) -> Result<(), DriverError> {
        cinder::validate_container(container)
    }

    /// Called before the first put into `container`, after the backup recorded its
    /// location (posix: nothing, the host makes directories; S3: the bucket).
    fn create_container(&self, _container: &str) -> Result<(), DriverError> {
        Ok(())
    }

    /// Stop what is in flight: the backup failed or was cancelled, and its objects are
    /// about to be removed (object stores: abort uploads still sending).
    fn abandon(&self) {}

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

    /// How objects are named: posix flat names and per-backup directories, or Cinder's
    /// object-store prefixes in one bucket or container.
    const LAYOUT: Layout = Layout::Posix;

    /// Cinder's option for the object size (`backup_file_size` for posix).
    const OBJECT_SIZE_OPTION: &'static str = "backup_file_size";

    /// Cinder's option for the sha block size.
    const BLOCK_SIZE_OPTION: &'static str = "backup_sha_block_size_bytes";

    /// Object size when its option is not set: 1 MiB. The host reads 8 MiB at a
    /// time and hashes the MD5s (Cinder's metadata) of its eight objects side by side;
    /// an object per read left that work to one chain. A multiple of the sha block
    /// size, at most 64 MiB.
    fn default_file_size() -> u64 {
        1 << 20
    }

    /// Compression when `backup_compression_algorithm` is not set.
    fn default_compression() -> Compression {
        Compression::Zstd
    }
}

/// Cinder's two object layouts (shared/docs/cinder-backup.md §4.2-4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// posix/NFS: container `<id[0:2]>/<id[2:4]>/<id>`, prefix
    /// `volume_<volume>_<time>_backup_<id>`.
    Posix,
    /// Swift/S3: the container (bucket) the option names, default `volumebackups`;
    /// prefix `volume_<volume>/<time>/az_<zone>_backup_<id>`.
    ObjectStore {
        /// The option naming the default container (`backup_s3_store_bucket`).
        container_option: &'static str,
    },
}

/// Cinder's default bucket or container for object stores.
pub const DEFAULT_OBJECT_CONTAINER: &str = "volumebackups";

/// A configured chunked driver: what `setup` parsed, and the store it opened. The
/// host makes a fresh instance for every call, so this lives for one operation.
pub struct Chunked<D: ChunkedDriver> {
    store: D::Store,
    /// The default container (object stores) and the zone in object prefixes.
    container: String,
    zone: String,
    /// `backup_file_size` when it is set; else the driver's default, grown for big
    /// volumes ([`Chunked::object_size`]).
    file_size: Option<u64>,
    sha_block: u32,
    compression: Compression,
    verify_md5: bool,
}

/// A store of files is flushed in batches of this many volume bytes: one sync per
/// object stalls small incremental objects on the disk's latency, one at the very end
/// stalls on all of a full backup's write-back at once.
pub const FLUSH_BATCH: u64 = 64 << 20;
const DEFAULT_SHA_BLOCK: u64 = 32_768;

/// Most objects one backup may have: restore and delete list a backup's objects
/// whole, and the host's store cuts a listing at 1,048,576 names (two of them the
/// sha256file and the metadata). A backup that would pass it fails instead.
pub const MAX_OBJECTS: usize = (1 << 20) - 2;

/// With the default object size, volumes that would make more objects than this get
/// larger ones (a backup's metadata, listing and object list grow with the count):
/// 1 MiB objects up to 128 GiB, 8 MiB at 1 TiB.
const DEFAULT_OBJECTS: u64 = 1 << 17;

/// The host's limit on one chunk (and on a sha block): the largest object the default
/// grows to.
const HOST_MAX_CHUNK: u64 = 64 << 20;

/// `default`, or larger (whole `block`s, at most [`HOST_MAX_CHUNK`]) so that a
/// volume of `size` bytes makes at most [`DEFAULT_OBJECTS`] objects.
fn grown_object_size(default: u64, size: u64, block: u64) -> u64 {
    let fit = size.div_ceil(DEFAULT_OBJECTS).div_ceil(block) * block;
    default.max(fit.min(HOST_MAX_CHUNK))
}

fn location(info: &BackupInfo) -> Result<(&str, &str), DriverError> {
    match (&info.container, &info.service_metadata) {
        (Some(c), Some(p)) => Ok((c, p)),
        _ => Err(DriverError::Invalid(format!("backup {} has no container or object prefix", info.id))),
    }
}

impl<D: ChunkedDriver> Chunked<D> {
    /// `setup`: Cinder's settings (`backup_file_size`, `backup_sha_block_size_bytes`,
    /// `backup_compression_algorithm`, `restore_verify_md5`), then the store's check.
    pub fn setup(config: Vec<Setting>) -> Result<(Self, DriverInfo), DriverError> {
        Self::setup_in(config, D::open)
    }

    /// [`Self::setup`] with a store made by the caller rather than [`ChunkedDriver::open`]
    /// (a native build handing each operation its own).
    pub fn setup_with(config: Vec<Setting>, store: D::Store) -> Result<(Self, DriverInfo), DriverError> {
        Self::setup_in(config, |_| Ok(store))
    }

    fn setup_in(
        config: Vec<Setting>,
        open: impl FnOnce(&Settings) -> Result<D::Store, DriverError>,
    ) -> Result<(Self, DriverInfo), DriverError> {
        let s = Settings::new(config);
        let file_size = s.u64(D::OBJECT_SIZE_OPTION)?;
        let sha_block = s.u64_or(D::BLOCK_SIZE_OPTION, DEFAULT_SHA_BLOCK)?;
        let checked = file_size.unwrap_or_else(D::default_file_size);
        if sha_block == 0 || sha_block > u64::from(u32::MAX) || checked == 0 || checked % sha_block != 0 {
            return Err(DriverError::Invalid("Chunk size is not multiple of block size for creating hash.".into()));
        }
        let compression = match s.get("backup_compression_algorithm") {
            Some(algo) => Compression::parse(algo)
                .ok_or_else(|| DriverError::Invalid(format!("unknown backup_compression_algorithm {algo:?}")))?,
            None => D::default_compression(),
        };
        let verify_md5 = s.get("restore_verify_md5").is_none_or(|v| v != "false");
        let container = match D::LAYOUT {
            Layout::Posix => String::new(),
            Layout::ObjectStore { container_option } => {
                s.get(container_option).unwrap_or(DEFAULT_OBJECT_CONTAINER).to_owned()
            }
        };
        let zone = s.get("storage_availability_zone").unwrap_or("nova").to_owned();
        let store = open(&s)?;
        store.check()?;
        let this = Chunked { store, container, zone, file_size, sha_block: sha_block as u32, compression, verify_md5 };
        Ok((this, DriverInfo { service: D::SERVICE.into(), supports_force_delete: true }))
    }

    /// The object size for a volume of `size` bytes: `backup_file_size` when set, else
    /// the driver's default, grown in whole sha blocks so that the volume makes at
    /// most [`DEFAULT_OBJECTS`] objects (up to 64 MiB).
    fn object_size(&self, size: u64) -> u64 {
        self.file_size.unwrap_or_else(|| grown_object_size(D::default_file_size(), size, u64::from(self.sha_block)))
    }

    /// `backup`: objects for the changed chunks, then sha256file and metadata; on any
    /// failure the objects written so far are removed.
    pub fn backup(
        &self,
        host: &impl Host,
        info: BackupInfo,
        parent: Option<BackupInfo>,
        volume_meta: Option<String>,
        source: &impl VolumeSource,
    ) -> Result<BackupOutcome, DriverError> {
        if source.size() == 0 {
            return Err(DriverError::Invalid("volume size is 0".into()));
        }
        let (container, prefix) = match D::LAYOUT {
            Layout::Posix => (
                info.container.clone().unwrap_or_else(|| cinder::default_container(&info.id)),
                cinder::object_prefix(&info),
            ),
            Layout::ObjectStore { .. } => (
                info.container.clone().unwrap_or_else(|| self.container.clone()),
                cinder::object_store_prefix(&info, &self.zone),
            ),
        };
        self.store.check_container(&container)?;
        // The parent's digests are the largest thing the driver holds until the host
        // has its copy: read after the names above, so that nothing small is left on
        // top of them and the sha256file's room can take their place.
        let blocks = source.size().div_ceil(u64::from(self.sha_block));
        let parent_sha256s = match &parent {
            Some(p) => Some(self.parent_digests(p, blocks)?),
            None => None,
        };
        host.record_location(&container, &prefix);
        self.store.create_container(&container)?;
        // An incremental reads only what the volume says changed since the parent
        // (RBD's diff, checked by the host); elsewhere the parent's digests stand.
        let extents = match &parent {
            Some(p) if parent_sha256s.is_some() => source.changed_extents(&p.id)?,
            _ => None,
        };
        let options = ReadOptions {
            chunk_size: self.object_size(source.size()),
            sha_block_size: self.sha_block,
            compression: self.compression,
            md5: true,
            parent_sha256s,
            extents,
        };
        match self.write_objects(host, &info, &container, &prefix, volume_meta.as_deref(), source, options) {
            Ok(object_count) => Ok(BackupOutcome { container, service_metadata: prefix, object_count }),
            Err(e) => {
                host.log(Level::Warn, &format!("backup {} failed ({e}); removing its objects", info.id));
                self.store.abandon();
                let _cleaning = crate::transfer::cleaning();
                self.remove_objects(&container, &prefix)?;
                Err(e)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn write_objects(
        &self,
        host: &impl Host,
        info: &BackupInfo,
        container: &str,
        prefix: &str,
        volume_meta: Option<&str>,
        source: &impl VolumeSource,
        mut options: ReadOptions,
    ) -> Result<u32, DriverError> {
        let stream = source.chunks(&options)?;
        // Guest memory never shrinks, so its peak is what counts: the host has its own
        // copy of the parent's digests now, and the sha256file is written in the room
        // they leave (in pieces where the store appends; else whole, ~2.3 MB of text per
        // GiB of volume).
        options.parent_sha256s = None;
        let sha_name = format!("{prefix}{}", cinder::SHA256FILE_SUFFIX);
        let mut sha256file = if self.store.pieces() {
            sha256file::Writer::Pieces(sha256file::Pieces::new(info, options.sha_block_size))
        } else {
            let blocks = source.size().div_ceil(u64::from(options.sha_block_size));
            sha256file::Writer::Whole(sha256file::Builder::new(info, options.sha_block_size, blocks)?)
        };
        // Its first piece replaces any stale object of its name; the others append.
        let mut sha_out = |first: bool, text: &[u8]| match first {
            true => self.store.put(container, &sha_name, text),
            false => self.store.append(container, &sha_name, text),
        };
        let (mut objects, mut unflushed) = (Vec::new(), 0u64);
        let flush_every = self.store.flush_every();
        while let Some(chunk) = stream.next_chunk()? {
            if host.cancelled() {
                return Err(DriverError::Cancelled);
            }
            sha256file.push(&chunk.sha256s(), &mut sha_out)?;
            if chunk.unchanged() {
                continue; // incremental: as in the parent; only its digests go into our sha256file
            }
            if objects.len() >= MAX_OBJECTS {
                return Err(DriverError::Invalid(format!(
                    "backup {} would have more than {MAX_OBJECTS} objects (a listing holds no more): \
                     set a larger backup_file_size",
                    info.id
                )));
            }
            let name = cinder::object_name(prefix, objects.len() as u32 + 1);
            let entry = ObjectEntry {
                name,
                offset: chunk.offset(),
                length: chunk.length(),
                compression: chunk.stored_compression().name().to_owned(),
                md5: chunk.md5().map(|d| cinder::hex(&d)).unwrap_or_default(),
            };
            self.store.put_chunk(container, &entry.name, chunk)?;
            unflushed += entry.length;
            if flush_every.is_some_and(|every| unflushed >= every) {
                self.store.flush(container)?;
                unflushed = 0;
            }
            objects.push(entry);
        }
        // The host's read buffers are freed before the sha256file's text is written
        // out (its pages touched here, a copy of it made in the host).
        drop(stream);
        // The sha256file complete, then every object and it durable before the
        // metadata that makes the backup complete: a crash in between leaves no
        // metadata beside a cut sha256file. Its room is the metadata's.
        sha256file.finish(&mut sha_out)?;
        self.store.flush(container)?;
        let meta = cinder::metadata_json(info, &objects, volume_meta);
        self.store.put(container, &format!("{prefix}{}", cinder::METADATA_SUFFIX), meta.as_bytes())?;
        self.store.flush(container)?;
        Ok(objects.len() as u32)
    }

    /// The parent's digests, checked against this driver's sha block size (Cinder: a
    /// changed block size needs a full backup); room for `blocks` of them (the volume's
    /// now) is taken at once.
    fn parent_digests(&self, parent: &BackupInfo, blocks: u64) -> Result<Vec<u8>, DriverError> {
        let (container, prefix) = location(parent)
            .map_err(|_| DriverError::Invalid(format!("parent backup {} has no objects", parent.id)))?;
        let opened = self.open_sha256file(container, prefix)?;
        let block = opened.block_size();
        if block != u64::from(self.sha_block) {
            return Err(DriverError::Invalid(format!(
                "parent backup {} used {block}-byte sha blocks, this driver uses {}; do a full backup",
                parent.id, self.sha_block
            )));
        }
        match opened {
            sha256file::Opened::Pieces(reader) => {
                let mut digests = Vec::new();
                usize::try_from(blocks.saturating_mul(32))
                    .ok()
                    .and_then(|room| digests.try_reserve_exact(room).ok())
                    .ok_or_else(|| {
                    DriverError::Invalid(format!(
                        "the digests of parent backup {} ({blocks} sha blocks) do not fit the driver's memory; \
                             raise its memory grant",
                        parent.id
                    ))
                })?;
                reader.read_to_end(&mut digests)?;
                Ok(digests)
            }
            sha256file::Opened::Whole { digests, .. } => Ok(digests),
        }
    }

    /// A backup's sha256file, in pieces where the store reads ranges, else whole.
    fn open_sha256file<'a>(
        &'a self,
        container: &'a str,
        prefix: &str,
    ) -> Result<sha256file::Opened<impl sha256file::Fetch + 'a>, DriverError> {
        let name = format!("{prefix}{}", cinder::SHA256FILE_SUFFIX);
        let whole = || self.store.get(container, &name);
        let fetch = {
            let name = name.clone();
            move |offset, length| self.store.get_range(container, &name, offset, length)
        };
        sha256file::Opened::open(self.store.pieces(), fetch, whole)
    }

    /// `restore`: each layer's objects onto the target, full backup first, checking that
    /// the store holds exactly the objects the metadata lists.
    pub fn restore(
        &self,
        host: &impl Host,
        chain: Vec<BackupInfo>,
        target: &impl VolumeTarget,
    ) -> Result<Vec<Option<String>>, DriverError> {
        let store = &self.store;
        let mut metas = Vec::new();
        for info in &chain {
            let (container, prefix) = location(info)?;
            // Objects are checked against this backup's sha256file (SHA-256 per block:
            // about twice MD5's speed, and the stronger check); by the metadata's MD5
            // where it cannot be used. Read first: the room its text leaves holds the
            // metadata's (the driver's memory never shrinks).
            let mut checks = match self.verify_md5 {
                true => self.object_checks(container, prefix),
                false => sha256file::Checks::Md5,
            };
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
            if store.restores_onto(target) {
                // The host's store onto the host's target: the bytes stay in the host.
                for o in &meta.objects {
                    self.restore_object(host, target, container, o, &mut checks, None)?;
                }
            } else {
                let names: Vec<String> = meta.objects.iter().map(|o| o.name.clone()).collect();
                store.get_each(container, &names, &mut |i, data| {
                    self.restore_object(host, target, container, &meta.objects[i], &mut checks, Some(data))
                })?;
            }
            // Later layers of the chain must land after this one.
            target.flush()?;
            metas.push(meta.volume_meta);
        }
        Ok(metas)
    }

    /// Write object `o` onto `target`, checked by its sha256file digests where `checks`
    /// has them, else by its MD5; `data`: its bytes, or `None` to have the store restore
    /// it itself (fetched here all the same when only its MD5 can check it).
    fn restore_object(
        &self,
        host: &impl Host,
        target: &impl VolumeTarget,
        container: &str,
        o: &ObjectEntry,
        checks: &mut sha256file::Checks<impl sha256file::Fetch>,
        data: Option<Fetched>,
    ) -> Result<(), DriverError> {
        if host.cancelled() {
            return Err(DriverError::Cancelled);
        }
        let compression = Compression::parse(&o.compression)
            .ok_or_else(|| DriverError::Invalid(format!("{}: unknown compression {:?}", o.name, o.compression)))?;
        // Checked by the sha256file's blocks where it has them, else by Cinder's MD5.
        let blocks = checks.object(o.offset, o.length);
        let md5 = if blocks.is_some() { None } else { self.object_md5(o)? };
        match (data, target.as_wit()) {
            // Held by the host: written from there, onto the host's target.
            (Some(Fetched::Held(h)), Some(t)) => {
                let check = match blocks {
                    Some((size, digests)) => crate::WriteCheck::Sha256Blocks((size, digests.to_vec())),
                    None => md5.map_or(crate::WriteCheck::None, crate::WriteCheck::Md5),
                };
                Ok(t.write_held(o.offset, o.length, compression, h, &check)?)
            }
            (data, _) => match (blocks, data.map(Fetched::into_bytes).transpose()?) {
                (Some((size, digests)), Some(data)) => {
                    Ok(target.write_checked(o.offset, o.length, compression, &data, size, digests)?)
                }
                (Some((size, digests)), None) => self.store.restore_object(
                    container,
                    &o.name,
                    target,
                    o.offset,
                    o.length,
                    compression,
                    size,
                    digests,
                ),
                (None, data) => {
                    let data = match data {
                        Some(data) => data,
                        None => self.store.get(container, &o.name)?,
                    };
                    Ok(target.write(o.offset, o.length, compression, &data, md5.as_deref())?)
                }
            },
        }
    }

    /// The object's MD5 from Cinder's metadata, when the restore checks it.
    fn object_md5(&self, o: &ObjectEntry) -> Result<Option<Vec<u8>>, DriverError> {
        match (self.verify_md5, o.md5.as_str()) {
            (false, _) | (_, "") => Ok(None),
            (true, hex) => cinder::unhex(hex)
                .filter(|d| d.len() == 16)
                .map(Some)
                .ok_or_else(|| DriverError::Invalid(format!("{}: md5 {hex:?} is not 32 hex digits", o.name))),
        }
    }

    /// A backup's sha256file as restore's checks, when it is there and usable (its
    /// blocks within the sizes the host checks; Cinder's default is 32 KiB): read in
    /// pieces as the objects come where the store can, else whole.
    fn object_checks<'a>(
        &'a self,
        container: &'a str,
        prefix: &str,
    ) -> sha256file::Checks<impl sha256file::Fetch + 'a> {
        use sha256file::{Checks, Opened};
        let usable = |size: u64| u32::try_from(size).ok().filter(|&s| (4096..=HOST_MAX_CHUNK).contains(&u64::from(s)));
        match self.open_sha256file(container, prefix) {
            Ok(Opened::Pieces(reader)) => {
                usable(reader.block_size()).map_or(Checks::Md5, |b| Checks::pieces(b, reader))
            }
            Ok(Opened::Whole { block, digests }) => {
                usable(block).map_or(Checks::Md5, |block| Checks::Whole { block, digests })
            }
            Err(_) => Checks::Md5,
        }
    }

    /// `delete`: every object of the backup; a backup that never reached the store, or
    /// objects already gone, are fine.
    pub fn delete(&self, info: BackupInfo) -> Result<(), DriverError> {
        let Ok((container, prefix)) = location(&info) else { return Ok(()) };
        self.store.check_container(container)?;
        self.remove_objects(container, prefix)
    }

    fn remove_objects(&self, container: &str, prefix: &str) -> Result<(), DriverError> {
        for name in self.store.list(container, prefix)? {
            self.store.delete(container, &name)?;
        }
        self.store.cleanup_container(container);
        Ok(())
    }
}

/// The instance a component's calls share (one per wasm instance; [`chunked_driver!`]
/// declares it).
pub type Slot<D> = RefCell<Option<Chunked<D>>>;

/// Run `f` on the instance `setup` configured.
pub fn with<D: ChunkedDriver, T>(
    slot: &'static LocalKey<Slot<D>>,
    f: impl FnOnce(&Chunked<D>) -> Result<T, DriverError>,
) -> Result<T, DriverError> {
    slot.with_borrow(|c| match c {
        Some(c) => f(c),
        None => Err(DriverError::Invalid("setup was not called".into())),
    })
}

/// Implement the WIT `driver` interface for a [`ChunkedDriver`] and export it
/// (the export exists only in the wasm build).
#[macro_export]
macro_rules! chunked_driver {
    ($driver:ident, $name:literal) => {
        $crate::driver_manifest!($name);

        const _: () = {
            use $crate::chunked::{Chunked, Slot, with};
            use $crate::volume::WitHost;

            ::std::thread_local! {
                static INSTANCE: Slot<$driver> = const { ::std::cell::RefCell::new(None) };
            }

            impl $crate::Driver for $driver {
                fn setup(config: Vec<$crate::Setting>) -> Result<$crate::DriverInfo, $crate::DriverError> {
                    let (instance, info) = Chunked::<$driver>::setup(config)?;
                    INSTANCE.set(Some(instance));
                    Ok(info)
                }
                fn backup(
                    info: $crate::BackupInfo,
                    parent: Option<$crate::BackupInfo>,
                    volume_meta: Option<String>,
                    source: &$crate::Source,
                ) -> Result<$crate::BackupOutcome, $crate::DriverError> {
                    with(&INSTANCE, |d| d.backup(&WitHost, info, parent, volume_meta, source))
                }
                fn restore(
                    chain: Vec<$crate::BackupInfo>,
                    target: &$crate::Target,
                    _volume_is_new: bool,
                ) -> Result<Vec<Option<String>>, $crate::DriverError> {
                    with(&INSTANCE, |d| d.restore(&WitHost, chain, target))
                }
                fn delete(info: $crate::BackupInfo) -> Result<(), $crate::DriverError> {
                    with(&INSTANCE, |d| d.delete(info))
                }
                fn export_record(_info: $crate::BackupInfo) -> Result<String, $crate::DriverError> {
                    // Cinder's chunked drivers keep everything in the store: nothing to add.
                    Ok("{}".into())
                }
                fn import_record(
                    _info: $crate::BackupInfo,
                    _driver_info: String,
                ) -> Result<(), $crate::DriverError> {
                    Ok(())
                }
            }
        };

        #[cfg(target_arch = "wasm32")]
        $crate::export_driver!($driver with_types_in $crate::bindings);
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_object_grows_with_big_volumes_only() {
        const GIB: u64 = 1 << 30;
        let grown = |default, size| grown_object_size(default, size, 32_768);
        assert_eq!(grown(1 << 20, GIB), 1 << 20);
        assert_eq!(grown(1 << 20, 128 * GIB), 1 << 20);
        assert_eq!(grown(1 << 20, 200 * GIB), 1_638_400, "whole sha blocks");
        assert_eq!(grown(1 << 20, 1024 * GIB), 8 << 20);
        assert_eq!(grown(1 << 20, 16 * 1024 * GIB), 64 << 20, "at most the host's chunk limit");
        assert_eq!(grown(50 << 20, GIB), 50 << 20, "an object store's default stands");
        for size in [GIB, 200 * GIB, 1024 * GIB, 8 * 1024 * GIB] {
            assert!(size.div_ceil(grown(1 << 20, size)) <= DEFAULT_OBJECTS, "{size}");
        }
    }
}
