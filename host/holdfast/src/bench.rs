//! `holdfast bench`: full-backup and restore throughput and peak RSS on a generated
//! volume of mixed data, through the real manager, database and wasm posix driver.
//!
//! The volume and the disk's side of it (generation, cold reads, the disk's ceiling)
//! are in `bench_volume`; this is the run: rounds of full backup, restore and two
//! incrementals beside restic, and what they print.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use holdfast_db::Db;
use holdfast_driver::Grants;
use holdfast_manager::{Backend, CreateBackup, Manager, ManagerConfig, RegisterVolume, RequestContext, RestoreRequest};
use holdfast_plugin_host::DriverComponent;
use holdfast_types::{BackupStatus, Volume, VolumeStatus};

use crate::bench_volume::{
    change_one_percent_with, drop_cache_of, files_equal, generate, read_only, settle, walk_size,
};

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Size of the generated volume in GiB.
    #[arg(long, default_value_t = 1)]
    pub size_gib: u64,
    /// Where to put the volume, backups and database (a temporary directory by default).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Compression: zstd (default), zlib, bz2 or none.
    #[arg(long, default_value = "zstd")]
    pub compression: String,
    /// Object size (the posix driver's `backup_file_size`, in bytes). Default: the
    /// driver's own (1 MiB).
    #[arg(long)]
    pub object_size: Option<u64>,
    /// Hashing/compression threads. Default: one per core.
    #[arg(long)]
    pub workers: Option<usize>,
    /// Skip the peer: by default every round also times `restic backup` and `restic
    /// restore` of the same file (restic 0.14, installed from Debian when missing).
    #[arg(long)]
    pub no_restic: bool,
    /// Instead: time the backup list API (GET /backups/detail?limit=1000, first and deep
    /// pages) on a database of --api-backups backups while four 1 GiB backups run.
    #[arg(long)]
    pub api: bool,
    /// Instead: time the plugin platform (compile, cached load, instance + setup, an
    /// upgrade while a 1 GiB backup runs, memory per idle backend).
    #[arg(long)]
    pub plugins: bool,
    /// Instead: the sandbox's cost — the posix driver as a wasm component against the
    /// same SDK code compiled natively, full backup and restore of the mixed volume,
    /// side by side through one manager (median of --rounds).
    #[arg(long)]
    pub sandbox: bool,
    /// Instead: backups of an RBD image on a throwaway Ceph cluster (scripts/ceph-dev.sh),
    /// full and after 1 % changed, against `rbd export | import` and `rbd export-diff |
    /// import-diff` in the same run (--size-gib: the image; the cluster on bluestore, sized for the rounds).
    #[arg(long)]
    pub rbd: bool,
    /// Instead: the S3 and Swift drivers against a throwaway radosgw (scripts/ceph-dev.sh
    /// --rgw): full backup, restore and a 1 % incremental of the mixed volume with one and
    /// with --in-flight uploads, radosgw's own plain-HTTP rate, and restic's S3 backend
    /// and Cinder 29's S3 and Swift drivers on the same radosgw.
    #[arg(long)]
    pub object_store: bool,
    /// For --object-store: only these of our drivers (s3, swift), and no peers (restic,
    /// Cinder) — a quicker run while tuning; the comparison needs the whole run.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Uploads and downloads in flight per backup for --object-store.
    #[arg(long, default_value_t = 4)]
    pub in_flight: usize,
    /// Rounds: of full backup, restore and incrementals against restic (the default
    /// bench, and --object-store), per side for --sandbox, of the Ceph 1 % incremental
    /// for --rbd (each round changes another 1 %); the sides take turns going first;
    /// medians printed.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Backups in the database for --api.
    #[arg(long, default_value_t = 100_000)]
    pub api_backups: usize,
    /// Timed requests per page for --api.
    #[arg(long, default_value_t = 200)]
    pub api_requests: usize,
}

/// CPU seconds (user + system) this process has used so far.
pub(crate) fn cpu_seconds() -> f64 {
    rusage_seconds(libc::RUSAGE_SELF)
}

