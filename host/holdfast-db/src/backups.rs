//! The `backups` table, in Cinder's column names.
//!
//! Rows are soft-deleted (`deleted = 1`) as Cinder does, so an incremental chain's
//! history stays readable. Every status change is a compare-and-set `UPDATE ... WHERE
//! status IN (...)`: the manager, the API and crash recovery may race on one backup,
//! and exactly one of them must win.

use holdfast_types::{Backup, BackupStatus, Timestamp};
use sqlx::AssertSqlSafe;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::row::{Reader, bigint, flag};
use crate::{Db, DbError, placeholders};

/// Cinder's `fail_reason` is a VARCHAR(255); keep ours within it for exports.
pub const FAIL_REASON_MAX_CHARS: usize = 255;

/// Every column, in the order [`parse_backup`] and [`Db::insert_backup`] use.
#[macro_export]
#[doc(hidden)]
macro_rules! backup_columns {
    () => {
        "id, project_id, user_id, volume_id, snapshot_id, status, display_name, \
         display_description, size, size_bytes, object_count, container, service, \
         service_metadata, parent_id, num_dependent_backups, availability_zone, host, \
         fail_reason, restore_volume_id, data_timestamp, created_at, updated_at, deleted_at, \
         deleted"
    };
}

impl Db {
    /// Insert a new row verbatim (timestamps as given). Fails on a duplicate id.
    pub async fn insert_backup(&self, b: &Backup) -> Result<(), DbError> {
        insert_query(b)?.execute(&self.pool).await?;
        Ok(())
    }

    /// Insert many rows in one transaction (imports of many records, benchmarks).
    pub async fn insert_backups(&self, rows: &[Backup]) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        for b in rows {
            insert_query(b)?.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Remove a row outright: only for a request refused right after its row went in
    /// (a quota race lost), which no operation or event has seen.
    pub async fn remove_backup_row(&self, id: &str) -> Result<bool, DbError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM backup_origins WHERE backup_id = $1").bind(id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM backup_metadata WHERE backup_id = $1").bind(id).execute(&mut *tx).await?;
        let done = sqlx::query("DELETE FROM backups WHERE id = $1").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// The row, soft-deleted or not: callers check `deleted` (Cinder shows deleted backups
    /// to admins, and chains need their deleted parents' metadata).
    pub async fn get_backup(&self, id: &str) -> Result<Option<Backup>, DbError> {
        let row = sqlx::query(concat!("SELECT ", backup_columns!(), " FROM backups WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(parse_backup).transpose()
    }

    /// Live (not deleted) backups, newest first, ties by id descending; optionally one
    /// project's.
    pub async fn list_backups(&self, project_id: Option<&str>) -> Result<Vec<Backup>, DbError> {
        let rows = match project_id {
            Some(p) => {
                sqlx::query(concat!(
                    "SELECT ",
                    backup_columns!(),
                    " FROM backups WHERE deleted = 0 AND project_id = $1 \
                     ORDER BY created_at DESC, id DESC"
                ))
                .bind(p)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(concat!(
                    "SELECT ",
                    backup_columns!(),
                    " FROM backups WHERE deleted = 0 ORDER BY created_at DESC, id DESC"
                ))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(parse_backup).collect()
    }

    /// Live backups in any of `statuses`, oldest first: crash recovery looks for the
    /// transient ones a dead process left behind.
    pub async fn backups_in_status(&self, statuses: &[BackupStatus]) -> Result<Vec<Backup>, DbError> {
        if statuses.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {} FROM backups WHERE deleted = 0 AND status IN ({}) ORDER BY created_at, id",
            backup_columns!(),
            placeholders(1, statuses.len())
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for s in statuses {
            q = q.bind(s.as_str());
        }
        q.fetch_all(&self.pool).await?.iter().map(parse_backup).collect()
    }

    /// Atomically move `id` to `to` if its status is one of `from`. Returns whether this
    /// caller won (false: missing row or another status).
    pub async fn transition_backup(&self, id: &str, from: &[BackupStatus], to: BackupStatus) -> Result<bool, DbError> {
        self.cas_backup("status = $1", to.as_str(), None, id, from).await
    }

    /// Record where the driver writes this backup's objects, as soon as it knows, so a
    /// crashed backup can still be cleaned up. Returns whether the row exists.
    pub async fn set_backup_location(
        &self,
        id: &str,
        container: &str,
        service_metadata: &str,
    ) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE backups SET container = $1, service_metadata = $2, updated_at = $3 \
             WHERE id = $4",
        )
        .bind(container)
        .bind(service_metadata)
        .bind(Timestamp::now().micros())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Another live backup (not `id`) whose objects would mix with those at
    /// `container`/`prefix`: same container, and one object prefix starts with the other.
    /// Its id, if there is one. A driver may never be handed such a location: deleting
    /// one backup would delete the other's objects.
    pub async fn backup_location_clash(
        &self,
        id: &str,
        container: &str,
        prefix: &str,
    ) -> Result<Option<String>, DbError> {
        let row = sqlx::query(
            "SELECT id FROM backups WHERE deleted = 0 AND id <> $1 AND container = $2              AND service_metadata IS NOT NULL AND service_metadata <> ''              AND (substr(CAST($3 AS TEXT), 1, length(service_metadata)) = service_metadata                   OR substr(service_metadata, 1, length(CAST($3 AS TEXT))) = CAST($3 AS TEXT))              LIMIT 1",
        )
        .bind(id)
        .bind(container)
        .bind(prefix)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("id")?),
            None => None,
        })
    }

