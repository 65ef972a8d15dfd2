//! Interop with Cinder 29's own object-store backup drivers, both ways, on the dev
//! radosgw: a backup Holdfast's S3 (Swift) driver writes restores bit for bit with
//! Cinder's `S3BackupDriver` (`SwiftBackupDriver`, v1 single-user auth), and one
//! Cinder's driver writes restores in Holdfast after `import_record`. Cinder runs
//! unmodified from PyPI (`scripts/cinder-env.sh`, into `target/cinder`) under
//! `tests/support/cinder_backup.py`, which fakes only its database and notifications.
//! Each way is tried with zstd (Holdfast's default) and zlib (Cinder's default), and
//! every backup is then deleted through Holdfast (Cinder's objects too).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use holdfast_rbd::dev::Rgw;
use serde_json::{Value, json};

use crate::objectstore::rgw_cluster;
use crate::support::{Database, MIB, Server, sha256_file, write_mixed_volume};

const GIB: u64 = 1 << 30;
const VOLUME: usize = 24 * MIB;
const OBJECT: usize = 4 * MIB;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The venv's python with Cinder 29.0.0 and its S3/Swift driver dependencies, built
/// (or reused) by `scripts/cinder-env.sh target/cinder`. A failure fails the test.
fn cinder_python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../cinder");
        let out = Command::new("bash")
            .arg(repo().join("scripts/cinder-env.sh"))
            .arg(&dir)
            .output()
            .expect("running scripts/cinder-env.sh");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "scripts/cinder-env.sh {} failed:\n{err}", dir.display());
        let python = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        assert!(python.is_file(), "scripts/cinder-env.sh printed no python: {python:?}\n{err}");
        python
    })
}

/// Run Cinder's driver through the harness; its stdout as JSON.
fn cinder(rgw: &Rgw, driver: &str, container: &str, compression: &str, args: &[&str]) -> Value {
    let mut cmd = Command::new(cinder_python());
    cmd.arg(repo().join("tests/support/cinder_backup.py")).args(args).args([
        "--driver",
        driver,
        "--endpoint",
        &rgw.endpoint(),
        "--container",
        container,
        "--object-size",
        &OBJECT.to_string(),
        "--compression",
        compression,
    ]);
    match driver {
        "s3" => cmd.args(["--access-key", &rgw.access_key, "--secret-key", &rgw.secret_key]),
        _ => cmd.args(["--user", &rgw.swift_user, "--key", &rgw.swift_key]),
    };
    let out = cmd.output().expect("running tests/support/cinder_backup.py");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "cinder_backup.py {args:?} ({driver}, {compression}) failed:\n{err}");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("cinder_backup.py: not JSON ({e}): {}\n{err}", String::from_utf8_lossy(&out.stdout)))
}

/// A config whose one backend is Holdfast's `driver` on the dev radosgw, into `bucket`.
fn config(work: &Path, driver: &str, rgw: &Rgw, bucket: &str, compression: &str) -> PathBuf {
    let extra = format!("backup_compression_algorithm = \"{compression}\"");
    crate::objectstore::config_with(work, driver, rgw, bucket, OBJECT, &extra)
}

fn service(driver: &str) -> &'static str {
    match driver {
        "s3" => "cinder.backup.drivers.s3.S3BackupDriver",
        _ => "cinder.backup.drivers.swift.SwiftBackupDriver",
    }
}

/// `path` holds the `len` source bytes whose SHA-256 is `want`, then zeros to `total`
/// (Cinder's volumes are whole GiB; the source is 24 MiB).
fn assert_restored(path: &Path, want: &str, len: usize, total: u64, what: &str) {
    let mut f = std::fs::File::open(path).unwrap();
    assert_eq!(f.metadata().unwrap().len(), total, "{what}: restored volume size");
    let mut head = vec![0u8; len];
    f.read_exact(&mut head).unwrap();
    assert_eq!(crate::support::sha256_bytes(&head), want, "{what}: the source's bytes");
    let (mut buf, zeros) = (vec![0u8; 4 * MIB], vec![0u8; 4 * MIB]);
    let mut rest = 0u64;
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        // A slice comparison (memcmp): a byte loop takes seconds per GiB in a debug build.
        assert!(buf[..n] == zeros[..n], "{what}: non-zero bytes after the source's {len}");
        rest += n as u64;
    }
    assert_eq!(rest + len as u64, total, "{what}");
}

