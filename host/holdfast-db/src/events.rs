//! The `events` table: notifications, append-only. Read newest-last, either the
//! latest `limit` or the ones after a cursor event (the stream's `Last-Event-ID`).

use holdfast_types::{Event, Timestamp};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::row::Reader;
use crate::{Db, DbError};

macro_rules! event_columns {
    () => {
        "id, event_type, priority, publisher_id, project_id, backup_id, payload, created_at"
    };
}

/// Which events to read.
#[derive(Debug, Clone, Default)]
pub struct EventFilter<'a> {
    pub project_id: Option<&'a str>,
    pub backup_id: Option<&'a str>,
    /// Only events after this one (by time, then id); an unknown id reads from the start.
    pub after: Option<&'a str>,
    pub limit: i64,
}

impl Db {
    pub async fn insert_event(&self, e: &Event) -> Result<(), DbError> {
        sqlx::query(concat!("INSERT INTO events (", event_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"))
            .bind(&e.id)
            .bind(e.event_type.to_string())
            .bind(&e.priority)
            .bind(&e.publisher_id)
            .bind(&e.project_id)
            .bind(&e.backup_id)
            .bind(&e.payload)
            .bind(e.created_at.micros())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Events in time order. Without `after`: the latest `limit`; with it: the first
    /// `limit` after the cursor.
    pub async fn list_events(&self, f: &EventFilter<'_>) -> Result<Vec<Event>, DbError> {
        let cursor = match f.after {
            Some(id) => sqlx::query("SELECT created_at FROM events WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.try_get::<i64, _>("created_at"))
                .transpose()?
                .map(|t| (t, id)),
            None => None,
        };
        let mut sql = String::from(concat!("SELECT ", event_columns!(), " FROM events WHERE 1 = 1"));
        let mut n = 0;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        if f.project_id.is_some() {
            sql += &format!(" AND project_id = {}", next());
        }
        if f.backup_id.is_some() {
            sql += &format!(" AND backup_id = {}", next());
        }
        if cursor.is_some() {
            let (a, b, c) = (next(), next(), next());
            sql += &format!(" AND (created_at > {a} OR (created_at = {b} AND id > {c}))");
        }
        let newest_first = f.after.is_none();
        sql += if newest_first { " ORDER BY created_at DESC, id DESC" } else { " ORDER BY created_at, id" };
        sql += &format!(" LIMIT {}", next());
        let mut q = sqlx::query(AssertSqlSafe(sql));
        if let Some(p) = f.project_id {
            q = q.bind(p);
        }
        if let Some(b) = f.backup_id {
            q = q.bind(b);
        }
        if let Some((t, id)) = cursor {
            q = q.bind(t).bind(t).bind(id);
        }
        q = q.bind(f.limit.max(0));
        let mut events = q.fetch_all(&self.pool).await?.iter().map(parse_event).collect::<Result<Vec<_>, _>>()?;
        if newest_first {
            events.reverse();
        }
        Ok(events)
    }

    /// Delete events older than `before` (retention); returns how many went.
    pub async fn prune_events(&self, before: Timestamp) -> Result<u64, DbError> {
        let done =
            sqlx::query("DELETE FROM events WHERE created_at < $1").bind(before.micros()).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }

    /// Newest event time recorded (the host starts its clock after it).
    pub async fn last_event_time(&self) -> Result<Option<Timestamp>, DbError> {
        let row = sqlx::query("SELECT MAX(created_at) AS t FROM events").fetch_one(&self.pool).await?;
        Ok(row.try_get::<Option<i64>, _>("t")?.map(Timestamp))
    }
}

fn parse_event(row: &AnyRow) -> Result<Event, DbError> {
    let r = Reader::new(row, "events")?;
    Ok(Event {
        id: r.id(),
        event_type: r.status("event_type")?,
        priority: r.text("priority")?,
        publisher_id: r.text("publisher_id")?,
        project_id: r.text("project_id")?,
        backup_id: r.text("backup_id")?,
        payload: r.text("payload")?,
        created_at: r.ts("created_at")?,
    })
}
