//! Hot loading under load: while a 1 GiB backup runs and a loop keeps small backups
//! and restores going, the driver is upgraded twice (a file change, then `holdfast
//! plugin reload`) and a backend is added and removed. Nothing fails, the long backup
//! restores bit for bit, later backups record the new build.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{Database, MIB, Server, sha256_bytes, sha256_file, until};

/// The posix driver with a custom section appended: the same code, another build
/// (another digest), as a vendor's rebuild would be.
fn build(tag: &str) -> Vec<u8> {
    let mut bytes = holdfast_plugin_artifacts::POSIX_BYTES.to_vec();
    let name = b"holdfast-test-build";
    let mut payload = vec![name.len() as u8];
    payload.extend_from_slice(name);
    payload.extend_from_slice(tag.as_bytes());
    bytes.push(0); // custom section
    bytes.push(payload.len() as u8); // < 128: one LEB128 byte
    bytes.extend_from_slice(&payload);
    bytes
}

/// Replace a file at once (a reader never sees half of it).
fn install(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn config(main_store: &Path, extra_store: Option<&Path>) -> String {
    let mut text = format!(
        "default_backend = \"main\"\n[backends.main]\ndriver = \"posix.wasm\"\n\
         grants = {{ store = \"{}\" }}\n",
        main_store.display()
    );
    if let Some(extra) = extra_store {
        text.push_str(&format!(
            "[backends.extra]\ndriver = \"posix\"\navailability_zone = \"az2\"\n\
             grants = {{ store = \"{}\" }}\n",
            extra.display()
        ));
    }
    text
}

fn main_sha(s: &Server) -> String {
    let (st, p) = s.get("/holdfast-plugins");
    assert_eq!(st, 200, "{p}");
    let main = p["plugins"].as_array().unwrap().iter().find(|p| p["backend"] == "main").cloned().unwrap();
    main["sha256"].as_str().unwrap().to_owned()
}

#[test]
fn upgrades_and_backend_changes_under_load_lose_nothing() {
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (store, extra) = (work.path().join("store"), work.path().join("extra"));
    std::fs::create_dir_all(&store).unwrap();
    std::fs::create_dir_all(&extra).unwrap();
    let driver = work.path().join("posix.wasm");
    let builds = [build("v1"), build("v2"), build("v3")];
    let digests: Vec<String> = builds.iter().map(|b| sha256_bytes(b)).collect();
    install(&driver, &builds[0]);
    let cfg = work.path().join("holdfast.toml");
    std::fs::write(&cfg, config(&store, None)).unwrap();
    let args = [
        "--config",
        cfg.to_str().unwrap(),
        "--max-operations",
        "8",
        "--quota-backups",
        "-1",
        "--quota-backup-gigabytes",
        "-1",
    ];
    let s = Server::start(&Database::Sqlite, &args);
    assert_eq!(main_sha(&s), digests[0]);

    // Long enough to span the upgrades below: 1 GiB took 8.6 s in a debug build once
    // the store synced in parallel and finished before the first upgrade was seen (a
    // reload compiles the driver: ~5 s in a debug build); 2 GiB did too on a quiet machine.
    let (big_path, big) = s.mixed_volume("big", 4 * 1024 * MIB, 11);
    let (st, b) = s.post("/backups", json!({"backup": {"volume_id": big, "name": "long"}}));
    assert_eq!(st, 202, "{b}");
    let long = b["backup"]["id"].as_str().unwrap().to_owned();

    let stop = AtomicBool::new(false);
    let (done, failed) = (AtomicUsize::new(0), AtomicUsize::new(0));
    std::thread::scope(|scope| {
        // A failed assertion below must still end the loop: the scope waits for it.
        let _stop_on_exit = StopOnDrop(&stop);
        // The loop: back up and restore small volumes until told to stop.
        let looper = scope.spawn(|| {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) || i < 20 {
                let (_, vol) = s.mixed_volume(&format!("small{i}"), 4 * MIB, i as u64);
                let (st, b) = s.post("/backups", json!({"backup": {"volume_id": vol}}));
                if st != 202 {
                    eprintln!("backup create {i}: {st} {b}");
                    failed.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                    continue;
                }
                let id = b["backup"]["id"].as_str().unwrap().to_owned();
                if s.wait_backup(&id, &["available", "error"])["status"] != "available" {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                let (st, r) = s.post(&format!("/backups/{id}/restore"), json!({"restore": {"name": format!("r{i}")}}));
                if st != 202 {
                    eprintln!("restore {i}: {st} {r}");
                    failed.fetch_add(1, Ordering::Relaxed);
                } else {
                    let target = r["restore"]["volume_id"].as_str().unwrap().to_owned();
                    if s.wait_volume(&target, &["available", "error", "error_restoring"])["status"] != "available" {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        });

        // Upgrade 1: the driver file changes; the host notices by itself.
        until("a few loop rounds", || done.load(Ordering::Relaxed) >= 3);
        install(&driver, &builds[1]);
        let t = Instant::now();
        while main_sha(&s) != digests[1] {
            assert!(t.elapsed() < Duration::from_secs(60), "the file change was not picked up:\n{}", s.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(s.backup(&long)["status"], "creating", "the long backup spans the upgrades; make it longer");

        // Upgrade 2 and a new backend, by `holdfast plugin reload`.
        std::fs::write(&cfg, config(&store, Some(&extra))).unwrap();
        install(&driver, &builds[2]);
        let report = s.cli_json(&["plugin", "reload", "--format", "json"]);
        let r = &report["reload"];
        // The watcher may have taken part of this change first; together they did it all.
        let sha_now = main_sha(&s);
        assert_eq!(sha_now, digests[2], "{report}");
        assert!(r["failed"].as_array().unwrap().is_empty(), "{report}");
        let (_, services) = s.get("/os-services");
        assert_eq!(services["services"].as_array().unwrap().len(), 2, "{services}");

        // Remove the new backend again (nothing was written there).
        std::fs::write(&cfg, config(&store, None)).unwrap();
        let out = s.cli(&["plugin", "reload"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let t = Instant::now();
        while s.get("/os-services").1["services"].as_array().unwrap().len() != 1 {
            assert!(t.elapsed() < Duration::from_secs(30), "extra not removed");
            std::thread::sleep(Duration::from_millis(100));
        }

        // A driver file that is not a driver for this host: the old build keeps serving.
        for (bad, says) in [
            (holdfast_plugin_artifacts::HOSTILE_WRONG_WORLD_BYTES, "not a Holdfast backup driver"),
            (holdfast_plugin_artifacts::HOSTILE_FUTURE_WIT_BYTES, "holdfast:backup@9.0.0"),
        ] {
            install(&driver, bad);
            let report = s.cli_json(&["plugin", "reload", "--format", "json"]);
            let failed = &report["reload"]["failed"];
            assert!(failed[0]["reason"].as_str().is_some_and(|r| r.contains(says)), "{report}");
            assert_eq!(main_sha(&s), digests[2]);
            let (_, p) = s.get("/holdfast-plugins");
            assert!(p.to_string().contains(says), "plugin list says why: {p}");
        }
        install(&driver, &builds[2]);

        // A config that does not parse changes nothing and says why.
        std::fs::write(&cfg, "[backends.main\n").unwrap();
        let out = s.cli(&["plugin", "reload"]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("holdfast.toml"), "{err}");
        assert_eq!(main_sha(&s), digests[2]);
        std::fs::write(&cfg, config(&store, None)).unwrap();

        stop.store(true, Ordering::Relaxed);
        looper.join().unwrap();
    });
    assert_eq!(failed.load(Ordering::Relaxed), 0, "operations failed across the reloads:\n{}", s.log());
    assert!(done.load(Ordering::Relaxed) >= 20);

    // The long backup finished on the build it started with, and restores bit for bit.
    let b = s.wait_backup(&long, &["available", "error"]);
    assert_eq!(b["status"], "available", "{b}");
    let origin = s.backup(&long)["holdfast:origin"].clone();
    assert_eq!(origin["sha256"], digests[0].as_str(), "{origin}");
    let (st, r) = s.post(&format!("/backups/{long}/restore"), json!({"restore": {"name": "long-back"}}));
    assert_eq!(st, 202, "{r}");
    let target = r["restore"]["volume_id"].as_str().unwrap().to_owned();
    let v = s.wait_volume(&target, &["available"]);
    let restored = sha256_file(Path::new(v["holdfast:path"].as_str().unwrap()));
    assert_eq!(restored, sha256_file(&big_path), "the long backup restores bit for bit");

    // Later backups record the new build.
    let (_, vol) = s.mixed_volume("after", 4 * MIB, 99);
    let (_, b) = s.post("/backups", json!({"backup": {"volume_id": vol}}));
    let id = b["backup"]["id"].as_str().unwrap().to_owned();
    s.wait_backup(&id, &["available"]);
    assert_eq!(s.backup(&id)["holdfast:origin"]["sha256"], digests[2].as_str());
}

/// Sets its flag when dropped, panic or not.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}
