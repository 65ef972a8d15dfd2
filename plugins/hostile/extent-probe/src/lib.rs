//! Test driver: its `backup` asks the source for its allocated extents and for the
//! extents changed since a snapshot, reads just the allocated ones, and fails with a
//! report (`extents=OFF+LEN,… changed=unknown chunks=OFF+LEN,…`) for a test to check.

use holdfast_driver_sdk::{
    BackupInfo, BackupOutcome, Compression, Driver, DriverError, DriverInfo, Extent, ReadOptions, Setting, Source,
};

pub struct ExtentProbe;

fn list(extents: &[Extent]) -> String {
    extents.iter().map(|e| format!("{}+{}", e.offset, e.length)).collect::<Vec<_>>().join(",")
}

impl Driver for ExtentProbe {
    fn setup(_config: Vec<Setting>) -> Result<DriverInfo, DriverError> {
        Ok(DriverInfo { service: "holdfast.test.ExtentProbe".into(), supports_force_delete: false })
    }

    fn backup(
        _info: BackupInfo,
        _parent: Option<BackupInfo>,
        _meta: Option<String>,
        source: &Source,
    ) -> Result<BackupOutcome, DriverError> {
        let extents = source.extents()?.unwrap_or_default();
        let changed = match source.changed_extents("since-snap")? {
            None => "unknown".to_owned(),
            Some(c) => list(&c),
        };
        let options = ReadOptions {
            chunk_size: 1 << 20,
            sha_block_size: 65_536,
            compression: Compression::None,
            md5: false,
            parent_sha256s: None,
            extents: Some(extents.clone()),
        };
        let stream = source.chunks(&options)?;
        let mut chunks = Vec::new();
        while let Some(c) = stream.next()? {
            chunks.push(Extent { offset: c.offset(), length: c.length() });
        }
        // A bad request comes back as a typed volume error, not a trap.
        let bad = ReadOptions { chunk_size: 1000, ..options };
        let refused = match source.chunks(&bad) {
            Err(e) => format!("{e:?}"),
            Ok(_) => "accepted".into(),
        };
        Err(DriverError::Other(format!(
            "extents={} changed={changed} chunks={} bad-chunk-size={refused}",
            list(&extents),
            list(&chunks)
        )))
    }

    holdfast_hostile_common::inert!(restore, delete, export_record, import_record);
}

#[cfg(target_arch = "wasm32")]
holdfast_driver_sdk::export_driver!(ExtentProbe with_types_in holdfast_driver_sdk::bindings);
