//! What the hostile test drivers share: the driver calls an attack does not use,
//! written once. Inside `impl Driver for T { … }`, `inert!(restore)` (or `delete`,
//! `export_record`, `import_record`) adds that call doing nothing harmful.

#[macro_export]
macro_rules! inert {
    (restore) => {
        fn restore(
            _chain: Vec<holdfast_driver_sdk::BackupInfo>,
            _target: &holdfast_driver_sdk::Target,
            _new: bool,
        ) -> Result<Vec<Option<String>>, holdfast_driver_sdk::DriverError> {
            Err(holdfast_driver_sdk::DriverError::Other("not a restorer".into()))
        }
    };
    (delete) => {
        fn delete(_backup: holdfast_driver_sdk::BackupInfo) -> Result<(), holdfast_driver_sdk::DriverError> {
            Ok(())
        }
    };
    (export_record) => {
        fn export_record(_backup: holdfast_driver_sdk::BackupInfo) -> Result<String, holdfast_driver_sdk::DriverError> {
            Ok("{}".into())
        }
    };
    (import_record) => {
        fn import_record(
            _backup: holdfast_driver_sdk::BackupInfo,
            _driver_info: String,
        ) -> Result<(), holdfast_driver_sdk::DriverError> {
            Ok(())
        }
    };
    ($($call:ident),+) => {
        $($crate::inert!($call);)+
    };
}
