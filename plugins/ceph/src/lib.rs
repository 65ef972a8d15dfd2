//! The Ceph backup driver: Cinder's CephBackupDriver (shared/docs/cinder-backup.md §6)
//! as policy, with the host moving the bytes (WIT `rbd`, since 0.2.2).
//!
//! - A backup of an RBD volume with no parent creates the base image
//!   `volume-<volume id>.backup.<backup id>`; each later one moves only what changed
//!   since its parent into the same base image; each ends as one snapshot
//!   `backup.<backup id>.snap.<unix time>` on it (`rbd export-diff | rbd import-diff`,
//!   done host-side, falling back to a whole copy when the diff cannot be used).
//! - A backup of a user's snapshot goes whole into the legacy base
//!   `volume-<volume id>.backup.base`; a backup of any other volume (a file) whole into
//!   its chain's base (a full backup: its own), as a snapshot like the others.
//! - `service_metadata` is `{"base": "<base image>"}`, `object_count` 0, the volume
//!   metadata a RADOS object `backup.<backup id>.meta`.
//! - Restore exports the backup's snapshot onto the target (only its data when the
//!   target is new or provably empty), honouring `restore_discard_excess_bytes`.
//! - Delete removes the backup's snapshot, its metadata object, and the base image once
//!   no snapshot is left on it.

use std::cell::RefCell;

use holdfast_driver_sdk::rbd::{self, RbdError, SourceKind};
use holdfast_driver_sdk::settings::Settings;
use holdfast_driver_sdk::{BackupInfo, BackupOutcome, DriverError, DriverInfo, Level, Setting, Source, Target};

const SERVICE: &str = "cinder.backup.drivers.ceph.CephBackupDriver";

/// Cinder's option defaults (§6.1).
const DEFAULT_POOL: &str = "backups";
const DEFAULT_CHUNK_SIZE: u64 = 128 << 20;

/// The options Cinder's Ceph driver reads; any other key is refused at setup.
const KNOWN: &[&str] = &[
    "backup_ceph_conf",
    "backup_ceph_user",
    "backup_ceph_pool",
    "backup_ceph_chunk_size",
    "backup_ceph_stripe_unit",
    "backup_ceph_stripe_count",
    "backup_ceph_image_journals",
    "backup_ceph_max_snapshots",
    "restore_discard_excess_bytes",
];

/// The configuration `setup` checked.
struct Config {
    pool: String,
    pools: Vec<String>,
    chunk_size: u64,
    stripe_unit: u64,
    stripe_count: u64,
    discard_excess: bool,
}

thread_local! {
    static CONFIG: RefCell<Option<Config>> = const { RefCell::new(None) };
}

fn with<T>(f: impl FnOnce(&Config) -> Result<T, DriverError>) -> Result<T, DriverError> {
    CONFIG.with_borrow(|c| match c {
        Some(c) => f(c),
        None => Err(DriverError::Invalid("setup was not called".into())),
    })
}

fn rbd_err(what: &str) -> impl FnOnce(RbdError) -> DriverError + '_ {
    move |e| match e {
        RbdError::NotFound(m) => DriverError::NotFound(format!("{what}: {m}")),
        RbdError::Failed(m) => DriverError::Io(format!("{what}: {m}")),
        RbdError::Cancelled => DriverError::Cancelled,
    }
}

fn flag(settings: &Settings, key: &str, default: bool) -> Result<bool, DriverError> {
    match settings.get(key).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if matches!(v.as_str(), "true" | "1" | "yes" | "on") => Ok(true),
        Some(v) if matches!(v.as_str(), "false" | "0" | "no" | "off") => Ok(false),
        Some(v) => Err(DriverError::Invalid(format!("setting {key} = {v:?} is not true or false"))),
    }
}

