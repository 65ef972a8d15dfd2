//! The S3 and Swift drivers when requests fail: radosgw is the real one, reached
//! through a forwarder (`proxy.rs`) that spoils chosen requests once — a 503, a
//! broken connection, an answer whose ETag is not the object's MD5 — and counts what
//! passes. Also the network grant: a backend granted another endpoint reaches nothing.

use serde_json::json;

use crate::objectstore::{bucket_objects, config_through, config_with, rgw_cluster};
use crate::proxy::{Fault, Proxy, Spoil, is_object};
use crate::support::{Database, MIB, Server, sha256_bytes, sha256_file};

#[test]
fn s3_retries_the_object_not_the_backup() {
    retries_the_object_not_the_backup("s3");
}

#[test]
fn swift_retries_the_object_not_the_backup() {
    retries_the_object_not_the_backup("swift");
}

/// Three uploads and two downloads spoiled once each (a 503, a connection cut halfway
/// through a 4 MiB body, a wrong ETag): the backup and the restore still succeed, each
/// spoiled object is sent (fetched) once more and every other object once, the driver
/// says why it tried again, and 2–4 uploads were in flight at once (the default 4).
fn retries_the_object_not_the_backup(driver: &str) {
    let (dev, rgw) = rgw_cluster();
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let bucket = format!("hf-e2e-retry-{driver}-{}", std::process::id());
    let proxy = Proxy::new();
    proxy.start(rgw.port);
    let cfg = config_through(work.path(), driver, &rgw, &proxy, &bucket, 4 * MIB, "");
    let s = Server::start(&Database::Sqlite, &["--config", cfg.to_str().unwrap()]);
    let (src, vol) = s.mixed_volume("v", 32 * MIB, 21);
    let fault = |method, n: u32, spoil| Fault { method, suffix: format!("-{n:05}"), spoil };
    proxy.take_seen();
    proxy.take_most_uploads();
    // Objects 1, 4 and 7 are random (4 MiB stored), 2, 5 and 8 zeros, 3 and 6 text.
    proxy.spoil(vec![
        fault("PUT", 1, Spoil::Unavailable),
        fault("PUT", 4, Spoil::Reset),
        fault("PUT", 6, Spoil::WrongEtag),
    ]);
    let (st, made) = s.post("/backups", json!({"backup": {"volume_id": vol, "name": "flaky"}}));
    assert_eq!(st, 202, "{made}");
    let id = made["backup"]["id"].as_str().unwrap().to_owned();
    let done = s.wait_backup(&id, &["available", "error"]);
    assert_eq!(done["status"], "available", "{done}\n{}", s.log());
    assert!(proxy.faults_left().is_empty(), "every fault met: {:?}", proxy.faults_left());

    let stored: Vec<String> = bucket_objects(&dev, &bucket).into_iter().filter(|n| is_object(n)).collect();
    assert_eq!(stored.len(), 8, "32 MiB in 4 MiB objects: {stored:?}");
    each_once_but_spoiled_twice(&proxy, "PUT", &stored, &["-00001", "-00004", "-00006"]);
    let most = proxy.take_most_uploads();
    assert!((2..=4).contains(&most), "uploads in flight at once: {most} (default 4)");
    let log = s.log();
    let tries = log.lines().filter(|l| l.contains("; try 2")).count();
    assert!(tries >= 3, "the driver says why it tries again, for each spoiled upload:\n{log}");
    assert!(log.contains("HTTP 503; try 2"), "{log}");
    assert!(log.contains("is not the MD5 of what was sent"), "{log}");

    proxy.spoil(vec![fault("GET", 7, Spoil::Unavailable), fault("GET", 4, Spoil::Reset)]);
    let (st, r) = s.post(&format!("/backups/{id}/restore"), json!({"restore": {"name": "back"}}));
    assert_eq!(st, 202, "{r}");
    let v = s.wait_volume(r["restore"]["volume_id"].as_str().unwrap(), &["available", "error_restoring", "error"]);
    assert_eq!(v["status"], "available", "{v}\n{}", s.log());
    let back = std::fs::read(v["holdfast:path"].as_str().unwrap()).unwrap();
    assert_eq!(sha256_bytes(&back), sha256_file(&src));
    assert!(proxy.faults_left().is_empty(), "every fault met: {:?}", proxy.faults_left());
    each_once_but_spoiled_twice(&proxy, "GET", &stored, &["-00007", "-00004"]);
}

