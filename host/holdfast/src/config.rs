//! `holdfast serve --config FILE`: the operator's backends, in TOML (see
//! `docs/holdfast.example.toml`). Without a file, one posix backend in the data dir.
//!
//! Everything is checked before anything is served: unknown keys, a missing driver
//! file, a digest mismatch, two backends granted the same read-write directory, a
//! backup directory inside the data dir. Each error names the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use holdfast_driver::{Access, BACKUP_MOUNT, DirGrant, Grants};
use serde::Deserialize;

/// The built-in drivers' names in `driver = "posix"` / `driver = "ceph"`.
pub const BUILTIN_POSIX: &str = "posix";
pub const BUILTIN_CEPH: &str = "ceph";
pub const BUILTIN_S3: &str = "s3";
pub const BUILTIN_SWIFT: &str = "swift";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("config {path}: {message}")]
    Syntax { path: String, message: String },
    #[error("config {path}: {key}: {message}")]
    Key { path: String, key: String, message: String },
}

/// Where a backend's driver comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverSource {
    /// The posix driver compiled into the binary.
    BuiltinPosix,
    /// The Ceph driver compiled into the binary (needs `grants.rbd`).
    BuiltinCeph,
    /// The S3 driver compiled into the binary (needs the endpoint in `grants.network`).
    BuiltinS3,
    /// The Swift driver compiled into the binary (needs the endpoints in `grants.network`).
    BuiltinSwift,
    /// A component file.
    File(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendSpec {
    pub name: String,
    pub driver: DriverSource,
    /// Expected SHA-256 of the component (lowercase hex), checked when it is read.
    pub sha256: Option<String>,
    pub availability_zone: String,
    pub settings: Vec<(String, String)>,
    pub grants: Grants,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub default_backend: String,
    /// By name.
    pub backends: Vec<BackendSpec>,
}

impl Config {
    /// Refused when a backend passes on callers' Keystone tokens and callers do not
    /// come with any (`--auth` is not keystone): its every operation would fail.
    pub fn check_auth(&self, keystone: bool) -> Result<(), String> {
        match self.backends.iter().find(|b| b.grants.caller_token) {
            Some(b) if !keystone => Err(format!(
                "backend {:?} grants caller_token (per_user Swift: each caller's Keystone token), which needs \
                 --auth keystone",
                b.name
            )),
            _ => Ok(()),
        }
    }

    #[cfg(test)]
    fn default_spec(&self) -> &BackendSpec {
        self.backends.iter().find(|b| b.name == self.default_backend).expect("validated: the default exists")
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    default_backend: Option<String>,
    #[serde(default)]
    backends: BTreeMap<String, BackendToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BackendToml {
    driver: String,
    sha256: Option<String>,
    availability_zone: Option<String>,
    /// Accept a driver that is not confined to one backup per operation.
    #[serde(default)]
    unconfined: bool,
    #[serde(default)]
    settings: BTreeMap<String, toml::Value>,
    #[serde(default)]
    grants: GrantsToml,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct GrantsToml {
    store: Option<PathBuf>,
    #[serde(default)]
    dirs: Vec<DirToml>,
    #[serde(default)]
    network: Vec<String>,
    object_api: Option<String>,
    memory: Option<String>,
    call_timeout: Option<String>,
    control_timeout: Option<String>,
    instances: Option<u32>,
    rbd: Option<RbdToml>,
    /// The host adds each caller's Keystone token to the Swift requests (Cinder's
    /// `backup_swift_auth = per_user`).
    #[serde(default)]
    caller_token: bool,
}

/// `grants.rbd = { conf = "/etc/ceph/ceph.conf", user = "cinder", pools = ["backups"] }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RbdToml {
    conf: Option<PathBuf>,
    user: Option<String>,
    pools: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DirToml {
    path: PathBuf,
    access: AccessToml,
    /// Where the driver sees it; the first directory defaults to `/backup`, others
    /// to their own path.
    mount: Option<String>,
}

#[derive(Deserialize, Clone, Copy)]
enum AccessToml {
    #[serde(rename = "ro")]
    ReadOnly,
    #[serde(rename = "rw")]
    ReadWrite,
}

/// The embedded default: one posix backend (or `--driver`) writing to `backup_dir`.
pub fn embedded(
    driver: Option<&Path>,
    settings: Vec<(String, String)>,
    backup_dir: &Path,
    availability_zone: &str,
) -> Config {
    let driver = driver.map_or(DriverSource::BuiltinPosix, |p| DriverSource::File(p.to_owned()));
    let name = "default".to_owned();
    let spec = BackendSpec {
        name: name.clone(),
        driver,
        sha256: None,
        availability_zone: availability_zone.to_owned(),
        settings,
        grants: Grants::store(backup_dir),
    };
    Config { default_backend: name, backends: vec![spec] }
}

/// Read and check `path`. `protected` are the host's own places — the data dir, the
/// compile cache, the manage roots, the database — that no grant may reach: a
/// directory inside one, or one containing one, is refused.
pub fn load(path: &Path, protected: &[PathBuf]) -> Result<Config, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: shown.clone(), source })?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&text, &shown, base, protected)
}

