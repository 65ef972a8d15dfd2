//! RBD images: open (at the head or a snapshot), read, write, zero, resize,
//! snapshots, and the extents changed since a snapshot (`rbd_diff_iterate2`).

use std::ffi::{CStr, c_int, c_void};
use std::ptr;
use std::sync::Arc;

use crate::RbdError;
use crate::cluster::{Pool, cstr};
use crate::ffi::{ImageHandle, SnapInfo};

/// layering, exclusive-lock, object-map, fast-diff, deep-flatten: `rbd create`'s
/// default, and what makes `diff_iterate` fast (object map).
const DEFAULT_FEATURES: u64 = 1 | 4 | 8 | 16 | 32;
/// RBD_FEATURE_STRIPINGV2.
const STRIPINGV2: u64 = 2;

/// One range `rbd diff` reports: data (`exists`) or a range that became zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiffExtent {
    pub offset: u64,
    pub len: u64,
    /// False when the range was discarded (reads as zeros now).
    pub exists: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub id: u64,
    pub size: u64,
    pub name: String,
}

/// An open image (or a snapshot of one, read-only). librbd image handles are
/// thread-safe: reads and writes may come from several threads at once.
pub struct Image {
    pool: Arc<Pool>,
    handle: ImageHandle,
    name: String,
    snap: Option<String>,
}

// SAFETY: librbd image handles may be used from any thread concurrently.
unsafe impl Send for Image {}
// SAFETY: as above.
unsafe impl Sync for Image {}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Image({})", self.spec())
    }
}

impl Pool {
    /// Create an image of `size` bytes with the default features.
    pub fn create_image(&self, name: &str, size: u64) -> Result<(), RbdError> {
        let n = cstr("image", name)?;
        let mut order: c_int = 0;
        // SAFETY: a live context; out-pointer to a local.
        let rc = unsafe { (self.lib().rbd_create2)(self.io, n.as_ptr(), size, DEFAULT_FEATURES, &mut order) };
        if rc < 0 { Err(RbdError::call(format!("creating image {}/{name}", self.name()), rc.into())) } else { Ok(()) }
    }

    /// Create an image with striping v2 (`stripe_unit` bytes, `stripe_count` objects)
    /// when both are non-zero, else as [`Pool::create_image`] (Cinder's
    /// backup_ceph_stripe_unit/_count).
    pub fn create_striped_image(
        &self,
        name: &str,
        size: u64,
        stripe_unit: u64,
        stripe_count: u64,
    ) -> Result<(), RbdError> {
        if stripe_unit == 0 || stripe_count == 0 {
            return self.create_image(name, size);
        }
        let n = cstr("image", name)?;
        let mut order: c_int = 0;
        // SAFETY: a live context; out-pointer to a local.
        let rc = unsafe {
            (self.lib().rbd_create3)(
                self.io,
                n.as_ptr(),
                size,
                DEFAULT_FEATURES | STRIPINGV2,
                &mut order,
                stripe_unit,
                stripe_count,
            )
        };
        if rc < 0 { Err(RbdError::call(format!("creating image {}/{name}", self.name()), rc.into())) } else { Ok(()) }
    }

    /// Remove an image (it must have no snapshots); `false` when it did not exist.
    pub fn remove_image(&self, name: &str) -> Result<bool, RbdError> {
        let n = cstr("image", name)?;
        // SAFETY: a live context.
        match unsafe { (self.lib().rbd_remove)(self.io, n.as_ptr()) } {
            0 => Ok(true),
            -2 => Ok(false),
            rc => Err(RbdError::call(format!("removing image {}/{name}", self.name()), rc.into())),
        }
    }
}

impl Image {
    /// Open `name` for reading and writing (at the head).
    pub fn open(pool: &Arc<Pool>, name: &str) -> Result<Image, RbdError> {
        Self::open_with(pool, name, None, false)
    }

    /// Open `name` read-only, at `snap` or at the head.
    pub fn open_read_only(pool: &Arc<Pool>, name: &str, snap: Option<&str>) -> Result<Image, RbdError> {
        Self::open_with(pool, name, snap, true)
    }

