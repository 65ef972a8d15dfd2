//! Every test runs on both engines, garage-style: one `test_suite(db)` driven once against
//! SQLite (in a temp dir) and once against PostgreSQL (in a scratch database).
//!
//! PostgreSQL comes from `HOLDFAST_TEST_POSTGRES` (default [`DEFAULT_POSTGRES`]). If it is
//! unreachable the PostgreSQL half is skipped with a note on stderr, unless `CI` is set
//! (non-empty): then it fails, so CI cannot silently test SQLite only.

mod backup_writes;
mod backups;
mod concurrency;
mod events;
mod listing;
mod snapshots;
mod volumes;

use std::time::Duration;

use holdfast_db::{Db, DbKind, create_scratch_postgres, drop_scratch_postgres};
use holdfast_types::{Backup, BackupStatus, Timestamp, Volume, VolumeLocation, VolumeStatus};

const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Each module's tests use their own ids and project ids, so they share one database.
async fn test_suite(db: Db) {
    volumes::suite(&db).await;
    backups::suite(&db).await;
    backup_writes::suite(&db).await;
    concurrency::suite(&db).await;
    snapshots::suite(&db).await;
    events::suite(&db).await;
    listing::suite(&db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite() {
    let dir = tempfile::tempdir().unwrap();
    // The file does not exist yet: connect must create it.
    let url = format!("sqlite://{}", dir.path().join("holdfast.db").display());
    let db = Db::connect(&url).await.unwrap();
    assert_eq!(db.kind(), DbKind::Sqlite);
    // WAL lets readers run beside the writer; the busy timeout makes writers queue.
    assert_eq!(pragma(&db, "journal_mode").await, "wal");
    assert_eq!(pragma(&db, "busy_timeout").await, "30000");
    test_suite(db.clone()).await;
    db.close().await;

    // Reconnecting re-runs the (already applied) migrations and keeps the data.
    let db = Db::connect(&url).await.unwrap();
    assert!(db.get_volume("vol-full").await.unwrap().is_some());
    // Two pools on one file, as two components of one process would have.
    let other = Db::connect(&url).await.unwrap();
    concurrency::hammer(&[db.clone(), other.clone()], "two-pools").await;
    db.close().await;
    other.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_in_memory() {
    let db = Db::connect("sqlite::memory:").await.unwrap();
    assert_eq!(db.kind(), DbKind::Sqlite);
    test_suite(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres() {
    let base = std::env::var("HOLDFAST_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_POSTGRES.into());
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty());
    let created = tokio::time::timeout(Duration::from_secs(15), create_scratch_postgres(&base)).await;
    let url = match created {
        Ok(Ok(url)) => url,
        Ok(Err(e)) => return skip_or_fail(ci, &e.to_string()),
        Err(_) => return skip_or_fail(ci, "no answer from the server in 15s"),
    };
    // Run on a task so a failing assertion still lets us drop the scratch database
    // (WITH (FORCE) ends any session the panicking task left open).
    let scratch = url.clone();
    let outcome = tokio::spawn(async move {
        let db = Db::connect(&scratch).await.unwrap();
        assert_eq!(db.kind(), DbKind::Postgres);
        test_suite(db.clone()).await;
        db.close().await;
    })
    .await;
    drop_scratch_postgres(&base, &url).await.unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// A SQLite pragma's value as text, read through a pooled connection.
async fn pragma(db: &Db, name: &str) -> String {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA {name}"))).fetch_one(db.pool()).await.unwrap();
    let text = sqlx::Row::try_get::<String, _>(&row, 0);
    text.unwrap_or_else(|_| sqlx::Row::try_get::<i64, _>(&row, 0).unwrap().to_string())
}

/// Without PostgreSQL, CI fails (it must test both engines); a laptop runs SQLite only.
fn skip_or_fail(ci: bool, reason: &str) {
    assert!(!ci, "CI is set, so PostgreSQL is required (HOLDFAST_TEST_POSTGRES), but: {reason}");
    eprintln!("skipping PostgreSQL: {reason}");
}

/// A volume with every optional field set.
fn full_volume(id: &str, project: &str, created: i64) -> Volume {
    Volume {
        id: id.into(),
        project_id: project.into(),
        user_id: "user-1".into(),
        name: Some(format!("name of {id}")),
        description: Some("it's a \"description\" with ünïcode".into()),
        status: VolumeStatus::Available,
        previous_status: Some("creating".into()),
        size: 3,
        size_bytes: 2 * (1 << 30) + 12345,
        location: VolumeLocation::File(format!("/srv/holdfast/{id}.raw").into()),
        managed_file: true,
        created_at: Timestamp(created),
        updated_at: Some(Timestamp(created + 1)),
    }
}

/// A backup with every optional field set (and a size beyond 32 bits).
fn full_backup(id: &str, project: &str, created: i64) -> Backup {
    Backup {
        id: id.into(),
        project_id: project.into(),
        user_id: "user-1".into(),
        volume_id: "vol-1".into(),
        snapshot_id: Some("snap-1".into()),
        status: BackupStatus::Available,
        display_name: Some(format!("name of {id}")),
        display_description: Some("nightly ✓".into()),
        size: 1024,
        size_bytes: (1 << 40) + 7,
        object_count: 5000,
        container: Some("bucket".into()),
        service: Some("cinder.backup.drivers.posix.PosixBackupDriver".into()),
        service_metadata: Some(format!("backups/{id}")),
        parent_id: Some("parent-0".into()),
        num_dependent_backups: 2,
        availability_zone: Some("nova".into()),
        host: Some("node-1".into()),
        fail_reason: Some("earlier failure".into()),
        restore_volume_id: Some("vol-2".into()),
        data_timestamp: Some(Timestamp(created - 10)),
        created_at: Timestamp(created),
        updated_at: Some(Timestamp(created + 1)),
        deleted_at: None,
        deleted: false,
    }
}

/// A backup as first inserted: `creating`, every optional field empty.
fn new_backup(id: &str, project: &str, created: i64) -> Backup {
    Backup {
        snapshot_id: None,
        status: BackupStatus::Creating,
        display_name: None,
        display_description: None,
        size_bytes: 0,
        object_count: 0,
        container: None,
        service: None,
        service_metadata: None,
        parent_id: None,
        num_dependent_backups: 0,
        availability_zone: None,
        host: None,
        fail_reason: None,
        restore_volume_id: None,
        data_timestamp: None,
        updated_at: None,
        ..full_backup(id, project, created)
    }
}
