//! The posix/NFS backup driver: Cinder's chunked layout (the SDK's [`chunked`] driver)
//! in the directory the host grants at `/backup`. Byte-for-byte what Cinder's
//! PosixBackupDriver writes and reads (shared/docs/cinder-backup.md §4), with zstd as
//! the default compression. This file is the whole driver: an object store over a
//! directory, and the one line that makes it a Cinder chunked driver.
//!
//! [`chunked`]: holdfast_driver_sdk::chunked

use std::cell::RefCell;
use std::collections::BTreeSet;

use holdfast_driver_sdk::DriverError;
use holdfast_driver_sdk::chunked::{ChunkedDriver, ObjectStore};
use holdfast_driver_sdk::settings::Settings;
use holdfast_driver_sdk::store::Store;

/// Where the host mounts the granted directory.
const MOUNT: &str = "/backup";

fn io_err(what: &str, path: &str, e: std::io::Error) -> DriverError {
    DriverError::Io(format!("{what} {path}: {e}"))
}

/// Containers are directories, objects files. Writes are synced in batches by
/// [`ObjectStore::flush`], not one by one.
pub struct Directory {
    store: Store,
    /// Files written since the last flush.
    unsynced: RefCell<Vec<String>>,
}

impl Directory {
    /// The store at `root`: the granted mount in a component, a host path natively.
    pub fn open(root: &str) -> Result<Directory, DriverError> {
        Ok(Directory { store: Store::open(root)?, unsynced: RefCell::default() })
    }
}

impl ObjectStore for Directory {
    fn put(&self, container: &str, name: &str, data: &[u8]) -> Result<(), DriverError> {
        let rel = format!("{container}/{name}");
        self.store.write_unsynced(&rel, data)?;
        self.unsynced.borrow_mut().push(rel);
        Ok(())
    }

    fn get(&self, container: &str, name: &str) -> Result<Vec<u8>, DriverError> {
        self.store.read(&format!("{container}/{name}"))
    }

    fn list(&self, container: &str, prefix: &str) -> Result<BTreeSet<String>, DriverError> {
        let dir = self.store.path(container);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
            Err(e) => return Err(io_err("listing", &dir, e)),
        };
        Ok(entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).filter(|n| n.starts_with(prefix)).collect())
    }

    fn delete(&self, container: &str, name: &str) -> Result<(), DriverError> {
        let path = self.store.path(&format!("{container}/{name}"));
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err("removing", &path, e)),
            _ => Ok(()),
        }
    }

    /// The files, then the directory's entries.
    fn flush(&self, container: &str) -> Result<(), DriverError> {
        for rel in self.unsynced.borrow_mut().drain(..) {
            self.store.sync(&rel)?;
        }
        self.store.sync(container)
    }

    fn create_container(&self, container: &str) -> Result<(), DriverError> {
        let dir = self.store.path(container);
        std::fs::create_dir_all(&dir).map_err(|e| io_err("creating", &dir, e))
    }

    /// Empty container directories go too (Cinder leaves them behind).
    fn cleanup_container(&self, container: &str) {
        let mut dir = container.to_owned();
        while !dir.is_empty() && std::fs::remove_dir(self.store.path(&dir)).is_ok() {
            dir = dir.rsplit_once('/').map(|(parent, _)| parent.to_owned()).unwrap_or_default();
        }
    }

    /// Cinder's check_for_setup_error: the directory must exist and take a file.
    fn check(&self) -> Result<(), DriverError> {
        let probe = ".holdfast-setup-probe";
        self.store.write_unsynced(probe, b"ok")?; // writability is the question, not durability
        std::fs::remove_file(self.store.path(probe)).map_err(|e| io_err("removing", probe, e))
    }
}

/// The driver; exported as the component's `driver` interface in the wasm build.
pub struct Posix;

impl ChunkedDriver for Posix {
    type Store = Directory;
    const SERVICE: &'static str = "cinder.backup.drivers.posix.PosixBackupDriver";

    fn open(_settings: &Settings) -> Result<Directory, DriverError> {
        Directory::open(MOUNT)
    }
}

holdfast_driver_sdk::chunked_driver!(Posix, "posix");