/// Delete a backup through Holdfast and wait until it is gone.
fn delete_backup(s: &Server, id: &str) {
    let (st, r) = s.request("DELETE", &format!("/backups/{id}"), None);
    assert_eq!(st, 202, "{r}");
    s.wait_gone(&format!("/backups/{id}"));
}

#[test]
fn s3_holdfast_backup_restores_with_cinder() {
    holdfast_to_cinder("s3");
}

#[test]
fn swift_holdfast_backup_restores_with_cinder() {
    holdfast_to_cinder("swift");
}

#[test]
fn s3_cinder_backup_restores_in_holdfast() {
    cinder_to_holdfast("s3");
}

#[test]
fn swift_cinder_backup_restores_in_holdfast() {
    cinder_to_holdfast("swift");
}

/// Holdfast backs a 24 MiB mixed volume up; its export record, handed to Cinder's
/// import (decode_record, the required fields, Backup.update) and its driver's
/// restore, gives back the volume bit for bit in a new 1 GiB volume; then an
/// incremental on top, whose chain of two records Cinder restores the same way.
fn holdfast_to_cinder(driver: &str) {
    cinder_python(); // the venv first: a missing one fails before anything else
    let (_dev, rgw) = rgw_cluster();
    for compression in ["zstd", "zlib"] {
        let what = format!("{driver}, {compression}: Holdfast → Cinder");
        let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let bucket = format!("hf-cinder-{driver}-h2c-{compression}-{}", std::process::id());
        let cfg = config(work.path(), driver, &rgw, &bucket, compression);
        let s = Server::start(&Database::Sqlite, &["--config", cfg.to_str().unwrap()]);
        let (src, vol) = s.mixed_volume("v", VOLUME, 21);
        let want = sha256_file(&src);
        let (st, b) = s.post("/backups", json!({"backup": {"volume_id": vol, "name": "holdfast-made"}}));
        assert_eq!(st, 202, "{b}");
        let id = b["backup"]["id"].as_str().unwrap().to_owned();
        let done = s.wait_backup(&id, &["available", "error"]);
        assert_eq!(done["status"], "available", "{what}: {done}\n{}", s.log());

        let (st, r) = s.get(&format!("/backups/{id}/export_record"));
        assert_eq!(st, 200, "{r}");
        assert_eq!(r["backup-record"]["backup_service"], service(driver), "{r}");
        let record = work.path().join("record.json");
        std::fs::write(&record, r.to_string()).unwrap();

        // Cinder restores into a new volume of the backup's size (whole GiB).
        let target = work.path().join("cinder-restored.raw");
        std::fs::File::create(&target).unwrap().set_len(GIB).unwrap();
        let t = std::time::Instant::now();
        let out = cinder(
            &rgw,
            driver,
            &bucket,
            compression,
            &["restore", "--record", record.to_str().unwrap(), "--file", target.to_str().unwrap()],
        );
        eprintln!("{what}: Cinder restored {out} in {:.1?}", t.elapsed());
        assert_eq!(out["restored"], id.as_str(), "{out}");
        assert_eq!(out["objects"], VOLUME / OBJECT, "{what}: one object per 4 MiB: {out}");
        // The mixed volume's random runs stay uncompressed; the others are compressed
        // (the harness lists the names sorted, and "none" sorts first).
        assert_eq!(out["compression"], json!(["none", compression]), "{what}: {out}");
        // Holdfast's volume_meta went through Cinder's BackupMetadataAPI.put (version 2):
        // the new volume ("restore_backup_<id>") took the source volume's name.
        assert_eq!(out["volume"]["display_name"], "v", "{what}: {out}");
        assert_restored(&target, &want, VOLUME, GIB, &what);

        // An incremental on top (1 MiB changed in the fourth object): Cinder imports both
        // records and restores the chain, the full backup and then the changed object.
        let mut data = std::fs::read(&src).unwrap();
        data[13 * MIB..14 * MIB].iter_mut().for_each(|b| *b = b.wrapping_add(1));
        std::fs::write(&src, &data).unwrap();
        let want_inc = sha256_file(&src);
        let (st, b) = s.post("/backups", json!({"backup": {"volume_id": vol, "incremental": true}}));
        assert_eq!(st, 202, "{b}");
        let inc = b["backup"]["id"].as_str().unwrap().to_owned();
        let done = s.wait_backup(&inc, &["available", "error"]);
        assert_eq!(done["status"], "available", "{what}: {done}\n{}", s.log());
        assert_eq!(done["is_incremental"], true, "{done}");
        let (st, r) = s.get(&format!("/backups/{inc}/export_record"));
        assert_eq!(st, 200, "{r}");
        let inc_record = work.path().join("record-inc.json");
        std::fs::write(&inc_record, r.to_string()).unwrap();
        let target = work.path().join("cinder-restored-inc.raw");
        std::fs::File::create(&target).unwrap().set_len(GIB).unwrap();
        let (full_arg, inc_arg) = (record.to_str().unwrap(), inc_record.to_str().unwrap());
        let out = cinder(
            &rgw,
            driver,
            &bucket,
            compression,
            &["restore", "--record", full_arg, "--record", inc_arg, "--file", target.to_str().unwrap()],
        );
        assert_eq!(out["restored"], inc.as_str(), "{out}");
        assert_restored(&target, &want_inc, VOLUME, GIB, &format!("{what}, incremental"));
        delete_backup(&s, &inc);
        delete_backup(&s, &id);
    }
}

