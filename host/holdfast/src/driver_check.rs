//! `holdfast driver check FILE.wasm`: the conformance kit. Runs any driver through
//! the lifecycle the manager will put it through, on a scratch volume, and prints one
//! PASS/FAIL line per case with the reason. Exit status 1 if any case failed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::{Context, Result, bail};
use holdfast_driver::{Access, BackupDriver, BackupResult, DirGrant, Grants, OpContext};
use holdfast_plugin_host::DriverComponent;
use holdfast_types::{Backup, BackupStatus, MIB, Timestamp};
use holdfast_volume::VolumeFile;

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// The driver component to check (a .wasm file), or "posix" / "ceph" / "s3" / "swift"
    /// for a built-in one.
    #[arg(value_name = "FILE.wasm")]
    pub driver: String,
    /// Driver setting KEY=VALUE (repeatable), as in the config file's `settings`.
    #[arg(long = "setting", value_name = "KEY=VALUE")]
    pub settings: Vec<String>,
    /// Directory to grant, PATH or PATH:ro (repeatable); the first appears as /backup.
    /// Default: a scratch directory, read-write.
    #[arg(long = "grant-dir", value_name = "PATH[:ro]")]
    pub grant_dirs: Vec<String>,
    /// Size of the scratch volume in MiB.
    #[arg(long, default_value_t = 64)]
    pub size_mib: u64,
    /// Grant the driver RBD pools of this cluster (`ceph.conf`), as `grants.rbd.conf`:
    /// what the Ceph driver needs.
    #[arg(long, value_name = "CEPH.CONF")]
    pub rbd_conf: Option<PathBuf>,
    /// The cephx id for --rbd-conf (`grants.rbd.user`).
    #[arg(long, default_value = "admin", value_name = "ID")]
    pub rbd_user: String,
    /// A pool to grant with --rbd-conf (repeatable; `grants.rbd.pools`).
    #[arg(long = "rbd-pool", value_name = "POOL", default_value = "backups")]
    pub rbd_pools: Vec<String>,
    /// An endpoint the driver may reach over wasi:http, HOST:PORT (repeatable;
    /// `grants.network`): what the S3 and Swift drivers need.
    #[arg(long = "grant-network", value_name = "HOST:PORT")]
    pub network: Vec<String>,
    /// The object-store API its requests are held to (`grants.object_api`): "s3" or
    /// "swift" (the built-in drivers imply theirs).
    #[arg(long, value_name = "API")]
    pub object_api: Option<String>,
}

/// One case's outcome.
struct Report {
    failed: usize,
}

impl Report {
    fn case(&mut self, name: &str, result: Result<String>) -> bool {
        match result {
            Ok(note) if note.is_empty() => println!("PASS  {name}"),
            Ok(note) => println!("PASS  {name} ({note})"),
            Err(e) => {
                self.failed += 1;
                println!("FAIL  {name}: {e:#}");
            }
        }
        self.failed == 0
    }
}

fn row(id: &str, volume_id: &str, size_bytes: u64, parent: Option<&Backup>) -> Backup {
    Backup {
        id: id.to_owned(),
        project_id: "driver-check".into(),
        user_id: "driver-check".into(),
        volume_id: volume_id.to_owned(),
        snapshot_id: None,
        status: BackupStatus::Creating,
        display_name: Some(format!("check {id}")),
        display_description: None,
        size: holdfast_types::size_gib(size_bytes),
        size_bytes,
        object_count: 0,
        container: None,
        service: None,
        service_metadata: None,
        parent_id: parent.map(|p| p.id.clone()),
        num_dependent_backups: 0,
        availability_zone: None,
        host: None,
        fail_reason: None,
        restore_volume_id: None,
        data_timestamp: None,
        created_at: Timestamp::now(),
        updated_at: None,
        deleted_at: None,
        deleted: false,
    }
}

/// Record what the driver said, as the manager does before the next call.
fn finished(mut b: Backup, r: &BackupResult) -> Backup {
    b.container = Some(r.container.clone());
    b.service_metadata = Some(r.service_metadata.clone());
    b.object_count = i64::from(r.object_count);
    b.status = BackupStatus::Available;
    b
}

fn sha_of(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(holdfast_chunk::digest::sha256_hex(&bytes))
}

fn restore_to(driver: &dyn BackupDriver, chain: &[Backup], target: &Path, size: u64) -> Result<String> {
    let _ = std::fs::remove_file(target);
    holdfast_volume::create_sparse(target, size)?;
    let sink = Arc::new(VolumeFile::open_write(target)?);
    driver.restore(OpContext::default(), chain, sink, true)?;
    sha_of(target)
}

