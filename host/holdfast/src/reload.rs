//! Hot reload of `--config`: on SIGHUP, on `POST …/holdfast-plugins/reload` (admin),
//! and when the file or a driver it names changes (polled, debounced). One task does
//! every reload, in order. A file that does not parse, or a driver that does not load,
//! leaves what was serving serving and says why.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use holdfast_manager::{Backend, Manager, ReloadReport, ReloadRequest};
use tokio::sync::{mpsc, oneshot};

use crate::config::{self, BackendSpec, Config, DriverSource};

/// How often the config file and its drivers are looked at.
const POLL: Duration = Duration::from_secs(1);
/// A change must stay still this long before it is loaded (editors write in steps).
const SETTLE: Duration = Duration::from_millis(500);

/// What is loaded now, per backend: the spec, the component's digest and the backend.
pub struct Loaded {
    pub spec: BackendSpec,
    pub sha256: String,
    pub backend: Backend,
}

pub struct Reloader {
    pub manager: Arc<Manager>,
    pub config_path: PathBuf,
    /// The host's own places, which no grant may reach (see [`config::load`]).
    pub protected: Vec<PathBuf>,
    pub cache: PathBuf,
    pub loaded: BTreeMap<String, Loaded>,
    /// Callers come with Keystone tokens (`--auth keystone`).
    pub keystone: bool,
}

impl Reloader {
    /// Serve reload requests until every sender is gone.
    pub async fn run(mut self, mut rx: mpsc::Receiver<ReloadRequest>) {
        while let Some(req) = rx.recv().await {
            let started = Instant::now();
            let result = self.reload(req.force).await;
            match &result {
                Ok(r) => tracing::info!(
                    added = ?r.added, upgraded = ?r.upgraded, removed = ?r.removed, failed = ?r.failed,
                    seconds = started.elapsed().as_secs_f64(), "configuration reloaded"
                ),
                Err(e) => tracing::error!(error = %e, "configuration not reloaded; what was serving keeps serving"),
            }
            let _ = req.reply.send(result);
        }
    }

    async fn reload(&mut self, force: bool) -> Result<ReloadReport, String> {
        let cfg = config::load(&self.config_path, &self.protected).map_err(|e| e.to_string())?;
        cfg.check_auth(self.keystone)?;
        let mut wanted = Vec::new();
        let mut fresh = Vec::new();
        let mut not_loaded = Vec::new();
        for spec in cfg.backends {
            let bytes = match driver_bytes(&spec.driver) {
                Ok(b) => b,
                Err(e) => {
                    not_loaded.push((spec.name.clone(), e));
                    continue;
                }
            };
            let sha256 = holdfast_chunk::digest::sha256_hex(&bytes);
            if let Some(old) = self.loaded.get(&spec.name)
                && old.spec == spec
                && old.sha256 == sha256
            {
                wanted.push(old.backend.clone());
                continue;
            }
            let (cache, path, s, sha) = (self.cache.clone(), self.config_path.clone(), spec.clone(), sha256.clone());
            let built = tokio::task::spawn_blocking(move || {
                crate::serve::load_backend_bytes(&s, &bytes, &sha, &cache, Some(&path))
            })
            .await
            .map_err(|e| format!("loading panicked: {e}"))
            .and_then(|r| r.map_err(|e| format!("{e:#}")));
            match built {
                Ok(backend) => {
                    wanted.push(backend.clone());
                    fresh.push(Loaded { spec, sha256, backend });
                }
                Err(e) => {
                    tracing::error!(backend = %spec.name, error = %e, "reload: the driver did not load; the backend keeps what it had");
                    not_loaded.push((spec.name.clone(), e));
                }
            }
        }
        let report = self
            .manager
            .apply_backends(wanted, not_loaded, &cfg.default_backend, force)
            .await
            .map_err(|e| e.to_string())?;
        for l in fresh {
            if report.added.contains(&l.spec.name) || report.upgraded.contains(&l.spec.name) {
                self.loaded.insert(l.spec.name.clone(), l);
            }
        }
        for name in &report.removed {
            self.loaded.remove(name);
        }
        Ok(report)
    }
}

