//! An S3 object store for chunked drivers ([`S3Store`]): path-style requests signed
//! with AWS Signature V4 through `wasi:http`, several uploads and downloads in flight
//! ([`crate::transfer`]), Cinder's `S3BackupDriver` options. `plugins/s3` is Cinder's S3
//! driver on it; the host lets each request out only to the backend's network grant
//! and, with `object_api = "s3"`, only for the operation's backup.
//!
//! Options: `backup_s3_endpoint_url`, `backup_s3_store_access_key`,
//! `backup_s3_store_secret_key`, `backup_s3_store_bucket` (`volumebackups`),
//! `backup_s3_md5_validation` (true), `backup_s3_retry_max_attempts` (4),
//! `backup_s3_timeout` (60 s), `backup_s3_in_flight` (4), and `backup_s3_region`
//! (`us-east-1`), which Cinder leaves to boto.

pub mod sigv4;
pub mod xml;

use std::collections::BTreeSet;
use std::time::Duration;

use crate::DriverError;
use crate::chunked::{Fetched, ObjectStore};
use crate::cinder::{HostTime, hex};
use crate::http::{self, Endpoint, HttpError, Request, Response, Timeouts};
use crate::settings::Settings;
use crate::transfer::{self, Digests, ObjectRequests, RetryPolicy, Uploads, Verdict};
use crate::volume::VolumeChunk;
use base64::Engine;

/// One S3 endpoint and its credentials.
pub struct S3Store {
    endpoint: Endpoint,
    access_key: String,
    secret_key: String,
    region: String,
    bucket: String,
    md5_validation: bool,
    policy: RetryPolicy,
    /// Uploads and downloads in flight (`backup_s3_in_flight`, default 4).
    in_flight: usize,
    uploads: Uploads,
}

fn required<'a>(s: &'a Settings, key: &str) -> Result<&'a str, DriverError> {
    s.get(key).filter(|v| !v.is_empty()).ok_or_else(|| DriverError::Invalid(format!("{key} is not set")))
}

/// Cinder's S3 options this driver does not implement are refused, not ignored: an
/// operator who set SSE-C keys expects encrypted objects, one who set a CA file or
/// turned verification off expects that TLS check. (`backup_s3_max_pool_connections`
/// and `backup_s3_retry_mode` change nothing a backup stores: they are taken as set.)
fn refuse_unsupported(s: &Settings, https: bool) -> Result<(), DriverError> {
    for key in ["backup_s3_sse_customer_key", "backup_s3_sse_customer_algorithm", "backup_s3_ca_cert_file"] {
        if s.get(key).is_some_and(|v| !v.trim().is_empty()) {
            return Err(DriverError::Invalid(format!(
                "{key}: not supported by this driver (no server-side encryption with customer keys, no CA file \
                 of its own): remove it"
            )));
        }
    }
    // Over plain HTTP (a cinder.conf carried over may say false) there is nothing to check.
    match s.bool("backup_s3_verify_ssl")? {
        Some(false) if https => Err(DriverError::Invalid(
            "backup_s3_verify_ssl = false: this driver always checks the endpoint's certificate".into(),
        )),
        _ => Ok(()),
    }
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
        let bucket = s.get("backup_s3_store_bucket").unwrap_or(crate::chunked::DEFAULT_OBJECT_CONTAINER);
        if !is_bucket_name(bucket) {
            return Err(DriverError::Invalid(format!("backup_s3_store_bucket {bucket:?} is not an S3 bucket name")));
        }
        let md5_validation = s.bool("backup_s3_md5_validation")?.unwrap_or(true);
        refuse_unsupported(s, endpoint.https)?;
        let timeout = Duration::from_secs(s.u64_or("backup_s3_timeout", 60)?.max(1));
        let in_flight = s.u64_or("backup_s3_in_flight", 4)?.clamp(1, 64) as usize;
        Ok(S3Store {
            access_key: required(s, "backup_s3_store_access_key")?.to_owned(),
            secret_key: required(s, "backup_s3_store_secret_key")?.to_owned(),
            region: s.get("backup_s3_region").unwrap_or("us-east-1").to_owned(),
            bucket: bucket.to_owned(),
            md5_validation,
            policy: RetryPolicy {
                attempts: s.u64_or("backup_s3_retry_max_attempts", 4)?.clamp(1, 20) as u32,
                backoff: Duration::from_millis(500),
                timeouts: Timeouts { connect: timeout, read: timeout },
                label: format!("S3 at {}", endpoint.authority),
            },
            endpoint,
            in_flight,
            uploads: Uploads::new(in_flight),
        })
    }

    /// One request, signed: its path and query, and headers. `payload` is the body's
    /// SHA-256 (hex), `md5` its MD5 for `Content-MD5`.
    fn signed(
        &self,
        method: &'static str,
        bucket: &str,
        key: Option<&str>,
        query: &[(&str, &str)],
        payload: &str,
        md5: Option<&[u8]>,
    ) -> Request<'static> {
        let mut path = format!("/{}", http::encode(bucket, false));
        if let Some(key) = key {
            path.push('/');
            path.push_str(&http::encode(key, true));
        }
        let compact = HostTime::now().compact();
        let amz_date = format!("{}T{}Z", &compact[..8], &compact[8..]);
        let mut headers = vec![
            ("host".to_owned(), self.endpoint.host_header().to_owned()),
            ("x-amz-content-sha256".to_owned(), payload.to_owned()),
            ("x-amz-date".to_owned(), amz_date.clone()),
        ];
        if let Some(md5) = md5 {
            headers.push(("content-md5".to_owned(), base64::engine::general_purpose::STANDARD.encode(md5)));
        }
        let creds =
            sigv4::Credentials { access_key: &self.access_key, secret_key: &self.secret_key, region: &self.region };
        let auth = sigv4::authorization(&creds, method, &path, query, &headers, payload, &amz_date);
        headers.push(("authorization".to_owned(), auth));
        // The host sets Host from the authority; a guest may not.
        headers.retain(|(k, _)| k != "host");
        let encoded_query = query
            .iter()
            .map(|(k, v)| format!("{}={}", http::encode(k, false), http::encode(v, false)))
            .collect::<Vec<_>>()
            .join("&");
        let path_and_query = if query.is_empty() { path } else { format!("{path}?{encoded_query}") };
        Request { method, path_and_query, headers, body: &[] }
    }

    /// Sign and send one request and wait for it, retried as `backup_s3_retry_max_attempts`
    /// says.
    fn call(
        &self,
        method: &'static str,
        bucket: &str,
        key: Option<&str>,
        query: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, DriverError> {
        let payload = sigv4::sha256_hex(body);
        let md5 = (self.md5_validation && method == "PUT" && key.is_some()).then(|| md5_of(body));
        let what = format!("{method} {}", key.unwrap_or(bucket));
        transfer::call(self, &what, body, md5.as_deref(), || {
            Ok((self.endpoint.clone(), self.signed(method, bucket, key, query, &payload, md5.as_deref())))
        })
    }
}

