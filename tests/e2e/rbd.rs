//! RBD volumes on a real Ceph cluster (`scripts/ceph-dev.sh`, started once for the
//! test run and shared): register an image (`rbd:POOL/IMAGE`), back it up at a point
//! in time (an RBD snapshot taken for the backup and removed after it), restore it to
//! a file volume and to a new RBD volume bit for bit, snapshot it (an RBD snapshot)
//! and back up the snapshot. Never skipped: a machine without Ceph installs it.

use std::path::Path;
use std::sync::Arc;

use holdfast_rbd::dev::DevCluster;
use holdfast_rbd::{Cluster, Image, Pool};
use serde_json::json;

use crate::support::{Database, MIB, Server, sha256_bytes};

pub(crate) fn dev() -> DevCluster {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../ceph-dev");
    DevCluster::start(&repo, &dir).unwrap_or_else(|e| panic!("{e}"))
}

/// An image of `size` bytes with data, zeros and a hole, and its bytes.
fn image(pool: &Arc<Pool>, name: &str, size: usize) -> Vec<u8> {
    let _ = pool.remove_image(name);
    pool.create_image(name, size as u64).unwrap();
    let img = Image::open(pool, name).unwrap();
    let mut bytes = vec![0u8; size];
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ name.len() as u64;
    for (i, b) in bytes.iter_mut().enumerate() {
        // Two of every three MiB random, the rest zeros (never written: holes).
        if (i / MIB) % 3 != 2 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
    }
    for (n, piece) in bytes.chunks(MIB).enumerate() {
        if n % 3 != 2 {
            img.write_at((n * MIB) as u64, piece).unwrap();
        }
    }
    img.flush().unwrap();
    bytes
}

fn read_image(pool: &Arc<Pool>, name: &str) -> Vec<u8> {
    let img = Image::open_read_only(pool, name, None).unwrap();
    let mut out = vec![0u8; img.size().unwrap() as usize];
    img.read_at(0, &mut out).unwrap();
    out
}

