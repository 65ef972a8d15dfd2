//! The process's allocator: mimalloc, for Rust and (through `sqlite_alloc`) for SQLite.
//!
//! A 1000-backup list page is mostly small allocations (rows, JSON values) made and
//! freed across threads, where glibc's arenas showed as a third of the profile.

use std::ffi::{c_int, c_long};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

unsafe extern "C" {
    fn mi_collect(force: bool);
    #[cfg(test)]
    fn mi_option_get(option: c_int) -> c_long;
    fn mi_option_set(option: c_int, value: c_long);
}

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_t` (checked by a test: the one
/// option whose default is 1000 ms there).
const PURGE_DELAY: c_int = 15;

/// Hand the pages this thread's heap holds free back to the system. mimalloc keeps
/// freed pages for reuse, and compiling a driver frees ~30 MiB that nothing reuses:
/// without this they stayed resident for the life of the process (`holdfast bench`:
/// 92 MiB before a backup, 47 MiB with it and serial compilation).
pub fn release_free_memory() {
    // SAFETY: mi_collect has no preconditions; mimalloc is linked as the global allocator.
    unsafe { mi_collect(true) }
}

/// Give freed pages back to the system at once rather than a second later (mimalloc
/// v3's default), unless the operator set `MIMALLOC_PURGE_DELAY` (or its older name,
/// `MIMALLOC_RESET_DELAY`). A backup frees tens of MiB across threads that end with
/// it; kept for the delay, and purged only when the heap is used again, they were
/// still resident when the next operation began (`holdfast bench`, later rounds'
/// backups: 119–127 MiB against 128–131; a restore recycles its buffers, so purging
/// costs it nothing).
pub fn purge_freed_memory_at_once() {
    // MIMALLOC_RESET_DELAY is the option's older name, still read by mimalloc.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() && std::env::var_os("MIMALLOC_RESET_DELAY").is_none() {
        // SAFETY: sets one of mimalloc's options; no preconditions.
        unsafe { mi_option_set(PURGE_DELAY, 0) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_option_is_the_one_we_set() {
        // Nothing in the tests sets it: its default of 1000 ms identifies it.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            // SAFETY: reads one of mimalloc's options.
            assert_eq!(unsafe { mi_option_get(PURGE_DELAY) }, 1000);
        }
    }
}
