//! The Swift backup driver: Cinder's `SwiftBackupDriver` (shared/docs/cinder-backup.md
//! §4) as a component. The SDK's chunked driver writes Cinder's object-store layout —
//! `volume_<volume>/<time>/az_<zone>_backup_<id>-00001…`, `_sha256file`, `_metadata` in
//! the container `backup_swift_container` — into the SDK's [`SwiftStore`] (v1 auth over
//! `wasi:http`, several objects in flight). Cinder's options: the store's, and
//! `backup_swift_object_size` (52428800), `backup_swift_block_size` (32768),
//! `backup_compression_algorithm`.

use holdfast_driver_sdk::DriverError;
use holdfast_driver_sdk::chunked::{ChunkedDriver, Layout};
use holdfast_driver_sdk::settings::Settings;
use holdfast_driver_sdk::swift::SwiftStore;

/// The driver; exported as the component's `driver` interface in the wasm build.
pub struct Swift;

impl ChunkedDriver for Swift {
    type Store = SwiftStore;
    const SERVICE: &'static str = "cinder.backup.drivers.swift.SwiftBackupDriver";
    const LAYOUT: Layout = Layout::ObjectStore { container_option: "backup_swift_container" };
    const OBJECT_SIZE_OPTION: &'static str = "backup_swift_object_size";
    const BLOCK_SIZE_OPTION: &'static str = "backup_swift_block_size";

    fn default_file_size() -> u64 {
        52_428_800
    }

    fn open(s: &Settings) -> Result<SwiftStore, DriverError> {
        SwiftStore::from_settings(s)
    }
}

holdfast_driver_sdk::chunked_driver!(Swift, "swift");
