//! Export and import of backup records in Cinder's format (shared/docs/cinder-backup.md §5):
//! `backup_service` plus a base64 `backup_url` holding the backup row as JSON, so a backup
//! survives the loss of the database.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use holdfast_db::MetadataOwner;
use holdfast_types::{Backup, BackupStatus, GIB, Timestamp};
use serde_json::{Value, json};
use tracing::Instrument;

use crate::services::Chosen;
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
fn record_json(b: &Backup, metadata: &std::collections::BTreeMap<String, String>, driver_info: Value) -> String {
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
        ("metadata", json!(metadata)),
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

/// A decoded export record whose every field has been checked.
#[derive(Debug)]
struct ParsedRecord {
    metadata: std::collections::BTreeMap<String, String>,
    id: String,
    size: i64,
    size_bytes: u64,
    volume_id: Option<String>,
    display_name: Option<String>,
    display_description: Option<String>,
    container: Option<String>,
    service_metadata: Option<String>,
    object_count: i64,
    parent_id: Option<String>,
    num_dependent_backups: i64,
    snapshot_id: Option<String>,
    data_timestamp: Option<Timestamp>,
    created_at: Option<Timestamp>,
    driver_info: Value,
}

/// Cinder's required keys and types, plus what a hostile record could abuse: ids must
/// be UUIDs, sizes and counts in range, the container and object prefix plain
/// relative names (no `..`, no `/` in the prefix).
fn parse_record(r: &Value) -> Result<ParsedRecord, ManagerError> {
    let missing = |k: &str| invalid_record(&format!("Provided backup record is missing {k}"));
    let bad = |k: &str, why: &str| invalid_record(&format!("the backup record's {k} {why}"));
    let text = |k: &str, max: usize| -> Result<Option<String>, ManagerError> {
        match r.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.chars().count() <= max && !s.contains('\0') => Ok(Some(s.clone())),
            Some(_) => Err(bad(k, &format!("must be a string of at most {max} characters"))),
        }
    };
    let uuid = |k: &str| -> Result<Option<String>, ManagerError> {
        match text(k, 36)? {
            None => Ok(None),
            Some(s) => uuid::Uuid::parse_str(&s).map(|u| Some(u.to_string())).map_err(|_| bad(k, "is not a UUID")),
        }
    };
    let count = |k: &str| -> Result<Option<i64>, ManagerError> {
        match r.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_i64().filter(|n| *n >= 0).map(Some).ok_or_else(|| bad(k, "must be a whole number ≥ 0")),
        }
    };
    let time = |k: &str| -> Result<Option<Timestamp>, ManagerError> {
        match text(k, 64)? {
            None => Ok(None),
            Some(s) => Timestamp::parse(&s).map(Some).ok_or_else(|| bad(k, "is not a date and time")),
        }
    };
    let id = match r.get("id") {
        None | Some(Value::Null) => return Err(invalid_record("Provided backup record is missing an id")),
        Some(_) => uuid("id")?.ok_or_else(|| missing("an id"))?,
    };
    let size = count("size")?.ok_or_else(|| missing("a size"))?;
    if !(1..=crate::volumes::MAX_VOLUME_GIB).contains(&size) {
        return Err(bad("size", &format!("must be between 1 and {} GiB", crate::volumes::MAX_VOLUME_GIB)));
    }
    for k in ["display_name", "display_description", "container", "service_metadata", "object_count"] {
        if r.get(k).is_none() {
            return Err(invalid_record(&format!("the backup record is missing fields: {k}")));
        }
    }
    let container = text("container", 255)?;
    if let Some(c) = &container
        && !holdfast_types::is_valid_container(c)
    {
        return Err(bad("container", "must be a relative path without '.', '..' or empty parts"));
    }
    let service_metadata = text("service_metadata", 255)?;
    if service_metadata.as_deref().is_some_and(|p| !holdfast_types::is_valid_object_prefix(p)) {
        return Err(bad(
            "service_metadata",
            "must be an object prefix: a relative path without '.', '..' or empty parts",
        ));
    }
    let size_bytes = match r.get("holdfast:size_bytes") {
        None | Some(Value::Null) => size as u64 * GIB,
        Some(v) => v
            .as_u64()
            // Volumes are whole MiB, and the size in GiB is this length rounded up.
            .filter(|n| n % (1 << 20) == 0 && *n > (size as u64 - 1) * GIB && *n <= size as u64 * GIB)
            .ok_or_else(|| bad("holdfast:size_bytes", "does not fit its size"))?,
    };
    // Cinder's backup metadata rules (keys `^[a-zA-Z0-9-_:. /]{1,255}$`, string values ≤ 255).
    let metadata = match r.get("metadata") {
        None | Some(Value::Null) => Default::default(),
        Some(Value::Object(m)) => {
            let mut out = std::collections::BTreeMap::new();
            for (k, v) in m {
                match v.as_str() {
                    Some(s)
                        if holdfast_types::is_valid_metadata_key(k) && holdfast_types::is_valid_metadata_value(s) =>
                    {
                        out.insert(k.clone(), s.to_owned());
                    }
                    _ => return Err(bad("metadata", "must map short plain keys to strings of at most 255 characters")),
                }
            }
            out
        }
        Some(_) => return Err(bad("metadata", "must be an object")),
    };
    let driver_info = match r.get("driver_info") {
        None | Some(Value::Null) => json!({}),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => return Err(bad("driver_info", "must be an object")),
    };
    let parent_id = uuid("parent_id")?;
    if parent_id.as_deref() == Some(id.as_str()) {
        return Err(bad("parent_id", "is the backup itself"));
    }
    Ok(ParsedRecord {
        metadata,
        id,
        size,
        size_bytes,
        volume_id: uuid("volume_id")?,
        display_name: text("display_name", 255)?,
        display_description: text("display_description", 255)?,
        container,
        service_metadata,
        object_count: count("object_count")?.unwrap_or(0),
        parent_id,
        num_dependent_backups: count("num_dependent_backups")?.unwrap_or(0),
        snapshot_id: uuid("snapshot_id")?,
        data_timestamp: time("data_timestamp")?,
        created_at: time("created_at")?,
        driver_info,
    })
}

