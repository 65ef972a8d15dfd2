//! The backup manager: Cinder's backup state machine over the database, the volume
//! files and one sandboxed driver.
//!
//! | operation | backup status | volume status | driver call |
//! |---|---|---|---|
//! | create | `creating` → `available` / `error` (+ fail_reason) | `available` → `backing-up` → back | `backup` |
//! | restore | `available` → `restoring` → `available` | `available` → `restoring-backup` → `available` / `error_restoring` | `restore` |
//! | delete | `available`/`error` → `deleting` → `deleted` / `error` | – | `delete` |
//!
//! Requests are validated and the statuses flipped with compare-and-set updates before
//! the caller gets its answer (the API's 202); the data work then runs on a blocking
//! thread. Which operations may overlap: one create *or* restore per volume at a time
//! (the volume status is the lock); any number of backups of different volumes; a
//! backup being restored or deleted cannot be deleted.
//!
//! After a crash, [`Manager::recover`] does what Cinder's `init_host` does
//! (see [`recovery`]).

mod admin;
mod backup;
mod data_thread;
mod delete;
mod error;
mod events;
pub mod metrics;
mod progress;
mod quota;
mod records;
pub mod recovery;
mod reload;
mod restore;
mod services;
mod snapshots;
#[cfg(test)]
mod tests;
mod volumes;

use std::path::PathBuf;
use std::sync::Arc;

use holdfast_db::Db;
use holdfast_driver::BackupDriver;
use holdfast_volume::{FileBackend, RbdBackend, VolumeBackend, Volumes};
use tokio::sync::RwLock;

pub use backup::{CreateBackup, UpdateBackup};
pub use error::ManagerError;
pub use events::MAX_EVENT_LIMIT;
pub use holdfast_volume::ClusterConfig;
pub use progress::{Operation, Progress};
pub use quota::{Quotas, Usage};
pub use records::BackupRecord;
pub use reload::{ReloadReport, ReloadRequest};
pub use restore::{RestoreRequest, RestoreView};
pub use services::{Backend, ServiceStatus};
pub use snapshots::CreateSnapshot;
pub use volumes::{CreateVolume, RegisterVolume, UpdateVolume};

/// Who is asking: Cinder's request context, reduced to what we store and check.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub project_id: String,
    pub user_id: String,
    /// Cinder's admin context: reaches any project's resources by id.
    pub is_admin: bool,
    /// The caller's Keystone project and token, for the operations this request
    /// starts (a `per_user` Swift backend's requests carry it). Kept in memory only.
    pub caller: Option<holdfast_driver::Caller>,
}

impl RequestContext {
    /// Whether a resource of `project_id` is visible to this caller (others answer 404).
    pub fn may_see(&self, project_id: &str) -> bool {
        self.is_admin || project_id == self.project_id
    }

    /// The project a listing is limited to: the caller's, or none for an admin who
    /// asked for every project (`all_tenants`).
    pub fn list_scope(&self, all_projects: bool) -> Option<&str> {
        if self.is_admin && all_projects { None } else { Some(&self.project_id) }
    }
}

#[derive(Debug, Clone)]
pub struct ManagerConfig {
    /// Sparse raw files of created volumes live in `<data_dir>/volumes`.
    pub data_dir: PathBuf,
    /// Roots under which `volume register` may adopt files or devices.
    pub manage_roots: Vec<PathBuf>,
    pub availability_zone: String,
    /// Name of this backup host (Cinder's `host` column).
    pub host: String,
    /// Hashing/compression/restore threads per operation.
    pub workers: usize,
    /// How often a failed driver setup is retried (Cinder's periodic_interval).
    pub periodic_interval: std::time::Duration,
    /// Backups and restores moving data at once (Cinder's backup_max_operations);
    /// more wait their turn in `creating` / `restoring`.
    pub max_operations: usize,
    pub quotas: Quotas,
    /// How long notifications are kept; `None` keeps them for ever. Pruned every
    /// `periodic_interval`.
    pub event_retention: Option<std::time::Duration>,
    /// RBD volumes: the cluster they are in, and the pool new volumes go to.
    pub rbd: RbdVolumes,
}

