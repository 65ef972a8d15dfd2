//! `holdfast:backup/rbd` (since 0.2.2): the backend's granted RBD pools, every call
//! checked against the operation's scope ([`RbdScope`]) and every byte moved host-side
//! (`holdfast_volume::rbd_transfer`). A denied or malformed request traps, as in
//! `objects`: the operation fails with the reason, whatever the driver does next.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use holdfast_chunk::ChangeSource;
use holdfast_driver::RbdGrant;
use holdfast_rbd::{Cluster, ClusterConfig, Heartbeat, Image, Pool, RbdError as HostRbdError};
use holdfast_volume::rbd_transfer::{self, Since, Transfer, TransferError};
use wasmtime::component::Resource;

use crate::bindings::holdfast::backup::rbd::{
    Cluster as WitCluster, ExportReport, Host, ImportReport, RbdError, SourceKind,
};
use crate::imports::volume::{SourceRes, TargetRes};
use crate::limits::{MAX_RBD_OBJECT, RBD_LET_GO as LET_GO, RBD_QUIET as QUIET, RBD_RESPITE as RESPITE};
use crate::state::HostState;

type Answer<T> = wasmtime::Result<Result<T, RbdError>>;

/// One connection per backend, shared by its operations, made on first use and again
/// after a failure (a cluster that was down comes back without a restart).
pub struct RbdLink {
    grant: RbdGrant,
    cluster: Mutex<Option<Arc<Cluster>>>,
    /// When the cluster last stopped answering.
    stalled: Mutex<Option<Instant>>,
    /// Connections dropped after a failure whose handles work given up on may still
    /// hold: an image it opened keeps its exclusive lock until closed.
    retired: Mutex<Vec<Weak<Cluster>>>,
}

impl RbdLink {
    pub fn new(grant: RbdGrant) -> Arc<RbdLink> {
        Arc::new(RbdLink { grant, cluster: Mutex::default(), stalled: Mutex::default(), retired: Mutex::default() })
    }

    /// Only from inside [`RbdLink::call`]: connecting and opening a pool may block.
    fn pool(&self, name: &str) -> Result<Arc<Pool>, HostRbdError> {
        if let Some(at) = *self.stalled.lock().expect("stalled")
            && at.elapsed() < RESPITE
        {
            return Err(HostRbdError::Stalled {
                what: format!("reaching pool {name} (not retried for {} s)", RESPITE.as_secs()),
                after: QUIET,
            });
        }
        // Connect without holding the lock: a call given up on may still hold it.
        let known = self.cluster.lock().expect("cluster").clone();
        let cluster = match known {
            Some(c) => c,
            None => {
                self.wait_for_retired();
                let config = ClusterConfig {
                    conf: self.grant.conf.clone(),
                    user: self.grant.user.clone(),
                    ..Default::default()
                };
                let new = Cluster::connect(&config)?;
                self.cluster.lock().expect("cluster").get_or_insert(new).clone()
            }
        };
        cluster.pool(name)
    }

