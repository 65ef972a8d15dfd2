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
mod restore;
mod snapshots;
#[cfg(test)]
mod tests;
mod volumes;

use std::path::PathBuf;
use std::sync::Arc;

use holdfast_db::Db;
use holdfast_driver::{BackupDriver, DriverDescription};
use holdfast_volume::{FileBackend, VolumeBackend};
use tokio::sync::RwLock;

pub use backup::{CreateBackup, UpdateBackup};
pub use error::ManagerError;
pub use events::MAX_EVENT_LIMIT;
pub use progress::{Operation, Progress};
pub use quota::{Quotas, Usage};
pub use records::BackupRecord;
pub use restore::{RestoreRequest, RestoreView};
pub use snapshots::CreateSnapshot;
pub use volumes::{CreateVolume, RegisterVolume, UpdateVolume};

/// Who is asking: Cinder's request context, reduced to what we store and check.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub project_id: String,
    pub user_id: String,
    /// Cinder's admin context: reaches any project's resources by id.
    pub is_admin: bool,
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
}

/// A loaded backup driver, whatever runs it (the wasm plugin host, or a test's fake).
pub type Driver = Arc<dyn BackupDriver>;

/// The backup service state: the driver and whether its setup succeeded.
pub struct Service {
    pub driver: Driver,
    /// `Ok` once setup succeeded; the error text while the service is down.
    pub state: Result<DriverDescription, String>,
}

pub struct Manager {
    db: Db,
    config: ManagerConfig,
    service: RwLock<Service>,
    progress: progress::Tracker,
    operations: Arc<tokio::sync::Semaphore>,
    events: events::Notifier,
    /// Held by a create from its quota check to its insert (see [`quota`]).
    quota_lock: tokio::sync::Mutex<()>,
    metrics: Arc<metrics::Metrics>,
    /// Where volume data lives and how it is opened (files and block devices today).
    volumes: Arc<dyn VolumeBackend>,
}

impl Manager {
    /// Build the manager and run the driver's setup (Cinder's do_setup +
    /// check_for_setup_error). A failed setup leaves the service down, not the host:
    /// new backups are refused with the reason, and setup is retried every
    /// `periodic_interval` until it succeeds (Cinder's documented intent).
    pub async fn new(db: Db, config: ManagerConfig, driver: Driver) -> Arc<Manager> {
        let state = Self::setup(&driver).await;
        let up = state.is_ok();
        let interval = config.periodic_interval;
        let operations = Arc::new(tokio::sync::Semaphore::new(config.max_operations.max(1)));
        let last_event = db.last_event_time().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not read the newest event time");
            None
        });
        let m = Arc::new(Manager {
            db,
            config,
            service: RwLock::new(Service { driver, state }),
            progress: Default::default(),
            operations,
            events: events::Notifier::new(last_event),
            quota_lock: tokio::sync::Mutex::new(()),
            metrics: Arc::default(),
            volumes: Arc::new(FileBackend),
        });
        if let Some(keep) = m.config.event_retention {
            events::spawn_pruner(Arc::downgrade(&m), keep, interval);
        }
        if !up {
            let weak = Arc::downgrade(&m);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(interval).await;
                    let Some(m) = weak.upgrade() else { return };
                    let driver = m.service.read().await.driver.clone();
                    let state = Self::setup(&driver).await;
                    if state.is_ok() {
                        m.service.write().await.state = state;
                        return;
                    }
                    m.service.write().await.state = state;
                }
            });
        }
        m
    }

    async fn setup(driver: &Driver) -> Result<DriverDescription, String> {
        let d = driver.clone();
        let state = tokio::task::spawn_blocking(move || d.setup().map_err(|e| e.to_string()))
            .await
            .unwrap_or_else(|e| Err(format!("driver setup panicked: {e}")));
        match &state {
            Ok(desc) => tracing::info!(driver = %driver.id().name, service = %desc.service, "backup driver is up"),
            Err(e) => {
                tracing::error!(driver = %driver.id().name, error = %e, "backup driver setup failed; service is down")
            }
        }
        state
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn config(&self) -> &ManagerConfig {
        &self.config
    }

    /// The driver and its description, or why the service is down.
    async fn driver(&self) -> Result<(Driver, DriverDescription), ManagerError> {
        let s = self.service.read().await;
        match &s.state {
            Ok(d) => Ok((s.driver.clone(), d.clone())),
            Err(e) => Err(ManagerError::ServiceDown(e.clone())),
        }
    }

    /// The driver's name and whether it is up (for the services listing).
    pub async fn service_status(&self) -> (String, Result<DriverDescription, String>) {
        let s = self.service.read().await;
        (s.driver.id().name.as_str().to_owned(), s.state.clone())
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
