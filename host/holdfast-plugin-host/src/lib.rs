//! The wasmtime host for backup-driver components; the only crate that knows wasmtime.
//!
//! - [`engine`]: engine configuration and the epoch ticker that lets the host stop a guest.
//! - [`grants`]: the WASI context a driver's [`holdfast_driver::Grants`] become (default-deny).
//! - [`driver`]: a loaded driver component, implementing [`holdfast_driver::BackupDriver`].
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
mod gate;
pub mod grants;
mod imports;
pub mod limits;
mod state;

pub use driver::DriverComponent;

/// The WIT package this host implements (`wit/holdfast-backup@0.1.0`).
pub const WIT_VERSION: &str = "0.1.0";
pub use holdfast_chunk::Compression;
