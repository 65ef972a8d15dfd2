//! Restart cleanup, Cinder's `init_host`: nothing a dead process left half-done may
//! stay stuck.
//!
//! | found | action |
//! |---|---|
//! | backup `creating` | → `error` ("incomplete backup reset on manager restart"); partial objects deleted through the driver |
//! | backup `restoring` | → `available`; its target volume `restoring-backup` → `error_restoring` |
//! | backup `deleting` | the delete is run again |
//! | volume `backing-up` | → its previous status (`available`) |
//! | volume `restoring-backup` | → `error_restoring` |
//! | volume `extending` | → `available`, size from the file's length |
//! | snapshot `creating` / `backing-up` / `deleting` | partial copy removed, → `error` / → `available` / delete finished |

use std::sync::Arc;

use holdfast_driver::OpContext;
use holdfast_types::{BackupStatus, VolumeStatus};

use crate::{Driver, Manager, ManagerError};

/// How many times a failed backup's objects are tried to be removed, every
/// `periodic_interval` (a day's worth at Cinder's default of 60 s).
const SWEEP_TRIES: u32 = 1440;

pub const RESET_REASON: &str = "incomplete backup reset on manager restart";

impl Manager {
    /// Run once at start, before serving requests. Every row is put right in the
    /// database before this returns; what needs a driver (removing a dead backup's
    /// partial objects, finishing a delete) runs in the background afterwards, each
    /// call under its deadline, so a hung driver never keeps the server from binding.
    pub async fn recover(self: &Arc<Self>) -> Result<(), ManagerError> {
        let stuck = self
            .db
            .backups_in_status(&[BackupStatus::Creating, BackupStatus::Restoring, BackupStatus::Deleting])
            .await?;
        for b in stuck {
            let driver = self.deleter(&b).await;
            tracing::warn!(backup_id = %b.id, status = %b.status, "found an operation a dead process left behind");
            match b.status {
                BackupStatus::Creating => {
                    // `error` first: the row keeps its location, so a later delete can
                    // finish the cleanup if this one does not.
                    self.db.fail_backup(&b.id, &[BackupStatus::Creating], RESET_REASON).await?;
                    if let Ok(Some(d)) = driver {
                        tokio::spawn(async move {
                            let id = b.id.clone();
                            let cleaned = tokio::task::spawn_blocking(move || d.delete(OpContext::default(), &b))
                                .await
                                .map_err(|e| e.to_string())
                                .and_then(|r| r.map_err(|e| e.to_string()));
                            match cleaned {
                                Ok(()) => tracing::info!(backup_id = %id, "removed a dead backup's partial objects"),
                                Err(e) => {
                                    tracing::error!(backup_id = %id, error = %e, "could not remove the partial objects")
                                }
                            }
                        });
                    }
                }
                BackupStatus::Restoring => {
                    if let Some(vid) = &b.restore_volume_id {
                        self.db
                            .transition_volume(
                                vid,
                                &[VolumeStatus::RestoringBackup],
                                VolumeStatus::ErrorRestoring,
                                None,
                            )
                            .await?;
                    }
                    self.db.transition_backup(&b.id, &[BackupStatus::Restoring], BackupStatus::Available).await?;
                }
                BackupStatus::Deleting => {
                    // Resumed after a restart: nobody's token (a per_user Swift delete
                    // ends in `error` with the reason, and is retried by the user).
                    tokio::spawn(self.clone().run_delete(b, driver, None));
                }
                _ => {}
            }
        }
        self.recover_snapshots().await?;
        for v in self.db.list_volumes(None).await? {
            match v.status {
                VolumeStatus::BackingUp => {
                    let back = match v.previous_status.as_deref().and_then(|s| s.parse().ok()) {
                        Some(VolumeStatus::InUse) => VolumeStatus::InUse,
                        _ => VolumeStatus::Available,
                    };
                    self.db
                        .transition_volume(&v.id, &[VolumeStatus::BackingUp], back, Some("error_backing-up"))
                        .await?;
                }
                VolumeStatus::RestoringBackup => {
                    self.db
                        .transition_volume(&v.id, &[VolumeStatus::RestoringBackup], VolumeStatus::ErrorRestoring, None)
                        .await?;
                }
                VolumeStatus::Extending => {
                    // The file is the truth: it grew or it did not.
                    let len = self.volumes.size(&v.location).unwrap_or(v.size_bytes);
                    self.db.finish_extend(&v.id, len.max(v.size_bytes)).await?;
                }
                VolumeStatus::Creating | VolumeStatus::Deleting => {
                    self.db.transition_volume(&v.id, &[v.status], VolumeStatus::Error, None).await?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// A failed backup's objects, removed once its backend can: the driver's own cleanup
    /// fails when the store does (an endpoint down mid-backup), and the partial objects
    /// must not outlive the failure. Tried every `periodic_interval` while the row is
    /// `error` with a location; a delete of the row (which cleans up
    /// itself) or a new status ends it. The backup's caller goes along (a `per_user`
    /// Swift account needs their token, valid for a while yet).
    pub(crate) fn sweep_failed(self: &Arc<Self>, id: String, driver: Driver, caller: Option<holdfast_driver::Caller>) {
        let weak = Arc::downgrade(self);
        let interval = self.config.periodic_interval;
        tokio::spawn(async move {
            for _ in 0..SWEEP_TRIES {
                // Not at once: the driver's own cleanup usually did it, and a store that
                // just failed needs time to come back.
                tokio::time::sleep(interval).await;
                let Some(m) = weak.upgrade() else { return };
                let b = match m.db.get_backup(&id).await {
                    Ok(Some(b)) if b.status == BackupStatus::Error && b.container.is_some() => b,
                    Ok(_) => return,
                    Err(e) => {
                        tracing::warn!(backup_id = %id, error = %e, "cannot read a failed backup to remove its objects");
                        continue;
                    }
                };
                drop(m);
                let d = driver.clone();
                let op = OpContext { caller: caller.clone(), ..OpContext::default() };
                let removed = tokio::task::spawn_blocking(move || d.delete(op, &b))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()));
                match removed {
                    Ok(()) => {
                        tracing::info!(backup_id = %id, "removed a failed backup's partial objects");
                        return;
                    }
                    Err(e) => tracing::warn!(
                        backup_id = %id, error = %e, retry_in = ?interval,
                        "cannot remove a failed backup's partial objects yet"
                    ),
                }
            }
        });
    }
}
