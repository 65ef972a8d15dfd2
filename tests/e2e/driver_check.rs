//! `holdfast driver check`: the conformance kit passes the posix driver and fails a
//! driver that breaks the contract, saying which cases and why.

use std::process::Command;

use crate::support::BIN;

fn check(driver: &str) -> (bool, String) {
    let out = Command::new(BIN).args(["driver", "check", driver, "--size-mib", "16"]).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn the_posix_driver_passes_and_a_broken_one_fails() {
    let (ok, text) = check("posix");
    assert!(ok, "{text}");
    let passed = text.lines().filter(|l| l.starts_with("PASS")).count();
    assert_eq!(passed, 10, "{text}");
    for case in [
        "incremental backup after a change",
        "restore of the chain, bit for bit",
        "restore after a restart",
        "cancelled backup",
    ] {
        assert!(text.contains(&format!("PASS  {case}")), "{case}: {text}");
    }

    // The template a vendor copies passes as it stands.
    let (ok, text) = check(holdfast_plugin_artifacts::TEMPLATE);
    assert!(ok, "{text}");
    assert_eq!(text.lines().filter(|l| l.starts_with("PASS")).count(), 10, "{text}");

    let (ok, text) = check(holdfast_plugin_artifacts::HOSTILE_TRAP_MID_BACKUP);
    assert!(!ok, "{text}");
    assert!(text.contains("FAIL  full backup: ") && text.contains("trapped during backup"), "{text}");

    let (ok, text) = check(holdfast_plugin_artifacts::HOSTILE_WRONG_WORLD);
    assert!(!ok && text.contains("FAIL  load: ") && text.contains("not a Holdfast backup driver"), "{text}");
}

/// The Ceph driver passes the same kit on the dev cluster (a file volume as its source:
/// every backup a whole copy into the chain's base image, each a snapshot).
#[test]
fn the_ceph_driver_passes_on_a_real_cluster() {
    let dev = crate::rbd::dev();
    let out = Command::new(BIN)
        .args(["driver", "check", "ceph", "--size-mib", "16", "--setting", "backup_ceph_user=admin", "--rbd-conf"])
        .arg(&dev.conf)
        .args(["--rbd-user", "admin", "--rbd-pool", "backups"])
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert_eq!(text.lines().filter(|l| l.starts_with("PASS")).count(), 10, "{text}");
}
