//! A loaded driver component and one call per Cinder driver operation.
//!
//! Every operation gets a fresh instance (about 20 µs with a pre-linked component)
//! configured by `setup` first, so no state leaks between backups and a trap only
//! poisons the instance that hit it.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use holdfast_chunk::RestoreWriter;
use holdfast_driver::untrusted::{MAX_DRIVER_TEXT_BYTES, check_record, check_result, truncate_text};
use holdfast_driver::{
    BackupDriver, BackupResult, ChunkSink, ChunkSource, DriverDescription, DriverError, DriverFailure, DriverId,
    Grants, OpContext, RestoreOutcome, VolumeFailure,
};
use holdfast_store::{LocalStore, Scope, ScopedStore};
use holdfast_types::Backup;
use wasmtime::Store;
use wasmtime::component::{HasSelf, InstancePre, Linker, Resource, ResourceTable};

use crate::bindings::exports::holdfast::backup::driver::{BackupOutcome, DriverInfo};
use crate::bindings::holdfast::backup::types::{
    BackupInfo, DriverError as WitDriverError, Setting, Timestamp, VolumeError,
};
use crate::bindings::{BackupDriver as WitBackupDriver, BackupDriverPre};
use crate::deadline::{Deadline, Watch};
use crate::engine::engine;
use crate::gate::InstanceGate;
use crate::imports::rbd::{RbdLink, RbdRole, RbdScope};
use crate::imports::volume::{SourceRes, TargetRes};
use crate::limits;
use crate::network::NetworkGate;
use crate::since_v0_1_0::{self, Driver0_1};
use crate::state::HostState;

/// The WIT `driver-error`, as the contract types it, its texts cut to
/// [`MAX_DRIVER_TEXT_BYTES`] before anything logs or stores them.
fn failure(e: WitDriverError) -> DriverFailure {
    match e {
        WitDriverError::Invalid(m) => DriverFailure::Invalid(cut(m)),
        WitDriverError::NotFound(m) => DriverFailure::NotFound(cut(m)),
        WitDriverError::Io(m) => DriverFailure::Io(cut(m)),
        WitDriverError::Cancelled => DriverFailure::Cancelled,
        WitDriverError::Volume(VolumeError::Invalid(m)) => DriverFailure::Volume(VolumeFailure::Invalid(cut(m))),
        WitDriverError::Volume(VolumeError::Corrupt(m)) => DriverFailure::Volume(VolumeFailure::Corrupt(cut(m))),
        WitDriverError::Volume(VolumeError::Io(m)) => DriverFailure::Volume(VolumeFailure::Io(cut(m))),
        WitDriverError::Other(m) => DriverFailure::Other(cut(m)),
    }
}

fn cut(text: String) -> String {
    if text.len() <= MAX_DRIVER_TEXT_BYTES { text } else { truncate_text(&text, MAX_DRIVER_TEXT_BYTES) }
}

/// A linked component, for the WIT version it was built for.
enum Pre {
    Latest(BackupDriverPre<HostState>),
    V0_1(since_v0_1_0::BackupDriverPre<HostState>),
}

/// One instance; every call takes and answers the newest WIT's types.
enum Instance {
    Latest(WitBackupDriver),
    V0_1(Driver0_1),
}

type Answer<T> = wasmtime::Result<Result<T, WitDriverError>>;

impl Instance {
    async fn setup(&self, store: &mut Store<HostState>, config: &[Setting]) -> Answer<DriverInfo> {
        match self {
            Instance::Latest(b) => b.holdfast_backup_driver().call_setup(store, config).await,
            Instance::V0_1(b) => b.setup(store, config).await,
        }
    }

    async fn backup(
        &self,
        store: &mut Store<HostState>,
        backup: &BackupInfo,
        parent: Option<&BackupInfo>,
        volume_meta: Option<&str>,
        source: Resource<SourceRes>,
    ) -> Answer<BackupOutcome> {
        match self {
            Instance::Latest(b) => {
                b.holdfast_backup_driver().call_backup(store, backup, parent, volume_meta, source).await
            }
            Instance::V0_1(b) => b.backup(store, backup, parent, volume_meta, source).await,
        }
    }

    async fn restore(
        &self,
        store: &mut Store<HostState>,
        chain: &[BackupInfo],
        target: Resource<TargetRes>,
        volume_is_new: bool,
    ) -> Answer<Vec<Option<String>>> {
        match self {
            Instance::Latest(b) => b.holdfast_backup_driver().call_restore(store, chain, target, volume_is_new).await,
            Instance::V0_1(b) => b.restore(store, chain, target, volume_is_new).await,
        }
    }

