//! Create a backup: validate, flip the statuses, then stream the volume through the
//! driver on a blocking thread.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use holdfast_db::{BackupQuery, MetadataOwner};
use holdfast_driver::OpContext;

use crate::Driver;
use crate::services::Chosen;
use holdfast_types::{
    Backup, BackupStatus, EventOp, EventPhase, EventType, Snapshot, SnapshotStatus, Timestamp, Volume, VolumeLocation,
    VolumeStatus,
};
use serde_json::json;
use tracing::Instrument;

use crate::events::progress_event;
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
    /// User metadata (API ≥ 3.43).
    pub metadata: std::collections::BTreeMap<String, String>,
    /// Picks the backend; `None` takes the default one.
    pub availability_zone: Option<String>,
}

/// `PUT /backups/{id}`: `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UpdateBackup {
    pub name: Option<Option<String>>,
    pub description: Option<Option<String>>,
    pub metadata: Option<BTreeMap<String, String>>,
}

/// What a backup reads: the live volume or a snapshot's copy of it.
struct Source {
    location: VolumeLocation,
    size: i64,
    size_bytes: u64,
    /// When a snapshot's data was taken (its `created_at`); `None` for the live volume.
    taken: Option<Timestamp>,
}

/// What a running backup holds in `backing-up` and releases when it ends.
#[derive(Debug)]
enum Hold {
    Volume { id: String, from: VolumeStatus },
    Snapshot(String),
}

