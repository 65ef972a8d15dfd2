//! Create, restore and delete through the manager, and what each failure leaves behind.

use std::sync::Arc;
use std::time::Duration;

use holdfast_db::Db;
use holdfast_types::{BackupStatus, VolumeStatus};

use super::fake::FakeDriver;
use crate::{CreateBackup, Manager, ManagerError, RegisterVolume, RequestContext, RestoreRequest};

const MIB4: usize = 4 << 20;

struct Rig {
    m: Arc<Manager>,
    driver: Arc<FakeDriver>,
    ctx: RequestContext,
    dir: tempfile::TempDir,
}

async fn rig_with(driver: Arc<FakeDriver>) -> Rig {
    rig_with_slots(driver, 2).await
}

/// `slots`: backups and restores moving data at once (more wait their turn).
async fn rig_with_slots(driver: Arc<FakeDriver>, slots: usize) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::connect("sqlite::memory:").await.unwrap();
    let config = super::config(dir.path(), slots, Duration::from_millis(50));
    let m = Manager::new(db, config, vec![super::backend("default", "nova", &driver)], "default").await;
    Rig { m, driver, ctx: super::admin(), dir }
}

async fn rig() -> Rig {
    rig_with(FakeDriver::new()).await
}

impl Rig {
    /// A 4 MiB volume file whose bytes depend on `seed`, adopted by the manager.
    async fn volume(&self, name: &str, seed: u8) -> String {
        let path = self.dir.path().join("in").join(name);
        let data: Vec<u8> = (0..MIB4).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
        std::fs::write(&path, data).unwrap();
        let req = RegisterVolume { path: path.display().to_string(), name: Some(name.into()), description: None };
        self.m.register_volume(&self.ctx, req).await.unwrap().id
    }