    /// Record which driver owns this backup. Returns whether the row exists.
    pub async fn set_backup_service(&self, id: &str, service: &str) -> Result<bool, DbError> {
        let done = sqlx::query("UPDATE backups SET service = $1, updated_at = $2 WHERE id = $3")
            .bind(service)
            .bind(Timestamp::now().micros())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// `creating` → `available` with the final numbers, in one statement; false when the
    /// backup is no longer `creating` (e.g. it was failed meanwhile), so nothing is saved.
    pub async fn finish_backup(
        &self,
        id: &str,
        object_count: i64,
        container: &str,
        service_metadata: &str,
        size: i64,
        size_bytes: u64,
    ) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE backups SET status = $1, object_count = $2, container = $3, \
             service_metadata = $4, size = $5, size_bytes = $6, updated_at = $7 \
             WHERE id = $8 AND status = $9",
        )
        .bind(BackupStatus::Available.as_str())
        .bind(object_count)
        .bind(container)
        .bind(service_metadata)
        .bind(size)
        .bind(bigint("backup size_bytes", size_bytes)?)
        .bind(Timestamp::now().micros())
        .bind(id)
        .bind(BackupStatus::Creating.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Add `delta` to `num_dependent_backups` (a child reached `available`: +1; a child
    /// was deleted: −1), never below zero, in one statement.
    pub async fn adjust_dependents(&self, id: &str, delta: i64) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE backups SET num_dependent_backups = \
             CASE WHEN num_dependent_backups + $1 < 0 THEN 0 ELSE num_dependent_backups + $1 END, \
             updated_at = $2 WHERE id = $3",
        )
        .bind(delta)
        .bind(Timestamp::now().micros())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Status → `error` with `reason` (cut to [`FAIL_REASON_MAX_CHARS`] characters) if the
    /// status is one of `from`. Returns whether it changed.
    pub async fn fail_backup(&self, id: &str, from: &[BackupStatus], reason: &str) -> Result<bool, DbError> {
        let reason: String = reason.chars().take(FAIL_REASON_MAX_CHARS).collect();
        let to = BackupStatus::Error.as_str();
        self.cas_backup("status = $1, fail_reason = $2", to, Some(&reason), id, from).await
    }

    /// Cinder's delete: status `deleted`, `deleted = 1`, `deleted_at` now. The row stays
    /// (see [`Db::get_backup`]) but leaves listings. Returns whether the row exists.
    pub async fn soft_delete_backup(&self, id: &str) -> Result<bool, DbError> {
        let now = Timestamp::now().micros();
        let done = sqlx::query(
            "UPDATE backups SET status = $1, deleted = 1, deleted_at = $2, updated_at = $3 \
             WHERE id = $4",
        )
        .bind(BackupStatus::Deleted.as_str())
        .bind(now)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// A project's live backups counted for its quotas: how many, and their GiB. With
    /// `before`, only the rows created earlier than that (created_at, id).
    pub async fn backup_usage(
        &self,
        project_id: &str,
        before: Option<(Timestamp, &str)>,
    ) -> Result<(i64, i64), DbError> {
        // SUM of a BIGINT is NUMERIC on PostgreSQL: cast back for the Any driver.
        let base = "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(size), 0) AS BIGINT) AS gib FROM backups \
                    WHERE deleted = 0 AND project_id = $1";
        let row = match before {
            None => sqlx::query(base).bind(project_id).fetch_one(&self.pool).await?,
            Some((at, id)) => {
                let sql = format!("{base} AND (created_at < $2 OR (created_at = $3 AND id < $4))");
                sqlx::query(AssertSqlSafe(sql))
                    .bind(project_id)
                    .bind(at.micros())
                    .bind(at.micros())
                    .bind(id)
                    .fetch_one(&self.pool)
                    .await?
            }
        };
        Ok((row.try_get("n")?, row.try_get("gib")?))
    }

    /// Live incrementals whose parent is `id`: a backup with children cannot be deleted.
    pub async fn count_children(&self, id: &str) -> Result<i64, DbError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM backups WHERE parent_id = $1 AND deleted = 0")
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Live incrementals of `id` in one of `statuses` (Cinder counts a child as a
    /// dependent from `available` on).
    pub async fn count_children_in(&self, id: &str, statuses: &[BackupStatus]) -> Result<i64, DbError> {
        if statuses.is_empty() {
            return Ok(0);
        }
        let sql = format!(
            "SELECT COUNT(*) AS n FROM backups WHERE parent_id = $1 AND deleted = 0 AND status IN ({})",
            placeholders(2, statuses.len())
        );
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(id);
        for s in statuses {
            q = q.bind(s.as_str());
        }
        Ok(q.fetch_one(&self.pool).await?.try_get("n")?)
    }

    /// Rename / re-describe (Cinder's backup update). Returns whether the row exists.
    pub async fn set_backup_text(
        &self,
        id: &str,
        name: Option<&str>,
        description: Option<&str>,
    ) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE backups SET display_name = $1, display_description = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(name)
        .bind(description)
        .bind(Timestamp::now().micros())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Save every column but `id` from `b`, stamping `updated_at`. Returns whether the row
    /// exists. Prefer the targeted writes above where they fit: this one can overwrite a
    /// concurrent status change.
    pub async fn update_backup(&self, b: &Backup) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE backups SET project_id = $1, user_id = $2, volume_id = $3, snapshot_id = $4, \
             status = $5, display_name = $6, display_description = $7, size = $8, \
             size_bytes = $9, object_count = $10, container = $11, service = $12, \
             service_metadata = $13, parent_id = $14, num_dependent_backups = $15, \
             availability_zone = $16, host = $17, fail_reason = $18, restore_volume_id = $19, \
             data_timestamp = $20, created_at = $21, updated_at = $22, deleted_at = $23, \
             deleted = $24 WHERE id = $25",
        )
        .bind(&b.project_id)
        .bind(&b.user_id)
        .bind(&b.volume_id)
        .bind(b.snapshot_id.as_deref())
        .bind(b.status.as_str())
        .bind(b.display_name.as_deref())
        .bind(b.display_description.as_deref())
        .bind(b.size)
        .bind(bigint("backup size_bytes", b.size_bytes)?)
        .bind(b.object_count)
        .bind(b.container.as_deref())
        .bind(b.service.as_deref())
        .bind(b.service_metadata.as_deref())
        .bind(b.parent_id.as_deref())
        .bind(b.num_dependent_backups)
        .bind(b.availability_zone.as_deref())
        .bind(b.host.as_deref())
        .bind(b.fail_reason.as_deref())
        .bind(b.restore_volume_id.as_deref())
        .bind(b.data_timestamp.map(Timestamp::micros))
        .bind(b.created_at.micros())
        .bind(Timestamp::now().micros())
        .bind(b.deleted_at.map(Timestamp::micros))
        .bind(flag(b.deleted))
        .bind(&b.id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The compare-and-set behind the status changes: `set` uses `$1` (the new status) and
    /// optionally `$2` (`extra`); then come updated_at, id and the `from` statuses.
    async fn cas_backup(
        &self,
        set: &str,
        to: &str,
        extra: Option<&str>,
        id: &str,
        from: &[BackupStatus],
    ) -> Result<bool, DbError> {
        if from.is_empty() {
            return Ok(false);
        }
        let next = if extra.is_some() { 3 } else { 2 };
        let sql = format!(
            "UPDATE backups SET {set}, updated_at = ${next} WHERE id = ${} AND status IN ({})",
            next + 1,
            placeholders(next + 2, from.len())
        );
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(to);
        if let Some(extra) = extra {
            q = q.bind(extra);
        }
        q = q.bind(Timestamp::now().micros()).bind(id);
        for s in from {
            q = q.bind(s.as_str());
        }
        Ok(q.execute(&self.pool).await?.rows_affected() > 0)
    }
}

/// The INSERT of every column of `b`, bound.
fn insert_query(b: &Backup) -> Result<sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>, DbError> {
    Ok(sqlx::query(concat!(
        "INSERT INTO backups (",
        backup_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
         $17, $18, $19, $20, $21, $22, $23, $24, $25)"
    ))
    .bind(&b.id)
    .bind(&b.project_id)
    .bind(&b.user_id)
    .bind(&b.volume_id)
    .bind(b.snapshot_id.as_deref())
    .bind(b.status.as_str())
    .bind(b.display_name.as_deref())
    .bind(b.display_description.as_deref())
    .bind(b.size)
    .bind(bigint("backup size_bytes", b.size_bytes)?)
    .bind(b.object_count)
    .bind(b.container.as_deref())
    .bind(b.service.as_deref())
    .bind(b.service_metadata.as_deref())
    .bind(b.parent_id.as_deref())
    .bind(b.num_dependent_backups)
    .bind(b.availability_zone.as_deref())
    .bind(b.host.as_deref())
    .bind(b.fail_reason.as_deref())
    .bind(b.restore_volume_id.as_deref())
    .bind(b.data_timestamp.map(Timestamp::micros))
    .bind(b.created_at.micros())
    .bind(b.updated_at.map(Timestamp::micros))
    .bind(b.deleted_at.map(Timestamp::micros))
    .bind(flag(b.deleted)))
}

pub(crate) fn parse_backup(row: &AnyRow) -> Result<Backup, DbError> {
    let r = Reader::new(row, "backups")?;
    Ok(Backup {
        id: r.id(),
        project_id: r.text("project_id")?,
        user_id: r.text("user_id")?,
        volume_id: r.text("volume_id")?,
        snapshot_id: r.opt_text("snapshot_id")?,
        status: r.status("status")?,
        display_name: r.opt_text("display_name")?,
        display_description: r.opt_text("display_description")?,
        size: r.int("size")?,
        size_bytes: r.bytes("size_bytes")?,
        object_count: r.int("object_count")?,
        container: r.opt_text("container")?,
        service: r.opt_text("service")?,
        service_metadata: r.opt_text("service_metadata")?,
        parent_id: r.opt_text("parent_id")?,
        num_dependent_backups: r.int("num_dependent_backups")?,
        availability_zone: r.opt_text("availability_zone")?,
        host: r.opt_text("host")?,
        fail_reason: r.opt_text("fail_reason")?,
        restore_volume_id: r.opt_text("restore_volume_id")?,
        data_timestamp: r.opt_ts("data_timestamp")?,
        created_at: r.ts("created_at")?,
        updated_at: r.opt_ts("updated_at")?,
        deleted_at: r.opt_ts("deleted_at")?,
        deleted: r.flag("deleted")?,
    })
}
