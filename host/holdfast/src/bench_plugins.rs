//! `holdfast bench --plugins`: what the plugin platform costs, on the posix driver:
//! compiling a component, loading it from the compile cache, a fresh instance plus
//! its setup (every driver call pays this), a hot upgrade while a 1 GiB backup runs,
//! and the host memory each idle backend adds.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use holdfast_db::Db;
use holdfast_driver::{BackupDriver, Grants};
use holdfast_manager::{Backend, CreateBackup, Manager, ManagerConfig, RegisterVolume, RequestContext};
use holdfast_plugin_host::DriverComponent;
use holdfast_types::{BackupStatus, GIB};

use crate::bench::median;

/// Resident memory of this process.
fn rss_bytes() -> u64 {
    crate::bench::proc_status_bytes("VmRSS")
}

fn ms(d: f64) -> String {
    format!("{:.1} ms", d * 1000.0)
}

pub fn run(dir: &Path) -> Result<()> {
    let bytes = holdfast_plugin_artifacts::POSIX_BYTES;
    let store = dir.join("store");
    std::fs::create_dir_all(&store)?;
    let grants = || Grants::store(store.clone());
    let cache = dir.join("cache");

    let compile: Vec<f64> = (0..3)
        .map(|_| {
            let t = Instant::now();
            DriverComponent::load("posix", bytes, grants(), vec![]).map(|_| t.elapsed().as_secs_f64())
        })
        .collect::<Result<_, _>>()?;
    DriverComponent::load_cached("posix", bytes, grants(), vec![], Some(&cache))?;
    let cached: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            DriverComponent::load_cached("posix", bytes, grants(), vec![], Some(&cache))
                .map(|_| t.elapsed().as_secs_f64())
        })
        .collect::<Result<_, _>>()?;
    let driver = DriverComponent::load_cached("posix", bytes, grants(), vec![], Some(&cache))?;
    let instance: Vec<f64> = (0..50)
        .map(|_| {
            let t = Instant::now();
            driver.setup().map(|_| t.elapsed().as_secs_f64())
        })
        .collect::<Result<_, _>>()?;
    println!("holdfast bench --plugins: the posix driver ({} KiB component)", bytes.len() / 1024);
    println!("  compile (no cache)          : {} (median of 3)", ms(median(&compile)));
    println!("  load from the compile cache : {} (median of 5)", ms(median(&cached)));
    println!("  new instance + setup        : {} (median of 50; every driver call pays this)", ms(median(&instance)));

    // Memory: 20 more backends, each loaded from the cache and set up once, then idle.
    let before = rss_bytes();
    let mut idle = Vec::new();
    for i in 0..20 {
        let d = dir.join(format!("idle{i}"));
        std::fs::create_dir_all(&d)?;
        let b = DriverComponent::load_cached("posix", bytes, Grants::store(d), vec![], Some(&cache))?;
        b.setup()?;
        idle.push(b);
    }
    let per = rss_bytes().saturating_sub(before) / 20;
    println!(
        "  host memory per idle backend: {:.2} MiB (20 backends loaded and set up, RSS delta / 20)",
        per as f64 / (1 << 20) as f64
    );
    drop(idle);

    tokio::runtime::Runtime::new()?.block_on(reload_under_load(dir, &cache))
}

/// Upgrade the default backend's driver while a 1 GiB backup runs on it.
async fn reload_under_load(dir: &Path, cache: &Path) -> Result<()> {
    let bytes = holdfast_plugin_artifacts::POSIX_BYTES;
    let store = dir.join("store");
    let vol = dir.join("reload.raw");
    crate::bench_volume::generate(&vol, GIB)?;
    let db = Db::connect(&format!("sqlite://{}", dir.join("bench.db").display())).await?;
    let cfg = ManagerConfig {
        data_dir: dir.join("data"),
        manage_roots: vec![dir.to_owned()],
        availability_zone: "nova".into(),
        host: "bench".into(),
        workers: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
        periodic_interval: Duration::from_secs(60),
        max_operations: 4,
        quotas: holdfast_manager::Quotas { backups: None, backup_gigabytes: None },
        event_retention: None,
        rbd: Default::default(),
    };
    let load = || -> Result<Backend> {
        let d = DriverComponent::load_cached("posix", bytes, Grants::store(store.clone()), vec![], Some(cache))?;
        Ok(Backend {
            name: "main".into(),
            availability_zone: "nova".into(),
            driver: Arc::new(d),
            load_time: Duration::ZERO,
        })
    };
    let m = Manager::new(db, cfg, vec![load()?], "main").await;
    let ctx = RequestContext { project_id: "bench".into(), user_id: "bench".into(), is_admin: true, caller: None };
    let v = m.register_volume(&ctx, RegisterVolume { path: vol.display().to_string(), ..Default::default() }).await?;
    let b = m.create_backup(&ctx, CreateBackup { volume_id: v.id, ..Default::default() }).await?;
    while m.progress(&b.id).is_none_or(|p| p.bytes_done == 0) {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // A new build of the driver (loaded from the cache, as a reload of a changed file
    // that was compiled before would be) applied while the backup moves data.
    let t = Instant::now();
    let next = load()?;
    let report = m.apply_backends(vec![next], vec![], "main", false).await?;
    let reload = t.elapsed().as_secs_f64();
    if report.upgraded != ["main"] {
        bail!("the reload did not upgrade: {report:?}");
    }
    let during = m.get_backup(&ctx, &b.id).await?.status;
    loop {
        let now = m.get_backup(&ctx, &b.id).await?;
        match now.status {
            BackupStatus::Available => break,
            BackupStatus::Error => bail!("the backup failed across the reload: {:?}", now.fail_reason),
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    println!(
        "  reload (upgrade) with a 1 GiB backup running: {} (backup {} during the reload, then available)",
        ms(reload),
        during
    );
    Ok(())
}
