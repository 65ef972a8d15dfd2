//! A Swift object store for chunked drivers ([`SwiftStore`]): Swift v1 requests through
//! `wasi:http`, several uploads and downloads in flight ([`crate::transfer`]), each
//! object's `ETag` the host's MD5 of its stored bytes, Cinder's `SwiftBackupDriver`
//! options. `plugins/swift` is Cinder's Swift driver on it.
//!
//! Options: `backup_swift_auth`: `per_user` (Cinder's default: each project's backups in
//! its own account, `backup_swift_url` + the caller's project id, reached with the
//! caller's Keystone token, which the host adds to the requests: the backend must grant
//! `caller_token`; the driver never sees the token) or `single_user` (one account, Swift's
//! v1 auth: `backup_swift_auth_url` with `backup_swift_user`/`backup_swift_key`,
//! `backup_swift_auth_version` = 1), `backup_swift_url` (per_user: the storage URL up to
//! the account prefix, e.g. `http://swift:8080/v1/AUTH_`; single_user: a storage URL to
//! use instead of the auth answer's), `backup_swift_container` (`volumebackups`),
//! `backup_swift_retry_attempts` (3), `backup_swift_retry_backoff` (2 s),
//! `backup_swift_in_flight` (4).

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::time::Duration;

use crate::DriverError;
use crate::chunked::{Fetched, ObjectStore};
use crate::cinder::hex;
use crate::http::{self, Endpoint, HttpError, Request, Response, Timeouts};
use crate::settings::Settings;
use crate::transfer::{self, Digests, ObjectRequests, RetryPolicy, Uploads, Verdict};
use crate::volume::VolumeChunk;

use holdfast_types::CALLER_PROJECT_SETTING;

/// Where objects go once authenticated.
#[derive(Clone)]
struct Session {
    storage: Endpoint,
    /// `None` for per_user: the host adds the caller's token.
    token: Option<String>,
}

/// How requests are authenticated (`backup_swift_auth`).
enum Auth {
    /// One account for every backup, Swift's v1 auth.
    SingleUser {
        auth_url: Endpoint,
        user: String,
        key: String,
        /// `backup_swift_url`: the storage URL to use instead of the auth answer's.
        storage_url: Option<Endpoint>,
    },
    /// The caller's project's account; the host holds the token.
    PerUser {
        /// `backup_swift_url` (its path ends with the account prefix `AUTH_`).
        base: Endpoint,
        /// `base` + the caller's project id; `None` when the operation has no caller
        /// (a health check, or work resumed after a restart).
        account: Option<Endpoint>,
    },
}

/// One Swift account.
pub struct SwiftStore {
    auth: Auth,
    /// `backup_swift_container`, probed by the per_user setup check.
    container: String,
    policy: RetryPolicy,
    session: RefCell<Option<Session>>,
    /// Uploads and downloads in flight (`backup_swift_in_flight`, default 4).
    in_flight: usize,
    uploads: Uploads,
}

fn required<'a>(s: &'a Settings, key: &str) -> Result<&'a str, DriverError> {
    s.get(key).filter(|v| !v.is_empty()).ok_or_else(|| DriverError::Invalid(format!("{key} is not set")))
}

/// A Swift container name: 1-256 bytes, no `/`.
pub fn is_container_name(name: &str) -> bool {
    (1..=256).contains(&name.len()) && !name.contains('/') && !name.chars().any(char::is_control)
}

/// A Keystone project id as it may stand in an account name.
fn is_project_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn io(m: String) -> DriverError {
    DriverError::Io(m)
}

