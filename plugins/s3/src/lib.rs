//! The S3 backup driver: Cinder's `S3BackupDriver` (shared/docs/cinder-backup.md §4) as
//! a component. The SDK's chunked driver writes Cinder's object-store layout — objects
//! `volume_<volume>/<time>/az_<zone>_backup_<id>-00001…`, `_sha256file`, `_metadata` in
//! the bucket `backup_s3_store_bucket` — into the SDK's [`S3Store`] (SigV4 over
//! `wasi:http`, several objects in flight). Cinder's options: the store's, and
//! `backup_s3_object_size` (52428800), `backup_s3_block_size` (32768),
//! `backup_compression_algorithm`.

use holdfast_driver_sdk::DriverError;
use holdfast_driver_sdk::chunked::{ChunkedDriver, Layout};
use holdfast_driver_sdk::s3::S3Store;
use holdfast_driver_sdk::settings::Settings;

/// The driver; exported as the component's `driver` interface in the wasm build.
pub struct S3;

impl ChunkedDriver for S3 {
    type Store = S3Store;
    const SERVICE: &'static str = "cinder.backup.drivers.s3.S3BackupDriver";
    const LAYOUT: Layout = Layout::ObjectStore { container_option: "backup_s3_store_bucket" };
    const OBJECT_SIZE_OPTION: &'static str = "backup_s3_object_size";
    const BLOCK_SIZE_OPTION: &'static str = "backup_s3_block_size";

    fn default_file_size() -> u64 {
        52_428_800
    }

    fn open(s: &Settings) -> Result<S3Store, DriverError> {
        S3Store::from_settings(s)
    }
}

holdfast_driver_sdk::chunked_driver!(S3, "s3");