impl ObjectRequests for S3Store {
    fn put_request(
        &self,
        container: &str,
        name: &str,
        digests: &Digests,
    ) -> Result<(Endpoint, Request<'static>), DriverError> {
        let md5 = self.confirmed_md5(digests);
        // A chunk's payload is signed by its MD5 when that goes with it (Content-MD5 is a
        // signed header: the store checks the body against it), else by its SHA-256.
        let payload = match (digests.sha256.is_empty(), md5) {
            (true, Some(_)) => UNSIGNED_PAYLOAD.to_owned(),
            (true, None) => return Err(DriverError::Invalid(format!("PUT {name}: neither SHA-256 nor MD5 to sign"))),
            (false, _) => hex(&digests.sha256),
        };
        Ok((self.endpoint.clone(), self.signed("PUT", container, Some(name), &[], &payload, md5)))
    }

    fn get_request(&self, container: &str, name: &str) -> Result<(Endpoint, Request<'static>), DriverError> {
        Ok((self.endpoint.clone(), self.signed("GET", container, Some(name), &[], EMPTY_SHA256, None)))
    }

    /// 5xx, a broken connection or an ETag that is not what was sent: another try; a
    /// refusal (4xx other than 404): failed; anything else is the answer.
    fn judge(&self, r: Result<Response, HttpError>, what: &str, md5: Option<&[u8]>) -> Verdict {
        match r {
            Ok(r) if r.status >= 500 => Verdict::Retry(format!("{what}: {}", error_text(&r))),
            Ok(r) => {
                if let (Some(md5), true) = (md5, (200..300).contains(&r.status)) {
                    let etag = r.header("etag").unwrap_or("").trim_matches('"').to_ascii_lowercase();
                    if etag != hex(md5) {
                        return Verdict::Retry(format!("{what}: ETag {etag:?} is not the MD5 of what was sent"));
                    }
                }
                Verdict::Done(r)
            }
            Err(HttpError::Denied(m)) => Verdict::Fail(DriverError::Io(format!("S3 request refused by the host: {m}"))),
            Err(HttpError::Unavailable) => Verdict::Fail(DriverError::Io(HttpError::Unavailable.to_string())),
            Err(HttpError::Transport(m)) => Verdict::Retry(format!("{what}: {m}")),
        }
    }

    fn confirmed_md5<'a>(&self, digests: &'a Digests) -> Option<&'a [u8]> {
        self.md5_validation.then_some(digests.md5.as_slice())
    }

    fn policy(&self) -> &RetryPolicy {
        &self.policy
    }
}

