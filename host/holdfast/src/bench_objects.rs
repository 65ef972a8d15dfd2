//! `holdfast bench --object-store`: the S3 and Swift drivers against a real radosgw
//! (a throwaway dev cluster, `scripts/ceph-dev.sh --rgw`) on the generated mixed volume:
//! full backup, restore (verified) and a 1 % incremental per driver, with one upload in
//! flight and with `--in-flight` of them, `restic` with its S3 backend on the same
//! radosgw in the same run when it is installed, and Cinder 29's own S3 and Swift
//! drivers (a venv from PyPI, `scripts/cinder-env.sh`).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use holdfast_db::Db;
use holdfast_driver::{Grants, ObjectApi};
use holdfast_manager::{Backend, CreateBackup, Manager, RegisterVolume, RequestContext, RestoreRequest};
use holdfast_plugin_host::DriverComponent;
use holdfast_rbd::dev::{DevCluster, Rgw};
use holdfast_types::BackupStatus;

use crate::bench::{
    cpu_seconds, manager_config, median, mib, peak_rss, reset_peak_rss, timed_incremental, wait_backup, wait_restored,
};
use crate::bench_volume::{change_one_percent_with, files_equal, generate};

pub async fn run(
    dir: &Path,
    size_gib: u64,
    workers: usize,
    in_flight: usize,
    only: &[String],
    rounds: usize,
) -> Result<()> {
    if let Some(other) = only.iter().find(|d| !matches!(d.as_str(), "s3" | "swift")) {
        bail!("--only {other}: the object-store drivers are s3 and swift");
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let osd = format!("{}G", size_gib * 8 + 8);
    // Bluestore: the objects must not live in the OSD's memory next to our RSS.
    let options = ["--rgw", "--objectstore", "bluestore", "--osd-size", &osd];
    eprintln!("starting a throwaway Ceph cluster with radosgw in {} …", dir.join("ceph").display());
    let dev = DevCluster::start_with(&repo, &dir.join("ceph"), &options).map_err(|e| anyhow::anyhow!("{e}"))?;
    let result = bench(dir, &dev, size_gib << 30, workers, in_flight, only, rounds).await;
    if let Err(e) = dev.destroy(&repo) {
        eprintln!("could not remove the cluster in {}: {e}", dev.dir.display());
    }
    result
}

fn settings(driver: &str, rgw: &Rgw, bucket: &str, in_flight: usize) -> Vec<(String, String)> {
    let kv: Vec<(&str, String)> = match driver {
        "s3" => vec![
            ("backup_s3_endpoint_url", rgw.endpoint()),
            ("backup_s3_store_access_key", rgw.access_key.clone()),
            ("backup_s3_store_secret_key", rgw.secret_key.clone()),
            ("backup_s3_store_bucket", bucket.to_owned()),
            ("backup_s3_in_flight", in_flight.to_string()),
        ],
        _ => vec![
            ("backup_swift_auth", "single_user".into()),
            ("backup_swift_auth_url", format!("{}/auth/1.0", rgw.endpoint())),
            ("backup_swift_user", rgw.swift_user.clone()),
            ("backup_swift_key", rgw.swift_key.clone()),
            ("backup_swift_container", bucket.to_owned()),
            ("backup_swift_in_flight", in_flight.to_string()),
        ],
    };
    kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// One of our backends on the bench's radosgw, with a volume registered.
struct Ours {
    m: Arc<Manager>,
    ctx: RequestContext,
    volume_id: String,
    bucket: String,
}

/// What a full backup and its restore measured.
struct FullAndRestore {
    backup_secs: f64,
    backup_cpu: f64,
    backup_rss: u64,
    idle_rss: u64,
    restore_secs: f64,
    restore_cpu: f64,
    restore_rss: u64,
}

struct Setup<'a> {
    dir: &'a Path,
    rgw: &'a Rgw,
    vol_path: &'a Path,
    workers: usize,
}

impl Setup<'_> {
    async fn backend(&self, driver: &str, flights: usize, tag: &str, verify_md5: bool) -> Result<Ours> {
        let bucket = format!("bench-{driver}-{tag}");
        let bytes = match driver {
            "s3" => holdfast_plugin_artifacts::S3_BYTES,
            _ => holdfast_plugin_artifacts::SWIFT_BYTES,
        };
        let api = if driver == "s3" { ObjectApi::S3 } else { ObjectApi::Swift };
        let grants = Grants {
            network: vec![self.rgw.authority()],
            object_api: Some(api),
            // (in flight + 1) objects of 50 MiB and the driver's own memory.
            memory_bytes: Some(((flights as u64 + 2) * 52_428_800 + (64 << 20)).max(256 << 20)),
            ..Grants::default()
        };
        let mut settings = settings(driver, self.rgw, &bucket, flights);
        if !verify_md5 {
            settings.push(("restore_verify_md5".into(), "false".into()));
        }
        let driver_c = DriverComponent::load(driver, bytes, grants, settings)?;
        let db_path = self.dir.join(format!("bench-{driver}-{tag}.db"));
        let db = Db::connect(&format!("sqlite://{}", db_path.display())).await?;
        let backend = Backend {
            name: driver.into(),
            availability_zone: "nova".into(),
            driver: Arc::new(driver_c),
            load_time: Default::default(),
        };
        let m = Manager::new(db, manager_config(self.dir, self.workers), vec![backend], driver).await;
        let ctx = RequestContext {
            project_id: holdfast_api::DEFAULT_PROJECT.into(),
            user_id: "bench".into(),
            is_admin: true,
            caller: None,
        };
        let vol = m
            .register_volume(&ctx, RegisterVolume { path: self.vol_path.display().to_string(), ..Default::default() })
            .await?;
        Ok(Ours { m, ctx, volume_id: vol.id, bucket })
    }

    /// A full backup and a restore of it, checked identical.
    async fn full_and_restore(&self, o: &Ours) -> Result<FullAndRestore> {
        crate::bench_volume::drop_cache_of(self.vol_path)?;
        reset_peak_rss();
        let idle_rss = crate::bench::proc_status_bytes("VmRSS");
        let cpu = cpu_seconds();
        let t = Instant::now();
        let b =
            o.m.create_backup(&o.ctx, CreateBackup { volume_id: o.volume_id.clone(), ..Default::default() }).await?;
        wait_backup(&o.m, &o.ctx, &b.id, BackupStatus::Available).await?;
        let backup_secs = t.elapsed().as_secs_f64();
        let backup_cpu = cpu_seconds() - cpu;
        let backup_rss = peak_rss();
        reset_peak_rss();
        let cpu = cpu_seconds();
        let t = Instant::now();
        let r = o.m.restore_backup(&o.ctx, &b.id, RestoreRequest::default()).await?;
        let restored = wait_restored(&o.m, &o.ctx, &r.volume_id).await?;
        let restore_secs = t.elapsed().as_secs_f64();
        let restore_cpu = cpu_seconds() - cpu;
        let restore_rss = peak_rss();
        let restored_path = restored.location.as_file().context("the restored volume is not a file")?.to_owned();
        let same = files_equal(self.vol_path, &restored_path)?;
        let _ = std::fs::remove_file(&restored_path);
        if !same {
            bail!("{}: the restored volume differs from the source", o.bucket);
        }
        Ok(FullAndRestore { backup_secs, backup_cpu, backup_rss, idle_rss, restore_secs, restore_cpu, restore_rss })
    }
}

