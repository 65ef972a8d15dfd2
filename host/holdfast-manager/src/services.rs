//! Backup services: one per configured backend, each a driver with its zone and
//! whether its setup succeeded (Cinder's `do_setup` + `check_for_setup_error`, per
//! backend). Picks the backend for a new backup (by availability zone, else the
//! default) and the backend that can read an existing one (the one that wrote it,
//! else one running a driver of the same name).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use holdfast_driver::{
    BackupDriver, BackupResult, ChunkSink, ChunkSource, DriverDescription, DriverError, DriverId, OpContext,
    RestoreOutcome,
};
use holdfast_types::{Backup, BackupOrigin};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{Driver, Manager, ManagerError};

/// A configured backend: its name, its zone and the driver that serves it.
#[derive(Clone)]
pub struct Backend {
    pub name: String,
    pub availability_zone: String,
    pub driver: Driver,
    /// How long compiling (or loading the cached compilation) and linking took.
    pub load_time: Duration,
}

/// A backend and whether it is up.
#[derive(Clone)]
pub(crate) struct Service {
    pub backend: Backend,
    /// `Ok` once setup succeeded; why not while the service is down.
    pub state: Result<DriverDescription, String>,
    /// Why the last reload left this backend as it was, if it did.
    pub last_error: Option<String>,
    /// Driver calls in flight on this backend's current driver.
    pub running: Arc<AtomicUsize>,
    /// Taken out of the configuration with `force` while backups still need it: kept,
    /// down, until it is configured again.
    pub removed: bool,
    /// The `instances` grant as places backups and restores wait for.
    pub places: Option<Arc<Semaphore>>,
}

impl Service {
    pub fn new(backend: Backend, state: Result<DriverDescription, String>) -> Service {
        let places = backend.driver.max_instances().map(|n| Arc::new(Semaphore::new(n.max(1) as usize)));
        Service { backend, state, last_error: None, running: Arc::default(), removed: false, places }
    }
}

/// An operation's turn to move data: its backend's place, then a host slot.
pub(crate) struct Turn {
    _place: Option<OwnedSemaphorePermit>,
    _slot: OwnedSemaphorePermit,
}

/// Every backend, and which one takes backups that name no zone.
pub(crate) struct Services {
    pub default: String,
    pub by_name: BTreeMap<String, Service>,
}

/// What `os-services` and `/healthz` show of one backend.
#[derive(Debug, Clone)]
pub struct ServiceStatus {
    pub backend: String,
    pub availability_zone: String,
    pub driver: DriverId,
    /// Each operation reaches only its own backup (see [`holdfast_driver::BackupDriver::confined`]).
    pub confined: bool,
    pub is_default: bool,
    pub state: Result<DriverDescription, String>,
    /// Removed from the configuration but kept (down) for the backups that need it.
    pub removed: bool,
    pub load_time: Duration,
    /// Operations holding this backend's current driver right now.
    pub operations_running: usize,
    /// Why the last reload left this backend as it was, if it did.
    pub last_error: Option<String>,
}

/// The backend an operation runs on.
#[derive(Clone)]
pub(crate) struct Chosen {
    pub name: String,
    /// Backups with no recorded origin belong to the default backend.
    pub is_default: bool,
    pub availability_zone: String,
    pub driver: Driver,
    pub desc: DriverDescription,
    /// The backend's `instances` places, if it has a limit.
    pub places: Option<Arc<Semaphore>>,
}

impl Chosen {
    fn of(s: &Service, default: &str) -> Result<Chosen, ManagerError> {
        match &s.state {
            Ok(desc) => Ok(Chosen {
                name: s.backend.name.clone(),
                is_default: s.backend.name == default,
                availability_zone: s.backend.availability_zone.clone(),
                driver: Arc::new(Counted { inner: s.backend.driver.clone(), running: s.running.clone() }),
                places: s.places.clone(),
                desc: desc.clone(),
            }),
            Err(why) => Err(ManagerError::ServiceDown(format!("backend {}: {why}", s.backend.name))),
        }
    }

    /// What a backup written here records.
    pub fn origin(&self) -> BackupOrigin {
        let id = self.driver.id();
        BackupOrigin {
            backend: self.name.clone(),
            driver_name: id.name.clone(),
            driver_version: id.version.clone(),
            driver_sha256: id.sha256.clone(),
            wit_version: id.wit_version.clone(),
        }
    }
}