/// `x-amz-content-sha256` for a body whose SHA-256 is not signed (AWS SigV4): only for a
/// chunk sent with its Content-MD5, which the signature covers.
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// SHA-256 of an empty payload.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

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
        self.uploads.settle(self, 0)?;
        let r = self.call("PUT", container, Some(name), &[], data)?;
        expect_ok(&r, "PUT", name)
    }

    /// Up to `backup_s3_in_flight` uploads at once; an error shows on a later call, at
    /// the latest on `flush`.
    fn put_chunk(&self, container: &str, name: &str, chunk: impl VolumeChunk) -> Result<(), DriverError> {
        // The host hashed the stored bytes with the chunk: no volume data is hashed here;
        // it writes them into the request too (WIT 0.2.7). With Content-MD5 (the
        // default) the MD5 alone: the payload goes unsigned by SHA-256 (it is signed by
        // its MD5), so neither the host nor radosgw hashes it twice.
        let digests = match self.md5_validation {
            true => Digests { sha256: Vec::new(), md5: chunk.stored_md5() },
            false => {
                let d = chunk.stored_digests();
                Digests { sha256: d.sha256, md5: d.md5 }
            }
        };
        self.uploads.put(self, container, name, digests, chunk.into_body())
    }

    /// Every upload answered and stored (S3 has nothing else to make durable).
    fn flush(&self, _container: &str) -> Result<(), DriverError> {
        self.uploads.settle(self, 0)
    }

    /// One flush per backup: each would wait for every upload in flight.
    fn flush_every(&self) -> Option<u64> {
        None
    }

    fn abandon(&self) {
        self.uploads.abandon();
    }

    fn get(&self, container: &str, name: &str) -> Result<Vec<u8>, DriverError> {
        self.uploads.drain();
        let r = self.call("GET", container, Some(name), &[], &[])?;
        expect_ok(&r, "GET", name)?;
        Ok(r.body)
    }

    /// Up to `backup_s3_in_flight` downloads at once, handed on in order.
    fn get_each(
        &self,
        container: &str,
        names: &[String],
        each: &mut dyn FnMut(usize, Fetched) -> Result<(), DriverError>,
    ) -> Result<(), DriverError> {
        transfer::get_each(self, self.in_flight, container, names, each)
    }

    fn list(&self, container: &str, prefix: &str) -> Result<BTreeSet<String>, DriverError> {
        self.uploads.drain();
        let mut names = BTreeSet::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("list-type", "2"), ("prefix", prefix)];
            if let Some(t) = &token {
                query.push(("continuation-token", t.as_str()));
            }
            let r = self.call("GET", container, None, &query, &[])?;
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
        self.uploads.drain();
        let r = self.call("DELETE", container, Some(name), &[], &[])?;
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
        let r = self.call("HEAD", container, None, &[], &[])?;
        if r.status != 404 {
            return expect_ok(&r, "HEAD", container);
        }
        let r = self.call("PUT", container, None, &[], &[])?;
        match r.status {
            // Another backup made it meanwhile.
            409 => Ok(()),
            _ => expect_ok(&r, "creating bucket", container),
        }
    }

    /// Cinder's `check_for_setup_error`: the endpoint answers and takes the keys (the
    /// bucket itself may still be missing: the first backup creates it).
    fn check(&self) -> Result<(), DriverError> {
        let r = self.call("HEAD", &self.bucket, None, &[], &[])?;
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
            Settings::new(kv.iter().map(|(k, v)| crate::Setting { key: (*k).into(), value: (*v).into() }).collect())
        };
        let good = [
            ("backup_s3_endpoint_url", "http://127.0.0.1:7480"),
            ("backup_s3_store_access_key", "a"),
            ("backup_s3_store_secret_key", "s"),
        ];
        let st = S3Store::from_settings(&s(&good)).unwrap();
        assert_eq!((st.bucket.as_str(), st.policy.attempts, st.md5_validation), ("volumebackups", 4, true));
        assert!(S3Store::from_settings(&s(&good[..2])).is_err(), "no secret key");
        let mut bad = good.to_vec();
        bad.push(("backup_s3_store_bucket", "Bad/Bucket"));
        assert!(S3Store::from_settings(&s(&bad)).is_err());
        let mut bad = good.to_vec();
        bad[0] = ("backup_s3_endpoint_url", "127.0.0.1:7480");
        assert!(S3Store::from_settings(&s(&bad)).is_err());
        // Cinder's options it does not do: refused with the reason, not ignored.
        for (k, v) in [
            ("backup_s3_sse_customer_key", "k"),
            ("backup_s3_sse_customer_algorithm", "AES256"),
            ("backup_s3_ca_cert_file", "/etc/ca.pem"),
            ("backup_s3_verify_ssl", "false"),
        ] {
            let mut bad = good.to_vec();
            bad[0] = ("backup_s3_endpoint_url", "https://s3.example.net");
            bad.push((k, v));
            let Err(e) = S3Store::from_settings(&s(&bad)) else { panic!("{k} accepted") };
            assert!(e.to_string().contains(k), "{e}");
        }
        let mut fine = good.to_vec();
        fine.extend([
            ("backup_s3_verify_ssl", "True"),
            ("backup_s3_sse_customer_key", ""),
            ("backup_s3_retry_mode", "adaptive"),
        ]);
        assert!(S3Store::from_settings(&s(&fine)).is_ok());
        fine.push(("backup_s3_verify_ssl", "false"));
        assert!(S3Store::from_settings(&s(&fine)).is_ok(), "nothing to verify over plain HTTP");
    }
}
