//! `holdfast serve`: wire the database, the driver, the manager and the API.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use holdfast_db::Db;
use holdfast_manager::{Backend, Manager, ManagerConfig};
use holdfast_plugin_host::DriverComponent;
use tokio::net::TcpListener;

use crate::config::{self, BackendSpec, DriverSource};
use crate::reload;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Directory for the database, volumes and backups (created if missing).
    #[arg(long, env = "HOLDFAST_DATA_DIR", default_value = "holdfast-data")]
    pub data_dir: PathBuf,
    /// Address for the HTTP API. Port 0 picks a free port (printed at start).
    #[arg(long, env = "HOLDFAST_LISTEN", default_value = "127.0.0.1:8776")]
    pub listen: SocketAddr,
    /// sqlite://PATH or postgres://USER@HOST/DB. Default: SQLite in the data dir.
    #[arg(long, env = "HOLDFAST_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Backends from a TOML file: drivers, settings, grants, availability zones (see
    /// docs/holdfast.example.toml). Without it: one backend, the posix driver (or
    /// --driver) writing to --backup-dir.
    #[arg(long, env = "HOLDFAST_CONFIG", value_name = "FILE", conflicts_with_all = ["driver", "driver_config", "backup_dir"])]
    pub config: Option<PathBuf>,
    /// Backup driver component (.wasm). Default: the built-in posix driver.
    #[arg(long)]
    pub driver: Option<PathBuf>,
    /// Driver setting KEY=VALUE (repeatable), e.g. backup_compression_algorithm=zlib.
    #[arg(long = "driver-config", value_name = "KEY=VALUE")]
    pub driver_config: Vec<String>,
    /// Directory granted to the driver for backups. Default: <data-dir>/backups.
    #[arg(long)]
    pub backup_dir: Option<PathBuf>,
    /// Directory under which `volume register` may adopt files or devices (repeatable).
    #[arg(long = "manage-root", value_name = "DIR")]
    pub manage_roots: Vec<PathBuf>,
    /// ceph.conf of the cluster RBD volumes (`volume register rbd:POOL/IMAGE`) are in.
    /// Default: librados's own search ($CEPH_CONF, /etc/ceph/ceph.conf).
    #[arg(long, value_name = "FILE", env = "CEPH_CONF")]
    pub rbd_conf: Option<PathBuf>,
    /// Cephx user for RBD volumes, without `client.`.
    #[arg(long, value_name = "ID", default_value = "admin")]
    pub rbd_user: String,
    /// Create new volumes (and restores to new volumes) as RBD images `volume-<id>` in
    /// this pool instead of sparse files in the data dir.
    #[arg(long, value_name = "POOL")]
    pub rbd_pool: Option<String>,
    /// Fraction of the blocks an RBD diff calls unchanged that each incremental re-reads
    /// and compares with its parent (Ceph's diff has had bugs); a difference is logged
    /// and the backup reads everything instead. 0 turns the check off.
    #[arg(long, value_name = "FRACTION", default_value_t = holdfast_chunk::DEFAULT_DIFF_CHECK, value_parser = fraction)]
    pub rbd_diff_check: f64,
    /// Hashing/compression threads per backup or restore. Default: one per core.
    #[arg(long)]
    pub workers: Option<usize>,
    /// Seconds between retries of a failed driver setup (Cinder's periodic_interval).
    #[arg(long, default_value_t = 60)]
    pub periodic_interval: u64,
    /// Backups and restores that move data at once; more wait their turn
    /// (Cinder's backup_max_operations).
    #[arg(long, default_value_t = 15)]
    pub max_operations: usize,
    /// Backups a project may have (Cinder's quota_backups; -1 = unlimited).
    #[arg(long, default_value_t = 10, allow_negative_numbers = true)]
    pub quota_backups: i64,
    /// GiB of backups a project may have (Cinder's quota_backup_gigabytes; -1 = unlimited).
    #[arg(long, default_value_t = 1000, allow_negative_numbers = true)]
    pub quota_backup_gigabytes: i64,
    /// Seconds notifications (GET /events) are kept; 0 keeps them for ever. Default: 30 days.
    #[arg(long, value_name = "SECS", default_value_t = 30 * 24 * 3600)]
    pub event_retention: u64,
    /// Where compiled drivers are kept between restarts. Default: <data-dir>/cache.
    #[arg(long, value_name = "DIR")]
    pub compile_cache: Option<PathBuf>,
    /// URL clients reach the API at, used in links (Cinder's public_endpoint), e.g.
    /// https://backup.example.com:8776. Default: http://<the listening address>.
    #[arg(long, env = "HOLDFAST_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Availability zone this backup service reports.
    #[arg(long, default_value = "nova")]
    pub availability_zone: String,
    #[command(flatten)]
    pub auth: AuthArgs,
}

