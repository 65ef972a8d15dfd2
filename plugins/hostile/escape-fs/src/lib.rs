//! Hostile driver: in `backup` it tries to reach outside the directory it was
//! granted, and reports each attempt as `name=blocked` or `name=ESCAPED` in its
//! error. The sandbox test asserts every attempt is blocked.

use holdfast_driver_sdk::{BackupInfo, BackupOutcome, Driver, DriverError, DriverInfo, Setting, Source};

fn attempt(name: &str, ok: bool) -> String {
    format!("{name}={}", if ok { "ESCAPED" } else { "blocked" })
}

pub struct EscapeFs;

impl Driver for EscapeFs {
    fn setup(_config: Vec<Setting>) -> Result<DriverInfo, DriverError> {
        Ok(DriverInfo { service: "holdfast.hostile.EscapeFs".into(), supports_force_delete: false })
    }

    fn backup(
        _info: BackupInfo,
        _parent: Option<BackupInfo>,
        _meta: Option<String>,
        _source: &Source,
    ) -> Result<BackupOutcome, DriverError> {
        let results = [
            attempt("read-etc-passwd", std::fs::read("/etc/passwd").is_ok()),
            attempt("dotdot-from-preopen", std::fs::read("/backup/../../../../etc/passwd").is_ok()),
            attempt("list-root", std::fs::read_dir("/").is_ok_and(|mut d| d.next().is_some())),
            attempt("write-tmp", std::fs::write("/tmp/holdfast-escape", b"x").is_ok()),
            // The test plants /backup/escape-link -> /etc/passwd on the host side.
            attempt("symlink-out", std::fs::read("/backup/escape-link").is_ok()),
            // … and relative links to the host's database file and compile cache beside it.
            attempt("symlink-database", std::fs::read("/backup/db-link").is_ok()),
            attempt("symlink-cache", std::fs::read_dir("/backup/cache-link").is_ok()),
            attempt("write-through-link", std::fs::write("/backup/db-link", b"x").is_ok()),
            attempt("env", std::env::vars().next().is_some()),
            attempt("tcp-connect", std::net::TcpStream::connect("127.0.0.1:5432").is_ok()),
        ];
        Err(DriverError::Other(results.join(" ")))
    }

    holdfast_hostile_common::inert!(restore, delete, export_record, import_record);
}

// Exports only exist in the wasm build: native symbol names cannot hold WIT's `:`/`@`.
#[cfg(target_arch = "wasm32")]
holdfast_driver_sdk::export_driver!(EscapeFs with_types_in holdfast_driver_sdk::bindings);
