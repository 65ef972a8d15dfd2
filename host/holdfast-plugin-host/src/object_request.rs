//! What an S3 or Swift request a driver sends asks of the object store, read from its
//! method, path, query and headers, so the network gate can hold it to the operation's
//! scope as the host's own store does (`holdfast_store::Scope`).
//!
//! Only the requests a chunked driver needs are understood; anything else is refused:
//! an unknown query parameter, a copy (`x-amz-copy-source`, `X-Copy-From`, `COPY`), a
//! manifest (`X-Object-Manifest`, `multipart-manifest`), a multipart upload, `POST`.
//! S3 is path-style (`/bucket/key`); Swift is `[/prefix]/v1[/AUTH_account]/container/object`.

use holdfast_driver::ObjectApi;
use holdfast_store::{Scope, StoreError};

/// One request, as the store sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectRequest {
    /// Swift v1 auth (`GET …/auth/1.0`): credentials only, no objects.
    Auth,
    /// Does the container exist (`HEAD`)?
    Probe {
        container: String,
    },
    /// Create the container (`PUT`).
    CreateContainer {
        container: String,
    },
    Read {
        container: String,
        name: String,
    },
    Write {
        container: String,
        name: String,
    },
    List {
        container: String,
        prefix: String,
    },
}

impl ObjectRequest {
    /// Whether `scope` allows it. A probe names no object and may be sent by any
    /// operation (setup checks the endpoint with it); a container may be created only
    /// by the backup that writes into it.
    pub fn check(&self, scope: &Scope) -> Result<(), StoreError> {
        match self {
            ObjectRequest::Auth | ObjectRequest::Probe { .. } => Ok(()),
            ObjectRequest::CreateContainer { container } => match scope.writable() {
                Some(w) if w.container == *container => Ok(()),
                _ => Err(StoreError::Denied(format!(
                    "creating container {container:?}: only the backup that writes into it may"
                ))),
            },
            ObjectRequest::Read { container, name } => scope.check_read(container, name),
            ObjectRequest::Write { container, name } => scope.check_write(container, name),
            ObjectRequest::List { container, prefix } => scope.check_list(container, prefix),
        }
    }
}

/// Query parameters of a listing (both APIs); an object request takes none.
const LIST_PARAMS: &[&str] = &[
    "list-type",
    "prefix",
    "continuation-token",
    "max-keys",
    "start-after",
    "marker",
    "format",
    "limit",
    "encoding-type",
];

/// Read `method path?query` with `headers` as an `api` request.
pub fn parse(
    api: ObjectApi,
    method: &http::Method,
    uri: &http::Uri,
    headers: &http::HeaderMap,
) -> Result<ObjectRequest, String> {
    for h in ["x-amz-copy-source", "x-copy-from", "x-object-manifest", "destination", "x-symlink-target"] {
        if headers.contains_key(h) {
            return Err(format!("header {h} reaches other objects"));
        }
    }
    let path = uri.path();
    let query = parse_query(uri.query().unwrap_or(""))?;
    if let Some((k, _)) = query.iter().find(|(k, _)| !LIST_PARAMS.contains(&k.as_str())) {
        return Err(format!("query parameter {k:?} is not one a chunked driver sends"));
    }
    let segments = segments(path)?;
    let (container, name) = match api {
        ObjectApi::S3 => match segments.split_first() {
            Some((bucket, rest)) => (bucket.clone(), (!rest.is_empty()).then(|| rest.join("/"))),
            None => return Err("the service root (listing buckets)".into()),
        },
        ObjectApi::Swift => {
            if method == http::Method::GET
                && matches!(segments.last().map(String::as_str), Some("1.0" | "v1.0"))
                && segments.iter().rev().nth(1).is_some_and(|s| s == "auth")
            {
                return Ok(ObjectRequest::Auth);
            }
            let Some(v1) = segments.iter().position(|s| s == "v1") else {
                return Err("not a Swift v1 path".into());
            };
            let mut rest = &segments[v1 + 1..];
            if rest.first().is_some_and(|a| a.starts_with("AUTH_")) {
                rest = &rest[1..];
            }
            match rest.split_first() {
                Some((c, obj)) => (c.clone(), (!obj.is_empty()).then(|| obj.join("/"))),
                None => return Err("the account (listing containers)".into()),
            }
        }
    };
    let listing = query.iter().any(|(k, _)| k == "prefix" || k == "list-type");
    match (name, method.as_str()) {
        (Some(_), _) if !query.is_empty() => Err("query parameters on an object".into()),
        (Some(name), "GET" | "HEAD") => Ok(ObjectRequest::Read { container, name }),
        (Some(name), "PUT" | "DELETE") => Ok(ObjectRequest::Write { container, name }),
        (None, "GET") if listing => {
            let prefix = query.into_iter().find(|(k, _)| k == "prefix").map(|(_, v)| v).unwrap_or_default();
            Ok(ObjectRequest::List { container, prefix })
        }
        (None, "HEAD") if query.is_empty() => Ok(ObjectRequest::Probe { container }),
        (None, "PUT") if query.is_empty() => Ok(ObjectRequest::CreateContainer { container }),
        (_, m) => Err(format!("{m} on a {}", if query.is_empty() { "container" } else { "container with this query" })),
    }
}

