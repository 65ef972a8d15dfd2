//! Thin, checked wrappers over the Linux calls std does not expose.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Next offset ≥ `from` holding data, or `None` if only a hole follows.
/// Errors other than ENXIO (e.g. EINVAL on a device without hole support) mean
/// "assume data".
pub fn seek_data(f: &File, from: u64) -> Option<u64> {
    // SAFETY: plain syscall on a valid fd.
    let r = unsafe { libc::lseek(f.as_raw_fd(), from as libc::off_t, libc::SEEK_DATA) };
    if r >= 0 {
        return Some(r as u64);
    }
    match io::Error::last_os_error().raw_os_error() {
        Some(libc::ENXIO) => None,
        _ => Some(from),
    }
}

/// Next offset ≥ `from` inside a hole (the end of the file counts as one).
pub fn seek_hole(f: &File, from: u64, size: u64) -> u64 {
    // SAFETY: plain syscall on a valid fd.
    let r = unsafe { libc::lseek(f.as_raw_fd(), from as libc::off_t, libc::SEEK_HOLE) };
    if r >= 0 { r as u64 } else { size }
}

pub fn punch_hole(f: &File, offset: u64, len: u64) -> io::Result<()> {
    let mode = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
    // SAFETY: plain syscall on a valid fd.
    let r = unsafe { libc::fallocate(f.as_raw_fd(), mode, offset as libc::off_t, len as libc::off_t) };
    if r == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Size in bytes of a block device.
pub fn block_device_size(f: &File) -> io::Result<u64> {
    const BLKGETSIZE64: libc::c_ulong = 0x8008_1272;
    let mut size: u64 = 0;
    // SAFETY: BLKGETSIZE64 writes one u64 to the pointer we pass.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), BLKGETSIZE64 as _, &mut size as *mut u64) };
    if r == 0 { Ok(size) } else { Err(io::Error::last_os_error()) }
}

pub fn fdatasync(f: &File) -> io::Result<()> {
    f.sync_data()
}