#[test]
fn rbd_volumes_back_up_and_restore_bit_for_bit() {
    let dev = dev();
    let cluster = Cluster::connect(&dev.config()).unwrap();
    let pool = cluster.pool("rbd").unwrap();
    let name = format!("e2e-{}", std::process::id());
    let bytes = image(&pool, &name, 24 * MIB);
    let conf = dev.conf.to_str().unwrap();

    let s = Server::start(&Database::Sqlite, &["--rbd-conf", conf, "--rbd-pool", "rbd"]);
    let (st, v) = s.post("/os-volume-manage", json!({"volume": {"ref": {"source-name": format!("rbd:rbd/{name}")}}}));
    assert_eq!(st, 202, "{v}");
    let vol = v["volume"]["id"].as_str().unwrap().to_owned();
    assert_eq!(s.volume(&vol)["size"], 1, "24 MiB shows as 1 GiB, as Cinder rounds");
    let (st, e) = s.post("/os-volume-manage", json!({"volume": {"ref": {"source-name": format!("rbd:rbd/{name}")}}}));
    assert_eq!(st, 400, "{e}");
    assert!(e.to_string().contains("already a volume"), "{e}");
    let (st, e) = s.post("/os-volume-manage", json!({"volume": {"ref": {"source-name": "rbd:rbd/no-such-image"}}}));
    assert_eq!(st, 400, "{e}");
    assert!(e.to_string().contains("no-such-image") && e.to_string().contains("No such file"), "{e}");

    // A backup reads the image at a snapshot of its own, kept for the next one to diff.
    let (st, b) = s.post("/backups", json!({"backup": {"volume_id": vol, "name": "rbd-full"}}));
    assert_eq!(st, 202, "{b}");
    let backup = b["backup"]["id"].as_str().unwrap().to_owned();
    s.wait_backup(&backup, &["available"]);
    let img = Image::open(&pool, &name).unwrap();
    let snaps = |img: &Image| -> Vec<String> { img.snapshots().unwrap().into_iter().map(|s| s.name).collect() };
    let kept = snaps(&img);
    assert!(kept.len() == 1 && kept[0].starts_with(&format!("backup.{backup}.snap.")), "{kept:?}");
    assert_eq!(s.backup(&backup)["holdfast:read"]["change_source"], "full");

    // 1 MiB changes; the incremental reads about that (RBD's diff, checked by a sample).
    let mut changed = bytes.clone();
    changed[5 * MIB..6 * MIB].fill(0x5A);
    img.write_at(5 * MIB as u64, &changed[5 * MIB..6 * MIB]).unwrap();
    img.flush().unwrap();
    let (st, b) = s.post("/backups", json!({"backup": {"volume_id": vol, "name": "rbd-inc", "incremental": true}}));
    assert_eq!(st, 202, "{b}");
    let inc = b["backup"]["id"].as_str().unwrap().to_owned();
    let ib = s.wait_backup(&inc, &["available"]);
    assert_eq!(ib["is_incremental"], true, "{ib}");
    let read = &s.backup(&inc)["holdfast:read"];
    assert_eq!(read["change_source"], "rbd-diff", "{read}");
    let bytes_read = read["bytes_read"].as_u64().unwrap();
    assert!(
        bytes_read <= 4 * MIB as u64 + 65_536,
        "read {bytes_read} bytes for a 1 MiB change (one RBD object and a sample)"
    );
    let kept = snaps(&img);
    assert!(
        kept.len() == 1 && kept[0].starts_with(&format!("backup.{inc}.snap.")),
        "the parent's snapshot went: {kept:?}"
    );
    let (st, r) = s.post(&format!("/backups/{inc}/restore"), json!({"restore": {"name": "inc-back"}}));
    assert_eq!(st, 202, "{r}");
    let iv = r["restore"]["volume_id"].as_str().unwrap().to_owned();
    s.wait_volume(&iv, &["available"]);
    assert_eq!(sha256_bytes(&read_image(&pool, &format!("volume-{iv}"))), sha256_bytes(&changed), "the chain restores");
    let (st, _) = s.request("DELETE", &format!("/volumes/{iv}"), None);
    assert_eq!(st, 202);

    // Restore to a new volume: an RBD image volume-<id> in the --rbd-pool.
    let (st, r) = s.post(&format!("/backups/{backup}/restore"), json!({"restore": {"name": "back"}}));
    assert_eq!(st, 202, "{r}");
    let restored = r["restore"]["volume_id"].as_str().unwrap().to_owned();
    let rv = s.wait_volume(&restored, &["available"]);
    assert_eq!(rv["holdfast:path"], format!("rbd:rbd/volume-{restored}"), "{rv}");
    assert_eq!(sha256_bytes(&read_image(&pool, &format!("volume-{restored}"))), sha256_bytes(&bytes));

    // Restore over a file volume, too.
    let (_, fvol) = s.mixed_volume("file", 24 * MIB, 7);
    let (st, r) = s.post(&format!("/backups/{backup}/restore"), json!({"restore": {"volume_id": fvol}}));
    assert_eq!(st, 202, "{r}");
    let fv = s.wait_volume(&fvol, &["available"]);
    let file = std::fs::read(fv["holdfast:path"].as_str().unwrap()).unwrap();
    assert_eq!(sha256_bytes(&file[..bytes.len()]), sha256_bytes(&bytes));

    // A volume snapshot is an RBD snapshot; backing it up reads it as it was.
    let (st, sn) = s.post("/snapshots", json!({"snapshot": {"volume_id": vol}}));
    assert_eq!(st, 202, "{sn}");
    let snap = sn["snapshot"]["id"].as_str().unwrap().to_owned();
    let t = std::time::Instant::now();
    while s.get(&format!("/snapshots/{snap}")).1["snapshot"]["status"] != "available" {
        assert!(t.elapsed() < std::time::Duration::from_secs(30), "snapshot not available");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(snaps(&img).contains(&format!("holdfast.snapshot.{snap}")), "{:?}", snaps(&img));
    img.write_at(0, &[0xAB; 4096]).unwrap(); // the live image moves on
    img.flush().unwrap();
    let (st, b) = s.post("/backups", json!({"backup": {"volume_id": vol, "snapshot_id": snap, "name": "of-snap"}}));
    assert_eq!(st, 202, "{b}");
    let of_snap = b["backup"]["id"].as_str().unwrap().to_owned();
    s.wait_backup(&of_snap, &["available"]);
    let (st, r) = s.post(&format!("/backups/{of_snap}/restore"), json!({"restore": {"name": "snap-back"}}));
    assert_eq!(st, 202, "{r}");
    let sv = r["restore"]["volume_id"].as_str().unwrap().to_owned();
    s.wait_volume(&sv, &["available"]);
    assert_eq!(sha256_bytes(&read_image(&pool, &format!("volume-{sv}"))), sha256_bytes(&changed), "as at the snapshot");
    let (st, _) = s.request("DELETE", &format!("/snapshots/{snap}"), None);
    assert_eq!(st, 202);
    let t = std::time::Instant::now();
    while snaps(&img).iter().any(|n| n.starts_with("holdfast.snapshot.")) {
        assert!(t.elapsed() < std::time::Duration::from_secs(30), "the RBD snapshot stays");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // Deleting volumes Holdfast created removes their images; a registered one stays.
    for v in [&restored, &sv] {
        let (st, _) = s.request("DELETE", &format!("/volumes/{v}"), None);
        assert_eq!(st, 202);
        assert!(Image::open(&pool, &format!("volume-{v}")).is_err(), "volume-{v} removed");
    }
    // Backups of it go first (a volume with backups is kept), then the volume: the
    // snapshots its backups kept go with it, the image stays.
    for b in [&of_snap, &inc, &backup] {
        let (st, _) = s.request("DELETE", &format!("/backups/{b}"), None);
        assert_eq!(st, 202);
        s.wait_gone(&format!("/backups/{b}"));
    }
    let (st, e) = s.request("DELETE", &format!("/volumes/{vol}"), None);
    assert_eq!(st, 202, "{e}");
    assert!(snaps(&img).is_empty(), "{:?}", snaps(&img));
    drop(img);
    assert!(pool.remove_image(&name).unwrap(), "the registered image was left in place");
}

/// Five incrementals on a full backup of an RBD image, each reading only its change;
/// any of them restores bit for bit; a backup with dependents is not deleted.
#[test]
fn a_chain_of_five_incrementals_restores() {
    let dev = dev();
    let cluster = Cluster::connect(&dev.config()).unwrap();
    let pool = cluster.pool("rbd").unwrap();
    let name = format!("e2e-chain-{}", std::process::id());
    let mut bytes = image(&pool, &name, 32 * MIB);
    let s = Server::start(&Database::Sqlite, &["--rbd-conf", dev.conf.to_str().unwrap(), "--rbd-pool", "rbd"]);
    let (st, v) = s.post("/os-volume-manage", json!({"volume": {"ref": {"source-name": format!("rbd:rbd/{name}")}}}));
    assert_eq!(st, 202, "{v}");
    let vol = v["volume"]["id"].as_str().unwrap().to_owned();
    let backup = |incremental: bool| {
        let (st, b) = s.post("/backups", json!({"backup": {"volume_id": vol, "incremental": incremental}}));
        assert_eq!(st, 202, "{b}");
        let id = b["backup"]["id"].as_str().unwrap().to_owned();
        s.wait_backup(&id, &["available"]);
        id
    };
    let img = Image::open(&pool, &name).unwrap();
    let mut chain = vec![(backup(false), bytes.clone())];
    for step in 0..5u8 {
        let at = (3 + 5 * step as usize) * MIB + 4096;
        bytes[at..at + 262_144].fill(0xC0 | step);
        img.write_at(at as u64, &bytes[at..at + 262_144]).unwrap();
        img.flush().unwrap();
        let id = backup(true);
        let read = s.backup(&id)["holdfast:read"].clone();
        assert_eq!(read["change_source"], "rbd-diff", "step {step}: {read}");
        assert!(read["bytes_read"].as_u64().unwrap() <= 4 * MIB as u64 + 65_536, "step {step}: {read}");
        chain.push((id, bytes.clone()));
    }
    let (st, e) = s.request("DELETE", &format!("/backups/{}", chain[0].0), None);
    assert_eq!(st, 400, "a backup with dependents stays: {e}");
    for (id, want) in [&chain[5], &chain[2]] {
        let (st, r) = s.post(&format!("/backups/{id}/restore"), json!({"restore": {"name": "chain"}}));
        assert_eq!(st, 202, "{r}");
        let rv = r["restore"]["volume_id"].as_str().unwrap().to_owned();
        s.wait_volume(&rv, &["available"]);
        assert_eq!(sha256_bytes(&read_image(&pool, &format!("volume-{rv}"))), sha256_bytes(want), "restore of {id}");
        let (st, _) = s.request("DELETE", &format!("/volumes/{rv}"), None);
        assert_eq!(st, 202);
    }
    for (id, _) in chain.iter().rev() {
        let (st, e) = s.request("DELETE", &format!("/backups/{id}"), None);
        assert_eq!(st, 202, "{e}");
        s.wait_gone(&format!("/backups/{id}"));
    }
    let (st, e) = s.request("DELETE", &format!("/volumes/{vol}"), None);
    assert_eq!(st, 202, "{e}");
    drop(img);
    assert!(pool.remove_image(&name).unwrap());
}

/// An RBD volume's changes since a snapshot come span by span (256 MiB), in order, so
/// an incremental's copy starts before the diff ends; together they are the whole diff.
#[test]
fn rbd_changes_come_span_by_span_in_order() {
    use holdfast_volume::{ChunkSource, RbdBackend, VolumeBackend};
    let dev = dev();
    let cluster = Cluster::connect(&dev.config()).unwrap();
    let pool = cluster.pool("rbd").unwrap();
    let name = format!("e2e-spans-{}", std::process::id());
    let _ = pool.remove_image(&name);
    pool.create_image(&name, 600 * MIB as u64).unwrap();
    let img = Image::open(&pool, &name).unwrap();
    img.write_at(0, &[1u8; 4096]).unwrap();
    img.flush().unwrap();
    img.snap_create("since").unwrap();
    // Changes in the first and the third span, none in the second.
    let changes = [5 * MIB as u64, 100 * MIB as u64, 520 * MIB as u64, 599 * MIB as u64];
    for at in changes {
        img.write_at(at, &[7u8; 8192]).unwrap();
    }
    img.flush().unwrap();
    let backend = RbdBackend::new(dev.config());
    let at = holdfast_types::VolumeLocation::Rbd(holdfast_types::RbdSpec::parse(&format!("rbd/{name}")).unwrap());
    let source: Arc<dyn ChunkSource> = backend.open_read(&at).unwrap();
    let mut spans: Vec<Vec<holdfast_volume::Extent>> = Vec::new();
    assert!(
        source
            .changed_extents_by_span("since", &mut |s| {
                spans.push(s);
                true
            })
            .unwrap()
    );
    assert_eq!(spans.len(), 3, "{spans:?}");
    assert!(spans[1].is_empty(), "{spans:?}");
    let all: Vec<_> = spans.concat();
    assert!(all.windows(2).all(|w| w[0].offset + w[0].len <= w[1].offset), "{all:?}");
    for at in changes {
        assert!(all.iter().any(|e| e.offset <= at && e.offset + e.len >= at + 8192), "{at}: {all:?}");
    }
    assert_eq!(source.changed_extents("since").unwrap(), Some(all));
    drop(source);
    img.snap_remove("since").unwrap();
    drop(img);
    assert!(pool.remove_image(&name).unwrap());
}

/// A volume whose diff leaves out a change (Ceph's diff has had such bugs): the diff
/// import's sampled check, here of every unchanged block, finds it and the backup
/// image gets a whole copy instead, never a silent wrong one; a truthful diff is used.
#[test]
fn a_diff_that_leaves_out_a_change_is_caught_by_the_check() {
    use holdfast_chunk::{AlignedBuf, ChunkSource, SourceRead};
    use holdfast_types::Extent;
    use holdfast_volume::rbd_transfer::{self, Since, Transfer};
    use holdfast_volume::{FileBackend, VolumeBackend};
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A file volume that claims `changes` changed since any snapshot.
    struct Claims {
        inner: Arc<dyn ChunkSource>,
        changes: Vec<Extent>,
    }
    impl ChunkSource for Claims {
        fn size(&self) -> u64 {
            self.inner.size()
        }
        fn read_chunk(&self, offset: u64, buf: &mut AlignedBuf) -> std::io::Result<SourceRead> {
            self.inner.read_chunk(offset, buf)
        }
        fn changed_extents(&self, _since: &str) -> std::io::Result<Option<Vec<Extent>>> {
            Ok(Some(self.changes.clone()))
        }
    }

    let dev = dev();
    let cluster = Cluster::connect(&dev.config()).unwrap();
    let pool = cluster.pool("rbd").unwrap();
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let file = work.path().join("v.raw");
    let mut bytes: Vec<u8> = (0..8 * MIB as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
    std::fs::write(&file, &bytes).unwrap();
    let at = holdfast_types::VolumeLocation::File(file.clone());
    let name = format!("e2e-lying-diff-{}", std::process::id());
    let _ = pool.remove_image(&name);
    pool.create_image(&name, bytes.len() as u64).unwrap();
    let img = Arc::new(Image::open(&pool, &name).unwrap());
    let progress = |_n: u64| {};
    let cancel = AtomicBool::new(false);
    let t = Transfer { piece: 1 << 20, cancel: &cancel, progress: &progress, check: 1.0 };
    let full = rbd_transfer::import(&FileBackend.open_read(&at).unwrap(), &img, Since::Nothing, "backup.p.snap.1", &t)
        .unwrap();
    assert!(full.fallback.is_none(), "{full:?}");

    // Two blocks change; the diff reports only the first.
    for at in [MIB, 5 * MIB] {
        bytes[at..at + 4096].fill(0xEE);
    }
    std::fs::write(&file, &bytes).unwrap();
    let one = Extent { offset: MIB as u64, len: 4096 };
    let lying: Arc<dyn ChunkSource> =
        Arc::new(Claims { inner: FileBackend.open_read(&at).unwrap(), changes: vec![one] });
    let since = Since::Parent { id: "p", image_snap: "backup.p.snap.1" };
    let r = rbd_transfer::import(&lying, &img, since, "backup.q.snap.2", &t).unwrap();
    assert!(!r.by_diff, "{r:?}");
    assert!(r.fallback.as_deref().unwrap_or_default().contains("sampled check"), "{r:?}");
    assert_eq!(read_image(&pool, &name), bytes, "the whole copy made it right");

    // A truthful diff is used, and reads only the change.
    bytes[3 * MIB..3 * MIB + 4096].fill(0x11);
    std::fs::write(&file, &bytes).unwrap();
    let three = Extent { offset: 3 * MIB as u64, len: 4096 };
    let truthful: Arc<dyn ChunkSource> =
        Arc::new(Claims { inner: FileBackend.open_read(&at).unwrap(), changes: vec![three] });
    let since = Since::Parent { id: "q", image_snap: "backup.q.snap.2" };
    let r = rbd_transfer::import(&truthful, &img, since, "backup.r.snap.3", &t).unwrap();
    assert!(r.by_diff && r.fallback.is_none(), "{r:?}");
    assert_eq!(r.bytes_read, 4096, "{r:?}");
    assert_eq!(read_image(&pool, &name), bytes);
    assert!(!cancel.load(Ordering::Relaxed));

    for s in img.snapshots().unwrap() {
        img.snap_remove(&s.name).unwrap();
    }
    drop(img);
    assert!(pool.remove_image(&name).unwrap());
}
