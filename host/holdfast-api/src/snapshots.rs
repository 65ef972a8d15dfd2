//! `/snapshots` handlers: Cinder's volume snapshot calls (create, list, show, delete).

use std::sync::Arc;

use holdfast_manager::{CreateSnapshot, Manager};
use hyper::StatusCode;
use serde_json::json;

use crate::body;
use crate::error::{ApiError, accepted_empty, json_response};
use crate::paging::{self, SortValue};
use crate::views;
use crate::{Call, HttpResponse};

pub async fn list(m: &Manager, call: &Call<'_>, detail: bool) -> Result<HttpResponse, ApiError> {
    paging::check_filters(call, &["name", "status", "volume_id"])?;
    let mut snaps = m.list_snapshots(&call.ctx, crate::backups::all_tenants(call)?).await?;
    if let Some(vol) = call.query("volume_id") {
        snaps.retain(|s| s.volume_id == vol);
    }
    if let Some(name) = call.query("name") {
        snaps.retain(|s| s.name.as_deref() == Some(name));
    }
    if let Some(status) = call.query("status") {
        snaps.retain(|s| s.status.as_str() == status);
    }
    let snaps: Vec<_> =
        paging::apply(call, snaps.into_iter().map(Listed).collect())?.into_iter().map(|l| l.0).collect();
    let items: Vec<_> = snaps.iter().map(|s| views::snapshot(call, s, detail, m.snapshot_progress(&s.id))).collect();
    Ok(json_response(StatusCode::OK, &json!({"snapshots": items})))
}

/// `{"snapshot": {"volume_id": …, "name": …, "description": …, "force": …}}`; v2-era
/// clients send `display_name` / `display_description`.
pub async fn create(m: &Arc<Manager>, call: &Call<'_>) -> Result<HttpResponse, ApiError> {
    let v = body::parse(call.body)?;
    let b = body::envelope(&v, "snapshot", false)?.cloned().unwrap_or_default();
    body::only_keys(
        &b,
        "snapshot",
        &["volume_id", "name", "description", "display_name", "display_description", "force", "metadata"],
    )?;
    if b.get("metadata").is_some_and(|m| m.as_object().is_some_and(|o| !o.is_empty())) {
        return Err(ApiError::bad_request("Invalid input received: snapshot metadata is not supported by Holdfast"));
    }
    let req = CreateSnapshot {
        volume_id: body::required_uuid(&b, "volume_id", "snapshot")?,
        name: match body::opt_string(&b, "name", 255)? {
            Some(n) => Some(n),
            None => body::opt_string(&b, "display_name", 255)?,
        },
        description: match body::opt_string(&b, "description", 255)? {
            Some(d) => Some(d),
            None => body::opt_string(&b, "display_description", 255)?,
        },
        force: body::opt_bool(&b, "force")?,
    };
    let s = m.create_snapshot(&call.ctx, req).await?;
    Ok(json_response(StatusCode::ACCEPTED, &json!({"snapshot": views::snapshot(call, &s, false, None)})))
}

pub async fn show(m: &Manager, call: &Call<'_>, id: &str) -> Result<HttpResponse, ApiError> {
    let s = m.get_snapshot(&call.ctx, id).await?;
    let copied = m.snapshot_progress(&s.id);
    Ok(json_response(StatusCode::OK, &json!({"snapshot": views::snapshot(call, &s, true, copied)})))
}

pub async fn delete(m: &Manager, call: &Call<'_>, id: &str) -> Result<HttpResponse, ApiError> {
    m.delete_snapshot(&call.ctx, id).await?;
    Ok(accepted_empty())
}

/// A snapshot as the list parameters see it.
struct Listed(holdfast_types::Snapshot);

impl paging::Row for Listed {
    fn id(&self) -> &str {
        &self.0.id
    }

    fn sort_value(&self, key: &str) -> Option<SortValue> {
        let s = &self.0;
        Some(match key {
            "created_at" => SortValue::Int(s.created_at.micros()),
            "updated_at" => SortValue::Int(s.updated_at.map_or(0, |t| t.micros())),
            "id" => SortValue::Text(s.id.clone()),
            "name" | "display_name" => SortValue::Text(s.name.clone().unwrap_or_default()),
            "status" => SortValue::Text(s.status.as_str().to_owned()),
            "size" => SortValue::Int(s.size),
            _ => return None,
        })
    }
}
