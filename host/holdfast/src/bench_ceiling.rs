//! The endpoint's own ceiling for `holdfast bench --object-store`: plain HTTP/1.1 PUTs
//! and GETs of 50 MiB objects to radosgw's Swift API with N connections, bodies from
//! memory and discarded on arrival — no hashing, compression, sandbox or disk. No
//! driver can move stored bytes faster than this on the machine (radosgw, the OSD and
//! the client share its cores).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use holdfast_rbd::dev::Rgw;

const OBJECT: usize = 50 << 20;

/// Raw MB/s of storing and of fetching `total` bytes with `flights` connections.
pub struct Ceiling {
    pub put_mbps: f64,
    pub get_mbps: f64,
}

pub fn measure(rgw: &Rgw, total: u64, flights: usize) -> Result<Ceiling> {
    let (token, base) = swift_auth(rgw)?;
    let container = format!("{base}/bench-ceiling");
    request(rgw, "PUT", &container, &[("X-Auth-Token", &token)], &[])?;
    let objects = total.div_ceil(OBJECT as u64) as usize;
    // Random bytes (what compressed chunks look like), generated once.
    let mut body = vec![0u8; OBJECT];
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for b in body.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b.copy_from_slice(&x.to_le_bytes()[..b.len()]);
    }
    let names: Vec<String> = (0..objects).map(|i| format!("{container}/o{i:05}")).collect();
    let bytes = (objects * OBJECT) as f64;
    let run = |method: &'static str| -> Result<f64> {
        let t = Instant::now();
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..flights.max(1))
                .map(|w| {
                    let (names, body, token) = (&names, &body, &token);
                    s.spawn(move || -> Result<()> {
                        for name in names.iter().skip(w).step_by(flights.max(1)) {
                            let sent: &[u8] = if method == "PUT" { body } else { &[] };
                            request(rgw, method, name, &[("X-Auth-Token", token)], sent)?;
                        }
                        Ok(())
                    })
                })
                .collect();
            workers.into_iter().try_for_each(|w| w.join().map_err(|_| anyhow::anyhow!("a worker panicked"))?)
        })?;
        Ok(bytes / 1e6 / t.elapsed().as_secs_f64())
    };
    let put_mbps = run("PUT")?;
    let get_mbps = run("GET")?;
    for name in &names {
        request(rgw, "DELETE", name, &[("X-Auth-Token", &token)], &[])?;
    }
    Ok(Ceiling { put_mbps, get_mbps })
}

/// Bytes stored in a bucket or container (radosgw's Swift API sees the S3 user's
/// buckets too).
pub fn stored_bytes(rgw: &Rgw, container: &str) -> Result<u64> {
    let (token, base) = swift_auth(rgw)?;
    let headers = request(rgw, "HEAD", &format!("{base}/{container}"), &[("X-Auth-Token", &token)], &[])?;
    header(&headers, "x-container-bytes-used").and_then(|v| v.parse().ok()).context("no X-Container-Bytes-Used")
}

/// Swift v1 auth: the token and the storage path.
fn swift_auth(rgw: &Rgw) -> Result<(String, String)> {
    let headers =
        request(rgw, "GET", "/auth/1.0", &[("X-Auth-User", &rgw.swift_user), ("X-Auth-Key", &rgw.swift_key)], &[])?;
    let token = header(&headers, "x-auth-token").context("swift auth: no token")?;
    let url = header(&headers, "x-storage-url").context("swift auth: no storage url")?;
    let path = url.splitn(4, '/').nth(3).map(|p| format!("/{p}")).context("swift auth: storage url")?;
    Ok((token.to_owned(), path))
}

/// One request on its own connection, refused unless answered 2xx; the answer's
/// headers (its body is read and dropped).
fn request(rgw: &Rgw, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Headers> {
    let mut conn = TcpStream::connect(rgw.authority())?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", rgw.authority());
    for (k, v) in headers {
        head += &format!("{k}: {v}\r\n");
    }
    head += &format!("Content-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    conn.write_all(head.as_bytes())?;
    conn.write_all(body)?;
    let (status, headers) = answer(&mut BufReader::with_capacity(1 << 20, conn), method == "HEAD")?;
    if status / 100 != 2 {
        bail!("{method} {path}: HTTP {status}");
    }
    Ok(headers)
}

fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

type Headers = Vec<(String, String)>;

/// Status and headers; the body is read (to Content-Length, or to the end of the
/// connection) and dropped.
fn answer(r: &mut impl BufRead, head_only: bool) -> Result<(u16, Headers)> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status: u16 = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).context("no HTTP status")?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    if head_only {
        return Ok((status, headers));
    }
    let length =
        headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("content-length")).and_then(|(_, v)| v.parse().ok());
    let mut sink = std::io::sink();
    match length {
        Some(n) => std::io::copy(&mut r.take(n), &mut sink)?,
        None => std::io::copy(r, &mut sink)?,
    };
    Ok((status, headers))
}
