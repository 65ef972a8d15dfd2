//! `wasi:http` from a driver goes out only to the backend's granted endpoints.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use holdfast_driver::{BackupDriver, Grants};
use holdfast_plugin_host::DriverComponent;

/// A one-page HTTP server on loopback; counts the connections it accepted.
fn server() -> (String, Arc<AtomicUsize>) {
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
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    (authority, hits)
}

fn probe(authority: &str, network: Vec<String>) -> String {
    let grants = Grants { network, ..Grants::default() };
    let config = vec![("authority".to_owned(), authority.to_owned())];
    let d = DriverComponent::load("probe", holdfast_plugin_artifacts::HOSTILE_NET_PROBE_BYTES, grants, config).unwrap();
    assert_eq!(d.id().wit_version, "0.2.7");
    d.setup().expect_err("the probe always reports through its error").to_string()
}

#[test]
fn requests_reach_granted_endpoints_only() {
    let (authority, hits) = server();
    let denied = probe(&authority, vec![]);
    assert!(denied.contains("HttpRequestDenied"), "no grant, no network: {denied}");
    let other_port = probe(&authority, vec!["127.0.0.1:1".into()]);
    assert!(other_port.contains("HttpRequestDenied"), "{other_port}");
    assert_eq!(hits.load(Ordering::SeqCst), 0, "a denied request never opens a connection");
    let granted = probe(&authority, vec![authority.clone()]);
    assert!(granted.contains("status=200"), "{granted}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}
