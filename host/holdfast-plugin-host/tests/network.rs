//! `wasi:http` from a driver goes out only to the backend's granted endpoints.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use holdfast_driver::{BackupDriver, Grants};
use holdfast_plugin_host::DriverComponent;

/// A one-page HTTP server on loopback; counts the connections it accepted.
fn server() -> (String, Arc<AtomicUsize>) {
    server_of(b"ok".to_vec())
}

/// A server answering every request with `page`.
fn server_of(page: Vec<u8>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let authority = listener.local_addr().unwrap().to_string();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            counted.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", page.len());
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(&page);
        }
    });
    (authority, hits)
}

fn probe(authority: &str, network: Vec<String>) -> String {
    probe_with(authority, Grants { network, ..Grants::default() }, None)
}

/// `held`: the probe's `held` setting (`yes`, `twice`).
fn probe_with(authority: &str, grants: Grants, held: Option<&str>) -> String {
    let mut config = vec![("authority".to_owned(), authority.to_owned())];
    if let Some(held) = held {
        config.push(("held".to_owned(), held.to_owned()));
    }
    let d = DriverComponent::load("probe", holdfast_plugin_artifacts::HOSTILE_NET_PROBE_BYTES, grants, config).unwrap();
    assert_eq!(d.id().wit_version, "0.2.8");
    d.setup().expect_err("the probe always reports through its error").to_string()
}

#[test]
fn requests_reach_granted_endpoints_only() {
    let (authority, hits) = server();
    let denied = probe(&authority, vec![]);
    // The operation fails with the host's reason, then what the driver made of the
    // refusal (the probe reports the error its request got).
    let refused = |why: &str| {
        why.contains("network: denied")
            && why.contains("not in the backend's network grant")
            && why.contains("HttpRequestDenied")
    };
    assert!(refused(&denied), "no grant, no network: {denied}");
    let other_port = probe(&authority, vec!["127.0.0.1:1".into()]);
    assert!(refused(&other_port) && other_port.contains(&authority), "{other_port}");
    assert_eq!(hits.load(Ordering::SeqCst), 0, "a denied request never opens a connection");
    let granted = probe(&authority, vec![authority.clone()]);
    assert!(granted.contains("status=200"), "{granted}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

/// A body read into the host's `held-bytes` (WIT 0.2.8) arrives whole, within the
/// driver's memory grant (with its own memory) and the host's largest write; past
/// either the read fails with the reason; a held-bytes dropped gives its room back.
#[test]
fn held_bytes_take_a_body_within_the_drivers_grant() {
    const MIB: usize = 1 << 20;
    let grant = |authority: &str, memory: usize| Grants {
        network: vec![authority.to_owned()],
        memory_bytes: Some(memory as u64),
        ..Grants::default()
    };
    let (small, _) = server_of(vec![7u8; 3 * MIB + 5]);
    let held = probe_with(&small, grant(&small, 64 * MIB), Some("yes"));
    assert!(held.contains(&format!("held={}", 3 * MIB + 5)), "{held}");
    // 20 MiB twice under a 32 MiB grant: only if the first is given back.
    let (twenty, _) = server_of(vec![7u8; 20 * MIB]);
    let twice = probe_with(&twenty, grant(&twenty, 32 * MIB), Some("twice"));
    assert_eq!(twice.matches(&format!("held={}", 20 * MIB)).count(), 2, "{twice}");
    // Over the grant: the body is 40 MiB, the grant 32.
    let (big, _) = server_of(vec![7u8; 40 * MIB]);
    let over = probe_with(&big, grant(&big, 32 * MIB), Some("yes"));
    assert!(over.contains("refused: held-bytes:") && over.contains("would pass its memory grant"), "{over}");
    // Over the largest object a write takes (64 MiB + 1/64 + 4 KiB), within the grant.
    let (huge, _) = server_of(vec![7u8; 70 * MIB]);
    let over = probe_with(&huge, grant(&huge, 256 * MIB), Some("yes"));
    assert!(
        over.contains("refused: held-bytes: over") && over.contains("the largest object the host writes"),
        "{over}"
    );
}
