//! RBD images as volumes ([`RbdBackend`]): reads with librbd AIO (several
//! requests in flight per chunk), writes and zeroing through librbd, snapshots as RBD
//! snapshots (instant, point in time), and the extents changed since a snapshot from
//! `rbd_diff_iterate2`. The cluster is reached lazily and again after a failure, so
//! a cluster that is down at start is picked up when it comes back.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};

use holdfast_chunk::{AlignedBuf, ChunkSink, ChunkSource, SourceRead};
use holdfast_rbd::{Cluster, ClusterConfig, Image, Pool, RbdError};
use holdfast_types::{RbdSpec, VolumeLocation};

use crate::backend::{ChangedExtents, Extent, VolumeBackend};
use crate::copy::CopyMethod;
use crate::file::VolumeError;

/// Bytes per librbd read request; a chunk's requests are in flight together.
const READ_PIECE: usize = 1 << 20;

pub struct RbdBackend {
    config: ClusterConfig,
    pools: Mutex<HashMap<String, Arc<Pool>>>,
    cluster: Mutex<Option<Arc<Cluster>>>,
}

fn rbd(at: &VolumeLocation) -> Result<&RbdSpec, VolumeError> {
    at.as_rbd().ok_or_else(|| VolumeError::Unsupported { location: at.to_string(), backend: "rbd" })
}

fn err(at: &RbdSpec) -> impl FnOnce(RbdError) -> VolumeError + '_ {
    move |source| VolumeError::Rbd { location: format!("rbd:{at}"), source }
}

impl RbdBackend {
    pub fn new(config: ClusterConfig) -> RbdBackend {
        RbdBackend { config, pools: Mutex::default(), cluster: Mutex::default() }
    }

    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    fn pool(&self, spec: &RbdSpec) -> Result<Arc<Pool>, VolumeError> {
        if let Some(p) = self.pools.lock().expect("pools").get(&spec.pool) {
            return Ok(p.clone());
        }
        let cluster = {
            let mut c = self.cluster.lock().expect("cluster");
            match &*c {
                Some(c) => c.clone(),
                None => {
                    let new = Cluster::connect(&self.config).map_err(err(spec))?;
                    *c = Some(new.clone());
                    new
                }
            }
        };
        let pool = cluster.pool(&spec.pool).map_err(err(spec))?;
        self.pools.lock().expect("pools").insert(spec.pool.clone(), pool.clone());
        Ok(pool)
    }

    /// Forget the connection after a failure that may mean it is gone (the next call
    /// connects again).
    fn reset_on<T>(&self, r: Result<T, VolumeError>) -> Result<T, VolumeError> {
        if let Err(VolumeError::Rbd { source, .. }) = &r
            && !source.is_not_found()
        {
            self.pools.lock().expect("pools").clear();
            *self.cluster.lock().expect("cluster") = None;
        }
        r
    }

    fn open(&self, spec: &RbdSpec) -> Result<Image, VolumeError> {
        let pool = self.pool(spec)?;
        let r = match &spec.snap {
            Some(s) => Image::open_read_only(&pool, &spec.image, Some(s)),
            None => Image::open(&pool, &spec.image),
        };
        self.reset_on(r.map_err(err(spec)))
    }

    fn head(&self, spec: &RbdSpec) -> Result<Image, VolumeError> {
        self.open(&RbdSpec { snap: None, ..spec.clone() })
    }
}

