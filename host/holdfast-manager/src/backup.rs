//! Create a backup: validate, flip the statuses, then stream the volume through the
//! driver on a blocking thread.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use holdfast_plugin_host::{DriverComponent, OpContext};
use holdfast_types::{Backup, BackupStatus, Timestamp, Volume, VolumeStatus};
use holdfast_volume::VolumeFile;
use tracing::Instrument;

use crate::progress::Operation;
use crate::{Manager, ManagerError, RequestContext};

#[derive(Debug, Clone, Default)]
pub struct CreateBackup {
    pub volume_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub container: Option<String>,
    pub incremental: bool,
    pub force: bool,
    pub snapshot_id: Option<String>,
}

/// [`holdfast_types::is_valid_container`] as a 400 (the driver checks the same rule).
pub(crate) fn check_container(c: &str) -> Result<(), ManagerError> {
    if !holdfast_types::is_valid_container(c) {
        return Err(ManagerError::Invalid(format!(
            "Invalid input received: container {c:?} must be a relative path without '.', '..' or empty parts"
        )));
    }
    Ok(())
}

/// Cinder's `volume_meta` text: the volume's base fields (version 2 format).
fn volume_meta(v: &Volume, user: &std::collections::BTreeMap<String, String>) -> String {
    let base = serde_json::json!({
        "id": v.id,
        "display_name": v.name,
        "display_description": v.description,
        "size": v.size,
        "status": v.status.as_str(),
        "created_at": v.created_at.api(),
    });
    let mut meta = serde_json::json!({"version": 2, "volume-base-metadata": base});
    if !user.is_empty() {
        meta["volume-metadata"] = serde_json::json!(user);
    }
    meta.to_string()
}

impl Manager {
    /// Validate and accept a backup request; the data work continues in the background.
    pub async fn create_backup(
        self: &Arc<Self>,
        ctx: &RequestContext,
        req: CreateBackup,
    ) -> Result<Backup, ManagerError> {
        let (driver, desc) = self.driver().await?;
        if let Some(snapshot) = &req.snapshot_id {
            return Err(ManagerError::NotFound(format!("Snapshot {snapshot} could not be found.")));
        }
        if let Some(c) = &req.container {
            check_container(c)?;
        }
        let vol = self.get_volume(ctx, &req.volume_id).await?;
        let parent = if req.incremental { self.incremental_parent(ctx, &vol).await? } else { None };
        match vol.status {
            VolumeStatus::Available => {}
            VolumeStatus::InUse if req.force => {}
            VolumeStatus::InUse => {
                return Err(ManagerError::Invalid(
                    "Invalid volume: Backing up an in-use volume must use the force flag.".into(),
                ));
            }
            s => return Err(wrong_volume_status(s)),
        }
        self.check_quota(&ctx.project_id, vol.size).await?;
        let from = vol.status;
        if !self.db.transition_volume(&vol.id, &[from], VolumeStatus::BackingUp, Some(from.as_str())).await? {
            let now = self.get_volume(ctx, &vol.id).await?;
            return Err(wrong_volume_status(now.status));
        }
        let now = Timestamp::now();
        let backup = Backup {
            id: uuid::Uuid::new_v4().to_string(),
            project_id: ctx.project_id.clone(),
            user_id: ctx.user_id.clone(),
            volume_id: vol.id.clone(),
            snapshot_id: None,
            status: BackupStatus::Creating,
            display_name: req.name,
            display_description: req.description,
            size: vol.size,
            size_bytes: vol.size_bytes,
            object_count: 0,
            container: req.container,
            service: Some(desc.service),
            service_metadata: None,
            parent_id: parent.as_ref().map(|p| p.id.clone()),
            num_dependent_backups: 0,
            availability_zone: Some(self.config.availability_zone.clone()),
            host: Some(self.config.host.clone()),
            fail_reason: None,
            restore_volume_id: None,
            data_timestamp: Some(now),
            created_at: now,
            updated_at: None,
            deleted_at: None,
            deleted: false,
        };
        if let Err(e) = self.db.insert_backup(&backup).await {
            self.db.transition_volume(&vol.id, &[VolumeStatus::BackingUp], from, Some("error_backing-up")).await?;
            return Err(e.into());
        }
        let span = tracing::info_span!("backup", backup_id = %backup.id, volume_id = %vol.id, driver = driver.name());
        tokio::spawn(self.clone().run_backup(backup.clone(), parent, vol, from, driver).instrument(span));
        Ok(backup)
    }

    /// Cinder's parent rule: among this volume's backups in the caller's project, the
    /// `available` one with the newest data. None at all → 400. If the volume's size
    /// changed since, the backup is made full instead.
    async fn incremental_parent(&self, ctx: &RequestContext, vol: &Volume) -> Result<Option<Backup>, ManagerError> {
        let none = || ManagerError::Invalid("Invalid backup: No backups available to do an incremental backup.".into());
        let backups = self.db.list_backups(Some(&ctx.project_id)).await?;
        let parent = backups
            .into_iter()
            .filter(|b| b.volume_id == vol.id && b.status == BackupStatus::Available)
            .max_by_key(|b| (b.data_timestamp, b.created_at))
            .ok_or_else(none)?;
        if parent.size_bytes != vol.size_bytes {
            tracing::info!(volume_id = %vol.id, parent = %parent.id, "volume size changed since the parent: full backup");
            return Ok(None);
        }
        Ok(Some(parent))
    }