impl SwiftStore {
    pub fn from_settings(s: &Settings) -> Result<SwiftStore, DriverError> {
        // Refused rather than ignored: an operator who set them expects that TLS check.
        if s.get("backup_swift_ca_cert_file").is_some_and(|v| !v.trim().is_empty()) {
            return Err(DriverError::Invalid(
                "backup_swift_ca_cert_file: not supported by this driver (no CA file of its own): remove it".into(),
            ));
        }
        // The endpoints this auth mode reaches (per_user: the storage URL alone).
        let reached: &[&str] = match s.get("backup_swift_auth") {
            Some("single_user") => &["backup_swift_auth_url", "backup_swift_url"],
            _ => &["backup_swift_url"],
        };
        let https = reached.iter().any(|k| s.get(k).is_some_and(|v| v.trim_start().starts_with("https://")));
        if s.bool("backup_swift_auth_insecure")? == Some(true) && https {
            return Err(DriverError::Invalid(
                "backup_swift_auth_insecure = true: this driver always checks the endpoint's certificate".into(),
            ));
        }
        let url = |key: &str, v: &str| Endpoint::parse(v).map_err(|e| DriverError::Invalid(format!("{key}: {e}")));
        let swift_url = s.get("backup_swift_url").filter(|v| !v.is_empty());
        let auth = match s.get("backup_swift_auth").unwrap_or("per_user") {
            "single_user" => {
                match s.get("backup_swift_auth_version").unwrap_or("1") {
                    "1" => {}
                    v => {
                        return Err(DriverError::Invalid(format!(
                            "backup_swift_auth_version = {v:?}: this driver speaks Swift's v1 auth (1)"
                        )));
                    }
                }
                Auth::SingleUser {
                    auth_url: url("backup_swift_auth_url", required(s, "backup_swift_auth_url")?)?,
                    user: required(s, "backup_swift_user")?.to_owned(),
                    key: required(s, "backup_swift_key")?.to_owned(),
                    storage_url: swift_url.map(|v| url("backup_swift_url", v)).transpose()?,
                }
            }
            "per_user" => {
                let base = swift_url.ok_or_else(|| {
                    DriverError::Invalid(
                        "backup_swift_auth = per_user needs backup_swift_url, the storage URL up to the account \
                         prefix (Cinder appends the project id), e.g. http://swift:8080/v1/AUTH_"
                            .into(),
                    )
                })?;
                let parsed = url("backup_swift_url", base)?;
                if !parsed.base_path.ends_with("/AUTH_") {
                    return Err(DriverError::Invalid(format!(
                        "backup_swift_url {base:?}: with per_user it ends with the account prefix AUTH_ (the \
                         project id is appended), e.g. http://swift:8080/v1/AUTH_"
                    )));
                }
                let account = match s.get(CALLER_PROJECT_SETTING) {
                    Some(p) if is_project_id(p) => {
                        Some(Endpoint { base_path: format!("{}{p}", parsed.base_path), ..parsed.clone() })
                    }
                    Some(p) => return Err(DriverError::Invalid(format!("caller's project id {p:?}"))),
                    None => None,
                };
                Auth::PerUser { base: parsed, account }
            }
            other => {
                return Err(DriverError::Invalid(format!("backup_swift_auth = {other:?}: single_user or per_user")));
            }
        };
        let container = s.get("backup_swift_container").unwrap_or(crate::chunked::DEFAULT_OBJECT_CONTAINER);
        if !is_container_name(container) {
            return Err(DriverError::Invalid(format!(
                "backup_swift_container {container:?} is not a Swift container name"
            )));
        }
        let in_flight = s.u64_or("backup_swift_in_flight", 4)?.clamp(1, 64) as usize;
        let authority = match &auth {
            Auth::SingleUser { auth_url, .. } => auth_url.authority.clone(),
            Auth::PerUser { base, .. } => base.authority.clone(),
        };
        Ok(SwiftStore {
            auth,
            container: container.to_owned(),
            policy: RetryPolicy {
                attempts: s.u64_or("backup_swift_retry_attempts", 3)?.clamp(1, 20) as u32,
                backoff: Duration::from_secs(s.u64_or("backup_swift_retry_backoff", 2)?.min(60)),
                timeouts: Timeouts { connect: Duration::from_secs(30), read: Duration::from_secs(120) },
                label: format!("Swift at {authority}"),
            },
            session: RefCell::new(None),
            in_flight,
            uploads: Uploads::new(in_flight),
        })
    }

    fn per_user(&self) -> bool {
        matches!(self.auth, Auth::PerUser { .. })
    }

    /// The session to send requests with: Swift's v1 auth (a token and the storage
    /// URL), or for per_user the caller's account (the host adds their token).
    fn authenticate(&self) -> Result<Session, DriverError> {
        let (auth_url, user, key, storage_url) = match &self.auth {
            Auth::SingleUser { auth_url, user, key, storage_url } => (auth_url, user, key, storage_url),
            Auth::PerUser { account: Some(storage), .. } => {
                return Ok(Session { storage: storage.clone(), token: None });
            }
            Auth::PerUser { account: None, .. } => {
                return Err(DriverError::Invalid(
                    "backup_swift_auth = per_user: this operation has no caller's Keystone token (it was resumed \
                     after a restart, or the host started it); ask for it again through the API"
                        .into(),
                ));
            }
        };
        let request = Request {
            method: "GET",
            path_and_query: if auth_url.base_path.is_empty() { "/".into() } else { auth_url.base_path.clone() },
            headers: vec![("X-Auth-User".into(), user.clone()), ("X-Auth-Key".into(), key.clone())],
            body: &[],
        };
        let r = transfer::call(self, "Swift auth", &[], None, || Ok((auth_url.clone(), request.clone())))?;
        if !(200..300).contains(&r.status) {
            return Err(DriverError::Invalid(format!(
                "Swift auth at {} refused user {user:?}: HTTP {}",
                auth_url.authority, r.status
            )));
        }
        let token = r.header("x-auth-token").ok_or_else(|| io("Swift auth answered without X-Auth-Token".into()))?;
        let storage = match storage_url {
            Some(e) => e.clone(),
            None => {
                let u =
                    r.header("x-storage-url").ok_or_else(|| io("Swift auth answered without X-Storage-Url".into()))?;
                Endpoint::parse(u).map_err(|e| io(format!("Swift auth's X-Storage-Url: {e}")))?
            }
        };
        Ok(Session { storage, token: Some(token.to_owned()) })
    }