impl Manager {
    /// Wait for the backend's place (its `instances` grant), then for one of the host's
    /// `--max-operations` slots — in that order, so operations queued on one slow
    /// backend never hold the slots others need. `None` if `cancel` is set meanwhile.
    pub(crate) async fn wait_turn(&self, places: Option<Arc<Semaphore>>, cancel: &AtomicBool) -> Option<Turn> {
        let place = match places {
            Some(p) => tokio::select! {
                permit = p.acquire_owned() => Some(permit.ok()?),
                () = crate::progress::until_cancelled(cancel) => return None,
            },
            None => None,
        };
        let slot = tokio::select! {
            slot = self.operations.clone().acquire_owned() => slot.ok()?,
            () = crate::progress::until_cancelled(cancel) => return None,
        };
        Some(Turn { _place: place, _slot: slot })
    }

    /// Run a backend's driver setup on a blocking thread.
    pub(crate) async fn setup(driver: &Driver) -> Result<DriverDescription, String> {
        let d = driver.clone();
        let state = tokio::task::spawn_blocking(move || d.setup().map_err(|e| e.to_string()))
            .await
            .unwrap_or_else(|e| Err(format!("driver setup panicked: {e}")));
        match &state {
            Ok(desc) => tracing::info!(driver = %driver.id(), service = %desc.service, "backup driver is up"),
            Err(e) => tracing::error!(driver = %driver.id(), error = %e, "backup driver setup failed; service is down"),
        }
        state
    }

    /// Retry a down backend's setup every `periodic_interval` until it is up or gone
    /// (Cinder's documented intent for a failed `do_setup`).
    pub(crate) fn retry_setup(self: &Arc<Self>, name: String) {
        let weak = Arc::downgrade(self);
        let interval = self.config.periodic_interval;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let Some(m) = weak.upgrade() else { return };
                let current =
                    m.services.read().await.by_name.get(&name).filter(|s| !s.removed).map(|s| s.backend.driver.clone());
                // Gone, removed or replaced by a reload: the reload owns its state now.
                let Some(driver) = current else { return };
                let state = Self::setup(&driver).await;
                let up = state.is_ok();
                if let Some(s) = m.services.write().await.by_name.get_mut(&name)
                    && Arc::ptr_eq(&s.backend.driver, &driver)
                    && !s.removed
                {
                    s.state = state;
                }
                if up {
                    return;
                }
            }
        });
    }

    /// The backend for a new backup: the default one's zone, or the named zone's.
    pub(crate) async fn backend_for_create(&self, zone: Option<&str>) -> Result<Chosen, ManagerError> {
        let s = self.services.read().await;
        let default = s.by_name.get(&s.default);
        let service = match zone {
            None => default,
            Some(z) if default.is_some_and(|d| d.backend.availability_zone == z) => default,
            Some(z) => s.by_name.values().find(|v| v.backend.availability_zone == z),
        };
        match service {
            Some(v) => Chosen::of(v, &s.default),
            None => Err(ManagerError::Invalid(format!(
                "Invalid input received: no backup service in availability zone {:?}",
                zone.unwrap_or_default()
            ))),
        }
    }

    /// The backend that can read `b`: the one that wrote it, when it is loaded, up and
    /// still runs a driver of the same name. Never another backend "of the same
    /// driver": two posix backends write different directories, and a delete sent to
    /// the wrong one would succeed on nothing and orphan the objects. Backups with no
    /// recorded origin (rows from before backends were configurable, imports) belong
    /// to the default backend.
    pub(crate) async fn backend_for(&self, b: &Backup) -> Result<Chosen, ManagerError> {
        let origin = self.db.backup_origin(&b.id).await?;
        let s = self.services.read().await;
        let Some(origin) = origin else {
            return match s.by_name.get(&s.default) {
                Some(v) => Chosen::of(v, &s.default),
                None => Err(ManagerError::ServiceDown("no default backend is configured".into())),
            };
        };
        match s.by_name.get(&origin.backend) {
            Some(v) if v.backend.driver.id().name == origin.driver_name => Chosen::of(v, &s.default),
            Some(v) => Err(ManagerError::ServiceDown(format!(
                "backend {} now runs driver {}, but backup {} was written by driver {}",
                origin.backend,
                v.backend.driver.id().name,
                b.id,
                origin.driver_name
            ))),
            None => Err(ManagerError::ServiceDown(format!(
                "backend {}, which wrote backup {}, is not loaded",
                origin.backend, b.id
            ))),
        }
    }

    /// An up backend whose driver writes Cinder's `service` (records to import).
    pub(crate) async fn backend_for_service(&self, service: &str) -> Result<Chosen, ManagerError> {
        let s = self.services.read().await;
        let serves = |v: &&Service| v.state.as_ref().is_ok_and(|d| d.service.starts_with(service));
        let default = s.by_name.get(&s.default).filter(serves);
        match default.or_else(|| s.by_name.values().find(serves)) {
            Some(v) => Chosen::of(v, &s.default),
            None => {
                Err(ManagerError::Invalid(format!("Invalid input received: no backup service here runs {service:?}")))
            }
        }
    }

    /// Every backend and whether it is up (os-services, /healthz).
    pub async fn service_status(&self) -> Vec<ServiceStatus> {
        let s = self.services.read().await;
        s.by_name
            .values()
            .map(|v| ServiceStatus {
                backend: v.backend.name.clone(),
                availability_zone: v.backend.availability_zone.clone(),
                driver: v.backend.driver.id().clone(),
                confined: v.backend.driver.confined(),
                is_default: v.backend.name == s.default,
                state: v.state.clone(),
                removed: v.removed,
                load_time: v.backend.load_time,
                operations_running: v.running.load(Ordering::Relaxed),
                last_error: v.last_error.clone(),
            })
            .collect()
    }

    /// Whether some backend serves `zone`.
    pub async fn has_availability_zone(&self, zone: &str) -> bool {
        self.services.read().await.by_name.values().any(|v| v.backend.availability_zone == zone)
    }
}

