//! A backup driver to copy (docs/writing-a-driver.md walks through it).
//!
//! Everything Cinder-specific — chunking, incremental backups, the metadata and
//! sha256file, md5 checks, cleanup of a failed backup — comes from the SDK's
//! chunked driver. A driver says where objects go: here, files in the directory the
//! operator grants at `/backup`, one file per object, each written durably. Replace
//! [`Files`] with your storage (an object store's API over `wasi:http`, a vendor's
//! appliance) and rename the service.

use std::collections::BTreeSet;

use holdfast_driver_sdk::DriverError;
use holdfast_driver_sdk::chunked::{ChunkedDriver, ObjectStore};
use holdfast_driver_sdk::settings::Settings;
use holdfast_driver_sdk::store::Store;

/// Objects as files: `<container>/<name>` under the granted directory.
pub struct Files(Store);

impl ObjectStore for Files {
    fn put(&self, container: &str, name: &str, data: &[u8]) -> Result<(), DriverError> {
        // Durable when it returns, so `flush` has nothing left to do.
        self.0.write(&format!("{container}/{name}"), data)
    }

    fn get(&self, container: &str, name: &str) -> Result<Vec<u8>, DriverError> {
        self.0.read(&format!("{container}/{name}"))
    }

    fn list(&self, container: &str, prefix: &str) -> Result<BTreeSet<String>, DriverError> {
        let Ok(entries) = std::fs::read_dir(self.0.path(container)) else {
            return Ok(BTreeSet::new()); // no container yet: no objects
        };
        Ok(entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).filter(|n| n.starts_with(prefix)).collect())
    }

    fn delete(&self, container: &str, name: &str) -> Result<(), DriverError> {
        match std::fs::remove_file(self.0.path(&format!("{container}/{name}"))) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(DriverError::Io(format!("removing {name}: {e}"))),
            _ => Ok(()),
        }
    }

    fn create_container(&self, container: &str) -> Result<(), DriverError> {
        std::fs::create_dir_all(self.0.path(container)).map_err(|e| DriverError::Io(format!("{container}: {e}")))
    }
}

/// The driver. `SERVICE` is what each backup records as its `service`.
pub struct Template;

impl ChunkedDriver for Template {
    type Store = Files;
    const SERVICE: &'static str = "holdfast.drivers.template.TemplateBackupDriver";

    /// Settings come from the backend's `settings` in the host's config file.
    fn open(settings: &Settings) -> Result<Files, DriverError> {
        let mount = settings.get("mount").unwrap_or("/backup");
        Ok(Files(Store::open(mount)?))
    }
}

holdfast_driver_sdk::chunked_driver!(Template, "template");