    fn bytes(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.path().join("in").join(name)).unwrap()
    }

    async fn backup(&self, volume_id: &str) -> Result<String, ManagerError> {
        let req = CreateBackup { volume_id: volume_id.into(), ..Default::default() };
        Ok(self.m.create_backup(&self.ctx, req).await?.id)
    }

    /// Wait until the backup leaves `from`; its new status.
    async fn settle(&self, id: &str, from: BackupStatus) -> Option<BackupStatus> {
        for _ in 0..500 {
            match self.m.get_backup(&self.ctx, id).await {
                Ok(b) if b.status == from => tokio::time::sleep(Duration::from_millis(10)).await,
                Ok(b) => return Some(b.status),
                Err(ManagerError::NotFound(_)) => return None,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("backup {id} stayed {from}");
    }

    async fn volume_status(&self, id: &str) -> VolumeStatus {
        self.m.get_volume(&self.ctx, id).await.unwrap().status
    }

    async fn volume_settles(&self, id: &str, from: VolumeStatus) -> VolumeStatus {
        for _ in 0..500 {
            let s = self.volume_status(id).await;
            if s != from {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("volume {id} stayed {from}");
    }
}

#[tokio::test]
async fn a_backup_restores_bit_for_bit_and_deletes() {
    let r = rig().await;
    let src = r.volume("src", 1).await;
    let dst = r.volume("dst", 2).await;
    let id = r.backup(&src).await.unwrap();
    assert_eq!(r.settle(&id, BackupStatus::Creating).await, Some(BackupStatus::Available));
    assert_eq!(r.volume_status(&src).await, VolumeStatus::Available);
    assert!(r.driver.stored(&id));

    let req = RestoreRequest { volume_id: Some(dst.clone()), name: None };
    r.m.restore_backup(&r.ctx, &id, req).await.unwrap();
    assert_eq!(r.volume_settles(&dst, VolumeStatus::RestoringBackup).await, VolumeStatus::Available);
    assert_eq!(r.settle(&id, BackupStatus::Restoring).await, Some(BackupStatus::Available));
    assert!(r.bytes("dst") == r.bytes("src"), "restored bytes differ");

    r.m.delete_backup(&r.ctx, &id).await.unwrap();
    assert_eq!(r.settle(&id, BackupStatus::Deleting).await, None);
    assert!(!r.driver.stored(&id));
}

#[tokio::test]
async fn a_failed_backup_is_marked_error_with_the_reason() {
    let r = rig().await;
    let src = r.volume("src", 1).await;
    r.driver.fail("backup");
    let id = r.backup(&src).await.unwrap();
    assert_eq!(r.settle(&id, BackupStatus::Creating).await, Some(BackupStatus::Error));
    let b = r.m.get_backup(&r.ctx, &id).await.unwrap();
    let reason = b.fail_reason.unwrap_or_default();
    assert!(reason.contains("backup told to fail"), "{reason}");
    assert_eq!(r.volume_status(&src).await, VolumeStatus::Available, "the volume is usable again");
}

#[tokio::test]
async fn a_failed_restore_leaves_the_volume_error_restoring_and_the_backup_available() {
    let r = rig().await;
    let src = r.volume("src", 1).await;
    let dst = r.volume("dst", 2).await;
    let id = r.backup(&src).await.unwrap();
    assert_eq!(r.settle(&id, BackupStatus::Creating).await, Some(BackupStatus::Available));
    r.driver.fail("restore");
    r.m.restore_backup(&r.ctx, &id, RestoreRequest { volume_id: Some(dst.clone()), name: None }).await.unwrap();
    assert_eq!(r.volume_settles(&dst, VolumeStatus::RestoringBackup).await, VolumeStatus::ErrorRestoring);
    assert_eq!(r.settle(&id, BackupStatus::Restoring).await, Some(BackupStatus::Available));
}

#[tokio::test]
async fn a_driver_whose_setup_fails_keeps_the_service_down_until_a_retry_succeeds() {
    let driver = FakeDriver::new();
    driver.fail("setup");
    let r = rig_with(driver).await;
    let src = r.volume("src", 1).await;
    let err = r.backup(&src).await.unwrap_err();
    assert!(matches!(err, ManagerError::ServiceDown(ref why) if why.contains("setup told to fail")), "{err}");
    assert_eq!(r.volume_status(&src).await, VolumeStatus::Available, "a refused create changes nothing");
    r.driver.heal();
    // Setup is retried every periodic_interval (50 ms here).
    let mut id = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if let Ok(b) = r.backup(&src).await {
            id = Some(b);
            break;
        }
    }
    let id = id.expect("the service came up");
    assert_eq!(r.settle(&id, BackupStatus::Creating).await, Some(BackupStatus::Available));
}

#[tokio::test]
async fn a_force_delete_cancels_a_running_backup() {
    let r = rig().await;
    let src = r.volume("src", 1).await;
    r.driver.hold_backups(true);
    let id = r.backup(&src).await.unwrap();
    // Wait for the driver call to start (the progress tracker knows it).
    for _ in 0..500 {
        if r.m.progress(&id).is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    r.m.force_delete(&r.ctx, &id).await.unwrap();
    assert_eq!(r.settle(&id, BackupStatus::Deleting).await, None);
    assert!(!r.driver.stored(&id));
    assert_eq!(r.volume_settles(&src, VolumeStatus::BackingUp).await, VolumeStatus::Available);
    r.driver.hold_backups(false);
}

#[tokio::test]
async fn a_backing_up_volume_refuses_a_second_backup() {
    let r = rig().await;
    let src = r.volume("src", 1).await;
    r.driver.hold_backups(true);
    let id = r.backup(&src).await.unwrap();
    let err = r.backup(&src).await.unwrap_err();
    assert!(matches!(err, ManagerError::Invalid(_)), "{err}");
    r.driver.hold_backups(false);
    assert_eq!(r.settle(&id, BackupStatus::Creating).await, Some(BackupStatus::Available));
}

#[tokio::test]
async fn a_reset_while_a_restore_waits_for_its_slot_cancels_it() {
    let r = rig_with_slots(FakeDriver::new(), 1).await;
    let src = r.volume("src", 1).await;
    let dst = r.volume("dst", 2).await;
    let busy = r.volume("busy", 3).await;
    let id = r.backup(&src).await.unwrap();
    assert_eq!(r.settle(&id, BackupStatus::Creating).await, Some(BackupStatus::Available));
    // The only slot is taken by a backup the driver holds.
    r.driver.hold_backups(true);
    let blocker = r.backup(&busy).await.unwrap();
    r.m.restore_backup(&r.ctx, &id, RestoreRequest { volume_id: Some(dst.clone()), name: None }).await.unwrap();
    r.m.reset_status(&r.ctx, &id, "error").await.unwrap();
    r.driver.hold_backups(false);
    assert_eq!(r.volume_settles(&dst, VolumeStatus::RestoringBackup).await, VolumeStatus::Error);
    assert!(r.bytes("dst") != r.bytes("src"), "the cancelled restore wrote nothing");
    assert_eq!(r.settle(&blocker, BackupStatus::Creating).await, Some(BackupStatus::Available));
}

#[tokio::test]
async fn a_force_delete_while_a_backup_waits_for_its_slot_never_runs_it() {
    let r = rig_with_slots(FakeDriver::new(), 1).await;
    let (busy, src) = (r.volume("busy", 3).await, r.volume("src", 1).await);
    r.driver.hold_backups(true);
    let blocker = r.backup(&busy).await.unwrap();
    let queued = r.backup(&src).await.unwrap();
    r.m.force_delete(&r.ctx, &queued).await.unwrap();
    r.driver.hold_backups(false);
    assert_eq!(r.settle(&queued, BackupStatus::Deleting).await, None);
    assert!(!r.driver.stored(&queued), "the driver never wrote it");
    assert_eq!(r.volume_settles(&src, VolumeStatus::BackingUp).await, VolumeStatus::Available);
    assert_eq!(r.settle(&blocker, BackupStatus::Creating).await, Some(BackupStatus::Available));
}

/// Start-up recovery puts every row right at once and leaves the driver calls (a
/// hung one here) to the background: the server can bind while they finish.
#[tokio::test]
async fn recovery_never_waits_on_a_hung_driver() {
    let r = rig().await;
    let vol = r.volume("v", 1).await;
    let doomed = r.backup(&vol).await.unwrap();
    r.settle(&doomed, BackupStatus::Creating).await;
    r.volume_settles(&vol, VolumeStatus::BackingUp).await;
    let dead = r.backup(&vol).await.unwrap();
    r.settle(&dead, BackupStatus::Creating).await;
    // As a killed process leaves them: one mid-delete, one mid-backup.
    r.m.db.transition_backup(&doomed, &[BackupStatus::Available], BackupStatus::Deleting).await.unwrap();
    r.m.db.transition_backup(&dead, &[BackupStatus::Available], BackupStatus::Creating).await.unwrap();
    r.driver.hold_deletes(true);
    tokio::time::timeout(Duration::from_secs(2), r.m.recover()).await.expect("recover returned").unwrap();
    let dead_row = r.m.get_backup(&r.ctx, &dead).await.unwrap();
    assert_eq!(dead_row.status, BackupStatus::Error, "marked before any driver call");
    assert_eq!(r.m.get_backup(&r.ctx, &doomed).await.unwrap().status, BackupStatus::Deleting);
    r.driver.hold_deletes(false);
    assert_eq!(r.settle(&doomed, BackupStatus::Deleting).await, None, "the resumed delete finished");
    for _ in 0..500 {
        if !r.driver.stored(&dead) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!r.driver.stored(&dead), "the dead backup's objects were removed in the background");
}

/// No backup may be handed another's objects: not by a driver recording another
/// backup's location, nor by an imported record claiming it — deleting either would
/// delete the other's objects.
#[tokio::test]
async fn a_backup_never_gets_another_backups_objects() {
    use base64::Engine;
    let r = rig().await;
    let vol = r.volume("v", 1).await;
    let honest = r.backup(&vol).await.unwrap();
    assert_eq!(r.settle(&honest, BackupStatus::Creating).await, Some(BackupStatus::Available));
    r.volume_settles(&vol, VolumeStatus::BackingUp).await;

    r.driver.steal_location_of(&honest);
    let thief = r.backup(&vol).await.unwrap();
    assert_eq!(r.settle(&thief, BackupStatus::Creating).await, Some(BackupStatus::Error));
    let why = r.m.get_backup(&r.ctx, &thief).await.unwrap().fail_reason.unwrap_or_default();
    assert!(why.contains(&format!("overlap backup {honest}'s objects")), "{why}");

    // A record that overlaps the honest backup's objects without naming exactly them
    // (its delete would remove some of them): refused.
    let record = r.m.export_record(&r.ctx, &honest).await.unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut row: serde_json::Value = serde_json::from_slice(&b64.decode(&record.backup_url).unwrap()).unwrap();
    row["id"] = "11111111-2222-4333-8444-555555555555".into();
    let honest_prefix = row["service_metadata"].as_str().unwrap().to_owned();
    row["service_metadata"] = honest_prefix[..honest_prefix.len() - 4].into();
    let forged = b64.encode(serde_json::to_vec(&row).unwrap());
    let e = r.m.import_record(&r.ctx, &record.backup_service, &forged).await.unwrap_err().to_string();
    assert!(e.contains(&format!("overlap backup {honest}'s")), "{e}");

    // The same objects under a new id (tempest's import) are a second row for them:
    // deleting that row keeps the objects the honest backup still needs.
    row["service_metadata"] = honest_prefix.into();
    let url = b64.encode(serde_json::to_vec(&row).unwrap());
    let alias = r.m.import_record(&r.ctx, &record.backup_service, &url).await.unwrap().id;
    assert_eq!(r.settle(&alias, BackupStatus::Creating).await, Some(BackupStatus::Available));
    r.m.delete_backup(&r.ctx, &alias).await.unwrap();
    assert_eq!(r.settle(&alias, BackupStatus::Deleting).await, None);
    assert!(!r.driver.was_deleted(&alias), "the driver was not asked to delete shared objects");
    assert!(r.driver.stored(&honest), "the honest backup's objects are untouched");
    // Once the last row goes, its objects go too.
    r.m.delete_backup(&r.ctx, &honest).await.unwrap();
    assert_eq!(r.settle(&honest, BackupStatus::Deleting).await, None);
    assert!(r.driver.was_deleted(&honest));
}