    fn open_with(pool: &Arc<Pool>, name: &str, snap: Option<&str>, read_only: bool) -> Result<Image, RbdError> {
        let n = cstr("image", name)?;
        let s = snap.map(|s| cstr("snapshot", s)).transpose()?;
        let sp = s.as_ref().map_or(ptr::null(), |s| s.as_ptr());
        let mut handle: ImageHandle = ptr::null_mut();
        let lib = pool.lib();
        // SAFETY: a live context; strings outlive the call; out-pointer to a local.
        let rc = unsafe {
            if read_only {
                (lib.rbd_open_read_only)(pool.io, n.as_ptr(), &mut handle, sp)
            } else {
                (lib.rbd_open)(pool.io, n.as_ptr(), &mut handle, sp)
            }
        };
        if rc < 0 {
            let at = snap.map_or(String::new(), |s| format!("@{s}"));
            return Err(RbdError::call(format!("opening image {}/{name}{at}", pool.name()), rc.into()));
        }
        Ok(Image { pool: pool.clone(), handle, name: name.to_owned(), snap: snap.map(str::to_owned) })
    }

    /// `pool/image[@snap]`.
    pub fn spec(&self) -> String {
        match &self.snap {
            Some(s) => format!("{}/{}@{s}", self.pool.name(), self.name),
            None => format!("{}/{}", self.pool.name(), self.name),
        }
    }

    fn err(&self, what: &str, rc: i64) -> RbdError {
        RbdError::call(format!("{what} {}", self.spec()), rc)
    }

    pub fn size(&self) -> Result<u64, RbdError> {
        let mut size = 0u64;
        // SAFETY: an open image; out-pointer to a local.
        let rc = unsafe { (self.pool.lib().rbd_get_size)(self.handle, &mut size) };
        if rc < 0 { Err(self.err("size of", rc.into())) } else { Ok(size) }
    }

    pub fn resize(&self, size: u64) -> Result<(), RbdError> {
        // SAFETY: an open image.
        let rc = unsafe { (self.pool.lib().rbd_resize)(self.handle, size) };
        if rc < 0 { Err(self.err("resizing", rc.into())) } else { Ok(()) }
    }