    /// Before connecting anew, wait until the connections dropped after a failure have
    /// let go of everything: a transfer given up on while the cluster was frozen goes
    /// on writing when it thaws, and its image's exclusive lock would stall the next
    /// backup's writes to the same base image (or two writers would share it).
    fn wait_for_retired(&self) {
        let start = Instant::now();
        loop {
            let held = {
                let mut retired = self.retired.lock().expect("retired");
                retired.retain(|c| c.strong_count() > 0);
                retired.len()
            };
            if held == 0 {
                return;
            }
            if start.elapsed() >= LET_GO {
                // A handle librbd never gives back must not wedge the backend for good.
                tracing::warn!(
                    held,
                    waited_s = LET_GO.as_secs(),
                    "connections given up on still hold images; connecting anyway (writes to those images may wait for their lock)"
                );
                self.retired.lock().expect("retired").clear();
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Run `work` against the cluster on a thread of its own, given up after [`QUIET`]
    /// without an answer or a heartbeat ([`holdfast_rbd::bounded`]).
    fn call<T, E>(
        self: &Arc<Self>,
        call: &str,
        work: impl FnOnce(&RbdLink, &Heartbeat) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<HostRbdError> + Send + 'static,
    {
        let link = self.clone();
        holdfast_rbd::bounded(&format!("rbd.{call}"), QUIET, move |beat| work(&link, beat))
    }

    /// Drop the connection after an error that may mean the cluster went away.
    fn forget_on(&self, e: &HostRbdError) {
        if e.is_stalled() {
            *self.stalled.lock().expect("stalled") = Some(Instant::now());
        }
        if !e.is_not_found() {
            // Shut down off this thread: a dead cluster's handle may take its time.
            if let Some(old) = self.cluster.lock().expect("cluster").take() {
                self.retired.lock().expect("retired").push(Arc::downgrade(&old));
                let _ = std::thread::Builder::new().name("hf-rbd-drop".into()).spawn(move || drop(old));
            }
        }
    }
}

/// What the current operation may touch (docs/ceph-driver.md, "Confinement").
#[derive(Debug, Clone, Default)]
pub enum RbdRole {
    /// setup, export-record, import-record: reach the pools, touch nothing.
    #[default]
    Control,
    Backup {
        volume: String,
        id: String,
        parent: Option<String>,
        from_snapshot: bool,
    },
    Restore {
        volume: String,
        id: String,
    },
    Delete {
        volume: String,
        id: String,
    },
}

pub struct RbdScope {
    pub link: Arc<RbdLink>,
    pub role: RbdRole,
    /// Images this backup created (the only ones it may remove: its own cleanup).
    created: Vec<(String, String)>,
}

impl RbdScope {
    pub fn new(link: Arc<RbdLink>, role: RbdRole) -> RbdScope {
        RbdScope { link, role, created: Vec::new() }
    }

    fn volume(&self) -> Option<&str> {
        match &self.role {
            RbdRole::Control => None,
            RbdRole::Backup { volume, .. } | RbdRole::Restore { volume, .. } | RbdRole::Delete { volume, .. } => {
                Some(volume)
            }
        }
    }

    fn backup_id(&self) -> Option<&str> {
        match &self.role {
            RbdRole::Control => None,
            RbdRole::Backup { id, .. } | RbdRole::Restore { id, .. } | RbdRole::Delete { id, .. } => Some(id),
        }
    }

    fn pool_ok(&self, pool: &str) -> Result<(), String> {
        if self.link.grant.pools.iter().any(|p| p == pool) {
            Ok(())
        } else {
            Err(format!("pool {pool:?} is not granted (grants.rbd.pools: {:?})", self.link.grant.pools))
        }
    }

    /// An image of the operation's volume: `volume-<volume id>.backup.<name>`.
    fn image_ok(&self, pool: &str, image: &str) -> Result<(), String> {
        self.pool_ok(pool)?;
        let Some(volume) = self.volume() else { return Err("this operation touches no image".into()) };
        let prefix = format!("volume-{volume}.backup.");
        match image.strip_prefix(&prefix) {
            Some(rest) if plain(rest) => Ok(()),
            _ => Err(format!("image {image:?} is not one of this volume's backup images ({prefix}…)")),
        }
    }

    /// A snapshot of the operation's backup: `backup.<id>.snap.<time>`.
    fn own_snap_ok(&self, snap: &str) -> Result<(), String> {
        let Some(id) = self.backup_id() else { return Err("this operation touches no snapshot".into()) };
        let prefix = format!("backup.{id}.snap.");
        match snap.strip_prefix(&prefix) {
            Some(time)
                if !time.is_empty() && time.len() <= 32 && time.bytes().all(|b| b.is_ascii_digit() || b == b'.') =>
            {
                Ok(())
            }
            _ => Err(format!("snapshot {snap:?} is not this backup's ({prefix}<unix time>)")),
        }
    }

    fn own_object_ok(&self, pool: &str, name: &str) -> Result<(), String> {
        self.pool_ok(pool)?;
        match self.backup_id() {
            Some(id) if name == format!("backup.{id}.meta") => Ok(()),
            _ => Err(format!("object {name:?} is not this backup's (backup.<id>.meta)")),
        }
    }

    fn is_backup(&self) -> bool {
        matches!(self.role, RbdRole::Backup { .. })
    }

    fn is_delete(&self) -> bool {
        matches!(self.role, RbdRole::Delete { .. })
    }
}

/// A name librbd and our scope can both take at face value.
fn plain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn deny<T>(call: &str, why: String) -> wasmtime::Result<T> {
    Err(wasmtime::Error::msg(format!("rbd.{call}: denied: {why}")))
}

fn failed(e: HostRbdError) -> RbdError {
    if e.is_not_found() { RbdError::NotFound(e.to_string()) } else { RbdError::Failed(e.to_string()) }
}

fn transfer_failed(e: TransferError) -> RbdError {
    match e {
        TransferError::Cancelled => RbdError::Cancelled,
        e if e.is_not_found() => RbdError::NotFound(e.to_string()),
        e => RbdError::Failed(e.to_string()),
    }
}

fn scope<'a>(rbd: &'a mut Option<RbdScope>, call: &str) -> wasmtime::Result<&'a mut RbdScope> {
    rbd.as_mut()
        .ok_or_else(|| wasmtime::Error::msg(format!("rbd.{call}: this backend is granted no RBD pools (grants.rbd)")))
}

macro_rules! check {
    ($call:literal, $r:expr) => {
        if let Err(why) = $r {
            return deny($call, why);
        }
    };
}

/// Run `work` on the backend's cluster, bounded; an error that may mean the cluster
/// went away drops the connection.
fn on_cluster<T: Send + 'static>(
    link: &Arc<RbdLink>,
    call: &str,
    work: impl FnOnce(&RbdLink) -> Result<T, HostRbdError> + Send + 'static,
) -> Result<T, RbdError> {
    link.call(call, move |l, _| work(l)).inspect_err(|e| link.forget_on(e)).map_err(failed)
}

/// A transfer on the backend's cluster, bounded while it moves: each piece done counts
/// toward the operation's progress (`done`) and beats the call's heartbeat; an RBD error
/// that may mean the cluster went away drops the connection, as in [`on_cluster`].
fn moving<T: Send + 'static>(
    link: &Arc<RbdLink>,
    call: &str,
    done: Arc<AtomicU64>,
    work: impl FnOnce(&RbdLink, &(dyn Fn(u64) + Sync)) -> Result<T, TransferError> + Send + 'static,
) -> Result<T, TransferError> {
    link.call(call, move |l, beat| {
        let beat = beat.clone();
        let progress = move |n| {
            done.fetch_add(n, Ordering::Relaxed);
            beat.beat();
        };
        work(l, &progress)
    })
    .inspect_err(|e| {
        if let TransferError::Rbd(e) = e {
            link.forget_on(e);
        }
    })
}

