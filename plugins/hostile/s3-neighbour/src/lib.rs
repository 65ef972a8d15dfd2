//! Hostile driver: Cinder's S3 driver (the SDK's chunked driver on [`S3Store`]) —
//! honest, so it makes the victims — until the backup it works on has the description
//! `attack:OP:KIND:BUCKET:KEY`. Then, in operation OP (`backup`, `restore` or `delete`),
//! it goes for another backup's object through the S3 endpoint it was granted: `read`
//! it, `overwrite` it, `delete` it, `list` the bucket, `list-prefix` the victim's keys,
//! `write-unrecorded` (before recording its own location), `put-chunk` over it, `copy`
//! it into its own prefix (`x-amz-copy-source`), or `create-bucket` BUCKET. The host's
//! network gate must refuse each one (the backup then fails "network: denied: …"); if
//! one is let through the driver fails saying so, and the test sees the difference.

use holdfast_driver_sdk::chunked::{Chunked, ChunkedDriver, Layout, ObjectStore, Slot, with};
use holdfast_driver_sdk::http::{self, Endpoint, Request, Timeouts};
use holdfast_driver_sdk::s3::{S3Store, sigv4};
use holdfast_driver_sdk::settings::Settings;
use holdfast_driver_sdk::volume::WitHost;
use holdfast_driver_sdk::{
    BackupInfo, BackupOutcome, Driver, DriverError, DriverInfo, ReadOptions, Setting, Source, Target, cinder, host,
};

pub struct S3Neighbour;

impl ChunkedDriver for S3Neighbour {
    type Store = S3Store;
    const SERVICE: &'static str = "holdfast.hostile.S3Neighbour";
    const LAYOUT: Layout = Layout::ObjectStore { container_option: "backup_s3_store_bucket" };
    const OBJECT_SIZE_OPTION: &'static str = "backup_s3_object_size";

    fn open(s: &Settings) -> Result<S3Store, DriverError> {
        S3Store::from_settings(s)
    }
}

std::thread_local! {
    static INSTANCE: Slot<S3Neighbour> = const { std::cell::RefCell::new(None) };
    static SETTINGS: std::cell::RefCell<Vec<Setting>> = const { std::cell::RefCell::new(Vec::new()) };
}

struct Attack {
    kind: String,
    bucket: String,
    key: String,
}

fn attack(info: &BackupInfo, op: &str) -> Option<Attack> {
    let d = info.description.as_deref()?.strip_prefix("attack:")?;
    let mut parts = d.splitn(4, ':');
    let (when, kind, bucket, key) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    (when == op).then(|| Attack { kind: kind.into(), bucket: bucket.into(), key: key.into() })
}

fn setting(key: &str) -> String {
    SETTINGS.with_borrow(|s| s.iter().rev().find(|x| x.key == key).map(|x| x.value.clone()).unwrap_or_default())
}

/// A PUT of `own` in `bucket` asking S3 to copy `source` into it: signed by hand, as a
/// driver bent on it would.
fn copy_into(bucket: &str, own: &str, source: &str) -> Result<u16, String> {
    let endpoint = Endpoint::parse(&setting("backup_s3_endpoint_url"))?;
    let (ak, sk) = (setting("backup_s3_store_access_key"), setting("backup_s3_store_secret_key"));
    let compact = cinder::HostTime::now().compact();
    let amz_date = format!("{}T{}Z", &compact[..8], &compact[8..]);
    let empty = sigv4::sha256_hex(b"");
    let path = format!("/{bucket}/{}", http::encode(own, true));
    let mut headers = vec![
        ("host".to_owned(), endpoint.host_header().to_owned()),
        ("x-amz-content-sha256".to_owned(), empty.clone()),
        ("x-amz-copy-source".to_owned(), format!("/{bucket}/{source}")),
        ("x-amz-date".to_owned(), amz_date.clone()),
    ];
    let creds = sigv4::Credentials { access_key: &ak, secret_key: &sk, region: "us-east-1" };
    let auth = sigv4::authorization(&creds, "PUT", &path, &[], &headers, &empty, &amz_date);
    headers.push(("authorization".to_owned(), auth));
    headers.retain(|(k, _)| k != "host");
    let t = std::time::Duration::from_secs(10);
    let request = Request { method: "PUT", path_and_query: path, headers, body: &[] };
    http::send(&endpoint, &request, Timeouts { connect: t, read: t }).map(|r| r.status).map_err(|e| e.to_string())
}

