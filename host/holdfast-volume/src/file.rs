//! [`VolumeFile`]: one open volume, read or written in chunks.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use holdfast_chunk::{ALIGN, AlignedBuf, ChunkSink, ChunkSource, SourceRead};

use crate::sys;

/// O_DIRECT requests: 4 MiB was the sweet spot measured here (2.3 GB/s cold).
const DIRECT_IO: usize = 4 << 20;
const MIB: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: not a regular file or block device")]
    NotAVolume { path: PathBuf },
    #[error("{path}: length {len} is not a whole number of MiB")]
    NotWholeMib { path: PathBuf, len: u64 },
    #[error("{path}: volume is empty")]
    Empty { path: PathBuf },
    #[error("{path}: already exists")]
    Exists { path: PathBuf },
    #[error("{location}: not a location the {backend} volume backend serves")]
    Unsupported { location: String, backend: &'static str },
    #[error("{location}: {source}")]
    Rbd { location: String, source: holdfast_rbd::RbdError },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> VolumeError + '_ {
    move |source| VolumeError::Io { path: path.to_owned(), source }
}

/// Length of a raw file or block device that may become a volume: it must be
/// a whole, non-zero number of MiB (Cinder sizes are whole GiB; we accept MiB).
pub fn probe_size(path: &Path) -> Result<u64, VolumeError> {
    let len = raw_size(path)?;
    if len % MIB != 0 {
        return Err(VolumeError::NotWholeMib { path: path.to_owned(), len });
    }
    Ok(len)
}

/// Length of a raw file or block device, any non-zero size.
pub(crate) fn raw_size(path: &Path) -> Result<u64, VolumeError> {
    let f = File::open(path).map_err(io_err(path))?;
    let meta = f.metadata().map_err(io_err(path))?;
    let len = if meta.file_type().is_block_device() {
        sys::block_device_size(&f).map_err(io_err(path))?
    } else if meta.is_file() {
        meta.len()
    } else {
        return Err(VolumeError::NotAVolume { path: path.to_owned() });
    };
    if len == 0 {
        return Err(VolumeError::Empty { path: path.to_owned() });
    }
    Ok(len)
}

/// Remove a volume or snapshot file; one already gone is fine (a delete resumed
/// after a crash finds it so).
pub fn remove_if_exists(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Open a file that must not exist yet, for writing.
pub(crate) fn create_new(path: &Path) -> Result<File, VolumeError> {
    OpenOptions::new().write(true).create_new(true).open(path).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            VolumeError::Exists { path: path.to_owned() }
        } else {
            VolumeError::Io { path: path.to_owned(), source: e }
        }
    })
}

