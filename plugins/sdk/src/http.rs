//! A small blocking HTTP/1.1 client over `wasi:http/outgoing-handler`, for object-store
//! drivers (S3, Swift). The host sends each request only to the backend's `network`
//! grant and, with an object API, only for the operation's backup's objects; a refused
//! request comes back as [`HttpError::Denied`].
//!
//! Only the wasm build sends anything: natively every call is [`HttpError::Unavailable`]
//! (the pure parts of drivers are tested natively, their requests in the e2e suite).

use std::time::Duration;

/// An endpoint: scheme and `host:port`, from a URL like `http://127.0.0.1:7480/swift/v1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub https: bool,
    pub authority: String,
    /// The URL's path without a trailing `/` (empty for the root).
    pub base_path: String,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!("{url:?}: an endpoint URL starts with http:// or https://"));
        };
        let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
        if authority.is_empty() || authority.contains(['?', '#', '@']) {
            return Err(format!("{url:?}: no host in the endpoint URL"));
        }
        let authority = if authority.contains(':') && !authority.ends_with(']') {
            authority.to_owned()
        } else {
            format!("{authority}:{}", if https { 443 } else { 80 })
        };
        let base_path = match path.trim_end_matches('/') {
            "" => String::new(),
            p => format!("/{p}"),
        };
        Ok(Endpoint { https, authority, base_path })
    }

    /// The `Host` header value: the authority without a default port.
    pub fn host_header(&self) -> &str {
        let default = if self.https { ":443" } else { ":80" };
        self.authority.strip_suffix(default).unwrap_or(&self.authority)
    }
}

/// A request to send.
pub struct Request<'a> {
    pub method: &'a str,
    /// Path and query, already percent-encoded.
    pub path_and_query: String,
    pub headers: Vec<(String, String)>,
    pub body: &'a [u8],
}

/// What came back.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The host refused to send it (not granted, or not this operation's objects).
    Denied(String),
    /// No answer: connection refused or reset, a timeout, a broken body. Worth a retry.
    Transport(String),
    /// Not built for wasm.
    Unavailable,
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Denied(m) => write!(f, "refused by the host: {m}"),
            HttpError::Transport(m) => write!(f, "{m}"),
            HttpError::Unavailable => write!(f, "HTTP is only sent from the wasm build"),
        }
    }
}

/// Timeouts of one request.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    /// First byte of the answer, and between two of its bytes.
    pub read: Duration,
}

/// Wait `d` (retry backoff).
pub fn sleep(d: Duration) {
    #[cfg(target_arch = "wasm32")]
    wasip2::clocks::monotonic_clock::subscribe_duration(d.as_nanos() as u64).block();
    #[cfg(not(target_arch = "wasm32"))]
    std::thread::sleep(d);
}

#[cfg(not(target_arch = "wasm32"))]
pub fn send(_endpoint: &Endpoint, _request: &Request<'_>, _timeouts: Timeouts) -> Result<Response, HttpError> {
    Err(HttpError::Unavailable)
}

