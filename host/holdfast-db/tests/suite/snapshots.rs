//! The `snapshots` table. Ids start `snap-`, projects `sp-`.

use holdfast_db::Db;
use holdfast_types::{Snapshot, SnapshotStatus, Timestamp, VolumeLocation};

fn snapshot(id: &str, volume: &str, project: &str, created: i64) -> Snapshot {
    Snapshot {
        id: id.into(),
        project_id: project.into(),
        user_id: "u".into(),
        volume_id: volume.into(),
        name: Some(format!("name {id}")),
        description: None,
        status: SnapshotStatus::Creating,
        size: 1,
        size_bytes: 3 << 30,
        location: VolumeLocation::File(format!("/data/snapshots/{id}.raw").into()),
        created_at: Timestamp(created),
        updated_at: None,
    }
}

pub async fn suite(db: &Db) {
    let a = snapshot("snap-a", "snap-vol-1", "sp-1", 1_000);
    let b = snapshot("snap-b", "snap-vol-1", "sp-1", 2_000);
    let c = snapshot("snap-c", "snap-vol-2", "sp-2", 3_000);
    for s in [&a, &b, &c] {
        db.insert_snapshot(s).await.unwrap();
    }
    assert!(db.insert_snapshot(&a).await.is_err(), "duplicate id");
    assert_eq!(db.get_snapshot("snap-a").await.unwrap().unwrap(), a, "every field round-trips");
    assert!(db.get_snapshot("snap-none").await.unwrap().is_none());
    let ids = |v: Vec<Snapshot>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(ids(db.list_snapshots(Some("sp-1")).await.unwrap()), ["snap-b", "snap-a"], "newest first");
    assert_eq!(db.count_volume_snapshots("snap-vol-1").await.unwrap(), 2);

    // Compare-and-set: only one of two racing flips wins.
    let (x, y) = tokio::join!(
        db.transition_snapshot("snap-a", &[SnapshotStatus::Creating], SnapshotStatus::Available),
        db.transition_snapshot("snap-a", &[SnapshotStatus::Creating], SnapshotStatus::Error),
    );
    assert!(x.unwrap() ^ y.unwrap(), "exactly one transition wins");
    let now = db.get_snapshot("snap-a").await.unwrap().unwrap();
    assert!(now.updated_at.is_some());
    assert!(!db.transition_snapshot("snap-a", &[], SnapshotStatus::Deleting).await.unwrap());

    assert!(db.delete_snapshot("snap-b").await.unwrap());
    assert!(!db.delete_snapshot("snap-b").await.unwrap());
    assert_eq!(db.count_volume_snapshots("snap-vol-1").await.unwrap(), 1);
}
