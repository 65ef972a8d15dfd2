//! The `backups` table: storage, listing, soft delete, chains. Ids start `bk-`, projects
//! `bp-`.

use holdfast_db::{Db, DbError};
use holdfast_types::{Backup, BackupStatus, Timestamp};

use crate::{full_backup, new_backup};

pub async fn suite(db: &Db) {
    round_trips_every_field(db).await;
    lists_live_rows_newest_first(db).await;
    soft_delete_hides_but_keeps(db).await;
    counts_live_children(db).await;
    finds_backups_in_status(db).await;
    unparseable_rows_are_corrupt(db).await;
    usage_counts_live_rows_and_their_size(db).await;
}

async fn usage_counts_live_rows_and_their_size(db: &Db) {
    assert_eq!(db.backup_usage("bp-usage", None).await.unwrap(), (0, 0));
    for (id, created, size) in [("bk-u1", 100, 3), ("bk-u2", 200, 5), ("bk-u3", 200, 7), ("bk-u4", 300, 11)] {
        let mut b = full_backup(id, "bp-usage", created);
        b.size = size;
        db.insert_backup(&b).await.unwrap();
    }
    let mut other = full_backup("bk-u5", "bp-other-usage", 50);
    other.size = 100;
    db.insert_backup(&other).await.unwrap();
    db.soft_delete_backup("bk-u4").await.unwrap();
    assert_eq!(
        db.backup_usage("bp-usage", None).await.unwrap(),
        (3, 15),
        "deleted and other projects' rows don't count"
    );
    let before = |at, id| db.backup_usage("bp-usage", Some((Timestamp(at), id)));
    assert_eq!(before(200, "bk-u3").await.unwrap(), (2, 8), "earlier time, then same time and smaller id");
    assert_eq!(before(200, "bk-u2").await.unwrap(), (1, 3));
    assert_eq!(before(100, "bk-u1").await.unwrap(), (0, 0));
}

pub fn ids(backups: Vec<Backup>) -> Vec<String> {
    backups.into_iter().map(|b| b.id).collect()
}

pub async fn get(db: &Db, id: &str) -> Backup {
    db.get_backup(id).await.unwrap().unwrap_or_else(|| panic!("{id} missing"))
}

async fn round_trips_every_field(db: &Db) {
    let full = full_backup("bk-full", "bp-rt", 1_700_000_000_123_456);
    let bare = new_backup("bk-bare", "bp-rt", 0);
    let gone = Backup {
        status: BackupStatus::Deleted,
        deleted: true,
        deleted_at: Some(Timestamp(1_700_000_000_999_999)),
        ..full_backup("bk-gone", "bp-rt", 5)
    };
    for b in [&full, &bare, &gone] {
        db.insert_backup(b).await.unwrap();
        assert_eq!(db.get_backup(&b.id).await.unwrap().as_ref(), Some(b));
    }
    for status in BackupStatus::ALL {
        let b = Backup { status: *status, ..new_backup(&format!("bk-st-{status}"), "bp-st", 1) };
        db.insert_backup(&b).await.unwrap();
        assert_eq!(get(db, &b.id).await.status, *status);
    }
    assert_eq!(db.get_backup("bk-missing").await.unwrap(), None);
    assert!(matches!(db.insert_backup(&full).await, Err(DbError::Sqlx(_))), "duplicate id");
}

async fn lists_live_rows_newest_first(db: &Db) {
    for (id, created) in [("bk-l-a", 100), ("bk-l-c", 300), ("bk-l-b1", 200), ("bk-l-b2", 200)] {
        db.insert_backup(&new_backup(id, "bp-list", created)).await.unwrap();
    }
    let hidden = Backup { deleted: true, ..new_backup("bk-l-deleted", "bp-list", 999) };
    db.insert_backup(&hidden).await.unwrap();
    db.insert_backup(&new_backup("bk-l-other", "bp-list-other", 400)).await.unwrap();

    let listed = ids(db.list_backups(Some("bp-list")).await.unwrap());
    assert_eq!(listed, ["bk-l-c", "bk-l-b2", "bk-l-b1", "bk-l-a"]);
    assert!(db.list_backups(Some("bp-nobody")).await.unwrap().is_empty());

    let all = db.list_backups(None).await.unwrap();
    assert!(all.iter().all(|b| !b.deleted));
    assert!(all.iter().any(|b| b.id == "bk-l-other") && !all.iter().any(|b| b.id == "bk-gone"));
    let order: Vec<_> = all.iter().map(|b| (b.created_at, b.id.clone())).collect();
    let mut sorted = order.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(order, sorted, "created_at DESC, id DESC");
}

