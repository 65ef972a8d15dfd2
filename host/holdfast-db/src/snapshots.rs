//! The `snapshots` table: point-in-time copies of volumes. Status changes go through
//! [`Db::transition_snapshot`], a compare-and-set `UPDATE` like the volumes'.

use holdfast_types::{Snapshot, SnapshotStatus, Timestamp};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::row::{Reader, bigint};
use crate::{Db, DbError, placeholders};

macro_rules! snapshot_columns {
    () => {
        "id, project_id, user_id, volume_id, name, description, status, size, size_bytes, path, created_at, updated_at"
    };
}

impl Db {
    pub async fn insert_snapshot(&self, s: &Snapshot) -> Result<(), DbError> {
        sqlx::query(concat!(
            "INSERT INTO snapshots (",
            snapshot_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(&s.id)
        .bind(&s.project_id)
        .bind(&s.user_id)
        .bind(&s.volume_id)
        .bind(s.name.as_deref())
        .bind(s.description.as_deref())
        .bind(s.status.as_str())
        .bind(s.size)
        .bind(bigint("snapshot size_bytes", s.size_bytes)?)
        .bind(s.location.to_stored())
        .bind(s.created_at.micros())
        .bind(s.updated_at.map(Timestamp::micros))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn get_snapshot(&self, id: &str) -> Result<Option<Snapshot>, DbError> {
        let row = sqlx::query(concat!("SELECT ", snapshot_columns!(), " FROM snapshots WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(parse_snapshot).transpose()
    }

    /// Newest first, optionally one project's.
    pub async fn list_snapshots(&self, project_id: Option<&str>) -> Result<Vec<Snapshot>, DbError> {
        let rows = match project_id {
            Some(p) => {
                sqlx::query(concat!(
                    "SELECT ",
                    snapshot_columns!(),
                    " FROM snapshots WHERE project_id = $1 ORDER BY created_at DESC, id DESC"
                ))
                .bind(p)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(concat!(
                    "SELECT ",
                    snapshot_columns!(),
                    " FROM snapshots ORDER BY created_at DESC, id DESC"
                ))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(parse_snapshot).collect()
    }

    /// Snapshots of one volume (any status).
    pub async fn count_volume_snapshots(&self, volume_id: &str) -> Result<i64, DbError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM snapshots WHERE volume_id = $1")
            .bind(volume_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Atomically move `id` to `to` if its status is one of `from`. Returns whether this
    /// caller won.
    pub async fn transition_snapshot(
        &self,
        id: &str,
        from: &[SnapshotStatus],
        to: SnapshotStatus,
    ) -> Result<bool, DbError> {
        if from.is_empty() {
            return Ok(false);
        }
        let sql = format!(
            "UPDATE snapshots SET status = $1, updated_at = $2 WHERE id = $3 AND status IN ({})",
            placeholders(4, from.len())
        );
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(to.as_str()).bind(Timestamp::now().micros()).bind(id);
        for s in from {
            q = q.bind(s.as_str());
        }
        Ok(q.execute(&self.pool).await?.rows_affected() > 0)
    }

    pub async fn delete_snapshot(&self, id: &str) -> Result<bool, DbError> {
        let done = sqlx::query("DELETE FROM snapshots WHERE id = $1").bind(id).execute(&self.pool).await?;
        Ok(done.rows_affected() > 0)
    }
}

fn parse_snapshot(row: &AnyRow) -> Result<Snapshot, DbError> {
    let r = Reader::new(row, "snapshots")?;
    Ok(Snapshot {
        id: r.id(),
        project_id: r.text("project_id")?,
        user_id: r.text("user_id")?,
        volume_id: r.text("volume_id")?,
        name: r.opt_text("name")?,
        description: r.opt_text("description")?,
        status: r.status("status")?,
        size: r.int("size")?,
        size_bytes: r.bytes("size_bytes")?,
        location: r.location("path")?,
        created_at: r.ts("created_at")?,
        updated_at: r.opt_ts("updated_at")?,
    })
}