/// CPU seconds (user + system) of `who` (`RUSAGE_SELF`, `RUSAGE_CHILDREN`).
fn rusage_seconds(who: libc::c_int) -> f64 {
    // SAFETY: getrusage fills the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

/// GiB in `size` bytes.
fn gib(size: u64) -> f64 {
    size as f64 / (1u64 << 30) as f64
}

/// A memory figure of this process from /proc/self/status (`VmHWM`, `VmRSS`), in bytes.
pub(crate) fn proc_status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Peak RSS since the last reset, in bytes (VmHWM).
pub(crate) fn peak_rss() -> u64 {
    proc_status_bytes("VmHWM")
}

/// Reset VmHWM to the current RSS so each phase reports its own peak.
pub(crate) fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The middle value (the upper one of an even count).
pub(crate) fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub(crate) fn mib(b: u64) -> f64 {
    b as f64 / (1 << 20) as f64
}

fn default_workers() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
}

/// Where a bench works: `--dir`, else a directory here removed when the guard drops.
fn work_dir(args: &BenchArgs, prefix: &str) -> Result<(tempfile::TempDir, PathBuf)> {
    let tmp = tempfile::Builder::new().prefix(prefix).tempdir_in(".")?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_owned());
    std::fs::create_dir_all(&dir)?;
    Ok((tmp, dir.canonicalize()?))
}