impl Manager {
    pub async fn export_record(&self, ctx: &RequestContext, id: &str) -> Result<BackupRecord, ManagerError> {
        let b = self.get_backup(ctx, id).await?;
        let chosen = self.backend_for(&b).await?;
        let (driver, desc) = (chosen.driver, chosen.desc);
        if b.status != BackupStatus::Available {
            return Err(ManagerError::Invalid("Invalid backup: Backup status must be available".into()));
        }
        let job = b.clone();
        let info = tokio::task::spawn_blocking(move || driver.export_record(&job))
            .await
            .map_err(|e| ManagerError::Internal(e.to_string()))?
            .map_err(|e| ManagerError::Invalid(format!("Invalid backup: {e}")))?;
        // Untrusted: a bounded JSON object, or the export fails (never an 8 MiB record).
        holdfast_driver::untrusted::check_record(&info)
            .map_err(|e| ManagerError::Internal(format!("driver export_record: {e}")))?;
        let driver_info: Value =
            serde_json::from_str(&info).map_err(|e| ManagerError::Internal(format!("driver export_record: {e}")))?;
        let service = b.service.clone().unwrap_or(desc.service);
        let metadata = self.db.metadata(MetadataOwner::Backup, &b.id).await?;
        Ok(BackupRecord { backup_service: service, backup_url: B64.encode(record_json(&b, &metadata, driver_info)) })
    }

