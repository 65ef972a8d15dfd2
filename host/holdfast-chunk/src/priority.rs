//! The data path yields to the control path: threads that read, hash, compress and
//! restore run at nice [`DATA_NICE`], so that with every core busy moving backups the
//! API, the database and the manager still get a core when they need one (four 1 GiB
//! backups on two cores took a 1000-row list page from 32 ms to 370 ms at nice 0).
//! When nothing else wants the CPU the data path has all of it, nice or not.

/// Niceness of data-path threads (Linux: per thread).
pub const DATA_NICE: i32 = 10;

/// Lower the calling thread's priority to at least [`DATA_NICE`] (never raise it: a
/// host started at nice 15 keeps its data threads at 15). Raising niceness needs no
/// privilege; a failure only leaves the thread at its old priority.
pub fn lower_this_thread() {
    // SAFETY: getpriority/setpriority have no memory effects; `who = 0` is the calling
    // thread on Linux. getpriority may legitimately return -1, so errno is not checked:
    // the worst case is setting exactly DATA_NICE.
    let now = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, now.max(DATA_NICE)) };
    if r != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "could not lower a data thread's priority");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_calling_thread_is_lowered() {
        // SAFETY: getpriority reads the calling thread's nice value.
        let before = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        let inside = std::thread::spawn(|| {
            super::lower_this_thread();
            unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
        })
        .join()
        .unwrap();
        assert_eq!(inside, super::DATA_NICE.max(before));
        assert_eq!(unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }, before);
    }
}
