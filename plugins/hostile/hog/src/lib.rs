//! Hostile driver: in `backup` it allocates 16 MiB blocks and keeps them, without
//! bound. The host's memory budget must trap it at the backend's `memory` grant.

use holdfast_driver_sdk::{BackupInfo, BackupOutcome, Driver, DriverError, DriverInfo, Setting, Source, Target};

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

    fn restore(_chain: Vec<BackupInfo>, _target: &Target, _new: bool) -> Result<Vec<Option<String>>, DriverError> {
        Err(DriverError::Other("not a restorer".into()))
    }

    fn delete(_backup: BackupInfo) -> Result<(), DriverError> {
        Ok(())
    }

    fn export_record(_backup: BackupInfo) -> Result<String, DriverError> {
        Ok("{}".into())
    }

    fn import_record(_backup: BackupInfo, _driver_info: String) -> Result<(), DriverError> {
        Ok(())
    }
}

#[cfg(target_arch = "wasm32")]
holdfast_driver_sdk::export_driver!(Hog with_types_in holdfast_driver_sdk::bindings);