/// How callers are authenticated (`--auth`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMode {
    /// Tokens from <data-dir>/admin-token (written on first start) and --token-file.
    Token,
    /// Each token validated by Keystone (--keystone-url and the service user).
    Keystone,
    /// Development only: Cinder's noauth, token USER:PROJECT, every caller an admin.
    Noauth,
}

#[derive(clap::Args, Debug)]
pub struct AuthArgs {
    /// token (default), keystone or noauth.
    #[arg(long, value_enum, env = "HOLDFAST_AUTH", default_value = "token")]
    pub auth: AuthMode,
    /// With --auth token: more tokens, one a line: TOKEN USER PROJECT ROLES
    /// (ROLES: comma list of admin, member, reader). Re-read when it changes.
    #[arg(long, env = "HOLDFAST_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// With --auth keystone: Keystone's URL, e.g. http://127.0.0.1:5000/v3.
    #[arg(long, env = "HOLDFAST_KEYSTONE_URL", value_name = "URL")]
    pub keystone_url: Option<String>,
    /// Service user Holdfast validates tokens as (needs the `service` or admin role).
    #[arg(long, env = "HOLDFAST_KEYSTONE_USER", default_value = "holdfast")]
    pub keystone_user: String,
    /// The service user's password (prefer the environment variable to the flag).
    #[arg(long, env = "HOLDFAST_KEYSTONE_PASSWORD", hide_env_values = true)]
    pub keystone_password: Option<String>,
    /// Project the service user logs in to.
    #[arg(long, env = "HOLDFAST_KEYSTONE_PROJECT", default_value = "service")]
    pub keystone_project: String,
    /// Domain of the service user and its project.
    #[arg(long, env = "HOLDFAST_KEYSTONE_DOMAIN", default_value = "Default")]
    pub keystone_domain: String,
}

fn auth(args: &AuthArgs, data_dir: &Path) -> Result<holdfast_api::Auth> {
    use holdfast_api::auth::{keystone, tokens};
    Ok(match args.auth {
        AuthMode::Noauth => {
            tracing::warn!("--auth noauth: every caller is an admin of any project it names (development only)");
            holdfast_api::Auth::Noauth
        }
        AuthMode::Token => {
            let (store, created) = tokens::TokenStore::open(data_dir, args.token_file.clone())?;
            let path = data_dir.join("admin-token");
            if created {
                tracing::info!(file = %path.display(), "wrote a new admin token (mode 0600); the CLI reads it from there");
            } else {
                tracing::info!(file = %path.display(), "admin token");
            }
            holdfast_api::Auth::Tokens(store)
        }
        AuthMode::Keystone => {
            let Some(url) = &args.keystone_url else { bail!("--auth keystone needs --keystone-url") };
            let Some(password) = &args.keystone_password else {
                bail!("--auth keystone needs the service user's password (HOLDFAST_KEYSTONE_PASSWORD)")
            };
            let creds = keystone::ServiceCredentials {
                user: args.keystone_user.clone(),
                password: password.clone(),
                project: args.keystone_project.clone(),
                user_domain: args.keystone_domain.clone(),
                project_domain: args.keystone_domain.clone(),
            };
            let k = keystone::Keystone::new(url, creds);
            tracing::info!(keystone = %k.url(), user = %args.keystone_user, "tokens are validated by Keystone");
            holdfast_api::Auth::Keystone(k)
        }
    })
}

