//! The backup-driver contract, apart from any runtime (Zed's `extension` beside
//! `extension_host`): what the manager calls, and what a runtime — the wasmtime
//! plugin host, or an in-process fake in tests — implements.
//!
//! - [`BackupDriver`]: Cinder's driver operations (setup, backup, restore, delete,
//!   export and import of records) over host-owned volume data.
//! - [`DriverId`]: which driver, which version, which bytes, which WIT.
//! - [`Grants`]: what a driver may reach.
//! - [`OpContext`]: how the host steers and observes one operation.
//! - [`Caller`]: who asked for it (project and Keystone token, for `per_user` Swift).
//! - [`DriverError`]: what went wrong, typed, and whose fault it was.
//! - [`untrusted`]: the checks on everything a driver hands back.

mod caller;
mod driver;
mod error;
mod grants;
mod id;
mod op;
pub mod untrusted;

pub use caller::{Caller, CallerToken};
pub use driver::{BackupDriver, BackupResult, DriverDescription, RestoreOutcome};
pub use error::{DriverError, DriverFailure, VolumeFailure};
pub use grants::{
    Access, BACKUP_MOUNT, DEFAULT_CALL_TIMEOUT, DEFAULT_CONTROL_TIMEOUT, DirGrant, Grants, ObjectApi, RbdGrant,
};
pub use holdfast_types::{CALLER_PROJECT_SETTING, HOST_SETTING_PREFIX};
pub use id::DriverId;
pub use op::{LocationCallback, OpContext};

/// Re-exported so implementors need only this crate for the volume side.
pub use holdfast_chunk::{ChunkSink, ChunkSource};
