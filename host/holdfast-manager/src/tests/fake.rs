//! An in-process [`BackupDriver`]: whole-volume copies kept in memory, so the
//! manager's state machine can be tested without compiling or loading a component.
//! It can be told to fail a call, or to hold a backup until released.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};

use holdfast_chunk::AlignedBuf;
use holdfast_driver::{
    BackupDriver, BackupResult, ChunkSink, ChunkSource, DriverDescription, DriverError, DriverFailure, DriverId,
    OpContext, RestoreOutcome,
};
use holdfast_types::Backup;

const PIECE: u64 = 1 << 20;

/// One stored backup: the volume's bytes and its volume_meta.
type Stored = (Vec<u8>, Option<String>);

#[derive(Default)]
pub struct FakeDriver {
    id: Option<DriverId>,
    store: Mutex<HashMap<String, Stored>>,
    /// Calls that fail with an I/O error ("setup", "backup", …).
    failing: Mutex<Vec<&'static str>>,
    /// While set, a backup waits (checking for cancellation) before it reads.
    hold: (Mutex<bool>, Condvar),
    /// While set, a delete waits (a driver hung in delete).
    hold_delete: (Mutex<bool>, Condvar),
    /// When set, a backup records this other backup's object prefix as its own (a
    /// hostile driver reaching for another backup's objects).
    steal: Mutex<Option<String>>,
    /// Backups it was asked to delete.
    deleted: Mutex<Vec<String>>,
    /// What it reports as its `instances` grant.
    instances: Option<u32>,
}

impl FakeDriver {
    pub fn new() -> Arc<FakeDriver> {
        Arc::new(FakeDriver { id: Some(fake_id()), ..Default::default() })
    }

    /// A fake whose backend allows `n` calls at once.
    pub fn with_instances(n: u32) -> Arc<FakeDriver> {
        Arc::new(FakeDriver { id: Some(fake_id()), instances: Some(n), ..Default::default() })
    }

    pub fn fail(&self, call: &'static str) {
        self.failing.lock().unwrap().push(call);
    }

    pub fn heal(&self) {
        self.failing.lock().unwrap().clear();
    }

    pub fn hold_backups(&self, on: bool) {
        *self.hold.0.lock().unwrap() = on;
        self.hold.1.notify_all();
    }

    pub fn hold_deletes(&self, on: bool) {
        *self.hold_delete.0.lock().unwrap() = on;
        self.hold_delete.1.notify_all();
    }

    pub fn steal_location_of(&self, backup_id: &str) {
        *self.steal.lock().unwrap() = Some(backup_id.to_owned());
    }

    pub fn was_deleted(&self, backup_id: &str) -> bool {
        self.deleted.lock().unwrap().iter().any(|d| d == backup_id)
    }

    pub fn stored(&self, backup_id: &str) -> bool {
        self.store.lock().unwrap().contains_key(backup_id)
    }

    fn check(&self, call: &'static str) -> Result<(), DriverError> {
        if self.failing.lock().unwrap().contains(&call) {
            return Err(DriverError::Driver {
                driver: "fake".into(),
                op: call,
                error: DriverFailure::Io(format!("{call} told to fail")),
            });
        }
        Ok(())
    }
}

fn fake_id() -> DriverId {
    DriverId { name: "fake".into(), version: "1.0.0".into(), sha256: "0".repeat(64), wit_version: "0.1.0".into() }
}

fn cancelled(op: &'static str) -> DriverError {
    DriverError::Driver { driver: "fake".into(), op, error: DriverFailure::Cancelled }
}

impl BackupDriver for FakeDriver {
    fn id(&self) -> &DriverId {
        self.id.as_ref().expect("built by FakeDriver::new")
    }

    fn setup(&self) -> Result<DriverDescription, DriverError> {
        self.check("setup")?;
        Ok(DriverDescription { service: "holdfast.tests.FakeDriver".into(), supports_force_delete: true })
    }

