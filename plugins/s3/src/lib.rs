//! The S3 backup driver: Cinder's `S3BackupDriver` (shared/docs/cinder-backup.md §4) as
//! a component. The SDK's chunked driver writes Cinder's layout — objects
//! `volume_<volume>/<time>/az_<zone>_backup_<id>-00001…`, `_sha256file`, `_metadata` in
//! the bucket `backup_s3_store_bucket` — and this crate is its [`ObjectStore`]: path-style
//! S3 requests signed with AWS Signature V4, sent through `wasi:http`, which the host
//! lets out only to the backend's network grant and only for the operation's backup.
//!
//! Cinder's options: `backup_s3_endpoint_url`, `backup_s3_store_access_key`,
//! `backup_s3_store_secret_key`, `backup_s3_store_bucket` (`volumebackups`),
//! `backup_s3_object_size` (52428800), `backup_s3_block_size` (32768),
//! `backup_s3_md5_validation` (true), `backup_s3_retry_max_attempts` (4),
//! `backup_s3_timeout` (60 s), `backup_compression_algorithm`; and `backup_s3_region`
//! (`us-east-1`), which Cinder leaves to boto.

mod sigv4;
pub mod xml;

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine;
use holdfast_driver_sdk::DriverError;
use holdfast_driver_sdk::chunked::{ChunkedDriver, Layout, ObjectStore};
use holdfast_driver_sdk::cinder::HostTime;
use holdfast_driver_sdk::http::{self, Endpoint, HttpError, Request, Response, Timeouts};
use holdfast_driver_sdk::settings::Settings;
use holdfast_driver_sdk::volume::VolumeChunk;

/// The driver; exported as the component's `driver` interface in the wasm build.
pub struct S3;

impl ChunkedDriver for S3 {
    type Store = S3Store;
    const SERVICE: &'static str = "cinder.backup.drivers.s3.S3BackupDriver";
    const LAYOUT: Layout = Layout::ObjectStore { container_option: "backup_s3_store_bucket" };
    const OBJECT_SIZE_OPTION: &'static str = "backup_s3_object_size";
    const BLOCK_SIZE_OPTION: &'static str = "backup_s3_block_size";

    fn default_file_size() -> u64 {
        52_428_800
    }

    fn open(s: &Settings) -> Result<S3Store, DriverError> {
        S3Store::from_settings(s)
    }
}

holdfast_driver_sdk::chunked_driver!(S3, "s3");

/// One S3 endpoint and its credentials.
pub struct S3Store {
    endpoint: Endpoint,
    access_key: String,
    secret_key: String,
    region: String,
    bucket: String,
    md5_validation: bool,
    attempts: u32,
    timeouts: Timeouts,
}

fn required<'a>(s: &'a Settings, key: &str) -> Result<&'a str, DriverError> {
    s.get(key).filter(|v| !v.is_empty()).ok_or_else(|| DriverError::Invalid(format!("{key} is not set")))
}

/// Whether `name` is an S3 bucket name (3-63 of `a-z 0-9 . -`, starting and ending
/// with a letter or digit).
pub fn is_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
}

impl S3Store {
    pub fn from_settings(s: &Settings) -> Result<S3Store, DriverError> {
        let endpoint = Endpoint::parse(required(s, "backup_s3_endpoint_url")?)
            .map_err(|e| DriverError::Invalid(format!("backup_s3_endpoint_url: {e}")))?;
        if !endpoint.base_path.is_empty() {
            return Err(DriverError::Invalid(
                "backup_s3_endpoint_url: path-style requests need the endpoint's root URL (no path)".into(),
            ));
        }
        let bucket = s.get("backup_s3_store_bucket").unwrap_or(holdfast_driver_sdk::chunked::DEFAULT_OBJECT_CONTAINER);
        if !is_bucket_name(bucket) {
            return Err(DriverError::Invalid(format!("backup_s3_store_bucket {bucket:?} is not an S3 bucket name")));
        }
        let md5_validation = match s.get("backup_s3_md5_validation").map(str::to_ascii_lowercase).as_deref() {
            None | Some("true") => true,
            Some("false") => false,
            Some(v) => return Err(DriverError::Invalid(format!("backup_s3_md5_validation = {v:?}: true or false"))),
        };
        let timeout = Duration::from_secs(s.u64_or("backup_s3_timeout", 60)?.max(1));
        Ok(S3Store {
            endpoint,
            access_key: required(s, "backup_s3_store_access_key")?.to_owned(),
            secret_key: required(s, "backup_s3_store_secret_key")?.to_owned(),
            region: s.get("backup_s3_region").unwrap_or("us-east-1").to_owned(),
            bucket: bucket.to_owned(),
            md5_validation,
            attempts: s.u64_or("backup_s3_retry_max_attempts", 4)?.clamp(1, 20) as u32,
            timeouts: Timeouts { connect: timeout, read: timeout },
        })
    }

