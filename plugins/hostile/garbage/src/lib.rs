//! Hostile driver: hands the host garbage, chosen by its setting `attack`:
//! `location` records `../../escape`; `huge-location` records an 8 MiB container;
//! `result` returns an escaping container without recording it; `count` returns
//! 4 billion objects; `record` exports 8 MiB; `record-json` exports text that is not
//! JSON; `error` fails with an 8 MiB message. The host must refuse or cut each one.

use std::cell::RefCell;

use holdfast_driver_sdk::{BackupInfo, BackupOutcome, Driver, DriverError, DriverInfo, Setting, Source, Target, host};

pub struct Garbage;

thread_local! {
    static ATTACK: RefCell<String> = const { RefCell::new(String::new()) };
}

fn attack() -> String {
    ATTACK.with_borrow(|a| a.clone())
}

fn huge() -> String {
    "x".repeat(8 << 20)
}

impl Driver for Garbage {
    fn setup(config: Vec<Setting>) -> Result<DriverInfo, DriverError> {
        let a = config.into_iter().find(|s| s.key == "attack").map(|s| s.value).unwrap_or_default();
        ATTACK.set(a);
        Ok(DriverInfo { service: "holdfast.hostile.Garbage".into(), supports_force_delete: true })
    }

    fn backup(
        info: BackupInfo,
        _parent: Option<BackupInfo>,
        _meta: Option<String>,
        _source: &Source,
    ) -> Result<BackupOutcome, DriverError> {
        let ok = |container: &str, count| {
            Ok(BackupOutcome {
                container: container.into(),
                service_metadata: format!("p-{}", info.id),
                object_count: count,
            })
        };
        match attack().as_str() {
            "location" => {
                host::record_location("../../escape", "p");
                ok("c", 1)
            }
            "huge-location" => {
                host::record_location(&huge(), "p");
                ok("c", 1)
            }
            "result" => ok("../../escape", 1),
            "count" => ok("c", u32::MAX),
            "error" => Err(DriverError::Other(huge())),
            _ => ok("c", 1),
        }
    }

    fn restore(_chain: Vec<BackupInfo>, _target: &Target, _new: bool) -> Result<Vec<Option<String>>, DriverError> {
        Ok(vec![Some(huge())])
    }

    fn export_record(_backup: BackupInfo) -> Result<String, DriverError> {
        match attack().as_str() {
            "record" => Ok(format!("{{\"a\": \"{}\"}}", huge())),
            "record-json" => Ok("not json".into()),
            _ => Ok("{}".into()),
        }
    }

    holdfast_hostile_common::inert!(delete, import_record);
}

#[cfg(target_arch = "wasm32")]
holdfast_driver_sdk::export_driver!(Garbage with_types_in holdfast_driver_sdk::bindings);
