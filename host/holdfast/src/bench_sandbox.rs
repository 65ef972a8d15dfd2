//! `holdfast bench --sandbox`: what the wasm sandbox costs. The posix driver as a
//! component against the very same SDK chunked-driver and posix store code compiled
//! natively into this binary ([`crate::native_posix`]), both driven by one manager
//! through the same pipeline (two backends, chosen by availability zone), on full
//! backup and restore of the mixed volume, alternating sides in one run.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use holdfast_db::Db;
use holdfast_driver::Grants;
use holdfast_manager::{Backend, CreateBackup, Manager, ManagerConfig, RegisterVolume, RequestContext, RestoreRequest};
use holdfast_plugin_host::DriverComponent;
use holdfast_types::BackupStatus;

use crate::bench::{cpu_seconds, manager_config, median, wait_backup, wait_restored};
use crate::bench_volume::{drop_cache_of, files_equal, generate};
use crate::native_posix::NativePosix;

const SIDES: [&str; 2] = ["wasm", "native"];

/// Each timed step starts from the same state: nothing dirty left to write back from
/// the step before, the source volume not cached.
fn settle(vol: &Path) -> Result<()> {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    drop_cache_of(vol)
}

pub async fn run(dir: &Path, size_gib: u64, compression: &str, workers: usize, rounds: usize) -> Result<()> {
    let size = size_gib << 30;
    let vol_path = dir.join("mixed.raw");
    eprintln!("generating a {size_gib} GiB mixed volume at {} …", vol_path.display());
    generate(&vol_path, size)?;
    let db = Db::connect(&format!("sqlite://{}", dir.join("bench.db").display())).await?;
    let settings = vec![("backup_compression_algorithm".to_owned(), compression.to_owned())];
    let mut backends = Vec::new();
    for side in SIDES {
        let store = dir.join(format!("backups-{side}"));
        std::fs::create_dir_all(&store)?;
        let driver: holdfast_manager::Driver = if side == "wasm" {
            let grants = Grants::store(store.clone());
            Arc::new(DriverComponent::load("posix", holdfast_plugin_artifacts::POSIX_BYTES, grants, settings.clone())?)
        } else {
            Arc::new(NativePosix::new(&store, settings.clone())?)
        };
        backends.push(Backend {
            name: side.into(),
            availability_zone: side.into(),
            driver,
            load_time: Default::default(),
        });
    }
    let cfg = ManagerConfig { availability_zone: "wasm".into(), ..manager_config(dir, workers) };
    let m = Manager::new(db, cfg, backends, "wasm").await;
    let ctx = RequestContext {
        project_id: holdfast_api::DEFAULT_PROJECT.into(),
        user_id: "bench".into(),
        is_admin: true,
        caller: None,
    };
    let vol =
        m.register_volume(&ctx, RegisterVolume { path: vol_path.display().to_string(), ..Default::default() }).await?;

    // (wall seconds, process CPU seconds) per run, per side.
    let mut backup_secs: [Vec<(f64, f64)>; 2] = [Vec::new(), Vec::new()];
    let mut restore_secs: [Vec<(f64, f64)>; 2] = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        // Alternate which side goes first: the disk's mood drifts over a run.
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let zone = SIDES[i];
            settle(&vol_path)?;
            let (t, cpu) = (Instant::now(), cpu_seconds());
            let create =
                CreateBackup { volume_id: vol.id.clone(), availability_zone: Some(zone.into()), ..Default::default() };
            let b = m.create_backup(&ctx, create).await?;
            wait_backup(&m, &ctx, &b.id, BackupStatus::Available).await?;
            backup_secs[i].push((t.elapsed().as_secs_f64(), cpu_seconds() - cpu));

            settle(&vol_path)?;
            let (t, cpu) = (Instant::now(), cpu_seconds());
            let r = m.restore_backup(&ctx, &b.id, RestoreRequest::default()).await?;
            let restored = wait_restored(&m, &ctx, &r.volume_id).await.with_context(|| format!("{zone} driver"))?;
            restore_secs[i].push((t.elapsed().as_secs_f64(), cpu_seconds() - cpu));
            let path = restored.location.as_file().context("the restored volume is not a file")?.to_owned();
            if round == 0 && !files_equal(&vol_path, &path)? {
                bail!("the {zone} driver's restore differs from the source");
            }
            m.delete_volume(&ctx, &r.volume_id).await?;
            m.delete_backup(&ctx, &b.id).await?;
            while m.get_backup(&ctx, &b.id).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }

    let mbps = |secs: f64| size as f64 / 1e6 / secs;
    let line = |what: &str, v: &[Vec<(f64, f64)>; 2]| {
        let wall = |i: usize| median(&v[i].iter().map(|r| r.0).collect::<Vec<_>>());
        let cpu = |i: usize| median(&v[i].iter().map(|r| r.1).collect::<Vec<_>>());
        let (w, n) = (wall(0), wall(1));
        println!(
            "  {what:<12}: wasm {w:6.2} s {:6.0} MB/s   native {n:6.2} s {:6.0} MB/s   sandbox cost {:+5.1}% \
             (CPU {:.2} s vs {:.2} s: {:+5.1}%)",
            mbps(w),
            mbps(n),
            100.0 * (w - n) / n,
            cpu(0),
            cpu(1),
            100.0 * (cpu(0) - cpu(1)) / cpu(1)
        );
    };
    println!(
        "holdfast bench --sandbox: {size_gib} GiB mixed volume, {compression}, {workers} workers, posix driver as a wasm \
         component vs the same SDK code native, median of {rounds} rounds each (restores verified identical)"
    );
    line("full backup", &backup_secs);
    line("restore", &restore_secs);
    Ok(())
}
