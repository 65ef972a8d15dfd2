//! The S3 and Swift backup drivers (`driver = "s3"`, `"swift"`: `plugins/s3`,
//! `plugins/swift`) against a real radosgw (the dev cluster's, `scripts/ceph-dev.sh
//! --rgw`): Cinder's object names in the bucket or container, incrementals that store
//! only what changed, restores bit for bit, deletes that remove every object, all
//! through the backend's network grant.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use holdfast_rbd::dev::{DevCluster, Rgw};
use serde_json::{Value, json};

use crate::proxy::{Proxy, Seen, is_object};
use crate::support::{Database, MIB, Server, sha256_bytes, sha256_file};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The shared dev cluster, with radosgw.
pub(crate) fn rgw_cluster() -> (DevCluster, Rgw) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../ceph-dev");
    let dev = DevCluster::start_with(&repo(), &dir, &["--rgw"]).unwrap_or_else(|e| panic!("{e}"));
    let rgw = dev.rgw().unwrap_or_else(|e| panic!("{e}"));
    (dev, rgw)
}

/// The objects in `bucket`, as radosgw itself lists them (not through our driver).
pub(crate) fn bucket_objects(dev: &DevCluster, bucket: &str) -> Vec<String> {
    let out = Command::new("radosgw-admin")
        .arg("-c")
        .arg(&dev.conf)
        .args(["bucket", "list", &format!("--bucket={bucket}")])
        .output()
        .unwrap();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("could not") || err.contains("No such") || err.contains("not exist"), "{err}");
        return Vec::new();
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut names: Vec<String> = v.as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap().to_owned()).collect();
    names.sort();
    names
}

/// A config whose default backend is `driver` (`s3` or `swift`) on the dev radosgw,
/// into `bucket`, with objects of `object_size` bytes and more driver settings
/// (`extra`: `key = "value", …`).
pub(crate) fn config_with(
    work: &Path,
    driver: &str,
    rgw: &Rgw,
    bucket: &str,
    object_size: usize,
    extra: &str,
) -> PathBuf {
    let settings = match driver {
        "s3" => format!(
            "backup_s3_endpoint_url = \"{}\", backup_s3_store_access_key = \"{}\", \
             backup_s3_store_secret_key = \"{}\", backup_s3_store_bucket = \"{bucket}\", \
             backup_s3_object_size = {object_size}",
            rgw.endpoint(),
            rgw.access_key,
            rgw.secret_key
        ),
        _ => format!(
            "backup_swift_auth = \"single_user\", backup_swift_auth_url = \"{}/auth/1.0\", \
             backup_swift_user = \"{}\", backup_swift_key = \"{}\", backup_swift_container = \"{bucket}\", \
             backup_swift_object_size = {object_size}",
            rgw.endpoint(),
            rgw.swift_user,
            rgw.swift_key
        ),
    };
    let path = work.join("holdfast.toml");
    std::fs::write(
        &path,
        format!(
            "default_backend = \"{driver}\"\n\
             [backends.{driver}]\ndriver = \"{driver}\"\n\
             settings = {{ {settings}{sep}{extra} }}\n\
             grants = {{ network = [\"{}\"] }}\n",
            rgw.authority(),
            sep = if extra.is_empty() { "" } else { ", " },
        ),
    )
    .unwrap();
    path
}

fn backup(s: &Server, body: Value) -> Value {
    let (st, b) = s.post("/backups", json!({ "backup": body }));
    assert_eq!(st, 202, "{b}");
    let id = b["backup"]["id"].as_str().unwrap().to_owned();
    let done = s.wait_backup(&id, &["available", "error"]);
    assert_eq!(done["status"], "available", "{done}\n{}", s.log());
    done
}

fn restore_new(s: &Server, id: &str) -> Vec<u8> {
    let (st, r) = s.post(&format!("/backups/{id}/restore"), json!({"restore": {"name": format!("r-{id}")}}));
    assert_eq!(st, 202, "{r}");
    let v = r["restore"]["volume_id"].as_str().unwrap().to_owned();
    let rv = s.wait_volume(&v, &["available", "error_restoring", "error"]);
    assert_eq!(rv["status"], "available", "{rv}\n{}", s.log());
    std::fs::read(rv["holdfast:path"].as_str().unwrap()).unwrap()
}

