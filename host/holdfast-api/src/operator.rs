//! Operators' endpoints at the server root, outside Cinder's API and without a
//! token: `/healthz` (load balancers), `/metrics` (Prometheus), `/openapi.json`.
//! None of them shows tenant data.

use bytes::Bytes;
use holdfast_manager::Manager;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::json;

use crate::error::{ApiError, json_response};
use crate::{Api, HttpResponse};

/// The API's OpenAPI document, kept in the repo and compiled in.
pub const OPENAPI: &str = include_str!("../../../docs/openapi.json");

/// 200 when the database answers and every backup service is up, else 503; the
/// body says which part is down and why.
pub async fn health(m: &Manager) -> Result<HttpResponse, ApiError> {
    let database = m.database_ok().await;
    let services = m.service_status().await;
    // A backend kept only for its backups after being removed is down on purpose.
    let healthy = database.is_ok() && services.iter().all(|s| s.state.is_ok() || s.removed);
    let services: Vec<_> = services
        .into_iter()
        .map(|s| {
            json!({
                "binary": "cinder-backup",
                "backend": s.backend,
                "driver": s.driver.name,
                "state": if s.state.is_ok() { "up" } else { "down" },
                "reason": s.state.err(),
            })
        })
        .collect();
    let body = json!({
        "status": if healthy { "ok" } else { "degraded" },
        "database": match &database { Ok(()) => "ok".to_owned(), Err(e) => e.clone() },
        "services": services,
    });
    Ok(json_response(if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, &body))
}

pub fn metrics(api: &Api) -> HttpResponse {
    let mut out = String::new();
    api.manager.metrics().render(&mut out);
    api.latency.render(&mut out, "holdfast_api_request_seconds", "API request latency by endpoint and status class.");
    text(out, "text/plain; version=0.0.4")
}

pub fn openapi() -> HttpResponse {
    text(OPENAPI.to_owned(), "application/json")
}

fn text(body: String, content_type: &'static str) -> HttpResponse {
    let mut r = Response::new(Full::new(Bytes::from(body)).boxed());
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}
