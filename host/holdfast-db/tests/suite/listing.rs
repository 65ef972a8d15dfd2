//! Backup listings in SQL: filters, sorts with tie-breakers, keyset pages that
//! neither skip nor repeat, counts, batched metadata. Projects `lp-`.

use holdfast_db::{BackupQuery, BackupSortKey, Db, MetadataOwner, SortDir};
use holdfast_types::BackupStatus;

use crate::new_backup;

pub async fn suite(db: &Db) {
    // 25 backups, five created at each of five instants (ties on created_at), names
    // cycling through three values, one deleted, one in another project.
    let mut rows = Vec::new();
    for i in 0..25i64 {
        let mut b = new_backup(&format!("lb-{i:02}"), "lp-a", 1_000 + (i / 5) * 10);
        b.display_name = Some(["alpha", "beta", "forced"][i as usize % 3].into());
        b.status = if i % 2 == 0 { BackupStatus::Available } else { BackupStatus::Error };
        b.size = i % 4;
        rows.push(b);
    }
    rows[7].deleted = true;
    db.insert_backups(&rows).await.unwrap();
    db.insert_backup(&new_backup("lb-other", "lp-b", 1_000)).await.unwrap();

    let q = |f: fn(&mut BackupQuery)| {
        let mut q = BackupQuery { project_id: Some("lp-a".into()), ..BackupQuery::default() };
        f(&mut q);
        q
    };
    let ids = |v: Vec<holdfast_types::Backup>| v.into_iter().map(|b| b.id).collect::<Vec<_>>();

    // Default order: created_at desc, then id desc.
    let all = ids(db.query_backups(&q(|_| {})).await.unwrap());
    assert_eq!(all.len(), 24);
    assert_eq!(&all[..6], ["lb-24", "lb-23", "lb-22", "lb-21", "lb-20", "lb-19"]);
    assert!(!all.contains(&"lb-07".to_owned()) && !all.contains(&"lb-other".to_owned()));
    assert_eq!(db.count_backups(&q(|_| {})).await.unwrap(), 24);

    // Filters: exact name, substring (LIKE with its wildcards escaped), status.
    let f = db.count_backups(&q(|q| q.name = Some("beta".into()))).await.unwrap();
    assert_eq!(f, 7, "lb-07 is deleted");
    assert_eq!(db.count_backups(&q(|q| q.name_like = Some("rce".into()))).await.unwrap(), 8);
    assert_eq!(db.count_backups(&q(|q| q.name_like = Some("RCe".into()))).await.unwrap(), 8, "case-insensitive");
    assert_eq!(db.count_backups(&q(|q| q.name_like = Some("!".into()))).await.unwrap(), 0);
    assert_eq!(db.count_backups(&q(|q| q.name_like = Some("%".into()))).await.unwrap(), 0);
    assert_eq!(db.count_backups(&q(|q| q.status = Some("error".into()))).await.unwrap(), 11);

    // Every sort, paged three at a time by marker, equals the one-shot listing.
    let sorts: Vec<Vec<(BackupSortKey, SortDir)>> = vec![
        vec![],
        vec![(BackupSortKey::CreatedAt, SortDir::Asc)],
        vec![(BackupSortKey::Name, SortDir::Asc), (BackupSortKey::Size, SortDir::Desc)],
        vec![(BackupSortKey::Status, SortDir::Desc)],
        vec![(BackupSortKey::Id, SortDir::Asc)],
    ];
    for sort in sorts {
        let mut base = q(|_| {});
        base.sort = sort.clone();
        let once = ids(db.query_backups(&base).await.unwrap());
        let mut paged = Vec::new();
        let mut marker = None;
        loop {
            let mut page = base.clone();
            page.limit = 3;
            page.marker = marker.clone();
            let got = db.query_backups(&page).await.unwrap();
            if got.is_empty() {
                break;
            }
            marker = got.last().cloned();
            paged.extend(got.into_iter().map(|b| b.id));
        }
        assert_eq!(paged, once, "{sort:?}");
        let mut off = base.clone();
        off.offset = 20;
        assert_eq!(ids(db.query_backups(&off).await.unwrap()), once[20..].to_vec(), "{sort:?}");
    }

    db.set_metadata(MetadataOwner::Backup, "lb-01", &[("k".to_owned(), "v".to_owned())].into()).await.unwrap();
    let md = db.metadata_many(MetadataOwner::Backup, &["lb-01", "lb-02"]).await.unwrap();
    assert_eq!(md["lb-01"]["k"], "v");
    assert!(!md.contains_key("lb-02"));
}
