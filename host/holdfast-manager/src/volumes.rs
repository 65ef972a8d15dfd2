//! Volumes: sparse raw files Holdfast creates, and files or block devices it adopts
//! (Cinder's "manage existing").

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use holdfast_types::{GIB, RbdSpec, Timestamp, Volume, VolumeLocation, VolumeStatus, size_gib};
use holdfast_volume::{VolumeError, probe_size};

use crate::{Manager, ManagerError, RequestContext};

#[derive(Debug, Clone, Default)]
pub struct CreateVolume {
    pub size_gib: i64,
    pub name: Option<String>,
    pub description: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default)]
pub struct RegisterVolume {
    pub path: String,
    pub name: Option<String>,
    pub description: Option<String>,
}

/// `PUT /volumes/{id}`: `None` leaves a field as it is; metadata is replaced whole.
#[derive(Debug, Clone, Default)]
pub struct UpdateVolume {
    pub name: Option<Option<String>>,
    pub description: Option<Option<String>>,
    pub metadata: Option<BTreeMap<String, String>>,
}

/// Largest volume `create` makes (sparse, but a typo should not make a 1 PiB file).
pub const MAX_VOLUME_GIB: i64 = 16 * 1024;

fn new_volume(
    ctx: &RequestContext,
    location: VolumeLocation,
    size_bytes: u64,
    managed_file: bool,
    name: Option<String>,
    description: Option<String>,
) -> Volume {
    Volume {
        id: uuid::Uuid::new_v4().to_string(),
        project_id: ctx.project_id.clone(),
        user_id: ctx.user_id.clone(),
        name,
        description,
        status: VolumeStatus::Available,
        previous_status: None,
        size: size_gib(size_bytes),
        size_bytes,
        location,
        managed_file,
        created_at: Timestamp::now(),
        updated_at: None,
    }
}

impl Manager {
    fn volumes_dir(&self) -> PathBuf {
        self.config.data_dir.join("volumes")
    }

    /// Create an empty sparse volume of `size_gib` GiB.
    pub async fn create_volume(&self, ctx: &RequestContext, req: CreateVolume) -> Result<Volume, ManagerError> {
        if !(1..=MAX_VOLUME_GIB).contains(&req.size_gib) {
            return Err(ManagerError::Invalid(format!(
                "Invalid input received: volume size must be between 1 and {MAX_VOLUME_GIB} GiB, got {}",
                req.size_gib
            )));
        }
        let v = self.create_volume_bytes(ctx, req.size_gib as u64 * GIB, req.name, req.description).await?;
        if !req.metadata.is_empty() {
            self.db.set_volume_metadata(&v.id, &req.metadata).await?;
        }
        Ok(v)
    }

    /// Create an empty sparse volume of exactly `size_bytes` (restore targets match
    /// their backup byte for byte).
    pub(crate) async fn create_volume_bytes(
        &self,
        ctx: &RequestContext,
        size_bytes: u64,
        name: Option<String>,
        description: Option<String>,
    ) -> Result<Volume, ManagerError> {
        let id = uuid::Uuid::new_v4().to_string();
        // Cinder's RBD driver names a volume's image `volume-<id>`.
        let location = match &self.config.rbd.pool {
            Some(pool) => {
                VolumeLocation::Rbd(RbdSpec { pool: pool.clone(), image: format!("volume-{id}"), snap: None })
            }
            None => {
                let dir = self.volumes_dir();
                std::fs::create_dir_all(&dir)
                    .map_err(|e| ManagerError::Internal(format!("creating {}: {e}", dir.display())))?;
                VolumeLocation::File(dir.join(format!("{id}.raw")))
            }
        };
        let mut v = new_volume(ctx, location, size_bytes, true, name, description);
        v.id = id;
        let (volumes, at) = (self.volumes.clone(), v.location.clone());
        crate::data_thread::run("hf-volume", move || volumes.create(&at, size_bytes))
            .await
            .map_err(|e| ManagerError::Internal(format!("creating the volume: {e}")))?
            .map_err(|e| ManagerError::Internal(e.to_string()))?;
        if let Err(e) = self.db.insert_volume(&v).await {
            let _ = self.volumes.remove(&v.location);
            return Err(e.into());
        }
        tracing::info!(volume_id = %v.id, size_bytes, "volume created");
        Ok(v)
    }

