//! The object store the host keeps for a backend's driver: containers are
//! directories under one root, objects are files in them (Cinder's posix layout).
//!
//! A driver never gets the directory. It asks the host, and every request goes
//! through a [`ScopedStore`] bound to the one operation it serves: it may create,
//! overwrite and delete only its own backup's objects and read those of the backup's
//! incremental chain ([`Scope`]). Paths are resolved beneath the root with no symlink
//! followed anywhere (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`), so
//! nothing planted in the directory leads out of it.
//!
//! - [`name`]: what a container and an object name may be.
//! - [`scope`]: which backups' objects one operation may touch.
//! - [`local`]: the directory itself.
//! - [`scoped`]: the two together, with the durability bookkeeping.

pub mod local;
pub mod name;
pub mod scope;
pub mod scoped;

pub use local::LocalStore;
pub use scope::{Location, Scope};
pub use scoped::ScopedStore;

/// Largest object a driver may read back in one piece.
pub const MAX_OBJECT_BYTES: u64 = 1 << 30;
/// Most bytes one ranged read returns.
pub const MAX_RANGE_BYTES: u32 = 16 << 20;
/// Most names one `list` returns.
pub const MAX_LIST_NAMES: usize = 1 << 20;

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The name is malformed or outside the operation's scope: the driver asked for
    /// something it may not have. The host stops the driver with this reason.
    #[error("{0}")]
    Denied(String),
    #[error("{0}: no such object")]
    NotFound(String),
    #[error("{what} {path}: {source}")]
    Io { what: &'static str, path: String, source: std::io::Error },
    #[error("{path}: {len} bytes, over the {MAX_OBJECT_BYTES}-byte object limit")]
    TooLarge { path: String, len: u64 },
    #[error("listing {path}: more than {MAX_LIST_NAMES} objects")]
    TooMany { path: String },
}

impl StoreError {
    pub(crate) fn io(what: &'static str, path: &str, source: std::io::Error) -> StoreError {
        if source.kind() == std::io::ErrorKind::NotFound {
            StoreError::NotFound(path.to_owned())
        } else {
            StoreError::Io { what, path: path.to_owned(), source }
        }
    }
}
