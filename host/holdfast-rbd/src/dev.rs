//! The throwaway cluster tests and benchmarks run on: `scripts/ceph-dev.sh` (which
//! installs Debian's Ceph packages when they are missing), started once per
//! directory and shared by every test process (a file lock serialises the starts).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{ClusterConfig, RbdError};

/// A running dev cluster.
#[derive(Debug, Clone)]
pub struct DevCluster {
    pub dir: PathBuf,
    /// Its `ceph.conf` (client.admin's keyring is named in it).
    pub conf: PathBuf,
}

/// The dev cluster's radosgw and its one user.
#[derive(Debug, Clone)]
pub struct Rgw {
    pub port: u16,
    /// S3 keys of user `test`.
    pub access_key: String,
    pub secret_key: String,
    /// Swift v1 auth of subuser `test:swift` (at `/auth/1.0`).
    pub swift_user: String,
    pub swift_key: String,
}

impl Rgw {
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `host:port`, as a network grant names it.
    pub fn authority(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// `scripts/ceph-dev.sh VERB DIR ARGS…` under the directory's lock.
fn script(repo: &Path, verb: &str, dir: &Path, args: &[&str]) -> Result<(), RbdError> {
    let script = repo.join("scripts/ceph-dev.sh");
    // `-o`: the daemons the script starts must not inherit the lock.
    let out = Command::new("flock")
        .arg("-o")
        .arg(dir.with_extension("lock"))
        .arg("bash")
        .arg(&script)
        .arg(verb)
        .arg(dir)
        .args(args)
        .output()
        .map_err(|e| RbdError::Invalid(format!("running {}: {e}", script.display())))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(RbdError::Invalid(format!(
            "{} {verb} {} failed:\n{}",
            script.display(),
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

impl DevCluster {
    /// Start (or find running) the dev cluster in `dir`, using the repository's
    /// `scripts/ceph-dev.sh` found from `repo`.
    pub fn start(repo: &Path, dir: &Path) -> Result<DevCluster, RbdError> {
        Self::start_with(repo, dir, &[])
    }

    /// [`Self::start`] with more options for the script (`--objectstore bluestore
    /// --osd-size 40G` for data that must not live in the OSD's memory).
    pub fn start_with(repo: &Path, dir: &Path, options: &[&str]) -> Result<DevCluster, RbdError> {
        std::fs::create_dir_all(dir.parent().unwrap_or(Path::new("/")))
            .map_err(|e| RbdError::Invalid(format!("{}: {e}", dir.display())))?;
        let args: Vec<&str> = ["--port-base", "auto"].into_iter().chain(options.iter().copied()).collect();
        script(repo, "start", dir, &args)?;
        Ok(DevCluster { dir: dir.to_owned(), conf: dir.join("ceph.conf") })
    }

    /// Its radosgw (S3 and Swift on 127.0.0.1), started with `--rgw`.
    pub fn rgw(&self) -> Result<Rgw, RbdError> {
        let missing =
            |what: &str| RbdError::Invalid(format!("{}: no radosgw ({what}); start with --rgw", self.dir.display()));
        let conf = std::fs::read_to_string(&self.conf)
            .map_err(|e| RbdError::Invalid(format!("{}: {e}", self.conf.display())))?;
        let port = conf
            .lines()
            .find_map(|l| l.trim().strip_prefix("rgw_frontends = beast endpoint=127.0.0.1:"))
            .and_then(|p| p.trim().parse().ok())
            .ok_or_else(|| missing("no rgw_frontends in ceph.conf"))?;
        let user = std::fs::read_to_string(self.dir.join("rgw.user")).map_err(|_| missing("no rgw.user"))?;
        let mut keys = user.lines().map(str::to_owned);
        let (Some(access_key), Some(secret_key), Some(swift_key)) = (keys.next(), keys.next(), keys.next()) else {
            return Err(missing("rgw.user is short"));
        };
        Ok(Rgw { port, access_key, secret_key, swift_user: "test:swift".into(), swift_key })
    }

    pub fn config(&self) -> ClusterConfig {
        ClusterConfig { conf: Some(self.conf.clone()), ..ClusterConfig::default() }
    }

    /// Stop it (gracefully) — for the tests that take the cluster away.
    pub fn stop(&self, repo: &Path) -> Result<(), RbdError> {
        script(repo, "stop", &self.dir, &[])
    }

    /// Freeze its daemons (SIGSTOP): a cluster that stops answering, for the tests of
    /// what a backup does then; [`Self::thaw`] brings it back with its data.
    pub fn freeze(&self, repo: &Path) -> Result<(), RbdError> {
        script(repo, "freeze", &self.dir, &[])
    }

    pub fn thaw(&self, repo: &Path) -> Result<(), RbdError> {
        script(repo, "thaw", &self.dir, &[])
    }

    /// Kill its daemons (SIGKILL): a cluster that dies.
    pub fn kill(&self, repo: &Path) -> Result<(), RbdError> {
        script(repo, "kill", &self.dir, &[])
    }

    /// Stop it and remove its directory.
    pub fn destroy(&self, repo: &Path) -> Result<(), RbdError> {
        script(repo, "destroy", &self.dir, &[])
    }
}