    fn backup(
        &self,
        mut op: OpContext,
        backup: &Backup,
        _parent: Option<&Backup>,
        volume_meta: Option<&str>,
        source: Arc<dyn ChunkSource>,
    ) -> Result<BackupResult, DriverError> {
        self.check("backup")?;
        if let Some(f) = op.on_location.as_mut() {
            let prefix = self.steal.lock().unwrap().clone().unwrap_or_else(|| backup.id.clone());
            f("fake", &prefix).map_err(|why| DriverError::Host { driver: "fake".into(), message: why })?;
        }
        let mut held = self.hold.0.lock().unwrap();
        while *held {
            if op.cancel.load(Ordering::Relaxed) {
                return Err(cancelled("backup"));
            }
            held = self.hold.1.wait_timeout(held, std::time::Duration::from_millis(10)).unwrap().0;
        }
        drop(held);
        let size = source.size();
        let mut data = Vec::with_capacity(size as usize);
        let mut at = 0;
        while at < size {
            if op.cancel.load(Ordering::Relaxed) {
                return Err(cancelled("backup"));
            }
            let len = PIECE.min(size - at);
            let mut buf = AlignedBuf::new(len as usize);
            buf.set_len(len as usize);
            source.read_chunk(at, &mut buf).map_err(|e| DriverError::Driver {
                driver: "fake".into(),
                op: "backup",
                error: DriverFailure::Io(e.to_string()),
            })?;
            data.extend_from_slice(&buf);
            at += len;
            op.done.fetch_add(len, Ordering::Relaxed);
            op.moved.fetch_add(len, Ordering::Relaxed);
        }
        self.store.lock().unwrap().insert(backup.id.clone(), (data, volume_meta.map(str::to_owned)));
        Ok(BackupResult { container: "fake".into(), service_metadata: backup.id.clone(), object_count: 1 })
    }

    fn restore(
        &self,
        op: OpContext,
        chain: &[Backup],
        target: Arc<dyn ChunkSink>,
        _volume_is_new: bool,
    ) -> Result<RestoreOutcome, DriverError> {
        self.check("restore")?;
        let store = self.store.lock().unwrap();
        let not_found = |id: &str| DriverError::Driver {
            driver: "fake".into(),
            op: "restore",
            error: DriverFailure::NotFound(id.to_owned()),
        };
        let mut metas = Vec::new();
        for b in chain {
            metas.push(store.get(&b.id).ok_or_else(|| not_found(&b.id))?.1.clone());
        }
        let last = chain.last().ok_or_else(|| not_found("(empty chain)"))?;
        let (data, _) = store.get(&last.id).ok_or_else(|| not_found(&last.id))?;
        let io = |e: std::io::Error| DriverError::Driver {
            driver: "fake".into(),
            op: "restore",
            error: DriverFailure::Io(e.to_string()),
        };
        target.write_at(0, data).map_err(io)?;
        target.sync().map_err(io)?;
        op.done.fetch_add(data.len() as u64, Ordering::Relaxed);
        op.moved.fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(RestoreOutcome { volume_metas: metas })
    }

    fn delete(&self, _op: OpContext, backup: &Backup) -> Result<(), DriverError> {
        self.check("delete")?;
        let (lock, cvar) = &self.hold_delete;
        let _held = cvar.wait_while(lock.lock().unwrap(), |held| *held).unwrap();
        self.deleted.lock().unwrap().push(backup.id.clone());
        self.store.lock().unwrap().remove(&backup.id);
        Ok(())
    }

    fn export_record(&self, backup: &Backup) -> Result<String, DriverError> {
        self.check("export-record")?;
        Ok(format!("{{\"fake\": \"{}\"}}", backup.id))
    }

    fn import_record(&self, _backup: &Backup, _driver_info: &str) -> Result<(), DriverError> {
        self.check("import-record")
    }

    fn max_instances(&self) -> Option<u32> {
        self.instances
    }
}