async fn bench(
    dir: &Path,
    dev: &DevCluster,
    size: u64,
    workers: usize,
    in_flight: usize,
    only: &[String],
    rounds: usize,
) -> Result<()> {
    let rgw = dev.rgw().map_err(|e| anyhow::anyhow!("{e}"))?;
    let vol_path = dir.join("mixed.raw");
    eprintln!("generating a {} GiB mixed volume at {} …", size >> 30, vol_path.display());
    generate(&vol_path, size)?;
    let mbps = |secs: f64| size as f64 / 1e6 / secs;
    println!(
        "holdfast bench --object-store: {} GiB mixed volume, radosgw on 127.0.0.1:{} (bluestore), zstd, 50 MiB objects, {workers} workers",
        size >> 30,
        rgw.port
    );
    let ceiling = crate::bench_ceiling::measure(&rgw, size, in_flight)?;
    println!(
        "  radosgw itself, plain HTTP with {in_flight} connections, 50 MiB random objects, no processing: PUT {:.0} MB/s, GET {:.0} MB/s",
        ceiling.put_mbps, ceiling.get_mbps
    );
    let setup = Setup { dir, rgw: &rgw, vol_path: &vol_path, workers };
    let drivers: Vec<&str> =
        ["s3", "swift"].into_iter().filter(|d| only.is_empty() || only.iter().any(|o| o == d)).collect();
    let mut seed = 42;
    for &driver in &drivers {
        for flights in [1, in_flight] {
            let o = setup.backend(driver, flights, &format!("{flights}"), true).await?;
            let f = setup.full_and_restore(&o).await?;
            let stored = crate::bench_ceiling::stored_bytes(&rgw, &o.bucket)?;
            // What the endpoint allows for this volume: its raw rate over the bytes stored.
            let cap = |raw_mbps: f64| raw_mbps * size as f64 / stored as f64;
            seed += 1;
            let changed = change_one_percent_with(&vol_path, size, seed)?;
            let (inc, inc_backup) = timed_incremental(&o.m, &o.ctx, &o.volume_id).await?;
            let (inc_secs, inc_rss) = (inc.secs, inc.rss);
            let inc = inc_backup;
            println!(
                "  {driver:5} {flights:2} in flight: full {:6.2} s {:6.0} MB/s of {:.0} ({:.1} CPU-s here, RSS {:4.0} MiB from {:.0}, {:.0} MiB stored)   restore {:6.2} s {:6.0} MB/s of {:.0} ({:.1} CPU-s, RSS {:5.0} MiB, identical)   1% incremental {inc_secs:6.2} s ({} objects for {:.1} MiB changed, RSS {:5.0} MiB)",
                f.backup_secs,
                mbps(f.backup_secs),
                cap(ceiling.put_mbps),
                f.backup_cpu,
                mib(f.backup_rss),
                mib(f.idle_rss),
                mib(stored),
                f.restore_secs,
                mbps(f.restore_secs),
                cap(ceiling.get_mbps),
                f.restore_cpu,
                mib(f.restore_rss),
                inc.object_count,
                mib(changed),
                mib(inc_rss)
            );
        }
        // What the restore's MD5 check of every object costs (Cinder checks none).
        let o = setup.backend(driver, in_flight, "unchecked", false).await?;
        let f = setup.full_and_restore(&o).await?;
        println!(
            "  {driver:5} {in_flight:2} in flight, restore_verify_md5 = false: restore {:6.2} s {:6.0} MB/s ({:.1} CPU-s)",
            f.restore_secs,
            mbps(f.restore_secs),
            f.restore_cpu
        );
    }
    if !only.is_empty() {
        return Ok(());
    }
    against_restic(&setup, &drivers, in_flight, rounds, size).await?;
    cinder_drivers(dir, &rgw, &vol_path, size)
}

