//! The librbd/librados functions we call, resolved from the shared libraries once.
//! Signatures are Ceph 16's (`/usr/include/rbd/librbd.h`, `rados/librados.h`).

use std::ffi::{c_char, c_int, c_void};
use std::sync::OnceLock;

use crate::RbdError;

pub type Rados = *mut c_void;
pub type IoCtx = *mut c_void;
pub type ImageHandle = *mut c_void;
pub type Completion = *mut c_void;
pub type DiffCallback = unsafe extern "C" fn(u64, usize, c_int, *mut c_void) -> c_int;

#[repr(C)]
pub struct SnapInfo {
    pub id: u64,
    pub size: u64,
    pub name: *const c_char,
}

macro_rules! functions {
    ($($lib:ident: $name:ident: fn($($arg:ty),*) -> $ret:ty;)*) => {
        pub struct Lib {
            _rados: libloading::Library,
            _rbd: libloading::Library,
            $(pub $name: unsafe extern "C" fn($($arg),*) -> $ret,)*
        }

        fn load() -> Result<Lib, RbdError> {
            let open = |name: &str| {
                // SAFETY: loading Ceph's client libraries runs their initialisers, which
                // have no preconditions.
                unsafe { libloading::Library::new(name) }.map_err(|e| {
                    RbdError::Library(format!(
                        "cannot load {name} ({e}); install Debian's librbd1 and librados2 (scripts/ceph-dev.sh install)"
                    ))
                })
            };
            let rados = open("librados.so.2")?;
            let rbd = open("librbd.so.1")?;
            $(
                let $name = {
                    let lib = match stringify!($lib) { "rados" => &rados, _ => &rbd };
                    // SAFETY: the symbol has the C signature declared above (Ceph 16 headers).
                    let sym = unsafe {
                        lib.get::<unsafe extern "C" fn($($arg),*) -> $ret>(concat!(stringify!($name), "\0").as_bytes())
                    }
                    .map_err(|e| RbdError::Library(format!("{}: {e}", stringify!($name))))?;
                    *sym
                };
            )*
            Ok(Lib { _rados: rados, _rbd: rbd, $($name,)* })
        }
    };
}

functions! {
    rados: rados_create2: fn(*mut Rados, *const c_char, *const c_char, u64) -> c_int;
    rados: rados_conf_read_file: fn(Rados, *const c_char) -> c_int;
    rados: rados_conf_set: fn(Rados, *const c_char, *const c_char) -> c_int;
    rados: rados_connect: fn(Rados) -> c_int;
    rados: rados_shutdown: fn(Rados) -> ();
    rados: rados_ioctx_create: fn(Rados, *const c_char, *mut IoCtx) -> c_int;
    rados: rados_ioctx_destroy: fn(IoCtx) -> ();
    rados: rados_write_full: fn(IoCtx, *const c_char, *const c_char, usize) -> c_int;
    rados: rados_read: fn(IoCtx, *const c_char, *mut c_char, usize, u64) -> c_int;
    rados: rados_remove: fn(IoCtx, *const c_char) -> c_int;
    rados: rados_stat: fn(IoCtx, *const c_char, *mut u64, *mut i64) -> c_int;
    rbd: rbd_create2: fn(IoCtx, *const c_char, u64, u64, *mut c_int) -> c_int;
    rbd: rbd_create3: fn(IoCtx, *const c_char, u64, u64, *mut c_int, u64, u64) -> c_int;
    rbd: rbd_remove: fn(IoCtx, *const c_char) -> c_int;
    rbd: rbd_open: fn(IoCtx, *const c_char, *mut ImageHandle, *const c_char) -> c_int;
    rbd: rbd_open_read_only: fn(IoCtx, *const c_char, *mut ImageHandle, *const c_char) -> c_int;
    rbd: rbd_close: fn(ImageHandle) -> c_int;
    rbd: rbd_get_size: fn(ImageHandle, *mut u64) -> c_int;
    rbd: rbd_resize: fn(ImageHandle, u64) -> c_int;
    rbd: rbd_read2: fn(ImageHandle, u64, usize, *mut c_char, c_int) -> isize;
    rbd: rbd_write2: fn(ImageHandle, u64, usize, *const c_char, c_int) -> isize;
    rbd: rbd_write_zeroes: fn(ImageHandle, u64, usize, c_int, c_int) -> isize;
    rbd: rbd_flush: fn(ImageHandle) -> c_int;
    rbd: rbd_snap_create: fn(ImageHandle, *const c_char) -> c_int;
    rbd: rbd_snap_remove: fn(ImageHandle, *const c_char) -> c_int;
    rbd: rbd_snap_list: fn(ImageHandle, *mut SnapInfo, *mut c_int) -> c_int;
    rbd: rbd_snap_list_end: fn(*mut SnapInfo) -> ();
    rbd: rbd_diff_iterate2: fn(ImageHandle, *const c_char, u64, u64, u8, u8, DiffCallback, *mut c_void) -> c_int;
    rbd: rbd_aio_create_completion: fn(*mut c_void, *const c_void, *mut Completion) -> c_int;
    rbd: rbd_aio_read2: fn(ImageHandle, u64, usize, *mut c_char, Completion, c_int) -> c_int;
    rbd: rbd_aio_write2: fn(ImageHandle, u64, usize, *const c_char, Completion, c_int) -> c_int;
    rbd: rbd_aio_wait_for_complete: fn(Completion) -> c_int;
    rbd: rbd_aio_get_return_value: fn(Completion) -> isize;
    rbd: rbd_aio_release: fn(Completion) -> ();
}

/// The libraries, loaded on first use.
pub fn lib() -> Result<&'static Lib, RbdError> {
    static LIB: OnceLock<Result<Lib, String>> = OnceLock::new();
    match LIB.get_or_init(|| load().map_err(|e| e.to_string())) {
        Ok(lib) => Ok(lib),
        Err(e) => Err(RbdError::Library(e.clone())),
    }
}