    /// Adopt an existing raw file or block device under one of the manage roots, or an
    /// RBD image (`rbd:POOL/IMAGE`).
    pub async fn register_volume(&self, ctx: &RequestContext, req: RegisterVolume) -> Result<Volume, ManagerError> {
        let invalid = |m: String| ManagerError::Invalid(format!("Manage existing volume failed: {m}"));
        if let Some(spec) = req.path.strip_prefix(holdfast_types::RBD_PREFIX) {
            return self.register_rbd(ctx, spec, req.name, req.description).await;
        }
        let path = Path::new(&req.path);
        if !path.is_absolute() {
            return Err(invalid(format!("{} is not an absolute path", req.path)));
        }
        let path = path.canonicalize().map_err(|e| invalid(format!("{}: {e}", req.path)))?;
        if !self.config.manage_roots.iter().any(|root| path.starts_with(root)) {
            return Err(invalid(format!(
                "{} is outside the directories this server may adopt volumes from (see `holdfast serve --manage-root`)",
                path.display()
            )));
        }
        if let Ok(data) = self.config.data_dir.canonicalize()
            && path.starts_with(data)
        {
            return Err(invalid(format!("{} is inside the server's data directory", path.display())));
        }
        let size_bytes = probe_size(&path).map_err(|e| match e {
            VolumeError::NotWholeMib { len, .. } => {
                invalid(format!("{} is {len} bytes long, which is not a whole number of MiB", path.display()))
            }
            e => invalid(e.to_string()),
        })?;
        self.adopt(ctx, VolumeLocation::File(path), size_bytes, req.name, req.description).await
    }

    /// Record an existing file, device or image as a volume Holdfast did not create.
    async fn adopt(
        &self,
        ctx: &RequestContext,
        location: VolumeLocation,
        size_bytes: u64,
        name: Option<String>,
        description: Option<String>,
    ) -> Result<Volume, ManagerError> {
        if self.db.list_volumes(None).await?.iter().any(|v| v.location == location) {
            return Err(ManagerError::Invalid(format!(
                "Manage existing volume failed: {location} is already a volume"
            )));
        }
        let v = new_volume(ctx, location, size_bytes, false, name, description);
        self.db.insert_volume(&v).await?;
        tracing::info!(volume_id = %v.id, location = %v.location, size_bytes, "volume registered");
        Ok(v)
    }

    async fn register_rbd(
        &self,
        ctx: &RequestContext,
        spec: &str,
        name: Option<String>,
        description: Option<String>,
    ) -> Result<Volume, ManagerError> {
        let invalid = |m: String| ManagerError::Invalid(format!("Manage existing volume failed: {m}"));
        let spec = RbdSpec::parse(spec)
            .filter(|s| s.snap.is_none())
            .ok_or_else(|| invalid(format!("rbd:{spec} is not rbd:POOL/IMAGE")))?;
        let location = VolumeLocation::Rbd(spec);
        let (volumes, at) = (self.volumes.clone(), location.clone());
        let size_bytes = crate::data_thread::run("hf-volume", move || volumes.size(&at))
            .await
            .map_err(|e| ManagerError::Internal(format!("reading the image: {e}")))?
            .map_err(|e| invalid(e.to_string()))?;
        if size_bytes == 0 || size_bytes % holdfast_types::MIB != 0 {
            return Err(invalid(format!("{location} is {size_bytes} bytes long, which is not a whole number of MiB")));
        }
        self.adopt(ctx, location, size_bytes, name, description).await
    }

    /// Cinder's volume update: rename, re-describe, replace the metadata.
    pub async fn update_volume(
        &self,
        ctx: &RequestContext,
        id: &str,
        req: UpdateVolume,
    ) -> Result<Volume, ManagerError> {
        let v = self.get_volume(ctx, id).await?;
        if req.name.is_some() || req.description.is_some() {
            let name = req.name.unwrap_or(v.name.clone());
            let description = req.description.unwrap_or(v.description.clone());
            self.db.set_volume_text(id, name.as_deref(), description.as_deref()).await?;
        }
        if let Some(meta) = &req.metadata {
            self.db.set_volume_metadata(id, meta).await?;
        }
        self.get_volume(ctx, id).await
    }

    /// Cinder's `os-extend`: grow an `available` volume Holdfast created to `new_size`
    /// GiB. The status is `extending` while the file grows (a backup cannot start);
    /// a crash in between is finished by [`Manager::recover`] from the file's length.
    pub async fn extend_volume(&self, ctx: &RequestContext, id: &str, new_size: i64) -> Result<(), ManagerError> {
        let v = self.get_volume(ctx, id).await?;
        if new_size <= v.size {
            return Err(ManagerError::Invalid(format!(
                "Invalid input received: New size for extend must be greater than current size. (current: {}, extended: {new_size}).",
                v.size
            )));
        }
        if new_size > MAX_VOLUME_GIB {
            return Err(ManagerError::Invalid(format!(
                "Invalid input received: volume size must be at most {MAX_VOLUME_GIB} GiB, got {new_size}"
            )));
        }
        if !v.managed_file {
            return Err(ManagerError::Invalid(format!(
                "Invalid volume: volume {id} was adopted from {}; Holdfast extends only volumes it created",
                v.location
            )));
        }
        if !self.db.transition_volume(id, &[VolumeStatus::Available], VolumeStatus::Extending, None).await? {
            let now = self.get_volume(ctx, id).await?;
            return Err(ManagerError::Invalid(format!(
                "Invalid volume: Volume {id} status must be available to extend, but current status is: {}.",
                now.status.as_str()
            )));
        }
        let bytes = new_size as u64 * GIB;
        if let Err(e) = self.volumes.extend(&v.location, bytes) {
            self.db.transition_volume(id, &[VolumeStatus::Extending], VolumeStatus::Available, None).await?;
            return Err(ManagerError::Internal(format!("extending {}: {e}", v.location)));
        }
        self.db.finish_extend(id, bytes).await?;
        tracing::info!(volume_id = %id, size_gib = new_size, "volume extended");
        Ok(())
    }

