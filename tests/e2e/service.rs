//! Driver initialization and operation limits (issue 5 §9, §10): a driver whose setup
//! fails leaves the service down with the reason, new backups are refused with a clear
//! error, setup is retried until it succeeds; `--max-operations` queues the rest.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{Database, MIB, Server, databases, write_mixed_volume};

#[test]
fn a_failing_driver_setup_is_retried_until_it_succeeds() {
    for db in databases() {
        setup_retried(&db);
    }
}

fn setup_retried(db: &Database) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("late-store");
    let s = Server::start(db, &["--backup-dir", store.to_str().unwrap(), "--periodic-interval", "1"]);
    let (_, services) = s.get("/os-services");
    let svc = &services["services"][0];
    assert_eq!(svc["state"], "down", "{services}");
    assert!(svc["disabled_reason"].as_str().unwrap().contains("late-store"), "{services}");

    let (_, vol) = s.mixed_volume("v", 8 * MIB, 4);
    let (st, e) = s.post("/backups", json!({"backup": {"volume_id": vol}}));
    assert_eq!(st, 503, "{e}");
    assert!(e["serviceUnavailable"]["message"].as_str().unwrap().contains("backup service is down"), "{e}");
    assert_eq!(s.volume(&vol)["status"], "available", "a refused backup changes nothing");
    let out = s.cli(&["backup", "create", "v"]);
    assert!(!out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);

    // The operator fixes the store; the next retry brings the service up.
    std::fs::create_dir(&store).unwrap();
    let t = Instant::now();
    while s.get("/os-services").1["services"][0]["state"] != "up" {
        assert!(t.elapsed() < Duration::from_secs(20), "setup was not retried:\n{}", s.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let (st, b) = s.post("/backups", json!({"backup": {"volume_id": vol}}));
    assert_eq!(st, 202, "{b}");
    s.wait_backup(b["backup"]["id"].as_str().unwrap(), &["available"]);
}

#[test]
fn quotas_refuse_backups_over_the_limit() {
    for db in databases() {
        let s = Server::start(&db, &["--quota-backups", "2", "--quota-backup-gigabytes", "1000"]);
        let (_, vol) = s.mixed_volume("v", 4 * MIB, 8);
        let mut ids = Vec::new();
        for _ in 0..2 {
            let (st, b) = s.post("/backups", json!({"backup": {"volume_id": vol}}));
            assert_eq!(st, 202, "{b}");
            ids.push(b["backup"]["id"].as_str().unwrap().to_owned());
            s.wait_backup(ids.last().unwrap(), &["available"]);
        }
        let (st, e) = s.post("/backups", json!({"backup": {"volume_id": vol}}));
        assert_eq!(st, 413, "{e}");
        assert_eq!(e["overLimit"]["message"], "BackupLimitExceeded: Maximum number of backups allowed (2) exceeded");
        assert_eq!(e["overLimit"]["retryAfter"], "0");
        let (_, l) = s.get("/limits");
        assert_eq!(l["limits"]["absolute"]["totalBackupsUsed"], 2);
        assert_eq!(l["limits"]["absolute"]["maxTotalBackups"], 2);
        // Deleting one frees its place.
        assert_eq!(s.request("DELETE", &format!("/backups/{}", ids[1]), None).0, 202);
        s.wait_gone(&format!("/backups/{}", ids[1]));
        assert_eq!(s.post("/backups", json!({"backup": {"volume_id": vol}})).0, 202);
    }
    // Gigabytes: a 1 GiB quota holds one backup of a (1 GiB-sized) volume.
    let s = Server::start(&Database::Sqlite, &["--quota-backup-gigabytes", "1"]);
    let (_, vol) = s.mixed_volume("v", 4 * MIB, 8);
    let (_, b) = s.post("/backups", json!({"backup": {"volume_id": vol}}));
    s.wait_backup(b["backup"]["id"].as_str().unwrap(), &["available"]);
    let (st, e) = s.post("/backups", json!({"backup": {"volume_id": vol}}));
    assert_eq!(st, 413, "{e}");
    assert!(
        e["overLimit"]["message"].as_str().unwrap().contains("Requested 1G, quota is 1G and 1G has been consumed"),
        "{e}"
    );
}

#[test]
fn max_operations_queues_the_rest() {
    for db in databases() {
        queued(&db);
    }
}

fn queued(db: &Database) {
    let s = Server::start(db, &["--max-operations", "1"]);
    let mut ids = Vec::new();
    for (i, size) in [(0, 256 * MIB), (1, 8 * MIB)] {
        let src = s.input(&format!("v{i}.raw"));
        write_mixed_volume(&src, size, i);
        let vol = s.register(&src, &format!("v{i}"));
        let (st, b) = s.post("/backups", json!({"backup": {"volume_id": vol}}));
        assert_eq!(st, 202, "{b}");
        ids.push(b["backup"]["id"].as_str().unwrap().to_owned());
    }
    // While the first moves data, the second waits its turn (no operation yet).
    let op = |id: &str| s.get(&format!("/backups/{id}/progress")).1["progress"]["operation"].clone();
    let mut saw_queued = false;
    while s.backup(&ids[0])["status"] == "creating" {
        if op(&ids[0]) == "create" && op(&ids[1]).is_null() && s.backup(&ids[1])["status"] == "creating" {
            saw_queued = true;
        }
    }
    assert!(saw_queued, "the second backup never waited");
    for id in &ids {
        s.wait_backup(id, &["available"]);
    }
}

/// Creates racing for the last place under a quota: never more than the quota get in.
#[test]
fn racing_creates_never_overshoot_the_quota() {
    for db in databases() {
        let s = Server::start(&db, &["--quota-backups", "2"]);
        let vols: Vec<String> = (0..6).map(|i| s.mixed_volume(&format!("v{i}"), 4 * MIB, i).1).collect();
        let s = &s;
        let codes: Vec<u16> = std::thread::scope(|scope| {
            let handles: Vec<_> = vols
                .iter()
                .map(|v| scope.spawn(move || s.post("/backups", json!({"backup": {"volume_id": v}})).0))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let accepted = codes.iter().filter(|&&c| c == 202).count();
        assert!(codes.iter().all(|&c| c == 202 || c == 413), "{codes:?}");
        assert_eq!(accepted, 2, "{db:?}: one host counts exactly: {codes:?}");
        let (_, l) = s.get("/limits");
        assert_eq!(l["limits"]["absolute"]["totalBackupsUsed"], accepted, "{db:?}: refused requests leave no row");
        for v in &vols {
            crate::support::until("the volume is released", || s.volume(v)["status"] == "available");
        }
    }
}
