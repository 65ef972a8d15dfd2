//! The wasmtime host for backup-driver components; the only crate that knows wasmtime.
//!
//! - [`engine`]: engine configuration and the epoch ticker that lets the host stop a guest.
//! - [`grants`]: the WASI context a driver's [`holdfast_driver::Grants`] become (default-deny).
//! - [`driver`]: a loaded driver component, implementing [`holdfast_driver::BackupDriver`].
//! - [`wit`]: the `holdfast:backup` versions this host loads; a component's is read
//!   before it is instantiated.
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
pub mod manifest;
mod state;
pub mod wit;

pub use driver::DriverComponent;

pub use holdfast_chunk::Compression;
pub use wit::{WitMismatch, supported_wit_versions};
