//! Point-in-time copies of a volume for snapshots: a reflink (FICLONE) where the
//! filesystem shares extents (XFS, Btrfs), else a sparse copy that reads only the
//! source's data extents and leaves zero blocks as holes.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

use holdfast_chunk::digest::is_zero;

use crate::file::{VolumeError, create_new, io_err, raw_size};
use crate::sys;

/// Copy buffer: big enough to stream, small enough to keep RSS flat.
const BLOCK: usize = 4 << 20;

/// How a copy was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyMethod {
    /// Extents shared with the source: instant and atomic.
    Reflink,
    /// Data extents copied, zeros left as holes. Point in time only if nothing
    /// writes to the source meanwhile (as for Cinder's `--force` backups, the copy
    /// of a volume in use is crash-consistent at best).
    Sparse,
    /// An RBD snapshot of the image: instant, point in time.
    RbdSnapshot,
}

/// Copy the raw file or block device `src` to a new file `dst` (which must not
/// exist), calling `progress` with the bytes covered so far. The copy is synced
/// before this returns; on error the caller removes `dst`.
pub fn point_in_time_copy(
    src: &Path,
    dst: &Path,
    mut progress: impl FnMut(u64),
) -> Result<(u64, CopyMethod), VolumeError> {
    let size = raw_size(src)?;
    let from = File::open(src).map_err(io_err(src))?;
    let to = create_new(dst)?;
    let method = if from.metadata().map_err(io_err(src))?.is_file() && reflink(&from, &to).is_ok() {
        CopyMethod::Reflink
    } else {
        to.set_len(size).map_err(io_err(dst))?;
        sparse_copy(&from, &to, size, &mut progress).map_err(io_err(src))?;
        CopyMethod::Sparse
    };
    to.sync_all().map_err(io_err(dst))?;
    progress(size);
    Ok((size, method))
}

fn reflink(from: &File, to: &File) -> io::Result<()> {
    const FICLONE: libc::c_ulong = 0x4004_9409;
    // SAFETY: FICLONE takes the source fd as its argument; both fds are valid.
    let r = unsafe { libc::ioctl(to.as_raw_fd(), FICLONE as _, from.as_raw_fd()) };
    if r == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

fn sparse_copy(from: &File, to: &File, size: u64, progress: &mut impl FnMut(u64)) -> io::Result<()> {
    let mut buf = vec![0u8; BLOCK];
    let mut pos = 0;
    while pos < size {
        let Some(data) = sys::seek_data(from, pos) else { break };
        let end = sys::seek_hole(from, data, size).min(size);
        let mut at = data;
        while at < end {
            let n = ((end - at) as usize).min(BLOCK);
            from.read_exact_at(&mut buf[..n], at)?;
            if !is_zero(&buf[..n]) {
                to.write_all_at(&buf[..n], at)?;
            }
            at += n as u64;
            progress(at);
        }
        pos = end.max(data + 1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_copy_keeps_data_and_holes() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.raw");
        let f = File::create(&src).unwrap();
        f.set_len(16 << 20).unwrap();
        f.write_all_at(&[7u8; 1 << 20], 2 << 20).unwrap();
        f.write_all_at(&vec![0u8; 1 << 20], 6 << 20).unwrap(); // written zeros
        f.write_all_at(b"tail", (16 << 20) - 4).unwrap();
        drop(f);
        let dst = dir.path().join("dst.raw");
        let mut seen = 0;
        let (size, _) = point_in_time_copy(&src, &dst, |n| seen = n).unwrap();
        assert_eq!(size, 16 << 20);
        assert_eq!(seen, size);
        assert_eq!(std::fs::read(&src).unwrap(), std::fs::read(&dst).unwrap());
        assert!(matches!(point_in_time_copy(&src, &dst, |_| {}), Err(VolumeError::Exists { .. })));
    }

    #[test]
    fn a_missing_source_is_an_error_and_makes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dst = dir.path().join("dst.raw");
        assert!(point_in_time_copy(&dir.path().join("nope"), &dst, |_| {}).is_err());
        assert!(!dst.exists());
    }
}