    async fn run_backup(
        self: Arc<Self>,
        backup: Backup,
        parent: Option<Backup>,
        vol: Volume,
        from: VolumeStatus,
        driver: Arc<DriverComponent>,
    ) {
        let _slot = self.operations.clone().acquire_owned().await;
        let started = Instant::now();
        let running = self.progress.start(&backup.id, Operation::Create, vol.size_bytes);
        let handle = tokio::runtime::Handle::current();
        let (db, id) = (self.db.clone(), backup.id.clone());
        let on_location = move |container: &str, prefix: &str| {
            if let Err(e) = handle.block_on(db.set_backup_location(&id, container, prefix)) {
                tracing::error!(error = %e, "could not record where the backup's objects go");
            }
        };
        let op = OpContext {
            done: running.done,
            cancel: running.cancel,
            on_location: Some(Box::new(on_location)),
            workers: self.config.workers,
        };
        let user = match self.db.volume_metadata(&vol.id).await {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "could not read the volume's metadata; backing up without it");
                Default::default()
            }
        };
        let meta = volume_meta(&vol, &user);
        let path = PathBuf::from(&vol.path);
        let job = backup.clone();
        let span = tracing::Span::current();
        let result = tokio::task::spawn_blocking(move || {
            let _in = span.enter();
            let file = VolumeFile::open_read(&path).map_err(|e| format!("cannot read volume: {e}"))?;
            driver.backup(op, &job, parent.as_ref(), Some(&meta), file).map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(format!("backup task failed: {e}")));
        match result {
            Ok(r) => {
                let secs = started.elapsed().as_secs_f64();
                // The volume is usable again before the backup shows `available` (Cinder's order), so a
                // client that waits for the backup can use the volume at once.
                self.release_volume(&vol.id, from, "backing-up").await;
                let finished = self
                    .db
                    .finish_backup(
                        &backup.id,
                        i64::from(r.object_count),
                        &r.container,
                        &r.service_metadata,
                        vol.size,
                        vol.size_bytes,
                    )
                    .await;
                match finished {
                    Ok(_) => {
                        tracing::info!(
                            objects = r.object_count,
                            seconds = secs,
                            mb_per_s = vol.size_bytes as f64 / 1e6 / secs.max(1e-9),
                            "backup available"
                        );
                        self.recount_dependents(backup.parent_id.as_deref()).await;
                    }
                    Err(e) => tracing::error!(error = %e, "could not record the backup's outcome"),
                }
            }
            Err(why) => {
                tracing::warn!(reason = %why, "backup failed");
                if let Err(e) = self.db.fail_backup(&backup.id, &[BackupStatus::Creating], &why).await {
                    tracing::error!(error = %e, "could not record the backup's outcome");
                }
                self.release_volume(&vol.id, from, "error_backing-up").await;
            }
        }
        self.progress.finish(&backup.id);
        self.after_operation(&backup.id).await;
    }

    /// Return a volume from `backing-up` to the status it had before the backup.
    async fn release_volume(&self, volume_id: &str, to: VolumeStatus, previous: &str) {
        if let Err(e) = self.db.transition_volume(volume_id, &[VolumeStatus::BackingUp], to, Some(previous)).await {
            tracing::error!(error = %e, "could not return the volume to {to}");
        }
    }

    /// Recount a parent's dependents (a child became available or was deleted).
    /// Counting from the rows, not +1/−1, keeps the number right after crashes and retries.
    pub(crate) async fn recount_dependents(&self, parent: Option<&str>) {
        let Some(parent) = parent else { return };
        let counted = [BackupStatus::Available, BackupStatus::Restoring, BackupStatus::Deleting];
        let result = async {
            let now = self.db.count_children_in(parent, &counted).await?;
            let before = self.db.get_backup(parent).await?.map_or(0, |p| p.num_dependent_backups);
            self.db.adjust_dependents(parent, now - before).await
        };
        if let Err(e) = result.await {
            tracing::error!(parent = %parent, error = %e, "could not recount dependent backups");
        }
    }

    /// A backup of the caller's project (not deleted).
    pub async fn get_backup(&self, ctx: &RequestContext, id: &str) -> Result<Backup, ManagerError> {
        match self.db.get_backup(id).await? {
            Some(b) if !b.deleted && b.project_id == ctx.project_id => Ok(b),
            _ => Err(ManagerError::backup_not_found(id)),
        }
    }

    pub async fn list_backups(&self, ctx: &RequestContext) -> Result<Vec<Backup>, ManagerError> {
        Ok(self.db.list_backups(Some(&ctx.project_id)).await?)
    }
}

fn wrong_volume_status(s: VolumeStatus) -> ManagerError {
    ManagerError::Invalid(format!(
        "Invalid volume: Volume to be backed up must be available or in-use, but the current status is \"{s}\"."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_must_stay_relative() {
        check_container("c1/nightly").unwrap();
        for bad in ["", "/abs", "..", "a/../b", "a//b"] {
            assert!(check_container(bad).is_err(), "{bad}");
        }
    }
}
