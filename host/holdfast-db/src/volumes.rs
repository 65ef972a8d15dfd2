//! The `volumes` table: raw files or block devices Holdfast serves as Cinder volumes.
//!
//! Status changes that race (a backup starting while a delete starts) go through
//! [`Db::transition_volume`], a single compare-and-set `UPDATE`, never read-modify-write.

use holdfast_types::{Timestamp, Volume, VolumeStatus};
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;

use crate::row::{Reader, bigint, flag};
use crate::{Db, DbError, placeholders};

/// Every column, in the order [`parse_volume`] and [`Db::insert_volume`] use.
macro_rules! volume_columns {
    () => {
        "id, project_id, user_id, name, description, status, previous_status, size, size_bytes, \
         path, managed_file, created_at, updated_at"
    };
}

impl Db {
    /// Insert a new row verbatim (`created_at`/`updated_at` as given, so creators control
    /// them). Fails on a duplicate id.
    pub async fn insert_volume(&self, v: &Volume) -> Result<(), DbError> {
        sqlx::query(concat!(
            "INSERT INTO volumes (",
            volume_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(&v.id)
        .bind(&v.project_id)
        .bind(&v.user_id)
        .bind(v.name.as_deref())
        .bind(v.description.as_deref())
        .bind(v.status.as_str())
        .bind(v.previous_status.as_deref())
        .bind(v.size)
        .bind(bigint("volume size_bytes", v.size_bytes)?)
        .bind(v.location.to_stored())
        .bind(flag(v.managed_file))
        .bind(v.created_at.micros())
        .bind(v.updated_at.map(Timestamp::micros))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn get_volume(&self, id: &str) -> Result<Option<Volume>, DbError> {
        let row = sqlx::query(concat!("SELECT ", volume_columns!(), " FROM volumes WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(parse_volume).transpose()
    }

    /// Newest first (ties broken by id, so pages are stable), optionally one project's.
    pub async fn list_volumes(&self, project_id: Option<&str>) -> Result<Vec<Volume>, DbError> {
        let rows = match project_id {
            Some(p) => {
                sqlx::query(concat!(
                    "SELECT ",
                    volume_columns!(),
                    " FROM volumes WHERE project_id = $1 ORDER BY created_at DESC, id DESC"
                ))
                .bind(p)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(concat!("SELECT ", volume_columns!(), " FROM volumes ORDER BY created_at DESC, id DESC"))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(parse_volume).collect()
    }

    /// Save every mutable field (not id, project, user, created_at) and stamp `updated_at`.
    /// Returns whether the row exists.
    pub async fn update_volume(&self, v: &Volume) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE volumes SET name = $1, description = $2, status = $3, previous_status = $4, \
             size = $5, size_bytes = $6, path = $7, managed_file = $8, updated_at = $9 \
             WHERE id = $10",
        )
        .bind(v.name.as_deref())
        .bind(v.description.as_deref())
        .bind(v.status.as_str())
        .bind(v.previous_status.as_deref())
        .bind(v.size)
        .bind(bigint("volume size_bytes", v.size_bytes)?)
        .bind(v.location.to_stored())
        .bind(flag(v.managed_file))
        .bind(Timestamp::now().micros())
        .bind(&v.id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Rename / re-describe (Cinder's volume update). Returns whether the row exists.
    pub async fn set_volume_text(
        &self,
        id: &str,
        name: Option<&str>,
        description: Option<&str>,
    ) -> Result<bool, DbError> {
        let done = sqlx::query("UPDATE volumes SET name = $1, description = $2, updated_at = $3 WHERE id = $4")
            .bind(name)
            .bind(description)
            .bind(Timestamp::now().micros())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// End an extend: the new size, and `extending` → `available` in one statement.
    pub async fn finish_extend(&self, id: &str, size_bytes: u64) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE volumes SET size = $1, size_bytes = $2, status = $3, updated_at = $4 WHERE id = $5 AND status = $6",
        )
        .bind(holdfast_types::size_gib(size_bytes))
        .bind(bigint("volume size_bytes", size_bytes)?)
        .bind(VolumeStatus::Available.as_str())
        .bind(Timestamp::now().micros())
        .bind(id)
        .bind(VolumeStatus::Extending.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Atomically move `id` to `to` if its status is one of `from`; `previous_status`, when
    /// given, is recorded in the same statement (`None` leaves it as is). Returns whether
    /// the row changed, i.e. whether this caller won the race.
    pub async fn transition_volume(
        &self,
        id: &str,
        from: &[VolumeStatus],
        to: VolumeStatus,
        previous_status: Option<&str>,
    ) -> Result<bool, DbError> {
        if from.is_empty() {
            return Ok(false);
        }
        let sql = format!(
            "UPDATE volumes SET status = $1, previous_status = COALESCE($2, previous_status), \
             updated_at = $3 WHERE id = $4 AND status IN ({})",
            placeholders(5, from.len())
        );
        let mut q = sqlx::query(AssertSqlSafe(sql))
            .bind(to.as_str())
            .bind(previous_status)
            .bind(Timestamp::now().micros())
            .bind(id);
        for s in from {
            q = q.bind(s.as_str());
        }
        Ok(q.execute(&self.pool).await?.rows_affected() > 0)
    }

    /// Remove the row for good (backups keep their `volume_id`). Returns whether it existed.
    pub async fn delete_volume(&self, id: &str) -> Result<bool, DbError> {
        let done = sqlx::query("DELETE FROM volumes WHERE id = $1").bind(id).execute(&self.pool).await?;
        Ok(done.rows_affected() > 0)
    }
}

fn parse_volume(row: &AnyRow) -> Result<Volume, DbError> {
    let r = Reader::new(row, "volumes")?;
    Ok(Volume {
        id: r.id(),
        project_id: r.text("project_id")?,
        user_id: r.text("user_id")?,
        name: r.opt_text("name")?,
        description: r.opt_text("description")?,
        status: r.status("status")?,
        previous_status: r.opt_text("previous_status")?,
        size: r.int("size")?,
        size_bytes: r.bytes("size_bytes")?,
        location: r.location("path")?,
        managed_file: r.flag("managed_file")?,
        created_at: r.ts("created_at")?,
        updated_at: r.opt_ts("updated_at")?,
    })
}
