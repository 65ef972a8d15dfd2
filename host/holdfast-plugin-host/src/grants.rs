//! Capabilities granted to a driver. Default-deny: a driver reaches the one directory
//! the operator named (as `/backup`) and nothing else — no environment, no arguments,
//! no sockets, no name lookup, no other files.

use std::path::PathBuf;

use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

/// Where the granted directory appears inside the guest.
pub const BACKUP_MOUNT: &str = "/backup";

#[derive(Debug, Clone, Default)]
pub struct Grants {
    /// Host directory preopened read-write at [`BACKUP_MOUNT`], if any.
    pub backup_dir: Option<PathBuf>,
}

impl Grants {
    /// Build the WASI context for one instance.
    pub fn wasi_ctx(&self) -> Result<WasiCtx, String> {
        let mut b = WasiCtxBuilder::new();
        // File calls run on the calling thread: we already run drivers on blocking threads.
        b.allow_blocking_current_thread(true);
        b.allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false);
        b.socket_addr_check(|_, _| Box::pin(async { false }));
        if let Some(dir) = &self.backup_dir {
            b.preopened_dir(dir, BACKUP_MOUNT, FsPerms::ReadWrite)
                .map_err(|e| format!("cannot grant {}: {e}", dir.display()))?;
        }
        Ok(b.build())
    }
}
