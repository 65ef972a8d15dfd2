//! Ceph RBD and RADOS for the host: images (read, write, zero, resize, snapshots,
//! the extents changed between two snapshots) and whole RADOS objects.
//!
//! librbd and librados are loaded when first needed (`dlopen` of `librbd.so.1` and
//! `librados.so.2`, Debian's `librbd1`/`librados2`), not linked: a host without Ceph
//! builds and runs, and only an RBD volume or backend asks for the libraries, with a
//! clear error when they are missing. Every `unsafe` call is in [`ffi`] and the
//! wrappers here; the rest of the host sees [`Cluster`], [`Pool`] and [`Image`].
//!
//! No crate on crates.io builds against Ceph 16 with today's Rust and covers
//! `rbd_diff_iterate2` (shared/docs/ceph-dev.md §6), so this is our own, over the
//! few calls a backup service needs.

mod bounded;
mod cluster;
pub mod dev;
mod ffi;
mod image;

use std::time::Duration;

pub use bounded::{Heartbeat, bounded};
pub use cluster::{Cluster, ClusterConfig, Pool};
pub use image::{DiffExtent, Image, Snapshot};

/// How long a call to a cluster that does not answer may wait before it fails
/// (mon, OSD and mount timeouts), unless the caller says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum RbdError {
    /// librbd or librados is not installed, or lacks a function we need.
    #[error("{0}")]
    Library(String),
    /// A librbd/librados call failed.
    #[error("{what}: {source}")]
    Call { what: String, source: std::io::Error },
    #[error("{0}")]
    Invalid(String),
    /// The cluster stopped answering: a call was given up after `after` ([`bounded`]).
    #[error("{what}: the cluster stopped answering (nothing for {} s)", .after.as_secs())]
    Stalled { what: String, after: Duration },
}

impl RbdError {
    pub(crate) fn call(what: impl Into<String>, rc: i64) -> RbdError {
        RbdError::Call { what: what.into(), source: std::io::Error::from_raw_os_error((-rc) as i32) }
    }

    /// The errno behind a failed call (`ENOENT` for a missing image, pool or snapshot).
    pub fn errno(&self) -> Option<i32> {
        match self {
            RbdError::Call { source, .. } => source.raw_os_error(),
            RbdError::Stalled { .. } => Some(110),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.errno() == Some(2)
    }

    /// Whether the cluster stopped answering (as opposed to answering "no").
    pub fn is_stalled(&self) -> bool {
        matches!(self, RbdError::Stalled { .. })
    }
}

impl From<RbdError> for std::io::Error {
    fn from(e: RbdError) -> Self {
        match e {
            RbdError::Call { what, source } => std::io::Error::new(source.kind(), format!("{what}: {source}")),
            e @ RbdError::Stalled { .. } => std::io::Error::new(std::io::ErrorKind::TimedOut, e.to_string()),
            e => std::io::Error::other(e.to_string()),
        }
    }
}

/// Whether librbd can be loaded on this host.
pub fn available() -> Result<(), RbdError> {
    ffi::lib().map(drop)
}
