//! The Ceph backup driver (`driver = "ceph"`, `plugins/ceph`) on a real cluster
//! (`scripts/ceph-dev.sh`): RBD volumes backed up into RBD images of the `backups`
//! pool, Cinder's names, incrementals that move only what changed, restores to RBD
//! and to files bit for bit, a chain of five, records that outlive the database, and
//! a backend that is down while its cluster is and comes up with it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use holdfast_rbd::dev::DevCluster;
use holdfast_rbd::{Cluster, Image, Pool};
use serde_json::{Value, json};

use crate::support::{Database, MIB, Server, sha256_file};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A config with the Ceph backend (default, zone `nova`) and a posix one (`az-posix`).
fn config(work: &Path, conf: &Path) -> PathBuf {
    let store = work.join("posix-store");
    std::fs::create_dir_all(&store).unwrap();
    let path = work.join("holdfast.toml");
    std::fs::write(
        &path,
        format!(
            "default_backend = \"ceph\"\n\
             [backends.ceph]\ndriver = \"ceph\"\n\
             settings = {{ backup_ceph_pool = \"backups\", backup_ceph_user = \"admin\", \
             backup_ceph_chunk_size = 4194304 }}\n\
             grants = {{ rbd = {{ conf = \"{}\", user = \"admin\", pools = [\"backups\"] }} }}\n\
             [backends.nfs]\ndriver = \"posix\"\navailability_zone = \"az-posix\"\n\
             grants = {{ store = \"{}\" }}\n",
            conf.display(),
            store.display()
        ),
    )
    .unwrap();
    path
}

fn serve(work: &Path, dev: &DevCluster) -> Server {
    let cfg = config(work, &dev.conf);
    Server::start(
        &Database::Sqlite,
        &["--config", cfg.to_str().unwrap(), "--rbd-conf", dev.conf.to_str().unwrap(), "--rbd-pool", "rbd"],
    )
}

/// xorshift bytes for piece `n` of an image named `seed`.
fn pattern(seed: u64, n: u64, buf: &mut [u8]) {
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ seed ^ (n << 20);
    for b in buf.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
}

/// An image of `size` bytes: two of every three MiB random, the rest never written.
fn image(pool: &Arc<Pool>, name: &str, size: u64) -> Image {
    let _ = pool.remove_image(name);
    pool.create_image(name, size).unwrap();
    let img = Image::open(pool, name).unwrap();
    let mut buf = vec![0u8; MIB];
    for n in 0..size / MIB as u64 {
        if n % 3 != 2 {
            pattern(name.len() as u64, n, &mut buf);
            img.write_at(n * MIB as u64, &buf).unwrap();
        }
    }
    img.flush().unwrap();
    img
}

fn sha_of_image(pool: &Arc<Pool>, name: &str, snap: Option<&str>) -> String {
    use sha2::Digest;
    let img = Image::open_read_only(pool, name, snap).unwrap();
    let size = img.size().unwrap();
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 16 * MIB];
    let mut at = 0;
    while at < size {
        let n = (size - at).min(buf.len() as u64) as usize;
        img.read_at(at, &mut buf[..n]).unwrap();
        h.update(&buf[..n]);
        at += n as u64;
    }
    hex(&h.finalize())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn snaps(pool: &Arc<Pool>, image: &str) -> Vec<String> {
    match Image::open_read_only(pool, image, None) {
        Ok(i) => i.snapshots().unwrap().into_iter().map(|s| s.name).collect(),
        Err(_) => Vec::new(),
    }
}

fn backup(s: &Server, body: Value) -> String {
    let (st, b) = s.post("/backups", json!({ "backup": body }));
    assert_eq!(st, 202, "{b}");
    let id = b["backup"]["id"].as_str().unwrap().to_owned();
    let done = s.wait_backup(&id, &["available", "error"]);
    assert_eq!(done["status"], "available", "{done}");
    id
}