impl Host for HostState {
    fn connect(&mut self, pool: String) -> Answer<WitCluster> {
        let s = scope(&mut self.rbd, "connect")?;
        check!("connect", s.pool_ok(&pool));
        let grant = s.link.grant.clone();
        Ok(on_cluster(&s.link, "connect", move |l| l.pool(&pool).map(drop)).map(|()| WitCluster {
            conf: grant.conf.map(|p| p.display().to_string()).unwrap_or_default(),
            user: grant.user,
            pools: grant.pools,
        }))
    }

    fn describe_source(&mut self, source: Resource<SourceRes>) -> wasmtime::Result<SourceKind> {
        let from_snapshot =
            matches!(self.rbd.as_ref().map(|s| &s.role), Some(RbdRole::Backup { from_snapshot: true, .. }));
        if from_snapshot {
            return Ok(SourceKind::Snapshot);
        }
        Ok(match self.table.get(&source)?.volume.backend() {
            "rbd" => SourceKind::RbdVolume,
            _ => SourceKind::Other,
        })
    }

    fn create_image(
        &mut self,
        pool: String,
        image: String,
        size: u64,
        stripe_unit: u64,
        stripe_count: u64,
    ) -> Answer<()> {
        let s = scope(&mut self.rbd, "create-image")?;
        check!("create-image", s.image_ok(&pool, &image));
        let (volume, id) = match &s.role {
            RbdRole::Backup { volume, id, .. } => (volume.clone(), id.clone()),
            _ => return deny("create-image", "only a backup creates images".into()),
        };
        if image != format!("volume-{volume}.backup.{id}") && image != format!("volume-{volume}.backup.base") {
            return deny(
                "create-image",
                format!("a backup creates volume-{volume}.backup.{id} or …backup.base, not {image:?}"),
            );
        }
        let (p, i) = (pool.clone(), image.clone());
        let r = on_cluster(&s.link, "create-image", move |l| {
            l.pool(&p)?.create_striped_image(&i, size, stripe_unit, stripe_count)
        });
        if r.is_ok() {
            s.created.push((pool, image));
        }
        Ok(r)
    }