/// [`load`] on text already read; relative driver paths are taken from `base`.
pub fn parse(text: &str, shown: &str, base: &Path, protected: &[PathBuf]) -> Result<Config, ConfigError> {
    let file: FileConfig =
        toml::from_str(text).map_err(|e| ConfigError::Syntax { path: shown.to_owned(), message: e.to_string() })?;
    let err = |key: String, message: String| ConfigError::Key { path: shown.to_owned(), key, message };
    if file.backends.is_empty() {
        return Err(err("backends".into(), "name at least one backend ([backends.NAME])".into()));
    }
    let default_backend = match file.default_backend {
        Some(d) if file.backends.contains_key(&d) => d,
        Some(d) => return Err(err("default_backend".into(), format!("there is no backend named {d:?}"))),
        None if file.backends.len() == 1 => file.backends.keys().next().cloned().unwrap_or_default(),
        None => return Err(err("default_backend".into(), "required when there are several backends".into())),
    };
    let protected: Vec<PathBuf> = protected.iter().map(|p| absolute(p)).collect();
    let mut backends = Vec::new();
    let mut writers: BTreeMap<PathBuf, String> = BTreeMap::new();
    // Object stores, and every directory granted through WASI (a read-only grant over a
    // store would still let a driver read every backup in it).
    let mut stores: Vec<(PathBuf, String)> = Vec::new();
    let mut read_dirs: Vec<(PathBuf, String)> = Vec::new();
    for (name, b) in file.backends {
        let key = |k: &str| format!("backends.{name}.{k}");
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(err(format!("backends.{name}"), "a backend name is letters, digits, '-' and '_'".into()));
        }
        let driver = if b.driver == BUILTIN_POSIX {
            DriverSource::BuiltinPosix
        } else if b.driver == BUILTIN_CEPH {
            DriverSource::BuiltinCeph
        } else if b.driver == BUILTIN_S3 {
            DriverSource::BuiltinS3
        } else if b.driver == BUILTIN_SWIFT {
            DriverSource::BuiltinSwift
        } else {
            let p = base.join(&b.driver);
            if !p.is_file() {
                return Err(err(
                    key("driver"),
                    format!("{}: no such driver file (or \"posix\", \"ceph\", \"s3\", \"swift\")", p.display()),
                ));
            }
            DriverSource::File(p)
        };
        if let Some(d) = &b.sha256
            && (d.len() != 64 || !d.chars().all(|c| c.is_ascii_hexdigit()))
        {
            return Err(err(key("sha256"), "64 hexadecimal digits".into()));
        }
        let mut settings = Vec::new();
        for (k, v) in b.settings {
            if k.starts_with(holdfast_driver::HOST_SETTING_PREFIX) {
                return Err(err(
                    key(&format!("settings.{k}")),
                    format!("settings starting {:?} are the host's", holdfast_driver::HOST_SETTING_PREFIX),
                ));
            }
            let v = match v {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(x) => x.to_string(),
                toml::Value::Float(f) => f.to_string(),
                _ => return Err(err(key(&format!("settings.{k}")), "a string, number or boolean".into())),
            };
            settings.push((k, v));
        }
        let g = b.grants;
        // A grant of `/` or `/var/lib` would hand a driver the database and the compile
        // cache (native code the host loads): refused both ways round.
        let own = |path: &Path, k: String| -> Result<PathBuf, ConfigError> {
            if !path.is_absolute() {
                return Err(err(k, format!("{}: an absolute path", path.display())));
            }
            let host_path = absolute(path);
            if let Some(p) = protected.iter().find(|p| host_path.starts_with(p) || p.starts_with(&host_path)) {
                let how = if host_path.starts_with(p) { "is inside" } else { "contains" };
                return Err(err(
                    k,
                    format!("{} {how} {}, which the host keeps for itself", host_path.display(), p.display()),
                ));
            }
            Ok(host_path)
        };
        let store = match &g.store {
            Some(path) => {
                let host_path = own(path, key("grants.store"))?;
                claim(&mut writers, &host_path, &name).map_err(|m| err(key("grants.store"), m))?;
                stores.push((host_path.clone(), name.clone()));
                Some(host_path)
            }
            None => None,
        };
        let mut dirs = Vec::new();
        for (i, d) in g.dirs.into_iter().enumerate() {
            let dkey = key(&format!("grants.dirs[{i}]"));
            let host_path = own(&d.path, dkey.clone())?;
            let access = match d.access {
                AccessToml::ReadOnly => Access::ReadOnly,
                AccessToml::ReadWrite => Access::ReadWrite,
            };
            if access == Access::ReadWrite {
                // The whole directory, every backup in it, for every operation.
                if !b.unconfined {
                    return Err(err(
                        dkey,
                        format!(
                            "a read-write directory lets the driver touch every backup in it; give it an object \
                             store (grants.store, drivers built for holdfast:backup@0.2.1) or accept that with \
                             backends.{name}.unconfined = true"
                        ),
                    ));
                }
                claim(&mut writers, &host_path, &name).map_err(|m| err(dkey.clone(), m))?;
            }
            read_dirs.push((host_path.clone(), dkey.clone()));
            let guest_path = d
                .mount
                .unwrap_or_else(|| if i == 0 { BACKUP_MOUNT.to_owned() } else { host_path.display().to_string() });
            dirs.push(DirGrant { host_path, guest_path, access });
        }
        let memory_bytes = match g.memory {
            Some(m) => {
                Some(parse_bytes(&m).ok_or_else(|| err(key("grants.memory"), format!("{m:?}: e.g. \"256MiB\"")))?)
            }
            None => None,
        };
        let timeout = |value: Option<String>, name: &str, default| match value {
            Some(t) => match parse_duration(&t) {
                Some(d) if !d.is_zero() => Ok(d),
                _ => Err(err(key(&format!("grants.{name}")), format!("{t:?}: e.g. \"60s\""))),
            },
            None => Ok(default),
        };
        let call_timeout = timeout(g.call_timeout, "call_timeout", holdfast_driver::DEFAULT_CALL_TIMEOUT)?;
        let control_timeout = timeout(g.control_timeout, "control_timeout", holdfast_driver::DEFAULT_CONTROL_TIMEOUT)?;
        if g.instances == Some(0) {
            return Err(err(key("grants.instances"), "at least 1".into()));
        }
        for endpoint in &g.network {
            if !is_endpoint(endpoint) {
                return Err(err(
                    key("grants.network"),
                    format!("{endpoint:?}: an endpoint is host:port, e.g. \"s3.example.net:443\" (no scheme, no path)"),
                ));
            }
        }
        let object_api = match g.object_api.as_deref() {
            // The built-in S3 driver speaks S3: the host holds its requests to the backup.
            None if driver == DriverSource::BuiltinS3 => Some(holdfast_driver::ObjectApi::S3),
            None if driver == DriverSource::BuiltinSwift => Some(holdfast_driver::ObjectApi::Swift),
            None => None,
            Some(api) => Some(
                holdfast_driver::ObjectApi::parse(api)
                    .ok_or_else(|| err(key("grants.object_api"), format!("{api:?}: \"s3\" or \"swift\"")))?,
            ),
        };
        if object_api.is_some() && g.network.is_empty() {
            return Err(err(
                key("grants.network"),
                "an object-store backend needs its endpoint here (host:port, e.g. \"127.0.0.1:7480\")".into(),
            ));
        }
        // Cinder's Swift default: each project's backups in its own account, reached
        // with the caller's token, which only the host holds.
        let per_user = driver == DriverSource::BuiltinSwift
            && settings.iter().find(|(k, _)| k == "backup_swift_auth").is_none_or(|(_, v)| v == "per_user");
        if g.caller_token && object_api != Some(holdfast_driver::ObjectApi::Swift) {
            return Err(err(
                key("grants.caller_token"),
                "only for a Swift backend (object_api = \"swift\"): Keystone tokens are Swift's".into(),
            ));
        }
        if per_user && !g.caller_token {
            return Err(err(
                key("grants.caller_token"),
                "backup_swift_auth = per_user (Cinder's default) reaches each project's account with the caller's \
                 Keystone token: grant it with grants.caller_token = true (the host adds it to the requests; the \
                 driver never sees it), or set backup_swift_auth = single_user"
                    .into(),
            ));
        }
        let rbd = match g.rbd {
            Some(r) => {
                if r.pools.is_empty() || r.pools.iter().any(|p| p.is_empty() || p.contains(['/', '@', '\0'])) {
                    return Err(err(key("grants.rbd.pools"), "one or more pool names".into()));
                }
                if let Some(c) = &r.conf
                    && !c.is_absolute()
                {
                    return Err(err(key("grants.rbd.conf"), format!("{}: an absolute path", c.display())));
                }
                let user = r.user.unwrap_or_else(|| "cinder".into());
                if user.is_empty() || user.starts_with("client.") {
                    return Err(err(
                        key("grants.rbd.user"),
                        "the cephx id without \"client.\", e.g. \"cinder\"".into(),
                    ));
                }
                Some(holdfast_driver::RbdGrant { conf: r.conf, user, pools: r.pools })
            }
            None if driver == DriverSource::BuiltinCeph => {
                return Err(err(
                    key("grants.rbd"),
                    "the ceph driver needs the cluster and pools it may use, e.g. \
                     grants = { rbd = { conf = \"/etc/ceph/ceph.conf\", user = \"cinder\", pools = [\"backups\"] } }"
                        .into(),
                ));
            }
            None => None,
        };
        let grants = Grants {
            rbd,
            store,
            dirs,
            unconfined: b.unconfined,
            network: g.network,
            object_api,
            memory_bytes,
            call_timeout,
            control_timeout,
            instances: g.instances,
            caller_token: g.caller_token,
        };
        let availability_zone = b.availability_zone.unwrap_or_else(|| "nova".into());
        // Cinder's object-store drivers name objects after the service's zone
        // (`az_<zone>_backup_<id>`): the backend's, unless the operator says otherwise.
        // Only for them: other drivers may refuse settings they do not know.
        if grants.object_api.is_some() && !settings.iter().any(|(k, _)| k == "storage_availability_zone") {
            settings.push(("storage_availability_zone".into(), availability_zone.clone()));
        }
        backends.push(BackendSpec {
            name,
            driver,
            sha256: b.sha256.map(|s| s.to_ascii_lowercase()),
            availability_zone,
            settings,
            grants,
        });
    }
    for (dir, dkey) in &read_dirs {
        if let Some((store, owner)) = stores.iter().find(|(s, _)| s.starts_with(dir) || dir.starts_with(s)) {
            return Err(err(
                dkey.clone(),
                format!("{} overlaps {}, the object store of backend {owner:?}", dir.display(), store.display()),
            ));
        }
    }
    Ok(Config { default_backend, backends })
}