/// Where RBD volumes live (`serve --rbd-conf/--rbd-user/--rbd-pool/--rbd-diff-check`).
#[derive(Debug, Clone)]
pub struct RbdVolumes {
    /// The cluster `rbd:POOL/IMAGE` volumes are in.
    pub cluster: holdfast_volume::ClusterConfig,
    /// New volumes (`volume create`, restores to a new volume) are RBD images
    /// `volume-<id>` in this pool; sparse files in the data dir when `None`.
    pub pool: Option<String>,
    /// Fraction of the blocks an RBD diff calls unchanged that each incremental re-reads
    /// and compares with its parent; a difference makes it a full backup, logged loudly.
    pub diff_check: f64,
}

impl Default for RbdVolumes {
    fn default() -> Self {
        RbdVolumes { cluster: Default::default(), pool: None, diff_check: holdfast_chunk::DEFAULT_DIFF_CHECK }
    }
}

/// A loaded backup driver, whatever runs it (the wasm plugin host, or a test's fake).
pub type Driver = Arc<dyn BackupDriver>;

pub struct Manager {
    db: Db,
    config: ManagerConfig,
    services: RwLock<services::Services>,
    progress: progress::Tracker,
    operations: Arc<tokio::sync::Semaphore>,
    events: events::Notifier,
    /// Held by a create from its quota check to its insert (see [`quota`]).
    quota_lock: tokio::sync::Mutex<()>,
    metrics: Arc<metrics::Metrics>,
    /// Where volume data lives and how it is opened (files and block devices today).
    volumes: Arc<dyn VolumeBackend>,
    /// Where `request_reload` sends (set by a host started with a config file).
    reloader: std::sync::OnceLock<tokio::sync::mpsc::Sender<reload::ReloadRequest>>,
    /// One reload at a time.
    reload_lock: tokio::sync::Mutex<()>,
}

impl Manager {
    /// Build the manager and run each backend's driver setup (Cinder's do_setup +
    /// check_for_setup_error). A failed setup leaves that service down, not the host:
    /// new backups there are refused with the reason, and setup is retried every
    /// `periodic_interval` until it succeeds (Cinder's documented intent).
    /// `default_backend` takes backups that name no availability zone.
    pub async fn new(db: Db, config: ManagerConfig, backends: Vec<Backend>, default_backend: &str) -> Arc<Manager> {
        let interval = config.periodic_interval;
        let operations = Arc::new(tokio::sync::Semaphore::new(config.max_operations.max(1)));
        let last_event = db.last_event_time().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not read the newest event time");
            None
        });
        let mut by_name = std::collections::BTreeMap::new();
        for backend in backends {
            let state = Self::setup(&backend.driver).await;
            by_name.insert(backend.name.clone(), services::Service::new(backend, state));
        }
        let down: Vec<String> = by_name.iter().filter(|(_, s)| s.state.is_err()).map(|(n, _)| n.clone()).collect();
        let services = services::Services { default: default_backend.to_owned(), by_name };
        let volumes = Arc::new(Volumes { file: FileBackend, rbd: RbdBackend::new(config.rbd.cluster.clone()) });
        let m = Arc::new(Manager {
            db,
            config,
            services: RwLock::new(services),
            progress: Default::default(),
            operations,
            events: events::Notifier::new(last_event),
            quota_lock: tokio::sync::Mutex::new(()),
            metrics: Arc::default(),
            volumes,
            reloader: Default::default(),
            reload_lock: Default::default(),
        });
        if let Some(keep) = m.config.event_retention {
            events::spawn_pruner(Arc::downgrade(&m), keep, interval);
        }
        for name in down {
            m.retry_setup(name);
        }
        m
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn config(&self) -> &ManagerConfig {
        &self.config
    }

    pub fn metrics(&self) -> &metrics::Metrics {
        &self.metrics
    }

    /// Whether the database answers (for `/healthz`).
    pub async fn database_ok(&self) -> Result<(), String> {
        self.db.ping().await.map_err(|e| e.to_string())
    }

    pub fn progress(&self, backup_id: &str) -> Option<Progress> {
        self.progress.get(backup_id)
    }
}