/// A backend's driver as operations get it: counts the calls in flight, so
/// `plugin list` can say how many operations a driver version is running.
struct Counted {
    inner: Driver,
    running: Arc<AtomicUsize>,
}

/// One call in flight.
struct Busy<'a>(&'a AtomicUsize);

impl<'a> Busy<'a> {
    fn enter(n: &'a AtomicUsize) -> Busy<'a> {
        n.fetch_add(1, Ordering::Relaxed);
        Busy(n)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl BackupDriver for Counted {
    fn id(&self) -> &DriverId {
        self.inner.id()
    }

    fn setup(&self) -> Result<DriverDescription, DriverError> {
        let _busy = Busy::enter(&self.running);
        self.inner.setup()
    }

    fn backup(
        &self,
        op: OpContext,
        backup: &Backup,
        parent: Option<&Backup>,
        volume_meta: Option<&str>,
        source: Arc<dyn ChunkSource>,
    ) -> Result<BackupResult, DriverError> {
        let _busy = Busy::enter(&self.running);
        self.inner.backup(op, backup, parent, volume_meta, source)
    }

    fn restore(
        &self,
        op: OpContext,
        chain: &[Backup],
        target: Arc<dyn ChunkSink>,
        volume_is_new: bool,
    ) -> Result<RestoreOutcome, DriverError> {
        let _busy = Busy::enter(&self.running);
        self.inner.restore(op, chain, target, volume_is_new)
    }

    fn delete(&self, op: OpContext, backup: &Backup) -> Result<(), DriverError> {
        let _busy = Busy::enter(&self.running);
        self.inner.delete(op, backup)
    }

    fn export_record(&self, backup: &Backup) -> Result<String, DriverError> {
        let _busy = Busy::enter(&self.running);
        self.inner.export_record(backup)
    }

    fn import_record(&self, backup: &Backup, driver_info: &str) -> Result<(), DriverError> {
        let _busy = Busy::enter(&self.running);
        self.inner.import_record(backup, driver_info)
    }

    fn max_instances(&self) -> Option<u32> {
        self.inner.max_instances()
    }

    fn confined(&self) -> bool {
        self.inner.confined()
    }

    fn exclusive_locations(&self) -> bool {
        self.inner.exclusive_locations()
    }
}