    fn remove_image(&mut self, pool: String, image: String) -> Answer<bool> {
        let s = scope(&mut self.rbd, "remove-image")?;
        check!("remove-image", s.image_ok(&pool, &image));
        let mine = s.created.iter().any(|(p, i)| *p == pool && *i == image);
        if !(s.is_delete() || (s.is_backup() && mine)) {
            return deny(
                "remove-image",
                format!("{image:?}: a backup removes only an image it created, a delete one left without snapshots"),
            );
        }
        // librbd refuses an image that still has snapshots: another backup's data stays.
        // A handle closed a moment ago may still watch it ("busy"): Cinder retries too.
        Ok(on_cluster(&s.link, "remove-image", move |l| {
            let p = l.pool(&pool)?;
            let mut tries = 0;
            loop {
                match p.remove_image(&image) {
                    Err(e) if e.errno() == Some(16) && tries < 3 => {
                        tries += 1;
                        std::thread::sleep(Duration::from_secs(1));
                    }
                    r => return r,
                }
            }
        }))
    }

    fn snapshots(&mut self, pool: String, image: String) -> Answer<Vec<String>> {
        let s = scope(&mut self.rbd, "snapshots")?;
        check!("snapshots", s.image_ok(&pool, &image));
        Ok(on_cluster(&s.link, "snapshots", move |l| {
            let img = Image::open(&l.pool(&pool)?, &image)?;
            Ok(img.snapshots()?.into_iter().map(|s| s.name).collect())
        }))
    }

    fn remove_snapshot(&mut self, pool: String, image: String, snap: String) -> Answer<bool> {
        let s = scope(&mut self.rbd, "remove-snapshot")?;
        check!("remove-snapshot", s.image_ok(&pool, &image));
        check!("remove-snapshot", s.own_snap_ok(&snap));
        if !(s.is_backup() || s.is_delete()) {
            return deny("remove-snapshot", "only a backup (its own) or a delete removes snapshots".into());
        }
        Ok(on_cluster(&s.link, "remove-snapshot", move |l| match Image::open(&l.pool(&pool)?, &image) {
            Ok(img) => img.snap_remove(&snap),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }))
    }