/// Record that backend `name` may write `path`; refused when another grant already
/// covers part of it.
fn claim(writers: &mut BTreeMap<PathBuf, String>, path: &Path, name: &str) -> Result<(), String> {
    if let Some((p, other)) = writers.iter().find(|(p, _)| p.starts_with(path) || path.starts_with(p)) {
        return Err(format!("{} overlaps {} that backend {other:?} may write", path.display(), p.display()));
    }
    writers.insert(path.to_owned(), name.to_owned());
    Ok(())
}

/// `path` made absolute and, where it exists, free of symlinks and `..`.
/// The embedded backend's `--backup-dir`: the data dir's own `backups` (the default)
/// or below it, or a directory apart from every place the host keeps for itself —
/// never the data dir, the compile cache, a manage root or the database, nor a
/// directory containing one (the driver would be handed the database and native code
/// the host loads).
pub fn check_backup_dir(dir: &Path, data_dir: &Path, protected: &[PathBuf]) -> Result<(), String> {
    let dir = absolute(dir);
    let (data_dir, default) = (absolute(data_dir), absolute(&data_dir.join("backups")));
    for p in protected.iter().map(|p| absolute(p)) {
        if p.starts_with(&dir) {
            return Err(format!(
                "--backup-dir {} contains {}, which the host keeps for itself",
                dir.display(),
                p.display()
            ));
        }
        if dir.starts_with(&p) && !(p == data_dir && dir.starts_with(&default)) {
            return Err(format!(
                "--backup-dir {} is inside {}, which the host keeps for itself",
                dir.display(),
                p.display()
            ));
        }
    }
    Ok(())
}

