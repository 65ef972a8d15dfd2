//! `holdfast bench --rbd`: backups of an RBD image on a real throwaway cluster
//! (`scripts/ceph-dev.sh`), side by side in one run with the pipelines Cinder's Ceph
//! driver runs: a full backup against `rbd export | rbd import`, an incremental after
//! 1 % of the image changed (random 4 KiB writes) against `rbd export-diff --from-snap
//! | rbd import-diff`, and an incremental of an unchanged image. Ours go through the
//! manager to the Ceph backend (`plugins/ceph`: RBD to RBD, the bytes moved host-side)
//! and to the posix backend (the chunked layout), reading the image through librbd and
//! only the diff for incrementals.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use holdfast_db::Db;
use holdfast_driver::{Grants, RbdGrant};
use holdfast_manager::{Backend, CreateBackup, Manager, ManagerConfig, RbdVolumes, RegisterVolume, RequestContext};
use holdfast_plugin_host::DriverComponent;
use holdfast_rbd::dev::DevCluster;
use holdfast_rbd::{Cluster, Image};
use holdfast_types::BackupStatus;

use crate::bench::{manager_config, median, wait_backup};

const MIB: u64 = 1 << 20;

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB as f64)
}

fn shell(conf: &Path, script: &str) -> Result<f64> {
    let t = Instant::now();
    let out = Command::new("bash").args(["-o", "pipefail", "-c", script]).env("CEPH_CONF", conf).output()?;
    if !out.status.success() {
        bail!("{script}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(t.elapsed().as_secs_f64())
}

pub async fn run(dir: &Path, size_gib: u64, workers: usize, rounds: usize) -> Result<()> {
    let size = size_gib << 30;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // Each round keeps three snapshots (the source's, the one `rbd import-diff` leaves on
    // its copy, the backup image's), and a snapshot of an image written all over keeps a
    // copy of every object: up to 3 × size a round beside the four images. Memstore's
    // 8 GiB in the OSD's memory filled in the second or third round of a 1 GiB run, and
    // a full OSD blocks writes: the flaky runs (an incremental's snapshot failing with
    // EROFS, an `rbd import-diff` that never returned; `ceph -s`: 1 full osd). Bluestore
    // on a sparse file sized for the run.
    let osd = format!("{}G", size_gib * (4 + 3 * (rounds as u64 + 1)) + 8);
    let options = ["--objectstore", "bluestore", "--osd-size", &osd];
    eprintln!("starting a throwaway Ceph cluster in {} …", dir.join("ceph").display());
    let dev = DevCluster::start_with(&repo, &dir.join("ceph"), &options).map_err(|e| anyhow::anyhow!("{e}"))?;
    let result = bench(dir, &dev, size, workers, rounds).await;
    if let Err(e) = dev.destroy(&repo) {
        eprintln!("could not remove the cluster in {}: {e}", dev.dir.display());
    }
    result
}

async fn bench(dir: &Path, dev: &DevCluster, size: u64, workers: usize, rounds: usize) -> Result<()> {
    let conf = dev.conf.clone();
    let cluster = Cluster::connect(&dev.config())?;
    let pool = cluster.pool("rbd")?;
    pool.create_image("bench-src", size)?;
    let img = Image::open(&pool, "bench-src")?;
    eprintln!("writing {} GiB of data into rbd/bench-src …", size >> 30);
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut piece = vec![0u8; (4 * MIB) as usize];
    for off in (0..size).step_by(piece.len()) {
        for w in piece.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w.copy_from_slice(&x.to_le_bytes()[..w.len()]);
        }
        img.write_at(off, &piece)?;
    }
    img.flush()?;
    img.snap_create("bench-a")?;

    let db = Db::connect(&format!("sqlite://{}", dir.join("bench.db").display())).await?;
    let store = dir.join("backups");
    std::fs::create_dir_all(&store)?;
    let driver = DriverComponent::load("posix", holdfast_plugin_artifacts::POSIX_BYTES, Grants::store(store), vec![])?;
    let rbd_grant = RbdGrant { conf: Some(conf.clone()), user: "admin".into(), pools: vec!["backups".into()] };
    let ceph = DriverComponent::load(
        "ceph",
        holdfast_plugin_artifacts::CEPH_BYTES,
        Grants { rbd: Some(rbd_grant), ..Grants::default() },
        vec![("backup_ceph_pool".into(), "backups".into()), ("backup_ceph_user".into(), "admin".into())],
    )?;
    let backends = vec![
        Backend {
            name: "posix".into(),
            availability_zone: "nova".into(),
            driver: Arc::new(driver),
            load_time: Default::default(),
        },
        Backend {
            name: "ceph".into(),
            availability_zone: "ceph".into(),
            driver: Arc::new(ceph),
            load_time: Default::default(),
        },
    ];
    let rbd = RbdVolumes { cluster: dev.config(), ..Default::default() };
    let cfg = ManagerConfig { rbd, ..manager_config(dir, workers) };
    let m = Manager::new(db, cfg, backends, "posix").await;
    let ctx = RequestContext {
        project_id: holdfast_api::DEFAULT_PROJECT.into(),
        user_id: "bench".into(),
        is_admin: true,
        caller: None,
    };
    let vol =
        m.register_volume(&ctx, RegisterVolume { path: "rbd:rbd/bench-src".into(), ..Default::default() }).await?;
    let backup = |incremental: bool, zone: &'static str| {
        let (m, ctx, vol) = (&m, &ctx, &vol);
        async move {
            let t = Instant::now();
            let create = CreateBackup {
                volume_id: vol.id.clone(),
                incremental,
                availability_zone: Some(zone.into()),
                ..Default::default()
            };
            let b = m.create_backup(ctx, create).await?;
            wait_backup(m, ctx, &b.id, BackupStatus::Available).await?;
            let read = m.db().backup_read(&b.id).await?.context("the backup recorded how it read")?;
            anyhow::Ok((t.elapsed().as_secs_f64(), read))
        }
    };

    eprintln!("full backups …");
    let (ceph_full, _) = backup(false, "ceph").await?;
    let (ours_full, full_read) = backup(false, "nova").await?;
    let rbd_full =
        shell(&conf, "rbd export --no-progress rbd/bench-src@bench-a - | rbd import --no-progress - rbd/cmp-full")?;
    // The import-diff side needs the base first (not timed), as Cinder's chain has.
    shell(
        &conf,
        &format!(
            "rbd create --size {}M rbd/cmp-inc && rbd export-diff --no-progress rbd/bench-src@bench-a - | rbd import-diff --no-progress - rbd/cmp-inc",
            size / MIB
        ),
    )?;

    // 1 % of the image in random 4 KiB writes, then a snapshot `name`.
    let writes = size / 100 / 4096;
    let mut change = |name: &str, fill: u8| -> Result<()> {
        let block = vec![fill; 4096];
        for _ in 0..writes {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            img.write_at((x % (size / 4096)) * 4096, &block)?;
        }
        img.flush()?;
        Ok(img.snap_create(name)?)
    };
    change("bench-b", 0x5A)?;
    let changed = writes * 4096;

    eprintln!("incremental backups after {} random 4 KiB writes …", writes);
    let (ceph_inc, ceph_inc_read) = backup(true, "ceph").await?;
    let (ours_inc, inc_read) = backup(true, "nova").await?;
    let rbd_inc = shell(
        &conf,
        "rbd export-diff --no-progress --from-snap bench-a rbd/bench-src@bench-b - | rbd import-diff --no-progress - rbd/cmp-inc",
    )?;
    let (ceph_same, ceph_same_read) = backup(true, "ceph").await?;
    let (ours_same, same_read) = backup(true, "nova").await?;

    // More rounds of the Ceph incremental against the rbd pipeline, each after another
    // 1 % changed, the side going first alternating (the OSD's cache favours the second).
    let (mut ceph_incs, mut rbd_incs) = (vec![ceph_inc], vec![rbd_inc]);
    for round in 2..=rounds {
        let (from, to) =
            (if round == 2 { "bench-b".to_owned() } else { format!("bench-{}", round - 1) }, format!("bench-{round}"));
        change(&to, round as u8)?;
        eprintln!("round {round} of {rounds}: another 1 % changed …");
        let pipeline = format!(
            "rbd export-diff --no-progress --from-snap {from} rbd/bench-src@{to} - | rbd import-diff --no-progress - rbd/cmp-inc"
        );
        if round % 2 == 0 {
            rbd_incs.push(shell(&conf, &pipeline)?);
            ceph_incs.push(backup(true, "ceph").await?.0);
        } else {
            ceph_incs.push(backup(true, "ceph").await?.0);
            rbd_incs.push(shell(&conf, &pipeline)?);
        }
    }
    let (ceph_inc, rbd_inc) = (median(&ceph_incs), median(&rbd_incs));

    let gib = size as f64 / (1u64 << 30) as f64;
    println!(
        "holdfast bench --rbd: a {gib:.0} GiB RBD image (random data), {} of it changed in 4 KiB writes; \
         ours = a backup through the manager to the Ceph backend (RBD to RBD) and to the posix backend",
        mib(changed)
    );
    let mbps = |bytes: u64, secs: f64| bytes as f64 / 1e6 / secs;
    println!(
        "  full, Ceph       : ours {ceph_full:6.2} s {:6.0} MB/s   rbd export | rbd import {rbd_full:6.2} s {:6.0} MB/s",
        mbps(size, ceph_full),
        mbps(size, rbd_full)
    );
    println!(
        "  1 %, Ceph        : ours {ceph_inc:6.2} s {:6.1} MB/s of changed data ({}, read {})   rbd export-diff | import-diff {rbd_inc:6.2} s {:6.1} MB/s",
        mbps(changed, ceph_inc),
        ceph_inc_read.0,
        mib(ceph_inc_read.1 as u64),
        mbps(changed, rbd_inc)
    );
    if rounds > 1 {
        let list = |v: &[f64]| v.iter().map(|s| format!("{s:.2}")).collect::<Vec<_>>().join(" ");
        println!(
            "  1 %, Ceph, {rounds} rounds (medians above): ours {} s   rbd export-diff | import-diff {} s   ours/rbd {:.2}",
            list(&ceph_incs),
            list(&rbd_incs),
            ceph_inc / rbd_inc
        );
    }
    println!(
        "  unchanged, Ceph  : ours {ceph_same:6.2} s ({}, read {})",
        ceph_same_read.0,
        mib(ceph_same_read.1 as u64)
    );
    println!(
        "  full, posix      : ours {ours_full:6.2} s {:6.0} MB/s ({}, read {})   rbd export | rbd import {rbd_full:6.2} s {:6.0} MB/s",
        mbps(size, ours_full),
        full_read.0,
        mib(full_read.1 as u64),
        mbps(size, rbd_full)
    );
    println!(
        "  1 %, posix       : ours {ours_inc:6.2} s {:6.1} MB/s of changed data ({}, read {})   rbd export-diff | import-diff {rbd_inc:6.2} s {:6.1} MB/s",
        mbps(changed, ours_inc),
        inc_read.0,
        mib(inc_read.1 as u64),
        mbps(changed, rbd_inc)
    );
    println!("  unchanged, posix : ours {ours_same:6.2} s ({}, read {})", same_read.0, mib(same_read.1 as u64));
    Ok(())
}
