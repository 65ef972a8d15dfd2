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

/// One `cinder-backup` service per backend, host `HOST@BACKEND` as Cinder names
/// multi-backend services.
pub async fn list(m: &Manager, call: &Call<'_>) -> Result<HttpResponse, ApiError> {
    let cfg = m.config();
    let now = holdfast_types::Timestamp::now().api();
    let mut services = Vec::new();
    for s in m.service_status().await {
        let (up, reason) = match &s.state {
            Ok(_) => ("up", None),
            Err(e) => ("down", Some(e.clone())),
        };
        let mut service = serde_json::json!({
            "binary": "cinder-backup",
            "host": format!("{}@{}", cfg.host, s.backend),
            "zone": s.availability_zone,
            "status": "enabled",
            "state": up,
            "updated_at": now,
            "disabled_reason": reason,
        });
        if call.version.at_least(3, 7) {
            service["cluster"] = serde_json::Value::Null;
        }
        if call.extensions() {
            service["holdfast:driver"] = s.driver.name.clone().into();
            service["holdfast:driver_version"] = s.driver.version.clone().into();
            service["holdfast:driver_sha256"] = s.driver.sha256.clone().into();
            service["holdfast:wit_version"] = s.driver.wit_version.clone().into();
            service["holdfast:default"] = s.is_default.into();
            service["holdfast:service"] = s.state.ok().map(|d| d.service).into();
        }
        services.push(service);
    }
    let body = serde_json::json!({"services": services});
    Ok(json_response(StatusCode::OK, &body))
}
