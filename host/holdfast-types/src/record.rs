//! The rows the manager works on. Field names follow Cinder's columns.

use crate::{BackupStatus, SnapshotStatus, Timestamp, VolumeStatus};

pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;

/// Cinder sizes are whole GiB: round a byte length up (a 256 MiB file is size 1).
pub fn size_gib(bytes: u64) -> i64 {
    bytes.div_ceil(GIB) as i64
}

/// A backup container is a path inside the driver's store: relative, at most 255
/// bytes, no empty, `.` or `..` parts, no control characters. Cinder does not check
/// (`..` escapes its root); the manager and the driver SDK both apply this rule.
pub fn is_valid_container(c: &str) -> bool {
    !(c.is_empty()
        || c.len() > 255
        || c.starts_with('/')
        || c.split('/').any(|p| p.is_empty() || p == "." || p == "..")
        || c.chars().any(char::is_control))
}

/// A backup's object prefix (`service_metadata` of a chunked backup): a relative path
/// like a container (object stores' prefixes, `volume_<id>/<time>/az_<zone>_backup_<id>`,
/// have `/` in them), no part of it hidden. The host's own store takes only one part.
pub fn is_valid_object_prefix(p: &str) -> bool {
    is_valid_container(p) && !p.split('/').any(|s| s.starts_with('.'))
}

/// Cinder's user-metadata rule (volumes and backups): keys match
/// `^[a-zA-Z0-9-_:. /]{1,255}$`, values are strings of at most 255 characters. The API
/// checks request bodies with it and the manager checks imported records.
pub fn is_valid_metadata_key(k: &str) -> bool {
    (1..=255).contains(&k.chars().count()) && k.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_:. /".contains(&b))
}

pub fn is_valid_metadata_value(v: &str) -> bool {
    v.chars().count() <= 255
}

#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    pub id: String,
    pub project_id: String,
    pub user_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub status: VolumeStatus,
    pub previous_status: Option<String>,
    /// Whole GiB, rounded up (Cinder's `size`).
    pub size: i64,
    /// Exact length in bytes.
    pub size_bytes: u64,
    /// Where the data lives (a raw file or block device today).
    pub location: crate::VolumeLocation,
    /// True when Holdfast created the file (delete removes it); false when adopted.
    pub managed_file: bool,
    pub created_at: Timestamp,
    pub updated_at: Option<Timestamp>,
}

/// A point-in-time copy of a volume, kept by the host in its data dir (a reflink where
/// the filesystem offers one, else a sparse copy). Backups of it read the copy.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub id: String,
    pub project_id: String,
    pub user_id: String,
    pub volume_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub status: SnapshotStatus,
    /// Whole GiB of the volume when taken.
    pub size: i64,
    pub size_bytes: u64,
    /// Where the copy lives.
    pub location: crate::VolumeLocation,
    /// The moment the data was taken: a backup of this snapshot has this `data_timestamp`.
    pub created_at: Timestamp,
    pub updated_at: Option<Timestamp>,
}

/// A notification (Cinder's `backup.create.start`, `backup.createprogress`, …).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: String,
    /// `backup.<operation>.<start|end|error>` or `backup.<operation>progress`.
    pub event_type: crate::EventType,
    /// `INFO`, or `ERROR` for `*.error` events.
    pub priority: String,
    /// `backup.<host>`.
    pub publisher_id: String,
    pub project_id: String,
    pub backup_id: String,
    /// Cinder's payload (the backup's fields plus extras such as `backup_percent`), JSON.
    pub payload: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Backup {
    pub id: String,
    pub project_id: String,
    pub user_id: String,
    pub volume_id: String,
    pub snapshot_id: Option<String>,
    pub status: BackupStatus,
    pub display_name: Option<String>,
    pub display_description: Option<String>,
    /// Whole GiB of the source volume.
    pub size: i64,
    /// Exact source length in bytes (Holdfast's own column).
    pub size_bytes: u64,
    pub object_count: i64,
    pub container: Option<String>,
    /// Driver's service name, e.g. `cinder.backup.drivers.posix.PosixBackupDriver`.
    pub service: Option<String>,
    /// Object prefix chosen by the driver.
    pub service_metadata: Option<String>,
    pub parent_id: Option<String>,
    pub num_dependent_backups: i64,
    pub availability_zone: Option<String>,
    pub host: Option<String>,
    pub fail_reason: Option<String>,
    pub restore_volume_id: Option<String>,
    pub data_timestamp: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Option<Timestamp>,
    pub deleted_at: Option<Timestamp>,
    pub deleted: bool,
}

impl Backup {
    pub fn is_incremental(&self) -> bool {
        self.parent_id.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_up_to_whole_gib() {
        assert_eq!(size_gib(256 * MIB), 1);
        assert_eq!(size_gib(GIB), 1);
        assert_eq!(size_gib(GIB + MIB), 2);
        assert_eq!(size_gib(0), 0);
    }
}

/// The backend and driver build that wrote a backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupOrigin {
    pub backend: String,
    pub driver_name: String,
    pub driver_version: String,
    /// SHA-256 of the driver component, lowercase hex.
    pub driver_sha256: String,
    pub wit_version: String,
}