impl VolumeBackend for RbdBackend {
    fn kind(&self) -> &'static str {
        "rbd"
    }

    fn size(&self, at: &VolumeLocation) -> Result<u64, VolumeError> {
        let spec = rbd(at)?;
        self.open(spec)?.size().map_err(err(spec))
    }

    fn open_read(&self, at: &VolumeLocation) -> Result<Arc<dyn ChunkSource>, VolumeError> {
        let spec = rbd(at)?;
        let image = self.open(spec)?;
        let size = image.size().map_err(err(spec))?;
        Ok(Arc::new(RbdSource { image, size, spec: spec.clone() }))
    }

    fn open_write(&self, at: &VolumeLocation) -> Result<Arc<dyn ChunkSink>, VolumeError> {
        let spec = rbd(at)?;
        if spec.snap.is_some() {
            return Err(VolumeError::Unsupported {
                location: at.to_string(),
                backend: "rbd (a snapshot is read-only)",
            });
        }
        let image = self.open(spec)?;
        let size = image.size().map_err(err(spec))?;
        Ok(Arc::new(RbdSink { image, size }))
    }

    fn create(&self, at: &VolumeLocation, size: u64) -> Result<(), VolumeError> {
        let spec = rbd(at)?;
        let pool = self.pool(spec)?;
        match pool.create_image(&spec.image, size) {
            Err(e) if e.errno() == Some(17) => Err(VolumeError::Exists { path: at.to_string().into() }),
            r => self.reset_on(r.map_err(err(spec))),
        }
    }

    fn extend(&self, at: &VolumeLocation, size: u64) -> Result<(), VolumeError> {
        let spec = rbd(at)?;
        self.head(spec)?.resize(size).map_err(err(spec))
    }

    /// An image, or a snapshot of one; one already gone is fine.
    fn remove(&self, at: &VolumeLocation) -> Result<(), VolumeError> {
        let spec = rbd(at)?;
        match &spec.snap {
            Some(snap) => match self.head(spec) {
                Ok(image) => image.snap_remove(snap).map(drop).map_err(err(spec)),
                Err(VolumeError::Rbd { source, .. }) if source.is_not_found() => Ok(()),
                Err(e) => Err(e),
            },
            None => self.pool(spec)?.remove_image(&spec.image).map(drop).map_err(err(spec)),
        }
    }

    /// An RBD snapshot of `from` named by `to` (`to` must be `from` at a snapshot).
    fn snapshot(
        &self,
        from: &VolumeLocation,
        to: &VolumeLocation,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(u64, CopyMethod), VolumeError> {
        let (src, dst) = (rbd(from)?, rbd(to)?);
        let snap = match &dst.snap {
            Some(s) if dst.pool == src.pool && dst.image == src.image && src.snap.is_none() => s,
            _ => {
                return Err(VolumeError::Unsupported {
                    location: format!("{to} as a snapshot of {from}"),
                    backend: "rbd (a snapshot of an image is that image at a snapshot)",
                });
            }
        };
        let image = self.head(src)?;
        image.snap_create(snap).map_err(err(dst))?;
        let size = image.size().map_err(err(src))?;
        progress(size);
        Ok((size, CopyMethod::RbdSnapshot))
    }

    /// What changed in `at` (an image at a snapshot, or its head) since `since` (a
    /// snapshot of the same image).
    fn changed_extents(&self, at: &VolumeLocation, since: &VolumeLocation) -> Result<ChangedExtents, VolumeError> {
        let (spec, from) = (rbd(at)?, rbd(since)?);
        let Some(from_snap) = from.snap.as_deref().filter(|_| from.pool == spec.pool && from.image == spec.image)
        else {
            return Ok(ChangedExtents::Unknown);
        };
        let diff = self.open(spec)?.diff(Some(from_snap), false).map_err(err(spec))?;
        Ok(ChangedExtents::Known(diff.into_iter().map(|e| Extent { offset: e.offset, len: e.len }).collect()))
    }

    fn remove_backup_snapshots(&self, volume: &VolumeLocation, backup_id: Option<&str>) -> Result<(), VolumeError> {
        let spec = rbd(volume)?;
        let image = match self.head(spec) {
            Ok(i) => i,
            Err(VolumeError::Rbd { source, .. }) if source.is_not_found() => return Ok(()),
            Err(e) => return Err(e),
        };
        let prefix = backup_id.map_or_else(|| "backup.".to_owned(), backup_snap_prefix);
        for s in image.snapshots().map_err(err(spec))? {
            if s.name.starts_with(&prefix) && s.name.contains(".snap.") {
                image.snap_remove(&s.name).map_err(err(spec))?;
            }
        }
        Ok(())
    }

    fn snapshot_location(&self, volume: &VolumeLocation, snapshot_id: &str, _dir: &std::path::Path) -> VolumeLocation {
        match volume.as_rbd() {
            Some(spec) => VolumeLocation::Rbd(spec.at(&format!("holdfast.snapshot.{snapshot_id}"))),
            None => VolumeLocation::File(_dir.join(format!("{snapshot_id}.raw"))),
        }
    }
}

/// The start of the name of the snapshot a backup of an RBD image reads (Cinder's
/// `backup.<backup id>.snap.<unix time>`).
pub fn backup_snap_prefix(backup_id: &str) -> String {
    format!("backup.{backup_id}.snap.")
}

