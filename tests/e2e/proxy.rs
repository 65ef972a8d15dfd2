//! A TCP forwarder to radosgw that a test can cut, and that can spoil chosen
//! requests: the endpoint a backend is given, so a test can take it away, bring it
//! back, or make one object's request fail once while radosgw stays the real thing.
//!
//! The host sends each wasi:http request on a connection of its own
//! (`wasmtime_wasi_http::default_send_request`, no pool), so one accepted connection
//! is one request: the forwarder reads its head, notes it, and applies the first
//! queued [`Fault`] it matches. It moves at most ~30 MB/s per connection, so a backup
//! is still running when a test acts on it, and uploads overlap.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What to do to one request instead of forwarding it as it came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spoil {
    /// Take its body and answer `503 Service Unavailable` without passing it on.
    Unavailable,
    /// Break the connection halfway through the body: the request's (an upload) or
    /// the answer's (a download).
    Reset,
    /// Pass it on, but give the answer an `ETag` that is no object's MD5.
    WrongEtag,
}

/// A spoiled request: the first `method` request whose path ends with `suffix`.
#[derive(Debug, Clone)]
pub(crate) struct Fault {
    pub method: &'static str,
    pub suffix: String,
    pub spoil: Spoil,
}

/// One request as the forwarder saw it.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub method: String,
    pub path: String,
    /// Its head's lines after the request line.
    pub headers: Vec<String>,
}

impl Seen {
    /// The value of header `name` (any case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find_map(|l| l.split_once(':').filter(|(k, _)| k.trim().eq_ignore_ascii_case(name)).map(|(_, v)| v.trim()))
    }
}

#[derive(Default)]
struct Shared {
    conns: Mutex<Vec<TcpStream>>,
    faults: Mutex<Vec<Fault>>,
    seen: Mutex<Vec<Seen>>,
    /// Object uploads sent and not answered yet, and the most at once.
    uploads: AtomicUsize,
    most_uploads: AtomicUsize,
}

pub(crate) struct Proxy {
    pub port: u16,
    up: Arc<AtomicBool>,
    shared: Arc<Shared>,
}

/// Counts an upload from its head sent on until its answer's head is passed back
/// (the driver cannot start another before that).
struct Upload(Arc<Shared>);

