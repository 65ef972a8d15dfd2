//! Hostile driver: abuses the host's handles, chosen by its setting `attack`:
//! `streams` opens a thousand chunk streams; `sha-block` asks for 1-byte sha blocks;
//! `hoard` keeps every chunk it is given (`hoard-big`: 16 MiB chunks, which pass the
//! memory grant before the count of handles); `write-stored-far` has the host write a
//! chunk into a stream from past its end; `never-next` opens a stream and never reads
//! it; `stale` calls a chunk handle that does not exist; `write-length` (in restore)
//! writes an object as long as the volume. Each must fail, or trap, and leave the
//! host's threads and memory as they were.

use std::cell::RefCell;

use holdfast_driver_sdk::{
    BackupInfo, BackupOutcome, Chunk, Compression, Driver, DriverError, DriverInfo, ReadOptions, Setting, Source,
    Target,
};

pub struct Handles;

/// A chunk written into a request's body stream (never sent) from past its end.
#[cfg(target_arch = "wasm32")]
fn write_stored_far(source: &Source) -> String {
    use wasip2::http::types::{Fields, OutgoingRequest};
    let chunk = match source.chunks(&options(32_768)).and_then(|s| s.next()) {
        Ok(Some(c)) => c,
        other => return format!("no chunk: {other:?}"),
    };
    let req = OutgoingRequest::new(Fields::new());
    let Ok(body) = req.body() else { return "no body".into() };
    let Ok(out) = body.write() else { return "no stream".into() };
    match chunk.write_stored(&out, 1 << 40) {
        Ok(at) => format!("wrote to {at}"),
        Err(e) => format!("{e:?}"),
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn write_stored_far(_source: &Source) -> String {
    "only the wasm build has streams".into()
}

thread_local! {
    static ATTACK: RefCell<String> = const { RefCell::new(String::new()) };
}

fn options(sha_block_size: u32) -> ReadOptions {
    ReadOptions {
        chunk_size: 1 << 20,
        sha_block_size,
        compression: Compression::None,
        md5: false,
        parent_sha256s: None,
        extents: None,
    }
}

impl Driver for Handles {
    fn setup(config: Vec<Setting>) -> Result<DriverInfo, DriverError> {
        let a = config.into_iter().find(|s| s.key == "attack").map(|s| s.value).unwrap_or_default();
        ATTACK.set(a);
        Ok(DriverInfo { service: "holdfast.hostile.Handles".into(), supports_force_delete: true })
    }

    fn backup(
        _info: BackupInfo,
        _parent: Option<BackupInfo>,
        _meta: Option<String>,
        source: &Source,
    ) -> Result<BackupOutcome, DriverError> {
        match ATTACK.with_borrow(|a| a.clone()).as_str() {
            "streams" => {
                let mut kept = Vec::new();
                for _ in 0..1000 {
                    kept.push(source.chunks(&options(32_768))?);
                }
                Err(DriverError::Other("opened a thousand streams".into()))
            }
            "sha-block" => {
                let s = source.chunks(&options(1))?;
                let _ = s.next();
                Err(DriverError::Other("read with a 1-byte sha block".into()))
            }
            "hoard" => {
                let s = source.chunks(&options(32_768))?;
                let mut kept = Vec::new();
                while let Some(c) = s.next()? {
                    kept.push(c);
                }
                Err(DriverError::Other(format!("hoarded {} chunks", kept.len())))
            }
            "hoard-big" => {
                let s = source.chunks(&ReadOptions { chunk_size: 16 << 20, ..options(32_768) })?;
                let mut kept = Vec::new();
                while let Some(c) = s.next()? {
                    kept.push(c);
                }
                Err(DriverError::Other(format!("hoarded {} chunks", kept.len())))
            }
            "write-stored-far" => Err(DriverError::Other(write_stored_far(source))),
            "never-next" => {
                let _s = source.chunks(&options(32_768))?;
                Err(DriverError::Other("left a stream unread".into()))
            }
            "stale" => {
                // SAFETY: deliberately not a handle the host gave us: the host must trap.
                let forged = unsafe { Chunk::from_handle(12_345) };
                let _ = forged.offset();
                Err(DriverError::Other("a forged handle worked".into()))
            }
            _ => Err(DriverError::Other("no attack".into())),
        }
    }

    fn restore(_chain: Vec<BackupInfo>, target: &Target, _new: bool) -> Result<Vec<Option<String>>, DriverError> {
        // `write-length`: an object as long as the volume, so the host would allocate it all.
        target.write(0, target.size(), Compression::None, &[0u8; 16], None)?;
        target.flush()?;
        Err(DriverError::Other("a volume-sized write was taken".into()))
    }

    holdfast_hostile_common::inert!(delete, export_record, import_record);
}

#[cfg(target_arch = "wasm32")]
holdfast_driver_sdk::export_driver!(Handles with_types_in holdfast_driver_sdk::bindings);
