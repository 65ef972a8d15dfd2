//! Hostile driver: sets up fine, reads one chunk of the volume, then traps
//! (a Rust panic is a wasm `unreachable`); it traps in `restore` too, and in
//! `delete` when its setting `trap_in` is `delete`. The host must mark the operation
//! failed with a reason and keep answering.

use holdfast_driver_sdk::{
    BackupInfo, BackupOutcome, Compression, Driver, DriverError, DriverInfo, ReadOptions, Setting, Source, Target,
};

pub struct TrapMidBackup;

static TRAP_IN_DELETE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl Driver for TrapMidBackup {
    fn setup(config: Vec<Setting>) -> Result<DriverInfo, DriverError> {
        let in_delete = config.iter().any(|s| s.key == "trap_in" && s.value == "delete");
        TRAP_IN_DELETE.store(in_delete, std::sync::atomic::Ordering::Relaxed);
        Ok(DriverInfo { service: "holdfast.hostile.TrapMidBackup".into(), supports_force_delete: false })
    }

    fn backup(
        _info: BackupInfo,
        _parent: Option<BackupInfo>,
        _meta: Option<String>,
        source: &Source,
    ) -> Result<BackupOutcome, DriverError> {
        let options = ReadOptions {
            chunk_size: 1 << 20,
            sha_block_size: 32_768,
            compression: Compression::Zstd,
            md5: false,
            parent_sha256s: None,
            extents: None,
        };
        let stream = source.chunks(&options)?;
        let _first = stream.next();
        panic!("trap-mid-backup: deliberate trap after the first chunk");
    }

    fn restore(_chain: Vec<BackupInfo>, _target: &Target, _new: bool) -> Result<Vec<Option<String>>, DriverError> {
        panic!("trap-mid-backup: deliberate trap in restore");
    }

    fn delete(_backup: BackupInfo) -> Result<(), DriverError> {
        if TRAP_IN_DELETE.load(std::sync::atomic::Ordering::Relaxed) {
            panic!("trap-mid-backup: deliberate trap in delete");
        }
        Ok(())
    }

    holdfast_hostile_common::inert!(export_record, import_record);
}

// Exports only exist in the wasm build: native symbol names cannot hold WIT's `:`/`@`.
#[cfg(target_arch = "wasm32")]
holdfast_driver_sdk::export_driver!(TrapMidBackup with_types_in holdfast_driver_sdk::bindings);
