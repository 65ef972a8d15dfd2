//! Hostile test component: a backup driver built against `holdfast:backup@9.0.0`, a
//! WIT version no host supports yet (`wit/` here is 0.1.0 with the version changed).
//! The host must refuse it before instantiating it, naming both versions.

wit_bindgen::generate!({ world: "backup-driver", path: "wit" });

use exports::holdfast::backup::driver::{BackupOutcome, DriverInfo, Guest};
use holdfast::backup::types::{BackupInfo, DriverError, Setting};
use holdfast::backup::volume::{Source, Target};

pub struct Future;

fn never() -> DriverError {
    DriverError::Other("a driver from the future".into())
}

impl Guest for Future {
    fn setup(_config: Vec<Setting>) -> Result<DriverInfo, DriverError> {
        Err(never())
    }

    fn backup(
        _info: BackupInfo,
        _parent: Option<BackupInfo>,
        _meta: Option<String>,
        _source: &Source,
    ) -> Result<BackupOutcome, DriverError> {
        Err(never())
    }

    fn restore(_chain: Vec<BackupInfo>, _target: &Target, _new: bool) -> Result<Vec<Option<String>>, DriverError> {
        Err(never())
    }

    fn delete(_backup: BackupInfo) -> Result<(), DriverError> {
        Err(never())
    }

    fn export_record(_backup: BackupInfo) -> Result<String, DriverError> {
        Err(never())
    }

    fn import_record(_backup: BackupInfo, _driver_info: String) -> Result<(), DriverError> {
        Err(never())
    }

    fn supports_force_delete() -> bool {
        false
    }
}

#[cfg(target_arch = "wasm32")]
export!(Future);
