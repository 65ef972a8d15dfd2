//! User key/value metadata of volumes (`volume_metadata`) and backups
//! (`backup_metadata`): one shape, two tables.

use std::collections::BTreeMap;

use sqlx::{AssertSqlSafe, Row};

use crate::{Db, DbError};

/// Whose metadata: picks the table and its id column (never user input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Volume,
    Backup,
}

impl Owner {
    fn table(self) -> (&'static str, &'static str) {
        match self {
            Owner::Volume => ("volume_metadata", "volume_id"),
            Owner::Backup => ("backup_metadata", "backup_id"),
        }
    }
}

impl Db {
    pub async fn metadata(&self, owner: Owner, id: &str) -> Result<BTreeMap<String, String>, DbError> {
        let (table, col) = owner.table();
        let rows = sqlx::query(AssertSqlSafe(format!("SELECT key, value FROM {table} WHERE {col} = $1 ORDER BY key")))
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?))).collect()
    }

    /// Replace the whole metadata set, in one transaction.
    pub async fn set_metadata(&self, owner: Owner, id: &str, meta: &BTreeMap<String, String>) -> Result<(), DbError> {
        let (table, col) = owner.table();
        let mut tx = self.pool.begin().await?;
        sqlx::query(AssertSqlSafe(format!("DELETE FROM {table} WHERE {col} = $1"))).bind(id).execute(&mut *tx).await?;
        let insert = format!("INSERT INTO {table} ({col}, key, value) VALUES ($1, $2, $3)");
        for (k, v) in meta {
            sqlx::query(AssertSqlSafe(insert.as_str())).bind(id).bind(k).bind(v).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The metadata of many owners at once (a listing page), in one query.
    pub async fn metadata_many(
        &self,
        owner: Owner,
        ids: &[&str],
    ) -> Result<std::collections::HashMap<String, BTreeMap<String, String>>, DbError> {
        let mut out: std::collections::HashMap<String, BTreeMap<String, String>> = Default::default();
        let (table, col) = owner.table();
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT {col}, key, value FROM {table} WHERE {col} IN ({})",
                crate::placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(*id);
            }
            for r in q.fetch_all(&self.pool).await? {
                let (id, k, v): (String, String, String) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
                out.entry(id).or_default().insert(k, v);
            }
        }
        Ok(out)
    }

    pub async fn volume_metadata(&self, volume_id: &str) -> Result<BTreeMap<String, String>, DbError> {
        self.metadata(Owner::Volume, volume_id).await
    }

    pub async fn set_volume_metadata(&self, volume_id: &str, meta: &BTreeMap<String, String>) -> Result<(), DbError> {
        self.set_metadata(Owner::Volume, volume_id, meta).await
    }
}
