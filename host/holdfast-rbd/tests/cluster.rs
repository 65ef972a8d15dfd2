//! librbd through our FFI on the real dev cluster (scripts/ceph-dev.sh): images,
//! reads and writes, snapshots, diffs, RADOS objects, and a clear error for an
//! image, a pool or a cluster that is not there.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use holdfast_rbd::dev::DevCluster;
use holdfast_rbd::{Cluster, ClusterConfig, DiffExtent, Image};

const MIB: u64 = 1 << 20;

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn dev() -> DevCluster {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../ceph-dev");
    DevCluster::start(repo(), &dir).unwrap_or_else(|e| panic!("{e}"))
}

fn unique(name: &str) -> String {
    format!("{name}-{}-{:x}", std::process::id(), Instant::now().elapsed().as_nanos() ^ rand_seed())
}

fn rand_seed() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

#[test]
fn images_snapshots_and_diffs() {
    let cluster = Cluster::connect(&dev().config()).unwrap();
    let pool = cluster.pool("rbd").unwrap();
    let name = unique("img");
    pool.create_image(&name, 64 * MIB).unwrap();
    let img = Image::open(&pool, &name).unwrap();
    assert_eq!(img.size().unwrap(), 64 * MIB);
    assert!(img.diff(None, false).unwrap().is_empty(), "a new image holds nothing");

    let block: Vec<u8> = (0..MIB).map(|i| (i % 251) as u8).collect();
    img.write_at(3 * MIB, &block).unwrap();
    img.write_at(40 * MIB + 4096, &block[..8192]).unwrap();
    img.flush().unwrap();
    img.snap_create("a").unwrap();
    let mut back = vec![0u8; MIB as usize];
    assert_eq!(img.read_at(3 * MIB, &mut back).unwrap(), MIB as usize);
    assert_eq!(back, block);

    // One change after the snapshot: the diff since it is exactly that range.
    img.write_at(10 * MIB, &block[..65536]).unwrap();
    img.write_zeroes(3 * MIB, MIB).unwrap();
    img.flush().unwrap();
    img.snap_create("b").unwrap();
    let at_b = Image::open_read_only(&pool, &name, Some("b")).unwrap();
    let diff = at_b.diff(Some("a"), false).unwrap();
    // A write into an object the snapshot did not have reports that object's data
    // (from its start); within one object that existed, just the range.
    let covers = |d: &[DiffExtent], off: u64, len: u64, exists: bool| {
        d.iter().any(|e| e.exists == exists && e.offset <= off && e.offset + e.len >= off + len)
    };
    assert!(covers(&diff, 10 * MIB, 65536, true), "{diff:?}");
    assert!(covers(&diff, 3 * MIB, MIB, false), "the zeroed range: {diff:?}");
    assert!(!diff.iter().any(|e| e.offset >= 12 * MIB), "unchanged since a: {diff:?}");
    assert!(diff.iter().map(|e| e.len).sum::<u64>() <= 2 * 4 * MIB, "at most the two objects touched: {diff:?}");
    // A span's diff is the part of the whole diff inside it.
    let span = at_b.diff_in(Some("a"), false, 8 * MIB, 8 * MIB).unwrap();
    assert!(covers(&span, 10 * MIB, 65536, true), "{span:?}");
    assert!(span.iter().all(|e| e.offset >= 8 * MIB && e.offset + e.len <= 16 * MIB), "{span:?}");
    let full = at_b.diff(None, false).unwrap();
    assert!(full.iter().all(|e| e.exists), "{full:?}");
    assert!(covers(&full, 10 * MIB, 65536, true) && covers(&full, 40 * MIB + 4096, 8192, true), "{full:?}");

    // The snapshot reads as it was, several ranges at once.
    let at_a = Image::open_read_only(&pool, &name, Some("a")).unwrap();
    let (mut x, mut y) = (vec![0u8; 4096], vec![1u8; 4096]);
    at_a.read_many(&mut [(3 * MIB, &mut x[..]), (10 * MIB, &mut y[..])]).unwrap();
    assert_eq!(x, block[..4096]);
    assert!(y.iter().all(|&b| b == 0));
    let snaps: Vec<String> = img.snapshots().unwrap().into_iter().map(|s| s.name).collect();
    assert_eq!(snaps, ["a", "b"]);

    img.resize(128 * MIB).unwrap();
    assert_eq!(img.size().unwrap(), 128 * MIB);
    drop((at_a, at_b));
    assert!(img.snap_remove("a").unwrap());
    assert!(!img.snap_remove("a").unwrap());
    img.snap_remove("b").unwrap();
    drop(img);
    assert!(pool.remove_image(&name).unwrap());
    assert!(!pool.remove_image(&name).unwrap());

    let e = Image::open(&pool, &name).unwrap_err();
    assert!(e.is_not_found() && e.to_string().contains(&name), "{e}");
    let e = cluster.pool("no-such-pool").unwrap_err();
    assert!(e.to_string().contains("no-such-pool"), "{e}");
}

#[test]
fn rados_objects() {
    let cluster = Cluster::connect(&dev().config()).unwrap();
    let pool = cluster.pool("rbd").unwrap();
    let oid = unique("backup.x.meta");
    assert_eq!(pool.read_object(&oid).unwrap(), None);
    pool.write_object(&oid, b"{\"version\": 2}").unwrap();
    assert_eq!(pool.read_object(&oid).unwrap().as_deref(), Some(&b"{\"version\": 2}"[..]));
    assert!(pool.remove_object(&oid).unwrap());
    assert!(!pool.remove_object(&oid).unwrap(), "an absent object is no error");
    assert_eq!(pool.read_object(&oid).unwrap(), None);
}

/// A cluster that is not there fails within the timeout, with the reason.
#[test]
fn an_unreachable_cluster_fails_fast_and_clearly() {
    let dir = tempfile_dir();
    let conf = dir.join("ceph.conf");
    std::fs::write(&conf, "[global]\nmon_host = 127.0.0.1:1\nauth_client_required = none\n").unwrap();
    let config = ClusterConfig { conf: Some(conf), user: "admin".into(), timeout: Duration::from_secs(2) };
    let t = Instant::now();
    let e = Cluster::connect(&config).unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(15), "took {:?}", t.elapsed());
    assert!(e.to_string().contains("connecting to the cluster"), "{e}");
    let missing = ClusterConfig { conf: Some(dir.join("nope.conf")), ..config };
    assert!(Cluster::connect(&missing).unwrap_err().to_string().contains("nope.conf"));
    let _ = Arc::new(());
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("rbd-test"));
    std::fs::create_dir_all(&d).unwrap();
    d
}
