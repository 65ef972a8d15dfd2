//! Hostile driver: in `backup` it allocates 16 MiB blocks and keeps them, without
//! bound. The host's memory budget must trap it at the backend's `memory` grant.

use holdfast_driver_sdk::{BackupInfo, BackupOutcome, Driver, DriverError, DriverInfo, Setting, Source};

pub struct Hog;

impl Driver for Hog {
    fn setup(_config: Vec<Setting>) -> Result<DriverInfo, DriverError> {
        Ok(DriverInfo { service: "holdfast.hostile.Hog".into(), supports_force_delete: true })
    }

    fn backup(
        _info: BackupInfo,
        _parent: Option<BackupInfo>,
        _meta: Option<String>,
        _source: &Source,
    ) -> Result<BackupOutcome, DriverError> {
        let mut kept: Vec<Vec<u8>> = Vec::new();
        loop {
            kept.push(vec![1u8; 16 << 20]);
            std::hint::black_box(&kept);
        }
    }

    holdfast_hostile_common::inert!(restore, delete, export_record, import_record);
}

#[cfg(target_arch = "wasm32")]
holdfast_driver_sdk::export_driver!(Hog with_types_in holdfast_driver_sdk::bindings);
