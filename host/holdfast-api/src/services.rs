//! `GET /os-services`: is the backup service up, and why not.

use holdfast_manager::Manager;
use hyper::StatusCode;

use crate::error::{ApiError, json_response};
use crate::{Call, HttpResponse};

/// `GET /limits`: the backup quotas and what the project uses (-1 = unlimited).
pub async fn limits(m: &Manager, call: &Call<'_>) -> Result<HttpResponse, ApiError> {
    let used = m.usage(&call.ctx.project_id).await?;
    let q = m.config().quotas;
    let body = serde_json::json!({"limits": {"rate": [], "absolute": {
        "maxTotalBackups": q.backups.unwrap_or(-1),
        "maxTotalBackupGigabytes": q.backup_gigabytes.unwrap_or(-1),
        "totalBackupsUsed": used.backups,
        "totalBackupGigabytesUsed": used.backup_gigabytes,
    }}});
    Ok(json_response(StatusCode::OK, &body))
}

pub async fn list(m: &Manager, call: &Call<'_>) -> Result<HttpResponse, ApiError> {
    let (driver, state) = m.service_status().await;
    let cfg = m.config();
    let (up, reason) = match &state {
        Ok(_) => ("up", None),
        Err(e) => ("down", Some(e.clone())),
    };
    let mut service = serde_json::json!({
        "binary": "cinder-backup",
        "host": cfg.host,
        "zone": cfg.availability_zone,
        "status": "enabled",
        "state": up,
        "updated_at": holdfast_types::Timestamp::now().api(),
        "disabled_reason": reason,
    });
    if call.version.at_least(3, 7) {
        service["cluster"] = serde_json::Value::Null;
    }
    if call.extensions() {
        service["holdfast:driver"] = driver.into();
        service["holdfast:service"] = state.ok().map(|d| d.service).into();
    }
    let body = serde_json::json!({"services": [service]});
    Ok(json_response(StatusCode::OK, &body))
}