async fn soft_delete_hides_but_keeps(db: &Db) {
    let b = full_backup("bk-soft", "bp-soft", 10);
    db.insert_backup(&b).await.unwrap();
    assert_eq!(ids(db.list_backups(Some("bp-soft")).await.unwrap()), ["bk-soft"]);

    let before = Timestamp::now();
    assert!(db.soft_delete_backup("bk-soft").await.unwrap());
    assert!(db.list_backups(Some("bp-soft")).await.unwrap().is_empty());
    assert!(!ids(db.list_backups(None).await.unwrap()).contains(&"bk-soft".to_owned()));

    let got = get(db, "bk-soft").await;
    assert!(got.deleted);
    assert_eq!(got.status, BackupStatus::Deleted);
    assert!(got.deleted_at.unwrap() >= before && got.updated_at.unwrap() >= before);
    let expected = Backup {
        status: BackupStatus::Deleted,
        deleted: true,
        deleted_at: got.deleted_at,
        updated_at: got.updated_at,
        ..b
    };
    assert_eq!(got, expected, "everything else kept");
    assert!(!db.soft_delete_backup("bk-nope").await.unwrap());
}

async fn counts_live_children(db: &Db) {
    db.insert_backup(&new_backup("bk-par", "bp-kids", 1)).await.unwrap();
    for (id, created) in [("bk-kid-1", 2), ("bk-kid-2", 3), ("bk-kid-3", 4)] {
        let kid = Backup { parent_id: Some("bk-par".into()), ..new_backup(id, "bp-kids", created) };
        db.insert_backup(&kid).await.unwrap();
    }
    let grandkid = Backup { parent_id: Some("bk-kid-1".into()), ..new_backup("bk-gkid", "bp-kids", 5) };
    db.insert_backup(&grandkid).await.unwrap();

    assert_eq!(db.count_children("bk-par").await.unwrap(), 3);
    assert!(db.soft_delete_backup("bk-kid-3").await.unwrap());
    assert_eq!(db.count_children("bk-par").await.unwrap(), 2, "deleted children do not count");
    assert_eq!(db.count_children("bk-kid-1").await.unwrap(), 1);
    assert_eq!(db.count_children("bk-gkid").await.unwrap(), 0);
    assert_eq!(db.count_children("bk-nope").await.unwrap(), 0);
}

async fn finds_backups_in_status(db: &Db) {
    use BackupStatus::*;
    // Other tests left rows in many states; look only at this test's.
    for (id, status, created) in
        [("bk-rec-1", Creating, 3), ("bk-rec-2", Restoring, 1), ("bk-rec-3", Available, 2), ("bk-rec-4", Deleting, 4)]
    {
        let b = Backup { status, ..new_backup(id, "bp-rec", created) };
        db.insert_backup(&b).await.unwrap();
    }
    let gone = Backup { status: Creating, deleted: true, ..new_backup("bk-rec-gone", "bp-rec", 0) };
    db.insert_backup(&gone).await.unwrap();

    let transient: Vec<_> = BackupStatus::ALL.iter().copied().filter(|s| s.is_transient()).collect();
    let found = db.backups_in_status(&transient).await.unwrap();
    assert!(found.iter().all(|b| b.status.is_transient() && !b.deleted));
    let mine: Vec<_> = ids(found).into_iter().filter(|id| id.starts_with("bk-rec-")).collect();
    assert_eq!(mine, ["bk-rec-2", "bk-rec-1", "bk-rec-4"], "oldest first, live only");
    assert!(db.backups_in_status(&[]).await.unwrap().is_empty());
}

async fn unparseable_rows_are_corrupt(db: &Db) {
    for (id, status, deleted) in [("bk-bad-status", "exploded", 0_i64), ("bk-bad-flag", "available", 2)] {
        sqlx::query(
            "INSERT INTO backups (id, project_id, user_id, volume_id, status, size, size_bytes, \
             created_at, deleted) VALUES ($1, 'bp-bad', 'u', 'v', $2, 1, 1, 0, $3)",
        )
        .bind(id)
        .bind(status)
        .bind(deleted)
        .execute(db.pool())
        .await
        .unwrap();
        let got = db.get_backup(id).await;
        assert!(matches!(&got, Err(DbError::Corrupt(m)) if m.contains(id)), "{id}: {got:?}");
    }
    assert!(matches!(db.list_backups(Some("bp-bad")).await, Err(DbError::Corrupt(_))));
    let huge = Backup { size_bytes: 1 << 63, ..new_backup("bk-huge", "bp-bad", 1) };
    assert!(matches!(db.insert_backup(&huge).await, Err(DbError::Corrupt(_))));
    sqlx::query("DELETE FROM backups WHERE project_id = 'bp-bad'").execute(db.pool()).await.unwrap();
}