#[test]
fn s3_backend_full_incremental_restore_delete_on_radosgw() {
    full_incremental_restore_delete("s3", "");
}

#[test]
fn swift_backend_full_incremental_restore_delete_on_radosgw() {
    full_incremental_restore_delete("swift", "");
}

/// Without Content-MD5 (`backup_s3_md5_validation = false`) each upload is signed by
/// its payload's SHA-256 (the host's digest of the stored bytes; the uploads' headers
/// are checked): radosgw checks the signature against the body, so a wrong digest
/// would fail every upload.
#[test]
fn s3_without_md5_validation_signs_each_payload_by_its_sha256() {
    full_incremental_restore_delete("s3", "backup_s3_md5_validation = false");
}

/// A full and an incremental backup of a 24 MiB volume to radosgw through `driver`:
/// Cinder's names and object sizes in the bucket (container), the incremental storing
/// only the changed object, both restoring bit for bit, deletes removing every object.
fn full_incremental_restore_delete(driver: &str, extra: &str) {
    let (dev, rgw) = rgw_cluster();
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let bucket = format!("hf-e2e-{driver}{}-{}", if extra.is_empty() { "" } else { "-x" }, std::process::id());
    // Through the forwarder, to see each upload's headers.
    let proxy = Proxy::new();
    proxy.start(rgw.port);
    let cfg = config_through(work.path(), driver, &rgw, &proxy, &bucket, 4 * MIB, extra);
    let s = Server::start(&Database::Sqlite, &["--config", cfg.to_str().unwrap()]);
    let (_, services) = s.get("/os-services");
    let svc = services["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["host"].as_str().unwrap().ends_with(&format!("@{driver}")))
        .cloned();
    assert_eq!(svc.as_ref().and_then(|v| v["state"].as_str()), Some("up"), "{services}");

    let (src, vol) = s.mixed_volume("v", 24 * MIB, 11);
    let full = backup(&s, json!({"volume_id": vol, "name": "full"}));
    let (fid, prefix) = (full["id"].as_str().unwrap(), full["holdfast:service_metadata"].as_str().map(str::to_owned));
    assert_eq!(full["container"], bucket.as_str());
    let objects = bucket_objects(&dev, &bucket);
    let prefix = prefix.unwrap_or_else(|| objects[0].rsplit_once('-').unwrap().0.to_owned());
    let (vol_part, rest) = prefix.split_once('/').unwrap();
    let (time, name) = rest.split_once('/').unwrap();
    assert_eq!(vol_part, format!("volume_{vol}"));
    assert!(time.len() == 14 && time.bytes().all(|b| b.is_ascii_digit()), "{prefix}");
    assert_eq!(name, format!("az_nova_backup_{fid}"));
    let mut want: Vec<String> = (1..=6).map(|n| format!("{prefix}-{n:05}")).collect();
    want.push(format!("{prefix}_metadata"));
    want.push(format!("{prefix}_sha256file"));
    want.sort();
    assert_eq!(objects, want, "Cinder's object names, 4 MiB each");
    let uploads: Vec<Seen> =
        proxy.take_seen().into_iter().filter(|r| r.method == "PUT" && is_object(&r.path)).collect();
    assert_eq!(uploads.len(), 6);
    let hex =
        |v: Option<&str>, len: usize| v.is_some_and(|v| v.len() == len && v.bytes().all(|b| b.is_ascii_hexdigit()));
    for put in &uploads {
        match driver {
            // Signed by its Content-MD5 (the store checks the body), or else by its SHA-256.
            "s3" if extra.is_empty() => {
                assert!(put.header("content-md5").is_some(), "{put:?}");
                assert_eq!(put.header("x-amz-content-sha256"), Some("UNSIGNED-PAYLOAD"), "{put:?}");
            }
            "s3" => {
                assert_eq!(put.header("content-md5"), None, "{put:?}");
                assert!(hex(put.header("x-amz-content-sha256"), 64), "{put:?}");
            }
            _ => assert!(hex(put.header("etag"), 32), "Swift checks the body against its ETag: {put:?}"),
        }
    }

    // 1 MiB changes in the fourth object: the incremental stores that one only.
    let mut data = std::fs::read(&src).unwrap();
    data[13 * MIB..14 * MIB].iter_mut().for_each(|b| *b = b.wrapping_add(1));
    std::fs::write(&src, &data).unwrap();
    let inc = backup(&s, json!({"volume_id": vol, "incremental": true}));
    assert_eq!(inc["is_incremental"], true);
    let after = bucket_objects(&dev, &bucket);
    assert_eq!(after.len(), want.len() + 3, "one object, its sha256file and metadata: {after:?}");

    assert_eq!(sha256_bytes(&restore_new(&s, inc["id"].as_str().unwrap())), sha256_file(&src));
    let first = restore_new(&s, fid);
    assert_ne!(sha256_bytes(&first), sha256_file(&src), "the full backup is the volume before the change");

    for id in [inc["id"].as_str().unwrap(), fid] {
        let (st, _) = s.request("DELETE", &format!("/backups/{id}"), None);
        assert_eq!(st, 202);
        crate::support::until("the backup is gone", || s.get(&format!("/backups/{id}")).0 == 404);
    }
    assert_eq!(bucket_objects(&dev, &bucket), Vec::<String>::new(), "every object removed");
}

/// A hostile driver granted the same radosgw and bucket (`plugins/hostile/s3-neighbour`)
/// goes for an honest backup's objects through the endpoint — in a backup, a restore
/// and a delete — and the host's network gate refuses every request: each operation
/// fails "network: denied", and the victim's objects are as they were.
#[test]
fn s3_neighbour_cannot_reach_another_backups_objects() {
    let (dev, rgw) = rgw_cluster();
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let bucket = format!("hf-e2e-hostile-{}", std::process::id());
    let other = format!("hf-e2e-other-{}", std::process::id());
    let file = work.path().join("s3-neighbour.wasm");
    std::fs::write(&file, holdfast_plugin_artifacts::HOSTILE_S3_NEIGHBOUR_BYTES).unwrap();
    let settings = format!(
        "backup_s3_endpoint_url = \"{}\", backup_s3_store_access_key = \"{}\", backup_s3_store_secret_key = \"{}\", \
         backup_s3_store_bucket = \"{bucket}\", backup_s3_object_size = 4194304",
        rgw.endpoint(),
        rgw.access_key,
        rgw.secret_key
    );
    let cfg = work.path().join("holdfast.toml");
    std::fs::write(
        &cfg,
        format!(
            "default_backend = \"s3\"\n\
             [backends.s3]\ndriver = \"s3\"\nsettings = {{ {settings} }}\ngrants = {{ network = [\"{auth}\"] }}\n\
             [backends.s3n]\ndriver = \"{}\"\navailability_zone = \"s3n\"\nsettings = {{ {settings} }}\n\
             grants = {{ network = [\"{auth}\"], object_api = \"s3\" }}\n",
            file.display(),
            auth = rgw.authority()
        ),
    )
    .unwrap();
    let s = Server::start(&Database::Sqlite, &["--config", cfg.to_str().unwrap(), "--quota-backups", "100"]);
    let (src, vol) = s.mixed_volume("v", 8 * MIB, 5);
    let victim = backup(&s, json!({"volume_id": vol, "name": "victim"}));
    let victim_objects = bucket_objects(&dev, &bucket);
    let object = victim_objects.iter().find(|n| n.ends_with("-00001")).unwrap().clone();
    let prefix = object.trim_end_matches("-00001").to_owned();

    let mut report = Vec::new();
    let mut attacks: Vec<(&str, &str, String)> =
        ["read", "overwrite", "delete", "put-chunk", "write-unrecorded", "copy"]
            .into_iter()
            .map(|kind| ("backup", kind, format!("{bucket}:{object}")))
            .collect();
    attacks.push(("backup", "list", format!("{bucket}:")));
    attacks.push(("backup", "list-prefix", format!("{bucket}:{prefix}")));
    attacks.push(("backup", "create-bucket", format!("{other}:x")));
    attacks.push(("restore", "read", format!("{bucket}:{object}")));
    attacks.push(("delete", "delete", format!("{bucket}:{object}")));
    for (op, kind, target) in &attacks {
        let description = format!("attack:{op}:{kind}:{target}");
        let (st, made) = s.post(
            "/backups",
            json!({"backup": {"volume_id": vol, "availability_zone": "s3n", "description": description}}),
        );
        assert_eq!(st, 202, "{made}");
        let id = made["backup"]["id"].as_str().unwrap().to_owned();
        let b = match *op {
            "backup" => s.wait_backup(&id, &["available", "error"]),
            _ => {
                // Its own backup is honest; the attack comes in the later operation.
                assert_eq!(s.wait_backup(&id, &["available", "error"])["status"], "available");
                if *op == "restore" {
                    let (st, r) = s.post(&format!("/backups/{id}/restore"), json!({"restore": {"name": "attacked"}}));
                    assert_eq!(st, 202, "{r}");
                    let v =
                        s.wait_volume(r["restore"]["volume_id"].as_str().unwrap(), &["error_restoring", "available"]);
                    assert_eq!(v["status"], "error_restoring", "{v}");
                    s.wait_backup(&id, &["available"])
                } else {
                    let (st, _) = s.request("DELETE", &format!("/backups/{id}"), None);
                    assert_eq!(st, 202);
                    let b = s.wait_backup(&id, &["error", "deleted"]);
                    assert_eq!(b["status"], "error", "a delete that fails keeps the row: {b}");
                    b
                }
            }
        };
        let reason = b["fail_reason"].as_str().unwrap_or_default().to_owned();
        if *op == "backup" {
            assert_eq!(b["status"], "error", "{kind}: {b}");
        }
        assert!(reason.contains("network: denied"), "{op}:{kind}: {reason}");
        assert!(!reason.contains("let through"), "{op}:{kind}: {reason}");
        report.push(format!("{op}:{kind:<16} {reason}"));
        s.wait_volume(&vol, &["available"]);
    }
    eprintln!("{}", report.join("\n"));
    // The victim's objects are all there, no other bucket was made, and it restores.
    let now = bucket_objects(&dev, &bucket);
    assert!(victim_objects.iter().all(|n| now.contains(n)), "{victim_objects:?} vs {now:?}");
    assert!(bucket_objects(&dev, &other).is_empty());
    assert_eq!(sha256_bytes(&restore_new(&s, victim["id"].as_str().unwrap())[..8 * MIB]), sha256_file(&src));
}

/// The endpoint down at start: the backend is `down` with the reason and comes `up`
/// by itself once it answers. Down in the middle of a backup: that backup ends in
/// `error` with the reason after its retries, and its partial objects are removed once
/// the endpoint is back.
#[test]
fn s3_endpoint_down_at_start_and_mid_backup() {
    endpoint_down_at_start_and_mid_backup("s3");
}

#[test]
fn swift_endpoint_down_at_start_and_mid_backup() {
    endpoint_down_at_start_and_mid_backup("swift");
}

/// The storage URL radosgw's Swift v1 auth answers for the test user.
fn swift_storage_url(rgw: &Rgw) -> String {
    let r = reqwest::blocking::Client::new()
        .get(format!("{}/auth/1.0", rgw.endpoint()))
        .header("X-Auth-User", &rgw.swift_user)
        .header("X-Auth-Key", &rgw.swift_key)
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{r:?}");
    r.headers()["x-storage-url"].to_str().unwrap().to_owned()
}

/// A config for `driver` reaching radosgw only through `proxy` (its grant names the
/// proxy): Swift's storage URL is set to the proxy's too, since the auth answer names
/// radosgw's own port.
pub(crate) fn config_through(
    work: &Path,
    driver: &str,
    rgw: &Rgw,
    proxy: &Proxy,
    bucket: &str,
    object_size: usize,
    extra: &str,
) -> PathBuf {
    let through = Rgw { port: proxy.port, ..rgw.clone() };
    let mut extra = extra.to_owned();
    if driver == "swift" {
        let url = swift_storage_url(rgw).replace(&rgw.authority(), &through.authority());
        let sep = if extra.is_empty() { "" } else { ", " };
        extra = format!("{extra}{sep}backup_swift_url = \"{url}\"");
    }
    config_with(work, driver, &through, bucket, object_size, &extra)
}

fn endpoint_down_at_start_and_mid_backup(driver: &str) {
    let (dev, rgw) = rgw_cluster();
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let bucket = format!("hf-e2e-down-{driver}-{}", std::process::id());
    let proxy = Proxy::new();
    let cfg = config_through(work.path(), driver, &rgw, &proxy, &bucket, 4 * MIB, "");
    let s = Server::start(&Database::Sqlite, &["--config", cfg.to_str().unwrap(), "--periodic-interval", "2"]);
    let state = || {
        let (_, services) = s.get("/os-services");
        services["services"].as_array().unwrap().iter().find(|v| v["zone"] == "nova").unwrap().clone()
    };
    let down = state();
    assert_eq!(down["state"], "down", "{down}");
    let reason = down["disabled_reason"].as_str().unwrap_or_default().to_owned();
    assert!(reason.contains(&format!("127.0.0.1:{}", proxy.port)) && reason.contains("tries"), "{reason}");

    proxy.start(rgw.port);
    crate::support::until("the backend comes up with its endpoint", || state()["state"] == "up");

    let (_, vol) = s.mixed_volume("v", 96 * MIB, 9);
    let (st, made) = s.post("/backups", json!({"backup": {"volume_id": vol, "name": "cut"}}));
    assert_eq!(st, 202, "{made}");
    let id = made["backup"]["id"].as_str().unwrap().to_owned();
    crate::support::until("the backup stores its first object", || {
        bucket_objects(&dev, &bucket).iter().any(|n| n.contains(&id) && n.ends_with("-00001"))
    });
    proxy.cut();
    let failed = s.wait_backup(&id, &["error", "available"]);
    assert_eq!(failed["status"], "error", "{failed}");
    let why = failed["fail_reason"].as_str().unwrap_or_default();
    assert!(why.contains(&format!("127.0.0.1:{}", proxy.port)) && why.contains("tries"), "{why}");
    let left: Vec<String> = bucket_objects(&dev, &bucket).into_iter().filter(|n| n.contains(&id)).collect();
    assert!(!left.is_empty(), "the endpoint is down: the partial objects are still there");

    proxy.start(rgw.port);
    crate::support::until("the failed backup's partial objects are removed", || {
        !bucket_objects(&dev, &bucket).iter().any(|n| n.contains(&id))
    });
    assert!(s.log().contains("removed a failed backup's partial objects"), "{}", s.log());
}

/// The S3 and Swift drivers pass the conformance kit (`holdfast driver check`) on the
/// dev radosgw, through their network grant.
#[test]
fn s3_and_swift_drivers_pass_the_kit() {
    let (_dev, rgw) = rgw_cluster();
    let pid = std::process::id();
    let s3 = [
        format!("backup_s3_endpoint_url={}", rgw.endpoint()),
        format!("backup_s3_store_access_key={}", rgw.access_key),
        format!("backup_s3_store_secret_key={}", rgw.secret_key),
        format!("backup_s3_store_bucket=hf-kit-s3-{pid}"),
        "backup_s3_object_size=4194304".into(),
    ];
    let swift = [
        "backup_swift_auth=single_user".into(),
        format!("backup_swift_auth_url={}/auth/1.0", rgw.endpoint()),
        format!("backup_swift_user={}", rgw.swift_user),
        format!("backup_swift_key={}", rgw.swift_key),
        format!("backup_swift_container=hf-kit-swift-{pid}"),
        "backup_swift_object_size=4194304".into(),
    ];
    for (driver, settings) in [("s3", &s3[..]), ("swift", &swift[..])] {
        let mut cmd = Command::new(crate::support::BIN);
        cmd.args(["driver", "check", driver, "--size-mib", "16", "--grant-network", &rgw.authority()]);
        for kv in settings.iter() {
            cmd.args(["--setting", kv]);
        }
        let out = cmd.output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{driver}: {text}");
        assert_eq!(text.lines().filter(|l| l.starts_with("PASS")).count(), 10, "{driver}: {text}");
    }
}

/// A force delete of a backup while its uploads are in flight (through a slow
/// endpoint): the driver stops within a second or so and every object it stored goes.
#[test]
fn s3_force_delete_mid_backup_stops_and_cleans_up() {
    cancel_mid_backup("s3", Cancel::ForceDelete);
}

#[test]
fn swift_force_delete_mid_backup_stops_and_cleans_up() {
    cancel_mid_backup("swift", Cancel::ForceDelete);
}

/// Cinder's other way to stop a backup in `creating`: `os-reset_status` to `error`.
/// The backup stays, in `error`; the driver stops and its partial objects go.
#[test]
fn s3_reset_status_mid_backup_stops_and_cleans_up() {
    cancel_mid_backup("s3", Cancel::ResetStatus);
}

#[test]
fn swift_reset_status_mid_backup_stops_and_cleans_up() {
    cancel_mid_backup("swift", Cancel::ResetStatus);
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cancel {
    ForceDelete,
    ResetStatus,
}

fn cancel_mid_backup(driver: &str, how: Cancel) {
    let (dev, rgw) = rgw_cluster();
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let bucket = format!("hf-e2e-cancel-{driver}-{how:?}-{}", std::process::id()).to_ascii_lowercase();
    let proxy = Proxy::new();
    proxy.start(rgw.port);
    let cfg = config_through(work.path(), driver, &rgw, &proxy, &bucket, 4 * MIB, "");
    let s = Server::start(&Database::Sqlite, &["--config", cfg.to_str().unwrap()]);
    let (_, vol) = s.mixed_volume("v", 160 * MIB, 13);
    let (st, made) = s.post("/backups", json!({"backup": {"volume_id": vol, "name": "doomed"}}));
    assert_eq!(st, 202, "{made}");
    let id = made["backup"]["id"].as_str().unwrap().to_owned();
    crate::support::until("the backup stores its first object", || {
        bucket_objects(&dev, &bucket).iter().any(|n| n.contains(&id) && n.ends_with("-00001"))
    });
    assert_eq!(s.backup(&id)["status"], "creating", "finished before the cancel; use a larger volume");
    let t = std::time::Instant::now();
    let mine = |n: &String| n.contains(&id);
    match how {
        Cancel::ForceDelete => {
            let (st, e) = s.post(&format!("/backups/{id}/action"), json!({"os-force_delete": {}}));
            assert_eq!(st, 202, "{e}");
            crate::support::until("the force-deleted backup is gone", || s.get(&format!("/backups/{id}")).0 == 404);
        }
        Cancel::ResetStatus => {
            let (st, e) = s.post(&format!("/backups/{id}/action"), json!({"os-reset_status": {"status": "error"}}));
            assert_eq!(st, 202, "{e}");
            crate::support::until("the cancelled backup's objects are removed", || {
                !bucket_objects(&dev, &bucket).iter().any(mine)
            });
            assert_eq!(s.backup(&id)["status"], "error", "reset-status keeps the row, in error");
        }
    }
    let stopped = t.elapsed();
    s.wait_volume(&vol, &["available"]);
    let left: Vec<String> = bucket_objects(&dev, &bucket).into_iter().filter(mine).collect();
    assert!(left.is_empty(), "partial objects left: {left:?}");
    eprintln!("{driver} {how:?} mid-backup: stopped and cleaned up in {:.2} s", stopped.as_secs_f64());
    // A guard against a hang, not a speed test (measured: ~0.3 s).
    assert!(stopped < Duration::from_secs(10), "took {stopped:?}");
    // Stopped, not finishing in the background: no object of it appears afterwards.
    std::thread::sleep(Duration::from_secs(1));
    assert!(!bucket_objects(&dev, &bucket).iter().any(mine), "an upload after the cancel");
}