    async fn delete(&self, store: &mut Store<HostState>, backup: &BackupInfo) -> Answer<()> {
        match self {
            Instance::Latest(b) => b.holdfast_backup_driver().call_delete(store, backup).await,
            Instance::V0_1(b) => b.delete(store, backup).await,
        }
    }

    async fn export_record(&self, store: &mut Store<HostState>, backup: &BackupInfo) -> Answer<String> {
        match self {
            Instance::Latest(b) => b.holdfast_backup_driver().call_export_record(store, backup).await,
            Instance::V0_1(b) => b.export_record(store, backup).await,
        }
    }

    async fn import_record(&self, store: &mut Store<HostState>, backup: &BackupInfo, driver_info: &str) -> Answer<()> {
        match self {
            Instance::Latest(b) => b.holdfast_backup_driver().call_import_record(store, backup, driver_info).await,
            Instance::V0_1(b) => b.import_record(store, backup, driver_info).await,
        }
    }
}

/// The restore target, counting the data bytes written (zero runs become holes and
/// are not counted).
struct CountingSink {
    inner: Arc<dyn ChunkSink>,
    moved: Arc<AtomicU64>,
}

impl ChunkSink for CountingSink {
    fn size(&self) -> u64 {
        self.inner.size()
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.inner.write_at(offset, data)?;
        self.moved.fetch_add(data.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    fn zero_range(&self, offset: u64, len: u64) -> std::io::Result<()> {
        self.inner.zero_range(offset, len)
    }

    fn sync(&self) -> std::io::Result<()> {
        self.inner.sync()
    }

    fn allocated(&self) -> std::io::Result<Option<Vec<holdfast_types::Extent>>> {
        self.inner.allocated()
    }
}

/// A compiled driver with its grants and configuration.
pub struct DriverComponent {
    id: DriverId,
    /// The `instances` grant, when there is one.
    gate: Option<Arc<InstanceGate>>,
    name: String,
    pre: Pre,
    grants: Grants,
    config: Vec<Setting>,
    /// The backend's cluster connection (`grants.rbd`), shared by its operations.
    rbd: Option<Arc<RbdLink>>,
}

impl DriverComponent {
    /// Compile and link a component. Fails if it is not a `backup-driver` of a
    /// supported `holdfast:backup` version or imports anything beyond WASI (and, from
    /// 0.2.0, `wasi:http`) and our interfaces.
    pub fn load(name: &str, bytes: &[u8], grants: Grants, config: Vec<(String, String)>) -> Result<Self, DriverError> {
        Self::load_cached(name, bytes, grants, config, None)
    }

    /// [`Self::load`], keeping the compiled code in `cache` (see [`crate::compile_cache`]).
    pub fn load_cached(
        name: &str,
        bytes: &[u8],
        grants: Grants,
        config: Vec<(String, String)>,
        cache: Option<&std::path::Path>,
    ) -> Result<Self, DriverError> {
        let load_err = |e: wasmtime::Error| DriverError::Load { driver: name.to_owned(), message: format!("{e:#}") };
        let component = crate::compile_cache::compile(bytes, cache).map_err(load_err)?;
        // Which contract it was built for, before anything of it runs.
        let wit_version = crate::wit::component_wit_version(&component)
            .map_err(|e| DriverError::Load { driver: name.to_owned(), message: e.to_string() })?;
        let mut linker: Linker<HostState> = Linker::new(engine());
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(load_err)?;
        let pre = match wit_version {
            crate::wit::WitVersion::V0_1_0 => {
                since_v0_1_0::BackupDriver::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
                    .map_err(load_err)?;
                let pre: InstancePre<HostState> = linker.instantiate_pre(&component).map_err(load_err)?;
                Pre::V0_1(since_v0_1_0::BackupDriverPre::new(pre).map_err(load_err)?)
            }
            crate::wit::WitVersion::V0_2_0
            | crate::wit::WitVersion::V0_2_1
            | crate::wit::WitVersion::V0_2_2
            | crate::wit::WitVersion::V0_2_3
            | crate::wit::WitVersion::V0_2_4
            | crate::wit::WitVersion::V0_2_5
            | crate::wit::WitVersion::V0_2_6
            | crate::wit::WitVersion::V0_2_7
            | crate::wit::WitVersion::V0_2_8 => {
                wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(load_err)?;
                // Our interfaces one by one: the world's own add_to_linker would add
                // wasi:io a second time (it is wasmtime-wasi's, linked above).
                use crate::bindings::holdfast::backup::{host, objects, rbd, types, volume};
                types::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s).map_err(load_err)?;
                host::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s).map_err(load_err)?;
                volume::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s).map_err(load_err)?;
                objects::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s).map_err(load_err)?;
                rbd::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s).map_err(load_err)?;
                crate::imports::volume::link_stored_bytes(&mut linker).map_err(load_err)?;
                let pre: InstancePre<HostState> = linker.instantiate_pre(&component).map_err(load_err)?;
                Pre::Latest(BackupDriverPre::new(pre).map_err(load_err)?)
            }
        };
        let config = config.into_iter().map(|(key, value)| Setting { key, value }).collect();
        // The name and version the driver states (the SDK stamps them), else the
        // operator's name for it and "unversioned".
        let manifest = crate::manifest::read(bytes);
        let id = DriverId {
            name: manifest.name.unwrap_or_else(|| name.to_owned()),
            version: manifest.version.unwrap_or_else(|| "unversioned".to_owned()),
            sha256: holdfast_chunk::digest::sha256_hex(bytes),
            wit_version: wit_version.as_str().to_owned(),
        };
        let gate = grants.instances.map(InstanceGate::new);
        let rbd = grants.rbd.clone().map(RbdLink::new);
        Ok(DriverComponent { id, gate, name: name.to_owned(), pre, grants, config, rbd })
    }

    fn host_err(&self, message: impl Into<String>) -> DriverError {
        DriverError::Host { driver: self.name.clone(), message: message.into() }
    }

    fn store_err(&self, e: holdfast_store::StoreError) -> DriverError {
        self.host_err(format!("object store (grants.store): {e}"))
    }

    fn trap(&self, op: &'static str, e: wasmtime::Error) -> DriverError {
        // The root cause says what the guest did ("wasm `unreachable` instruction
        // executed", "cancelled"); the backtrace goes to the log, not to fail_reason.
        tracing::warn!(driver = %self.name, op, error = %cut(format!("{e:?}")), "driver trapped");
        DriverError::Trap { driver: self.name.clone(), op, message: cut(e.root_cause().to_string()) }
    }

    /// A request the network gate refused fails the operation, whatever the driver
    /// made of the refusal.
    fn check_network(&self, op: &'static str, store: &Store<HostState>) -> Result<(), DriverError> {
        match store.data().network.denied() {
            Some(why) => Err(DriverError::Trap {
                driver: self.name.clone(),
                op,
                message: cut(format!("network: denied: {why}")),
            }),
            None => Ok(()),
        }
    }

    fn failed(&self, op: &'static str, e: WitDriverError) -> DriverError {
        DriverError::Driver { driver: self.name.clone(), op, error: failure(e) }
    }

    /// The next call is a control call: a fixed deadline from now.
    fn control_call(&self, watch: &Watch, call: &'static str) {
        watch.set(Deadline::control(call, self.grants.control_timeout));
    }

    /// The next call moves volume data: stopped only when it stops moving.
    fn data_call(&self, watch: &Watch) {
        watch.set(Deadline::no_progress(self.grants.call_timeout, watch.done()));
    }

    /// A fresh instance, configured by the driver's `setup`, and the watch its calls
    /// run under.
    /// `scope` is what the operation may touch in the object store, `role` in the RBD
    /// pools.
    fn instance(
        &self,
        op: OpContext,
        scope: Scope,
        role: RbdRole,
    ) -> Result<(Store<HostState>, Instance, DriverDescription, Watch), DriverError> {
        let permit = self.gate.as_ref().map(|g| g.enter());
        // Opened for each operation (one open), so a store that appears or is fixed
        // later is picked up as a WASI grant would be.
        // The caller's token only for a backend granted it; the driver learns the
        // project (to name the account), never the token.
        let caller = op.caller.clone().filter(|_| self.grants.caller_token);
        let network =
            NetworkGate::new(&self.grants.network, self.grants.object_api, scope.clone()).with_caller(caller.clone());
        let objects = match &self.grants.store {
            Some(path) => {
                Some(ScopedStore::new(Arc::new(LocalStore::open(path).map_err(|e| self.store_err(e))?), scope))
            }
            None => None,
        };
        let wasi = crate::grants::wasi_ctx(&self.grants).map_err(|m| self.host_err(m))?;
        let memory =
            self.grants.memory_bytes.map_or(limits::MEMORY_BYTES, |m| usize::try_from(m).unwrap_or(usize::MAX));
        let watch =
            Watch::new(Deadline::control("setup", self.grants.control_timeout), op.done.clone(), op.cancel.clone());
        let state = HostState {
            wasi,
            http: wasmtime_wasi_http::WasiHttpCtx::new(),
            network,
            table: ResourceTable::new(),
            limits: crate::limiter::GuestLimiter::new(memory),
            op,
            objects,
            rbd: self.rbd.as_ref().map(|link| RbdScope::new(link.clone(), role)),
            live_chunks: 0,
            live_held: 0,
            live_streams: 0,
            _permit: permit,
        };
        let mut store = Store::new(engine(), state);
        store.limiter(|s| &mut s.limits);
        // Guest code yields to its watch (`deadline.rs`) at every epoch tick.
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        let bindings = watch
            .run(async {
                match &self.pre {
                    Pre::Latest(pre) => pre.instantiate_async(&mut store).await.map(Instance::Latest),
                    Pre::V0_1(pre) => pre.instantiate_async(&mut store).await.map(|b| Instance::V0_1(Driver0_1(b))),
                }
            })
            .map_err(|e| self.trap("instantiate", e))?;
        let config = match &caller {
            Some(c) => {
                let mut config = self.config.clone();
                config
                    .push(Setting { key: holdfast_driver::CALLER_PROJECT_SETTING.into(), value: c.project_id.clone() });
                std::borrow::Cow::Owned(config)
            }
            None => std::borrow::Cow::Borrowed(&self.config),
        };
        let info = watch.run(bindings.setup(&mut store, &config));
        // Setup reaches the endpoint too (auth, the bucket): a refused request is why it
        // failed, whatever the driver made of it (said after the reason).
        if let Some(why) = store.data().network.denied() {
            let said = match &info {
                Ok(Ok(_)) => String::new(),
                Ok(Err(e)) => format!("; the driver then failed: {}", failure(e.clone())),
                Err(e) => format!("; the driver then trapped: {}", e.root_cause()),
            };
            return Err(self.host_err(cut(format!("network: denied during setup: {why}{said}"))));
        }
        let info = info.map_err(|e| self.trap("setup", e))?.map_err(|e| self.failed("setup", e))?;
        let desc = DriverDescription { service: info.service, supports_force_delete: info.supports_force_delete };
        Ok((store, bindings, desc, watch))
    }
}

