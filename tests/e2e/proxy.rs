//! A TCP forwarder to radosgw that a test can cut, and that can spoil chosen
//! requests: the endpoint a backend is given, so a test can take it away, bring it
//! back, or make one object's request fail once while radosgw stays the real thing.
//!
//! The host sends each wasi:http request on a connection of its own, so one accepted
//! connection is one request: the forwarder reads its head, counts it, and applies the
//! first queued [`Fault`] it matches. It moves at most ~30 MB/s per connection, so a
//! backup is still running when a test acts on it and uploads overlap.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What to do to one request instead of forwarding it as it came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spoil {
    /// Answer `503 Service Unavailable` without passing it on.
    Unavailable,
    /// Pass on its head and some of its body, then break the connection.
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
}

#[derive(Default)]
struct Shared {
    conns: Mutex<Vec<TcpStream>>,
    faults: Mutex<Vec<Fault>>,
    seen: Mutex<Vec<Seen>>,
    /// Object uploads (`PUT` of a path ending `-NNNNN`) open now, and the most at once.
    uploads: AtomicUsize,
    most_uploads: AtomicUsize,
}

pub(crate) struct Proxy {
    pub port: u16,
    up: Arc<AtomicBool>,
    shared: Arc<Shared>,
}

/// Counts an open upload; drops it when both directions of its connection ended.
struct Upload(Arc<Shared>);

impl Drop for Upload {
    fn drop(&mut self) {
        self.0.uploads.fetch_sub(1, Ordering::SeqCst);
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

    /// The most object uploads open at once so far, and start counting again.
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
                        let shared = shared.clone();
                        std::thread::spawn(move || serve(client, to, shared));
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

/// Is `path` one of a backup's data objects (`…-NNNNN`)?
pub(crate) fn is_object(path: &str) -> bool {
    let tail = path.rsplit('-').next().unwrap_or("");
    tail.len() == 5 && tail.bytes().all(|b| b.is_ascii_digit())
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

/// Copy `from` into `into` until either ends, ~30 MB/s.
fn pump(mut from: TcpStream, mut into: TcpStream) {
    let mut buf = vec![0u8; 32 * 1024];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 || into.write_all(&buf[..n]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = into.shutdown(Shutdown::Both);
}

fn serve(mut client: TcpStream, to: u16, shared: Arc<Shared>) {
    let Some((head, rest)) = read_head(&mut client) else { return };
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut words = text.split_whitespace();
    let (method, path) = (words.next().unwrap_or("").to_owned(), words.next().unwrap_or("").to_owned());
    let spoil = {
        let mut faults = shared.faults.lock().unwrap();
        let hit = faults.iter().position(|f| f.method == method && path.ends_with(&f.suffix));
        hit.map(|i| faults.remove(i).spoil)
    };
    shared.seen.lock().unwrap().push(Seen { method: method.clone(), path: path.clone() });

    if spoil == Some(Spoil::Unavailable) {
        // Take the whole body first, so the client reads the answer, not a reset.
        let mut left = content_length(&text).saturating_sub(rest.len());
        let mut sink = vec![0u8; 64 * 1024];
        while left > 0 {
            match client.read(&mut sink[..left.min(64 * 1024)]) {
                Ok(0) | Err(_) => break,
                Ok(n) => left -= n,
            }
        }
        let _ = client.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        let _ = client.shutdown(Shutdown::Both);
        return;
    }
    let Ok(mut server) = TcpStream::connect(("127.0.0.1", to)) else { return };
    shared.conns.lock().unwrap().extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
    if spoil == Some(Spoil::Reset) {
        let _ = server.write_all(&head);
        let _ = server.write_all(&rest[..rest.len().min(64 * 1024)]);
        let _ = client.shutdown(Shutdown::Both);
        let _ = server.shutdown(Shutdown::Both);
        return;
    }
    if server.write_all(&head).is_err() || server.write_all(&rest).is_err() {
        return;
    }
    let upload = (method == "PUT" && is_object(&path)).then(|| {
        let now = shared.uploads.fetch_add(1, Ordering::SeqCst) + 1;
        shared.most_uploads.fetch_max(now, Ordering::SeqCst);
        Arc::new(Upload(shared.clone()))
    });
    let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let held = upload.clone();
    let up = std::thread::spawn(move || {
        pump(c2, s2);
        drop(held);
    });
    if spoil == Some(Spoil::WrongEtag) {
        let Some((answer, rest)) = read_head(&mut server) else { return };
        let answer = String::from_utf8_lossy(&answer)
            .split("\r\n")
            .map(|l| match l.split_once(':') {
                Some((k, _)) if k.eq_ignore_ascii_case("etag") => {
                    "ETag: \"00000000000000000000000000000000\"".to_owned()
                }
                _ => l.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("\r\n");
        if client.write_all(answer.as_bytes()).is_err() || client.write_all(&rest).is_err() {
            return;
        }
    }
    pump(server, client);
    let _ = up.join();
    drop(upload);
}