    fn session(&self, renew: bool) -> Result<Session, DriverError> {
        if renew || self.session.borrow().is_none() {
            let s = self.authenticate()?;
            *self.session.borrow_mut() = Some(s);
        }
        Ok(self.session.borrow().clone().expect("set above"))
    }

    /// The path of `container[/object]` in the storage URL, with `query`.
    fn path(session: &Session, container: &str, object: Option<&str>, query: &str) -> String {
        let mut path = format!("{}/{}", session.storage.base_path, http::encode(container, false));
        if let Some(o) = object {
            path.push('/');
            path.push_str(&http::encode(o, true));
        }
        if !query.is_empty() {
            path.push('?');
            path.push_str(query);
        }
        path
    }

    fn request(
        &self,
        method: &'static str,
        container: &str,
        object: Option<&str>,
        query: &str,
        headers: &[(String, String)],
    ) -> Result<(Endpoint, Request<'static>), DriverError> {
        let session = self.session(false)?;
        let mut h = headers.to_vec();
        if let Some(token) = &session.token {
            h.push(("X-Auth-Token".into(), token.clone()));
        }
        let path_and_query = Self::path(&session, container, object, query);
        Ok((session.storage, Request { method, path_and_query, headers: h, body: &[] }))
    }

    /// One request on `container[/object]`, authenticated, retried as
    /// `backup_swift_retry_attempts` says (an expired token is renewed on the way).
    #[allow(clippy::too_many_arguments)]
    fn call(
        &self,
        method: &'static str,
        container: &str,
        object: Option<&str>,
        query: &str,
        headers: Vec<(String, String)>,
        body: &[u8],
        md5: Option<&[u8]>,
    ) -> Result<Response, DriverError> {
        let what = format!("{method} {}", object.unwrap_or(container));
        transfer::call(self, &what, body, md5, || self.request(method, container, object, query, &headers))
    }
}

impl ObjectRequests for SwiftStore {
    fn put_request(
        &self,
        container: &str,
        name: &str,
        digests: &Digests,
    ) -> Result<(Endpoint, Request<'static>), DriverError> {
        self.request("PUT", container, Some(name), "", &[("ETag".into(), hex(&digests.md5))])
    }

    fn get_request(&self, container: &str, name: &str) -> Result<(Endpoint, Request<'static>), DriverError> {
        self.request("GET", container, Some(name), "", &[])
    }

    /// 5xx, a broken connection, an expired token (401: a new one is fetched for the
    /// next try) or an ETag that is not what was sent: another try.
    fn judge(&self, r: Result<Response, HttpError>, what: &str, md5: Option<&[u8]>) -> Verdict {
        match r {
            Ok(r) if r.status >= 500 => Verdict::Retry(format!("{what}: HTTP {}", r.status)),
            // The caller's token cannot be renewed here.
            Ok(r) if r.status == 401 && self.per_user() => Verdict::Fail(DriverError::Invalid(format!(
                "{what}: HTTP 401: Swift refused the caller's Keystone token (expired, or not valid for the \
                 project's account)"
            ))),
            Ok(r) if r.status == 401 && !what.starts_with("Swift auth") => {
                *self.session.borrow_mut() = None;
                Verdict::Retry(format!("{what}: HTTP 401 (token expired?)"))
            }
            Ok(r) => {
                if let (Some(md5), true) = (md5, (200..300).contains(&r.status)) {
                    let etag = r.header("etag").unwrap_or("").trim_matches('"').to_ascii_lowercase();
                    if etag != hex(md5) {
                        return Verdict::Retry(format!("{what}: ETag {etag:?} is not the MD5 of what was sent"));
                    }
                }
                Verdict::Done(r)
            }
            Err(HttpError::Denied(m)) => Verdict::Fail(io(format!("Swift request refused by the host: {m}"))),
            Err(HttpError::Unavailable) => Verdict::Fail(io(HttpError::Unavailable.to_string())),
            Err(HttpError::Transport(m)) => Verdict::Retry(format!("{what}: {m}")),
        }
    }