impl BackupDriver for DriverComponent {
    fn id(&self) -> &DriverId {
        &self.id
    }

    fn max_instances(&self) -> Option<u32> {
        self.grants.instances
    }

    fn confined(&self) -> bool {
        self.grants.is_confined()
    }

    /// A backend whose only storage is RBD pools (the Ceph driver) is confined by
    /// backup ids, not by object prefixes.
    fn exclusive_locations(&self) -> bool {
        let g = &self.grants;
        g.rbd.is_none() || g.store.is_some() || !g.dirs.is_empty() || !g.network.is_empty()
    }

    /// What brings a backend up: the store must take a file (Cinder's
    /// check_for_setup_error), then the driver's own setup.
    fn setup(&self) -> Result<DriverDescription, DriverError> {
        if let Some(path) = &self.grants.store {
            LocalStore::open_checked(path).map_err(|e| self.store_err(e))?;
        }
        self.instance(OpContext::default(), Scope::none(), RbdRole::Control).map(|(_, _, d, _)| d)
    }

    fn backup(
        &self,
        op: OpContext,
        backup: &Backup,
        parent: Option<&Backup>,
        volume_meta: Option<&str>,
        source: Arc<dyn ChunkSource>,
    ) -> Result<BackupResult, DriverError> {
        let role = RbdRole::Backup {
            volume: backup.volume_id.clone(),
            id: backup.id.clone(),
            parent: parent.map(|p| p.id.clone()),
            from_snapshot: backup.snapshot_id.is_some(),
        };
        let (mut store, bindings, _, watch) = self.instance(op, Scope::for_backup(parent), role)?;
        self.data_call(&watch);
        let source =
            store.data_mut().table.push(SourceRes { volume: source }).map_err(|e| self.host_err(e.to_string()))?;
        let parent = parent.map(info);
        let r = watch.run(bindings.backup(&mut store, &info(backup), parent.as_ref(), volume_meta, source));
        self.check_network("backup", &store)?;
        let BackupOutcome { container, service_metadata, object_count } =
            r.map_err(|e| self.trap("backup", e))?.map_err(|e| self.failed("backup", e))?;
        let result = BackupResult { container, service_metadata, object_count };
        check_result(&result, backup.size_bytes).map_err(|why| self.host_err(format!("backup returned {why}")))?;
        Ok(result)
    }

