//! Hostile driver: never returns — in `setup` when its setting `spin_in` is `setup`,
//! and always in `backup`, `restore`, `delete`, `export-record` and `import-record`.
//! It spins without calling the host, or with the setting `mode = sleep` sleeps an
//! hour inside a WASI call. The host must stop each call at its deadline
//! (`control_timeout`, or `call_timeout` without progress).

use holdfast_driver_sdk::{BackupInfo, BackupOutcome, Driver, DriverError, DriverInfo, Setting, Source, Target};

pub struct Spin;

static SLEEP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn spin() -> ! {
    if SLEEP.load(std::sync::atomic::Ordering::Relaxed) {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
    let mut n = 0u64;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

impl Driver for Spin {
    fn setup(config: Vec<Setting>) -> Result<DriverInfo, DriverError> {
        SLEEP.store(config.iter().any(|s| s.key == "mode" && s.value == "sleep"), std::sync::atomic::Ordering::Relaxed);
        if config.iter().any(|s| s.key == "spin_in" && s.value == "setup") {
            spin();
        }
        Ok(DriverInfo { service: "holdfast.hostile.Spin".into(), supports_force_delete: true })
    }

    fn backup(
        _info: BackupInfo,
        _parent: Option<BackupInfo>,
        _meta: Option<String>,
        _source: &Source,
    ) -> Result<BackupOutcome, DriverError> {
        spin()
    }

    fn restore(_chain: Vec<BackupInfo>, _target: &Target, _new: bool) -> Result<Vec<Option<String>>, DriverError> {
        spin()
    }

    fn delete(_backup: BackupInfo) -> Result<(), DriverError> {
        spin()
    }

    fn export_record(_backup: BackupInfo) -> Result<String, DriverError> {
        spin()
    }

    fn import_record(_backup: BackupInfo, _driver_info: String) -> Result<(), DriverError> {
        spin()
    }
}

#[cfg(target_arch = "wasm32")]
holdfast_driver_sdk::export_driver!(Spin with_types_in holdfast_driver_sdk::bindings);
