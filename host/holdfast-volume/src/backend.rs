//! [`VolumeBackend`]: the storage seam (rustic_core's backend trait is the model).
//! The manager opens, creates, grows, copies and removes volumes only through it, so
//! a second kind of volume (RBD images) is a second implementation, not a second
//! code path. [`FileBackend`] serves raw files and block devices.

use std::path::Path;
use std::sync::Arc;

use holdfast_chunk::{ChunkSink, ChunkSource};
use holdfast_types::VolumeLocation;

use crate::copy::{CopyMethod, point_in_time_copy};
use crate::file::{VolumeError, VolumeFile, create_sparse, io_err, remove_if_exists};

pub use holdfast_types::Extent;

/// What changed in a volume since an earlier point in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangedExtents {
    /// The backend cannot tell (plain files): read everything, compare digests.
    Unknown,
    /// Only these ranges may differ; everything else is as it was.
    Known(Vec<Extent>),
}

pub trait VolumeBackend: Send + Sync {
    /// A short name for logs and errors (`file`).
    fn kind(&self) -> &'static str;

    /// The volume's length in bytes.
    fn size(&self, at: &VolumeLocation) -> Result<u64, VolumeError>;

    fn open_read(&self, at: &VolumeLocation) -> Result<Arc<dyn ChunkSource>, VolumeError>;

    fn open_write(&self, at: &VolumeLocation) -> Result<Arc<dyn ChunkSink>, VolumeError>;

    /// Make a new, all-zero volume of `size` bytes (fails if one exists there).
    fn create(&self, at: &VolumeLocation, size: u64) -> Result<(), VolumeError>;

    /// Grow a volume to `size` bytes; the new part reads as zeros.
    fn extend(&self, at: &VolumeLocation, size: u64) -> Result<(), VolumeError>;

    /// Remove a volume; one already gone is fine (a delete resumed after a crash).
    fn remove(&self, at: &VolumeLocation) -> Result<(), VolumeError>;

    /// A point-in-time copy of `from` at `to`, reporting bytes covered; on error the
    /// caller removes `to`.
    fn snapshot(
        &self,
        from: &VolumeLocation,
        to: &VolumeLocation,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(u64, CopyMethod), VolumeError>;

    /// What changed in `at` since the snapshot `since`.
    fn changed_extents(&self, _at: &VolumeLocation, _since: &VolumeLocation) -> Result<ChangedExtents, VolumeError> {
        Ok(ChangedExtents::Unknown)
    }

    /// Where the snapshot `snapshot_id` of `volume` goes: a file copy in `dir`, or
    /// (RBD) the image at a snapshot of that name.
    fn snapshot_location(&self, _volume: &VolumeLocation, snapshot_id: &str, dir: &Path) -> VolumeLocation {
        VolumeLocation::File(dir.join(format!("{snapshot_id}.raw")))
    }

    /// Remove the snapshots backups left on `volume` to diff against later: the one
    /// backup `backup_id` read, or (`None`) all of them. Nothing to do for files.
    fn remove_backup_snapshots(&self, _volume: &VolumeLocation, _backup_id: Option<&str>) -> Result<(), VolumeError> {
        Ok(())
    }
}

/// Every kind of volume this host serves, each location to its own backend.
pub struct Volumes {
    pub file: FileBackend,
    pub rbd: crate::rbd::RbdBackend,
}

impl Volumes {
    fn of(&self, at: &VolumeLocation) -> &dyn VolumeBackend {
        match at {
            VolumeLocation::File(_) => &self.file,
            VolumeLocation::Rbd(_) => &self.rbd,
        }
    }
}

impl VolumeBackend for Volumes {
    fn kind(&self) -> &'static str {
        "volumes"
    }
    fn size(&self, at: &VolumeLocation) -> Result<u64, VolumeError> {
        self.of(at).size(at)
    }
    fn open_read(&self, at: &VolumeLocation) -> Result<Arc<dyn ChunkSource>, VolumeError> {
        self.of(at).open_read(at)
    }
    fn open_write(&self, at: &VolumeLocation) -> Result<Arc<dyn ChunkSink>, VolumeError> {
        self.of(at).open_write(at)
    }
    fn create(&self, at: &VolumeLocation, size: u64) -> Result<(), VolumeError> {
        self.of(at).create(at, size)
    }
    fn extend(&self, at: &VolumeLocation, size: u64) -> Result<(), VolumeError> {
        self.of(at).extend(at, size)
    }
    fn remove(&self, at: &VolumeLocation) -> Result<(), VolumeError> {
        self.of(at).remove(at)
    }
    fn snapshot(
        &self,
        from: &VolumeLocation,
        to: &VolumeLocation,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(u64, CopyMethod), VolumeError> {
        self.of(from).snapshot(from, to, progress)
    }
    fn changed_extents(&self, at: &VolumeLocation, since: &VolumeLocation) -> Result<ChangedExtents, VolumeError> {
        self.of(at).changed_extents(at, since)
    }
    fn snapshot_location(&self, volume: &VolumeLocation, snapshot_id: &str, dir: &Path) -> VolumeLocation {
        self.of(volume).snapshot_location(volume, snapshot_id, dir)
    }
    fn remove_backup_snapshots(&self, volume: &VolumeLocation, backup_id: Option<&str>) -> Result<(), VolumeError> {
        self.of(volume).remove_backup_snapshots(volume, backup_id)
    }
}

/// Raw files and block devices on this host.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileBackend;

fn file(at: &VolumeLocation) -> Result<&Path, VolumeError> {
    at.as_file().ok_or_else(|| VolumeError::Unsupported { location: at.to_string(), backend: "file" })
}

impl VolumeBackend for FileBackend {
    fn kind(&self) -> &'static str {
        "file"
    }