    fn restore(
        &self,
        op: OpContext,
        chain: &[Backup],
        target: Arc<dyn ChunkSink>,
        volume_is_new: bool,
    ) -> Result<RestoreOutcome, DriverError> {
        let workers = op.workers;
        let sink = Arc::new(CountingSink { inner: target, moved: op.moved.clone() });
        let role = match chain.last() {
            Some(b) => RbdRole::Restore { volume: b.volume_id.clone(), id: b.id.clone() },
            None => RbdRole::Control,
        };
        let (mut store, bindings, _, watch) = self.instance(op, Scope::for_restore(chain), role)?;
        self.data_call(&watch);
        let writer =
            RestoreWriter::new(sink.clone(), workers, volume_is_new).map_err(|e| self.host_err(e.to_string()))?;
        let target = store
            .data_mut()
            .table
            .push(TargetRes { writer, sink, is_new: volume_is_new })
            .map_err(|e| self.host_err(e.to_string()))?;
        let layers: Vec<BackupInfo> = chain.iter().map(info).collect();
        let handle = Resource::<TargetRes>::new_borrow(target.rep());
        let r = watch.run(bindings.restore(&mut store, &layers, handle, volume_is_new));
        self.check_network("restore", &store)?;
        let metas = r.map_err(|e| self.trap("restore", e))?.map_err(|e| self.failed("restore", e))?;
        // Whatever the driver did, nothing counts as restored until it is durable.
        let res = store.data_mut().table.delete(target).map_err(|e| self.host_err(e.to_string()))?;
        res.writer.flush().map_err(|e| self.host_err(e.to_string()))?;
        Ok(RestoreOutcome { volume_metas: metas })
    }

