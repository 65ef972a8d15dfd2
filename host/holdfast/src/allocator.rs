//! The process's allocator: mimalloc, for Rust and (through `sqlite_alloc`) for SQLite.
//!
//! A 1000-backup list page is mostly small allocations (rows, JSON values) made and
//! freed across threads, where glibc's arenas showed as a third of the profile.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

unsafe extern "C" {
    fn mi_collect(force: bool);
}

/// Hand the pages this thread's heap holds free back to the system. mimalloc keeps
/// freed pages for reuse, and compiling a driver frees ~30 MiB that nothing reuses:
/// without this they stayed resident for the life of the process (`holdfast bench`:
/// 92 MiB before a backup, 47 MiB with it and serial compilation).
pub fn release_free_memory() {
    // SAFETY: mi_collect has no preconditions; mimalloc is linked as the global allocator.
    unsafe { mi_collect(true) }
}
