//! The `backups` table's writes: status compare-and-sets and targeted updates. Ids start
//! `bk-`, projects `bp-`.

use holdfast_db::Db;
use holdfast_db::backups::FAIL_REASON_MAX_CHARS;
use holdfast_types::{Backup, BackupStatus, Timestamp};

use crate::backups::get;
use crate::{full_backup, new_backup};

pub async fn suite(db: &Db) {
    transitions_are_compare_and_set(db).await;
    finishes_only_creating_backups(db).await;
    fails_with_truncated_reason(db).await;
    sets_location_and_service(db).await;
    finds_location_clashes(db).await;
    updates_every_column(db).await;
    counts_dependents(db).await;
}

async fn counts_dependents(db: &Db) {
    db.insert_backup(&new_backup("bk-dep", "bp-dep", 10)).await.unwrap();
    assert!(db.adjust_dependents("bk-dep", 1).await.unwrap());
    assert!(db.adjust_dependents("bk-dep", 1).await.unwrap());
    assert_eq!(get(db, "bk-dep").await.num_dependent_backups, 2);
    db.adjust_dependents("bk-dep", -5).await.unwrap();
    assert_eq!(get(db, "bk-dep").await.num_dependent_backups, 0, "never below zero");
    assert!(!db.adjust_dependents("bk-missing", 1).await.unwrap());

    // Children by status: only the asked-for statuses of live rows count.
    use BackupStatus::*;
    for (id, status) in [("bk-dep-a", Available), ("bk-dep-b", Creating), ("bk-dep-c", Error)] {
        let child = Backup { parent_id: Some("bk-dep".into()), status, ..new_backup(id, "bp-dep", 20) };
        db.insert_backup(&child).await.unwrap();
    }
    assert_eq!(db.count_children_in("bk-dep", &[Available, Restoring, Deleting]).await.unwrap(), 1);
    assert_eq!(db.count_children_in("bk-dep", &[Available, Creating, Error]).await.unwrap(), 3);
    assert_eq!(db.count_children_in("bk-dep", &[]).await.unwrap(), 0);
    db.soft_delete_backup("bk-dep-a").await.unwrap();
    assert_eq!(db.count_children_in("bk-dep", &[Available, Deleted]).await.unwrap(), 0, "deleted rows never count");
}

async fn transitions_are_compare_and_set(db: &Db) {
    use BackupStatus::*;
    let b = new_backup("bk-cas", "bp-cas", 10);
    db.insert_backup(&b).await.unwrap();

    assert!(!db.transition_backup("bk-cas", &[Available, Error], Deleting).await.unwrap());
    assert!(!db.transition_backup("bk-cas", &[], Deleting).await.unwrap());
    assert!(!db.transition_backup("bk-nope", &[Creating], Available).await.unwrap());
    assert_eq!(get(db, "bk-cas").await, b, "refused transitions change nothing");

    let before = Timestamp::now();
    assert!(db.transition_backup("bk-cas", &[Creating, Restoring], Available).await.unwrap());
    let got = get(db, "bk-cas").await;
    assert_eq!(got.status, Available);
    assert!(got.updated_at.unwrap() >= before);
    assert_eq!(Backup { status: Creating, updated_at: None, ..got }, b, "only status and updated_at");

    // Two racers: exactly one wins.
    let (x, y) = tokio::join!(
        db.transition_backup("bk-cas", &[Available], Deleting),
        db.transition_backup("bk-cas", &[Available], Restoring),
    );
    assert!(x.unwrap() ^ y.unwrap());
}

async fn finishes_only_creating_backups(db: &Db) {
    db.insert_backup(&new_backup("bk-fin", "bp-fin", 10)).await.unwrap();
    let before = Timestamp::now();
    assert!(db.finish_backup("bk-fin", 42, "bucket", "backups/bk-fin", 5, 5 << 30).await.unwrap());
    let got = get(db, "bk-fin").await;
    assert_eq!(got.status, BackupStatus::Available);
    assert_eq!(got.object_count, 42);
    assert_eq!(got.container.as_deref(), Some("bucket"));
    assert_eq!(got.service_metadata.as_deref(), Some("backups/bk-fin"));
    assert_eq!((got.size, got.size_bytes), (5, 5 << 30));
    assert!(got.updated_at.unwrap() >= before);

    // No longer creating: refused, nothing overwritten.
    assert!(!db.finish_backup("bk-fin", 1, "other", "other", 1, 1).await.unwrap());
    assert_eq!(get(db, "bk-fin").await, got);
    let failed = Backup { status: BackupStatus::Error, ..new_backup("bk-fin-err", "bp-fin", 11) };
    db.insert_backup(&failed).await.unwrap();
    assert!(!db.finish_backup("bk-fin-err", 1, "c", "m", 1, 1).await.unwrap());
    assert_eq!(get(db, "bk-fin-err").await, failed);
}