/// A component's bytes: the built-in posix driver, or a file.
pub fn driver_bytes(source: &DriverSource) -> Result<Vec<u8>, String> {
    match source {
        DriverSource::BuiltinPosix => Ok(holdfast_plugin_artifacts::POSIX_BYTES.to_vec()),
        DriverSource::BuiltinCeph => Ok(holdfast_plugin_artifacts::CEPH_BYTES.to_vec()),
        DriverSource::BuiltinS3 => Ok(holdfast_plugin_artifacts::S3_BYTES.to_vec()),
        DriverSource::BuiltinSwift => Ok(holdfast_plugin_artifacts::SWIFT_BYTES.to_vec()),
        DriverSource::File(p) => std::fs::read(p).map_err(|e| format!("reading {}: {e}", p.display())),
    }
}

/// Ask for a reload and log the answer (SIGHUP and the file watcher; the API waits for
/// its own answer through the manager).
async fn ask(tx: &mpsc::Sender<ReloadRequest>, why: &str) {
    let (reply, rx) = oneshot::channel();
    if tx.send(ReloadRequest { force: false, reply }).await.is_err() {
        return;
    }
    tracing::info!(trigger = why, "reloading the configuration");
    let _ = rx.await;
}

/// Reload on SIGHUP.
pub fn on_sighup(tx: mpsc::Sender<ReloadRequest>) {
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; reload with `holdfast plugin reload`");
            return;
        };
        while hup.recv().await.is_some() {
            ask(&tx, "SIGHUP").await;
        }
    });
}

/// Reload when the config file or a driver file it names changes.
pub fn watch(tx: mpsc::Sender<ReloadRequest>, config_path: PathBuf) {
    tokio::spawn(async move {
        let mut seen = fingerprint(&config_path);
        loop {
            tokio::time::sleep(POLL).await;
            let now = fingerprint(&config_path);
            if now == seen {
                continue;
            }
            // Wait for the writes to settle.
            let mut settled = now;
            loop {
                tokio::time::sleep(SETTLE).await;
                let again = fingerprint(&config_path);
                if again == settled {
                    break;
                }
                settled = again;
            }
            seen = settled;
            ask(&tx, "file change").await;
        }
    });
}

/// Modification time and length of the config file and of every driver file it names
/// (as far as it parses).
fn fingerprint(config_path: &Path) -> Vec<(PathBuf, Option<(SystemTime, u64)>)> {
    let stamp = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
    let mut out = vec![(config_path.to_owned(), stamp(config_path))];
    if let Ok(text) = std::fs::read_to_string(config_path) {
        for p in driver_paths(&text, config_path) {
            let s = stamp(&p);
            out.push((p, s));
        }
    }
    out
}

/// Driver files a config names, without validating the rest.
fn driver_paths(text: &str, config_path: &Path) -> Vec<PathBuf> {
    let base = config_path.parent().unwrap_or(Path::new("."));
    let Ok(v) = text.parse::<toml::Table>() else { return Vec::new() };
    let Some(backends) = v.get("backends").and_then(|b| b.as_table()) else { return Vec::new() };
    backends
        .values()
        .filter_map(|b| b.get("driver")?.as_str().map(str::to_owned))
        .filter(|d| d != config::BUILTIN_POSIX && d != config::BUILTIN_CEPH)
        .map(|d| base.join(d))
        .collect()
}

/// The first load, at start: every backend must load, or the host does not start.
pub fn initial(cfg: &Config, cache: &Path, config_path: Option<&Path>) -> anyhow::Result<BTreeMap<String, Loaded>> {
    let mut loaded = BTreeMap::new();
    for spec in &cfg.backends {
        let bytes = driver_bytes(&spec.driver)
            .map_err(|e| anyhow::anyhow!("{}: {e}", crate::serve::key(spec, config_path, "driver")))?;
        let sha256 = holdfast_chunk::digest::sha256_hex(&bytes);
        let backend = crate::serve::load_backend_bytes(spec, &bytes, &sha256, cache, config_path)?;
        loaded.insert(spec.name.clone(), Loaded { spec: spec.clone(), sha256, backend });
    }
    Ok(loaded)
}