    /// Accept a record (201 with the row `creating`); the driver check and the copy of
    /// the fields happen in the background, as in Cinder.
    pub async fn import_record(
        self: &Arc<Self>,
        ctx: &RequestContext,
        service: &str,
        url: &str,
    ) -> Result<Backup, ManagerError> {
        let bytes = B64.decode(url.trim()).map_err(|_| {
            ManagerError::Invalid(format!(
                "Invalid input for field/attribute backup_url. Value: {url}. '{url}' is not a 'base64'"
            ))
        })?;
        let record: Value = serde_json::from_slice(&bytes)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| invalid_record("Can't decode/parse backup record"))?;
        // Everything is checked before the 201: a bad record changes nothing.
        let parsed = parse_record(&record)?;
        let services: Vec<String> =
            self.service_status().await.into_iter().filter_map(|s| s.state.ok().map(|d| d.service)).collect();
        let backend = match service.trim() {
            "" => None,
            s => self.backend_for_service(s).await.ok(),
        };
        let Some(backend) = backend else {
            return Err(invalid_record(&format!(
                "backup_service {service:?} is not a service of this host (it runs {})",
                services.join(", ")
            )));
        };
        let (id, size) = (parsed.id.as_str(), parsed.size);
        // A record may name exactly another backup's objects (a second row for them, as
        // tempest imports under a new id; deletes then keep them while either row lives),
        // but not overlap them: its delete would remove some of the other's objects.
        if let (Some(c), Some(p)) = (&parsed.container, &parsed.service_metadata)
            && let Some(other) = self.db.backup_location_clash(id, c, p).await?
        {
            let same = self.db.get_backup(&other).await?.is_some_and(|o| o.service_metadata.as_deref() == Some(p));
            if !same {
                return Err(invalid_record(&format!(
                    "its objects (container {c:?}, object prefix {p:?}) overlap backup {other}'s"
                )));
            }
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
            size_bytes: parsed.size_bytes,
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
        // Replaces whatever a soft-deleted row of the same id left behind.
        self.db.set_metadata(MetadataOwner::Backup, id, &parsed.metadata).await?;
        let span = tracing::info_span!("import", backup_id = %id);
        tokio::spawn(self.clone().finish_import(row.clone(), parsed, backend).instrument(span));
        Ok(row)
    }

    async fn finish_import(self: Arc<Self>, row: Backup, r: ParsedRecord, backend: Chosen) {
        let id = row.id.clone();
        let mut row = row;
        let this = self.clone();
        let result = async move {
            let (driver, desc) = (backend.driver.clone(), backend.desc.clone());
            row.volume_id = r.volume_id.unwrap_or(row.volume_id);
            row.display_name = r.display_name;
            row.display_description = r.display_description;
            row.container = r.container;
            row.service_metadata = r.service_metadata;
            row.object_count = r.object_count;
            row.parent_id = r.parent_id;
            row.num_dependent_backups = r.num_dependent_backups;
            row.snapshot_id = r.snapshot_id;
            row.data_timestamp = r.data_timestamp;
            row.created_at = r.created_at.unwrap_or(row.created_at);
            row.service = Some(desc.service);
            row.availability_zone = Some(backend.availability_zone.clone());
            row.host = Some(this.config.host.clone());
            this.db.set_backup_origin(&row.id, &backend.origin()).await.map_err(|e| e.to_string())?;
            let info = r.driver_info.to_string();
            let job = row.clone();
            tokio::task::spawn_blocking(move || driver.import_record(&job, &info))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            row.status = BackupStatus::Available;
            this.db.update_backup(&row).await.map_err(|e| e.to_string())?;
            Ok::<(), String>(())
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
        let text = record_json(&b, &Default::default(), json!({}));
        assert!(text.starts_with("{\"driver_info\": {}, \"id\": \""), "{text}");
        assert!(B64.encode(&text).starts_with("eyJkcml2ZXJfaW5mbyI6IHt9LCAiaWQiOiAi"));
        assert!(text.contains("\"created_at\": \"2025-03-01T12:00:00Z\""));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["size"], 1);
        assert_eq!(v["deleted"], false);
    }
}