    /// Sign and send one request; retried on connection errors and 5xx answers, with
    /// backoff, up to `backup_s3_retry_max_attempts` tries.
    fn call(
        &self,
        method: &str,
        bucket: &str,
        key: Option<&str>,
        query: &[(&str, &str)],
        body: &[u8],
        digests: Option<(&str, Option<&[u8]>)>,
    ) -> Result<Response, DriverError> {
        let mut path = format!("/{}", http::encode(bucket, false));
        if let Some(key) = key {
            path.push('/');
            path.push_str(&http::encode(key, true));
        }
        let payload = match digests {
            Some((sha, _)) => sha.to_owned(),
            None => sigv4::sha256_hex(body),
        };
        let md5 = match digests {
            Some((_, md5)) => md5.map(<[u8]>::to_vec),
            None if self.md5_validation && method == "PUT" && key.is_some() => Some(md5_of(body)),
            None => None,
        };
        let mut last = String::new();
        for attempt in 0..self.attempts {
            if attempt > 0 {
                http::sleep(Duration::from_millis(250 << attempt.min(6)));
            }
            let compact = HostTime::now().compact();
            let amz_date = format!("{}T{}Z", &compact[..8], &compact[8..]);
            let mut headers = vec![
                ("host".to_owned(), self.endpoint.host_header().to_owned()),
                ("x-amz-content-sha256".to_owned(), payload.clone()),
                ("x-amz-date".to_owned(), amz_date.clone()),
            ];
            if let Some(md5) = &md5 {
                headers.push(("content-md5".to_owned(), base64::engine::general_purpose::STANDARD.encode(md5)));
            }
            let creds =
                sigv4::Credentials { access_key: &self.access_key, secret_key: &self.secret_key, region: &self.region };
            let auth = sigv4::authorization(&creds, method, &path, query, &headers, &payload, &amz_date);
            headers.push(("authorization".to_owned(), auth));
            headers.retain(|(k, _)| k != "host");
            let encoded_query = query
                .iter()
                .map(|(k, v)| format!("{}={}", http::encode(k, false), http::encode(v, false)))
                .collect::<Vec<_>>()
                .join("&");
            let path_and_query = if query.is_empty() { path.clone() } else { format!("{path}?{encoded_query}") };
            let request = Request { method, path_and_query, headers, body };
            match http::send(&self.endpoint, &request, self.timeouts) {
                Ok(r) if r.status >= 500 => last = format!("{method} {path}: {}", error_text(&r)),
                Ok(r) => {
                    if let (Some(md5), true) =
                        (&md5, (200..300).contains(&r.status) && method == "PUT" && key.is_some())
                    {
                        let etag = r.header("etag").unwrap_or("").trim_matches('"').to_ascii_lowercase();
                        if etag != sigv4::hex(md5) {
                            last = format!("{method} {path}: ETag {etag:?} is not the MD5 of what was sent");
                            continue;
                        }
                    }
                    return Ok(r);
                }
                Err(HttpError::Denied(m)) => {
                    return Err(DriverError::Io(format!("S3 request refused by the host: {m}")));
                }
                Err(HttpError::Unavailable) => return Err(DriverError::Io(HttpError::Unavailable.to_string())),
                Err(HttpError::Transport(m)) => last = format!("{method} {path}: {m}"),
            }
        }
        Err(DriverError::Io(format!("S3 at {} after {} tries: {last}", self.endpoint.authority, self.attempts)))
    }

    fn put_bytes(
        &self,
        bucket: &str,
        key: &str,
        data: &[u8],
        digests: Option<(&str, Option<&[u8]>)>,
    ) -> Result<(), DriverError> {
        let r = self.call("PUT", bucket, Some(key), &[], data, digests)?;
        expect_ok(&r, "PUT", key)
    }
}

/// `S3 says <Code>: <Message>` from an error answer, or its status.
fn error_text(r: &Response) -> String {
    let body = String::from_utf8_lossy(&r.body);
    match (xml::first(&body, "Code"), xml::first(&body, "Message")) {
        (Some(c), Some(m)) => format!("HTTP {}: {c}: {m}", r.status),
        (Some(c), None) => format!("HTTP {}: {c}", r.status),
        _ => format!("HTTP {}", r.status),
    }
}

fn expect_ok(r: &Response, method: &str, what: &str) -> Result<(), DriverError> {
    match r.status {
        200..=299 => Ok(()),
        404 => Err(DriverError::NotFound(format!("{method} {what}: {}", error_text(r)))),
        _ => Err(DriverError::Io(format!("{method} {what}: {}", error_text(r)))),
    }
}

/// MD5 of a small object the driver writes itself (sha256file, metadata).
fn md5_of(data: &[u8]) -> Vec<u8> {
    use md5::Digest;
    md5::Md5::digest(data).to_vec()
}