pub fn run(args: BenchArgs) -> Result<()> {
    // Profiling a run: the host's own tracing, to stderr, when HOLDFAST_LOG asks for it.
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("HOLDFAST_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    }
    if args.api {
        let (_tmp, dir) = work_dir(&args, "holdfast-bench-api")?;
        return crate::bench_api::run(&dir, args.api_backups, args.api_requests.max(1));
    }
    if args.plugins {
        let (_tmp, dir) = work_dir(&args, "holdfast-bench-plugins")?;
        return crate::bench_plugins::run(&dir);
    }
    if args.size_gib == 0 {
        bail!("--size-gib must be at least 1");
    }
    if args.rbd {
        let (_tmp, dir) = work_dir(&args, "holdfast-bench-rbd")?;
        let workers = args.workers.unwrap_or_else(default_workers);
        return tokio::runtime::Runtime::new()?.block_on(crate::bench_rbd::run(
            &dir,
            args.size_gib,
            workers,
            args.rounds.max(1),
        ));
    }
    if args.object_store {
        let (_tmp, dir) = work_dir(&args, "holdfast-bench-objects")?;
        let workers = args.workers.unwrap_or_else(default_workers);
        let run = crate::bench_objects::run(
            &dir,
            args.size_gib,
            workers,
            args.in_flight.max(1),
            &args.only,
            args.rounds.max(1),
        );
        return tokio::runtime::Runtime::new()?.block_on(run);
    }
    if args.sandbox {
        let (_tmp, dir) = work_dir(&args, "holdfast-bench-sandbox")?;
        let workers = args.workers.unwrap_or_else(default_workers);
        let run = crate::bench_sandbox::run(&dir, args.size_gib, &args.compression, workers, args.rounds.max(1));
        return tokio::runtime::Runtime::new()?.block_on(run);
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(bench(args))
}

/// The manager the benches drive: data in `dir`, volumes adopted from it, no quotas.
pub(crate) fn manager_config(dir: &Path, workers: usize) -> ManagerConfig {
    ManagerConfig {
        data_dir: dir.join("data"),
        manage_roots: vec![dir.to_owned()],
        availability_zone: "nova".into(),
        host: "bench".into(),
        workers,
        periodic_interval: Duration::from_secs(60),
        max_operations: 15,
        quotas: holdfast_manager::Quotas { backups: None, backup_gigabytes: None },
        event_retention: None,
        rbd: Default::default(),
    }
}

/// The volume a restore writes, once it is `available`.
pub(crate) async fn wait_restored(m: &Manager, ctx: &RequestContext, volume_id: &str) -> Result<Volume> {
    let mut events = m.subscribe_events();
    loop {
        let v = m.get_volume(ctx, volume_id).await?;
        match v.status {
            VolumeStatus::Available => return Ok(v),
            VolumeStatus::ErrorRestoring | VolumeStatus::Error => bail!("restore onto {volume_id} failed"),
            _ => next_event(&mut events).await,
        }
    }
}

pub(crate) async fn wait_backup(m: &Manager, ctx: &RequestContext, id: &str, until: BackupStatus) -> Result<()> {
    let mut events = m.subscribe_events();
    loop {
        let b = m.get_backup(ctx, id).await?;
        if b.status == until {
            return Ok(());
        }
        if b.status == BackupStatus::Error {
            bail!("backup failed: {}", b.fail_reason.unwrap_or_default());
        }
        next_event(&mut events).await;
    }
}

/// Until the manager's next notification, 50 ms at most: an operation's end is learnt
/// from the event that announces it (as a client's `--wait` learns it), where a 5 ms
/// poll alone added 2.5 ms on average to a 0.35 s scan's figure. Subscribed before the
/// first look at the status, so an end in between is not missed; the caller looks again
/// either way. The timeout is only a safety net (the manager notifies after the status
/// is stored): a look at the database every 5 ms took CPU from the operation measured.
async fn next_event(events: &mut tokio::sync::broadcast::Receiver<holdfast_types::Event>) {
    let _ = tokio::time::timeout(Duration::from_millis(50), events.recv()).await;
}

/// What one phase of a round took.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Phase {
    pub(crate) secs: f64,
    /// CPU-seconds of this process (ours) or of its children (restic).
    pub(crate) cpu: f64,
    /// Peak RSS of this process during the phase (VmHWM, reset before it).
    pub(crate) rss: u64,
}

/// One round of the posix bench.
#[derive(Debug, Clone, Copy, Default)]
struct Round {
    /// This process's RSS as the round starts.
    idle_rss: u64,
    backup: Phase,
    restore: Phase,
    ceiling_secs: f64,
    unchanged: Phase,
    /// The disk's ceiling again, just before the 1% incremental.
    changed_ceiling_secs: f64,
    changed: Phase,
    /// restic's backup and restore.
    restic: Option<(Phase, Phase)>,
}

/// Time `run` as one phase of this process.
async fn phase<F: std::future::Future<Output = Result<()>>>(run: F) -> Result<Phase> {
    reset_peak_rss();
    let (cpu, t) = (cpu_seconds(), Instant::now());
    run.await?;
    Ok(Phase { secs: t.elapsed().as_secs_f64(), cpu: cpu_seconds() - cpu, rss: peak_rss() })
}

async fn bench(args: BenchArgs) -> Result<()> {
    let tmp;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.canonicalize()?
        }
        None => {
            tmp = tempfile::Builder::new().prefix("holdfast-bench").tempdir_in(std::env::current_dir()?)?;
            tmp.path().to_owned()
        }
    };
    if !args.no_restic {
        crate::bench_objects::ensure_restic()?;
    }
    let size = args.size_gib << 30;
    let workers = args.workers.unwrap_or_else(default_workers);
    let vol_path = dir.join("mixed.raw");
    eprintln!("generating a {} GiB mixed volume at {} …", args.size_gib, vol_path.display());
    generate(&vol_path, size)?;

    let db = Db::connect(&format!("sqlite://{}", dir.join("bench.db").display())).await?;
    let backup_dir = dir.join("backups");
    std::fs::create_dir_all(&backup_dir)?;
    let grants = Grants::store(backup_dir.clone());
    let mut config = vec![("backup_compression_algorithm".to_owned(), args.compression.clone())];
    if let Some(bytes) = args.object_size {
        config.push(("backup_file_size".to_owned(), bytes.to_string()));
    }
    let driver = DriverComponent::load("posix", holdfast_plugin_artifacts::POSIX_BYTES, grants, config)?;
    crate::allocator::release_free_memory();
    let cfg = manager_config(&dir, workers);
    let backend = Backend {
        name: "bench".into(),
        availability_zone: "nova".into(),
        driver: Arc::new(driver),
        load_time: Default::default(),
    };
    let m = Manager::new(db, cfg, vec![backend], "bench").await;
    let ctx = RequestContext {
        project_id: holdfast_api::DEFAULT_PROJECT.into(),
        user_id: "bench".into(),
        is_admin: true,
        caller: None,
    };
    let vol =
        m.register_volume(&ctx, RegisterVolume { path: vol_path.display().to_string(), ..Default::default() }).await?;
    reset_peak_rss();
    let idle_rss = peak_rss();

    let rounds = args.rounds.max(1);
    let mut all = Vec::with_capacity(rounds);
    let (mut stored, mut objects, mut inc_objects, mut changed) = (0, 0, 0, 0);
    for round in 0..rounds {
        let mut r = Round::default();
        // restic goes first in odd rounds: the one that runs second inherits the
        // other's dirty pages being written back.
        let restic_first = round % 2 == 1 && !args.no_restic;
        if restic_first {
            r.restic = Some(restic_round(&dir, &vol_path, round)?);
        }
        drop_cache_of(&vol_path)?;
        r.idle_rss = proc_status_bytes("VmRSS");
        let before = walk_size(&backup_dir);
        let mut backup_id = String::new();
        r.backup = phase(async {
            let b = m.create_backup(&ctx, CreateBackup { volume_id: vol.id.clone(), ..Default::default() }).await?;
            wait_backup(&m, &ctx, &b.id, BackupStatus::Available).await?;
            backup_id = b.id;
            Ok(())
        })
        .await?;
        stored = walk_size(&backup_dir) - before;
        objects = m.get_backup(&ctx, &backup_id).await?.object_count;
        let mut restored = None;
        r.restore = phase(async {
            let req = m.restore_backup(&ctx, &backup_id, RestoreRequest::default()).await?;
            restored = Some(wait_restored(&m, &ctx, &req.volume_id).await?);
            Ok(())
        })
        .await?;
        let restored = restored.expect("set by the restore phase");
        let restored = restored.location.as_file().context("the restored volume is not a file")?.to_owned();
        if !files_equal(&vol_path, &restored)? {
            bail!("round {}: the restored volume differs from the source", round + 1);
        }
        std::fs::remove_file(&restored)?;
        settle(&dir)?;

        // The disk's own ceiling for a scan: the same O_DIRECT reads, nothing else. These
        // VMs' disks swing 1–3 GB/s from minute to minute, so it is measured next to the scan.
        drop_cache_of(&vol_path)?;
        r.ceiling_secs = read_only(&vol_path)?;
        // Incremental of the unchanged volume: the sha scan path (read, hash, compare).
        drop_cache_of(&vol_path)?;
        let (same, _) = timed_incremental(&m, &ctx, &vol.id).await?;
        r.unchanged = same;
        // Change 1% in scattered 64 KiB writes (other bytes each round), then another incremental.
        changed = change_one_percent_with(&vol_path, size, 42 + round as u64)?;
        // The disk again: a scan that falls behind the last one is the disk's swing or ours.
        drop_cache_of(&vol_path)?;
        r.changed_ceiling_secs = read_only(&vol_path)?;
        drop_cache_of(&vol_path)?;
        let (after, inc) = timed_incremental(&m, &ctx, &vol.id).await?;
        r.changed = after;
        inc_objects = inc.object_count;
        if !restic_first && !args.no_restic {
            r.restic = Some(restic_round(&dir, &vol_path, round)?);
        }
        print_round(round, &r, size);
        all.push(r);
    }
    print_summary(&args, workers, size, idle_rss, &all);
    println!(
        "  stored {:.1} MiB in {objects} objects per full backup; the 1% incremental: {inc_objects} objects for {:.1} MiB changed",
        mib(stored),
        mib(changed)
    );
    Ok(())
}