/// A fraction in [0, 1], for `--rbd-diff-check`.
fn fraction(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        Ok(f) => Err(format!("{f} is not a fraction between 0 and 1 (0.001 is 0.1 %)")),
        Err(e) => Err(format!("not a number: {e}")),
    }
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))?;
    p.canonicalize().with_context(|| format!("resolving {}", p.display()))
}

pub fn run(args: ServeArgs) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("HOLDFAST_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: ServeArgs) -> Result<()> {
    let data_dir = absolute(&args.data_dir)?;
    let backup_dir = match &args.backup_dir {
        // A missing backup dir is not fatal: the driver's setup fails, the service is
        // down and setup is retried until the operator creates it.
        Some(d) => std::path::absolute(d).with_context(|| format!("backup dir {}", d.display()))?,
        None => absolute(&data_dir.join("backups"))?,
    };
    let auth = auth(&args.auth, &data_dir)?;
    if let Some(u) = &args.public_url
        && !(u.starts_with("http://") || u.starts_with("https://"))
    {
        bail!("--public-url {u:?} must start with http:// or https://");
    }
    let url =
        args.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", data_dir.join("holdfast.db").display()));
    let db = Db::connect(&url).await.with_context(|| format!("opening the database {}", redact(&url)))?;

    let cache = args.compile_cache.clone().unwrap_or_else(|| data_dir.join("cache"));
    // What no backend may be granted: the host's own files.
    let mut protected = vec![data_dir.clone(), cache.clone()];
    protected.extend(args.manage_roots.iter().cloned());
    if let Some(file) = url.strip_prefix("sqlite://").map(|p| p.split('?').next().unwrap_or(p)) {
        protected.push(PathBuf::from(file));
    }
    let backends = match &args.config {
        Some(path) => config::load(path, &protected)?,
        None => {
            config::check_backup_dir(&backup_dir, &data_dir, &protected).map_err(anyhow::Error::msg)?;
            let mut settings = Vec::new();
            for kv in &args.driver_config {
                let Some((k, v)) = kv.split_once('=') else {
                    bail!("--driver-config {kv:?} is not KEY=VALUE");
                };
                settings.push((k.trim().to_owned(), v.trim().to_owned()));
            }
            config::embedded(args.driver.as_deref(), settings, &backup_dir, &args.availability_zone)
        }
    };
    let keystone = args.auth.auth == AuthMode::Keystone;
    backends.check_auth(keystone).map_err(anyhow::Error::msg)?;
    let loaded = reload::initial(&backends, &cache, args.config.as_deref())?;

    let mut manage_roots = Vec::new();
    for r in &args.manage_roots {
        manage_roots.push(r.canonicalize().with_context(|| format!("--manage-root {}", r.display()))?);
    }
    let workers = args.workers.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2));
    let host =
        std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "localhost".into());
    let manager = Manager::new(
        db,
        ManagerConfig {
            data_dir: data_dir.clone(),
            manage_roots,
            availability_zone: args.availability_zone.clone(),
            host,
            workers,
            periodic_interval: std::time::Duration::from_secs(args.periodic_interval.max(1)),
            max_operations: args.max_operations,
            quotas: holdfast_manager::Quotas {
                backups: (args.quota_backups >= 0).then_some(args.quota_backups),
                backup_gigabytes: (args.quota_backup_gigabytes >= 0).then_some(args.quota_backup_gigabytes),
            },
            event_retention: (args.event_retention > 0).then(|| std::time::Duration::from_secs(args.event_retention)),
            rbd: holdfast_manager::RbdVolumes {
                cluster: holdfast_volume::ClusterConfig {
                    conf: args.rbd_conf.clone(),
                    user: args.rbd_user.clone(),
                    ..Default::default()
                },
                pool: args.rbd_pool.clone(),
                diff_check: args.rbd_diff_check,
            },
        },
        loaded.values().map(|l| l.backend.clone()).collect(),
        &backends.default_backend,
    )
    .await;
    manager.recover().await.context("recovering operations a previous run left unfinished")?;
    if let Some(path) = &args.config {
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        manager.set_reloader(tx.clone());
        let config_path = std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))?;
        reload::on_sighup(tx.clone());
        reload::watch(tx, config_path.clone());
        let reloader = reload::Reloader { manager: manager.clone(), config_path, protected, cache, loaded, keystone };
        tokio::spawn(reloader.run(rx));
    }

    let api_mode = auth.mode();
    let listener = TcpListener::bind(args.listen).await.with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, auth = api_mode, data_dir = %data_dir.display(), backends = backends.backends.len(), default_backend = %backends.default_backend, "holdfast is serving");
    // Scripts and tests read this line to find the port.
    println!("holdfast listening on http://{addr}");
    let public_url = args.public_url.clone().unwrap_or_else(|| format!("http://{addr}"));
    let api = holdfast_api::Api::new(Arc::clone(&manager), auth, &public_url);
    holdfast_api::serve(listener, api, shutdown_signal()).await?;
    tracing::info!("holdfast stopped");
    Ok(())
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}

