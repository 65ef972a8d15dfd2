//! Work that moves volume data — the driver's backup and restore calls, snapshot
//! copies — runs on a thread of its own at the data path's priority
//! ([`holdfast_chunk::priority`]), not on tokio's shared blocking pool: a pool thread
//! whose niceness was raised could not lower it again for the next job without
//! privilege.

/// Run `f` on a new thread named `name` at data priority; its result, or why none came.
pub(crate) async fn run<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            holdfast_chunk::priority::lower_this_thread();
            let _ = tx.send(f());
        })
        .map_err(|e| format!("cannot start the {name} thread: {e}"))?;
    rx.await.map_err(|_| format!("the {name} thread ended without a result (it panicked)"))
}
