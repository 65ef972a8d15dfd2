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
#[derive(Debug, Clone)]
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
    /// A successful GET's body kept by the host instead ([`Pending::hold_in_host`]);
    /// `body` is then empty.
    pub held: Option<crate::HeldBytes>,
}

impl Response {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// The first of `headers` called `name` (case-insensitive).
fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
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

/// Send `request` and read the whole answer.
pub fn send(endpoint: &Endpoint, request: &Request<'_>, timeouts: Timeouts) -> Result<Response, HttpError> {
    let mut p = Pending::start(endpoint, request, Body::Bytes(request.body.to_vec()), timeouts)?;
    p.finish()
}

/// What a request sends: bytes the driver holds, or a chunk's stored bytes, which the
/// host writes into the request from its own memory (WIT 0.2.7 `chunk.write-stored`):
/// they never enter the driver. Kept until the answer, for a retry.
pub enum Body {
    Bytes(Vec<u8>),
    Chunk(crate::Chunk),
}

impl Body {
    /// Its length in bytes (the request's Content-Length).
    pub fn len(&self) -> u64 {
        match self {
            Body::Bytes(b) => b.len() as u64,
            Body::Chunk(c) => c.stored_length(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for Body {
    fn default() -> Self {
        Body::Bytes(Vec::new())
    }
}

/// A request on its way: its body still going out, or its answer awaited. Several can
/// be in flight at once ([`Flights`]); the host sends each on its own connection.
pub struct Pending {
    #[cfg(target_arch = "wasm32")]
    inner: wasm::Pending,
}

impl Pending {
    /// Start sending `request` with `body` (`request.body` is not used: the body is
    /// moved in, and kept until the answer, for a retry: [`Self::take_body`]). It is
    /// written as [`Flights::next_done`] or [`Self::finish`] moves it along.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn start(
        _endpoint: &Endpoint,
        _request: &Request<'_>,
        _body: Body,
        _timeouts: Timeouts,
    ) -> Result<Pending, HttpError> {
        Err(HttpError::Unavailable)
    }

    #[cfg(target_arch = "wasm32")]
    pub fn start(
        endpoint: &Endpoint,
        request: &Request<'_>,
        body: Body,
        timeouts: Timeouts,
    ) -> Result<Pending, HttpError> {
        wasm::Pending::start(endpoint, request, body, timeouts).map(|inner| Pending { inner })
    }

    /// Whether its body is still going out (dropping it then aborts the request: the
    /// store never sees a complete object).
    pub fn sending(&self) -> bool {
        #[cfg(target_arch = "wasm32")]
        return self.inner.sending();
        #[cfg(not(target_arch = "wasm32"))]
        false
    }

    /// Whether its body is a chunk the host writes (it keeps the chunk's handle).
    pub fn holds_chunk(&self) -> bool {
        #[cfg(target_arch = "wasm32")]
        return matches!(self.inner.body, Body::Chunk(_));
        #[cfg(not(target_arch = "wasm32"))]
        false
    }

    /// Have a successful GET's body kept in host memory (WIT 0.2.8 `held-bytes`) rather
    /// than read into the driver: [`Response::held`]. A restore writes it from there.
    pub fn hold_in_host(&mut self) {
        #[cfg(target_arch = "wasm32")]
        {
            self.inner.hold = true;
        }
    }

    /// The body it was started with.
    pub fn take_body(&mut self) -> Body {
        #[cfg(target_arch = "wasm32")]
        return std::mem::take(&mut self.inner.body);
        #[cfg(not(target_arch = "wasm32"))]
        Body::default()
    }

    /// Wait for the answer (writing the rest of the body first) and read it whole.
    pub fn finish(&mut self) -> Result<Response, HttpError> {
        #[cfg(target_arch = "wasm32")]
        return self.inner.finish();
        #[cfg(not(target_arch = "wasm32"))]
        Err(HttpError::Unavailable)
    }
}

/// Requests in flight, each with the caller's `T`, at most `max` at once.
pub struct Flights<T> {
    max: usize,
    flying: Vec<(T, Pending)>,
}

impl<T> Flights<T> {
    pub fn new(max: usize) -> Self {
        Flights { max: max.max(1), flying: Vec::new() }
    }

    pub fn len(&self) -> usize {
        self.flying.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flying.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.flying.len() >= self.max
    }

    pub fn push(&mut self, tag: T, pending: Pending) {
        self.flying.push((tag, pending));
    }

    /// How many in flight send a chunk the host writes ([`Pending::holds_chunk`]).
    pub fn chunks_held(&self) -> usize {
        self.flying.iter().filter(|(_, p)| p.holds_chunk()).count()
    }

    /// Every request in flight, out of the set.
    pub fn take_all(&mut self) -> Vec<(T, Pending)> {
        std::mem::take(&mut self.flying)
    }

    /// Move every request along until one has its answer: its tag, the answer and the
    /// body it was sent with (for a retry). `None` when none is in flight.
    pub fn next_done(&mut self) -> Option<(T, Result<Response, HttpError>, Body)> {
        if self.flying.is_empty() {
            return None;
        }
        #[cfg(target_arch = "wasm32")]
        let ready = wasm::wait_any(self.flying.iter_mut().map(|(_, p)| &mut p.inner));
        #[cfg(not(target_arch = "wasm32"))]
        let ready = 0;
        let (tag, mut p) = self.flying.swap_remove(ready);
        let answer = p.finish();
        Some((tag, answer, p.take_body()))
    }
}

#[cfg(target_arch = "wasm32")]
mod wasm {
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{
        ErrorCode, Fields, FutureIncomingResponse, IncomingBody, IncomingResponse, Method, OutgoingBody,
        OutgoingRequest, RequestOptions, Scheme,
    };
    use wasip2::io::streams::{InputStream, OutputStream, StreamError};

    use super::{Body, Endpoint, HttpError, Request, Response, Timeouts};
    use crate::bindings::holdfast::backup::volume::{HeldBytes, StreamEnd};

    /// Where a request is: its body going out, its answer awaited, the answer's body
    /// coming in (read as it arrives, so several downloads move at once), or over.
    enum Stage {
        Sending(OutputStream, OutgoingBody),
        /// A body write that failed: the answer says whether the host refused it.
        Awaiting(Option<HttpError>),
        Reading(Box<Incoming>),
        Done(Result<Response, HttpError>),
        Taken,
    }

    /// An answer whose body is coming in; fields drop stream first, as WASI requires.
    struct Incoming {
        stream: InputStream,
        body: Option<IncomingBody>,
        _response: IncomingResponse,
        status: u16,
        headers: Vec<(String, String)>,
        data: Vec<u8>,
        /// Where the body goes instead of `data` (`Pending::hold`).
        held: Option<HeldBytes>,
    }

    pub struct Pending {
        what: String,
        /// A GET: its answer's body is sized from its `Content-Length`.
        get: bool,
        /// A successful GET's body is kept by the host (`held-bytes`).
        pub(super) hold: bool,
        answer: FutureIncomingResponse,
        stage: Stage,
        pub(super) body: Body,
        written: u64,
    }

    fn denied(what: &str) -> HttpError {
        HttpError::Denied(what.to_owned())
    }

    /// One read of an answer's body: at most this much is copied into the guest at once.
    const READ: u64 = 4 << 20;

    /// Most room set aside for a body before it comes: the host's largest chunk, so the
    /// largest object a chunked driver stores.
    const RESERVE_MAX: usize = 64 << 20;

    impl Pending {
        pub fn start(
            endpoint: &Endpoint,
            request: &Request<'_>,
            body: Body,
            timeouts: Timeouts,
        ) -> Result<Pending, HttpError> {
            let bad = |what: &str| HttpError::Transport(format!("building the request: {what}"));
            let mut fields: Vec<(String, Vec<u8>)> =
                request.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone().into_bytes())).collect();
            // The length is stated: a body of unknown size goes out chunked, which S3
            // refuses for a PUT (411) and radosgw for a DELETE (501).
            if !matches!(request.method, "GET" | "HEAD") && !fields.iter().any(|(k, _)| k == "content-length") {
                fields.push(("content-length".into(), body.len().to_string().into_bytes()));
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
            req.set_scheme(Some(if endpoint.https { &Scheme::Https } else { &Scheme::Http }))
                .map_err(|_| bad("scheme"))?;
            req.set_authority(Some(&endpoint.authority)).map_err(|_| bad("authority"))?;
            req.set_path_with_query(Some(&request.path_and_query)).map_err(|_| bad("path"))?;
            let options = RequestOptions::new();
            let ns = |d: std::time::Duration| d.as_nanos() as u64;
            let _ = options.set_connect_timeout(Some(ns(timeouts.connect)));
            let _ = options.set_first_byte_timeout(Some(ns(timeouts.read)));
            let _ = options.set_between_bytes_timeout(Some(ns(timeouts.read)));
            let outgoing = req.body().map_err(|_| bad("body"))?;
            let what = format!("{} {}", request.method, request.path_and_query);
            let answer = match outgoing_handler::handle(req, Some(options)) {
                Ok(f) => f,
                Err(ErrorCode::HttpRequestDenied) => return Err(denied(&what)),
                Err(e) => return Err(HttpError::Transport(format!("{what}: {e:?}"))),
            };
            let out = outgoing.write().map_err(|_| bad("body stream"))?;
            let get = request.method == "GET";
            Ok(Pending { what, get, hold: false, answer, stage: Stage::Sending(out, outgoing), body, written: 0 })
        }

        /// Whether its body is still going out.
        pub(super) fn sending(&self) -> bool {
            matches!(self.stage, Stage::Sending(..))
        }

        /// Move it along as far as it goes without waiting; true once it is over.
        fn advance(&mut self) -> bool {
            loop {
                let next =
                    match &mut self.stage {
                        Stage::Sending(out, _) => match write_some(out, &self.body, &mut self.written, &self.what) {
                            Ok(true) => return false,
                            Ok(false) => {
                                let Stage::Sending(out, body) = std::mem::replace(&mut self.stage, Stage::Taken) else {
                                    unreachable!()
                                };
                                let _ = out.flush();
                                drop(out);
                                match OutgoingBody::finish(body, None) {
                                    Ok(()) => Stage::Awaiting(None),
                                    Err(e) => Stage::Awaiting(Some(HttpError::Transport(format!(
                                        "{}: finishing the body: {e:?}",
                                        self.what
                                    )))),
                                }
                            }
                            // A body the host stopped taking: the request may have been refused.
                            Err(e) => Stage::Awaiting(Some(e)),
                        },
                        Stage::Awaiting(failed) => match self.answer.get() {
                            None => return false,
                            Some(answer) => match (answer, failed.take()) {
                                (Ok(Err(ErrorCode::HttpRequestDenied)), _) => Stage::Done(Err(denied(&self.what))),
                                (_, Some(e)) => Stage::Done(Err(e)),
                                (Ok(Ok(r)), None) => self.incoming(r),
                                (Ok(Err(e)), None) => {
                                    Stage::Done(Err(HttpError::Transport(format!("{}: {e:?}", self.what))))
                                }
                                (Err(()), None) => {
                                    Stage::Done(Err(HttpError::Transport(format!("{}: no response", self.what))))
                                }
                            },
                        },
                        Stage::Reading(r) if r.held.is_some() => {
                            let held = r.held.as_ref().expect("checked");
                            match held.read_from(&r.stream) {
                                Ok(0) => return false,
                                Ok(_) => continue,
                                Err(StreamEnd::Closed) => self.answered(),
                                Err(StreamEnd::Failed(m)) => Stage::Done(Err(HttpError::Transport(format!(
                                    "{}: reading the answer: {m}",
                                    self.what
                                )))),
                                // The host's limits: another try would end the same way.
                                Err(StreamEnd::Refused(m)) => {
                                    Stage::Done(Err(HttpError::Denied(format!("{}: {m}", self.what))))
                                }
                            }
                        }
                        Stage::Reading(r) => match r.stream.read(READ) {
                            Ok(chunk) if chunk.is_empty() => return false,
                            Ok(chunk) => {
                                r.data.extend_from_slice(&chunk);
                                continue;
                            }
                            Err(StreamError::Closed) => self.answered(),
                            Err(StreamError::LastOperationFailed(e)) => Stage::Done(Err(HttpError::Transport(
                                format!("{}: reading the answer: {}", self.what, e.to_debug_string()),
                            ))),
                        },
                        Stage::Done(_) | Stage::Taken => return true,
                    };
                self.stage = next;
            }
        }

        /// The answer's body is all in: the resources in the order WASI wants them dropped.
        fn answered(&mut self) -> Stage {
            let Stage::Reading(r) = std::mem::replace(&mut self.stage, Stage::Taken) else { unreachable!() };
            let Incoming { stream, body, _response, status, headers, data, held } = *r;
            drop(stream);
            if let Some(body) = body {
                drop(IncomingBody::finish(body));
            }
            drop(_response);
            Stage::Done(Ok(Response { status, headers, body: data, held }))
        }

        /// The answer's head is in: start reading its body.
        fn incoming(&self, resp: IncomingResponse) -> Stage {
            let reading = |m: &str| HttpError::Transport(format!("{}: reading the answer: {m}", self.what));
            let status = resp.status();
            let headers: Vec<(String, String)> = resp
                .headers()
                .entries()
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
                .collect();
            let Ok(body) = resp.consume() else { return Stage::Done(Err(reading("no body"))) };
            let Ok(stream) = body.stream() else { return Stage::Done(Err(reading("no stream"))) };
            // A GET's body sized from the announced length (grown by doubling, a 50 MiB
            // object was copied again at each step), up to the longest object a driver
            // stores: the server's word is not trusted further, since growing the guest
            // past its memory grant ends the driver, and a body that is longer still
            // grows as before.
            let mut data = Vec::new();
            let announced = super::header(&headers, "content-length").and_then(|v| v.trim().parse::<usize>().ok());
            let fetched = self.get && (200..300).contains(&status);
            // Held by the host: the room is set aside there (it takes the server's word
            // only up to the largest object it writes).
            let held = (fetched && self.hold).then(|| HeldBytes::new(announced.unwrap_or(0) as u64));
            if let (true, None, Some(len)) = (fetched, &held, announced) {
                let _ = data.try_reserve_exact(len.min(RESERVE_MAX));
            }
            let incoming = Incoming { stream, body: Some(body), _response: resp, status, headers, data, held };
            Stage::Reading(Box::new(incoming))
        }

        /// What to wait on for it to move.
        fn pollable(&self) -> wasip2::io::poll::Pollable {
            match &self.stage {
                Stage::Sending(out, _) => out.subscribe(),
                Stage::Reading(r) => r.stream.subscribe(),
                _ => self.answer.subscribe(),
            }
        }

        /// Wait for the answer (writing the rest of the body first) and read it whole.
        pub fn finish(&mut self) -> Result<Response, HttpError> {
            while !self.advance() {
                self.pollable().block();
            }
            match std::mem::replace(&mut self.stage, Stage::Taken) {
                Stage::Done(r) => r,
                _ => Err(HttpError::Transport(format!("{}: the answer was already taken", self.what))),
            }
        }
    }

    /// Write what `out` takes now of the body from `*written`; true while more is left.
    fn write_some(out: &OutputStream, body: &Body, written: &mut u64, what: &str) -> Result<bool, HttpError> {
        let failed = |e: StreamError| match e {
            StreamError::LastOperationFailed(e) => {
                HttpError::Transport(format!("{what}: sending the body: {}", e.to_debug_string()))
            }
            StreamError::Closed => HttpError::Transport(format!("{what}: sending the body: closed")),
        };
        let len = body.len();
        while *written < len {
            match body {
                Body::Bytes(bytes) => {
                    let n = match out.check_write() {
                        Ok(0) => return Ok(true),
                        Ok(n) => n.min(len - *written) as usize,
                        Err(e) => return Err(failed(e)),
                    };
                    let at = *written as usize;
                    out.write(&bytes[at..at + n]).map_err(failed)?;
                    *written += n as u64;
                }
                // The host writes as much as the stream takes now, from its own memory.
                Body::Chunk(chunk) => match chunk.write_stored(out, *written) {
                    Ok(at) if at <= *written => return Ok(true),
                    Ok(at) => *written = at.min(len),
                    Err(e) => return Err(HttpError::Transport(format!("{what}: sending the body: {e:?}"))),
                },
            }
        }
        Ok(false)
    }

    /// Move every request along (bodies out, answers in) until one is over; its index.
    pub fn wait_any<'a>(flying: impl Iterator<Item = &'a mut Pending>) -> usize {
        let mut flying: Vec<&mut Pending> = flying.collect();
        loop {
            let mut over = None;
            for (i, p) in flying.iter_mut().enumerate() {
                if p.advance() && over.is_none() {
                    over = Some(i);
                }
            }
            if let Some(i) = over {
                return i;
            }
            let pollables: Vec<_> = flying.iter().map(|p| p.pollable()).collect();
            let refs: Vec<&wasip2::io::poll::Pollable> = pollables.iter().collect();
            wasip2::io::poll::poll(&refs);
        }
    }
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
