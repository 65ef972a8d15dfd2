//! The `volumes` table. Ids start `vol-`, projects `vp-`.

use holdfast_db::{Db, DbError};
use holdfast_types::{Timestamp, Volume, VolumeLocation, VolumeStatus};

use crate::full_volume;

pub async fn suite(db: &Db) {
    round_trips_every_field(db).await;
    rejects_duplicates(db).await;
    lists_newest_first_per_project(db).await;
    updates_mutable_fields_only(db).await;
    transitions_are_compare_and_set(db).await;
    deletes(db).await;
    unparseable_rows_are_corrupt(db).await;
    metadata_is_replaced_whole(db).await;
}

async fn metadata_is_replaced_whole(db: &Db) {
    use std::collections::BTreeMap;
    assert!(db.volume_metadata("vol-md").await.unwrap().is_empty());
    let first: BTreeMap<String, String> =
        [("tier", "gold"), ("owner", "ops")].map(|(k, v)| (k.into(), v.into())).into();
    db.set_volume_metadata("vol-md", &first).await.unwrap();
    assert_eq!(db.volume_metadata("vol-md").await.unwrap(), first);
    let second: BTreeMap<String, String> = [("tier".to_string(), "silver".to_string())].into();
    db.set_volume_metadata("vol-md", &second).await.unwrap();
    assert_eq!(db.volume_metadata("vol-md").await.unwrap(), second, "the old keys are gone");
    assert!(db.volume_metadata("vol-other").await.unwrap().is_empty());
}

async fn round_trips_every_field(db: &Db) {
    let full = full_volume("vol-full", "vp-rt", 1_700_000_000_000_001);
    let bare = Volume {
        name: None,
        description: None,
        previous_status: None,
        status: VolumeStatus::InUse,
        size_bytes: 0,
        managed_file: false,
        updated_at: None,
        ..full_volume("vol-bare", "vp-rt", -5)
    };
    for v in [&full, &bare] {
        db.insert_volume(v).await.unwrap();
        assert_eq!(db.get_volume(&v.id).await.unwrap().as_ref(), Some(v));
    }
    for status in VolumeStatus::ALL {
        let v = Volume { status: *status, ..full_volume(&format!("vol-st-{status}"), "vp-st", 1) };
        db.insert_volume(&v).await.unwrap();
        assert_eq!(db.get_volume(&v.id).await.unwrap().unwrap().status, *status);
    }
    assert_eq!(db.get_volume("vol-missing").await.unwrap(), None);
}

async fn rejects_duplicates(db: &Db) {
    let v = full_volume("vol-dup", "vp-dup", 10);
    db.insert_volume(&v).await.unwrap();
    let again = db.insert_volume(&Volume { name: None, ..v.clone() }).await;
    assert!(matches!(again, Err(DbError::Sqlx(_))), "{again:?}");
    assert_eq!(db.get_volume("vol-dup").await.unwrap(), Some(v));
}

async fn lists_newest_first_per_project(db: &Db) {
    for (id, project, created) in [
        ("vol-l-a", "vp-list", 100),
        ("vol-l-c", "vp-list", 300),
        ("vol-l-b1", "vp-list", 200),
        ("vol-l-b2", "vp-list", 200),
        ("vol-l-other", "vp-list-other", 400),
    ] {
        db.insert_volume(&full_volume(id, project, created)).await.unwrap();
    }
    let ids = |vs: Vec<Volume>| vs.into_iter().map(|v| v.id).collect::<Vec<_>>();
    assert_eq!(ids(db.list_volumes(Some("vp-list")).await.unwrap()), ["vol-l-c", "vol-l-b2", "vol-l-b1", "vol-l-a"]);
    assert_eq!(ids(db.list_volumes(Some("vp-nobody")).await.unwrap()), Vec::<String>::new());

    let all = db.list_volumes(None).await.unwrap();
    assert!(all.iter().any(|v| v.id == "vol-l-other") && all.iter().any(|v| v.id == "vol-full"));
    let order: Vec<_> = all.iter().map(|v| (v.created_at, v.id.clone())).collect();
    let mut sorted = order.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(order, sorted, "newest first, ties by id descending");
}

