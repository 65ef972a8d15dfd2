//! The `backup_origins` table: the backend and driver build that wrote a backup; and
//! `backup_reads`: how it read its volume.

use holdfast_types::BackupOrigin;
use sqlx::Row;

use crate::{Db, DbError};

impl Db {
    /// Record (or replace) where a backup was written.
    pub async fn set_backup_origin(&self, backup_id: &str, o: &BackupOrigin) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM backup_origins WHERE backup_id = $1").bind(backup_id).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO backup_origins (backup_id, backend, driver_name, driver_version, driver_sha256, wit_version) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(backup_id)
        .bind(&o.backend)
        .bind(&o.driver_name)
        .bind(&o.driver_version)
        .bind(&o.driver_sha256)
        .bind(&o.wit_version)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn backup_origin(&self, backup_id: &str) -> Result<Option<BackupOrigin>, DbError> {
        let row = sqlx::query(
            "SELECT backend, driver_name, driver_version, driver_sha256, wit_version \
             FROM backup_origins WHERE backup_id = $1",
        )
        .bind(backup_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(BackupOrigin {
                backend: r.try_get(0)?,
                driver_name: r.try_get(1)?,
                driver_version: r.try_get(2)?,
                driver_sha256: r.try_get(3)?,
                wit_version: r.try_get(4)?,
            })
        })
        .transpose()
    }

    /// Record how a backup read its volume (`change_source` as
    /// `holdfast_chunk::ChangeSource::as_str` spells it).
    pub async fn set_backup_read(&self, backup_id: &str, change_source: &str, bytes_read: u64) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM backup_reads WHERE backup_id = $1").bind(backup_id).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO backup_reads (backup_id, change_source, bytes_read) VALUES ($1, $2, $3)")
            .bind(backup_id)
            .bind(change_source)
            .bind(i64::try_from(bytes_read).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// (change source, bytes read) of a backup, when recorded.
    pub async fn backup_read(&self, backup_id: &str) -> Result<Option<(String, i64)>, DbError> {
        let row = sqlx::query("SELECT change_source, bytes_read FROM backup_reads WHERE backup_id = $1")
            .bind(backup_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
    }

    /// Live backups written through `backend` (a backend with any cannot simply go away).
    pub async fn count_backups_on_backend(&self, backend: &str) -> Result<i64, DbError> {
        let row = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM backup_origins o JOIN backups b ON b.id = o.backup_id \
             WHERE o.backend = $1 AND b.deleted = 0",
        )
        .bind(backend)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("n")?)
    }
}