    fn import_from(
        &mut self,
        source: Resource<SourceRes>,
        since: Option<String>,
        pool: String,
        image: String,
        snap: String,
        piece: u64,
    ) -> Answer<ImportReport> {
        let s = scope(&mut self.rbd, "import-from")?;
        check!("import-from", s.image_ok(&pool, &image));
        check!("import-from", s.own_snap_ok(&snap));
        let RbdRole::Backup { parent, .. } = &s.role else {
            return deny("import-from", "only a backup imports".into());
        };
        if since.is_some() && since != *parent {
            return deny("import-from", format!("since {since:?} is not this backup's parent ({parent:?})"));
        }
        let fresh = s.created.iter().any(|(p, i)| *p == pool && *i == image);
        let link = s.link.clone();
        let volume = self.table.get(&source)?.volume.clone();
        let (done, cancel, check) = (self.op.done.clone(), self.op.cancel.clone(), self.op.diff_check);
        let (p, i, sn) = (pool.clone(), image.clone(), snap.clone());
        let r = moving(&link, "import-from", done, move |l, progress| {
            let img = Arc::new(Image::open(&l.pool(&p)?, &i)?);
            // The image's snapshot of the parent, which the diff applies on top of.
            let parent_snap = match &since {
                Some(id) => {
                    let prefix = format!("backup.{id}.snap.");
                    img.snapshots()?.into_iter().map(|s| s.name).find(|n| n.starts_with(&prefix))
                }
                None => None,
            };
            let how = match (&since, &parent_snap) {
                (Some(id), Some(image_snap)) => Since::Parent { id, image_snap },
                _ if fresh => Since::Nothing,
                _ => Since::Overwrite,
            };
            let t = Transfer { piece, cancel: &cancel, progress, check };
            let mut report = rbd_transfer::import(&volume, &img, how, &sn, &t)?;
            if let (Some(id), None) = (&since, &parent_snap) {
                report.fallback = Some(format!("the image has no snapshot of backup {id}"));
            }
            Ok(report)
        });
        let report = match r {
            Ok(report) => report,
            Err(e) => return Ok(Err(transfer_failed(e))),
        };
        let source = if report.by_diff { ChangeSource::RbdDiff } else { ChangeSource::Full };
        tracing::info!(change_source = source.as_str(), read = report.bytes_read, written = report.bytes_written,
            fallback = ?report.fallback, "imported into rbd:{pool}/{image}@{snap}");
        *self.op.change_source.lock().expect("change source") = Some(source);
        self.op.moved.fetch_add(report.bytes_read, Ordering::Relaxed);
        Ok(Ok(ImportReport {
            by_diff: report.by_diff,
            bytes_read: report.bytes_read,
            bytes_written: report.bytes_written,
            fallback: report.fallback,
        }))
    }

    fn export_to(
        &mut self,
        pool: String,
        image: String,
        snap: String,
        target: Resource<TargetRes>,
        discard_excess: bool,
    ) -> Answer<ExportReport> {
        let s = scope(&mut self.rbd, "export-to")?;
        check!("export-to", s.image_ok(&pool, &image));
        check!("export-to", s.own_snap_ok(&snap));
        if !matches!(s.role, RbdRole::Restore { .. }) {
            return deny("export-to", "only a restore exports".into());
        }
        let link = s.link.clone();
        let (sink, is_new) = {
            let t = self.table.get(&target)?;
            (t.sink.clone(), t.is_new)
        };
        let (done, cancel) = (self.op.done.clone(), self.op.cancel.clone());
        let r = moving(&link, "export-to", done, move |l, progress| {
            let img = Arc::new(Image::open_read_only(&l.pool(&pool)?, &image, Some(&snap))?);
            let t = Transfer { piece: rbd_transfer::MAX_PIECE, cancel: &cancel, progress, check: 0.0 };
            rbd_transfer::export(&img, &sink, is_new, discard_excess, &t)
        });
        Ok(r.map(|r| ExportReport { by_diff: r.by_diff, bytes_written: r.bytes_written }).map_err(transfer_failed))
    }

    fn write_object(&mut self, pool: String, name: String, data: Vec<u8>) -> Answer<()> {
        let s = scope(&mut self.rbd, "write-object")?;
        check!("write-object", s.own_object_ok(&pool, &name));
        if !s.is_backup() {
            return deny("write-object", "only a backup writes its object".into());
        }
        if data.len() > MAX_RBD_OBJECT {
            return Ok(Err(RbdError::Failed(format!(
                "{} bytes is over the {MAX_RBD_OBJECT}-byte object limit",
                data.len()
            ))));
        }
        Ok(on_cluster(&s.link, "write-object", move |l| l.pool(&pool)?.write_object(&name, &data)))
    }

