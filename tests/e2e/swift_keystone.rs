//! Cinder's default Swift mode, `backup_swift_auth = per_user`, end to end: the stock
//! OpenStack client behind a real Keystone, and a radosgw that takes Keystone tokens
//! (`scripts/ceph-dev.sh rgw-keystone`). Each project's backups go into its own Swift
//! account (`backup_swift_url` + the project id), reached with the caller's token,
//! which the host adds to the driver's requests (`grants.caller_token`) and the
//! driver never sees. Never skipped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use holdfast_rbd::dev::DevCluster;
use serde_json::Value;

use crate::clients::{Cloud, fill, free_port};
use crate::objectstore::{bucket_objects, rgw_cluster};
use crate::support::sha256_file;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The objects of `project`'s container, as radosgw itself lists them (a Keystone
/// project is a radosgw tenant: its buckets are `<project>/<name>`).
fn account_objects(dev: &DevCluster, project: &str, container: &str) -> Vec<String> {
    bucket_objects(dev, &format!("{project}/{container}"))
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// Wait until `user` no longer sees backup `backup`.
fn wait_deleted(c: &Cloud, user: &str, backup: &str) {
    let t = Instant::now();
    loop {
        let list = c.json(user, "openstack", &["volume", "backup", "list", "-f", "json"]);
        let row = list.as_array().unwrap().iter().find(|b| b["ID"] == backup).cloned();
        match row {
            None => return,
            Some(b) => {
                assert_ne!(b["Status"], "error", "delete of {backup} failed:\n{}", c.server.log());
                assert!(t.elapsed() < Duration::from_secs(120), "backup {backup} not deleted: {b}");
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn per_user_swift_keeps_each_projects_backups_in_its_own_account() {
    let (dev, _rgw) = rgw_cluster();
    let (ks_port, rgw_port) = (free_port(), free_port());
    let out = Command::new("bash")
        .arg(repo().join("scripts/ceph-dev.sh"))
        .arg("rgw-keystone")
        .arg(&dev.dir)
        .args(["--keystone-url", &format!("http://127.0.0.1:{ks_port}"), "--port", &rgw_port.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "ceph-dev.sh rgw-keystone:\n{}", String::from_utf8_lossy(&out.stderr));

    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let container = format!("peruser{}", std::process::id());
    let config = work.path().join("holdfast.toml");
    // backup_swift_auth is left out: per_user is Cinder's default.
    std::fs::write(
        &config,
        format!(
            "default_backend = \"swift\"\n[backends.swift]\ndriver = \"swift\"\n\
             settings = {{ backup_swift_url = \"http://127.0.0.1:{rgw_port}/swift/v1/AUTH_\", \
             backup_swift_container = \"{container}\", backup_swift_object_size = 4194304 }}\n\
             grants = {{ network = [\"127.0.0.1:{rgw_port}\"], caller_token = true }}\n"
        ),
    )
    .unwrap();
    let c = Cloud::start_with("openstack-swift", ks_port, &["--config", config.to_str().unwrap()]);
    let osc = |user: &str, args: &[&str]| c.json(user, "openstack", args);
    let (alpha, beta) = (c.project("alpha").to_owned(), c.project("beta").to_owned());
    let services = osc("alice-admin", &["volume", "service", "list", "-f", "json"]);
    assert_eq!(services[0]["State"], "up", "the backend's setup reached radosgw without a caller: {services}");

    // alice (alpha): a full backup lands in alpha's account, and only there.
    let va = id(&osc("alice-member", &["volume", "create", "--size", "1", "pu-a", "-f", "json"]));
    c.wait("alice-member", &["volume"], &va, "available");
    fill(&c.volume_path(&va), 3);
    let full = id(&osc("alice-member", &["volume", "backup", "create", "--name", "pu-full", &va, "-f", "json"]));
    c.wait("alice-member", &["volume", "backup"], &full, "available");
    let in_alpha = account_objects(&dev, &alpha, &container);
    assert!(!in_alpha.is_empty(), "no objects in alpha's account:\n{}", c.server.log());
    assert!(in_alpha.iter().all(|o| o.starts_with(&format!("volume_{va}/"))), "{in_alpha:?}");
    assert!(in_alpha.iter().any(|o| o.ends_with("_metadata")), "{in_alpha:?}");
    assert!(account_objects(&dev, &beta, &container).is_empty());

    // bob (beta): his backup goes to beta's account; alpha's is untouched.
    let vb = id(&osc("bob-member", &["volume", "create", "--size", "1", "pu-b", "-f", "json"]));
    c.wait("bob-member", &["volume"], &vb, "available");
    fill(&c.volume_path(&vb), 5);
    let bobs = id(&osc("bob-member", &["volume", "backup", "create", &vb, "-f", "json"]));
    c.wait("bob-member", &["volume", "backup"], &bobs, "available");
    let in_beta = account_objects(&dev, &beta, &container);
    assert!(!in_beta.is_empty() && in_beta.iter().all(|o| o.starts_with(&format!("volume_{vb}/"))), "{in_beta:?}");
    assert_eq!(account_objects(&dev, &alpha, &container), in_alpha, "beta's backup touched alpha's account");

    // alice: an incremental, restored onto a new volume bit for bit.
    fill(&c.volume_path(&va), 9);
    let want = sha256_file(&c.volume_path(&va));
    let inc = id(&osc("alice-member", &["volume", "backup", "create", "--incremental", &va, "-f", "json"]));
    c.wait("alice-member", &["volume", "backup"], &inc, "available");
    let r = osc("alice-member", &["volume", "backup", "restore", &inc, "pu-restored", "-f", "json"]);
    let restored = r["volume_id"].as_str().unwrap().to_owned();
    c.wait("alice-member", &["volume"], &restored, "available");
    c.wait("alice-member", &["volume", "backup"], &inc, "available");
    assert_eq!(sha256_file(&c.volume_path(&restored)), want, "the incremental chain restores the changed volume");

    // Deletes reach each account with its own caller's token.
    c.ok("alice-member", "openstack", &["volume", "backup", "delete", &inc]);
    wait_deleted(&c, "alice-member", &inc);
    c.ok("alice-member", "openstack", &["volume", "backup", "delete", &full]);
    c.ok("bob-member", "openstack", &["volume", "backup", "delete", &bobs]);
    wait_deleted(&c, "alice-member", &full);
    wait_deleted(&c, "bob-member", &bobs);
    assert_eq!(account_objects(&dev, &alpha, &container), Vec::<String>::new());
    assert_eq!(account_objects(&dev, &beta, &container), Vec::<String>::new());
    assert!(!c.server.log().contains("gAAAA"), "a Keystone token reached the log");
}