pub fn run(args: CheckArgs) -> Result<()> {
    let scratch = tempfile::tempdir().context("creating a scratch directory")?;
    let (bytes, name) = if args.driver == "posix" {
        (holdfast_plugin_artifacts::POSIX_BYTES.to_vec(), "posix".to_owned())
    } else if args.driver == "ceph" {
        (holdfast_plugin_artifacts::CEPH_BYTES.to_vec(), "ceph".to_owned())
    } else if args.driver == "s3" {
        (holdfast_plugin_artifacts::S3_BYTES.to_vec(), "s3".to_owned())
    } else if args.driver == "swift" {
        (holdfast_plugin_artifacts::SWIFT_BYTES.to_vec(), "swift".to_owned())
    } else {
        let p = PathBuf::from(&args.driver);
        let name = p.file_stem().and_then(|s| s.to_str()).unwrap_or("driver").to_owned();
        (std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?, name)
    };
    let mut settings = Vec::new();
    for kv in &args.settings {
        let Some((k, v)) = kv.split_once('=') else { bail!("--setting {kv:?} is not KEY=VALUE") };
        settings.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    let mut dirs = Vec::new();
    for (i, g) in args.grant_dirs.iter().enumerate() {
        let (path, access) = match g.strip_suffix(":ro") {
            Some(p) => (p, Access::ReadOnly),
            None => (g.as_str(), Access::ReadWrite),
        };
        let guest_path = if i == 0 { holdfast_driver::BACKUP_MOUNT.to_owned() } else { path.to_owned() };
        dirs.push(DirGrant { host_path: PathBuf::from(path), guest_path, access });
    }
    // A scratch object store for drivers on the host's store (WIT 0.2.1), and a scratch
    // directory at /backup for those that keep their own files.
    let store = scratch.path().join("store");
    std::fs::create_dir_all(&store)?;
    if dirs.is_empty() {
        let files = scratch.path().join("files");
        std::fs::create_dir_all(&files)?;
        dirs.push(DirGrant {
            host_path: files,
            guest_path: holdfast_driver::BACKUP_MOUNT.into(),
            access: Access::ReadWrite,
        });
    }
    let rbd = args.rbd_conf.map(|conf| holdfast_driver::RbdGrant {
        conf: Some(conf),
        user: args.rbd_user.clone(),
        pools: args.rbd_pools.clone(),
    });
    let api = args.object_api.as_deref().or(match args.driver.as_str() {
        "s3" | "swift" => Some(args.driver.as_str()),
        _ => None,
    });
    let object_api = match api {
        Some(a) => {
            Some(holdfast_driver::ObjectApi::parse(a).with_context(|| format!("--object-api {a:?}: s3 or swift"))?)
        }
        None => None,
    };
    let network = args.network.clone();
    let grants = Grants { store: Some(store), dirs, unconfined: true, rbd, network, object_api, ..Grants::default() };
    let load = || -> Result<Box<dyn BackupDriver>> {
        Ok(Box::new(DriverComponent::load(&name, &bytes, grants.clone(), settings.clone())?))
    };
    let size = args.size_mib.max(1) * MIB;
    println!("holdfast driver check: {} on a {} MiB scratch volume", args.driver, size / MIB);
    let failed = check(&load, scratch.path(), size)?;
    if failed > 0 {
        bail!("{failed} case(s) failed");
    }
    println!("all cases passed");
    Ok(())
}

/// Makes a fresh driver (the kit's restart case makes a second one).
type Loader<'a> = &'a dyn Fn() -> Result<Box<dyn BackupDriver>>;

/// Run every case on the driver `load` makes, in `scratch`; the number that failed.
fn check(load: Loader, scratch: &Path, size: u64) -> Result<usize> {
    let vol = scratch.join("volume.raw");
    crate::bench_volume::generate(&vol, size)?;
    let original = sha_of(&vol)?;
    let volume_id = "00000000-0000-4000-8000-00000000c4ec";
    let mut report = Report { failed: 0 };

    let mut driver = None;
    if !report.case(
        "load",
        load().map(|d| {
            let note = d.id().to_string();
            driver = Some(d);
            note
        }),
    ) {
        return Ok(report.failed);
    }
    let driver: Box<dyn BackupDriver> = driver.expect("loaded");
    if !report.case("setup", driver.setup().map(|d| format!("service {}", d.service)).map_err(Into::into)) {
        return Ok(report.failed);
    }

    let source = || -> Result<Arc<VolumeFile>> { Ok(Arc::new(VolumeFile::open_read(&vol)?)) };
    let mut full = None;
    report.case(
        "full backup",
        (|| {
            let b = row("00000000-0000-4000-8000-000000000001", volume_id, size, None);
            let r = driver.backup(OpContext::default(), &b, None, Some("{}"), source()?)?;
            let note = format!("{} objects", r.object_count);
            full = Some(finished(b, &r));
            Ok(note)
        })(),
    );

    // Change about 1 % of the volume, then an incremental on the full backup.
    let changed = (|| -> Result<String> {
        let f = std::fs::OpenOptions::new().write(true).open(&vol)?;
        let stride = (size / 100).max(64 * 1024);
        let mut at = 0;
        while at + 4096 <= size {
            std::os::unix::fs::FileExt::write_all_at(&f, &[0xA5; 4096], at)?;
            at += stride * 10;
        }
        f.sync_all()?;
        sha_of(&vol)
    })();
    let mut incremental = None;
    report.case(
        "incremental backup after a change",
        (|| {
            let parent = full.as_ref().context("no full backup to build on")?;
            changed.as_ref().map_err(|e| anyhow::anyhow!("changing the volume: {e:#}"))?;
            let b = row("00000000-0000-4000-8000-000000000002", volume_id, size, Some(parent));
            let r = driver.backup(OpContext::default(), &b, Some(parent), Some("{}"), source()?)?;
            let note = format!("{} objects", r.object_count);
            incremental = Some(finished(b, &r));
            Ok(note)
        })(),
    );

    let target = scratch.join("restored.raw");
    report.case(
        "restore of the full backup, bit for bit",
        (|| {
            let full = full.clone().context("no full backup")?;
            let got = restore_to(&*driver, &[full], &target, size)?;
            if got != original {
                bail!("restored data differs from the volume at the time of the full backup");
            }
            Ok(String::new())
        })(),
    );
    let chain = || -> Result<Vec<Backup>> {
        Ok(vec![full.clone().context("no full backup")?, incremental.clone().context("no incremental")?])
    };
    let want_changed = changed.as_ref().ok().cloned().unwrap_or_default();
    report.case(
        "restore of the chain, bit for bit",
        (|| {
            let got = restore_to(&*driver, &chain()?, &target, size)?;
            if got != want_changed {
                bail!("restored data differs from the changed volume");
            }
            Ok(String::new())
        })(),
    );

    // A restart: a new instance of the component, knowing only what the host stored.
    let restarted = load();
    report.case(
        "restore after a restart",
        (|| {
            let again = restarted.as_ref().map_err(|e| anyhow::anyhow!("reloading: {e}"))?;
            again.setup()?;
            if restore_to(&**again, &chain()?, &target, size)? != want_changed {
                bail!("restored data differs after a restart");
            }
            Ok(String::new())
        })(),
    );

    report.case(
        "export and import of the record",
        (|| {
            let inc = incremental.clone().context("no incremental")?;
            let info = driver.export_record(&inc)?;
            let v: serde_json::Value =
                serde_json::from_str(&info).with_context(|| format!("export-record is not JSON: {info:?}"))?;
            if !v.is_object() {
                bail!("export-record must be a JSON object, got {info}");
            }
            let again = restarted.as_ref().map_err(|e| anyhow::anyhow!("reloading: {e}"))?;
            again.import_record(&inc, &info)?;
            Ok(String::new())
        })(),
    );

    // Cancelled from the start, so the case does not depend on the driver's speed: a
    // driver must stop (it sees `host.cancelled`, or the host interrupts it after the
    // grace period) and its delete must clean up whatever it wrote.
    report.case(
        "cancelled backup",
        (|| {
            let b = row("00000000-0000-4000-8000-000000000003", volume_id, size, None);
            let op = OpContext::default();
            op.cancel.store(true, Ordering::Relaxed);
            match driver.backup(op, &b, None, None, source()?) {
                Ok(_) => bail!("the backup ignored the cancellation and finished"),
                Err(e) => {
                    driver.delete(OpContext::default(), &b)?;
                    Ok(format!("stopped: {e}"))
                }
            }
        })(),
    );

    report.case(
        "delete",
        (|| {
            let inc = incremental.clone().context("no incremental")?;
            let full = full.clone().context("no full backup")?;
            driver.delete(OpContext::default(), &inc)?;
            driver.delete(OpContext::default(), &full)?;
            if restore_to(&*driver, &[full], &target, size).is_ok() {
                bail!("a deleted backup still restores");
            }
            Ok(String::new())
        })(),
    );

    Ok(report.failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The native build of the posix code (what `bench --sandbox` compares the
    /// component against) passes the same kit, so the bench compares like with like.
    #[test]
    fn the_native_posix_build_passes_the_kit() {
        let scratch = tempfile::tempdir().unwrap();
        let store = scratch.path().join("store");
        std::fs::create_dir_all(&store).unwrap();
        let load = || -> Result<Box<dyn BackupDriver>> {
            Ok(Box::new(crate::native_posix::NativePosix::new(&store, vec![])?))
        };
        assert_eq!(check(&load, scratch.path(), 8 * MIB).unwrap(), 0);
    }
}
