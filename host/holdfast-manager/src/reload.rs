//! Hot loading: a new set of backends applied to a running host. Operations already
//! running keep the driver they started with (they hold it); new ones get the new
//! one at once. A backend whose new driver fails its setup keeps its old driver; a
//! backend that still holds backups is not removed unless forced, and then stays,
//! marked unavailable. Reloads are serialised.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::services::{Backend, Service};
use crate::{Manager, ManagerError};

/// What a reload did, backend by backend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    pub added: Vec<String>,
    pub upgraded: Vec<String>,
    pub removed: Vec<String>,
    pub unchanged: Vec<String>,
    /// Backends left as they were, and why (a component that did not load, a setup
    /// that failed, backups that still need it).
    pub failed: Vec<(String, String)>,
    pub default_backend: String,
}

/// A reload asked for over the API; the host's reload task answers it.
pub struct ReloadRequest {
    pub force: bool,
    pub reply: oneshot::Sender<Result<ReloadReport, String>>,
}

/// Marks a backend removed with `--force` while backups still need it.
const REMOVED: &str = "removed from the configuration";

impl Manager {
    /// Let `POST …/holdfast-plugins/reload` reach the host's reload task.
    pub fn set_reloader(&self, tx: mpsc::Sender<ReloadRequest>) {
        let _ = self.reloader.set(tx);
    }

    /// Ask the host to reload its configuration, and wait for the outcome.
    pub async fn request_reload(&self, force: bool) -> Result<ReloadReport, ManagerError> {
        let Some(tx) = self.reloader.get() else {
            return Err(ManagerError::NotSupported(
                "This host was started without --config; there is nothing to reload.".into(),
            ));
        };
        let (reply, rx) = oneshot::channel();
        tx.send(ReloadRequest { force, reply })
            .await
            .map_err(|_| ManagerError::Internal("the reload task is gone".into()))?;
        rx.await
            .map_err(|_| ManagerError::Internal("the reload task ended without an answer".into()))?
            .map_err(|why| ManagerError::Invalid(format!("Invalid configuration: {why}")))
    }

    /// Apply `wanted` (with the same driver `Arc` for backends that did not change) and
    /// `default`. `not_loaded` are backends whose new driver could not be built: they
    /// keep serving the old one. Refused as a whole, changing nothing, when a removed
    /// backend still holds backups and `force` is not set.
    pub async fn apply_backends(
        self: &Arc<Self>,
        wanted: Vec<Backend>,
        not_loaded: Vec<(String, String)>,
        default: &str,
        force: bool,
    ) -> Result<ReloadReport, ManagerError> {
        let _serial = self.reload_lock.lock().await;
        // (name, backend, whether it is already kept only for its backups)
        let current: Vec<(String, Backend, bool)> =
            self.services.read().await.by_name.iter().map(|(n, s)| (n.clone(), s.backend.clone(), s.removed)).collect();
        let kept_names: Vec<&str> =
            wanted.iter().map(|b| b.name.as_str()).chain(not_loaded.iter().map(|(n, _)| n.as_str())).collect();
        let mut report = ReloadReport { failed: not_loaded.clone(), ..Default::default() };

        // Removals first: refused, changing nothing, while backups need the backend.
        let mut removals = Vec::new();
        // A backend already kept as unavailable stays so; it does not block reloads.
        for (name, _, _) in current.iter().filter(|(n, _, removed)| !removed && !kept_names.contains(&n.as_str())) {
            let n = self.db.count_backups_on_backend(name).await?;
            if n > 0 && !force {
                return Err(ManagerError::Invalid(format!(
                    "Invalid configuration: backend {name} still holds {n} backup(s); delete them, or reload with \
                     force to keep it as unavailable"
                )));
            }
            removals.push((name.clone(), n));
        }

        // New and changed drivers are set up before anything switches.
        let mut ready = Vec::new();
        for b in wanted {
            let old = current.iter().find(|(n, _, _)| *n == b.name);
            // A backend kept as unavailable and configured again comes back (setup again).
            let same = old.is_some_and(|(_, o, removed)| {
                !removed && Arc::ptr_eq(&o.driver, &b.driver) && o.availability_zone == b.availability_zone
            });
            let old = old.map(|(_, o, _)| o);
            if same {
                report.unchanged.push(b.name.clone());
                continue;
            }
            match Self::setup(&b.driver).await {
                Ok(desc) => {
                    if old.is_some() { &mut report.upgraded } else { &mut report.added }.push(b.name.clone());
                    ready.push(Service::new(b, Ok(desc)));
                }
                Err(why) => {
                    tracing::error!(backend = %b.name, driver = %b.driver.id(), error = %why, "reload: the new driver's setup failed; the backend keeps what it had");
                    report.failed.push((b.name.clone(), format!("setup failed: {why}")));
                }
            }
        }

        let mut services = self.services.write().await;
        // Counted again now that nothing else can pick a backend: a backup created on
        // one during the setups keeps it.
        let mut recounted = Vec::new();
        for (name, held) in removals {
            let held = if held == 0 { self.db.count_backups_on_backend(&name).await? } else { held };
            recounted.push((name, held));
        }
        for s in ready {
            tracing::info!(backend = %s.backend.name, driver = %s.backend.driver.id(), "reload: backend serving");
            services.by_name.insert(s.backend.name.clone(), s);
        }
        for (name, held) in recounted {
            if held > 0 {
                if let Some(s) = services.by_name.get_mut(&name) {
                    s.state = Err(format!("{REMOVED}; {held} backup(s) still need it"));
                    s.removed = true;
                }
                report.failed.push((name.clone(), format!("kept as unavailable: {held} backup(s) still need it")));
            } else {
                services.by_name.remove(&name);
                report.removed.push(name.clone());
            }
            tracing::info!(backend = %name, backups = held, "reload: backend removed");
        }
        for (name, why) in &report.failed {
            if let Some(s) = services.by_name.get_mut(name) {
                s.last_error = Some(why.clone());
            }
        }
        if services.by_name.contains_key(default) {
            services.default = default.to_owned();
        } else {
            report.failed.push((default.to_owned(), "not loaded; the default backend stays".into()));
        }
        report.default_backend = services.default.clone();
        Ok(report)
    }
}
