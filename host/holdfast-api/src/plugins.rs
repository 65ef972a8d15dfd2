//! Holdfast extension, admin only: the loaded drivers (`GET /holdfast-plugins`) and a
//! reload of the config file (`POST /holdfast-plugins/reload`, body optional:
//! `{"reload": {"force": bool}}`).

use holdfast_manager::Manager;
use hyper::StatusCode;
use serde_json::{Value, json};

use crate::error::{ApiError, json_response};
use crate::{Call, HttpResponse, body};

pub async fn list(m: &Manager) -> Result<HttpResponse, ApiError> {
    let plugins: Vec<Value> = m
        .service_status()
        .await
        .into_iter()
        .map(|s| {
            json!({
                "backend": s.backend,
                "default": s.is_default,
                "availability_zone": s.availability_zone,
                "driver": s.driver.name,
                "version": s.driver.version,
                "sha256": s.driver.sha256,
                "wit_version": s.driver.wit_version,
                "confined": s.confined,
                "state": if s.state.is_ok() { "up" } else { "down" },
                "reason": s.state.as_ref().err(),
                "service": s.state.as_ref().ok().map(|d| d.service.clone()),
                "load_seconds": s.load_time.as_secs_f64(),
                "operations_running": s.operations_running,
                "last_reload_error": s.last_error,
            })
        })
        .collect();
    Ok(json_response(StatusCode::OK, &json!({"plugins": plugins})))
}

pub async fn reload(m: &Manager, call: &Call<'_>) -> Result<HttpResponse, ApiError> {
    let force = if call.body.is_empty() {
        false
    } else {
        let v = body::parse(call.body)?;
        let r = body::envelope(&v, "reload", false)?.cloned().unwrap_or_default();
        body::only_keys(&r, "reload", &["force"])?;
        body::opt_bool(&r, "force")?
    };
    let r = m.request_reload(force).await?;
    let failed: Vec<Value> = r.failed.iter().map(|(b, why)| json!({"backend": b, "reason": why})).collect();
    let body = json!({"reload": {
        "added": r.added,
        "upgraded": r.upgraded,
        "removed": r.removed,
        "unchanged": r.unchanged,
        "failed": failed,
        "default_backend": r.default_backend,
    }});
    Ok(json_response(StatusCode::OK, &body))
}