async fn updates_mutable_fields_only(db: &Db) {
    let v = full_volume("vol-upd", "vp-upd", 50);
    db.insert_volume(&v).await.unwrap();
    let edited = Volume {
        project_id: "vp-ignored".into(),
        user_id: "user-ignored".into(),
        created_at: Timestamp(1),
        name: None,
        description: Some("new".into()),
        status: VolumeStatus::Error,
        previous_status: None,
        size: 9,
        size_bytes: 9 << 30,
        location: VolumeLocation::File("/elsewhere".into()),
        managed_file: false,
        updated_at: None,
        ..v.clone()
    };
    let before = Timestamp::now();
    assert!(db.update_volume(&edited).await.unwrap());
    let got = db.get_volume("vol-upd").await.unwrap().unwrap();
    assert!(got.updated_at.unwrap() >= before, "update stamps updated_at");
    let expected = Volume {
        project_id: v.project_id,
        user_id: v.user_id,
        created_at: v.created_at,
        updated_at: got.updated_at,
        ..edited.clone()
    };
    assert_eq!(got, expected);
    let ghost = Volume { id: "vol-ghost".into(), ..edited };
    assert!(!db.update_volume(&ghost).await.unwrap());
    assert_eq!(db.get_volume("vol-ghost").await.unwrap(), None);
}

async fn transitions_are_compare_and_set(db: &Db) {
    use VolumeStatus::*;
    let v = Volume { previous_status: None, updated_at: None, ..full_volume("vol-cas", "vp-cas", 60) };
    db.insert_volume(&v).await.unwrap();
    let get = || async { db.get_volume("vol-cas").await.unwrap().unwrap() };

    // Wrong from-states, an empty from-list and a missing row change nothing.
    assert!(!db.transition_volume("vol-cas", &[InUse, Error], BackingUp, Some("x")).await.unwrap());
    assert!(!db.transition_volume("vol-cas", &[], BackingUp, None).await.unwrap());
    assert!(!db.transition_volume("vol-nope", &[Available], BackingUp, None).await.unwrap());
    assert_eq!(get().await, v);

    let before = Timestamp::now();
    let won = db.transition_volume("vol-cas", &[Creating, Available], BackingUp, Some("available"));
    assert!(won.await.unwrap());
    let got = get().await;
    assert_eq!((got.status, got.previous_status.as_deref()), (BackingUp, Some("available")));
    assert!(got.updated_at.unwrap() >= before);

    // The loser of a race sees false; `None` keeps previous_status.
    assert!(!db.transition_volume("vol-cas", &[Available], Deleting, None).await.unwrap());
    assert!(db.transition_volume("vol-cas", &[BackingUp], Available, None).await.unwrap());
    let got = get().await;
    assert_eq!((got.status, got.previous_status.as_deref()), (Available, Some("available")));
}

async fn deletes(db: &Db) {
    db.insert_volume(&full_volume("vol-del", "vp-del", 70)).await.unwrap();
    assert!(db.delete_volume("vol-del").await.unwrap());
    assert_eq!(db.get_volume("vol-del").await.unwrap(), None);
    assert!(!db.delete_volume("vol-del").await.unwrap());
    // The id is free again.
    db.insert_volume(&full_volume("vol-del", "vp-del", 71)).await.unwrap();
}

async fn unparseable_rows_are_corrupt(db: &Db) {
    for (id, status, size_bytes, managed) in [
        ("vol-bad-status", "melting", 1_i64, 1_i64),
        ("vol-bad-bytes", "available", -1, 0),
        ("vol-bad-flag", "available", 1, 7),
    ] {
        sqlx::query(
            "INSERT INTO volumes (id, project_id, user_id, status, size, size_bytes, path, \
             managed_file, created_at) VALUES ($1, 'vp-bad', 'u', $2, 1, $3, '/p', $4, 0)",
        )
        .bind(id)
        .bind(status)
        .bind(size_bytes)
        .bind(managed)
        .execute(db.pool())
        .await
        .unwrap();
        let got = db.get_volume(id).await;
        assert!(matches!(&got, Err(DbError::Corrupt(m)) if m.contains(id)), "{id}: {got:?}");
    }
    assert!(matches!(db.list_volumes(Some("vp-bad")).await, Err(DbError::Corrupt(_))));
    let huge = Volume { size_bytes: u64::MAX, ..full_volume("vol-huge", "vp-bad", 1) };
    assert!(matches!(db.insert_volume(&huge).await, Err(DbError::Corrupt(_))));
    // Leave nothing that would break later listings.
    for id in ["vol-bad-status", "vol-bad-bytes", "vol-bad-flag"] {
        assert!(db.delete_volume(id).await.unwrap());
    }
}