/// `rounds` rounds of full backup and restore by each of our drivers (`in_flight`)
/// and by restic's S3 backend (a new repository each round), the side going first
/// rotating; every round and the medians, with our ratio to restic.
async fn against_restic(setup: &Setup<'_>, drivers: &[&str], in_flight: usize, rounds: usize, size: u64) -> Result<()> {
    ensure_restic()?;
    let mbps = |secs: f64| size as f64 / 1e6 / secs;
    let sides: Vec<&str> = drivers.iter().copied().chain(["restic"]).collect();
    let mut times: Vec<(Vec<f64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); sides.len()];
    println!("  {rounds} rounds of full backup and restore against restic 0.14's S3 backend, {in_flight} in flight:");
    for round in 0..rounds {
        let mut line = format!("    round {}:", round + 1);
        for k in 0..sides.len() {
            let i = (k + round) % sides.len();
            let side = sides[i];
            let (b, r) = if side == "restic" {
                restic_s3(setup.dir, setup.rgw, setup.vol_path, &format!("bench-restic-{round}"))?
            } else {
                let o = setup.backend(side, in_flight, &format!("round-{round}"), true).await?;
                let f = setup.full_and_restore(&o).await?;
                (f.backup_secs, f.restore_secs)
            };
            times[i].0.push(b);
            times[i].1.push(r);
            line += &format!("  {side} {:.0}/{:.0}", mbps(b), mbps(r));
        }
        println!("{line} MB/s (full/restore)");
    }
    let (rb, rr) = (median(&times[sides.len() - 1].0), median(&times[sides.len() - 1].1));
    for (side, (b, r)) in sides.iter().zip(&times) {
        let (b, r) = (median(b), median(r));
        println!(
            "    median {side:6}: full {:6.0} MB/s ({:.2}× restic)   restore {:6.0} MB/s ({:.2}× restic)",
            mbps(b),
            rb / b,
            mbps(r),
            rr / r
        );
    }
    Ok(())
}