/// Of the `method` requests for data objects the proxy saw since it was last asked,
/// each of `stored` had one, and the spoiled ones (by suffix) exactly one more: the
/// object was tried again, not the operation.
fn each_once_but_spoiled_twice(proxy: &Proxy, method: &str, stored: &[String], spoiled: &[&str]) {
    let paths: Vec<String> =
        proxy.take_seen().into_iter().filter(|r| r.method == method && is_object(&r.path)).map(|r| r.path).collect();
    for name in stored {
        let sent = paths.iter().filter(|p| p.ends_with(name.as_str())).count();
        let want = if spoiled.iter().any(|n| name.ends_with(n)) { 2 } else { 1 };
        assert_eq!(sent, want, "{method} {name}: {sent} times: {paths:?}");
    }
}

#[test]
fn s3_backend_outside_its_grant_reaches_nothing() {
    outside_its_grant_reaches_nothing("s3");
}

#[test]
fn swift_backend_outside_its_grant_reaches_nothing() {
    outside_its_grant_reaches_nothing("swift");
}

/// The real driver, configured for radosgw but granted another endpoint: the host
/// refuses its first request, the backend is `down` with the host's reason, a backup
/// asked of it is refused saying so, and nothing reaches radosgw (no bucket is made).
fn outside_its_grant_reaches_nothing(driver: &str) {
    let (dev, rgw) = rgw_cluster();
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let bucket = format!("hf-e2e-grant-{driver}-{}", std::process::id());
    let cfg = config_with(work.path(), driver, &rgw, &bucket, 4 * MIB, "");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let other = "127.0.0.1:9";
    std::fs::write(
        &cfg,
        text.replace(&format!("network = [\"{}\"]", rgw.authority()), &format!("network = [\"{other}\"]")),
    )
    .unwrap();
    let s = Server::start(&Database::Sqlite, &["--config", cfg.to_str().unwrap()]);
    let (_, services) = s.get("/os-services");
    let svc = services["services"].as_array().unwrap().iter().find(|v| v["zone"] == "nova").unwrap().clone();
    assert_eq!(svc["state"], "down", "{svc}");
    let reason = svc["disabled_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("not in the backend's network grant") && reason.contains(&rgw.authority()), "{reason}");
    assert!(bucket_objects(&dev, &bucket).is_empty());
    // A backup asked of it is refused at once, with the reason (503, as Cinder).
    let (_, vol) = s.mixed_volume("v", 4 * MIB, 3);
    let (st, refused) = s.post("/backups", json!({"backup": {"volume_id": vol}}));
    assert_eq!(st, 503, "{refused}");
    assert!(refused.to_string().contains("not in the backend's network grant"), "{refused}");
    assert!(bucket_objects(&dev, &bucket).is_empty(), "nothing reached radosgw");
}

/// A force delete while the driver waits to try an upload again (Swift, a 30 s backoff):
/// the driver stops at once and cleans up itself — not the host trapping it after its
/// grace (`limits::CANCEL_GRACE`, 5 s) and the delete sweeping up after it.
#[test]
fn swift_force_delete_during_a_retry_backoff_stops_at_once() {
    let (dev, rgw) = rgw_cluster();
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let bucket = format!("hf-e2e-backoff-{}", std::process::id());
    let proxy = Proxy::new();
    proxy.start(rgw.port);
    let cfg = config_through(work.path(), "swift", &rgw, &proxy, &bucket, 4 * MIB, "backup_swift_retry_backoff = 30");
    let s = Server::start(&Database::Sqlite, &["--config", cfg.to_str().unwrap()]);
    let (_, vol) = s.mixed_volume("v", 32 * MIB, 23);
    proxy.spoil(vec![Fault { method: "PUT", suffix: "-00002".into(), spoil: Spoil::Unavailable }]);
    let (st, made) = s.post("/backups", json!({"backup": {"volume_id": vol, "name": "waiting"}}));
    assert_eq!(st, 202, "{made}");
    let id = made["backup"]["id"].as_str().unwrap().to_owned();
    crate::support::until("the driver waits to try again", || s.log().contains("HTTP 503; try 2"));
    let t = std::time::Instant::now();
    let (st, e) = s.post(&format!("/backups/{id}/action"), json!({"os-force_delete": {}}));
    assert_eq!(st, 202, "{e}");
    crate::support::until("the force-deleted backup is gone", || s.get(&format!("/backups/{id}")).0 == 404);
    eprintln!("force delete in a 30 s backoff: gone in {:.2} s", t.elapsed().as_secs_f64());
    let log = s.log();
    assert!(!log.contains("cancelled by the host"), "the driver slept through the cancel:\n{log}");
    assert!(!bucket_objects(&dev, &bucket).iter().any(|n| n.contains(&id)), "objects left");
}
