//! `wasi:http/outgoing-handler` behind the backend's `network` grant: a request goes
//! out only to an authority (`host:port`, the port defaulted by the scheme) the
//! operator listed; every other one is answered `HTTP-request-denied` without a
//! connection being opened. An empty grant (the default) denies everything.
//!
//! With an object API (`grants.object_api`), each request is also read as an
//! object-store call (`object_request`) and held to the operation's scope, as the
//! host's own store holds `objects` calls: a backup reaches its own objects and its
//! parent's, a restore its chain's, a delete its backup's. A refused request is
//! answered `HTTP-request-denied` and remembered, and the operation fails with the
//! reason whatever the driver does next.

use std::sync::Arc;

use holdfast_driver::ObjectApi;
use holdfast_store::{Location, Scope};
use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::object_request;

/// The send hook of one instance.
pub struct NetworkGate {
    allowed: Arc<[String]>,
    api: Option<ObjectApi>,
    scope: Scope,
    /// The first request refused, and why.
    denied: Option<String>,
}

impl NetworkGate {
    pub fn new(allowed: &[String], api: Option<ObjectApi>, scope: Scope) -> Self {
        NetworkGate { allowed: allowed.iter().map(|a| a.to_ascii_lowercase()).collect(), api, scope, denied: None }
    }

    /// Whether `uri` is inside the grant.
    pub fn allows(&self, uri: &http::Uri) -> bool {
        authority(uri).is_some_and(|a| self.allowed.contains(&a))
    }

    /// The backup this operation writes, once it has recorded where (the same
    /// location the host's store binds). Without an object API there is nothing to
    /// hold requests to (the Ceph driver records pool and image names, more than once).
    pub fn bind_write(&mut self, own: Location) -> Result<(), holdfast_store::StoreError> {
        match self.api {
            Some(_) => self.scope.bind_write(own),
            None => Ok(()),
        }
    }

    /// The object-store API requests are held to, if any.
    pub fn object_api(&self) -> Option<ObjectApi> {
        self.api
    }

    /// Why the first refused request was refused, if one was.
    pub fn denied(&self) -> Option<&str> {
        self.denied.as_deref()
    }

    /// The reason `request` may not go out, if any.
    fn refusal(&self, request: &http::Request<WasiBody>) -> Option<String> {
        if !self.allows(request.uri()) {
            return Some(format!("{} is not in the backend's network grant", cut_uri(request.uri())));
        }
        let api = self.api?;
        let what = match object_request::parse(api, request.method(), request.uri(), request.headers()) {
            Ok(what) => what,
            Err(why) => {
                return Some(format!("{} {}: {why}", request.method(), cut_uri(request.uri())));
            }
        };
        what.check(&self.scope).err().map(|e| format!("{} {}: {e}", request.method(), cut_uri(request.uri())))
    }
}

fn cut_uri(uri: &http::Uri) -> String {
    holdfast_driver::untrusted::truncate_text(&uri.to_string(), 200)
}

/// `host:port` of `uri`, lower-case, with the scheme's port when none is written.
fn authority(uri: &http::Uri) -> Option<String> {
    let host = uri.host()?.to_ascii_lowercase();
    let port = uri.port_u16().or_else(|| match uri.scheme_str() {
        Some("https") | None => Some(443),
        Some("http") => Some(80),
        Some(_) => None,
    })?;
    Some(format!("{host}:{port}"))
}

type Sent = Box<
    dyn Future<Output = Result<(http::Response<WasiBody>, Box<dyn Future<Output = Result<(), Error>> + Send>), Error>>
        + Send,
>;

impl WasiHttpHooks for NetworkGate {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Sent {
        drop(fut);
        if let Some(why) = self.refusal(&request) {
            tracing::warn!(%why, "driver's HTTP request denied");
            self.denied.get_or_insert(why);
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        Box::new(async move {
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((res.map(BodyExt::boxed_unsync), Box::new(io) as Box<dyn Future<Output = _> + Send>))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_granted_authorities_pass() {
        let gate = NetworkGate::new(&["s3.example.net:443".into(), "127.0.0.1:8080".into()], None, Scope::none());
        let ok = |u: &str| gate.allows(&u.parse().unwrap());
        assert!(ok("https://S3.example.net/bucket"));
        assert!(ok("https://s3.example.net:443/"));
        assert!(ok("http://127.0.0.1:8080/x"));
        assert!(!ok("http://s3.example.net/"), "port 80 is not granted");
        assert!(!ok("http://127.0.0.1:8081/"));
        assert!(!ok("http://169.254.169.254/latest/meta-data"));
        assert!(!NetworkGate::new(&[], None, Scope::none()).allows(&"https://s3.example.net/".parse().unwrap()));
    }
}