    fn size(&self, at: &VolumeLocation) -> Result<u64, VolumeError> {
        crate::file::raw_size(file(at)?)
    }

    fn open_read(&self, at: &VolumeLocation) -> Result<Arc<dyn ChunkSource>, VolumeError> {
        Ok(Arc::new(VolumeFile::open_read(file(at)?)?))
    }

    fn open_write(&self, at: &VolumeLocation) -> Result<Arc<dyn ChunkSink>, VolumeError> {
        Ok(Arc::new(VolumeFile::open_write(file(at)?)?))
    }

    fn create(&self, at: &VolumeLocation, size: u64) -> Result<(), VolumeError> {
        create_sparse(file(at)?, size)
    }

    fn extend(&self, at: &VolumeLocation, size: u64) -> Result<(), VolumeError> {
        let path = file(at)?;
        let f = std::fs::OpenOptions::new().write(true).open(path).map_err(io_err(path))?;
        f.set_len(size).map_err(io_err(path))?;
        f.sync_all().map_err(io_err(path))
    }

    fn remove(&self, at: &VolumeLocation) -> Result<(), VolumeError> {
        let path = file(at)?;
        remove_if_exists(path).map_err(io_err(path))
    }

    fn snapshot(
        &self,
        from: &VolumeLocation,
        to: &VolumeLocation,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(u64, CopyMethod), VolumeError> {
        point_in_time_copy(file(from)?, file(to)?, progress)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use holdfast_chunk::AlignedBuf;

    #[test]
    fn a_file_volume_through_the_backend() {
        let dir = tempfile::tempdir().unwrap();
        let b = FileBackend;
        let at = VolumeLocation::File(dir.path().join("v.raw"));
        b.create(&at, 1 << 20).unwrap();
        assert!(matches!(b.create(&at, 1 << 20), Err(VolumeError::Exists { .. })));
        b.open_write(&at).unwrap().write_at(4096, b"hello").unwrap();
        b.extend(&at, 2 << 20).unwrap();
        assert_eq!(b.size(&at).unwrap(), 2 << 20);
        let mut buf = AlignedBuf::new(8192);
        buf.set_len(8192);
        b.open_read(&at).unwrap().read_chunk(0, &mut buf).unwrap();
        assert_eq!(&buf[4096..4101], b"hello");
        // A sparse file lists the extent it holds data in (one filesystem block or more).
        let extents = b.open_read(&at).unwrap().extents().unwrap().expect("files know their extents");
        assert_eq!(extents.len(), 1, "{extents:?}");
        assert!(extents[0].offset <= 4096 && extents[0].end() >= 4101, "{extents:?}");
        assert!(extents[0].end() <= 1 << 20, "{extents:?}");
        assert_eq!(b.open_read(&at).unwrap().changed_extents("snap").unwrap(), None);
        let copy = VolumeLocation::File(dir.path().join("s.raw"));
        let (bytes, _) = b.snapshot(&at, &copy, &mut |_| {}).unwrap();
        assert_eq!(bytes, 2 << 20);
        assert_eq!(b.changed_extents(&at, &copy).unwrap(), ChangedExtents::Unknown);
        b.remove(&at).unwrap();
        b.remove(&at).unwrap();
        assert!(b.size(&at).is_err());
    }
}