/// The account a Swift path names (`AUTH_…`, the segment after `v1`), if any.
pub fn swift_account(uri: &http::Uri) -> Option<String> {
    let segments = segments(uri.path()).ok()?;
    let v1 = segments.iter().position(|s| s == "v1")?;
    segments.get(v1 + 1).filter(|a| a.starts_with("AUTH_")).cloned()
}

/// Path segments, percent-decoded; `.`, `..`, empty segments and control characters
/// are refused, since a server may read them differently than this check does.
fn segments(path: &str) -> Result<Vec<String>, String> {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    trimmed
        .split('/')
        .map(|s| {
            let d = decode(s)?;
            if d.chars().any(char::is_control) || d.split('/').any(|p| p.is_empty() || p == "." || p == "..") {
                Err(format!("path segment {s:?}"))
            } else {
                Ok(d)
            }
        })
        .collect()
}

fn parse_query(q: &str) -> Result<Vec<(String, String)>, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

/// Percent-decoding (`+` stays `+`: S3 and Swift sign and read the path that way).
fn decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or_else(|| format!("bad escape in {s:?}"))?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("bad escape in {s:?}"))?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use holdfast_store::Location;

    fn req(api: ObjectApi, method: &str, uri: &str) -> Result<ObjectRequest, String> {
        parse(api, &method.parse().unwrap(), &uri.parse().unwrap(), &http::HeaderMap::new())
    }

    const OWN: &str = "volume_v1/20261203101500/az_nova_backup_b1";

    #[test]
    fn s3_requests_map_to_objects() {
        use ObjectRequest::*;
        let s3 = |m: &str, u: &str| req(ObjectApi::S3, m, u).unwrap();
        let name = format!("{OWN}-00001");
        assert_eq!(
            s3("PUT", &format!("http://h:1/volumebackups/{name}")),
            Write { container: "volumebackups".into(), name: name.clone() }
        );
        assert_eq!(s3("GET", "http://h:1/vb/a%2Fb"), Read { container: "vb".into(), name: "a/b".into() });
        assert_eq!(s3("HEAD", "http://h:1/vb"), Probe { container: "vb".into() });
        assert_eq!(s3("PUT", "http://h:1/vb/"), CreateContainer { container: "vb".into() });
        assert_eq!(
            s3("GET", "http://h:1/vb?list-type=2&prefix=volume_v1%2F2026"),
            List { container: "vb".into(), prefix: "volume_v1/2026".into() }
        );
        for (m, u) in [
            ("GET", "http://h:1/"),
            ("POST", "http://h:1/vb?delete"),
            ("PUT", "http://h:1/vb/o?uploadId=1&partNumber=1"),
            ("GET", "http://h:1/vb/o?acl"),
            ("GET", "http://h:1/vb/x/../o"),
            ("GET", "http://h:1/vb/x/%2e%2e/o"),
            ("GET", "http://h:1/vb//o"),
            ("DELETE", "http://h:1/vb"),
            ("GET", "http://h:1/vb"),
        ] {
            assert!(req(ObjectApi::S3, m, u).is_err(), "{m} {u}");
        }
        let mut copy = http::HeaderMap::new();
        copy.insert("x-amz-copy-source", "/vb/other".parse().unwrap());
        assert!(parse(ObjectApi::S3, &http::Method::PUT, &"http://h:1/vb/o".parse().unwrap(), &copy).is_err());
    }

    #[test]
    fn swift_requests_map_to_objects() {
        use ObjectRequest::*;
        let sw = |m: &str, u: &str| req(ObjectApi::Swift, m, u).unwrap();
        assert_eq!(sw("GET", "http://h:1/auth/1.0"), Auth);
        assert_eq!(
            sw("PUT", "http://h:1/swift/v1/vb/a/b-00001"),
            Write { container: "vb".into(), name: "a/b-00001".into() }
        );
        assert_eq!(sw("GET", "http://h:1/v1/AUTH_t/vb/a"), Read { container: "vb".into(), name: "a".into() });
        assert_eq!(
            sw("GET", "http://h:1/v1/AUTH_t/vb?format=json&prefix=a%2F"),
            List { container: "vb".into(), prefix: "a/".into() }
        );
        assert_eq!(sw("PUT", "http://h:1/swift/v1/vb"), CreateContainer { container: "vb".into() });
        assert!(req(ObjectApi::Swift, "GET", "http://h:1/v1/AUTH_t").is_err(), "listing the account");
        assert!(req(ObjectApi::Swift, "COPY", "http://h:1/v1/AUTH_t/vb/a").is_err());
        assert!(req(ObjectApi::Swift, "GET", "http://h:1/v1/AUTH_t/vb/a?multipart-manifest=get").is_err());
    }

    #[test]
    fn requests_are_held_to_the_scope() {
        let mut scope = Scope::reading(vec![Location::new("vb", "volume_v1/20261201000000/az_nova_backup_p")]);
        let w = |n: &str| ObjectRequest::Write { container: "vb".into(), name: n.into() };
        assert!(w(&format!("{OWN}-00001")).check(&scope).is_err(), "nothing written before the location is recorded");
        assert!(ObjectRequest::CreateContainer { container: "vb".into() }.check(&scope).is_err());
        scope.bind_write(Location::new("vb", OWN)).unwrap();
        assert!(w(&format!("{OWN}-00001")).check(&scope).is_ok());
        assert!(ObjectRequest::CreateContainer { container: "vb".into() }.check(&scope).is_ok());
        assert!(ObjectRequest::CreateContainer { container: "other".into() }.check(&scope).is_err());
        assert!(w("volume_v1/20261201000000/az_nova_backup_p-00001").is_err_on(&scope), "the parent is read-only");
        let r = |n: &str| ObjectRequest::Read { container: "vb".into(), name: n.into() };
        assert!(r("volume_v1/20261201000000/az_nova_backup_p_sha256file").check(&scope).is_ok());
        assert!(r("volume_v2/20261201000000/az_nova_backup_x-00001").check(&scope).is_err());
        let list = |p: &str| ObjectRequest::List { container: "vb".into(), prefix: p.into() };
        assert!(list(OWN).check(&scope).is_ok());
        assert!(list("volume_v1/").check(&scope).is_err(), "a prefix reaching other backups of the volume");
        assert!(ObjectRequest::Probe { container: "anything".into() }.check(&Scope::none()).is_ok());
    }

    impl ObjectRequest {
        fn is_err_on(&self, scope: &Scope) -> bool {
            self.check(scope).is_err()
        }
    }
}