    /// Swift checks every upload against its ETag; the answer must say the same.
    fn confirmed_md5<'a>(&self, digests: &'a Digests) -> Option<&'a [u8]> {
        Some(&digests.md5)
    }

    fn policy(&self) -> &RetryPolicy {
        &self.policy
    }
}

fn expect_ok(r: &Response, method: &str, what: &str) -> Result<(), DriverError> {
    let text = || String::from_utf8_lossy(&r.body[..r.body.len().min(200)]).into_owned();
    match r.status {
        200..=299 => Ok(()),
        404 => Err(DriverError::NotFound(format!("{method} {what}: HTTP 404"))),
        s => Err(io(format!("{method} {what}: HTTP {s}: {}", text()))),
    }
}

/// MD5 of a small object the driver writes itself (sha256file, metadata).
fn md5_of(data: &[u8]) -> Vec<u8> {
    use md5::Digest;
    md5::Md5::digest(data).to_vec()
}

impl ObjectStore for SwiftStore {
    fn put(&self, container: &str, name: &str, data: &[u8]) -> Result<(), DriverError> {
        self.uploads.settle(self, 0)?;
        let md5 = md5_of(data);
        let r = self.call("PUT", container, Some(name), "", vec![("ETag".into(), hex(&md5))], data, Some(&md5))?;
        expect_ok(&r, "PUT", name)
    }

    /// Up to `backup_swift_in_flight` uploads at once; an error shows on a later call,
    /// at the latest on `flush`.
    fn put_chunk(&self, container: &str, name: &str, chunk: impl VolumeChunk) -> Result<(), DriverError> {
        // The host hashed the stored bytes with the chunk: no volume data is hashed here,
        // and only the MD5 an ETag needs (WIT 0.2.5); it writes them into the request
        // too (0.2.7).
        let digests = Digests { sha256: Vec::new(), md5: chunk.stored_md5() };
        self.uploads.put(self, container, name, digests, chunk.into_body())
    }