fn restore_new(s: &Server, id: &str) -> String {
    let (st, r) = s.post(&format!("/backups/{id}/restore"), json!({"restore": {"name": format!("r-{id}")}}));
    assert_eq!(st, 202, "{r}");
    let v = r["restore"]["volume_id"].as_str().unwrap().to_owned();
    let rv = s.wait_volume(&v, &["available", "error_restoring", "error"]);
    assert_eq!(rv["status"], "available", "{rv}");
    v
}

/// Issue 11's scenario: a 1 GiB RBD volume, a full backup and a 1 % incremental to the
/// Ceph backend and to the posix backend; the incrementals move about 1 %; both restore
/// to a new RBD volume and to a file volume bit for bit; names are Cinder's.
#[test]
fn ceph_backend_full_and_incremental_of_a_1_gib_image() {
    let dev = crate::rbd::dev();
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let cluster = Cluster::connect(&dev.config()).unwrap();
    let (rbd, backups) = (cluster.pool("rbd").unwrap(), cluster.pool("backups").unwrap());
    let name = format!("e2e-ceph-{}", std::process::id());
    let size = 1024 * MIB as u64;
    let img = image(&rbd, &name, size);
    let s = serve(work.path(), &dev);
    let (_, services) = s.get("/os-services");
    let ceph = services["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["host"].as_str().unwrap().ends_with("@ceph"))
        .cloned()
        .unwrap();
    assert_eq!(ceph["state"], "up", "{ceph}");
    let (st, v) = s.post("/os-volume-manage", json!({"volume": {"ref": {"source-name": format!("rbd:rbd/{name}")}}}));
    assert_eq!(st, 202, "{v}");
    let vol = v["volume"]["id"].as_str().unwrap().to_owned();
    let before = sha_of_image(&rbd, &name, None);

    let full = backup(&s, json!({"volume_id": vol, "name": "full"}));
    let row = s.backup(&full);
    let base = format!("volume-{vol}.backup.{full}");
    assert_eq!(row["container"], "backups", "{row}");
    assert_eq!(row["object_count"], 0, "{row}");
    assert_eq!(row["holdfast:read"]["change_source"], "full", "{row}");
    let on_base = snaps(&backups, &base);
    assert!(on_base.len() == 1 && on_base[0].starts_with(&format!("backup.{full}.snap.")), "{on_base:?}");
    assert_eq!(sha_of_image(&backups, &base, Some(&on_base[0])), before, "the base image holds the volume");
    let meta = backups.read_object(&format!("backup.{full}.meta")).unwrap().expect("the volume-metadata object");
    assert!(serde_json::from_slice::<Value>(&meta).is_ok(), "{}", String::from_utf8_lossy(&meta));
    let posix_full = backup(&s, json!({"volume_id": vol, "name": "posix-full", "availability_zone": "az-posix"}));

    // About 1 % changes: ten runs of 1 MiB.
    let mut buf = vec![0u8; MIB];
    for k in 0..10u64 {
        pattern(77, k, &mut buf);
        img.write_at((k * 97 + 5) * MIB as u64, &buf).unwrap();
    }
    img.flush().unwrap();
    let after = sha_of_image(&rbd, &name, None);

    let inc = backup(&s, json!({"volume_id": vol, "name": "inc", "incremental": true}));
    let row = s.backup(&inc);
    assert_eq!(row["is_incremental"], true, "{row}");
    let read = &row["holdfast:read"];
    assert_eq!(read["change_source"], "rbd-diff", "{read}");
    let bytes = read["bytes_read"].as_u64().unwrap();
    assert!(bytes <= 11 * MIB as u64, "the incremental read {bytes} bytes for 10 MiB changed");
    let on_base = snaps(&backups, &base);
    assert_eq!(on_base.len(), 2, "one snapshot per backup on the shared base: {on_base:?}");
    assert!(on_base[1].starts_with(&format!("backup.{inc}.snap.")), "{on_base:?}");
    let posix_inc = backup(
        &s,
        json!({"volume_id": vol, "name": "posix-inc", "incremental": true, "availability_zone": "az-posix"}),
    );
    let read = &s.backup(&posix_inc)["holdfast:read"];
    // The posix layout reads whole 32 KiB sha blocks and RBD objects around the changes.
    assert_eq!(read["change_source"], "rbd-diff", "{read}");
    assert!(read["bytes_read"].as_u64().unwrap() <= 44 * MIB as u64, "{read}");

    // Each incremental restores to a new RBD volume bit for bit, and the full one too.
    for (id, want) in [(&inc, &after), (&posix_inc, &after), (&full, &before), (&posix_full, &before)] {
        let v = restore_new(&s, id);
        assert_eq!(&sha_of_image(&rbd, &format!("volume-{v}"), None), want, "restore of {id}");
        let (st, _) = s.request("DELETE", &format!("/volumes/{v}"), None);
        assert_eq!(st, 202);
    }
    // And over a file volume (every byte written: a file is not known to be empty).
    let (file, fvol) = s.mixed_volume("file", size as usize, 3);
    let (st, r) = s.post(&format!("/backups/{inc}/restore"), json!({"restore": {"volume_id": fvol}}));
    assert_eq!(st, 202, "{r}");
    assert_eq!(s.wait_volume(&fvol, &["available", "error_restoring"])["status"], "available");
    assert_eq!(sha256_file(&file), after, "the file volume holds the incremental");

    // Deleting the full with its incremental is refused; the incremental then the full
    // remove their snapshots, their objects and, with the last, the base image.
    let (st, e) = s.request("DELETE", &format!("/backups/{full}"), None);
    assert_eq!(st, 400, "{e}");
    for id in [&inc, &full, &posix_inc, &posix_full] {
        let (st, e) = s.request("DELETE", &format!("/backups/{id}"), None);
        assert_eq!(st, 202, "{e}");
        s.wait_gone(&format!("/backups/{id}"));
    }
    assert!(Image::open_read_only(&backups, &base, None).is_err(), "the base image goes with its last snapshot");
    assert_eq!(backups.read_object(&format!("backup.{full}.meta")).unwrap(), None);
    let (st, _) = s.request("DELETE", &format!("/volumes/{vol}"), None);
    assert_eq!(st, 202);
    drop(img);
    assert!(rbd.remove_image(&name).unwrap());
}

/// Five incrementals restore; their records rebuild a lost database and still restore.
#[test]
fn ceph_chain_of_five_and_records_after_losing_the_database() {
    let dev = crate::rbd::dev();
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let cluster = Cluster::connect(&dev.config()).unwrap();
    let (rbd, backups) = (cluster.pool("rbd").unwrap(), cluster.pool("backups").unwrap());
    let name = format!("e2e-ceph-chain-{}", std::process::id());
    let img = image(&rbd, &name, 48 * MIB as u64);
    let mut s = serve(work.path(), &dev);
    let (st, v) = s.post("/os-volume-manage", json!({"volume": {"ref": {"source-name": format!("rbd:rbd/{name}")}}}));
    assert_eq!(st, 202, "{v}");
    let vol = v["volume"]["id"].as_str().unwrap().to_owned();
    let mut chain = vec![(backup(&s, json!({"volume_id": vol})), sha_of_image(&rbd, &name, None))];
    for step in 0..5u64 {
        img.write_at((3 + 7 * step) * MIB as u64 + 4096, &[0xC0 | step as u8; 262_144]).unwrap();
        img.flush().unwrap();
        let id = backup(&s, json!({"volume_id": vol, "incremental": true}));
        let read = s.backup(&id)["holdfast:read"].clone();
        assert_eq!(read["change_source"], "rbd-diff", "step {step}: {read}");
        assert!(read["bytes_read"].as_u64().unwrap() <= 512 * 1024, "step {step}: {read}");
        chain.push((id, sha_of_image(&rbd, &name, None)));
    }
    let base = format!("volume-{vol}.backup.{}", chain[0].0);
    assert_eq!(snaps(&backups, &base).len(), 6);
    for (id, want) in [&chain[5], &chain[2]] {
        let v = restore_new(&s, id);
        assert_eq!(&sha_of_image(&rbd, &format!("volume-{v}"), None), want, "restore of {id}");
        let (st, _) = s.request("DELETE", &format!("/volumes/{v}"), None);
        assert_eq!(st, 202);
    }

    // Export every record, lose the database, import them into a new host, restore.
    let records: Vec<Value> = chain
        .iter()
        .map(|(id, _)| {
            let (st, r) = s.get(&format!("/backups/{id}/export_record"));
            assert_eq!(st, 200, "{r}");
            assert_eq!(r["backup-record"]["backup_service"], "cinder.backup.drivers.ceph.CephBackupDriver");
            r["backup-record"].clone()
        })
        .collect();
    s.stop();
    let work2 = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let s = serve(work2.path(), &dev);
    assert_eq!(s.get("/backups/detail").1["backups"].as_array().unwrap().len(), 0, "a new database");
    for rec in &records {
        let (st, r) = s.post("/backups/import_record", json!({"backup-record": rec}));
        assert_eq!(st, 201, "{r}");
    }
    for (id, _) in &chain {
        s.wait_backup(id, &["available"]);
    }
    let (id, want) = &chain[4];
    let v = restore_new(&s, id);
    assert_eq!(&sha_of_image(&rbd, &format!("volume-{v}"), None), want, "restore of an imported record");
    let (st, _) = s.request("DELETE", &format!("/volumes/{v}"), None);
    assert_eq!(st, 202);
    for (id, _) in chain.iter().rev() {
        let (st, e) = s.request("DELETE", &format!("/backups/{id}"), None);
        assert_eq!(st, 202, "{e}");
        s.wait_gone(&format!("/backups/{id}"));
    }
    assert!(Image::open_read_only(&backups, &base, None).is_err(), "the base image is gone");
    drop(img);
    // The first host's source snapshot stays on the image (that host's database is gone).
    let img = Image::open(&rbd, &name).unwrap();
    for sn in img.snapshots().unwrap() {
        img.snap_remove(&sn.name).unwrap();
    }
    drop(img);
    assert!(rbd.remove_image(&name).unwrap());
}

/// The down/up test's own cluster listens here: not `auto`, which could pick the shared
/// cluster's port while that one is not up yet, and a restarted memstore cluster comes
/// back on the port it first had.
const DOWN_PORT_BASE: &str = "13500";

/// Driver initialization with Ceph: a backend whose cluster is unreachable at start is
/// `down` with the reason and refuses backups; the periodic setup brings it `up` once
/// the cluster is back; a cluster that dies mid-backup leaves that backup `error` with
/// the reason, never a parent for the next one. A cluster of its own (stopped and
/// killed here), so the shared one serves the other tests meanwhile.
#[test]
fn ceph_backend_follows_its_cluster_down_and_up() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../ceph-dev-down");
    // A cluster an earlier, interrupted run left here would come back on its old port.
    if dir.exists() {
        let script = repo().join("scripts/ceph-dev.sh");
        std::process::Command::new("bash").arg(script).arg("destroy").arg(&dir).status().unwrap();
    }
    let dev = DevCluster::start_with(&repo(), &dir, &["--port-base", DOWN_PORT_BASE]).unwrap_or_else(|e| panic!("{e}"));
    dev.stop(&repo()).unwrap();
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let cfg = config(work.path(), &dev.conf);
    let s = Server::start(&Database::Sqlite, &["--config", cfg.to_str().unwrap(), "--periodic-interval", "2"]);
    let service = |s: &Server| -> Value {
        let (_, v) = s.get("/os-services");
        v["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["host"].as_str().unwrap().ends_with("@ceph"))
            .cloned()
            .unwrap()
    };
    crate::support::until("the ceph backend down", || service(&s)["state"] == "down");
    let svc = service(&s);
    let reason = svc["disabled_reason"].as_str().unwrap_or_default().to_owned();
    assert!(reason.contains("reaching the backup pool"), "{svc}");
    let (source_file, vol) = s.mixed_volume("v", 768 * MIB, 5);
    let (st, e) = s.post("/backups", json!({"backup": {"volume_id": vol}}));
    assert!(st == 503 || st == 400, "{st} {e}");
    assert!(e.to_string().contains("down"), "{e}");

    let dev = DevCluster::start_with(&repo(), &dir, &["--port-base", DOWN_PORT_BASE]).unwrap_or_else(|e| panic!("{e}"));
    crate::support::until("the ceph backend up again", || service(&s)["state"] == "up");
    // Backups work again.
    let id = backup(&s, json!({"volume_id": vol, "name": "after"}));
    assert_eq!(s.backup(&id)["container"], "backups");

    // A cluster that stops answering mid-backup (frozen), then one that dies (killed):
    // every call on it is bounded, so each backup ends `error` with the reason.
    let frozen = start_and(&s, &vol, "frozen", || dev.freeze(&repo()).unwrap());
    let failed = s.wait_backup(&frozen, &["error", "available"]);
    dev.thaw(&repo()).unwrap();
    assert_eq!(failed["status"], "error", "{failed}");
    let reason = failed["fail_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("stopped answering"), "{failed}");
    // Nothing of it a later backup could take as a parent: no snapshot in the base
    // image, and the next incremental builds on the last good backup and restores.
    let pool = Cluster::connect(&dev.config()).unwrap().pool("backups").unwrap();
    let base = format!("volume-{vol}.backup.{id}");
    let taken = snaps(&pool, &base);
    assert!(taken.iter().all(|n| !n.contains(&frozen)), "{taken:?}");
    assert_eq!(taken.len(), 1, "{taken:?}");
    // Calls fail at once for a short respite after the cluster stopped answering.
    std::thread::sleep(holdfast_plugin_host::limits::RBD_RESPITE);
    let next = backup(&s, json!({"volume_id": vol, "name": "next", "incremental": true}));
    assert_eq!(s.backup(&next)["holdfast:parent_id"], id.as_str());
    let (file, target) = s.mixed_volume("target", 768 * MIB, 9);
    let (st, r) = s.post(&format!("/backups/{next}/restore"), json!({"restore": {"volume_id": target}}));
    assert_eq!(st, 202, "{r}");
    assert_eq!(s.wait_volume(&target, &["available", "error_restoring"])["status"], "available");
    assert_eq!(sha256_file(&file), sha256_file(&source_file), "the restore after the freeze");
    drop(pool);

    let dies = start_and(&s, &vol, "dies", || dev.kill(&repo()).unwrap());
    let failed = s.wait_backup(&dies, &["error", "available"]);
    dev.destroy(&repo()).unwrap();
    assert_eq!(failed["status"], "error", "{failed}");
    assert!(!failed["fail_reason"].as_str().unwrap_or_default().is_empty(), "{failed}");
}

/// Start an incremental backup of `vol` named `name` and, once it has moved data, `then`.
fn start_and(s: &Server, vol: &str, name: &str, then: impl FnOnce()) -> String {
    let (st, b) = s.post("/backups", json!({"backup": {"volume_id": vol, "name": name, "incremental": true}}));
    assert_eq!(st, 202, "{b}");
    let id = b["backup"]["id"].as_str().unwrap().to_owned();
    crate::support::until("the backup under way", || {
        let (_, p) = s.get(&format!("/backups/{id}/progress"));
        p["progress"]["bytes_done"].as_u64().unwrap_or(0) > 0 || s.backup(&id)["status"] != "creating"
    });
    then();
    id
}
