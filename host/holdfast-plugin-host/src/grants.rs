//! The WASI context a driver's [`Grants`] become. Default-deny: a driver reaches the
//! directories the operator named and nothing else — no environment, no arguments,
//! no sockets, no name lookup, no other files.

use holdfast_driver::{Access, Grants};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

/// Build the WASI context for one instance.
pub fn wasi_ctx(grants: &Grants) -> Result<WasiCtx, String> {
    let mut b = WasiCtxBuilder::new();
    // File calls run on the calling thread: we already run drivers on blocking threads.
    b.allow_blocking_current_thread(true);
    b.allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false);
    b.socket_addr_check(|_, _| Box::pin(async { false }));
    for dir in &grants.dirs {
        let perms = match dir.access {
            Access::ReadOnly => FsPerms::ReadOnly,
            Access::ReadWrite => FsPerms::ReadWrite,
        };
        b.preopened_dir(&dir.host_path, &dir.guest_path, perms)
            .map_err(|e| format!("cannot grant {}: {e}", dir.host_path.display()))?;
    }
    Ok(b.build())
}