fn absolute(path: &Path) -> PathBuf {
    path.canonicalize().or_else(|_| std::path::absolute(path)).unwrap_or_else(|_| path.to_owned())
}

/// "256MiB", "1GiB", "512KiB", "1048576" (bytes).
fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().ok()?;
    let mult = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult).filter(|&b| b > 0)
}

/// "60s", "5m", "1h", "250ms".
fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().ok()?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        "h" => Duration::from_secs(n.checked_mul(3600)?),
        _ => return None,
    };
    (!d.is_zero()).then_some(d)
}

/// `host:port`: a host name or IPv4 address (or `[IPv6]`) and a port 1–65535.
fn is_endpoint(text: &str) -> bool {
    let Some((host, port)) = text.rsplit_once(':') else { return false };
    let host_ok = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        v6.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    };
    host_ok && port.parse::<u16>().is_ok_and(|p| p > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in(text: &str) -> Result<Config, ConfigError> {
        parse(text, "test.toml", Path::new("/"), &[PathBuf::from("/var/lib/holdfast"), PathBuf::from("/srv/in")])
    }

    #[test]
    fn the_documented_example_parses() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/holdfast.example.toml"))
            .unwrap()
            .replace("/opt/drivers/acme-1.2.0.wasm", "/bin/sh");
        let c = parse_in(&text).unwrap();
        assert_eq!(c.default_backend, "nfs");
        assert_eq!(c.backends.len(), 5);
        let swift = c.backends.iter().find(|b| b.name == "swift").unwrap();
        assert_eq!(swift.grants.object_api, Some(holdfast_driver::ObjectApi::Swift));
        assert!(swift.grants.caller_token && swift.grants.is_confined());
        assert!(c.check_auth(true).is_ok());
        assert!(c.check_auth(false).unwrap_err().contains("--auth keystone"));
        let s3 = c.backends.iter().find(|b| b.name == "s3").unwrap();
        assert_eq!(s3.driver, DriverSource::BuiltinS3);
        assert_eq!(s3.grants.object_api, Some(holdfast_driver::ObjectApi::S3));
        assert!(s3.grants.is_confined());
        assert!(s3.settings.contains(&("storage_availability_zone".to_owned(), "az4".to_owned())));
        let ceph = c.backends.iter().find(|b| b.name == "ceph").unwrap();
        assert_eq!(ceph.driver, DriverSource::BuiltinCeph);
        let rbd = ceph.grants.rbd.as_ref().unwrap();
        assert_eq!((rbd.user.as_str(), rbd.pools.as_slice()), ("cinder", &["backups".to_owned()][..]));
        let nfs = c.default_spec();
        assert_eq!(nfs.driver, DriverSource::BuiltinPosix);
        assert_eq!(nfs.availability_zone, "az1");
        assert_eq!(nfs.settings, vec![("backup_compression_algorithm".to_owned(), "zstd".to_owned())]);
        assert_eq!(nfs.grants.store.as_deref(), Some(Path::new("/srv/backups")));
        assert!(nfs.grants.is_confined() && !nfs.grants.unconfined);
        let vendor = c.backends.iter().find(|b| b.name == "vendor").unwrap();
        assert_eq!(vendor.grants.dirs[0].guest_path, "/backup");
        assert_eq!(vendor.grants.dirs[0].access, Access::ReadWrite);
        assert!(vendor.grants.unconfined);
        assert_eq!(vendor.grants.memory_bytes, Some(256 << 20));
        assert_eq!(vendor.grants.call_timeout, Duration::from_secs(60));
        assert_eq!(vendor.grants.control_timeout, holdfast_driver::DEFAULT_CONTROL_TIMEOUT);
        assert_eq!(vendor.grants.instances, Some(4));
    }

    #[test]
    fn the_embedded_backup_dir_stays_apart_from_the_hosts_files() {
        let data = Path::new("/var/lib/holdfast");
        let protected = [data.to_owned(), data.join("cache"), data.join("holdfast.db"), PathBuf::from("/srv/in")];
        assert!(check_backup_dir(&data.join("backups"), data, &protected).is_ok());
        assert!(check_backup_dir(&data.join("backups/nfs"), data, &protected).is_ok());
        assert!(check_backup_dir(Path::new("/srv/backups"), data, &protected).is_ok());
        for (dir, why) in [
            ("/var/lib/holdfast", "contains /var/lib/holdfast"),
            ("/var/lib", "contains"),
            ("/", "contains"),
            ("/var/lib/holdfast/cache", "is inside /var/lib/holdfast"),
            ("/var/lib/holdfast/cache/x", "is inside /var/lib/holdfast"),
            ("/var/lib/holdfast/other", "is inside /var/lib/holdfast"),
            ("/srv/in/v", "is inside /srv/in"),
        ] {
            let e = check_backup_dir(Path::new(dir), data, &protected).unwrap_err();
            assert!(e.contains(why), "{dir}: {e}");
        }
    }

    #[test]
    fn mistakes_are_refused_naming_the_key() {
        let cases = [
            ("[backends.a]\ndriver = \"posix\"\ncolour = 1\n", "colour"),
            ("[backends.a]\ndriver = \"posix\"\n[backends.b]\ndriver = \"posix\"\n", "default_backend"),
            ("default_backend = \"x\"\n[backends.a]\ndriver = \"posix\"\n", "no backend named \"x\""),
            ("[backends.a]\ndriver = \"/nonexistent.wasm\"\n", "backends.a.driver"),
            ("[backends.a]\ndriver = \"posix\"\nsha256 = \"abc\"\n", "backends.a.sha256"),
            (
                "[backends.a]\ndriver = \"posix\"\ngrants = { store = \"/var/lib/holdfast/b\" }\n",
                "is inside /var/lib/holdfast",
            ),
            (
                "[backends.a]\ndriver = \"posix\"\ngrants = { dirs = [{ path = \"/var/lib\", access = \"ro\" }] }\n",
                "contains /var/lib/holdfast",
            ),
            ("[backends.a]\ndriver = \"posix\"\ngrants = { dirs = [{ path = \"/\", access = \"ro\" }] }\n", "contains"),
            (
                "[backends.a]\ndriver = \"posix\"\ngrants = { dirs = [{ path = \"/srv/in/x\", access = \"ro\" }] }\n",
                "is inside /srv/in",
            ),
            ("[backends.a]\ndriver = \"posix\"\ngrants = { store = \"rel\" }\n", "an absolute path"),
            (
                "[backends.a]\ndriver = \"posix\"\ngrants = { dirs = [{ path = \"/srv/x\", access = \"write\" }] }\n",
                "access",
            ),
            ("[backends.a]\ndriver = \"posix\"\ngrants = { memory = \"lots\" }\n", "backends.a.grants.memory"),
            (
                "[backends.a]\ndriver = \"posix\"\ngrants = { call_timeout = \"soon\" }\n",
                "backends.a.grants.call_timeout",
            ),
            (
                "default_backend = \"a\"\n[backends.a]\ndriver = \"posix\"\ngrants = { store = \"/srv/x\" }\n[backends.b]\ndriver = \"posix\"\ngrants = { store = \"/srv/x/y\" }\n",
                "overlaps",
            ),
            (
                "default_backend = \"a\"\n[backends.a]\ndriver = \"posix\"\nunconfined = true\ngrants = { dirs = [{ path = \"/srv/x\", access = \"rw\" }] }\n[backends.b]\ndriver = \"posix\"\ngrants = { store = \"/srv/x/y\" }\n",
                "backends.b.grants.store: /srv/x/y overlaps /srv/x that backend \"a\" may write",
            ),
            (
                "[backends.a]\ndriver = \"posix\"\ngrants = { dirs = [{ path = \"/srv/x\", access = \"rw\" }] }\n",
                "backends.a.grants.dirs[0]: a read-write directory lets the driver touch every backup in it",
            ),
            (
                "default_backend = \"a\"\n[backends.a]\ndriver = \"posix\"\ngrants = { store = \"/srv/x\" }\n[backends.b]\ndriver = \"posix\"\ngrants = { dirs = [{ path = \"/srv/x/sub\", access = \"ro\" }] }\n",
                "backends.b.grants.dirs[0]: /srv/x/sub overlaps /srv/x, the object store of backend \"a\"",
            ),
            (
                "[backends.a]\ndriver = \"posix\"\ngrants = { network = [\"https://s3.example.net\"] }\n",
                "backends.a.grants.network",
            ),
            ("[backends.a]\ndriver = \"posix\"\ngrants = { network = [\"s3.example.net\"] }\n", "host:port"),
            ("[backends.a]\ndriver = \"ceph\"\n", "backends.a.grants.rbd: the ceph driver needs"),
            ("[backends.a]\ndriver = \"ceph\"\ngrants = { rbd = { pools = [] } }\n", "backends.a.grants.rbd.pools"),
            (
                "[backends.a]\ndriver = \"ceph\"\ngrants = { rbd = { user = \"client.x\", pools = [\"b\"] } }\n",
                "backends.a.grants.rbd.user",
            ),
            ("[backends.a]\ndriver = \"ceph\"\ngrants = { rbd = { pools = [\"b\"], colour = 1 } }\n", "colour"),
            (
                "[backends.a]\ndriver = \"posix\"\nsettings = { \"holdfast.caller_project_id\" = \"p\" }\n",
                "backends.a.settings.holdfast.caller_project_id: settings starting \"holdfast.\" are the host's",
            ),
            (
                "[backends.a]\ndriver = \"swift\"\ngrants = { network = [\"127.0.0.1:7480\"] }\n",
                "backends.a.grants.caller_token: backup_swift_auth = per_user",
            ),
            (
                "[backends.a]\ndriver = \"s3\"\ngrants = { network = [\"127.0.0.1:7480\"], caller_token = true }\n",
                "backends.a.grants.caller_token: only for a Swift backend",
            ),
            ("backends = [", "config test.toml"),
            ("", "at least one backend"),
        ];
        for (text, expect) in cases {
            let e = parse_in(text).unwrap_err().to_string();
            assert!(e.contains(expect), "{text:?}: {e}");
        }
    }

    #[test]
    fn two_backends_may_read_the_same_directory() {
        let text = "default_backend = \"a\"\n\
                    [backends.a]\ndriver = \"posix\"\nunconfined = true\ngrants = { dirs = [{ path = \"/srv/x\", access = \"rw\" }] }\n\
                    [backends.b]\ndriver = \"posix\"\ngrants = { dirs = [{ path = \"/srv/x\", access = \"ro\" }] }\n";
        parse_in(text).unwrap();
    }
}