/// A backup accepted and waiting for its turn to move data.
struct Job {
    backup: Backup,
    parent: Option<Backup>,
    vol: Volume,
    source: Source,
    hold: Hold,
    /// Registered when the request is accepted, so a force delete or reset that comes
    /// while the backup still waits for a slot cancels it too.
    running: crate::progress::Running,
    /// The backend's `instances` places.
    places: Option<Arc<tokio::sync::Semaphore>>,
    /// Who asked (their token reaches a `per_user` Swift account).
    caller: Option<holdfast_driver::Caller>,
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
        let backend = self.backend_for_create(req.availability_zone.as_deref()).await?;
        let (driver, desc) = (backend.driver.clone(), backend.desc.clone());
        if let Some(c) = &req.container {
            check_container(c)?;
        }
        let vol = self.get_volume(ctx, &req.volume_id).await?;
        let snapshot = match &req.snapshot_id {
            Some(id) => Some(self.backup_snapshot(ctx, &vol, id).await?),
            None => None,
        };
        let source = match &snapshot {
            Some(s) => Source {
                location: s.location.clone(),
                size: s.size,
                size_bytes: s.size_bytes,
                taken: Some(s.created_at),
            },
            None => Source { location: vol.location.clone(), size: vol.size, size_bytes: vol.size_bytes, taken: None },
        };
        let parent = if req.incremental { self.incremental_parent(ctx, &vol, &source, &backend).await? } else { None };
        if snapshot.is_none() {
            check_readable(vol.status, req.force, ("Backing up", "backed up"))?;
        }
        let quota_guard = self.quota_lock.lock().await;
        self.check_quota(&ctx.project_id, source.size).await?;
        // The lock: the snapshot (a snapshot backup leaves the volume alone, as Cinder
        // does) or the volume's status.
        let from = vol.status;
        let hold = match &snapshot {
            Some(s) => Hold::Snapshot(s.id.clone()),
            None => Hold::Volume { id: vol.id.clone(), from },
        };
        self.acquire(ctx, &hold).await?;
        let now = Timestamp::now();
        let backup = Backup {
            id: uuid::Uuid::new_v4().to_string(),
            project_id: ctx.project_id.clone(),
            user_id: ctx.user_id.clone(),
            volume_id: vol.id.clone(),
            snapshot_id: snapshot.as_ref().map(|s| s.id.clone()),
            status: BackupStatus::Creating,
            display_name: req.name,
            display_description: req.description,
            size: source.size,
            size_bytes: source.size_bytes,
            object_count: 0,
            container: req.container,
            service: Some(desc.service),
            service_metadata: None,
            parent_id: parent.as_ref().map(|p| p.id.clone()),
            num_dependent_backups: 0,
            availability_zone: Some(backend.availability_zone.clone()),
            host: Some(self.config.host.clone()),
            fail_reason: None,
            restore_volume_id: None,
            data_timestamp: Some(source.taken.unwrap_or(now)),
            created_at: now,
            updated_at: None,
            deleted_at: None,
            deleted: false,
        };
        // Registered before the row exists: from its first moment in `creating` the
        // backup is known to be running (reset-status to `available` is refused).
        let running = self.progress.queue(&backup.id, Operation::Create, source.size_bytes);
        if let Err(e) = self.db.insert_backup(&backup).await {
            self.progress.finish(&backup.id);
            self.release(&hold, "error_backing-up").await;
            return Err(e.into());
        }
        // Where it is written is known before the driver writes anything.
        let recorded = match self.db.set_backup_origin(&backup.id, &backend.origin()).await {
            Ok(()) if !req.metadata.is_empty() => {
                self.db.set_metadata(MetadataOwner::Backup, &backup.id, &req.metadata).await
            }
            other => other,
        };
        if let Err(e) = recorded {
            self.progress.finish(&backup.id);
            self.db.remove_backup_row(&backup.id).await?;
            self.release(&hold, from.as_str()).await;
            return Err(e.into());
        }
        if let Err(e) = self.confirm_quota(&backup).await {
            // Lost a race for the last place: undo as if the request never came.
            self.progress.finish(&backup.id);
            self.db.remove_backup_row(&backup.id).await?;
            self.release(&hold, from.as_str()).await;
            return Err(e);
        }
        drop(quota_guard);
        let span = tracing::info_span!(
            "backup",
            backup_id = %backup.id,
            volume_id = %vol.id,
            snapshot_id = backup.snapshot_id.as_deref(),
            backend = %backend.name,
            driver = %driver.id().name
        );
        let places = backend.places.clone();
        let caller = ctx.caller.clone();
        let job = Job { backup: backup.clone(), parent, vol, source, hold, running, places, caller };
        tokio::spawn(self.clone().run_backup(job, driver).instrument(span));
        Ok(backup)
    }

    /// Cinder's parent rule: among this volume's backups in the caller's project, the
    /// `available` one with the newest data. None at all → 400. If the volume's size
    /// changed since, the backup is made full instead.
    /// When backing up a snapshot, only backups whose data is older than the snapshot
    /// qualify (backup 08:00, snapshot 08:10, backup 08:20 → the 08:00 one).
    async fn incremental_parent(
        &self,
        ctx: &RequestContext,
        vol: &Volume,
        source: &Source,
        backend: &Chosen,
    ) -> Result<Option<Backup>, ManagerError> {
        let none = || ManagerError::Invalid("Invalid backup: No backups available to do an incremental backup.".into());
        let backups = self.db.list_backups(Some(&ctx.project_id)).await?;
        let mut candidates: Vec<Backup> = backups
            .into_iter()
            .filter(|b| b.volume_id == vol.id && b.status == BackupStatus::Available)
            .filter(|b| source.taken.is_none_or(|taken| b.data_timestamp.is_some_and(|d| d < taken)))
            .collect();
        candidates.sort_by_key(|b| std::cmp::Reverse((b.data_timestamp, b.created_at)));
        // An increment lives beside its parent: only backups this backend wrote qualify.
        let mut parent = None;
        for b in candidates {
            let here = match self.db.backup_origin(&b.id).await? {
                Some(o) => o.backend == backend.name,
                None => backend.is_default,
            };
            if here {
                parent = Some(b);
                break;
            }
        }
        let parent = parent.ok_or_else(none)?;
        if parent.size_bytes != source.size_bytes {
            tracing::info!(volume_id = %vol.id, parent = %parent.id, "volume size changed since the parent: full backup");
            return Ok(None);
        }
        Ok(Some(parent))
    }

    async fn run_backup(self: Arc<Self>, job: Job, driver: Driver) {
        let Job { backup, parent, vol, source, hold, running, places, caller } = job;
        let exclusive = driver.exclusive_locations();
        let sweeper = driver.clone();
        self.notify(&backup.id, EventType::new(EventOp::Create, EventPhase::Start), json!({})).await;
        let queued = self.metrics.queued();
        // Cancelled while queued: no turn needed, the driver call below returns at once.
        let _turn = self.wait_turn(places, &running.cancel).await;
        drop(queued);
        self.progress.begin(&backup.id);
        let started = Instant::now();
        let watcher = self.watch_progress(&backup.id, Operation::Create);
        let handle = tokio::runtime::Handle::current();
        let (db, id) = (self.db.clone(), backup.id.clone());
        let on_location = move |container: &str, prefix: &str| -> Result<(), String> {
            // Untrusted: runtimes check it too; a bad location is never stored.
            holdfast_driver::untrusted::check_location(container, prefix)?;
            // Called from inside the driver's call, which may itself be running in a
            // runtime's block_on (the plugin host's async calls): wait on the database
            // from a thread of its own, which no runtime is driving.
            let recorded = std::thread::scope(|s| {
                s.spawn(|| handle.block_on(record_location(&db, &id, container, prefix, exclusive)))
                    .join()
                    .unwrap_or_else(|_| Err("recording the location panicked".into()))
            });
            if let Err(why) = &recorded {
                tracing::warn!(reason = %why, "backup location refused");
            }
            recorded
        };
        let change_source = Arc::new(std::sync::Mutex::new(None));
        let bytes_read = running.moved.clone();
        let op = OpContext {
            done: running.done,
            moved: running.moved,
            cancel: running.cancel,
            on_location: Some(Box::new(on_location)),
            workers: self.config.workers,
            change_source: change_source.clone(),
            diff_check: self.config.rbd.diff_check,
            caller: caller.clone(),
        };
        let user = match self.db.volume_metadata(&vol.id).await {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "could not read the volume's metadata; backing up without it");
                Default::default()
            }
        };
        let meta = volume_meta(&vol, &user);
        let (volumes, location) = (self.volumes.clone(), source.location.clone());
        let job = backup.clone();
        let span = tracing::Span::current();
        let metrics = self.metrics.clone();
        let result = crate::data_thread::run("hf-backup", move || {
            let _in = span.enter();
            if op.cancel.load(std::sync::atomic::Ordering::Relaxed) {
                return Err("cancelled before it started".to_owned());
            }
            // An RBD image is read at a snapshot taken now (Cinder's
            // `backup.<id>.snap.<time>`): a point in time, whatever writes it meanwhile.
            let point_in_time = match location.as_rbd().filter(|s| s.snap.is_none()) {
                Some(spec) => {
                    let at = VolumeLocation::Rbd(spec.at(&format!("backup.{}.snap.{}", job.id, snap_time())));
                    volumes
                        .snapshot(&location, &at, &mut |_| {})
                        .map_err(|e| format!("cannot snapshot volume: {e}"))?;
                    Some(at)
                }
                None => None,
            };
            let read_at = point_in_time.as_ref().unwrap_or(&location);
            let result = (|| {
                let file = volumes.open_read(read_at).map_err(|e| format!("cannot read volume: {e}"))?;
                metrics.time_driver(driver.id().name.as_str(), "backup", || {
                    driver.backup(op, &job, parent.as_ref(), Some(&meta), file).map_err(|e| e.to_string())
                })
            })();
            // Kept after a backup that worked: the next incremental diffs against it
            // (and the parent's goes, as Cinder's does); removed after one that failed.
            let cleanup = match (&point_in_time, &result) {
                (Some(at), Err(_)) => volumes.remove(at),
                (Some(_), Ok(_)) => match parent.as_ref() {
                    Some(p) => volumes.remove_backup_snapshots(&location, Some(&p.id)),
                    None => Ok(()),
                },
                (None, _) => Ok(()),
            };
            if let Err(e) = cleanup {
                tracing::warn!(volume = %location, error = %e, "could not remove a backup's source snapshot");
            }
            let r = result?;
            let size = job.size_bytes;
            // Untrusted: checked before anything of it is stored or exported.
            holdfast_driver::untrusted::check_result(&r, size)
                .map_err(|why| format!("driver returned an invalid result: {why}"))?;
            Ok(r)
        })
        .await
        .unwrap_or_else(|e| Err(format!("backup task failed: {e}")));
        // Nor may its result claim another backup's objects.
        let result = match result {
            Ok(r) if !exclusive => Ok(r),
            Ok(r) => match own_location(&self.db, &backup.id, &r.container, &r.service_metadata).await {
                Ok(()) => Ok(r),
                Err(why) => Err(format!("driver returned an invalid result: {why}")),
            },
            Err(e) => Err(e),
        };
        watcher.stop().await;
        match result {
            Ok(r) => {
                let secs = started.elapsed().as_secs_f64();
                // The volume is usable again before the backup shows `available` (Cinder's order), so a
                // client that waits for the backup can use the volume at once.
                self.release(&hold, "backing-up").await;
                // Counted as its parent's dependent before it shows `available`, so a client
                // that sees the child never sees a parent without dependents.
                self.recount_dependents_with(backup.parent_id.as_deref(), 1).await;
                // How it read, recorded before it shows `available` (a client may ask at once).
                let how = change_source.lock().expect("change source").clone();
                let read = bytes_read.load(std::sync::atomic::Ordering::Relaxed);
                if let Some(how) = &how
                    && let Err(e) = self.db.set_backup_read(&backup.id, how.as_str(), read).await
                {
                    tracing::error!(error = %e, "could not record how the backup read its volume");
                }
                let finished = self
                    .db
                    .finish_backup(
                        &backup.id,
                        i64::from(r.object_count),
                        &r.container,
                        &r.service_metadata,
                        source.size,
                        source.size_bytes,
                    )
                    .await;
                match finished {
                    Ok(true) => {
                        tracing::info!(
                            change_source = how.as_ref().map_or("-", |h| h.as_str()),
                            bytes_read = read,
                            "volume read"
                        );
                        self.metrics.transferred("backup", source.size_bytes, secs);
                        tracing::info!(
                            objects = r.object_count,
                            seconds = secs,
                            mb_per_s = source.size_bytes as f64 / 1e6 / secs.max(1e-9),
                            "backup available"
                        );
                        let progress = progress_event(Operation::Create);
                        self.notify(&backup.id, progress, json!({"backup_percent": 100})).await;
                        self.notify(&backup.id, EventType::new(EventOp::Create, EventPhase::End), json!({})).await;
                    }
                    Ok(false) => {
                        tracing::warn!("the backup left `creating` meanwhile (force delete); not marked available");
                        self.recount_dependents(backup.parent_id.as_deref()).await;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "could not record the backup's outcome");
                        self.recount_dependents(backup.parent_id.as_deref()).await;
                    }
                }
            }
            Err(why) => {
                tracing::warn!(reason = %why, "backup failed");
                if let Err(e) = self.db.fail_backup(&backup.id, &[BackupStatus::Creating], &why).await {
                    tracing::error!(error = %e, "could not record the backup's outcome");
                }
                self.release(&hold, "error_backing-up").await;
                self.notify(&backup.id, EventType::new(EventOp::Create, EventPhase::Error), json!({"reason": why}))
                    .await;
                // Only where a backup's objects are its own (a prefix no other backup
                // shares): a Ceph backup's cleanup touches the chain's base image, which
                // the next backup of the volume may be writing.
                if exclusive {
                    self.sweep_failed(backup.id.clone(), sweeper, caller.clone());
                }
            }
        }
        self.progress.finish(&backup.id);
        self.after_operation(&backup.id, caller).await;
    }

    /// Move what the backup will hold to `backing-up` (compare-and-set); if it changed
    /// since it was checked, a 400 naming its status now.
    async fn acquire(&self, ctx: &RequestContext, hold: &Hold) -> Result<(), ManagerError> {
        let locked = match hold {
            Hold::Snapshot(id) => {
                self.db.transition_snapshot(id, &[SnapshotStatus::Available], SnapshotStatus::BackingUp).await?
            }
            Hold::Volume { id, from } => {
                self.db.transition_volume(id, &[*from], VolumeStatus::BackingUp, Some(from.as_str())).await?
            }
        };
        if locked {
            return Ok(());
        }
        Err(match hold {
            Hold::Snapshot(id) => wrong_snapshot_status(self.get_snapshot(ctx, id).await?.status),
            Hold::Volume { id, .. } => wrong_volume_status(self.get_volume(ctx, id).await?.status),
        })
    }

    /// Return what the backup held from `backing-up`: the volume to the status it had
    /// before (recording `previous` as Cinder does), or the snapshot to `available`.
    async fn release(&self, hold: &Hold, previous: &str) {
        let done = match hold {
            Hold::Volume { id, from } => {
                self.db.transition_volume(id, &[VolumeStatus::BackingUp], *from, Some(previous)).await
            }
            Hold::Snapshot(id) => {
                self.db.transition_snapshot(id, &[SnapshotStatus::BackingUp], SnapshotStatus::Available).await
            }
        };
        if let Err(e) = done {
            tracing::error!(error = %e, "could not release {hold:?} after the backup");
        }
    }

    /// The snapshot a backup request names: the caller's, of this volume, `available`.
    async fn backup_snapshot(&self, ctx: &RequestContext, vol: &Volume, id: &str) -> Result<Snapshot, ManagerError> {
        let s = self.get_snapshot(ctx, id).await?;
        if s.volume_id != vol.id {
            return Err(ManagerError::Invalid(format!(
                "Invalid volume: Volume {} does not match with snapshot.volume_id {}.",
                vol.id, s.volume_id
            )));
        }
        if s.status != SnapshotStatus::Available {
            return Err(wrong_snapshot_status(s.status));
        }
        Ok(s)
    }

    /// Recount a parent's dependents (a child became available or was deleted).
    /// Counting from the rows, not +1/−1, keeps the number right after crashes and retries.
    pub(crate) async fn recount_dependents(&self, parent: Option<&str>) {
        self.recount_dependents_with(parent, 0).await;
    }

    /// [`Self::recount_dependents`], counting `extra` children about to become `available`.
    async fn recount_dependents_with(&self, parent: Option<&str>, extra: i64) {
        let Some(parent) = parent else { return };
        let counted = [BackupStatus::Available, BackupStatus::Restoring, BackupStatus::Deleting];
        let result = async {
            let now = self.db.count_children_in(parent, &counted).await? + extra;
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
            Some(b) if !b.deleted && ctx.may_see(&b.project_id) => Ok(b),
            _ => Err(ManagerError::backup_not_found(id)),
        }
    }

    /// A backup's user metadata.
    pub async fn backup_metadata(&self, b: &Backup) -> Result<BTreeMap<String, String>, ManagerError> {
        Ok(self.db.metadata(MetadataOwner::Backup, &b.id).await?)
    }

    /// Cinder's backup update (PUT, ≥ 3.9): only the fields given change; metadata is
    /// replaced whole.
    pub async fn update_backup(
        &self,
        ctx: &RequestContext,
        id: &str,
        req: UpdateBackup,
    ) -> Result<Backup, ManagerError> {
        let b = self.get_backup(ctx, id).await?;
        if req.name.is_some() || req.description.is_some() {
            let name = req.name.unwrap_or(b.display_name.clone());
            let description = req.description.unwrap_or(b.display_description.clone());
            self.db.set_backup_text(id, name.as_deref(), description.as_deref()).await?;
        }
        if let Some(meta) = &req.metadata {
            self.db.set_metadata(MetadataOwner::Backup, id, meta).await?;
        }
        self.get_backup(ctx, id).await
    }

    /// One page of the caller's backups (every project's for an admin asking with
    /// `all_projects`), filtered, sorted and cut in SQL; with the total when asked.
    /// `marker` is the id the previous page ended on.
    pub async fn backup_page(
        &self,
        ctx: &RequestContext,
        all_projects: bool,
        mut query: BackupQuery,
        marker: Option<&str>,
        with_count: bool,
    ) -> Result<(Vec<Backup>, Option<i64>), ManagerError> {
        query.project_id = ctx.list_scope(all_projects).map(str::to_owned);
        if let Some(id) = marker {
            let m = self
                .db
                .get_backup(id)
                .await?
                .filter(|b| !b.deleted && query.project_id.as_ref().is_none_or(|p| *p == b.project_id));
            query.marker = Some(m.ok_or_else(|| ManagerError::NotFound(format!("Marker {id} could not be found.")))?);
        }
        let count = if with_count { Some(self.db.count_backups(&query).await?) } else { None };
        Ok((self.db.query_backups(&query).await?, count))
    }

    /// User metadata of a page of backups, in one query.
    pub async fn backups_metadata(
        &self,
        backups: &[Backup],
    ) -> Result<std::collections::HashMap<String, BTreeMap<String, String>>, ManagerError> {
        let ids: Vec<&str> = backups.iter().map(|b| b.id.as_str()).collect();
        Ok(self.db.metadata_many(MetadataOwner::Backup, &ids).await?)
    }
}