    fn read_object(&mut self, pool: String, name: String) -> Answer<Option<Vec<u8>>> {
        let s = scope(&mut self.rbd, "read-object")?;
        check!("read-object", s.own_object_ok(&pool, &name));
        let n = name.clone();
        match on_cluster(&s.link, "read-object", move |l| l.pool(&pool)?.read_object(&n)) {
            Ok(Some(d)) if d.len() > MAX_RBD_OBJECT => {
                Ok(Err(RbdError::Failed(format!("object {name} is over the {MAX_RBD_OBJECT}-byte limit"))))
            }
            r => Ok(r),
        }
    }

    fn remove_object(&mut self, pool: String, name: String) -> Answer<bool> {
        let s = scope(&mut self.rbd, "remove-object")?;
        check!("remove-object", s.own_object_ok(&pool, &name));
        if !(s.is_backup() || s.is_delete()) {
            return deny("remove-object", "only a backup (its own) or a delete removes objects".into());
        }
        Ok(on_cluster(&s.link, "remove-object", move |l| l.pool(&pool)?.remove_object(&name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: &str = "6e74f100-edd2-455c-87d5-83817fa854bb";
    const X: &str = "b2ff0998-639d-42d2-8cf5-0101363448dc";
    const OTHER: &str = "3bff1977-1466-44a2-b8aa-1a2a1361138e";

    fn scope(role: RbdRole) -> RbdScope {
        let grant = RbdGrant { conf: None, user: "cinder".into(), pools: vec!["backups".into()] };
        RbdScope::new(RbdLink::new(grant), role)
    }

    fn backup() -> RbdScope {
        scope(RbdRole::Backup { volume: V.into(), id: X.into(), parent: None, from_snapshot: false })
    }

    #[test]
    fn images_are_the_volumes_backup_images_in_granted_pools() {
        let s = backup();
        assert!(s.image_ok("backups", &format!("volume-{V}.backup.{X}")).is_ok());
        assert!(s.image_ok("backups", &format!("volume-{V}.backup.base")).is_ok());
        // Another pool, another volume, a source image, a path or snapshot spec in the name.
        assert!(s.image_ok("rbd", &format!("volume-{V}.backup.{X}")).unwrap_err().contains("not granted"));
        assert!(s.image_ok("backups", &format!("volume-{OTHER}.backup.{X}")).is_err());
        assert!(s.image_ok("backups", &format!("volume-{V}")).is_err());
        assert!(s.image_ok("backups", &format!("volume-{V}.backup.x/../y")).is_err());
        assert!(s.image_ok("backups", &format!("volume-{V}.backup.{X}@snap")).is_err());
        assert!(s.image_ok("backups", &format!("volume-{V}.backup.")).is_err());
        // Setup reaches the pool and names no image.
        assert!(scope(RbdRole::Control).image_ok("backups", &format!("volume-{V}.backup.{X}")).is_err());
    }

    #[test]
    fn snapshots_and_objects_are_the_operations_backups() {
        let s = backup();
        assert!(s.own_snap_ok(&format!("backup.{X}.snap.1796225828.124401")).is_ok());
        assert!(s.own_snap_ok(&format!("backup.{OTHER}.snap.1796225828.124401")).is_err());
        assert!(s.own_snap_ok(&format!("backup.{X}.snap.")).is_err());
        assert!(s.own_snap_ok(&format!("backup.{X}.snap.1; rm")).is_err());
        assert!(s.own_snap_ok("holdfast.snapshot.x").is_err());
        assert!(s.own_object_ok("backups", &format!("backup.{X}.meta")).is_ok());
        assert!(s.own_object_ok("backups", &format!("backup.{OTHER}.meta")).is_err());
        assert!(s.own_object_ok("rbd", &format!("backup.{X}.meta")).is_err());
        let d = scope(RbdRole::Delete { volume: V.into(), id: OTHER.into() });
        assert!(d.own_snap_ok(&format!("backup.{X}.snap.1")).is_err(), "a delete removes its own backup's only");
        assert!(d.is_delete() && !d.is_backup());
    }
}
