//! The data path yields to the control path: threads that read, hash, compress and
//! restore run under Linux's `SCHED_IDLE` policy, so that with every core busy moving
//! backups the API, the database and the manager get a core the moment they want one.
//! Nice 10 was not enough: under four 1 GiB backups on two cores a 1000-row list page
//! still waited 30–40 ms behind hash workers at p99 (nice 0: 370 ms). When nothing else
//! wants the CPU the data path has all of it, whatever its policy.

/// Niceness of data-path threads where `SCHED_IDLE` is refused (Linux: per thread).
pub const DATA_NICE: i32 = 10;

/// Move the calling thread to the data path's priority: `SCHED_IDLE`, or, where the
/// kernel or a seccomp profile refuses that, at least nice [`DATA_NICE`] (never raised:
/// a host started at nice 15 keeps its data threads at 15). Neither needs privilege;
/// a failure only leaves the thread where it was. Threads it starts inherit it.
pub fn lower_this_thread() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `pid = 0` is the calling thread; `param` outlives the call.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } == 0 {
            return;
        }
        tracing::debug!(error = %std::io::Error::last_os_error(), "SCHED_IDLE refused; using nice");
    }
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
    #[cfg(target_os = "linux")]
    #[test]
    fn only_the_calling_thread_goes_idle() {
        // SAFETY: sched_getscheduler reads the calling thread's policy.
        let before = unsafe { libc::sched_getscheduler(0) };
        let inside = std::thread::spawn(|| {
            super::lower_this_thread();
            let policy = unsafe { libc::sched_getscheduler(0) };
            let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
            (policy, nice)
        })
        .join()
        .unwrap();
        assert!(
            inside.0 == libc::SCHED_IDLE || inside.1 >= super::DATA_NICE,
            "neither SCHED_IDLE nor nice: {inside:?}"
        );
        assert_eq!(unsafe { libc::sched_getscheduler(0) }, before);
        assert_ne!(before, libc::SCHED_IDLE);
    }
}
