//! [`BackupDriver`]: the operations the manager calls on a driver.

use std::sync::Arc;

use holdfast_chunk::{ChunkSink, ChunkSource};
use holdfast_types::Backup;

use crate::{DriverError, DriverId, OpContext};

/// What `setup` told us about the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverDescription {
    /// Cinder's `service` string recorded on each backup (its driver class path).
    pub service: String,
    pub supports_force_delete: bool,
}

/// Where a finished backup's objects are and how many there are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupResult {
    pub container: String,
    pub service_metadata: String,
    pub object_count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreOutcome {
    /// Each chain layer's volume_meta text, full backup first.
    pub volume_metas: Vec<Option<String>>,
}

/// A backup driver, as Cinder's `BackupDriver` with the volume I/O left to the host:
/// the driver reads the source and writes the target through the chunk traits, so it
/// never opens a volume itself. Calls block; the manager runs them on data threads.
/// Every call is independent (an implementation may build fresh state per call).
pub trait BackupDriver: Send + Sync {
    fn id(&self) -> &DriverId;

    /// Cinder's `do_setup` + `check_for_setup_error`.
    fn setup(&self) -> Result<DriverDescription, DriverError>;

    /// Back up `source` as `backup`, incrementally on `parent` when given.
    fn backup(
        &self,
        op: OpContext,
        backup: &Backup,
        parent: Option<&Backup>,
        volume_meta: Option<&str>,
        source: Arc<dyn ChunkSource>,
    ) -> Result<BackupResult, DriverError>;

    /// Restore `chain` (full backup first, the requested backup last) onto `target`.
    /// Nothing counts as restored until the driver returns and the host has flushed.
    fn restore(
        &self,
        op: OpContext,
        chain: &[Backup],
        target: Arc<dyn ChunkSink>,
        volume_is_new: bool,
    ) -> Result<RestoreOutcome, DriverError>;

    fn delete(&self, op: OpContext, backup: &Backup) -> Result<(), DriverError>;

    /// The driver's part of an exported backup record (`driver_info`, JSON text).
    fn export_record(&self, backup: &Backup) -> Result<String, DriverError>;

    /// Check an imported record's `driver_info` against the backup store.
    fn import_record(&self, backup: &Backup, driver_info: &str) -> Result<(), DriverError>;

    /// How many calls may run at once (the backend's `instances` grant), so the
    /// manager can queue the rest before they take one of the host's data slots.
    fn max_instances(&self) -> Option<u32> {
        None
    }

    /// Whether each operation reaches only its own backup's objects (no read-write
    /// directory handed over whole). Shown to the operator.
    fn confined(&self) -> bool {
        true
    }

    /// Whether a backup's (container, service_metadata) names objects no other backup
    /// may share (a chunked driver's object prefix): the manager refuses one that
    /// overlaps another live backup's. False for a driver whose chain shares it by design
    /// (Cinder's Ceph driver: `{"base": <image>}`), which its runtime confines by backup
    /// id instead.
    fn exclusive_locations(&self) -> bool {
        true
    }
}