impl Upload {
    fn new(shared: &Arc<Shared>) -> Upload {
        let now = shared.uploads.fetch_add(1, Ordering::SeqCst) + 1;
        shared.most_uploads.fetch_max(now, Ordering::SeqCst);
        Upload(shared.clone())
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        self.0.uploads.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Both ends of a connection, shut when it ends however it ends.
struct Ends(Vec<TcpStream>);

impl Drop for Ends {
    fn drop(&mut self) {
        for s in &self.0 {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

impl Proxy {
    /// A port nothing listens on yet.
    pub fn new() -> Proxy {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        Proxy { port, up: Arc::new(AtomicBool::new(false)), shared: Arc::default() }
    }

    /// Spoil these requests, each once, in order of arrival.
    pub fn spoil(&self, faults: Vec<Fault>) {
        self.shared.faults.lock().unwrap().extend(faults);
    }

    /// Faults queued and not met yet.
    pub fn faults_left(&self) -> Vec<Fault> {
        self.shared.faults.lock().unwrap().clone()
    }

    /// Every request so far, and forget them.
    pub fn take_seen(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.shared.seen.lock().unwrap())
    }

    /// The most object uploads in flight at once so far, and start counting again.
    pub fn take_most_uploads(&self) -> usize {
        self.shared.most_uploads.swap(0, Ordering::SeqCst)
    }

    /// Listen, forwarding each connection to `to`.
    pub fn start(&self, to: u16) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        self.up.store(true, Ordering::SeqCst);
        let (up, shared) = (self.up.clone(), self.shared.clone());
        std::thread::spawn(move || {
            while up.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        shared.conns.lock().unwrap().push(client.try_clone().unwrap());
                        let (up, shared) = (up.clone(), shared.clone());
                        std::thread::spawn(move || serve(client, to, &up, &shared));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
    }

    /// Stop listening and break every connection.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.shared.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}

/// Is `path` one of a backup's data objects (`…_backup_<id>-NNNNN`)?
pub(crate) fn is_object(path: &str) -> bool {
    let Some((name, tail)) = path.rsplit_once('-') else { return false };
    name.contains("_backup_") && tail.len() == 5 && tail.bytes().all(|b| b.is_ascii_digit())
}

/// Read up to the end of a message head (`\r\n\r\n`): the head, and what came after it.
fn read_head(from: &mut TcpStream) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut piece = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Some((buf, rest));
        }
        let n = from.read(&mut piece).ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&piece[..n]);
        if buf.len() > 1 << 20 {
            return None;
        }
    }
}

fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.trim().eq_ignore_ascii_case("content-length")))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Copy from `from` into `into` until either ends or `limit` bytes passed, ~30 MB/s.
fn pump(from: &mut TcpStream, into: &mut TcpStream, limit: usize) {
    let mut buf = vec![0u8; 32 * 1024];
    let mut left = limit;
    while left > 0 {
        match from.read(&mut buf[..left.min(32 * 1024)]) {
            Ok(0) | Err(_) => break,
            Ok(n) if into.write_all(&buf[..n]).is_err() => break,
            Ok(n) => left -= n,
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn serve(mut client: TcpStream, to: u16, up: &AtomicBool, shared: &Arc<Shared>) {
    let mut ends = Ends(vec![client.try_clone().unwrap()]);
    let Some((head, rest)) = read_head(&mut client) else { return };
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let mut words = lines.next().unwrap_or("").split_whitespace();
    let (method, path) = (words.next().unwrap_or("").to_owned(), words.next().unwrap_or("").to_owned());
    let headers = lines.filter(|l| !l.is_empty()).map(str::to_owned).collect();
    let spoil = {
        let mut faults = shared.faults.lock().unwrap();
        let hit = faults.iter().position(|f| f.method == method && path.ends_with(&f.suffix));
        hit.map(|i| faults.remove(i).spoil)
    };
    shared.seen.lock().unwrap().push(Seen { method: method.clone(), path: path.clone(), headers });
    let body = content_length(&text);

    if spoil == Some(Spoil::Unavailable) {
        // Take the whole body first, so the client reads the answer, not a reset.
        let mut left = body.saturating_sub(rest.len());
        let mut buf = vec![0u8; 64 * 1024];
        while left > 0 {
            match client.read(&mut buf[..left.min(64 * 1024)]) {
                Ok(0) | Err(_) => break,
                Ok(n) => left -= n,
            }
        }
        let _ = client.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        return;
    }
    if !up.load(Ordering::SeqCst) {
        return;
    }
    let Ok(mut server) = TcpStream::connect(("127.0.0.1", to)) else { return };
    shared.conns.lock().unwrap().push(server.try_clone().unwrap());
    ends.0.push(server.try_clone().unwrap());
    let upload = (method == "PUT" && is_object(&path)).then(|| Upload::new(shared));
    if server.write_all(&head).is_err() || server.write_all(&rest).is_err() {
        return;
    }
    if spoil == Some(Spoil::Reset) && method != "GET" {
        // Half the body on, then the connection goes.
        pump(&mut client, &mut server, (body / 2).saturating_sub(rest.len()));
        return;
    }
    let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let up_stream = std::thread::spawn(move || {
        pump(&mut c2, &mut s2, usize::MAX);
        let _ = s2.shutdown(Shutdown::Write);
    });
    let Some((answer, rest)) = read_head(&mut server) else { return };
    let answer = match spoil {
        Some(Spoil::WrongEtag) => String::from_utf8_lossy(&answer)
            .split("\r\n")
            .map(|l| match l.split_once(':') {
                Some((k, _)) if k.eq_ignore_ascii_case("etag") => {
                    "ETag: \"00000000000000000000000000000000\"".to_owned()
                }
                _ => l.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("\r\n")
            .into_bytes(),
        _ => answer,
    };
    let length = content_length(&String::from_utf8_lossy(&answer));
    if client.write_all(&answer).is_err() {
        return;
    }
    drop(upload);
    if spoil == Some(Spoil::Reset) {
        // A download: half its body back, then the connection goes.
        let half = (length / 2).saturating_sub(rest.len());
        let _ = client.write_all(&rest[..rest.len().min(length / 2)]);
        pump(&mut server, &mut client, half);
        return;
    }
    if client.write_all(&rest).is_err() {
        return;
    }
    pump(&mut server, &mut client, usize::MAX);
    drop(ends);
    let _ = up_stream.join();
}