    /// Every upload answered and stored.
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
        let r = self.call("GET", container, Some(name), "", Vec::new(), &[], None)?;
        expect_ok(&r, "GET", name)?;
        Ok(r.body)
    }

    /// Up to `backup_swift_in_flight` downloads at once, handed on in order.
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
        let mut marker = String::new();
        loop {
            let mut query = format!("format=json&prefix={}", http::encode(prefix, false));
            if !marker.is_empty() {
                query.push_str(&format!("&marker={}", http::encode(&marker, false)));
            }
            let r = self.call("GET", container, None, &query, Vec::new(), &[], None)?;
            if r.status == 404 {
                return Ok(names); // no container: nothing in it
            }
            expect_ok(&r, "listing", container)?;
            if r.status == 204 || r.body.is_empty() {
                return Ok(names);
            }
            let page: Vec<serde_json::Value> = serde_json::from_slice(&r.body)
                .map_err(|e| io(format!("listing {container}: not a JSON list: {e}")))?;
            let got: Vec<String> = page.iter().filter_map(|o| o["name"].as_str().map(str::to_owned)).collect();
            match got.last() {
                Some(last) => marker = last.clone(),
                None => return Ok(names),
            }
            names.extend(got);
        }
    }

    fn delete(&self, container: &str, name: &str) -> Result<(), DriverError> {
        self.uploads.drain();
        let r = self.call("DELETE", container, Some(name), "", Vec::new(), &[], None)?;
        match r.status {
            404 => Ok(()),
            _ => expect_ok(&r, "DELETE", name),
        }
    }

    fn check_container(&self, container: &str) -> Result<(), DriverError> {
        if is_container_name(container) {
            Ok(())
        } else {
            Err(DriverError::Invalid(format!("container {container:?} is not a Swift container name")))
        }
    }

    /// Cinder creates the container when it is missing (a PUT of an existing one is fine).
    fn create_container(&self, container: &str) -> Result<(), DriverError> {
        let r = self.call("PUT", container, None, "", Vec::new(), &[], None)?;
        expect_ok(&r, "creating container", container)
    }

    /// Cinder's `check_for_setup_error`: single_user, the auth endpoint answers and
    /// takes the key; per_user, the storage endpoint answers (with a caller, their token
    /// is taken too).
    fn check(&self) -> Result<(), DriverError> {
        match &self.auth {
            Auth::SingleUser { .. } => {
                let s = self.authenticate()?;
                *self.session.borrow_mut() = Some(s);
                Ok(())
            }
            Auth::PerUser { base, account } => {
                let session = Session { storage: account.as_ref().unwrap_or(base).clone(), token: None };
                let path_and_query = Self::path(&session, &self.container, None, "");
                let request = Request { method: "HEAD", path_and_query, headers: Vec::new(), body: &[] };
                // Without a caller any answer will do (it is a 401): the endpoint is up.
                let probe = |r: Result<Response, HttpError>| match r {
                    Ok(r) if r.status >= 500 => Verdict::Retry(format!("HEAD {}: HTTP {}", self.container, r.status)),
                    Ok(r) => Verdict::Done(r),
                    Err(HttpError::Transport(m)) => Verdict::Retry(format!("HEAD {}: {m}", self.container)),
                    Err(e) => Verdict::Fail(io(format!("Swift request refused by the host: {e}"))),
                };
                let r = transfer::call_judged(self, &probe, || Ok((session.storage.clone(), request.clone())))?;
                if account.is_some() && matches!(r.status, 401 | 403) {
                    return Err(DriverError::Invalid(format!(
                        "Swift refused the caller's Keystone token for {}: HTTP {}",
                        session.storage.base_path, r.status
                    )));
                }
                *self.session.borrow_mut() = Some(session);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(kv: &[(&str, &str)]) -> Settings {
        Settings::new(kv.iter().map(|(k, v)| crate::Setting { key: (*k).into(), value: (*v).into() }).collect())
    }

    #[test]
    fn settings_are_checked() {
        let good = [
            ("backup_swift_auth", "single_user"),
            ("backup_swift_auth_url", "http://127.0.0.1:7480/auth/1.0"),
            ("backup_swift_user", "test:swift"),
            ("backup_swift_key", "k"),
        ];
        let st = SwiftStore::from_settings(&settings(&good)).unwrap();
        assert_eq!(st.policy.attempts, 3);
        assert!(matches!(&st.auth, Auth::SingleUser { auth_url, .. } if auth_url.base_path == "/auth/1.0"));
        let e = SwiftStore::from_settings(&settings(&good[1..])).err().unwrap();
        assert!(format!("{e:?}").contains("per_user needs backup_swift_url"), "Cinder's default is explained: {e:?}");
        let mut bad = good.to_vec();
        bad.push(("backup_swift_container", "a/b"));
        assert!(SwiftStore::from_settings(&settings(&bad)).is_err());
        let mut bad = good.to_vec();
        bad.push(("backup_swift_auth_version", "3"));
        assert!(SwiftStore::from_settings(&settings(&bad)).is_err());
        for (k, v) in [("backup_swift_ca_cert_file", "/etc/ca.pem"), ("backup_swift_auth_insecure", "true")] {
            let mut bad = good.to_vec();
            bad[1] = ("backup_swift_auth_url", "https://swift.example.net/auth/1.0");
            bad.push((k, v));
            let e = SwiftStore::from_settings(&settings(&bad)).err().unwrap_or_else(|| panic!("{k} accepted"));
            assert!(format!("{e:?}").contains(k), "{e:?}");
        }
        let mut fine = good.to_vec();
        fine.push(("backup_swift_auth_insecure", "False"));
        assert!(SwiftStore::from_settings(&settings(&fine)).is_ok());
        fine.push(("backup_swift_auth_insecure", "True"));
        assert!(SwiftStore::from_settings(&settings(&fine)).is_ok(), "nothing to check over plain HTTP");
    }

    #[test]
    fn per_user_names_the_callers_account() {
        let url = ("backup_swift_url", "http://127.0.0.1:7480/swift/v1/AUTH_");
        let st = SwiftStore::from_settings(&settings(&[url])).unwrap();
        let e = st.authenticate().err().unwrap();
        assert!(format!("{e:?}").contains("no caller's Keystone token"), "{e:?}");
        let st = SwiftStore::from_settings(&settings(&[url, (CALLER_PROJECT_SETTING, "0a1b2c")])).unwrap();
        let s = st.authenticate().unwrap();
        assert_eq!((s.storage.base_path.as_str(), s.token), ("/swift/v1/AUTH_0a1b2c", None));
        for bad in [
            vec![("backup_swift_url", "http://127.0.0.1:7480/swift/v1/")],
            vec![url, (CALLER_PROJECT_SETTING, "../x")],
            vec![("backup_swift_auth", "per_user")],
        ] {
            assert!(SwiftStore::from_settings(&settings(&bad)).is_err(), "{bad:?}");
        }
    }
}
