//! `wasi:http/outgoing-handler` behind the backend's `network` grant: a request goes
//! out only to an authority (`host:port`, the port defaulted by the scheme) the
//! operator listed; every other one is answered `HTTP-request-denied` without a
//! connection being opened. An empty grant (the default) denies everything.

use std::sync::Arc;

use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// The send hook of one instance.
pub struct NetworkGate {
    allowed: Arc<[String]>,
}

impl NetworkGate {
    pub fn new(allowed: &[String]) -> Self {
        NetworkGate { allowed: allowed.iter().map(|a| a.to_ascii_lowercase()).collect() }
    }

    /// Whether `uri` is inside the grant.
    pub fn allows(&self, uri: &http::Uri) -> bool {
        authority(uri).is_some_and(|a| self.allowed.contains(&a))
    }
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
        if !self.allows(request.uri()) {
            tracing::warn!(uri = %request.uri(), "driver's HTTP request denied: not in the backend's network grant");
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
        let gate = NetworkGate::new(&["s3.example.net:443".into(), "127.0.0.1:8080".into()]);
        let ok = |u: &str| gate.allows(&u.parse().unwrap());
        assert!(ok("https://S3.example.net/bucket"));
        assert!(ok("https://s3.example.net:443/"));
        assert!(ok("http://127.0.0.1:8080/x"));
        assert!(!ok("http://s3.example.net/"), "port 80 is not granted");
        assert!(!ok("http://127.0.0.1:8081/"));
        assert!(!ok("http://169.254.169.254/latest/meta-data"));
        assert!(!NetworkGate::new(&[]).allows(&"https://s3.example.net/".parse().unwrap()));
    }
}