/// The base image a backup's snapshot is on: its `service_metadata`, else (a Cinder
/// record without one, or a backup that failed before finishing) the per-backup name,
/// then the legacy one.
fn recorded_base(info: &BackupInfo) -> Option<String> {
    let meta = info.service_metadata.as_deref()?;
    let v: serde_json::Value = serde_json::from_str(meta).ok()?;
    let base = v.get("base")?.as_str()?;
    base.starts_with(&format!("volume-{}.backup.", info.volume_id)).then(|| base.to_owned())
}

fn candidate_bases(info: &BackupInfo) -> Vec<String> {
    let mut out: Vec<String> = recorded_base(info).into_iter().collect();
    for name in
        [format!("volume-{}.backup.{}", info.volume_id, info.id), format!("volume-{}.backup.base", info.volume_id)]
    {
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

fn snap_prefix(id: &str) -> String {
    format!("backup.{id}.snap.")
}

/// Cinder's snapshot name: `backup.<id>.snap.<unix time with microseconds>`.
fn new_snap_name(id: &str) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("{}{}.{:06}", snap_prefix(id), now.as_secs(), now.subsec_micros())
}

/// The backup's snapshot on `image`, if there is one.
fn find_snap(pool: &str, image: &str, id: &str) -> Result<Option<String>, RbdError> {
    let prefix = snap_prefix(id);
    Ok(rbd::snapshots(pool, image)?.into_iter().find(|s| s.starts_with(&prefix)))
}

/// The pool a backup lives in: its container (Cinder: the pool), else the configured one.
fn pool_of(c: &Config, info: &BackupInfo) -> Result<String, DriverError> {
    match info.container.as_deref() {
        None | Some("") => Ok(c.pool.clone()),
        Some(p) if c.pools.iter().any(|g| g == p) => Ok(p.to_owned()),
        Some(p) => Err(DriverError::Invalid(format!(
            "container {p:?} is not a pool this backend may use (granted: {})",
            c.pools.join(", ")
        ))),
    }
}

pub struct Ceph;

impl holdfast_driver_sdk::Driver for Ceph {
    /// check_for_setup_error: the options make sense and the pool answers.
    fn setup(config: Vec<Setting>) -> Result<DriverInfo, DriverError> {
        let settings = Settings::new(config.clone());
        if let Some(unknown) = config.iter().find(|s| !KNOWN.contains(&s.key.as_str())) {
            return Err(DriverError::Invalid(format!(
                "unknown setting {:?} for the ceph driver (known: {})",
                unknown.key,
                KNOWN.join(", ")
            )));
        }
        if flag(&settings, "backup_ceph_image_journals", false)? {
            return Err(DriverError::Invalid("backup_ceph_image_journals = true is not supported".into()));
        }
        if settings.u64_or("backup_ceph_max_snapshots", 0)? != 0 {
            return Err(DriverError::Invalid(
                "backup_ceph_max_snapshots is not supported: the host keeps one source snapshot per volume".into(),
            ));
        }
        let pool = settings.get("backup_ceph_pool").unwrap_or(DEFAULT_POOL).trim().to_owned();
        if pool.is_empty() {
            return Err(DriverError::Invalid("backup_ceph_pool is empty".into()));
        }
        let chunk_size = settings.u64_or("backup_ceph_chunk_size", DEFAULT_CHUNK_SIZE)?;
        if chunk_size == 0 {
            return Err(DriverError::Invalid("backup_ceph_chunk_size must be more than 0".into()));
        }
        let stripe_unit = settings.u64_or("backup_ceph_stripe_unit", 0)?;
        let stripe_count = settings.u64_or("backup_ceph_stripe_count", 0)?;
        let discard_excess = flag(&settings, "restore_discard_excess_bytes", true)?;
        let cluster = rbd::connect(&pool).map_err(rbd_err("reaching the backup pool"))?;
        // The conf and user are the grant's; a setting that names others is a mistake.
        if let Some(conf) = settings.get("backup_ceph_conf")
            && conf.trim() != cluster.conf
        {
            return Err(DriverError::Invalid(format!(
                "backup_ceph_conf = {conf:?}, but this backend is granted the cluster of {:?} (grants.rbd.conf)",
                cluster.conf
            )));
        }
        if let Some(user) = settings.get("backup_ceph_user")
            && user.trim() != cluster.user
        {
            return Err(DriverError::Invalid(format!(
                "backup_ceph_user = {user:?}, but this backend is granted user {:?} (grants.rbd.user)",
                cluster.user
            )));
        }
        CONFIG.set(Some(Config { pool, pools: cluster.pools, chunk_size, stripe_unit, stripe_count, discard_excess }));
        Ok(DriverInfo { service: SERVICE.into(), supports_force_delete: false })
    }

    fn backup(
        info: BackupInfo,
        parent: Option<BackupInfo>,
        volume_meta: Option<String>,
        source: &Source,
    ) -> Result<BackupOutcome, DriverError> {
        with(|c| {
            let pool = pool_of(c, &info)?;
            let volume = &info.volume_id;
            let kind = rbd::describe_source(source);
            let own = format!("volume-{volume}.backup.{}", info.id);
            // Which base image, and whether only the changes since the parent move.
            let (base, since) = match (kind, &parent) {
                (SourceKind::Snapshot, _) => (format!("volume-{volume}.backup.base"), None),
                (SourceKind::RbdVolume, Some(p)) => match recorded_base(p) {
                    Some(b) => (b, Some(p.id.clone())),
                    None => return Err(DriverError::NotFound(format!("parent backup {} names no base image", p.id))),
                },
                (SourceKind::Other, Some(p)) => match recorded_base(p) {
                    Some(b) => (b, None),
                    None => return Err(DriverError::NotFound(format!("parent backup {} names no base image", p.id))),
                },
                (_, None) => (own.clone(), None),
            };
            let size = source.size();
            let created = match rbd::snapshots(&pool, &base) {
                Ok(_) => false,
                Err(RbdError::NotFound(_)) if base == own || base.ends_with(".backup.base") => {
                    rbd::create_image(&pool, &base, size, c.stripe_unit, c.stripe_count)
                        .map_err(rbd_err("creating the base image"))?;
                    true
                }
                Err(e) => return Err(rbd_err("opening the base image")(e)),
            };
            let service_metadata = serde_json::json!({ "base": base }).to_string();
            // Recorded before any byte moves: a crash leaves a row whose delete finds
            // what this run made.
            holdfast_driver_sdk::host::record_location(&pool, &service_metadata);
            let snap = new_snap_name(&info.id);
            let moved = rbd::import_from(source, since.as_deref(), &pool, &base, &snap, c.chunk_size);
            let report = match moved {
                Ok(r) => r,
                Err(e) => {
                    // Nothing half-written stays for a later backup to build on: the
                    // snapshot is made last, and an image this run created goes.
                    if created {
                        let _ = rbd::remove_image(&pool, &base);
                    }
                    return Err(rbd_err("moving the volume into the backup image")(e));
                }
            };
            if let Some(why) = &report.fallback {
                holdfast_driver_sdk::log(Level::Warn, format!("whole copy instead of a diff: {why}"));
            }
            holdfast_driver_sdk::log(
                Level::Info,
                format!(
                    "rbd:{pool}/{base}@{snap}: {} ({} bytes read, {} written)",
                    if report.by_diff { "diff" } else { "whole copy" },
                    report.bytes_read,
                    report.bytes_written
                ),
            );
            if let Some(meta) = volume_meta.as_deref() {
                let name = format!("backup.{}.meta", info.id);
                if let Err(e) = rbd::write_object(&pool, &name, meta.as_bytes()) {
                    let _ = rbd::remove_snapshot(&pool, &base, &snap);
                    if created {
                        let _ = rbd::remove_image(&pool, &base);
                    }
                    return Err(rbd_err("writing the volume metadata")(e));
                }
            }
            Ok(BackupOutcome { container: pool, service_metadata, object_count: 0 })
        })
    }

    /// The image at the requested backup's snapshot holds the whole volume: the chain's
    /// other layers are not needed.
    fn restore(
        chain: Vec<BackupInfo>,
        target: &Target,
        _volume_is_new: bool,
    ) -> Result<Vec<Option<String>>, DriverError> {
        with(|c| {
            let Some(last) = chain.last() else { return Err(DriverError::Invalid("nothing to restore".into())) };
            let pool = pool_of(c, last)?;
            let mut found = None;
            for base in candidate_bases(last) {
                match find_snap(&pool, &base, &last.id) {
                    Ok(Some(snap)) => {
                        found = Some((base, snap));
                        break;
                    }
                    Ok(None) | Err(RbdError::NotFound(_)) => {}
                    Err(e) => return Err(rbd_err("finding the backup's snapshot")(e)),
                }
            }
            let Some((base, snap)) = found else {
                return Err(DriverError::NotFound(format!("no snapshot of backup {} in pool {pool}", last.id)));
            };
            let report = rbd::export_to(&pool, &base, &snap, target, c.discard_excess)
                .map_err(rbd_err("restoring from the backup image"))?;
            holdfast_driver_sdk::log(
                Level::Info,
                format!(
                    "restored rbd:{pool}/{base}@{snap} ({}, {} bytes written)",
                    if report.by_diff { "data only: the target was empty" } else { "every byte" },
                    report.bytes_written
                ),
            );
            let meta = rbd::read_object(&pool, &format!("backup.{}.meta", last.id))
                .map_err(rbd_err("reading the volume metadata"))?
                .map(|b| String::from_utf8_lossy(&b).into_owned());
            // One entry per layer, as the contract asks; only the last one's applies.
            let mut metas = vec![None; chain.len()];
            if let Some(m) = metas.last_mut() {
                *m = meta;
            }
            Ok(metas)
        })
    }

    /// Remove the backup's snapshot and metadata object; the base image goes with its
    /// last snapshot. Missing pieces are not an error (Cinder only warns).
    fn delete(info: BackupInfo) -> Result<(), DriverError> {
        with(|c| {
            let pool = pool_of(c, &info)?;
            for base in candidate_bases(&info) {
                let snaps = match rbd::snapshots(&pool, &base) {
                    Ok(s) => s,
                    Err(RbdError::NotFound(_)) => continue,
                    Err(e) => return Err(rbd_err("listing the base image's snapshots")(e)),
                };
                let prefix = snap_prefix(&info.id);
                let mut mine = base == format!("volume-{}.backup.{}", info.volume_id, info.id);
                for s in snaps.iter().filter(|s| s.starts_with(&prefix)) {
                    rbd::remove_snapshot(&pool, &base, s).map_err(rbd_err("removing the backup's snapshot"))?;
                    mine = true;
                }
                // Only an image this backup was on, and only once no other backup is.
                let others = snaps.iter().any(|s| !s.starts_with(&prefix));
                if mine && !others {
                    rbd::remove_image(&pool, &base).map_err(rbd_err("removing the base image"))?;
                }
                holdfast_driver_sdk::log(
                    Level::Info,
                    format!(
                        "rbd:{pool}/{base}: removed backup {}'s snapshot{}",
                        info.id,
                        if mine && !others { " and the image, its last" } else { "" }
                    ),
                );
            }
            rbd::remove_object(&pool, &format!("backup.{}.meta", info.id))
                .map_err(rbd_err("removing the volume metadata"))?;
            Ok(())
        })
    }

    /// Cinder's export_record adds nothing: the record's service_metadata names the base.
    fn export_record(_info: BackupInfo) -> Result<String, DriverError> {
        Ok("{}".into())
    }

    fn import_record(info: BackupInfo, _driver_info: String) -> Result<(), DriverError> {
        with(|c| pool_of(c, &info).map(drop))
    }
}

holdfast_driver_sdk::driver_manifest!("ceph");

#[cfg(target_arch = "wasm32")]
holdfast_driver_sdk::export_driver!(Ceph with_types_in holdfast_driver_sdk::bindings);