/// Hide a password in a database URL before it reaches a log or an error.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// `config FILE: backends.NAME.KEY` (or the flag, without a config file), for errors.
pub(crate) fn key(spec: &BackendSpec, config_file: Option<&Path>, k: &str) -> String {
    match config_file {
        Some(f) => format!("config {}: backends.{}.{k}", f.display(), spec.name),
        None => format!("--{k}"),
    }
}

/// Check and compile one backend's driver from its bytes (`sha256`: their digest, in
/// hex, which the caller has already computed). A digest mismatch or a component that
/// does not load is an error naming the backend's key.
pub(crate) fn load_backend_bytes(
    spec: &BackendSpec,
    bytes: &[u8],
    sha256: &str,
    cache: &Path,
    config_file: Option<&Path>,
) -> Result<Backend> {
    let name = match &spec.driver {
        DriverSource::BuiltinPosix => config::BUILTIN_POSIX.to_owned(),
        DriverSource::BuiltinCeph => config::BUILTIN_CEPH.to_owned(),
        DriverSource::BuiltinS3 => config::BUILTIN_S3.to_owned(),
        DriverSource::BuiltinSwift => config::BUILTIN_SWIFT.to_owned(),
        DriverSource::File(p) => p.file_stem().and_then(|s| s.to_str()).unwrap_or("driver").to_owned(),
    };
    if let Some(want) = &spec.sha256
        && sha256 != want
    {
        bail!("{}: the driver's SHA-256 is {sha256}, not {want}", key(spec, config_file, "sha256"));
    }
    let started = std::time::Instant::now();
    let driver = DriverComponent::load_cached(&name, bytes, spec.grants.clone(), spec.settings.clone(), Some(cache))
        .with_context(|| key(spec, config_file, "driver"))?;
    // Compiling (a cache miss) frees tens of MiB this thread's heap would keep.
    crate::allocator::release_free_memory();
    let load_time = started.elapsed();
    tracing::info!(backend = %spec.name, driver = %holdfast_driver::BackupDriver::id(&driver), zone = %spec.availability_zone, seconds = load_time.as_secs_f64(), "backend loaded");
    Ok(Backend {
        name: spec.name.clone(),
        availability_zone: spec.availability_zone.clone(),
        driver: Arc::new(driver),
        load_time,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(super::redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redact("sqlite:///x"), "sqlite:///x");
    }

    #[test]
    fn the_diff_check_is_a_fraction() {
        assert_eq!(super::fraction("0.001"), Ok(0.001));
        assert_eq!(super::fraction("0"), Ok(0.0));
        assert_eq!(super::fraction("1"), Ok(1.0));
        assert!(super::fraction("1.5").unwrap_err().contains("between 0 and 1"));
        assert!(super::fraction("-0.1").is_err());
        assert!(super::fraction("lots").unwrap_err().contains("not a number"));
    }
}
