//! The wasmtime host for backup-driver components; the only crate that knows wasmtime.
//!
//! - [`engine`]: engine configuration and the epoch ticker that lets the host stop a guest.
//! - [`grants`]: what a driver may reach (default-deny: one preopened directory, no network).
//! - [`driver`]: a loaded driver component and one call per Cinder driver operation.
//! - `imports/`: one file per host interface of the WIT world (`host`, `volume`).
//!
//! Sandbox boundary: a guest gets exactly the WASI context built in [`grants`] plus
//! our two interfaces. Volume bytes never enter the guest unless it asks for them;
//! it holds handles to host-owned chunks. Every guest-driven limit is a named constant
//! in [`limits`].

mod bindings;
pub mod compile_cache;
pub mod driver;
pub mod engine;
pub mod grants;
mod imports;
pub mod limits;
mod state;

pub use driver::{
    BackupResult, DriverComponent, DriverDescription, DriverFailure, OpContext, PluginError, RestoreOutcome,
};
pub use grants::Grants;
pub use holdfast_chunk::Compression;
