//! The host's object store (WIT `objects`, since 0.2.1) as a chunked driver's
//! [`ObjectStore`]. The component gets no directory: the host keeps the store and lets
//! each operation touch only its own backup's objects (and read its chain), so a bug
//! here cannot reach another backup. Chunks go to disk host-side (`put-chunk`): their
//! bytes never enter the component; the sha256file is appended and read in pieces
//! (`append`, `get-range`, since 0.2.6).

use std::collections::BTreeSet;

use crate::Compression;
use crate::DriverError;
use crate::bindings::holdfast::backup::objects::{self, StoreError};
use crate::chunked::ObjectStore;
use crate::volume::{VolumeChunk, VolumeTarget};

/// The backend's store, as the host lends it to the current operation.
pub struct HostObjects;

fn driver_error(e: StoreError) -> DriverError {
    match e {
        StoreError::NotFound(m) => DriverError::NotFound(m),
        StoreError::Io(m) => DriverError::Io(m),
    }
}

impl ObjectStore for HostObjects {
    fn put(&self, container: &str, name: &str, data: &[u8]) -> Result<(), DriverError> {
        objects::put(container, name, data).map_err(driver_error)
    }

    fn put_chunk(&self, container: &str, name: &str, chunk: impl VolumeChunk) -> Result<(), DriverError> {
        match chunk.as_wit() {
            Some(handle) => objects::put_chunk(container, name, handle).map_err(driver_error),
            None => self.put(container, name, &chunk.stored_bytes()),
        }
    }

    fn get(&self, container: &str, name: &str) -> Result<Vec<u8>, DriverError> {
        objects::get(container, name).map_err(driver_error)
    }

    fn pieces(&self) -> bool {
        true
    }

    fn append(&self, container: &str, name: &str, data: &[u8]) -> Result<(), DriverError> {
        objects::append(container, name, data).map_err(driver_error)
    }

    fn get_range(&self, container: &str, name: &str, offset: u64, length: u32) -> Result<Vec<u8>, DriverError> {
        objects::get_range(container, name, offset, length).map_err(driver_error)
    }

    fn restores_onto(&self, target: &impl VolumeTarget) -> bool {
        target.as_wit().is_some()
    }

    fn restore_object(
        &self,
        container: &str,
        name: &str,
        target: &impl VolumeTarget,
        offset: u64,
        length: u64,
        compression: Compression,
        block_size: u32,
        sha256s: &[u8],
    ) -> Result<(), DriverError> {
        let Some(target) = target.as_wit() else {
            return Err(DriverError::Invalid("restore-object needs the host's target".into()));
        };
        objects::restore_object(container, name, target, offset, length, compression, block_size, sha256s)
            .map_err(DriverError::from)
    }

    fn list(&self, container: &str, prefix: &str) -> Result<BTreeSet<String>, DriverError> {
        Ok(objects::list(container, prefix).map_err(driver_error)?.into_iter().collect())
    }

    fn delete(&self, container: &str, name: &str) -> Result<(), DriverError> {
        objects::delete(container, name).map_err(driver_error)
    }

    fn flush(&self, _container: &str) -> Result<(), DriverError> {
        objects::flush().map_err(driver_error)
    }
}
