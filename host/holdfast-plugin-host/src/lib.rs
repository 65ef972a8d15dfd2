//! The wasmtime host for backup-driver components; the only crate that knows wasmtime.
//!
//! - [`engine`]: engine configuration and the epoch ticker that lets the host stop a guest.
//! - [`grants`]: the WASI context a driver's [`holdfast_driver::Grants`] become (default-deny).
//! - [`driver`]: a loaded driver component, implementing [`holdfast_driver::BackupDriver`].
//! - [`wit`]: the `holdfast:backup` versions this host loads; a component's is read
//!   before it is instantiated.
//! - `imports/`: one file per host interface of the newest WIT world (`host`, `volume`).
//! - `since_v0_1_0`: 0.1.0 components, served and called through the newest WIT.
//! - `network`: `wasi:http` requests, only to the backend's granted endpoints and,
//!   with an object API, only to the operation's backups (`object_request` reads them).
//!
//! Sandbox boundary: a guest gets exactly the WASI context built in [`grants`] plus
//! our two interfaces. Volume bytes never enter the guest unless it asks for them;
//! it holds handles to host-owned chunks. Every guest-driven limit is a named constant
//! in [`limits`].

mod bindings;
pub mod compile_cache;
mod deadline;
pub mod driver;
pub mod engine;
mod gate;
pub mod grants;
mod imports;
mod limiter;
pub mod limits;
pub mod manifest;
mod network;
mod object_request;
mod since_v0_1_0;
mod state;
pub mod wit;

pub use driver::DriverComponent;

pub use holdfast_chunk::Compression;
pub use wit::{WitMismatch, WitVersion, supported_wit_versions};
