//! SQLite allocates through mimalloc too. A 1000-row backup page makes SQLite copy
//! every column value (sqlx's `sqlite3_value_dup`) on its worker thread and Rust free
//! them on another; through glibc's malloc that was ~15 % of the control path's CPU in
//! `perf` under load (`_int_malloc`, `malloc_consolidate`, cross-arena frees).
//!
//! Both libraries are already linked: SQLite bundled by sqlx, mimalloc by the global
//! allocator. This only tells SQLite which `malloc` to call.

use std::ffi::{c_int, c_void};

unsafe extern "C" {
    fn mi_malloc(size: usize) -> *mut c_void;
    fn mi_free(p: *mut c_void);
    fn mi_realloc(p: *mut c_void, size: usize) -> *mut c_void;
    fn mi_usable_size(p: *const c_void) -> usize;
    fn sqlite3_config(op: c_int, ...) -> c_int;
}

/// `SQLITE_CONFIG_MALLOC` in sqlite3.h.
const SQLITE_CONFIG_MALLOC: c_int = 4;

/// sqlite3.h's `sqlite3_mem_methods`.
#[repr(C)]
struct MemMethods {
    x_malloc: unsafe extern "C" fn(c_int) -> *mut c_void,
    x_free: unsafe extern "C" fn(*mut c_void),
    x_realloc: unsafe extern "C" fn(*mut c_void, c_int) -> *mut c_void,
    x_size: unsafe extern "C" fn(*mut c_void) -> c_int,
    x_roundup: unsafe extern "C" fn(c_int) -> c_int,
    x_init: unsafe extern "C" fn(*mut c_void) -> c_int,
    x_shutdown: unsafe extern "C" fn(*mut c_void),
    app_data: *mut c_void,
}

unsafe extern "C" fn x_malloc(n: c_int) -> *mut c_void {
    // SAFETY: SQLite passes a positive size; mimalloc returns 8-byte-aligned memory.
    unsafe { mi_malloc(n.max(0) as usize) }
}
unsafe extern "C" fn x_free(p: *mut c_void) {
    // SAFETY: `p` came from x_malloc/x_realloc (SQLite never mixes allocators).
    unsafe { mi_free(p) }
}
unsafe extern "C" fn x_realloc(p: *mut c_void, n: c_int) -> *mut c_void {
    // SAFETY: as above.
    unsafe { mi_realloc(p, n.max(0) as usize) }
}
unsafe extern "C" fn x_size(p: *mut c_void) -> c_int {
    // SAFETY: as above; SQLite only asks about live allocations.
    let n = unsafe { mi_usable_size(p) };
    c_int::try_from(n).unwrap_or(c_int::MAX)
}
unsafe extern "C" fn x_roundup(n: c_int) -> c_int {
    (n.saturating_add(7)) & !7
}
unsafe extern "C" fn x_init(_: *mut c_void) -> c_int {
    0
}
unsafe extern "C" fn x_shutdown(_: *mut c_void) {}

/// Install before the first SQLite call (SQLite refuses, harmlessly, once it has
/// initialised; the process then keeps glibc's malloc for SQLite).
pub fn install() {
    let methods = MemMethods {
        x_malloc,
        x_free,
        x_realloc,
        x_size,
        x_roundup,
        x_init,
        x_shutdown,
        app_data: std::ptr::null_mut(),
    };
    // SAFETY: SQLite copies the struct before returning; the functions are 'static.
    let rc = unsafe { sqlite3_config(SQLITE_CONFIG_MALLOC, &methods as *const MemMethods) };
    if rc != 0 {
        eprintln!("note: SQLite keeps the system allocator (sqlite3_config returned {rc})");
    }
}