/// Send `request` and read the whole answer.
#[cfg(target_arch = "wasm32")]
pub fn send(endpoint: &Endpoint, request: &Request<'_>, timeouts: Timeouts) -> Result<Response, HttpError> {
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{
        ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
    };
    use wasip2::io::streams::StreamError;

    let bad = |what: &str| HttpError::Transport(format!("building the request: {what}"));
    let mut fields: Vec<(String, Vec<u8>)> =
        request.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone().into_bytes())).collect();
    // The length is stated: a body of unknown size goes out chunked, which S3 refuses
    // for a PUT (411) and radosgw for a DELETE (501).
    if !matches!(request.method, "GET" | "HEAD") && !fields.iter().any(|(k, _)| k == "content-length") {
        fields.push(("content-length".into(), request.body.len().to_string().into_bytes()));
    }
    let headers = Fields::from_list(&fields).map_err(|e| bad(&format!("headers: {e:?}")))?;
    let req = OutgoingRequest::new(headers);
    let method = match request.method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "POST" => Method::Post,
        other => Method::Other(other.to_owned()),
    };
    req.set_method(&method).map_err(|_| bad("method"))?;
    req.set_scheme(Some(if endpoint.https { &Scheme::Https } else { &Scheme::Http })).map_err(|_| bad("scheme"))?;
    req.set_authority(Some(&endpoint.authority)).map_err(|_| bad("authority"))?;
    req.set_path_with_query(Some(&request.path_and_query)).map_err(|_| bad("path"))?;
    let options = RequestOptions::new();
    let ns = |d: Duration| d.as_nanos() as u64;
    let _ = options.set_connect_timeout(Some(ns(timeouts.connect)));
    let _ = options.set_first_byte_timeout(Some(ns(timeouts.read)));
    let _ = options.set_between_bytes_timeout(Some(ns(timeouts.read)));
    let body = req.body().map_err(|_| bad("body"))?;
    let answer = match outgoing_handler::handle(req, Some(options)) {
        Ok(f) => f,
        Err(ErrorCode::HttpRequestDenied) => {
            return Err(HttpError::Denied(format!("{} {}", request.method, request.path_and_query)));
        }
        Err(e) => return Err(HttpError::Transport(format!("{e:?}"))),
    };
    {
        let out = body.write().map_err(|_| bad("body stream"))?;
        let mut rest = request.body;
        while !rest.is_empty() {
            let n = match out.check_write() {
                Ok(0) => {
                    out.subscribe().block();
                    continue;
                }
                Ok(n) => n.min(rest.len() as u64) as usize,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(HttpError::Transport(format!("sending the body: {}", e.to_debug_string())));
                }
                Err(StreamError::Closed) => return Err(HttpError::Transport("sending the body: closed".into())),
            };
            out.write(&rest[..n]).map_err(|e| HttpError::Transport(format!("sending the body: {e:?}")))?;
            rest = &rest[n..];
        }
        let _ = out.flush();
        out.subscribe().block();
    }
    OutgoingBody::finish(body, None).map_err(|e| HttpError::Transport(format!("finishing the body: {e:?}")))?;
    let resp = loop {
        if let Some(a) = answer.get() {
            break a;
        }
        answer.subscribe().block();
    };
    let resp = match resp {
        Ok(Ok(r)) => r,
        Ok(Err(ErrorCode::HttpRequestDenied)) => {
            return Err(HttpError::Denied(format!("{} {}", request.method, request.path_and_query)));
        }
        Ok(Err(e)) => return Err(HttpError::Transport(format!("{e:?}"))),
        Err(()) => return Err(HttpError::Transport("no response".into())),
    };
    let status = resp.status();
    let headers =
        resp.headers().entries().into_iter().map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned())).collect();
    let incoming = resp.consume().map_err(|_| HttpError::Transport("reading the answer".into()))?;
    let mut data = Vec::new();
    {
        let stream = incoming.stream().map_err(|_| HttpError::Transport("reading the answer".into()))?;
        loop {
            match stream.blocking_read(4 << 20) {
                Ok(chunk) => data.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(HttpError::Transport(format!("reading the answer: {}", e.to_debug_string())));
                }
            }
        }
    }
    drop(IncomingBody::finish(incoming));
    Ok(Response { status, headers, body: data })
}

/// Percent-encode for a URL path (`/` kept) or, with `keep_slash` false, a query value,
/// as S3's signature and Swift expect (RFC 3986 unreserved characters stay).
pub fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        let e = Endpoint::parse("http://127.0.0.1:7480/").unwrap();
        assert_eq!((e.https, e.authority.as_str(), e.base_path.as_str()), (false, "127.0.0.1:7480", ""));
        let e = Endpoint::parse("https://s3.example.net/swift/v1/").unwrap();
        assert_eq!(
            (e.authority.as_str(), e.base_path.as_str(), e.host_header()),
            ("s3.example.net:443", "/swift/v1", "s3.example.net")
        );
        assert!(Endpoint::parse("s3.example.net").is_err());
        assert!(Endpoint::parse("http://").is_err());
        assert_eq!(encode("volume_a/2026 x+y", true), "volume_a/2026%20x%2By");
        assert_eq!(encode("a/b", false), "a%2Fb");
    }
}
