//! Export and import of backup records in Cinder's format (shared/docs/cinder-backup.md §5):
//! `backup_service` plus a base64 `backup_url` holding the backup row as JSON, so a backup
//! survives the loss of the database.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use holdfast_types::{Backup, BackupStatus, GIB, Timestamp};
use serde_json::{Value, json};
use tracing::Instrument;

use crate::{Manager, ManagerError, RequestContext};

/// What `export_record` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupRecord {
    pub backup_service: String,
    pub backup_url: String,
}

fn time(t: Option<Timestamp>) -> Value {
    t.map_or(Value::Null, |t| Value::String(t.record()))
}

/// The record's JSON, keys in Cinder's order, Python's `", "`/`": "` separators.
fn record_json(b: &Backup, driver_info: Value) -> String {
    let fields: Vec<(&str, Value)> = vec![
        ("driver_info", driver_info),
        ("id", json!(b.id)),
        ("user_id", json!(b.user_id)),
        ("project_id", json!(b.project_id)),
        ("volume_id", json!(b.volume_id)),
        ("host", json!(b.host)),
        ("availability_zone", json!(b.availability_zone)),
        ("container", json!(b.container)),
        ("parent_id", json!(b.parent_id)),
        ("status", json!(b.status.as_str())),
        ("fail_reason", json!(b.fail_reason)),
        ("size", json!(b.size)),
        ("display_name", json!(b.display_name)),
        ("display_description", json!(b.display_description)),
        ("service_metadata", json!(b.service_metadata)),
        ("service", json!(b.service)),
        ("object_count", json!(b.object_count)),
        ("temp_volume_id", Value::Null),
        ("temp_snapshot_id", Value::Null),
        ("num_dependent_backups", json!(b.num_dependent_backups)),
        ("snapshot_id", json!(b.snapshot_id)),
        ("data_timestamp", time(b.data_timestamp)),
        ("restore_volume_id", json!(b.restore_volume_id)),
        ("metadata", json!({})),
        ("encryption_key_id", Value::Null),
        ("created_at", time(Some(b.created_at))),
        ("updated_at", time(b.updated_at)),
        ("deleted_at", time(b.deleted_at)),
        ("deleted", json!(b.deleted)),
        // Holdfast's exact length (Cinder ignores keys it does not know).
        ("holdfast:size_bytes", json!(b.size_bytes)),
    ];
    let body: Vec<String> = fields.iter().map(|(k, v)| format!("{}: {}", json!(k), python_json(v))).collect();
    format!("{{{}}}", body.join(", "))
}

/// A value as Python's `json.dumps` prints it by default (`", "` and `": "`).
fn python_json(v: &Value) -> String {
    match v {
        Value::Array(a) => format!("[{}]", a.iter().map(python_json).collect::<Vec<_>>().join(", ")),
        Value::Object(o) => {
            let items: Vec<String> = o.iter().map(|(k, v)| format!("{}: {}", json!(k), python_json(v))).collect();
            format!("{{{}}}", items.join(", "))
        }
        v => v.to_string(),
    }
}

fn invalid_record(why: &str) -> ManagerError {
    ManagerError::Invalid(format!("Invalid input received: {why}"))
}