/// Seconds, CPU and RSS of a phase in one line's cell.
fn cell(p: &Phase, size: u64) -> String {
    format!(
        "{:5.2} s {:5.0} MB/s {:4.2} CPU-s/GiB {:5.1} MiB",
        p.secs,
        size as f64 / 1e6 / p.secs,
        p.cpu / gib(size),
        mib(p.rss)
    )
}

fn print_round(round: usize, r: &Round, size: u64) {
    let mbps = |secs: f64| size as f64 / 1e6 / secs;
    let mut line = format!(
        "  round {}: backup {:.0} MB/s, restore {:.0} MB/s, unchanged {:.0} MB/s ({:.0}% of the disk's {:.0}), 1% changed {:.0} MB/s ({:.0}% of unchanged; {:.0}% of the disk's {:.0} just before it)",
        round + 1,
        mbps(r.backup.secs),
        mbps(r.restore.secs),
        mbps(r.unchanged.secs),
        100.0 * r.ceiling_secs / r.unchanged.secs,
        mbps(r.ceiling_secs),
        mbps(r.changed.secs),
        100.0 * r.unchanged.secs / r.changed.secs,
        100.0 * r.changed_ceiling_secs / r.changed.secs,
        mbps(r.changed_ceiling_secs),
    );
    line += &format!(
        "; peak RSS {:.0}/{:.0} MiB from {:.0}; CPU {:.2}/{:.2} s",
        mib(r.backup.rss),
        mib(r.restore.rss),
        mib(r.idle_rss),
        r.backup.cpu,
        r.restore.cpu
    );
    if let Some((b, rr)) = r.restic {
        line += &format!("; restic {:.0}/{:.0} MB/s", mbps(b.secs), mbps(rr.secs));
    }
    eprintln!("{line}");
}