/// Cinder 29's own S3 and Swift drivers, unmodified (`scripts/cinder-env.sh` builds
/// the venv; `tests/support/cinder_backup.py` runs them, timing the driver call alone),
/// with Cinder's defaults (zlib, 50 MiB objects) on the same radosgw.
fn cinder_drivers(dir: &Path, rgw: &Rgw, vol: &Path, size: u64) -> Result<()> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new("bash").arg(repo.join("scripts/cinder-env.sh")).arg(repo.join("target/cinder")).output()?;
    if !out.status.success() {
        bail!("scripts/cinder-env.sh: {}", String::from_utf8_lossy(&out.stderr));
    }
    let python = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let harness = repo.join("tests/support/cinder_backup.py");
    let mbps = |secs: f64| size as f64 / 1e6 / secs;
    for driver in ["s3", "swift"] {
        let run = |args: &[&str]| -> Result<serde_json::Value> {
            let mut cmd = Command::new(&python);
            cmd.arg(&harness).args(args).args([
                "--driver",
                driver,
                "--endpoint",
                &rgw.endpoint(),
                "--container",
                &format!("bench-cinder-{driver}"),
                "--object-size",
                "52428800",
                "--compression",
                "zlib",
            ]);
            match driver {
                "s3" => cmd.args(["--access-key", &rgw.access_key, "--secret-key", &rgw.secret_key]),
                _ => cmd.args(["--user", &rgw.swift_user, "--key", &rgw.swift_key]),
            };
            let out = cmd.output()?;
            if !out.status.success() {
                bail!("cinder_backup.py {args:?} ({driver}): {}", String::from_utf8_lossy(&out.stderr));
            }
            Ok(serde_json::from_slice(&out.stdout)?)
        };
        crate::bench_volume::drop_cache_of(vol)?;
        let made = run(&["backup", "--file", &vol.display().to_string()])?;
        let record = dir.join(format!("cinder-{driver}.json"));
        std::fs::write(&record, made.to_string())?;
        let target = dir.join(format!("cinder-{driver}-restore.raw"));
        holdfast_volume::create_sparse(&target, size)?;
        let back =
            run(&["restore", "--record", &record.display().to_string(), "--file", &target.display().to_string()])?;
        let same = files_equal(vol, &target)?;
        let _ = std::fs::remove_file(&target);
        let (b, r) = (made["seconds"].as_f64().unwrap_or(f64::NAN), back["seconds"].as_f64().unwrap_or(f64::NAN));
        println!(
            "  Cinder 29 {driver:5}: full {b:6.2} s {:6.0} MB/s                    restore {r:6.2} s {:6.0} MB/s ({})   (zlib, its default)",
            mbps(b),
            mbps(r),
            if same { "identical" } else { "DIFFERENT" }
        );
    }
    Ok(())
}

/// Install restic from Debian when it is missing: it is the peer the figure names.
pub(crate) fn ensure_restic() -> Result<()> {
    if Command::new("restic").arg("version").output().is_ok() {
        return Ok(());
    }
    eprintln!("restic is not installed: apt-get install restic …");
    // SAFETY: geteuid has no preconditions.
    let mut apt = if unsafe { libc::geteuid() } == 0 {
        Command::new("apt-get")
    } else {
        let mut c = Command::new("sudo");
        c.args(["-n", "apt-get"]);
        c
    };
    let status = apt
        .args(["-o", "DPkg::Lock::Timeout=600", "install", "-y", "-qq", "--no-install-recommends", "restic"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()?;
    if !status.success() {
        bail!("restic is the peer this figure is measured against and could not be installed (apt-get install restic)");
    }
    Ok(())
}

/// restic with its S3 backend on the same radosgw, into a new repository (bucket
/// `bucket`): seconds of its full backup of `vol` and of the restore.
fn restic_s3(dir: &Path, rgw: &Rgw, vol: &Path, bucket: &str) -> Result<(f64, f64)> {
    let repo = format!("s3:{}/{bucket}", rgw.endpoint());
    let run = |args: &[&str]| {
        let mut restic = Command::new("restic");
        restic
            .args(["-r", &repo, "--no-cache"])
            .env("AWS_ACCESS_KEY_ID", &rgw.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &rgw.secret_key)
            .env("RESTIC_PASSWORD", "bench");
        crate::bench::timed_restic(restic, args)
    };
    run(&["init"])?;
    crate::bench_volume::drop_cache_of(vol)?;
    let b = run(&["backup", &vol.display().to_string()])?;
    let target = dir.join(format!("{bucket}-restore"));
    let r = run(&["restore", "latest", "--target", &target.display().to_string()])?;
    let restored = target.join(vol.strip_prefix("/").unwrap_or(vol));
    if !files_equal(vol, &restored)? {
        bail!("restic restored {} differently", restored.display());
    }
    let _ = std::fs::remove_dir_all(&target);
    Ok((b, r))
}
