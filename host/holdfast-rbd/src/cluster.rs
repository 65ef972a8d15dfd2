//! A connection to a Ceph cluster and its pools (RADOS I/O contexts).

use std::ffi::{CString, c_char};
use std::path::PathBuf;
use std::ptr;
use std::sync::Arc;
use std::time::Duration;

use crate::ffi::{self, IoCtx, Lib, Rados};
use crate::{DEFAULT_TIMEOUT, RbdError};

/// How to reach a cluster: Cinder's `backup_ceph_conf` and `backup_ceph_user`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// `ceph.conf`; `None` = librados's own search (`$CEPH_CONF`, `/etc/ceph/ceph.conf`).
    pub conf: Option<PathBuf>,
    /// The cephx id without `client.` (Cinder's default is `cinder`).
    pub user: String,
    /// Longest any call waits on a cluster that does not answer.
    pub timeout: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig { conf: None, user: "admin".into(), timeout: DEFAULT_TIMEOUT }
    }
}

pub(crate) fn cstr(what: &str, s: &str) -> Result<CString, RbdError> {
    CString::new(s).map_err(|_| RbdError::Invalid(format!("{what} {s:?} contains a NUL byte")))
}

/// A connected cluster handle. librados handles are thread-safe.
pub struct Cluster {
    pub(crate) lib: &'static Lib,
    handle: Rados,
    config: ClusterConfig,
}

// SAFETY: librados cluster handles may be used from any thread (librados is thread-safe).
unsafe impl Send for Cluster {}
// SAFETY: as above; we never mutate the handle after connecting.
unsafe impl Sync for Cluster {}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("config", &self.config).finish()
    }
}

impl Cluster {
    /// Connect, failing within `config.timeout` when the cluster does not answer.
    pub fn connect(config: &ClusterConfig) -> Result<Arc<Cluster>, RbdError> {
        let lib = ffi::lib()?;
        let name = cstr("user", &format!("client.{}", config.user))?;
        let cluster_name = cstr("cluster", "ceph")?;
        let mut handle: Rados = ptr::null_mut();
        // SAFETY: out-pointer to a local; the strings outlive the call.
        let rc = unsafe { (lib.rados_create2)(&mut handle, cluster_name.as_ptr(), name.as_ptr(), 0) };
        if rc < 0 {
            return Err(RbdError::call("rados_create2", rc.into()));
        }
        // From here the handle is ours to shut down, connected or not.
        let cluster = Cluster { lib, handle, config: config.clone() };
        let conf = match &config.conf {
            Some(p) => Some(cstr("ceph.conf path", &p.to_string_lossy())?),
            None => None,
        };
        let conf_ptr: *const c_char = conf.as_ref().map_or(ptr::null(), |c| c.as_ptr());
        // SAFETY: a created handle; a NULL path means librados's default search.
        let rc = unsafe { (lib.rados_conf_read_file)(cluster.handle, conf_ptr) };
        if rc < 0 {
            let shown = config.conf.as_ref().map_or("the default ceph.conf".to_owned(), |p| p.display().to_string());
            return Err(RbdError::call(format!("reading {shown}"), rc.into()));
        }
        let secs = config.timeout.as_secs().max(1).to_string();
        for option in ["client_mount_timeout", "rados_mon_op_timeout", "rados_osd_op_timeout"] {
            cluster.set(option, &secs)?;
        }
        // SAFETY: a configured handle, connected once.
        let rc = unsafe { (lib.rados_connect)(cluster.handle) };
        if rc < 0 {
            return Err(RbdError::call(format!("connecting to the cluster as client.{}", config.user), rc.into()));
        }
        Ok(Arc::new(cluster))
    }

    fn set(&self, option: &str, value: &str) -> Result<(), RbdError> {
        let (o, v) = (cstr("option", option)?, cstr("value", value)?);
        // SAFETY: a live handle and NUL-terminated strings.
        let rc = unsafe { (self.lib.rados_conf_set)(self.handle, o.as_ptr(), v.as_ptr()) };
        if rc < 0 { Err(RbdError::call(format!("setting {option}"), rc.into())) } else { Ok(()) }
    }

    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// An I/O context on `pool` (fails when the pool does not exist).
    pub fn pool(self: &Arc<Self>, pool: &str) -> Result<Arc<Pool>, RbdError> {
        let name = cstr("pool", pool)?;
        let mut io: IoCtx = ptr::null_mut();
        // SAFETY: a connected handle; out-pointer to a local.
        let rc = unsafe { (self.lib.rados_ioctx_create)(self.handle, name.as_ptr(), &mut io) };
        if rc < 0 {
            return Err(RbdError::call(format!("opening pool {pool}"), rc.into()));
        }
        Ok(Arc::new(Pool { cluster: self.clone(), io, name: pool.to_owned() }))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // SAFETY: the handle came from rados_create2 and every pool holds an Arc to
        // us, so none is left when we shut down.
        unsafe { (self.lib.rados_shutdown)(self.handle) }
    }
}

/// A pool: RBD images and plain RADOS objects live in one.
pub struct Pool {
    pub(crate) cluster: Arc<Cluster>,
    pub(crate) io: IoCtx,
    name: String,
}

// SAFETY: librados I/O contexts are thread-safe for I/O; we never change their settings.
unsafe impl Send for Pool {}
// SAFETY: as above.
unsafe impl Sync for Pool {}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("name", &self.name).finish()
    }
}

impl Pool {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn lib(&self) -> &'static Lib {
        self.cluster.lib
    }

    /// Write a whole RADOS object (replacing it).
    pub fn write_object(&self, oid: &str, data: &[u8]) -> Result<(), RbdError> {
        let o = cstr("object", oid)?;
        // SAFETY: a live context; `data` is valid for its length during the call.
        let rc = unsafe { (self.lib().rados_write_full)(self.io, o.as_ptr(), data.as_ptr().cast(), data.len()) };
        if rc < 0 { Err(RbdError::call(format!("writing object {oid}"), rc.into())) } else { Ok(()) }
    }

    /// A whole RADOS object; `None` when it does not exist.
    pub fn read_object(&self, oid: &str) -> Result<Option<Vec<u8>>, RbdError> {
        let o = cstr("object", oid)?;
        let (mut size, mut mtime) = (0u64, 0i64);
        // SAFETY: a live context; out-pointers to locals.
        let rc = unsafe { (self.lib().rados_stat)(self.io, o.as_ptr(), &mut size, &mut mtime) };
        if rc == -2 {
            return Ok(None);
        }
        if rc < 0 {
            return Err(RbdError::call(format!("stat of object {oid}"), rc.into()));
        }
        let mut buf = vec![0u8; size as usize];
        // SAFETY: `buf` is valid for `size` bytes.
        let rc = unsafe { (self.lib().rados_read)(self.io, o.as_ptr(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if rc < 0 {
            return Err(RbdError::call(format!("reading object {oid}"), rc.into()));
        }
        buf.truncate(rc as usize);
        Ok(Some(buf))
    }

    /// Remove a RADOS object; `false` when there was none.
    pub fn remove_object(&self, oid: &str) -> Result<bool, RbdError> {
        let o = cstr("object", oid)?;
        // SAFETY: a live context.
        match unsafe { (self.lib().rados_remove)(self.io, o.as_ptr()) } {
            0 => Ok(true),
            -2 => Ok(false),
            rc => Err(RbdError::call(format!("removing object {oid}"), rc.into())),
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // SAFETY: created by rados_ioctx_create; images hold an Arc to us.
        unsafe { (self.lib().rados_ioctx_destroy)(self.io) }
    }
}