fn print_summary(args: &BenchArgs, workers: usize, size: u64, idle_rss: u64, all: &[Round]) {
    let med = |f: &dyn Fn(&Round) -> f64| median(&all.iter().map(f).collect::<Vec<_>>());
    let worst_rss = |f: &dyn Fn(&Round) -> u64| all.iter().map(f).max().unwrap_or(0);
    let median_phase = |f: &dyn Fn(&Round) -> Phase| Phase {
        secs: med(&|r| f(r).secs),
        cpu: med(&|r| f(r).cpu),
        rss: worst_rss(&|r| f(r).rss),
    };
    let mbps = |secs: f64| size as f64 / 1e6 / secs;
    println!(
        "holdfast bench: {} GiB mixed volume (4 MiB runs: ~50% zeros, ~25% text, ~25% random), {}, {workers} workers, posix wasm driver ({} objects); medians of {} rounds (peak RSS: the highest)",
        args.size_gib,
        args.compression,
        args.object_size.map_or_else(|| "1 MiB".to_owned(), |b| format!("{b}-byte")),
        all.len()
    );
    let (backup, restore) = (median_phase(&|r| r.backup), median_phase(&|r| r.restore));
    println!("  full backup            : {}", cell(&backup, size));
    println!("  restore                : {}   (new volume, verified identical)", cell(&restore, size));
    println!(
        "  (process RSS before the first backup, wasmtime and the compiled driver included: {:.1} MiB)",
        mib(idle_rss)
    );
    let unchanged = median_phase(&|r| r.unchanged);
    let ceiling = med(&|r| r.ceiling_secs);
    println!(
        "  incremental, unchanged : {}   {:.0}% of the disk ceiling ({:.0} MB/s: the same O_DIRECT reads, no hashing; lowest round {:.0}%)",
        cell(&unchanged, size),
        100.0 * ceiling / unchanged.secs,
        mbps(ceiling),
        all.iter().map(|r| 100.0 * r.ceiling_secs / r.unchanged.secs).fold(f64::INFINITY, f64::min)
    );
    let changed = median_phase(&|r| r.changed);
    let lowest = |f: &dyn Fn(&Round) -> f64| all.iter().map(f).fold(f64::INFINITY, f64::min);
    println!(
        "  incremental, 1% changed: {}   {:.0}% of the unchanged one's speed (lowest round {:.0}%); {:.0}% of the disk measured just before it (lowest round {:.0}%)",
        cell(&changed, size),
        100.0 * unchanged.secs / changed.secs,
        lowest(&|r| 100.0 * r.unchanged.secs / r.changed.secs),
        100.0 * med(&|r| r.changed_ceiling_secs) / changed.secs,
        lowest(&|r| 100.0 * r.changed_ceiling_secs / r.changed.secs),
    );
    if let Some(restic) = all.iter().map(|r| r.restic).collect::<Option<Vec<_>>>() {
        let rb = median_phase(&|r| r.restic.unwrap_or_default().0);
        let rr = median_phase(&|r| r.restic.unwrap_or_default().1);
        println!(
            "  restic 0.14            : backup {:.0} MB/s {:.2} CPU-s/GiB, restore {:.0} MB/s {:.2} CPU-s/GiB (its own processes)",
            mbps(rb.secs),
            rb.cpu / gib(size),
            mbps(rr.secs),
            rr.cpu / gib(size)
        );
        println!(
            "  against restic         : backup {:.2}x, restore {:.2}x (medians; per round {})",
            rb.secs / backup.secs,
            rr.secs / restore.secs,
            all.iter()
                .zip(&restic)
                .map(|(r, (b, rr))| format!("{:.2}/{:.2}", b.secs / r.backup.secs, rr.secs / r.restore.secs))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

pub(crate) async fn timed_incremental(
    m: &Arc<Manager>,
    ctx: &RequestContext,
    volume_id: &str,
) -> Result<(Phase, holdfast_types::Backup)> {
    let mut id = String::new();
    let p = phase(async {
        let req = CreateBackup { volume_id: volume_id.to_owned(), incremental: true, ..Default::default() };
        let b = m.create_backup(ctx, req).await?;
        wait_backup(m, ctx, &b.id, BackupStatus::Available).await?;
        id = b.id;
        Ok(())
    })
    .await?;
    Ok((p, m.get_backup(ctx, &id).await?))
}

/// Run `restic` (set up with its repository and password) with `args`: seconds taken.
pub(crate) fn timed_restic(mut restic: std::process::Command, args: &[&str]) -> Result<f64> {
    let t = Instant::now();
    let out = restic.args(args).output().context("running restic (install it with `apt-get install restic`)")?;
    if !out.status.success() {
        bail!("restic {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(t.elapsed().as_secs_f64())
}

/// restic (0.14, from Debian) on the same file in the same run: a full backup into a
/// new repository (the volume's cache dropped first, as before ours) and its restore.
fn restic_round(dir: &Path, vol: &Path, round: usize) -> Result<(Phase, Phase)> {
    use std::process::Command;
    let repo = dir.join(format!("restic-repo-{round}"));
    let target = dir.join(format!("restic-restore-{round}"));
    let run = |args: &[&str]| -> Result<Phase> {
        let mut restic = Command::new("restic");
        restic.args(["--repo", &repo.display().to_string(), "--quiet"]).env("RESTIC_PASSWORD", "holdfast-bench");
        let cpu = rusage_seconds(libc::RUSAGE_CHILDREN);
        let secs = timed_restic(restic, args)?;
        Ok(Phase { secs, cpu: rusage_seconds(libc::RUSAGE_CHILDREN) - cpu, rss: 0 })
    };
    run(&["init"])?;
    drop_cache_of(vol)?;
    let backup = run(&["backup", &vol.display().to_string()])?;
    let restore = run(&["restore", "latest", "--target", &target.display().to_string()])?;
    let restored = target.join(vol.strip_prefix("/").unwrap_or(vol));
    if !files_equal(vol, &restored)? {
        bail!("restic's restore differs from the source");
    }
    std::fs::remove_dir_all(&repo)?;
    std::fs::remove_dir_all(&target)?;
    settle(dir)?;
    Ok((backup, restore))
}
