//! The posix/NFS backup driver: Cinder's chunked layout (the SDK's [`chunked`] driver)
//! in the backend's object store, which the host keeps (`grants.store`) and confines
//! to the backup each operation is for. Byte-for-byte what Cinder's
//! PosixBackupDriver writes and reads (shared/docs/cinder-backup.md §4): containers
//! are directories, objects files, with zstd as the default compression. The host
//! does the file work (`holdfast_store`); this is the one line that makes it Cinder's
//! chunked driver.
//!
//! [`chunked`]: holdfast_driver_sdk::chunked

use holdfast_driver_sdk::DriverError;
use holdfast_driver_sdk::chunked::ChunkedDriver;
use holdfast_driver_sdk::objects::HostObjects;
use holdfast_driver_sdk::settings::Settings;

/// The driver; exported as the component's `driver` interface in the wasm build.
pub struct Posix;

impl ChunkedDriver for Posix {
    type Store = HostObjects;
    const SERVICE: &'static str = "cinder.backup.drivers.posix.PosixBackupDriver";

    fn open(_settings: &Settings) -> Result<HostObjects, DriverError> {
        Ok(HostObjects)
    }
}

holdfast_driver_sdk::chunked_driver!(Posix, "posix");
