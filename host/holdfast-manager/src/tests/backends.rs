//! Several backends at once: zones pick the backend, each backup goes back to the
//! backend that wrote it, and one backend down leaves the others serving.

use std::sync::Arc;
use std::time::Duration;

use holdfast_db::Db;
use holdfast_types::BackupStatus;

use super::backend;
use super::fake::FakeDriver;
use crate::{CreateBackup, Manager, ManagerError, RegisterVolume, RequestContext, RestoreRequest};

struct Two {
    m: Arc<Manager>,
    a: Arc<FakeDriver>,
    b: Arc<FakeDriver>,
    ctx: RequestContext,
    dir: tempfile::TempDir,
}

async fn two(b_fails_setup: bool) -> Two {
    let (a, b) = (FakeDriver::new(), FakeDriver::new());
    if b_fails_setup {
        b.fail("setup");
    }
    two_with(a, b, 4).await
}

/// Backend `a` (zone az1, the default) and `b` (az2) on one host with `slots` host slots.
async fn two_with(a: Arc<FakeDriver>, b: Arc<FakeDriver>, slots: usize) -> Two {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::connect("sqlite::memory:").await.unwrap();
    let config = super::config(dir.path(), slots, Duration::from_secs(3600));
    let m = Manager::new(db, config, vec![backend("a", "az1", &a), backend("b", "az2", &b)], "a").await;
    Two { m, a, b, ctx: super::admin(), dir }
}

impl Two {
    async fn volume(&self, name: &str) -> String {
        let path = self.dir.path().join("in").join(name);
        std::fs::write(&path, vec![name.len() as u8; 1 << 20]).unwrap();
        let req = RegisterVolume { path: path.display().to_string(), name: Some(name.into()), description: None };
        self.m.register_volume(&self.ctx, req).await.unwrap().id
    }

    async fn backup(&self, vol: &str, zone: Option<&str>, incremental: bool) -> Result<String, ManagerError> {
        let req = CreateBackup {
            volume_id: vol.into(),
            availability_zone: zone.map(str::to_owned),
            incremental,
            ..Default::default()
        };
        Ok(self.m.create_backup(&self.ctx, req).await?.id)
    }

