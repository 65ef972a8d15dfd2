//! Delete a backup: its objects first, then the row (soft delete, as Cinder).

use std::sync::Arc;

use holdfast_driver::OpContext;

use crate::Driver;
use holdfast_types::{Backup, BackupStatus, EventOp, EventPhase, EventType};
use serde_json::json;
use tracing::Instrument;

use crate::progress::Operation;
use crate::{Manager, ManagerError, RequestContext};

impl Manager {
    pub async fn delete_backup(self: &Arc<Self>, ctx: &RequestContext, id: &str) -> Result<(), ManagerError> {
        let backup = self.get_backup(ctx, id).await?;
        if !matches!(backup.status, BackupStatus::Available | BackupStatus::Error) {
            return Err(ManagerError::Invalid("Invalid backup: Backup status must be available or error".into()));
        }
        if self.db.count_children(id).await? > 0 {
            return Err(ManagerError::Invalid("Invalid backup: Incremental backups exist for this backup.".into()));
        }
        // A backup that never reached a backend has nothing to delete: no driver needed.
        let driver = if has_objects(&backup) { Some(self.backend_for(&backup).await?.driver) } else { None };
        if !self
            .db
            .transition_backup(id, &[BackupStatus::Available, BackupStatus::Error], BackupStatus::Deleting)
            .await?
        {
            return Err(ManagerError::Invalid("Invalid backup: Backup status must be available or error".into()));
        }
        let span = tracing::info_span!("delete", backup_id = %id, volume_id = %backup.volume_id);
        tokio::spawn(self.clone().run_delete(backup, Ok(driver), ctx.caller.clone()).instrument(span));
        Ok(())
    }

    /// The driver a delete of `b` needs: none when it never reached a store, else the
    /// backend that wrote it — or why there is none up (the delete then ends `error`
    /// with that reason and can be retried; it never drops a row whose objects stay).
    pub(crate) async fn deleter(&self, b: &Backup) -> Result<Option<Driver>, String> {
        if !has_objects(b) {
            return Ok(None);
        }
        self.backend_for(b).await.map(|c| Some(c.driver)).map_err(|e| e.to_string())
    }

    /// `caller`: who asked, if anyone did (a `per_user` Swift account needs their token).
    pub(crate) async fn run_delete(
        self: Arc<Self>,
        backup: Backup,
        driver: Result<Option<Driver>, String>,
        caller: Option<holdfast_driver::Caller>,
    ) {
        self.notify(&backup.id, EventType::new(EventOp::Delete, EventPhase::Start), json!({})).await;
        // Objects another live backup also uses (an imported record of it, as tempest
        // makes) stay: deleting them would break that backup. Every delete comes here.
        let driver = match (driver, &backup.container, &backup.service_metadata) {
            // A chain that shares its location by design (Ceph's base image) deletes
            // only what is the backup's own: the driver always runs.
            (Ok(Some(d)), Some(c), Some(p)) if d.exclusive_locations() => {
                match self.db.backup_location_clash(&backup.id, c, p).await {
                    Ok(Some(other)) => {
                        tracing::info!(shared_with = %other, "the backup's objects are another backup's too: kept");
                        Ok(None)
                    }
                    Ok(None) => Ok(Some(d)),
                    Err(e) => Err(format!("could not check whether another backup uses the objects: {e}")),
                }
            }
            (driver, _, _) => driver,
        };
        self.progress.start(&backup.id, Operation::Delete, 0);
        let result = match driver {
            Err(why) => Err(why),
            Ok(None) => Ok(()),
            Ok(Some(driver)) => {
                let job = backup.clone();
                let span = tracing::Span::current();
                let metrics = self.metrics.clone();
                tokio::task::spawn_blocking(move || {
                    let _in = span.enter();
                    metrics.time_driver(driver.id().name.as_str(), "delete", || {
                        driver.delete(OpContext { caller, ..OpContext::default() }, &job).map_err(|e| e.to_string())
                    })
                })
                .await
                .unwrap_or_else(|e| Err(format!("delete task failed: {e}")))
            }
        };
        let event = match &result {
            Ok(()) => (EventType::new(EventOp::Delete, EventPhase::End), json!({})),
            Err(why) => (EventType::new(EventOp::Delete, EventPhase::Error), json!({"reason": why})),
        };
        let recorded = match result {
            Ok(()) => {
                tracing::info!("backup deleted");
                let done = self.db.soft_delete_backup(&backup.id).await;
                self.recount_dependents(backup.parent_id.as_deref()).await;
                done
            }
            Err(why) => {
                tracing::warn!(reason = %why, "delete failed");
                // Cinder sets `error` (not error_deleting) when the driver fails.
                self.db.fail_backup(&backup.id, &[BackupStatus::Deleting], &why).await
            }
        };
        if let Err(e) = recorded {
            tracing::error!(error = %e, "could not record the delete's outcome");
        }
        self.notify(&backup.id, event.0, event.1).await;
        self.progress.finish(&backup.id);
    }
}

/// Whether the backup may have objects in a store (it got as far as a location).
fn has_objects(b: &Backup) -> bool {
    b.container.is_some() || b.service_metadata.is_some()
}