/// Try it. Reaching this function's end means the host let the attack through.
fn strike(store: &S3Store, a: &Attack, own_prefix: Option<&str>, source: Option<&Source>) -> DriverError {
    let through = |what: String| DriverError::Other(format!("attack {} was let through: {what}", a.kind));
    let (b, k) = (a.bucket.as_str(), a.key.as_str());
    match a.kind.as_str() {
        "read" => match store.get(b, k) {
            Ok(bytes) => through(format!("read {} bytes of {b}/{k}", bytes.len())),
            Err(e) => e,
        },
        "overwrite" | "write-unrecorded" => match store.put(b, k, b"owned by the neighbour") {
            Ok(()) => through(format!("overwrote {b}/{k}")),
            Err(e) => e,
        },
        "delete" => match store.delete(b, k) {
            Ok(()) => through(format!("deleted {b}/{k}")),
            Err(e) => e,
        },
        "list" | "list-prefix" => {
            let prefix = if a.kind == "list" { "" } else { k };
            match store.list(b, prefix) {
                Ok(names) => through(format!("listed {} keys in {b}", names.len())),
                Err(e) => e,
            }
        }
        "create-bucket" => match store.create_container(b) {
            Ok(()) => through(format!("created bucket {b}")),
            Err(e) => e,
        },
        "copy" => match copy_into(b, &format!("{}-00001", own_prefix.unwrap_or("x")), k) {
            Ok(status) => through(format!("copy of {b}/{k} answered HTTP {status}")),
            Err(e) => DriverError::Io(e),
        },
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
            match store.put_chunk(b, k, chunk).and_then(|()| store.flush(b)) {
                Ok(()) => through(format!("planted a chunk as {b}/{k}")),
                Err(e) => e,
            }
        }
        other => DriverError::Invalid(format!("unknown attack {other:?}")),
    }
}

impl Driver for S3Neighbour {
    fn setup(config: Vec<Setting>) -> Result<DriverInfo, DriverError> {
        SETTINGS.set(config.clone());
        let (instance, info) = Chunked::<S3Neighbour>::setup(config)?;
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
            let zone = setting("storage_availability_zone");
            let prefix = cinder::object_store_prefix(&info, if zone.is_empty() { "nova" } else { &zone });
            // Look like an honest backup first: record a location of its own, in the
            // backend's bucket.
            if a.kind != "write-unrecorded" {
                host::record_location(&setting("backup_s3_store_bucket"), &prefix);
            }
            let store = S3Store::from_settings(&Settings::new(SETTINGS.with_borrow(Clone::clone)))?;
            return Err(strike(&store, &a, Some(&prefix), Some(source)));
        }
        with(&INSTANCE, |d| d.backup(&WitHost, info, parent, volume_meta, source))
    }

    fn restore(chain: Vec<BackupInfo>, target: &Target, _new: bool) -> Result<Vec<Option<String>>, DriverError> {
        if let Some(a) = chain.last().and_then(|last| attack(last, "restore")) {
            let store = S3Store::from_settings(&Settings::new(SETTINGS.with_borrow(Clone::clone)))?;
            return Err(strike(&store, &a, None, None));
        }
        with(&INSTANCE, |d| d.restore(&WitHost, chain, target))
    }

    fn delete(info: BackupInfo) -> Result<(), DriverError> {
        if let Some(a) = attack(&info, "delete") {
            let store = S3Store::from_settings(&Settings::new(SETTINGS.with_borrow(Clone::clone)))?;
            return Err(strike(&store, &a, None, None));
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

holdfast_driver_sdk::driver_manifest!("hostile-s3-neighbour");
#[cfg(target_arch = "wasm32")]
holdfast_driver_sdk::export_driver!(S3Neighbour with_types_in holdfast_driver_sdk::bindings);