    async fn available(&self, id: &str) -> holdfast_types::Backup {
        for _ in 0..500 {
            let b = self.m.get_backup(&self.ctx, id).await.unwrap();
            if b.status != BackupStatus::Creating && b.status != BackupStatus::Restoring {
                assert_eq!(b.status, BackupStatus::Available, "{:?}", b.fail_reason);
                return b;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("backup {id} never settled");
    }
}

#[tokio::test]
async fn the_zone_picks_the_backend_and_the_backup_goes_back_to_it() {
    let t = two(false).await;
    let vol = t.volume("v").await;
    let on_a = t.backup(&vol, None, false).await.unwrap();
    assert_eq!(t.available(&on_a).await.availability_zone.as_deref(), Some("az1"));
    let on_b = t.backup(&vol, Some("az2"), false).await.unwrap();
    assert_eq!(t.available(&on_b).await.availability_zone.as_deref(), Some("az2"));
    assert!(t.a.stored(&on_a) && !t.b.stored(&on_a));
    assert!(t.b.stored(&on_b) && !t.a.stored(&on_b));
    let origin = t.m.db().backup_origin(&on_b).await.unwrap().unwrap();
    assert_eq!(
        (origin.backend.as_str(), origin.driver_name.as_str(), origin.driver_version.as_str()),
        ("b", "fake", "1.0.0")
    );

    // An incremental in az2 builds on az2's backup, never on az1's newer one.
    let newer_on_a = t.backup(&vol, Some("az1"), false).await.unwrap();
    t.available(&newer_on_a).await;
    let inc = t.backup(&vol, Some("az2"), true).await.unwrap();
    assert_eq!(t.available(&inc).await.parent_id.as_deref(), Some(on_b.as_str()));

    // Restore reads from the backend that wrote it.
    let dst = t.volume("dst").await;
    t.m.restore_backup(&t.ctx, &on_b, RestoreRequest { volume_id: Some(dst), name: None }).await.unwrap();
    t.available(&on_b).await;

    let err = t.backup(&vol, Some("az9"), false).await.unwrap_err();
    assert!(matches!(err, ManagerError::Invalid(ref m) if m.contains("az9")), "{err}");
    assert_eq!(t.m.service_status().await.len(), 2);
}

#[tokio::test]
async fn a_backend_down_refuses_its_own_work_and_the_others_go_on() {
    let t = two(true).await;
    let vol = t.volume("v").await;
    let err = t.backup(&vol, Some("az2"), false).await.unwrap_err();
    assert!(matches!(err, ManagerError::ServiceDown(ref m) if m.contains("backend b")), "{err}");
    let ok = t.backup(&vol, None, false).await.unwrap();
    t.available(&ok).await;
    let status = t.m.service_status().await;
    assert!(status.iter().any(|s| s.backend == "a" && s.state.is_ok() && s.is_default));
    assert!(status.iter().any(|s| s.backend == "b" && s.state.is_err()));
}

#[tokio::test]
async fn a_reload_upgrades_adds_and_removes_without_disturbing_running_work() {
    let t = two(false).await;
    let vol = t.volume("v").await;
    // A backup runs on a's old driver across the upgrade.
    t.a.hold_backups(true);
    let long = t.backup(&vol, None, false).await.unwrap();
    let a2 = FakeDriver::new();
    let c = FakeDriver::new();
    let wanted = vec![backend("a", "az1", &a2), backend("b", "az2", &t.b), backend("c", "az3", &c)];
    let r = t.m.apply_backends(wanted, vec![], "a", false).await.unwrap();
    assert_eq!((r.upgraded, r.added, r.unchanged), (vec!["a".to_owned()], vec!["c".to_owned()], vec!["b".to_owned()]));
    assert!(
        t.m.service_status().await.iter().any(|s| s.backend == "a" && s.operations_running == 0),
        "the new version runs nothing yet"
    );
    t.a.hold_backups(false);
    t.available(&long).await;
    assert!(t.a.stored(&long) && !a2.stored(&long), "the running backup finished on the driver it started on");
    let vol2 = t.volume("w").await;
    let after = t.backup(&vol2, None, false).await.unwrap();
    t.available(&after).await;
    assert!(a2.stored(&after), "new backups use the new driver at once");
    let on_c = t.backup(&vol2, Some("az3"), false).await.unwrap();
    t.available(&on_c).await;

    // A new driver whose setup fails leaves the old one serving.
    let broken = FakeDriver::new();
    broken.fail("setup");
    let wanted = vec![backend("a", "az1", &broken), backend("b", "az2", &t.b), backend("c", "az3", &c)];
    let r = t.m.apply_backends(wanted, vec![], "a", false).await.unwrap();
    assert_eq!(r.failed.len(), 1, "{r:?}");
    let a = t.m.service_status().await.into_iter().find(|s| s.backend == "a").unwrap();
    assert!(a.state.is_ok() && a.last_error.as_deref().is_some_and(|e| e.contains("setup")), "{a:?}");
    let again = t.backup(&vol2, None, false).await.unwrap();
    t.available(&again).await;
    assert!(a2.stored(&again));

    // Removing c, which holds a backup: refused, then forced (kept, unavailable).
    let wanted = || vec![backend("a", "az1", &a2), backend("b", "az2", &t.b)];
    let err = t.m.apply_backends(wanted(), vec![], "a", false).await.unwrap_err();
    assert!(err.to_string().contains("backend c still holds 1 backup"), "{err}");
    assert_eq!(t.m.service_status().await.len(), 3, "a refused reload changes nothing");
    t.m.apply_backends(wanted(), vec![], "a", true).await.unwrap();
    let c_now = t.m.service_status().await.into_iter().find(|s| s.backend == "c").unwrap();
    assert!(c_now.state.is_err());
    // b holds nothing after its backups are gone; removing it is plain.
    let r = t.m.apply_backends(vec![backend("a", "az1", &a2)], vec![], "a", true).await.unwrap();
    assert!(r.removed.is_empty() || r.removed == vec!["b".to_owned()], "{r:?}");
}

#[tokio::test]
async fn a_backup_only_ever_goes_back_to_the_backend_that_wrote_it() {
    let t = two(false).await;
    let vol = t.volume("v").await;
    let on_b = t.backup(&vol, Some("az2"), false).await.unwrap();
    t.available(&on_b).await;
    // b is forced out of the configuration while it holds the backup; a (same driver
    // name, another store) must not take its delete.
    t.m.apply_backends(vec![backend("a", "az1", &t.a)], vec![], "a", true).await.unwrap();
    let err = t.m.delete_backup(&t.ctx, &on_b).await.unwrap_err();
    assert!(matches!(err, ManagerError::ServiceDown(_)), "{err}");
    assert!(t.b.stored(&on_b), "the objects are where they were");
    assert_eq!(t.m.get_backup(&t.ctx, &on_b).await.unwrap().status, BackupStatus::Available, "the row is kept");

    // Later reloads are not blocked by the kept backend, and configuring it again
    // brings it back, setup and all.
    let r = t.m.apply_backends(vec![backend("a", "az1", &t.a)], vec![], "a", false).await.unwrap();
    assert!(r.failed.is_empty(), "{r:?}");
    let r = t.m.apply_backends(vec![backend("a", "az1", &t.a), backend("b", "az2", &t.b)], vec![], "a", false).await;
    assert_eq!(r.unwrap().upgraded, vec!["b".to_owned()]);
    t.m.delete_backup(&t.ctx, &on_b).await.unwrap();
    for _ in 0..500 {
        if t.m.get_backup(&t.ctx, &on_b).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!t.b.stored(&on_b), "deleted from the store that held it");
}

#[tokio::test]
async fn work_queued_on_a_busy_backend_leaves_the_host_slots_to_the_others() {
    // The default backend allows one call at once; the other has no limit.
    let t = two_with(FakeDriver::with_instances(1), FakeDriver::new(), 2).await;
    let slow = t.a.clone();
    slow.hold_backups(true);
    let (v1, v2, v3) = (t.volume("v1").await, t.volume("v22").await, t.volume("v333").await);
    let first = t.backup(&v1, None, false).await.unwrap();
    let queued = t.backup(&v2, None, false).await.unwrap();
    // Two host slots, one taken by `first`; `queued` waits for slow's only place, not
    // for a slot, so the other backend's backup runs at once.
    let elsewhere = t.backup(&v3, Some("az2"), false).await.unwrap();
    t.available(&elsewhere).await;
    assert!(t.m.progress(&queued).is_none(), "the second backup on the slow backend still waits");
    slow.hold_backups(false);
    t.available(&first).await;
    t.available(&queued).await;
}
