//! Restore a backup onto an existing volume or onto a new one made for it.

use std::sync::Arc;
use std::time::Instant;

use holdfast_driver::OpContext;

use crate::Driver;
use holdfast_types::{Backup, BackupStatus, EventOp, EventPhase, EventType, Volume, VolumeStatus};
use serde_json::json;
use tracing::Instrument;

use crate::events::progress_event;
use crate::progress::Operation;
use crate::{Manager, ManagerError, RequestContext};

#[derive(Debug, Clone, Default)]
pub struct RestoreRequest {
    /// Restore onto this volume; `None` makes a new volume (named `name`).
    pub volume_id: Option<String>,
    pub name: Option<String>,
}

/// Cinder's restore view (the 202 body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreView {
    pub backup_id: String,
    pub volume_id: String,
    pub volume_name: String,
}

impl Manager {
    pub async fn restore_backup(
        self: &Arc<Self>,
        ctx: &RequestContext,
        backup_id: &str,
        req: RestoreRequest,
    ) -> Result<RestoreView, ManagerError> {
        let backup = self.get_backup(ctx, backup_id).await?;
        let chosen = self.backend_for(&backup).await?;
        let (driver, desc, places) = (chosen.driver, chosen.desc, chosen.places);
        if backup.status != BackupStatus::Available {
            return Err(ManagerError::Invalid("Invalid backup: Backup status must be available".into()));
        }
        if let Some(s) = &backup.service
            && !desc.service.starts_with(s.as_str())
        {
            return Err(ManagerError::Invalid(format!(
                "Invalid backup: it was made by driver {s}, but this service runs {}",
                desc.service
            )));
        }
        let chain = self.chain(&backup).await?;
        let (target, is_new) = match &req.volume_id {
            Some(vid) => {
                let v = self.get_volume(ctx, vid).await?;
                if v.status != VolumeStatus::Available {
                    return Err(ManagerError::Invalid(
                        "Invalid volume: Volume to be restored to must be available".into(),
                    ));
                }
                if v.size < backup.size {
                    return Err(ManagerError::Invalid(format!(
                        "Invalid volume: volume size {} is too small to restore backup of size {}.",
                        v.size, backup.size
                    )));
                }
                if v.size_bytes < backup.size_bytes {
                    return Err(ManagerError::Invalid(format!(
                        "Invalid volume: volume is {} bytes, too small to restore backup of {} bytes.",
                        v.size_bytes, backup.size_bytes
                    )));
                }
                (v, false)
            }
            None => {
                let name = req.name.clone().unwrap_or_else(|| format!("restore_backup_{}", backup.id));
                let desc = Some("auto-created_from_restore_from_backup".to_owned());
                (self.create_volume_bytes(ctx, backup.size_bytes, Some(name), desc).await?, true)
            }
        };
        let undo_new_volume = async || {
            if is_new {
                let _ = self.delete_volume(ctx, &target.id).await;
            }
        };
        if !self.db.transition_backup(&backup.id, &[BackupStatus::Available], BackupStatus::Restoring).await? {
            undo_new_volume().await;
            return Err(ManagerError::Invalid("Invalid backup: Backup status must be available".into()));
        }
        if !self
            .db
            .transition_volume(&target.id, &[VolumeStatus::Available], VolumeStatus::RestoringBackup, None)
            .await?
        {
            self.db.transition_backup(&backup.id, &[BackupStatus::Restoring], BackupStatus::Available).await?;
            undo_new_volume().await;
            return Err(ManagerError::Invalid("Invalid volume: Volume to be restored to must be available".into()));
        }
        if let Some(mut b) = self.db.get_backup(&backup.id).await? {
            b.restore_volume_id = Some(target.id.clone());
            self.db.update_backup(&b).await?;
        }
        let view = RestoreView {
            backup_id: backup.id.clone(),
            volume_id: target.id.clone(),
            volume_name: target.name.clone().unwrap_or_default(),
        };
        let span =
            tracing::info_span!("restore", backup_id = %backup.id, volume_id = %target.id, driver = %driver.id().name);
        // Registered now, so a reset that comes while the restore waits for a slot cancels it.
        let total: u64 = chain.iter().map(|b| b.size_bytes).sum();
        let running = self.progress.queue(&backup.id, Operation::Restore, total);
        tokio::spawn(
            self.clone()
                .run_restore(backup, chain, target, is_new, (driver, places), (running, ctx.caller.clone()))
                .instrument(span),
        );
        Ok(view)
    }

