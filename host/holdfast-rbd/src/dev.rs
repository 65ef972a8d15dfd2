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

impl DevCluster {
    /// Start (or find running) the dev cluster in `dir`, using the repository's
    /// `scripts/ceph-dev.sh` found from `repo`.
    pub fn start(repo: &Path, dir: &Path) -> Result<DevCluster, RbdError> {
        Self::start_with(repo, dir, &[])
    }

    /// [`Self::start`] with more options for the script (`--objectstore bluestore
    /// --osd-size 40G` for data that must not live in the OSD's memory).
    pub fn start_with(repo: &Path, dir: &Path, options: &[&str]) -> Result<DevCluster, RbdError> {
        let script = repo.join("scripts/ceph-dev.sh");
        std::fs::create_dir_all(dir.parent().unwrap_or(Path::new("/")))
            .map_err(|e| RbdError::Invalid(format!("{}: {e}", dir.display())))?;
        let lock = dir.with_extension("lock");
        // `-o`: the daemons the script starts must not inherit the lock.
        let out = Command::new("flock")
            .arg("-o")
            .arg(&lock)
            .arg("bash")
            .arg(&script)
            .arg("start")
            .arg(dir)
            .args(["--port-base", "auto"])
            .args(options)
            .output()
            .map_err(|e| RbdError::Invalid(format!("running {}: {e}", script.display())))?;
        if !out.status.success() {
            return Err(RbdError::Invalid(format!(
                "{} start {} failed:\n{}",
                script.display(),
                dir.display(),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(DevCluster { dir: dir.to_owned(), conf: dir.join("ceph.conf") })
    }

    pub fn config(&self) -> ClusterConfig {
        ClusterConfig { conf: Some(self.conf.clone()), ..ClusterConfig::default() }
    }

    /// Stop it (gracefully) — for the tests that take the cluster away.
    pub fn stop(&self, repo: &Path) -> Result<(), RbdError> {
        self.run(repo, "stop")
    }

    fn run(&self, repo: &Path, verb: &str) -> Result<(), RbdError> {
        let lock = self.dir.with_extension("lock");
        // `-o`: the daemons the script starts must not inherit the lock.
        let out = Command::new("flock")
            .arg("-o")
            .arg(&lock)
            .arg("bash")
            .arg(repo.join("scripts/ceph-dev.sh"))
            .arg(verb)
            .arg(&self.dir)
            .output()
            .map_err(|e| RbdError::Invalid(format!("ceph-dev.sh {verb}: {e}")))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(RbdError::Invalid(format!("ceph-dev.sh {verb}: {}", String::from_utf8_lossy(&out.stderr))))
        }
    }
}