/// Create a new sparse raw file of `size` bytes (fails if it exists).
pub fn create_sparse(path: &Path, size: u64) -> Result<(), VolumeError> {
    let f = create_new(path)?;
    f.set_len(size).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

pub struct VolumeFile {
    path: PathBuf,
    /// Buffered descriptor: unaligned I/O, holes, sync.
    file: File,
    /// O_DIRECT descriptor when the filesystem supports it (not tmpfs).
    direct: Option<File>,
    size: u64,
    block_device: bool,
}

impl VolumeFile {
    pub fn open_read(path: &Path) -> Result<Self, VolumeError> {
        Self::open(path, false)
    }

    pub fn open_write(path: &Path) -> Result<Self, VolumeError> {
        Self::open(path, true)
    }

    fn open(path: &Path, write: bool) -> Result<Self, VolumeError> {
        let size = raw_size(path)?;
        let file = OpenOptions::new().read(true).write(write).open(path).map_err(io_err(path))?;
        let block_device = file.metadata().map_err(io_err(path))?.file_type().is_block_device();
        let direct = OpenOptions::new().read(true).write(write).custom_flags(libc::O_DIRECT).open(path).ok();
        Ok(VolumeFile { path: path.to_owned(), file, direct, size, block_device })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn uses_direct_io(&self) -> bool {
        self.direct.is_some()
    }

    /// Read `buf.len()` bytes at `offset`, O_DIRECT where aligned.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let aligned = offset.is_multiple_of(ALIGN as u64) && (buf.as_ptr() as usize).is_multiple_of(ALIGN);
        match &self.direct {
            Some(d) if aligned => {
                let direct_len = buf.len() / ALIGN * ALIGN;
                let mut done = 0;
                while done < direct_len {
                    let n = (direct_len - done).min(DIRECT_IO);
                    let got = d.read_at(&mut buf[done..done + n], offset + done as u64)?;
                    if got == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                    done += got;
                }
                self.file.read_exact_at(&mut buf[done..], offset + done as u64)
            }
            _ => self.file.read_exact_at(buf, offset),
        }
    }
}

impl ChunkSource for VolumeFile {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_chunk(&self, offset: u64, buf: &mut AlignedBuf) -> io::Result<SourceRead> {
        let end = offset + buf.len() as u64;
        if self.block_device {
            self.read_exact_at(buf, offset)?;
            return Ok(SourceRead { hole: false });
        }
        // Walk data/hole extents inside the chunk: read data, zero holes.
        let mut pos = offset;
        let mut any_data = false;
        while pos < end {
            let data = sys::seek_data(&self.file, pos).unwrap_or(end).min(end);
            // Holes are filesystem-block aligned; round to our alignment to keep O_DIRECT.
            let data = (data / ALIGN as u64 * ALIGN as u64).max(pos);
            buf[(pos - offset) as usize..(data - offset) as usize].fill(0);
            if data >= end {
                break;
            }
            let hole = sys::seek_hole(&self.file, data, self.size).min(end);
            let hole = hole.div_ceil(ALIGN as u64).saturating_mul(ALIGN as u64).min(end).max(data + 1);
            self.read_exact_at(&mut buf[(data - offset) as usize..(hole - offset) as usize], data)?;
            any_data = true;
            pos = hole;
        }
        Ok(SourceRead { hole: !any_data })
    }

    /// The file's data extents (SEEK_DATA/SEEK_HOLE); a block device cannot tell.
    fn extents(&self) -> io::Result<Option<Vec<holdfast_types::Extent>>> {
        if self.block_device {
            return Ok(None);
        }
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < self.size {
            let Some(data) = sys::seek_data(&self.file, pos) else { break };
            let data = data.min(self.size);
            if data >= self.size {
                break;
            }
            let hole = sys::seek_hole(&self.file, data, self.size).min(self.size).max(data + 1);
            out.push(holdfast_types::Extent { offset: data, len: hole - data });
            pos = hole;
        }
        Ok(Some(out))
    }
}

impl ChunkSink for VolumeFile {
    fn size(&self) -> u64 {
        self.size
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let aligned = offset.is_multiple_of(ALIGN as u64) && (data.as_ptr() as usize).is_multiple_of(ALIGN);
        match &self.direct {
            Some(d) if aligned => {
                let direct_len = data.len() / ALIGN * ALIGN;
                let mut done = 0;
                while done < direct_len {
                    let n = (direct_len - done).min(DIRECT_IO);
                    d.write_all_at(&data[done..done + n], offset + done as u64)?;
                    done += n;
                }
                self.file.write_all_at(&data[done..], offset + done as u64)
            }
            _ => self.file.write_all_at(data, offset),
        }
    }

    fn zero_range(&self, offset: u64, len: u64) -> io::Result<()> {
        if !self.block_device && sys::punch_hole(&self.file, offset, len).is_ok() {
            return Ok(());
        }
        let zeros = AlignedBuf::new(DIRECT_IO.min(len as usize));
        let mut done = 0;
        while done < len {
            let n = (len - done).min(zeros.len() as u64) as usize;
            self.write_at(offset + done, &zeros[..n])?;
            done += n as u64;
        }
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        if let Some(d) = &self.direct {
            sys::fdatasync(d)?;
        }
        sys::fdatasync(&self.file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_skip_holes_and_return_data() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.raw");
        create_sparse(&p, 4 * MIB).unwrap();
        {
            let f = OpenOptions::new().write(true).open(&p).unwrap();
            f.write_all_at(&[7u8; 8192], MIB + 4096).unwrap();
            f.sync_all().unwrap();
        }
        let v = VolumeFile::open_read(&p).unwrap();
        let mut buf = AlignedBuf::new(MIB as usize);
        assert!(v.read_chunk(0, &mut buf).unwrap().hole);
        assert!(buf.iter().all(|&b| b == 0));
        let r = v.read_chunk(MIB, &mut buf).unwrap();
        assert!(!r.hole);
        assert!(buf[..4096].iter().all(|&b| b == 0));
        assert!(buf[4096..12288].iter().all(|&b| b == 7));
        assert!(buf[12288..].iter().all(|&b| b == 0));
    }

    #[test]
    fn writes_and_punches() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.raw");
        create_sparse(&p, 2 * MIB).unwrap();
        let v = VolumeFile::open_write(&p).unwrap();
        let mut data = AlignedBuf::new(MIB as usize);
        data.fill(9);
        v.write_at(0, &data).unwrap();
        v.write_at(MIB + 3, &[1, 2, 3]).unwrap();
        v.zero_range(4096, 4096).unwrap();
        v.sync().unwrap();
        let all = std::fs::read(&p).unwrap();
        assert!(all[..4096].iter().all(|&b| b == 9));
        assert!(all[4096..8192].iter().all(|&b| b == 0));
        assert!(all[8192..MIB as usize].iter().all(|&b| b == 9));
        assert_eq!(&all[MIB as usize + 3..MIB as usize + 6], &[1, 2, 3]);
    }

    #[test]
    fn odd_sizes_and_non_volumes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("odd");
        std::fs::write(&p, [0u8; 1000]).unwrap();
        assert!(matches!(probe_size(&p), Err(VolumeError::NotWholeMib { .. })));
        assert!(matches!(probe_size(dir.path()), Err(VolumeError::NotAVolume { .. })));
        assert!(matches!(create_sparse(&p, MIB), Err(VolumeError::Exists { .. })));
    }
}