impl Manager {
    pub async fn export_record(&self, ctx: &RequestContext, id: &str) -> Result<BackupRecord, ManagerError> {
        let (driver, desc) = self.driver().await?;
        let b = self.get_backup(ctx, id).await?;
        if b.status != BackupStatus::Available {
            return Err(ManagerError::Invalid("Invalid backup: Backup status must be available".into()));
        }
        let job = b.clone();
        let info = tokio::task::spawn_blocking(move || driver.export_record(&job))
            .await
            .map_err(|e| ManagerError::Internal(e.to_string()))?
            .map_err(|e| ManagerError::Invalid(format!("Invalid backup: {e}")))?;
        let driver_info: Value = serde_json::from_str(&info)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| ManagerError::Internal(format!("driver export_record returned no JSON object: {info}")))?;
        let service = b.service.clone().unwrap_or(desc.service);
        Ok(BackupRecord { backup_service: service, backup_url: B64.encode(record_json(&b, driver_info)) })
    }

    /// Accept a record (201 with the row `creating`); the driver check and the copy of
    /// the fields happen in the background, as in Cinder.
    pub async fn import_record(
        self: &Arc<Self>,
        ctx: &RequestContext,
        service: &str,
        url: &str,
    ) -> Result<Backup, ManagerError> {
        let (_, desc) = self.driver().await?;
        let bytes = B64.decode(url.trim()).map_err(|_| {
            ManagerError::Invalid(format!(
                "Invalid input for field/attribute backup_url. Value: {url}. '{url}' is not a 'base64'"
            ))
        })?;
        let record: Value = serde_json::from_slice(&bytes)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| invalid_record("Can't decode/parse backup record"))?;
        let id = record
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid_record("Provided backup record is missing an id"))?;
        let size = record
            .get("size")
            .and_then(Value::as_i64)
            .ok_or_else(|| invalid_record("Provided backup record is missing a size"))?;
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(invalid_record("the record's id is not a UUID"));
        }
        if !desc.service.starts_with(service) {
            return Err(ManagerError::ServiceDown(format!("Service {service} could not be found.")));
        }
        self.check_quota(&ctx.project_id, size).await?;
        let existing = self.db.get_backup(id).await?;
        if existing.as_ref().is_some_and(|b| !b.deleted) {
            return Err(ManagerError::Invalid("Invalid backup: Backup already exists in database.".into()));
        }
        let now = Timestamp::now();
        let row = Backup {
            id: id.to_owned(),
            project_id: ctx.project_id.clone(),
            user_id: ctx.user_id.clone(),
            volume_id: "00000000-0000-0000-0000-000000000000".into(),
            snapshot_id: None,
            status: BackupStatus::Creating,
            display_name: None,
            display_description: None,
            size,
            size_bytes: size.max(0) as u64 * GIB,
            object_count: 0,
            container: None,
            service: None,
            service_metadata: None,
            parent_id: None,
            num_dependent_backups: 0,
            availability_zone: None,
            host: None,
            fail_reason: None,
            restore_volume_id: None,
            data_timestamp: None,
            created_at: now,
            updated_at: None,
            deleted_at: None,
            deleted: false,
        };
        if existing.is_some() {
            self.db.update_backup(&row).await?; // revive a soft-deleted id
        } else {
            self.db.insert_backup(&row).await?;
        }
        let span = tracing::info_span!("import", backup_id = %id);
        tokio::spawn(self.clone().finish_import(row.clone(), record).instrument(span));
        Ok(row)
    }

    async fn finish_import(self: Arc<Self>, row: Backup, record: Value) {
        let id = row.id.clone();
        let mut row = row;
        let this = self.clone();
        let result = async move {
            let (driver, desc) = this.driver().await.map_err(|e| e.to_string())?;
            let s = |k: &str| record.get(k).and_then(Value::as_str).map(str::to_owned);
            let i = |k: &str| record.get(k).and_then(Value::as_i64);
            let t = |k: &str| record.get(k).and_then(Value::as_str).and_then(Timestamp::parse);
            for k in
                ["display_name", "display_description", "container", "size", "service_metadata", "object_count", "id"]
            {
                if record.get(k).is_none() {
                    return Err(format!("the backup record is missing fields: {k}"));
                }
            }
            row.volume_id = s("volume_id").unwrap_or(row.volume_id);
            row.display_name = s("display_name");
            row.display_description = s("display_description");
            row.container = s("container");
            row.service_metadata = s("service_metadata");
            row.object_count = i("object_count").unwrap_or(0);
            row.parent_id = s("parent_id");
            row.num_dependent_backups = i("num_dependent_backups").unwrap_or(0);
            row.snapshot_id = s("snapshot_id");
            row.data_timestamp = t("data_timestamp");
            row.created_at = t("created_at").unwrap_or(row.created_at);
            if let Some(n) = record.get("holdfast:size_bytes").and_then(Value::as_u64) {
                row.size_bytes = n;
            }
            row.service = Some(desc.service);
            row.availability_zone = Some(this.config.availability_zone.clone());
            row.host = Some(this.config.host.clone());
            let info = record.get("driver_info").cloned().unwrap_or(json!({})).to_string();
            let job = row.clone();
            tokio::task::spawn_blocking(move || driver.import_record(&job, &info))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            row.status = BackupStatus::Available;
            this.db.update_backup(&row).await.map_err(|e| e.to_string())?;
            Ok(())
        };
        match result.await {
            Ok(()) => tracing::info!("backup record imported"),
            Err(why) => {
                tracing::warn!(reason = %why, "import failed");
                if let Err(e) = self.db.fail_backup(&id, &[BackupStatus::Creating], &why).await {
                    tracing::error!(error = %e, "could not record the import's failure");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_look_like_cinders() {
        let b = Backup {
            id: "9a7f3b2c-6d1e-4f80-a5b4-c3d2e1f0a9b8".into(),
            project_id: "p".into(),
            user_id: "u".into(),
            volume_id: "v".into(),
            snapshot_id: None,
            status: BackupStatus::Available,
            display_name: Some("nightly".into()),
            display_description: None,
            size: 1,
            size_bytes: GIB,
            object_count: 1,
            container: Some("9a/7f/x".into()),
            service: Some("cinder.backup.drivers.posix.PosixBackupDriver".into()),
            service_metadata: Some("prefix".into()),
            parent_id: None,
            num_dependent_backups: 0,
            availability_zone: Some("nova".into()),
            host: Some("node1".into()),
            fail_reason: None,
            restore_volume_id: None,
            data_timestamp: Some(Timestamp(1_740_830_400_000_000)),
            created_at: Timestamp(1_740_830_400_000_000),
            updated_at: None,
            deleted_at: None,
            deleted: false,
        };
        let text = record_json(&b, json!({}));
        assert!(text.starts_with("{\"driver_info\": {}, \"id\": \""), "{text}");
        assert!(B64.encode(&text).starts_with("eyJkcml2ZXJfaW5mbyI6IHt9LCAiaWQiOiAi"));
        assert!(text.contains("\"created_at\": \"2025-03-01T12:00:00Z\""));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["size"], 1);
        assert_eq!(v["deleted"], false);
    }
}