impl ObjectStore for S3Store {
    fn put(&self, container: &str, name: &str, data: &[u8]) -> Result<(), DriverError> {
        self.put_bytes(container, name, data, None)
    }

    fn put_chunk(&self, container: &str, name: &str, chunk: &impl VolumeChunk) -> Result<(), DriverError> {
        // The host hashed the stored bytes with the chunk: no volume data is hashed here.
        let digests = chunk.stored_digests();
        let sha = sigv4::hex(&digests.sha256);
        let md5 = self.md5_validation.then_some(digests.md5.as_slice());
        self.put_bytes(container, name, &chunk.stored_bytes(), Some((&sha, md5)))
    }

    fn get(&self, container: &str, name: &str) -> Result<Vec<u8>, DriverError> {
        let r = self.call("GET", container, Some(name), &[], &[], None)?;
        expect_ok(&r, "GET", name)?;
        Ok(r.body)
    }

    fn list(&self, container: &str, prefix: &str) -> Result<BTreeSet<String>, DriverError> {
        let mut names = BTreeSet::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("list-type", "2"), ("prefix", prefix)];
            if let Some(t) = &token {
                query.push(("continuation-token", t.as_str()));
            }
            let r = self.call("GET", container, None, &query, &[], None)?;
            if r.status == 404 {
                return Ok(names); // no bucket: nothing in it
            }
            expect_ok(&r, "listing", container)?;
            let body = String::from_utf8_lossy(&r.body);
            names.extend(xml::all(&body, "Key"));
            match (xml::first(&body, "IsTruncated").as_deref(), xml::first(&body, "NextContinuationToken")) {
                (Some("true"), Some(next)) => token = Some(next),
                _ => return Ok(names),
            }
        }
    }

    fn delete(&self, container: &str, name: &str) -> Result<(), DriverError> {
        let r = self.call("DELETE", container, Some(name), &[], &[], None)?;
        match r.status {
            404 => Ok(()),
            _ => expect_ok(&r, "DELETE", name),
        }
    }

    fn check_container(&self, container: &str) -> Result<(), DriverError> {
        if is_bucket_name(container) {
            Ok(())
        } else {
            Err(DriverError::Invalid(format!("container {container:?} is not an S3 bucket name")))
        }
    }

    /// Cinder creates the bucket when it is missing.
    fn create_container(&self, container: &str) -> Result<(), DriverError> {
        let r = self.call("HEAD", container, None, &[], &[], None)?;
        if r.status != 404 {
            return expect_ok(&r, "HEAD", container);
        }
        let r = self.call("PUT", container, None, &[], &[], None)?;
        match r.status {
            // Another backup made it meanwhile.
            409 => Ok(()),
            _ => expect_ok(&r, "creating bucket", container),
        }
    }

    /// Cinder's `check_for_setup_error`: the endpoint answers and takes the keys (the
    /// bucket itself may still be missing: the first backup creates it).
    fn check(&self) -> Result<(), DriverError> {
        let r = self.call("HEAD", &self.bucket, None, &[], &[], None)?;
        match r.status {
            200..=299 | 404 => Ok(()),
            403 => Err(DriverError::Invalid(format!(
                "S3 at {} refuses the access key {:?} for bucket {}",
                self.endpoint.authority, self.access_key, self.bucket
            ))),
            _ => expect_ok(&r, "HEAD", &self.bucket),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        assert!(is_bucket_name("volumebackups"));
        assert!(is_bucket_name("a.b-c"));
        for bad in ["ab", "Upper", "a/b", "-ab", "ab-", &"x".repeat(64)] {
            assert!(!is_bucket_name(bad), "{bad}");
        }
    }

    #[test]
    fn settings_are_checked() {
        let s = |kv: &[(&str, &str)]| {
            Settings::new(
                kv.iter().map(|(k, v)| holdfast_driver_sdk::Setting { key: (*k).into(), value: (*v).into() }).collect(),
            )
        };
        let good = [
            ("backup_s3_endpoint_url", "http://127.0.0.1:7480"),
            ("backup_s3_store_access_key", "a"),
            ("backup_s3_store_secret_key", "s"),
        ];
        let st = S3Store::from_settings(&s(&good)).unwrap();
        assert_eq!((st.bucket.as_str(), st.attempts, st.md5_validation), ("volumebackups", 4, true));
        assert!(S3Store::from_settings(&s(&good[..2])).is_err(), "no secret key");
        let mut bad = good.to_vec();
        bad.push(("backup_s3_store_bucket", "Bad/Bucket"));
        assert!(S3Store::from_settings(&s(&bad)).is_err());
        let mut bad = good.to_vec();
        bad[0] = ("backup_s3_endpoint_url", "127.0.0.1:7480");
        assert!(S3Store::from_settings(&s(&bad)).is_err());
    }
}
