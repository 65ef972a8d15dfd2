//! Hostile driver: Cinder's chunked driver on the host's object store — honest, so it
//! makes the victims — until the backup it works on has the description
//! `attack:OP:KIND:CONTAINER:NAME`. Then, in operation OP (`backup`, `restore` or
//! `delete`), it goes for another backup's object CONTAINER/NAME: `read` it,
//! `overwrite` it, `append` to it, `read-range` it, `delete` it, `list` the container,
//! `list-prefix` the victim's names, `restore-object` it onto the restore's target,
//! `write-unrecorded` (a backup writing before it records its location), or
//! `put-chunk` it. The host must stop each one; if one is let through the driver fails
//! saying so, and the test sees the difference.

use holdfast_driver_sdk::bindings::holdfast::backup::objects;
use holdfast_driver_sdk::chunked::{Chunked, ChunkedDriver, Slot, with};
use holdfast_driver_sdk::objects::HostObjects;
use holdfast_driver_sdk::settings::Settings;
use holdfast_driver_sdk::volume::WitHost;
use holdfast_driver_sdk::{
    BackupInfo, BackupOutcome, Driver, DriverError, DriverInfo, ReadOptions, Setting, Source, Target, cinder, host,
};

pub struct Neighbour;

impl ChunkedDriver for Neighbour {
    type Store = HostObjects;
    const SERVICE: &'static str = "holdfast.hostile.Neighbour";

    fn open(_settings: &Settings) -> Result<HostObjects, DriverError> {
        Ok(HostObjects)
    }
}

std::thread_local! {
    static INSTANCE: Slot<Neighbour> = const { std::cell::RefCell::new(None) };
}

struct Attack {
    kind: String,
    container: String,
    name: String,
}

/// The attack `info` asks for in operation `op`, if any.
fn attack(info: &BackupInfo, op: &str) -> Option<Attack> {
    let d = info.description.as_deref()?.strip_prefix("attack:")?;
    let mut parts = d.splitn(4, ':');
    let (when, kind, container, name) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    (when == op).then(|| Attack { kind: kind.into(), container: container.into(), name: name.into() })
}

/// Try it. Reaching this function's end means the host let the attack through.
fn strike(a: &Attack, source: Option<&Source>, target: Option<&Target>) -> DriverError {
    let through = |what: String| DriverError::Other(format!("attack {} was let through: {what}", a.kind));
    let (c, n) = (a.container.as_str(), a.name.as_str());
    match a.kind.as_str() {
        "read" => match objects::get(c, n) {
            Ok(bytes) => through(format!("read {} bytes of {c}/{n}", bytes.len())),
            Err(e) => DriverError::Io(format!("read {c}/{n}: {e:?}")),
        },
        "overwrite" | "write-unrecorded" => match objects::put(c, n, b"owned by the neighbour") {
            Ok(()) => through(format!("overwrote {c}/{n}")),
            Err(e) => DriverError::Io(format!("overwrite {c}/{n}: {e:?}")),
        },
        "append" => match objects::append(c, n, b"appended by the neighbour") {
            Ok(()) => through(format!("appended to {c}/{n}")),
            Err(e) => DriverError::Io(format!("append {c}/{n}: {e:?}")),
        },
        "read-range" => match objects::get_range(c, n, 0, 4096) {
            Ok(bytes) => through(format!("read {} bytes of {c}/{n} by range", bytes.len())),
            Err(e) => DriverError::Io(format!("read-range {c}/{n}: {e:?}")),
        },
        "restore-object" => {
            let Some(target) = target else { return DriverError::Other("restore-object needs a restore".into()) };
            let none = holdfast_driver_sdk::Compression::None;
            match objects::restore_object(c, n, target, 0, 4096, none, 4096, &[0; 32]) {
                Ok(()) => through(format!("restored {c}/{n}")),
                Err(e) => DriverError::Io(format!("restore-object {c}/{n}: {e:?}")),
            }
        }
        "delete" => match objects::delete(c, n) {
            Ok(()) => through(format!("deleted {c}/{n}")),
            Err(e) => DriverError::Io(format!("delete {c}/{n}: {e:?}")),
        },
        "list" | "list-prefix" => {
            let prefix = if a.kind == "list" { "" } else { n };
            match objects::list(c, prefix) {
                Ok(names) => through(format!("listed {} names in {c}", names.len())),
                Err(e) => DriverError::Io(format!("list {c}: {e:?}")),
            }
        }
        "put-chunk" => {
            let Some(source) = source else { return DriverError::Other("put-chunk needs a backup".into()) };
            let options = ReadOptions {
                chunk_size: 65_536,
                sha_block_size: 32_768,
                compression: holdfast_driver_sdk::Compression::None,
                md5: false,
                parent_sha256s: None,
                extents: None,
            };
            let chunk = match source.chunks(&options).and_then(|s| s.next()) {
                Ok(Some(chunk)) => chunk,
                other => return DriverError::Other(format!("no chunk to plant: {other:?}")),
            };
            match objects::put_chunk(c, n, &chunk) {
                Ok(()) => through(format!("planted a chunk as {c}/{n}")),
                Err(e) => DriverError::Io(format!("put-chunk {c}/{n}: {e:?}")),
            }
        }
        other => DriverError::Invalid(format!("unknown attack {other:?}")),
    }
}

impl Driver for Neighbour {
    fn setup(config: Vec<Setting>) -> Result<DriverInfo, DriverError> {
        let (instance, info) = Chunked::<Neighbour>::setup(config)?;
        INSTANCE.set(Some(instance));
        Ok(info)
    }

    fn backup(
        info: BackupInfo,
        parent: Option<BackupInfo>,
        volume_meta: Option<String>,
        source: &Source,
    ) -> Result<BackupOutcome, DriverError> {
        if let Some(a) = attack(&info, "backup") {
            // Look like an honest backup first: record a location of its own.
            if a.kind != "write-unrecorded" {
                host::record_location(&cinder::default_container(&info.id), &cinder::object_prefix(&info));
            }
            return Err(strike(&a, Some(source), None));
        }
        with(&INSTANCE, |d| d.backup(&WitHost, info, parent, volume_meta, source))
    }

    fn restore(chain: Vec<BackupInfo>, target: &Target, _new: bool) -> Result<Vec<Option<String>>, DriverError> {
        if let Some(a) = chain.last().and_then(|last| attack(last, "restore")) {
            return Err(strike(&a, None, Some(target)));
        }
        with(&INSTANCE, |d| d.restore(&WitHost, chain, target))
    }

    fn delete(info: BackupInfo) -> Result<(), DriverError> {
        if let Some(a) = attack(&info, "delete") {
            return Err(strike(&a, None, None));
        }
        with(&INSTANCE, |d| d.delete(info))
    }

    fn export_record(_info: BackupInfo) -> Result<String, DriverError> {
        Ok("{}".into())
    }

    fn import_record(_info: BackupInfo, _driver_info: String) -> Result<(), DriverError> {
        Ok(())
    }
}

holdfast_driver_sdk::driver_manifest!("hostile-neighbour");
#[cfg(target_arch = "wasm32")]
holdfast_driver_sdk::export_driver!(Neighbour with_types_in holdfast_driver_sdk::bindings);
