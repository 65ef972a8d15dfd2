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

/// `mi_option_allow_thp` in the same enum (checked by a test with its neighbours).
const ALLOW_THP: c_int = 43;

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

/// Keep mimalloc's arena in 4 KiB pages. mimalloc asks for transparent huge pages on
/// the 1 GiB it reserves, so a heap with holes stays resident in 2 MiB steps (and the
/// kernel's khugepaged fills the holes in again): `holdfast bench`'s backups peaked at
/// 104–125 MiB, the arena 35 MiB of that, 24 of it huge pages. Its own switch
/// (`MIMALLOC_ALLOW_THP=0`) turns THP off for the whole process, which would cost the
/// O_DIRECT read buffers theirs (see `holdfast_chunk::buffer`): so the option stops
/// the advice for arenas to come, and the arena mapped before `main` is advised back.
/// Runs before anything of ours maps huge pages: every anonymous mapping advised huge
/// at this point is mimalloc's. `MIMALLOC_ALLOW_THP` set by the operator wins.
pub fn arena_in_small_pages() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
        return;
    }
    // SAFETY: sets one of mimalloc's options; no preconditions.
    unsafe { mi_option_set(ALLOW_THP, 0) };
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else { return };
    for (start, end) in huge_anonymous_mappings(&smaps) {
        // SAFETY: advice on whole mappings of this process; it changes which pages
        // back them, never their contents.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_NOHUGEPAGE) };
    }
}

/// The anonymous mappings in `smaps` text whose `VmFlags` say "hg" (advised huge).
fn huge_anonymous_mappings(smaps: &str) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    let mut current = None;
    for line in smaps.lines() {
        if let Some(flags) = line.strip_prefix("VmFlags:") {
            if let Some(range) = current.take()
                && flags.split_whitespace().any(|f| f == "hg")
            {
                found.push(range);
            }
        } else if let Some((range, rest)) = line.split_once(' ')
            && let Some((a, b)) = range.split_once('-')
            && let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        {
            // "start-end perms offset dev inode [path]": anonymous when there is no path,
            // or mimalloc's own name for its mappings (kernels with CONFIG_ANON_VMA_NAME).
            current = matches!(rest.split_whitespace().nth(4), None | Some("[anon:mimalloc]")).then_some((a, b));
        }
    }
    found
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

    #[test]
    fn the_thp_option_is_the_one_we_set() {
        // Its neighbours' defaults: page_cross_thread_max_reclaim 32, allow_thp 1,
        // minimal_purge_size 0 (arena_max_object_size, after, is 2 GiB in KiB).
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
            // SAFETY: reads mimalloc's options.
            let around =
                unsafe { [mi_option_get(ALLOW_THP - 1), mi_option_get(ALLOW_THP), mi_option_get(ALLOW_THP + 1)] };
            assert_eq!(around, [32, 1, 0]);
        }
    }

    #[test]
    fn huge_anonymous_mappings_are_found_in_smaps() {
        let smaps = "\
7f0000000000-7f0040000000 rw-p 00000000 00:00 0 
Rss:               35940 kB
VmFlags: rd wr mr mw me ac sd hg 
7f0040000000-7f0040200000 rw-p 00000000 00:00 0 
VmFlags: rd wr mr mw me ac sd 
7f0080000000-7f00c0000000 rw-p 00000000 00:00 0                          [anon:mimalloc]
VmFlags: rd wr mr mw me ac sd hg 
7ffd00000000-7ffd00100000 rw-p 00000000 00:00 0                          [stack]
VmFlags: rd wr mr mw me gd ac hg 
55d000000000-55d001000000 r-xp 00000000 fd:01 1234                       /usr/bin/holdfast
VmFlags: rd ex mr mw me sd hg 
";
        assert_eq!(
            huge_anonymous_mappings(smaps),
            [(0x7f00_0000_0000, 0x7f00_4000_0000), (0x7f00_8000_0000, 0x7f00_c000_0000)]
        );
    }
}
