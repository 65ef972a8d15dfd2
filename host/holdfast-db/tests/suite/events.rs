//! The `events` table. Ids start `ev-`, projects `ep-`.

use holdfast_db::{Db, EventFilter};
use holdfast_types::{Event, Timestamp};

fn event(id: &str, project: &str, backup: &str, at: i64) -> Event {
    Event {
        id: id.into(),
        event_type: "backup.create.start".parse().unwrap(),
        priority: "INFO".into(),
        publisher_id: "backup.h".into(),
        project_id: project.into(),
        backup_id: backup.into(),
        payload: format!(r#"{{"backup_id": "{backup}"}}"#),
        created_at: Timestamp(at),
    }
}

pub async fn suite(db: &Db) {
    assert!(db.last_event_time().await.unwrap().is_none_or(|t| t.micros() < 1_000_000));
    for (i, id) in ["ev-1", "ev-2", "ev-3", "ev-4", "ev-5"].iter().enumerate() {
        let backup = if i % 2 == 0 { "b-even" } else { "b-odd" };
        db.insert_event(&event(id, "ep-1", backup, 1_000 + i as i64)).await.unwrap();
    }
    db.insert_event(&event("ev-x", "ep-2", "b-even", 1_000)).await.unwrap();
    db.insert_event(&event("ev-3b", "ep-1", "b-odd", 1_002)).await.unwrap(); // same time as ev-3
    assert!(db.insert_event(&event("ev-1", "ep-1", "b", 1)).await.is_err(), "duplicate id");
    assert_eq!(db.last_event_time().await.unwrap(), Some(Timestamp(1_004)));

    let ids = |v: Vec<Event>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
    let f = |after, backup, limit| EventFilter { project_id: Some("ep-1"), backup_id: backup, after, limit };
    assert_eq!(ids(db.list_events(&f(None, None, 3)).await.unwrap()), ["ev-3b", "ev-4", "ev-5"], "latest 3, in order");
    assert_eq!(ids(db.list_events(&f(None, Some("b-even"), 10)).await.unwrap()), ["ev-1", "ev-3", "ev-5"]);
    assert_eq!(
        ids(db.list_events(&f(Some("ev-3"), None, 10)).await.unwrap()),
        ["ev-3b", "ev-4", "ev-5"],
        "after a cursor"
    );
    assert_eq!(ids(db.list_events(&f(Some("ev-1"), None, 2)).await.unwrap()), ["ev-2", "ev-3"]);
    assert_eq!(db.list_events(&f(Some("ev-5"), None, 10)).await.unwrap(), vec![]);
    let all = EventFilter { limit: 100, ..Default::default() };
    assert!(ids(db.list_events(&all).await.unwrap()).contains(&"ev-x".to_string()));
    assert_eq!(db.prune_events(Timestamp(1_001)).await.unwrap(), 2, "ev-1 and ev-x are older");
    assert_eq!(ids(db.list_events(&f(None, None, 2)).await.unwrap()), ["ev-4", "ev-5"]);
    let listed = db.list_events(&f(None, None, 100)).await.unwrap();
    assert_eq!(listed.into_iter().find(|e| e.id == "ev-2"), Some(event("ev-2", "ep-1", "b-odd", 1_001)), "round-trip");
}