/// An incremental's diff goes span by span, so moving the changes overlaps finding
/// them (`rbd export-diff | rbd import-diff` overlaps them too): 64 objects of 4 MiB.
const DIFF_SPAN: u64 = 256 << 20;

/// An image (or a snapshot) read by the backup pipeline.
struct RbdSource {
    image: Image,
    size: u64,
    spec: RbdSpec,
}

impl ChunkSource for RbdSource {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_chunk(&self, offset: u64, buf: &mut AlignedBuf) -> io::Result<SourceRead> {
        let mut reads: Vec<(u64, &mut [u8])> = Vec::new();
        let mut at = offset;
        for piece in buf.chunks_mut(READ_PIECE) {
            let len = piece.len() as u64;
            reads.push((at, piece));
            at += len;
        }
        self.image.read_many(&mut reads)?;
        Ok(SourceRead { hole: false })
    }

    /// Every request is a round trip to an OSD: keep many in flight (an incremental's
    /// reads are small and scattered).
    fn readers(&self) -> usize {
        16
    }

    fn backend(&self) -> &'static str {
        "rbd"
    }

    fn read_batch(&self, reads: &mut [(u64, &mut AlignedBuf)]) -> io::Result<()> {
        let mut all: Vec<(u64, &mut [u8])> = Vec::new();
        for (offset, buf) in reads.iter_mut() {
            let mut at = *offset;
            for piece in buf.chunks_mut(READ_PIECE) {
                let len = piece.len() as u64;
                all.push((at, piece));
                at += len;
            }
        }
        Ok(self.image.read_many(&mut all)?)
    }

    /// Allocated extents (everything else reads as zeros).
    fn extents(&self) -> io::Result<Option<Vec<Extent>>> {
        let diff = self.image.diff(None, false)?;
        Ok(Some(diff.into_iter().filter(|e| e.exists).map(|e| Extent { offset: e.offset, len: e.len }).collect()))
    }

    /// Changed since `since`: a snapshot of this image, or a backup whose source
    /// snapshot (`backup.<id>.snap.<time>`) is still on it. `None` when there is no such
    /// snapshot (the backup then compares every block with its parent's digests).
    fn changed_extents(&self, since: &str) -> io::Result<Option<Vec<Extent>>> {
        let mut all = Vec::new();
        let known = self.changed_extents_by_span(since, &mut |span| {
            all.extend(span);
            true
        })?;
        Ok(known.then_some(all))
    }

    fn changed_extents_by_span(&self, since: &str, each: &mut dyn FnMut(Vec<Extent>) -> bool) -> io::Result<bool> {
        let prefix = backup_snap_prefix(since);
        let snaps = self.image.snapshots()?;
        let found =
            snaps.iter().find(|s| s.name == since).or_else(|| snaps.iter().find(|s| s.name.starts_with(&prefix)));
        let Some(from) = found else { return Ok(false) };
        let failed = |e| io::Error::other(format!("diff of rbd:{} since {}: {e}", self.spec, from.name));
        // Whole objects first: with the object map (fast-diff) that costs no OSD round
        // trip per object, and an unchanged image ends here.
        if self.image.diff(Some(&from.name), true).map_err(failed)?.is_empty() {
            return Ok(true);
        }
        let mut at = 0;
        while at < self.size {
            let len = DIFF_SPAN.min(self.size - at);
            let span = self.image.diff_in(Some(&from.name), false, at, len).map_err(failed)?;
            if !each(span.into_iter().map(|e| Extent { offset: e.offset, len: e.len }).collect()) {
                break;
            }
            at += len;
        }
        Ok(true)
    }
}

/// An image a restore writes.
struct RbdSink {
    image: Image,
    size: u64,
}

impl ChunkSink for RbdSink {
    fn size(&self) -> u64 {
        self.size
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        Ok(self.image.write_at(offset, data)?)
    }

    fn zero_range(&self, offset: u64, len: u64) -> io::Result<()> {
        Ok(self.image.write_zeroes(offset, len)?)
    }

    fn sync(&self) -> io::Result<()> {
        Ok(self.image.flush()?)
    }

    fn allocated(&self) -> io::Result<Option<Vec<Extent>>> {
        let diff = self.image.diff(None, false)?;
        Ok(Some(diff.into_iter().filter(|e| e.exists).map(|e| Extent { offset: e.offset, len: e.len }).collect()))
    }
}