    /// Apply each layer's saved volume metadata to the target, in chain order (Cinder
    /// §4.7): user metadata replaces the target's; the source's name and description
    /// go to a target that has none or an auto-created one; `src_backup_id` records
    /// where the data came from.
    async fn apply_volume_meta(
        &self,
        backup: &Backup,
        target: &Volume,
        metas: &[Option<String>],
    ) -> Result<(), String> {
        let mut user = None;
        let mut base_name = None;
        for text in metas.iter().flatten() {
            let v: serde_json::Value =
                serde_json::from_str(text).map_err(|e| format!("the backup's volume metadata is not JSON: {e}"))?;
            match v.get("version").and_then(serde_json::Value::as_i64) {
                Some(1 | 2) => {}
                other => return Err(format!("Unsupported backup metadata version ({other:?})")),
            }
            if let Some(m) = v.get("volume-metadata").and_then(serde_json::Value::as_object) {
                user = Some(m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect());
            }
            if let Some(b) = v.get("volume-base-metadata") {
                let s = |k: &str| b.get(k).and_then(serde_json::Value::as_str).map(str::to_owned);
                base_name = Some((s("display_name"), s("display_description")));
            }
        }
        let mut meta: std::collections::BTreeMap<String, String> = match user {
            Some(user) => user,
            None => self.db.volume_metadata(&target.id).await.map_err(|e| e.to_string())?,
        };
        if backup.volume_id != target.id {
            meta.insert("src_backup_id".into(), backup.id.clone());
        }
        self.db.set_volume_metadata(&target.id, &meta).await.map_err(|e| e.to_string())?;
        let auto_named = target.name.as_deref().is_none_or(|n| n.is_empty() || n.starts_with("restore_backup_"));
        if let (true, Some((Some(name), description))) = (auto_named, base_name)
            && !name.is_empty()
            && let Ok(Some(mut v)) = self.db.get_volume(&target.id).await
        {
            v.name = Some(name);
            v.description = description;
            self.db.update_volume(&v).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// The backups to lay down, full backup first, following `parent_id`.
    async fn chain(&self, backup: &Backup) -> Result<Vec<Backup>, ManagerError> {
        let mut chain = vec![backup.clone()];
        while let Some(parent) = chain.last().and_then(|b| b.parent_id.clone()) {
            match self.db.get_backup(&parent).await? {
                Some(p) if !p.deleted && chain.len() < 10_000 => chain.push(p),
                _ => {
                    return Err(ManagerError::Invalid(format!(
                        "Invalid backup: parent backup {parent} of the chain is missing"
                    )));
                }
            }
        }
        chain.reverse();
        Ok(chain)
    }

    async fn run_restore(
        self: Arc<Self>,
        backup: Backup,
        chain: Vec<Backup>,
        target: Volume,
        is_new: bool,
        (driver, places): (Driver, Option<Arc<tokio::sync::Semaphore>>),
        (running, caller): (crate::progress::Running, Option<holdfast_driver::Caller>),
    ) {
        self.notify(&backup.id, EventType::new(EventOp::Restore, EventPhase::Start), json!({"volume_id": target.id}))
            .await;
        let queued = self.metrics.queued();
        // Cancelled while queued: no turn needed, the driver call below returns at once.
        let _turn = self.wait_turn(places, &running.cancel).await;
        drop(queued);
        self.progress.begin(&backup.id);
        let started = Instant::now();
        let watcher = self.watch_progress(&backup.id, Operation::Restore);
        let cancel = running.cancel.clone();
        let op = OpContext {
            done: running.done,
            moved: running.moved,
            cancel: running.cancel,
            workers: self.config.workers,
            caller: caller.clone(),
            ..OpContext::default()
        };
        let (volumes, location) = (self.volumes.clone(), target.location.clone());
        let span = tracing::Span::current();
        let metrics = self.metrics.clone();
        let result = crate::data_thread::run("hf-restore", move || {
            let _in = span.enter();
            if op.cancel.load(std::sync::atomic::Ordering::Relaxed) {
                return Err("cancelled before it started".to_owned());
            }
            let file = volumes.open_write(&location).map_err(|e| format!("cannot open the target volume: {e}"))?;
            metrics.time_driver(driver.id().name.as_str(), "restore", || {
                driver.restore(op, &chain, file, is_new).map_err(|e| e.to_string())
            })
        })
        .await
        .unwrap_or_else(|e| Err(format!("restore task failed: {e}")));
        watcher.stop().await;
        let result = match result {
            Ok(outcome) => self.apply_volume_meta(&backup, &target, &outcome.volume_metas).await.map(|_| outcome),
            Err(e) => Err(e),
        };
        let (volume_status, fail) = match &result {
            Ok(_) => {
                let secs = started.elapsed().as_secs_f64();
                self.metrics.transferred("restore", backup.size_bytes, secs);
                tracing::info!(
                    seconds = secs,
                    mb_per_s = backup.size_bytes as f64 / 1e6 / secs.max(1e-9),
                    "restore done"
                );
                (VolumeStatus::Available, None)
            }
            Err(_) if cancel.load(std::sync::atomic::Ordering::Relaxed) => {
                // Cinder: a cancelled restore leaves the target `error`.
                tracing::warn!("restore cancelled");
                (VolumeStatus::Error, Some(format!("restore to volume {} was cancelled", target.id)))
            }
            Err(why) => {
                tracing::warn!(reason = %why, "restore failed");
                (VolumeStatus::ErrorRestoring, Some(format!("restore to volume {} failed: {why}", target.id)))
            }
        };
        // Cinder sends `.end` after success or cancel; Holdfast adds `.error` on failure.
        let (event, extra) = match volume_status {
            VolumeStatus::Available => {
                (EventType::new(EventOp::Restore, EventPhase::End), json!({"volume_id": target.id}))
            }
            VolumeStatus::Error => {
                (EventType::new(EventOp::Restore, EventPhase::End), json!({"volume_id": target.id, "cancelled": true}))
            }
            _ => (EventType::new(EventOp::Restore, EventPhase::Error), json!({"volume_id": target.id, "reason": fail})),
        };
        let finish = async {
            self.db.transition_volume(&target.id, &[VolumeStatus::RestoringBackup], volume_status, None).await?;
            // Cinder returns the backup to `available` whatever happened; we also keep
            // the reason of a failed restore in fail_reason for the operator.
            if let Some(mut b) = self.db.get_backup(&backup.id).await? {
                // Even after an admin reset it to `error` to cancel (Cinder quirk 3);
                // a force-deleted backup stays `deleting` (its delete runs next).
                if matches!(b.status, BackupStatus::Restoring | BackupStatus::Error) {
                    b.status = BackupStatus::Available;
                }
                if let Some(f) = &fail {
                    b.fail_reason = Some(f.chars().take(255).collect());
                }
                self.db.update_backup(&b).await?;
            }
            Ok::<_, holdfast_db::DbError>(())
        };
        if let Err(e) = finish.await {
            tracing::error!(error = %e, "could not record the restore's outcome");
        }
        if volume_status == VolumeStatus::Available {
            let progress = progress_event(Operation::Restore);
            self.notify(&backup.id, progress, json!({"backup_percent": 100})).await;
        }
        self.notify(&backup.id, event, extra).await;
        self.progress.finish(&backup.id);
        self.after_operation(&backup.id, caller).await;
    }
}