/// Cinder's driver backs a 24 MiB mixed file up; Holdfast imports Cinder's export
/// record (`POST /backups/import_record`) and restores it bit for bit.
fn cinder_to_holdfast(driver: &str) {
    let (_dev, rgw) = rgw_cluster();
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let bucket = format!("hf-cinder-{driver}-c2h-{}", std::process::id());
    let cfg = config(work.path(), driver, &rgw, &bucket, "zstd");
    let s = Server::start(&Database::Sqlite, &["--config", cfg.to_str().unwrap()]);
    for (n, compression) in ["zstd", "zlib"].into_iter().enumerate() {
        let what = format!("{driver}, {compression}: Cinder → Holdfast");
        let src = work.path().join(format!("cinder-src-{compression}.raw"));
        write_mixed_volume(&src, VOLUME, 31 + n as u64);
        let want = sha256_file(&src);
        let t = std::time::Instant::now();
        let rec = cinder(
            &rgw,
            driver,
            &bucket,
            compression,
            &["backup", "--file", src.to_str().unwrap(), "--name", &format!("cinder-made-{compression}")],
        );
        eprintln!("{what}: Cinder backed up in {:.1?}", t.elapsed());
        let record = &rec["backup-record"];
        assert_eq!(record["backup_service"], service(driver), "{rec}");

        let (st, r) = s.post("/backups/import_record", json!({"backup-record": record}));
        assert_eq!(st, 201, "{what}: {r}");
        let id = r["backup"]["id"].as_str().unwrap().to_owned();
        let b = s.wait_backup(&id, &["available", "error"]);
        assert_eq!(b["status"], "available", "{what}: {b}\n{}", s.log());
        assert_eq!(b["name"], format!("cinder-made-{compression}"), "{b}");
        assert_eq!(b["container"], bucket.as_str(), "{b}");
        assert_eq!(b["size"], 1, "{b}");

        let (st, r) = s.post(&format!("/backups/{id}/restore"), json!({"restore": {"name": format!("r-{id}")}}));
        assert_eq!(st, 202, "{what}: {r}");
        let t = std::time::Instant::now();
        let v = s.wait_volume(r["restore"]["volume_id"].as_str().unwrap(), &["available", "error_restoring", "error"]);
        assert_eq!(v["status"], "available", "{what}: {v}\n{}", s.log());
        eprintln!("{what}: Holdfast imported and restored in {:.1?}", t.elapsed());
        assert_restored(Path::new(v["holdfast:path"].as_str().unwrap()), &want, VOLUME, GIB, &what);
        // Holdfast's delete removes the objects Cinder wrote (the dev radosgw keeps them in memory).
        delete_backup(&s, &id);
    }
}