    /// Fill `buf` from `offset` (short only at the end of the image); bytes read.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, RbdError> {
        let mut done = 0usize;
        while done < buf.len() {
            let rest = &mut buf[done..];
            // SAFETY: an open image; `rest` is valid for its length.
            let n = unsafe {
                (self.pool.lib().rbd_read2)(self.handle, offset + done as u64, rest.len(), rest.as_mut_ptr().cast(), 0)
            };
            if n < 0 {
                return Err(self.err("reading", n as i64));
            }
            if n == 0 {
                break;
            }
            done += n as usize;
        }
        Ok(done)
    }

    /// Read several ranges at once (librbd AIO), each into its buffer: how a reader
    /// keeps the OSDs busy (one synchronous read at a time waits a round trip each).
    pub fn read_many(&self, reads: &mut [(u64, &mut [u8])]) -> Result<(), RbdError> {
        let lib = self.pool.lib();
        let mut pending = Vec::with_capacity(reads.len());
        let mut failure = None;
        for (offset, buf) in reads.iter_mut() {
            let mut c = ptr::null_mut();
            // SAFETY: out-pointer to a local; no callback.
            let rc = unsafe { (lib.rbd_aio_create_completion)(ptr::null_mut(), ptr::null(), &mut c) };
            if rc < 0 {
                failure = Some(self.err("starting a read of", rc.into()));
                break;
            }
            // SAFETY: `buf` stays borrowed (and valid) until we waited for this completion below.
            let rc = unsafe { (lib.rbd_aio_read2)(self.handle, *offset, buf.len(), buf.as_mut_ptr().cast(), c, 0) };
            if rc < 0 {
                // SAFETY: a completion that was never submitted.
                unsafe { (lib.rbd_aio_release)(c) };
                failure = Some(self.err("reading", rc.into()));
                break;
            }
            pending.push((c, buf.len()));
        }
        // Every submitted read is waited for, even after a failure: its buffer is ours.
        for (c, len) in pending {
            // SAFETY: a submitted completion, released exactly once.
            let n = unsafe {
                (lib.rbd_aio_wait_for_complete)(c);
                let n = (lib.rbd_aio_get_return_value)(c);
                (lib.rbd_aio_release)(c);
                n
            };
            if n < 0 && failure.is_none() {
                failure = Some(self.err("reading", n as i64));
            } else if n >= 0 && (n as usize) < len && failure.is_none() {
                failure = Some(RbdError::Invalid(format!("short read of {}: {n} of {len} bytes", self.spec())));
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// Write several ranges at once (librbd AIO): a diff's scattered small writes each
    /// wait a round trip to an OSD when made one at a time.
    pub fn write_many(&self, writes: &[(u64, &[u8])]) -> Result<(), RbdError> {
        let lib = self.pool.lib();
        let mut pending = Vec::with_capacity(writes.len());
        let mut failure = None;
        for (offset, data) in writes {
            let mut c = ptr::null_mut();
            // SAFETY: out-pointer to a local; no callback.
            let rc = unsafe { (lib.rbd_aio_create_completion)(ptr::null_mut(), ptr::null(), &mut c) };
            if rc < 0 {
                failure = Some(self.err("starting a write to", rc.into()));
                break;
            }
            // SAFETY: `data` stays borrowed (and valid) until we waited for this completion below.
            let rc = unsafe { (lib.rbd_aio_write2)(self.handle, *offset, data.len(), data.as_ptr().cast(), c, 0) };
            if rc < 0 {
                // SAFETY: a completion that was never submitted.
                unsafe { (lib.rbd_aio_release)(c) };
                failure = Some(self.err("writing", rc.into()));
                break;
            }
            pending.push((c, data.len()));
        }
        // Every submitted write is waited for, even after a failure: its buffer is borrowed.
        for (c, len) in pending {
            // SAFETY: a submitted completion, released exactly once.
            let n = unsafe {
                (lib.rbd_aio_wait_for_complete)(c);
                let n = (lib.rbd_aio_get_return_value)(c);
                (lib.rbd_aio_release)(c);
                n
            };
            // An AIO write completes with 0 (not a byte count) when it worked.
            if n < 0 && failure.is_none() {
                failure = Some(self.err(&format!("writing {len} bytes to"), n as i64));
            }
        }
        failure.map_or(Ok(()), Err)
    }

    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), RbdError> {
        // SAFETY: an open image; `data` is valid for its length.
        let n = unsafe { (self.pool.lib().rbd_write2)(self.handle, offset, data.len(), data.as_ptr().cast(), 0) };
        if n < 0 {
            return Err(self.err("writing", n as i64));
        }
        if (n as usize) != data.len() {
            return Err(RbdError::Invalid(format!("short write to {}: {n} of {} bytes", self.spec(), data.len())));
        }
        Ok(())
    }

    /// Make a range read as zeros, deallocating whole objects where it can.
    pub fn write_zeroes(&self, offset: u64, len: u64) -> Result<(), RbdError> {
        let mut done = 0u64;
        while done < len {
            let step = (len - done).min(1 << 30) as usize;
            // SAFETY: an open image.
            let n = unsafe { (self.pool.lib().rbd_write_zeroes)(self.handle, offset + done, step, 0, 0) };
            if n < 0 {
                return Err(self.err("zeroing", n as i64));
            }
            done += step as u64;
        }
        Ok(())
    }

    pub fn flush(&self) -> Result<(), RbdError> {
        // SAFETY: an open image.
        let rc = unsafe { (self.pool.lib().rbd_flush)(self.handle) };
        if rc < 0 { Err(self.err("flushing", rc.into())) } else { Ok(()) }
    }

    pub fn snap_create(&self, snap: &str) -> Result<(), RbdError> {
        let s = cstr("snapshot", snap)?;
        // SAFETY: an open image.
        let rc = unsafe { (self.pool.lib().rbd_snap_create)(self.handle, s.as_ptr()) };
        if rc < 0 { Err(self.err(&format!("creating snapshot {snap} of"), rc.into())) } else { Ok(()) }
    }

    /// Remove a snapshot; `false` when it did not exist.
    pub fn snap_remove(&self, snap: &str) -> Result<bool, RbdError> {
        let s = cstr("snapshot", snap)?;
        // SAFETY: an open image.
        match unsafe { (self.pool.lib().rbd_snap_remove)(self.handle, s.as_ptr()) } {
            0 => Ok(true),
            -2 => Ok(false),
            rc => Err(self.err(&format!("removing snapshot {snap} of"), rc.into())),
        }
    }

    pub fn snapshots(&self) -> Result<Vec<Snapshot>, RbdError> {
        let lib = self.pool.lib();
        let mut max: c_int = 16;
        loop {
            let mut infos: Vec<SnapInfo> = (0..max).map(|_| SnapInfo { id: 0, size: 0, name: ptr::null() }).collect();
            // SAFETY: `infos` has room for `max` entries; librbd says how many it needs.
            let rc = unsafe { (lib.rbd_snap_list)(self.handle, infos.as_mut_ptr(), &mut max) };
            if rc == -34 {
                continue; // ERANGE: `max` now holds the count needed
            }
            if rc < 0 {
                return Err(self.err("listing snapshots of", rc.into()));
            }
            let out = infos[..rc as usize]
                .iter()
                .map(|i| Snapshot {
                    id: i.id,
                    size: i.size,
                    // SAFETY: librbd filled `name` with a NUL-terminated string, freed by list_end below.
                    name: unsafe { CStr::from_ptr(i.name) }.to_string_lossy().into_owned(),
                })
                .collect();
            // SAFETY: the array rbd_snap_list filled.
            unsafe { (lib.rbd_snap_list_end)(infos.as_mut_ptr()) };
            return Ok(out);
        }
    }

    /// The extents that differ between snapshot `from` (`None`: an empty image) and
    /// what this handle shows (its snapshot or the head), in order.
    pub fn diff(&self, from: Option<&str>, whole_object: bool) -> Result<Vec<DiffExtent>, RbdError> {
        self.diff_in(from, whole_object, 0, self.size()?)
    }

    /// [`Image::diff`] of the bytes `[offset, offset + len)` only: a long diff in spans,
    /// so the copy can start on the first span's changes before the last is known.
    pub fn diff_in(
        &self,
        from: Option<&str>,
        whole_object: bool,
        offset: u64,
        len: u64,
    ) -> Result<Vec<DiffExtent>, RbdError> {
        unsafe extern "C" fn collect(offset: u64, len: usize, exists: c_int, arg: *mut c_void) -> c_int {
            // SAFETY: `arg` is the Vec passed below, alive for the whole iteration.
            let out = unsafe { &mut *(arg as *mut Vec<DiffExtent>) };
            out.push(DiffExtent { offset, len: len as u64, exists: exists != 0 });
            0
        }
        let f = from.map(|s| cstr("snapshot", s)).transpose()?;
        let fp = f.as_ref().map_or(ptr::null(), |s| s.as_ptr());
        let mut out: Vec<DiffExtent> = Vec::new();
        // SAFETY: an open image; the callback only pushes into `out`, which outlives the call.
        let rc = unsafe {
            (self.pool.lib().rbd_diff_iterate2)(
                self.handle,
                fp,
                offset,
                len,
                1,
                u8::from(whole_object),
                collect,
                (&mut out as *mut Vec<DiffExtent>).cast(),
            )
        };
        if rc < 0 {
            let since = from.map_or("creation".to_owned(), |s| format!("snapshot {s}"));
            return Err(self.err(&format!("diff since {since} of"), rc.into()));
        }
        // librbd reports objects as their requests complete, not in order.
        out.sort_by_key(|e| e.offset);
        Ok(out)
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        // SAFETY: an image opened by rbd_open*, closed once.
        unsafe { (self.pool.lib().rbd_close)(self.handle) };
    }
}
