//! What an operator grants a driver. Default-deny: nothing that is not listed here.

use std::path::PathBuf;
use std::time::Duration;

/// Where the posix-style backup directory appears inside a driver.
pub const BACKUP_MOUNT: &str = "/backup";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    ReadWrite,
}

/// A host directory a driver may open, and where it sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirGrant {
    pub host_path: PathBuf,
    pub guest_path: String,
    pub access: Access,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grants {
    /// The backend's object store: a directory the host keeps and the driver reaches
    /// only through the WIT `objects` interface, each call confined to the backup the
    /// operation is for. The driver never gets the directory itself.
    pub store: Option<PathBuf>,
    /// Directories handed to the driver whole, through WASI. A read-write one lets the
    /// driver touch every backup in it, so config refuses it unless the backend is
    /// marked [`Grants::unconfined`].
    pub dirs: Vec<DirGrant>,
    /// The operator accepts that this backend's driver is not confined to one backup
    /// per operation (it has a read-write directory). Shown by `holdfast plugin list`.
    pub unconfined: bool,
    /// `host:port` endpoints the driver may reach (none by default; WIT 0.1.0 drivers
    /// have no network at all).
    pub network: Vec<String>,
    /// The object-store API the `network` endpoints speak. With it, the host reads
    /// every request as an object-store call and holds it to the operation's backup,
    /// as its own store does; without it, only the endpoint is checked.
    pub object_api: Option<ObjectApi>,
    /// Linear memory per instance; the runtime's default when `None`.
    pub memory_bytes: Option<u64>,
    /// Longest a backup or restore may go without progress (volume bytes read or
    /// written) before it is stopped: a 1 TiB backup may run for hours, one that stops
    /// moving may not. [`DEFAULT_CALL_TIMEOUT`] unless the operator says otherwise.
    pub call_timeout: Duration,
    /// Deadline of each `setup` (every operation starts with one), `delete`,
    /// `export-record` and `import-record` call. [`DEFAULT_CONTROL_TIMEOUT`] unless
    /// the operator says otherwise.
    pub control_timeout: Duration,
    /// Instances running at once (further calls wait); no limit when `None`.
    pub instances: Option<u32>,
    /// RBD pools of a Ceph cluster the driver may use (WIT `rbd`, since 0.2.2); each
    /// call confined to the operation's backup.
    pub rbd: Option<RbdGrant>,
    /// The caller's Keystone token goes on the requests to the `network` endpoints
    /// that name the caller's own Swift account (`AUTH_<project id>`): Cinder's
    /// `backup_swift_auth = per_user`. The driver never sees the token, only the
    /// project id (the `holdfast.caller_project_id` setting).
    pub caller_token: bool,
}

/// An object-store protocol the network gate understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectApi {
    /// S3, path-style (`/bucket/key`), as Cinder's S3 driver and radosgw speak it.
    S3,
    /// OpenStack Swift v1 (`/v1/AUTH_account/container/object`).
    Swift,
}

impl ObjectApi {
    pub fn parse(s: &str) -> Option<ObjectApi> {
        match s {
            "s3" => Some(ObjectApi::S3),
            "swift" => Some(ObjectApi::Swift),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ObjectApi::S3 => "s3",
            ObjectApi::Swift => "swift",
        }
    }
}

/// A backup cluster and the pools a driver may use in it (Cinder's
/// `backup_ceph_conf`, `backup_ceph_user`, and the pools `backup_ceph_pool` may name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RbdGrant {
    /// `ceph.conf`; `None`: librados's own search (`$CEPH_CONF`, `/etc/ceph/ceph.conf`).
    pub conf: Option<PathBuf>,
    /// The cephx id, without `client.`.
    pub user: String,
    pub pools: Vec<String>,
}

pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(300);
pub const DEFAULT_CONTROL_TIMEOUT: Duration = Duration::from_secs(60);

impl Default for Grants {
    fn default() -> Self {
        Grants {
            store: None,
            dirs: Vec::new(),
            unconfined: false,
            network: Vec::new(),
            object_api: None,
            memory_bytes: None,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            control_timeout: DEFAULT_CONTROL_TIMEOUT,
            instances: None,
            rbd: None,
            caller_token: false,
        }
    }
}

impl Grants {
    /// An object store in `path`: what the posix driver needs.
    pub fn store(path: impl Into<PathBuf>) -> Grants {
        Grants { store: Some(path.into()), ..Grants::default() }
    }

    /// One directory, read-write at [`BACKUP_MOUNT`], unconfined: what a driver built
    /// before WIT 0.2.1 (or one that keeps its own files) needs.
    pub fn backup_dir(path: impl Into<PathBuf>) -> Grants {
        Grants {
            dirs: vec![DirGrant { host_path: path.into(), guest_path: BACKUP_MOUNT.into(), access: Access::ReadWrite }],
            unconfined: true,
            ..Grants::default()
        }
    }

    /// Whether each operation is confined to its own backup: no read-write directory,
    /// and network endpoints only with an [`ObjectApi`] the host holds each request to
    /// (for any other protocol it can check the endpoint, not which backup's data a
    /// request names).
    pub fn is_confined(&self) -> bool {
        !self.dirs.iter().any(|d| d.access == Access::ReadWrite)
            && (self.network.is_empty() || self.object_api.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_host_store_and_rbd_pools_are_confined() {
        assert!(Grants::store("/srv/b").is_confined());
        assert!(!Grants::backup_dir("/srv/b").is_confined());
        let read_only = DirGrant { host_path: "/srv/r".into(), guest_path: "/r".into(), access: Access::ReadOnly };
        assert!(Grants { dirs: vec![read_only], ..Grants::store("/srv/b") }.is_confined());
        let network = Grants { network: vec!["127.0.0.1:8080".into()], ..Grants::default() };
        assert!(!network.is_confined());
        assert!(Grants { object_api: Some(ObjectApi::S3), ..network }.is_confined());
    }
}
