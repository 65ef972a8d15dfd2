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
//!
//! With `grants.caller_token` (Swift's `per_user`), a request that passed those checks
//! and names the caller's own account (`…/v1/AUTH_<project id>/…`) goes out with the
//! caller's Keystone token as `X-Auth-Token`; the driver never holds it.

use std::sync::Arc;

use holdfast_driver::{Caller, ObjectApi};
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
    /// Whose token goes on requests to their own Swift account (granted backends only).
    caller: Option<Caller>,
}

impl NetworkGate {
    pub fn new(allowed: &[String], api: Option<ObjectApi>, scope: Scope) -> Self {
        NetworkGate {
            allowed: allowed.iter().map(|a| a.to_ascii_lowercase()).collect(),
            api,
            scope,
            denied: None,
            caller: None,
        }
    }

    /// Requests to `caller`'s own Swift account carry their token.
    pub fn with_caller(mut self, caller: Option<Caller>) -> Self {
        self.caller = caller;
        self
    }

    /// The caller's token on a request to their own account; any other request goes
    /// as the driver wrote it.
    fn add_caller_token(&self, request: &mut http::Request<WasiBody>) {
        let Some(caller) = &self.caller else { return };
        if self.api != Some(ObjectApi::Swift) {
            return;
        }
        let own = object_request::swift_account(request.uri())
            .is_some_and(|a| a.strip_prefix("AUTH_") == Some(caller.project_id.as_str()));
        if !own {
            return;
        }
        if let Ok(mut value) = http::HeaderValue::from_str(caller.token.expose()) {
            value.set_sensitive(true);
            request.headers_mut().insert("x-auth-token", value);
        }
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
        let mut request = request;
        if let Some(why) = self.refusal(&request) {
            tracing::warn!(%why, "driver's HTTP request denied");
            self.denied.get_or_insert(why);
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        self.add_caller_token(&mut request);
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

    fn sent(gate: &NetworkGate, uri: &str) -> Option<String> {
        let mut r = http::Request::builder().uri(uri).body(WasiBody::default()).unwrap();
        gate.add_caller_token(&mut r);
        r.headers().get("x-auth-token").map(|v| v.to_str().unwrap().to_owned())
    }

    #[test]
    fn the_callers_token_goes_only_to_their_own_swift_account() {
        let caller = Caller { project_id: "p1".into(), token: holdfast_driver::CallerToken::new("tok") };
        let allowed = ["127.0.0.1:7480".to_owned()];
        let gate = NetworkGate::new(&allowed, Some(ObjectApi::Swift), Scope::none()).with_caller(Some(caller.clone()));
        assert_eq!(sent(&gate, "http://127.0.0.1:7480/swift/v1/AUTH_p1/volumebackups").as_deref(), Some("tok"));
        assert_eq!(sent(&gate, "http://127.0.0.1:7480/v1/AUTH_p1/c/o").as_deref(), Some("tok"));
        assert_eq!(sent(&gate, "http://127.0.0.1:7480/v1/AUTH_p2/c/o"), None, "another project's account");
        assert_eq!(sent(&gate, "http://127.0.0.1:7480/v1/AUTH_p1x/c/o"), None);
        assert_eq!(sent(&gate, "http://127.0.0.1:7480/v1/c/o"), None, "no account named");
        assert_eq!(sent(&gate, "http://127.0.0.1:7480/auth/1.0"), None);
        let s3 = NetworkGate::new(&allowed, Some(ObjectApi::S3), Scope::none()).with_caller(Some(caller));
        assert_eq!(sent(&s3, "http://127.0.0.1:7480/v1/AUTH_p1/c/o"), None, "S3 takes no Keystone token");
        let none = NetworkGate::new(&allowed, Some(ObjectApi::Swift), Scope::none());
        assert_eq!(sent(&none, "http://127.0.0.1:7480/v1/AUTH_p1/c/o"), None);
    }
}
