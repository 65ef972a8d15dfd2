//! The `volume_metadata` table: a volume's user key/value metadata.

use std::collections::BTreeMap;

use sqlx::Row;

use crate::{Db, DbError};

impl Db {
    pub async fn volume_metadata(&self, volume_id: &str) -> Result<BTreeMap<String, String>, DbError> {
        let rows = sqlx::query("SELECT key, value FROM volume_metadata WHERE volume_id = $1 ORDER BY key")
            .bind(volume_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?))).collect()
    }

    /// Replace the whole metadata set of a volume, in one transaction.
    pub async fn set_volume_metadata(&self, volume_id: &str, meta: &BTreeMap<String, String>) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM volume_metadata WHERE volume_id = $1").bind(volume_id).execute(&mut *tx).await?;
        for (k, v) in meta {
            sqlx::query("INSERT INTO volume_metadata (volume_id, key, value) VALUES ($1, $2, $3)")
                .bind(volume_id)
                .bind(k)
                .bind(v)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
