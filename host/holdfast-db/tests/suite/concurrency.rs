//! Many writers at once: with SQLite this is where "database is locked" would show up
//! (every pool connection is a separate writer), with PostgreSQL it checks the CAS.
//! Ids start `bk-cc-`, projects `bp-cc`.

use holdfast_db::Db;
use holdfast_types::BackupStatus;

use crate::new_backup;

const TASKS: usize = 8;
const ROWS: usize = 25;

pub async fn suite(db: &Db) {
    hammer(std::slice::from_ref(db), "a").await;
}

/// `TASKS` tasks spread over `dbs` each insert, transition, fail and soft-delete `ROWS`
/// backups, then all of them race to claim the same rows.
pub async fn hammer(dbs: &[Db], tag: &str) {
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let db = dbs[t % dbs.len()].clone();
        let tag = tag.to_owned();
        tasks.push(tokio::spawn(async move {
            for r in 0..ROWS {
                let id = format!("bk-cc-{tag}-{t}-{r}");
                db.insert_backup(&new_backup(&id, "bp-cc", (t * ROWS + r) as i64)).await.unwrap();
                assert!(db.set_backup_service(&id, "svc").await.unwrap());
                match r % 3 {
                    0 => assert!(db.finish_backup(&id, 1, "c", "m", 1, 1).await.unwrap()),
                    1 => assert!(db.fail_backup(&id, &[BackupStatus::Creating], "boom").await.unwrap()),
                    _ => assert!(db.soft_delete_backup(&id).await.unwrap()),
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }

    // Every task tries to claim every available row; each row has exactly one winner.
    let mut racers = Vec::new();
    for t in 0..TASKS {
        let db = dbs[t % dbs.len()].clone();
        let tag = tag.to_owned();
        racers.push(tokio::spawn(async move {
            let mut won = 0;
            for owner in 0..TASKS {
                for r in (0..ROWS).step_by(3) {
                    let id = format!("bk-cc-{tag}-{owner}-{r}");
                    let from = [BackupStatus::Available];
                    won += usize::from(db.transition_backup(&id, &from, BackupStatus::Deleting).await.unwrap());
                }
            }
            won
        }));
    }
    let mut won = 0;
    for racer in racers {
        won += racer.await.unwrap();
    }
    assert_eq!(won, TASKS * ROWS.div_ceil(3));
}
