//! Write a Holdfast backup driver.
//!
//! A driver is a wasm component (`wasm32-wasip2`, `crate-type = ["cdylib"]`) that
//! implements [`Driver`] (the WIT `driver` interface) and calls [`export_driver!`]:
//!
//! ```text
//! struct MyDriver;
//! impl holdfast_driver_sdk::Driver for MyDriver { /* setup, backup, restore, … */ }
//! #[cfg(target_arch = "wasm32")] // exports exist only in the wasm build
//! holdfast_driver_sdk::export_driver!(MyDriver with_types_in holdfast_driver_sdk::bindings);
//! ```
//!
//! The host keeps volume bytes: a driver gets `source`/`target` handles and hashed,
//! compressed chunks (see `wit/holdfast-backup@0.1.0/volume.wit`). Helpers here:
//! - [`cinder`]: Cinder's chunked layout (container, object names, metadata, sha256file).
//! - [`pyjson`]: JSON printed byte-for-byte like Python's `json.dumps(indent=2, sort_keys=True)`.
//! - [`store`]: whole-object reads and writes on a preopened directory in one WASI call each.
//! - [`settings`]: typed access to the operator's configuration.

pub mod bindings {
    wit_bindgen::generate!({
        world: "backup-driver",
        path: "../../wit/holdfast-backup@0.1.0",
        pub_export_macro: true,
        export_macro_name: "export_driver",
        default_bindings_module: "holdfast_driver_sdk::bindings",
    });
}

pub use bindings::export_driver;

pub mod cinder;
pub mod pyjson;
pub mod settings;
pub mod store;

pub use bindings::exports::holdfast::backup::driver::{BackupOutcome, DriverInfo, Guest as Driver};
pub use bindings::holdfast::backup::host::{self, Level};
pub use bindings::holdfast::backup::types::{BackupInfo, Compression, DriverError, Setting, Timestamp};
pub use bindings::holdfast::backup::volume::{Chunk, ChunkStream, ReadOptions, Source, Target};

/// Log into the host's tracing, inside the span of the current backup.
pub fn log(level: Level, message: impl AsRef<str>) {
    host::log(level, message.as_ref());
}

impl Compression {
    /// Cinder's recorded name.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Zlib => "zlib",
            Compression::Gzip => "gzip",
            Compression::Bz2 => "bz2",
            Compression::Bzip2 => "bzip2",
            Compression::Zstd => "zstd",
        }
    }

    /// Parse a configured or recorded name with Cinder's aliases, case-insensitively.
    pub fn parse(name: &str) -> Option<Compression> {
        Some(match name.to_ascii_lowercase().as_str() {
            "none" | "off" | "no" => Compression::None,
            "zlib" => Compression::Zlib,
            "gzip" => Compression::Gzip,
            "bz2" => Compression::Bz2,
            "bzip2" => Compression::Bzip2,
            "zstd" => Compression::Zstd,
            _ => return None,
        })
    }
}
