//! Volume snapshots: point-in-time copies the host takes of a volume's file (a
//! reflink where the filesystem can, else a sparse copy) under `<data_dir>/snapshots`.
//! `backup create --snapshot` backs up the copy instead of the live volume.
//!
//! | operation | snapshot status | volume status |
//! |---|---|---|
//! | create | `creating` → `available` / `error` | unchanged (`available`, or `in-use` with force) |
//! | backup of it | `available` → `backing-up` → `available` | unchanged (Cinder does not look at it) |
//! | delete | `available`/`error` → `deleting` → row and file gone / `error_deleting` | – |

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use holdfast_types::{Snapshot, SnapshotStatus, Timestamp, VolumeLocation};
use tracing::Instrument;

use crate::progress::Operation;

use crate::backup::check_readable;
use crate::{Manager, ManagerError, RequestContext};

#[derive(Debug, Clone, Default)]
pub struct CreateSnapshot {
    pub volume_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    /// Snapshot an `in-use` volume (crash-consistent, as in Cinder).
    pub force: bool,
}

impl ManagerError {
    pub fn snapshot_not_found(id: &str) -> Self {
        ManagerError::NotFound(format!("Snapshot {id} could not be found."))
    }
}

impl Manager {
    fn snapshots_dir(&self) -> PathBuf {
        self.config.data_dir.join("snapshots")
    }

    /// Accept a snapshot request; the copy is made in the background (`creating` →
    /// `available`), so the answer comes at once even for a large volume.
    pub async fn create_snapshot(
        self: &Arc<Self>,
        ctx: &RequestContext,
        req: CreateSnapshot,
    ) -> Result<Snapshot, ManagerError> {
        let vol = self.get_volume(ctx, &req.volume_id).await?;
        check_readable(vol.status, req.force, ("Snapshotting", "snapshotted"))?;
        let dir = self.snapshots_dir();
        std::fs::create_dir_all(&dir)
            .map_err(|e| ManagerError::Internal(format!("creating {}: {e}", dir.display())))?;
        let id = uuid::Uuid::new_v4().to_string();
        let snap = Snapshot {
            // A copy in the data dir, or (RBD) the image at a snapshot.
            location: self.volumes.snapshot_location(&vol.location, &id, &dir),
            id,
            project_id: ctx.project_id.clone(),
            user_id: ctx.user_id.clone(),
            volume_id: vol.id.clone(),
            name: req.name,
            description: req.description,
            status: SnapshotStatus::Creating,
            size: vol.size,
            size_bytes: vol.size_bytes,
            created_at: Timestamp::now(),
            updated_at: None,
        };
        self.db.insert_snapshot(&snap).await?;
        let span = tracing::info_span!("snapshot", snapshot_id = %snap.id, volume_id = %vol.id);
        let (m, s, source) = (self.clone(), snap.clone(), vol.location.clone());
        tokio::spawn(async move { m.run_snapshot(s, source).await }.instrument(span));
        Ok(snap)
    }

    async fn run_snapshot(self: Arc<Self>, snap: Snapshot, source: VolumeLocation) {
        let started = Instant::now();
        let target = snap.location.clone();
        let running = self.progress.start(&snap.id, Operation::Snapshot, snap.size_bytes);
        let (to, done, volumes) = (target.clone(), running.done, self.volumes.clone());
        let copy = crate::data_thread::run("hf-snapshot", move || {
            volumes.snapshot(&source, &to, &mut |n| done.store(n, Ordering::Relaxed)).map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(format!("snapshot task failed: {e}")));
        self.progress.finish(&snap.id);
        let to = match copy {
            Ok((bytes, method)) => {
                let secs = started.elapsed().as_secs_f64();
                tracing::info!(?method, bytes, seconds = secs, "snapshot available");
                SnapshotStatus::Available
            }
            Err(e) => {
                tracing::error!(error = %e, "snapshot copy failed");
                self.remove_partial(&target);
                SnapshotStatus::Error
            }
        };
        if let Err(e) = self.db.transition_snapshot(&snap.id, &[SnapshotStatus::Creating], to).await {
            tracing::error!(error = %e, "could not record the snapshot's outcome");
        }
    }

    /// Percent of a snapshot's copy made so far, while it is being made.
    pub fn snapshot_progress(&self, id: &str) -> Option<u64> {
        let p = self.progress.get(id).filter(|p| p.operation == Operation::Snapshot)?;
        Some((p.bytes_done * 100).checked_div(p.bytes_total).unwrap_or(0))
    }

    /// A snapshot of the caller's project.
    pub async fn get_snapshot(&self, ctx: &RequestContext, id: &str) -> Result<Snapshot, ManagerError> {
        match self.db.get_snapshot(id).await? {
            Some(s) if ctx.may_see(&s.project_id) => Ok(s),
            _ => Err(ManagerError::snapshot_not_found(id)),
        }
    }

    pub async fn list_snapshots(
        &self,
        ctx: &RequestContext,
        all_projects: bool,
    ) -> Result<Vec<Snapshot>, ManagerError> {
        Ok(self.db.list_snapshots(ctx.list_scope(all_projects)).await?)
    }

    /// Delete a snapshot that is `available` or `error` (not while a backup reads it).
    pub async fn delete_snapshot(&self, ctx: &RequestContext, id: &str) -> Result<(), ManagerError> {
        let s = self.get_snapshot(ctx, id).await?;
        let deletable = [SnapshotStatus::Available, SnapshotStatus::Error, SnapshotStatus::ErrorDeleting];
        if !self.db.transition_snapshot(id, &deletable, SnapshotStatus::Deleting).await? {
            return Err(ManagerError::Invalid(format!(
                "Invalid snapshot: Volume Snapshot status must be available or error, but current status is: {}.",
                s.status
            )));
        }
        self.finish_snapshot_delete(&s).await
    }

    /// Remove the copy, then the row (a crash in between is resumed by recovery).
    pub(crate) async fn finish_snapshot_delete(&self, s: &Snapshot) -> Result<(), ManagerError> {
        if let Err(e) = self.volumes.remove(&s.location) {
            self.db.transition_snapshot(&s.id, &[SnapshotStatus::Deleting], SnapshotStatus::ErrorDeleting).await?;
            return Err(ManagerError::Internal(format!("removing {}: {e}", s.location)));
        }
        self.db.delete_snapshot(&s.id).await?;
        tracing::info!(snapshot_id = %s.id, "snapshot deleted");
        Ok(())
    }

    /// Restart cleanup for snapshots: a copy cut short is removed (`error`), a backup
    /// that died reading one frees it, a delete is finished.
    pub(crate) async fn recover_snapshots(&self) -> Result<(), ManagerError> {
        for s in self.db.list_snapshots(None).await? {
            match s.status {
                SnapshotStatus::Creating => {
                    tracing::warn!(snapshot_id = %s.id, "snapshot copy was cut short by a restart");
                    self.remove_partial(&s.location);
                    self.db.transition_snapshot(&s.id, &[s.status], SnapshotStatus::Error).await?;
                }
                SnapshotStatus::BackingUp => {
                    self.db.transition_snapshot(&s.id, &[s.status], SnapshotStatus::Available).await?;
                }
                SnapshotStatus::Deleting => {
                    if let Err(e) = self.finish_snapshot_delete(&s).await {
                        tracing::error!(snapshot_id = %s.id, error = %e, "could not finish deleting a snapshot");
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn remove_partial(&self, at: &VolumeLocation) {
        if let Err(e) = self.volumes.remove(at) {
            tracing::error!(location = %at, error = %e, "could not remove a partial snapshot");
        }
    }
}