fn wrong_snapshot_status(s: SnapshotStatus) -> ManagerError {
    ManagerError::Invalid(format!(
        "Invalid snapshot: Snapshot to be backed up must be available, but the current status is \"{s}\"."
    ))
}

fn wrong_volume_status(s: VolumeStatus) -> ManagerError {
    ManagerError::Invalid(format!(
        "Invalid volume: Volume to be backed up must be available or in-use, but the current status is \"{s}\"."
    ))
}

/// A volume may be read for a backup or a snapshot when `available`, or `in-use` with
/// `force` (crash-consistent). `verb` words the errors: ("Backing up", "backed up").
pub(crate) fn check_readable(status: VolumeStatus, force: bool, verb: (&str, &str)) -> Result<(), ManagerError> {
    match status {
        VolumeStatus::Available => Ok(()),
        VolumeStatus::InUse if force => Ok(()),
        VolumeStatus::InUse => {
            Err(ManagerError::Invalid(format!("Invalid volume: {} an in-use volume must use the force flag.", verb.0)))
        }
        s => Err(ManagerError::Invalid(format!(
            "Invalid volume: Volume to be {} must be available or in-use, but the current status is \"{s}\".",
            verb.1
        ))),
    }
}

/// Whether backup `id` may own the objects at `container`/`prefix`: no other live
/// backup's objects are there.
async fn own_location(db: &holdfast_db::Db, id: &str, container: &str, prefix: &str) -> Result<(), String> {
    match db.backup_location_clash(id, container, prefix).await {
        Ok(None) => Ok(()),
        Ok(Some(other)) => {
            Err(format!("container {container:?} and object prefix {prefix:?} overlap backup {other}'s objects"))
        }
        Err(e) => Err(format!("could not check the location: {e}")),
    }
}

/// Store where a backup's objects go, unless another backup's objects are there.
async fn record_location(
    db: &holdfast_db::Db,
    id: &str,
    container: &str,
    prefix: &str,
    exclusive: bool,
) -> Result<(), String> {
    if exclusive {
        own_location(db, id, container, prefix).await?;
    }
    db.set_backup_location(id, container, prefix)
        .await
        .map(drop)
        .map_err(|e| format!("could not record the location: {e}"))
}

/// Cinder's snapshot time stamp: Unix seconds with microseconds (`1740830400.123456`).
fn snap_time() -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:06}", t.as_secs(), t.subsec_micros())
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