async fn fails_with_truncated_reason(db: &Db) {
    use BackupStatus::*;
    db.insert_backup(&new_backup("bk-fail", "bp-fail", 10)).await.unwrap();
    // Multi-byte characters: truncation counts characters and never splits one.
    let reason = "é".repeat(200) + &"x".repeat(200);
    assert!(!db.fail_backup("bk-fail", &[Available, Deleting], &reason).await.unwrap());
    assert_eq!(get(db, "bk-fail").await.status, Creating);

    let before = Timestamp::now();
    assert!(db.fail_backup("bk-fail", &[Creating, Restoring], &reason).await.unwrap());
    let got = get(db, "bk-fail").await;
    assert_eq!(got.status, Error);
    let stored = got.fail_reason.unwrap();
    assert_eq!(stored.chars().count(), FAIL_REASON_MAX_CHARS);
    assert_eq!(stored, reason.chars().take(255).collect::<String>());
    assert!(got.updated_at.unwrap() >= before);

    // A short reason is kept whole; failing twice needs Error in `from`.
    assert!(!db.fail_backup("bk-fail", &[Creating], "again").await.unwrap());
    assert!(db.fail_backup("bk-fail", &[Error], "short").await.unwrap());
    assert_eq!(get(db, "bk-fail").await.fail_reason.as_deref(), Some("short"));
}

async fn sets_location_and_service(db: &Db) {
    let b = new_backup("bk-loc", "bp-loc", 10);
    db.insert_backup(&b).await.unwrap();
    assert!(db.set_backup_service("bk-loc", "holdfast.posix").await.unwrap());
    assert!(db.set_backup_location("bk-loc", "cont", "prefix/bk-loc").await.unwrap());
    let got = get(db, "bk-loc").await;
    assert_eq!(got.service.as_deref(), Some("holdfast.posix"));
    assert_eq!(got.container.as_deref(), Some("cont"));
    assert_eq!(got.service_metadata.as_deref(), Some("prefix/bk-loc"));
    assert!(got.updated_at.is_some());
    assert_eq!(got.status, BackupStatus::Creating);
    assert!(!db.set_backup_service("bk-nope", "x").await.unwrap());
    assert!(!db.set_backup_location("bk-nope", "x", "y").await.unwrap());
}

async fn finds_location_clashes(db: &Db) {
    for id in ["bk-clash-a", "bk-clash-b", "bk-clash-gone"] {
        db.insert_backup(&new_backup(id, "bp-clash", 10)).await.unwrap();
    }
    db.set_backup_location("bk-clash-a", "shared", "vol_a_backup_1").await.unwrap();
    db.set_backup_location("bk-clash-gone", "shared", "vol_z").await.unwrap();
    db.soft_delete_backup("bk-clash-gone").await.unwrap();
    let clash = |prefix: &'static str, container: &'static str| async move {
        db.backup_location_clash("bk-clash-b", container, prefix).await.unwrap()
    };
    let a = Some("bk-clash-a".to_owned());
    assert_eq!(clash("vol_a_backup_1", "shared").await, a, "the same prefix");
    assert_eq!(clash("vol_a", "shared").await, a, "a prefix of its prefix");
    assert_eq!(clash("vol_a_backup_1_more", "shared").await, a, "its prefix is a prefix of ours");
    assert_eq!(clash("vol_a_backup_2", "shared").await, None);
    assert_eq!(clash("vol_a_backup_1", "other").await, None, "another container");
    assert_eq!(clash("vol_z", "shared").await, None, "a deleted backup's objects are gone");
    assert_eq!(db.backup_location_clash("bk-clash-a", "shared", "vol_a_backup_1").await.unwrap(), None, "itself");
}

async fn updates_every_column(db: &Db) {
    db.insert_backup(&new_backup("bk-upd", "bp-upd", 10)).await.unwrap();
    // Every column but id changes, including Some -> None -> Some and both booleans.
    let edited = Backup {
        project_id: "bp-upd-2".into(),
        user_id: "user-2".into(),
        volume_id: "vol-9".into(),
        created_at: Timestamp(11),
        deleted: true,
        deleted_at: Some(Timestamp(12)),
        ..full_backup("bk-upd", "ignored", 10)
    };
    let before = Timestamp::now();
    assert!(db.update_backup(&edited).await.unwrap());
    let got = get(db, "bk-upd").await;
    assert!(got.updated_at.unwrap() >= before);
    assert_eq!(got, Backup { updated_at: got.updated_at, ..edited.clone() });

    let cleared = Backup { deleted: false, deleted_at: None, ..new_backup("bk-upd", "bp-upd", 10) };
    assert!(db.update_backup(&cleared).await.unwrap());
    let got = get(db, "bk-upd").await;
    assert_eq!(got, Backup { updated_at: got.updated_at, ..cleared });
    assert!(!db.update_backup(&new_backup("bk-nope", "bp-upd", 1)).await.unwrap());
}