    /// A volume of the caller's project.
    pub async fn get_volume(&self, ctx: &RequestContext, id: &str) -> Result<Volume, ManagerError> {
        match self.db.get_volume(id).await? {
            Some(v) if ctx.may_see(&v.project_id) => Ok(v),
            _ => Err(ManagerError::volume_not_found(id)),
        }
    }

    pub async fn volume_metadata(
        &self,
        ctx: &RequestContext,
        id: &str,
    ) -> Result<BTreeMap<String, String>, ManagerError> {
        let v = self.get_volume(ctx, id).await?;
        self.metadata_of(&v).await
    }

    /// Metadata of a volume the caller already fetched (and so may see).
    pub async fn metadata_of(&self, v: &Volume) -> Result<BTreeMap<String, String>, ManagerError> {
        Ok(self.db.volume_metadata(&v.id).await?)
    }

    /// Set metadata: merged into the existing keys, or replacing them all.
    pub async fn set_volume_metadata(
        &self,
        ctx: &RequestContext,
        id: &str,
        meta: BTreeMap<String, String>,
        replace: bool,
    ) -> Result<BTreeMap<String, String>, ManagerError> {
        self.get_volume(ctx, id).await?;
        let mut all = if replace { BTreeMap::new() } else { self.db.volume_metadata(id).await? };
        all.extend(meta);
        self.db.set_volume_metadata(id, &all).await?;
        Ok(all)
    }

    /// Mark a volume attached (`available` → `in-use`) or detached (back), as Cinder's
    /// `os-attach`/`os-detach` do once a hypervisor has it. Backups of an `in-use`
    /// volume need `force`; restores onto one are refused.
    pub async fn set_attached(&self, ctx: &RequestContext, id: &str, attached: bool) -> Result<Volume, ManagerError> {
        let v = self.get_volume(ctx, id).await?;
        let (from, to) = if attached {
            (VolumeStatus::Available, VolumeStatus::InUse)
        } else {
            (VolumeStatus::InUse, VolumeStatus::Available)
        };
        if !self.db.transition_volume(id, &[from], to, None).await? {
            return Err(ManagerError::Invalid(format!(
                "Invalid volume: volume status must be {from} to {}, but it is {}.",
                if attached { "attach" } else { "detach" },
                v.status
            )));
        }
        self.get_volume(ctx, id).await
    }

    pub async fn list_volumes(&self, ctx: &RequestContext, all_projects: bool) -> Result<Vec<Volume>, ManagerError> {
        Ok(self.db.list_volumes(ctx.list_scope(all_projects)).await?)
    }

    /// Delete a volume. Files Holdfast created are removed; adopted files and devices
    /// are only forgotten (they belong to the operator).
    pub async fn delete_volume(&self, ctx: &RequestContext, id: &str) -> Result<(), ManagerError> {
        let v = self.get_volume(ctx, id).await?;
        let snapshots = self.db.count_volume_snapshots(id).await?;
        if snapshots > 0 {
            return Err(ManagerError::Invalid(format!(
                "Invalid volume: Volume {id} still has {snapshots} dependent snapshots; delete them first."
            )));
        }
        let deletable = [VolumeStatus::Available, VolumeStatus::Error, VolumeStatus::ErrorRestoring];
        if !self.db.transition_volume(id, &deletable, VolumeStatus::Deleting, None).await? {
            return Err(ManagerError::Invalid(format!(
                "Invalid volume: Volume status must be available or error or error_restoring, but current status is: {}.",
                v.status
            )));
        }
        // The snapshots backups kept on it to diff against are ours, adopted or not.
        if let Err(e) = self.volumes.remove_backup_snapshots(&v.location, None) {
            tracing::warn!(volume_id = %id, error = %e, "could not remove the backups' snapshots of the volume");
        }
        if v.managed_file
            && let Err(e) = self.volumes.remove(&v.location)
        {
            self.db.transition_volume(id, &[VolumeStatus::Deleting], VolumeStatus::Error, None).await?;
            return Err(ManagerError::Internal(format!("removing {}: {e}", v.location)));
        }
        self.db.delete_volume(id).await?;
        tracing::info!(volume_id = %id, "volume deleted");
        Ok(())
    }
}