    fn delete(&self, op: OpContext, backup: &Backup) -> Result<(), DriverError> {
        let scope = Scope::for_delete(backup);
        let role = RbdRole::Delete { volume: backup.volume_id.clone(), id: backup.id.clone() };
        let (mut store, bindings, _, watch) = self.instance(op, scope, role)?;
        self.control_call(&watch, "delete");
        let r = watch.run(bindings.delete(&mut store, &info(backup)));
        self.check_network("delete", &store)?;
        r.map_err(|e| self.trap("delete", e))?.map_err(|e| self.failed("delete", e))?;
        // Its container goes too once nothing else is in it.
        if let Some(objects) = &mut store.data_mut().objects {
            objects.prune();
        }
        Ok(())
    }

    fn export_record(&self, backup: &Backup) -> Result<String, DriverError> {
        let (mut store, bindings, _, watch) = self.instance(OpContext::default(), Scope::none(), RbdRole::Control)?;
        self.control_call(&watch, "export-record");
        let record = watch
            .run(bindings.export_record(&mut store, &info(backup)))
            .map_err(|e| self.trap("export-record", e))?
            .map_err(|e| self.failed("export-record", e))?;
        check_record(&record).map_err(|why| self.host_err(why))?;
        Ok(record)
    }

    fn import_record(&self, backup: &Backup, driver_info: &str) -> Result<(), DriverError> {
        let (mut store, bindings, _, watch) = self.instance(OpContext::default(), Scope::none(), RbdRole::Control)?;
        self.control_call(&watch, "import-record");
        watch
            .run(bindings.import_record(&mut store, &info(backup), driver_info))
            .map_err(|e| self.trap("import-record", e))?
            .map_err(|e| self.failed("import-record", e))
    }
}

fn info(b: &Backup) -> BackupInfo {
    let t = b.created_at;
    BackupInfo {
        id: b.id.clone(),
        volume_id: b.volume_id.clone(),
        name: b.display_name.clone(),
        description: b.display_description.clone(),
        created_at: Timestamp { seconds: t.seconds(), nanoseconds: t.subsec_micros() * 1000 },
        parent_id: b.parent_id.clone(),
        container: b.container.clone(),
        service_metadata: b.service_metadata.clone(),
        size_bytes: b.size_bytes,
        object_count: u32::try_from(b.object_count).unwrap_or(u32::MAX),
    }
}
