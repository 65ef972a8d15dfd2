//! `/backups` handlers.

use std::sync::Arc;

use holdfast_db::{BackupQuery, BackupSortKey, SortDir};
use holdfast_manager::{CreateBackup, Manager, RestoreRequest, UpdateBackup};
use holdfast_types::Backup;
use hyper::StatusCode;
use serde_json::{Value, json};

use crate::body;
use crate::error::{ApiError, accepted_empty, json_response};
use crate::paging;
use crate::views;
use crate::{Call, HttpResponse};

/// Cinder's `sort=key[:dir],…` (or the legacy `sort_key` / `sort_dir`).
fn sort_keys(call: &Call<'_>) -> Result<Vec<(BackupSortKey, SortDir)>, ApiError> {
    let legacy = call.query("sort_key").is_some() || call.query("sort_dir").is_some();
    let spec = match (call.query("sort"), legacy) {
        (Some(_), true) => {
            return Err(ApiError::bad_request(
                "Invalid input received: The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be used with the 'sort' parameter.",
            ));
        }
        (Some(s), false) => s.to_owned(),
        (None, true) => {
            format!("{}:{}", call.query("sort_key").unwrap_or("created_at"), call.query("sort_dir").unwrap_or("desc"))
        }
        (None, false) => return Ok(Vec::new()),
    };
    spec.split(',')
        .map(|part| {
            let (key, dir) = part.trim().split_once(':').unwrap_or((part.trim(), "desc"));
            let key = BackupSortKey::parse(key.trim(), call.version.at_least(3, 37))
                .ok_or_else(|| ApiError::bad_request("Invalid input received: Invalid sort key"))?;
            let dir = match dir.trim() {
                "asc" => SortDir::Asc,
                "desc" => SortDir::Desc,
                _ => {
                    return Err(ApiError::bad_request(
                        "Invalid input received: Unknown sort direction, must be 'desc' or 'asc'.",
                    ));
                }
            };
            Ok((key, dir))
        })
        .collect()
}

pub async fn list(m: &Manager, call: &Call<'_>, detail: bool) -> Result<HttpResponse, ApiError> {
    let all = all_tenants(call)?;
    let limit = paging::non_negative(call, "limit")?.map_or(paging::MAX_LIMIT, |n| (n as usize).min(paging::MAX_LIMIT));
    let offset = paging::non_negative(call, "offset")?.unwrap_or(0);
    let with_count = call.version.at_least(3, 45)
        && match call.query("with_count") {
            None => false,
            Some(v) => body::bool_string(v)
                .ok_or_else(|| ApiError::bad_request(format!("with_count must be a boolean, got '{v}'.")))?,
        };
    let like_ok = call.version.at_least(3, 34);
    // Cinder ≥ 3.31 refuses filters it does not know; older versions drop them.
    paging::check_filters(
        call,
        if like_ok { &["name", "status", "volume_id", "name~"] } else { &["name", "status", "volume_id"] },
    )?;
    let query = BackupQuery {
        name: call.query("name").map(str::to_owned),
        name_like: call.query("name~").filter(|_| like_ok).map(str::to_owned),
        status: call.query("status").map(str::to_owned),
        volume_id: call.query("volume_id").map(str::to_owned),
        sort: sort_keys(call)?,
        offset,
        limit: limit as i64,
        ..BackupQuery::default()
    };
    let (page, count) = m.backup_page(&call.ctx, all, query, call.query("marker"), with_count).await?;
    let metadata = if detail && call.version.at_least(3, 43) { Some(m.backups_metadata(&page).await?) } else { None };
    let empty = Default::default();
    let items: Vec<ListItem<'_>> = page
        .iter()
        .map(|b| match (&metadata, detail) {
            (Some(md), _) => {
                ListItem::Detail(views::backup_detail_view(call, b, Some(md.get(&b.id).unwrap_or(&empty))))
            }
            (None, true) => ListItem::Detail(views::backup_detail_view(call, b, None)),
            (None, false) => ListItem::Summary(views::backup_summary_view(call, b)),
        })
        .collect();
    // Cinder links the next page whenever this one is full, `limit` given or not.
    let next = (limit > 0 && page.len() == limit).then(|| {
        let last = &page[limit - 1].id;
        let path = if detail { "backups/detail" } else { "backups" };
        let mut query: Vec<String> = call
            .query
            .iter()
            .filter(|(k, _)| k != "marker")
            .map(|(k, v)| format!("{}={}", crate::percent_encode(k), crate::percent_encode(v)))
            .collect();
        query.push(format!("marker={last}"));
        json!([{"rel": "next", "href": format!("{}/{path}?{}", call.api_base(), query.join("&"))}])
    });
    Ok(crate::error::serialized_response(StatusCode::OK, &ListBody { backups: items, backups_links: next, count }))
}

/// One list reply, serialised without an intermediate JSON tree.
#[derive(serde::Serialize)]
struct ListBody<'a> {
    backups: Vec<ListItem<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    backups_links: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<i64>,
}

// A page holds one kind only; boxing would add an allocation per row, which is what
// this type exists to avoid.
#[allow(clippy::large_enum_variant)]
#[derive(serde::Serialize)]
#[serde(untagged)]
enum ListItem<'a> {
    Summary(views::BackupSummary<'a>),
    Detail(views::BackupDetail<'a>),
}

pub async fn create(m: &Arc<Manager>, call: &Call<'_>) -> Result<HttpResponse, ApiError> {
    let v = body::parse(call.body)?;
    let b = body::envelope(&v, "backup", false)?.cloned().unwrap_or_default();
    let mut allowed = vec!["volume_id", "container", "name", "description", "incremental", "force", "snapshot_id"];
    if call.version.at_least(3, 43) {
        allowed.push("metadata");
    }
    if call.version.at_least(3, 51) {
        allowed.push("availability_zone");
    }
    body::only_keys(&b, "backup", &allowed)?;
    let availability_zone = body::opt_string(&b, "availability_zone", 255)?;
    if let Some(az) = &availability_zone
        && !m.has_availability_zone(az).await
    {
        return Err(ApiError::bad_request(format!(
            "Invalid input received: availability zone {az} has no backup service"
        )));
    }
    let req = CreateBackup {
        volume_id: body::required_uuid(&b, "volume_id", "backup")?,
        name: body::opt_string(&b, "name", 255)?,
        description: body::opt_string(&b, "description", 255)?,
        container: body::opt_string(&b, "container", 255)?,
        incremental: body::opt_bool(&b, "incremental")?,
        force: body::opt_bool(&b, "force")?,
        snapshot_id: body::opt_uuid(&b, "snapshot_id")?,
        metadata: body::metadata(b.get("metadata"), true)?.unwrap_or_default(),
        availability_zone,
    };
    let backup = m.create_backup(&call.ctx, req).await?;
    Ok(json_response(StatusCode::ACCEPTED, &json!({"backup": views::backup_summary(call, &backup)})))
}

/// Cinder's `all_tenants`: a boolean string; honoured for admins only (others'
/// clients send it too and it is ignored, as in Cinder).
pub fn all_tenants(call: &Call<'_>) -> Result<bool, ApiError> {
    match call.query("all_tenants") {
        None => Ok(false),
        Some(v) => match body::bool_string(v) {
            Some(b) => Ok(b && call.ctx.is_admin),
            None => Err(ApiError::bad_request(format!("all_tenants must be a boolean, got '{v}'."))),
        },
    }
}

async fn detail_view(m: &Manager, call: &Call<'_>, b: &Backup) -> Result<Value, ApiError> {
    let meta = if call.version.at_least(3, 43) { Some(m.backup_metadata(b).await?) } else { None };
    Ok(views::backup_detail(call, b, meta.as_ref()))
}

pub async fn show(m: &Manager, call: &Call<'_>, id: &str) -> Result<HttpResponse, ApiError> {
    let b = m.get_backup(&call.ctx, id).await?;
    let mut view = serde_json::to_value(detail_view(m, call, &b).await?)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    // Which backend and driver build wrote it: operators' detail, for admins who ask.
    if call.roles.admin
        && call.extensions()
        && let Some(o) = m
            .db()
            .backup_origin(&b.id)
            .await
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    {
        view["holdfast:origin"] = json!({
            "backend": o.backend, "driver": o.driver_name, "version": o.driver_version,
            "sha256": o.driver_sha256, "wit_version": o.wit_version,
        });
    }
    // How it found what changed, and what it read: `full`, `sha-scan` or `rbd-diff`.
    if call.roles.admin
        && call.extensions()
        && let Some((source, read)) = m
            .db()
            .backup_read(&b.id)
            .await
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    {
        view["holdfast:read"] = json!({"change_source": source, "bytes_read": read});
    }
    Ok(json_response(StatusCode::OK, &json!({"backup": view})))
}

/// `PUT /backups/{id}` (≥ 3.9): name, description; metadata ≥ 3.43 (replaces the set).
pub async fn update(m: &Manager, call: &Call<'_>, id: &str) -> Result<HttpResponse, ApiError> {
    if !call.version.at_least(3, 9) {
        return Err(ApiError::not_found("The resource could not be found."));
    }
    let v = body::parse(call.body)?;
    let b = body::envelope(&v, "backup", false)?.cloned().unwrap_or_default();
    let mut allowed = vec!["name", "description"];
    if call.version.at_least(3, 43) {
        allowed.push("metadata");
    }
    body::only_keys(&b, "backup", &allowed)?;
    let req = UpdateBackup {
        name: b.contains_key("name").then(|| body::opt_string(&b, "name", 255)).transpose()?,
        description: b.contains_key("description").then(|| body::opt_string(&b, "description", 255)).transpose()?,
        metadata: body::metadata(b.get("metadata"), false)?,
    };
    let backup = m.update_backup(&call.ctx, id, req).await?;
    Ok(json_response(StatusCode::OK, &json!({"backup": views::backup_summary(call, &backup)})))
}

pub async fn delete(m: &Arc<Manager>, call: &Call<'_>, id: &str) -> Result<HttpResponse, ApiError> {
    m.delete_backup(&call.ctx, id).await?;
    Ok(accepted_empty())
}

pub async fn restore(m: &Arc<Manager>, call: &Call<'_>, id: &str) -> Result<HttpResponse, ApiError> {
    let v = body::parse(call.body)?;
    // `{"restore": null}` crashes Cinder with a 500; we take it as `{}`.
    let r = body::envelope(&v, "restore", true)?.cloned().unwrap_or_default();
    body::only_keys(&r, "restore", &["volume_id", "name"])?;
    let req = RestoreRequest { volume_id: body::opt_uuid(&r, "volume_id")?, name: body::opt_string(&r, "name", 255)? };
    let view = m.restore_backup(&call.ctx, id, req).await?;
    Ok(json_response(StatusCode::ACCEPTED, &views::restore(&view)))
}

/// `POST /backups/{id}/action` with exactly one of `os-reset_status`, `os-force_delete`.
pub async fn action(m: &Arc<Manager>, call: &Call<'_>, id: &str) -> Result<HttpResponse, ApiError> {
    let v = body::parse(call.body)?;
    let Some((action, arg)) = v.as_object().filter(|o| o.len() == 1).and_then(|o| o.iter().next()) else {
        return Err(ApiError::bad_request("Malformed request body: expected one action"));
    };
    match action.as_str() {
        "os-reset_status" => {
            let status = arg.get("status").and_then(Value::as_str).ok_or_else(|| {
                ApiError::bad_request(
                    "Invalid input for field/attribute os-reset_status. 'status' is a required property",
                )
            })?;
            m.reset_status(&call.ctx, id, status).await?;
        }
        // Clients send `null`; any value is accepted, as in Cinder.
        "os-force_delete" => m.force_delete(&call.ctx, id).await?,
        other => {
            return Err(ApiError::bad_request(format!(
                "There is no such action: {other}. Verify the request body and Content-Type header and try again."
            )));
        }
    }
    Ok(accepted_empty())
}

pub async fn export_record(m: &Manager, call: &Call<'_>, id: &str) -> Result<HttpResponse, ApiError> {
    let r = m.export_record(&call.ctx, id).await?;
    let body = json!({"backup-record": {"backup_service": r.backup_service, "backup_url": r.backup_url}});
    Ok(json_response(StatusCode::OK, &body))
}

pub async fn import_record(m: &Arc<Manager>, call: &Call<'_>) -> Result<HttpResponse, ApiError> {
    let v = body::parse(call.body)?;
    let r = body::envelope(&v, "backup-record", false)?.cloned().unwrap_or_default();
    body::only_keys(&r, "backup-record", &["backup_service", "backup_url"])?;
    let field = |k: &str| {
        body::opt_string(&r, k, if k == "backup_url" { usize::MAX } else { 255 })?.ok_or_else(|| {
            ApiError::bad_request(format!(
                "Invalid input for field/attribute backup-record. '{k}' is a required property"
            ))
        })
    };
    let (service, url) = (field("backup_service")?, field("backup_url")?);
    if url.is_empty() {
        return Err(ApiError::bad_request("Invalid input for field/attribute backup_url. '' is too short"));
    }
    let b = m.import_record(&call.ctx, &service, &url).await?;
    let mut summary = views::backup_summary(call, &b);
    summary["name"] = Value::Null;
    Ok(json_response(StatusCode::CREATED, &json!({"backup": summary})))
}

/// Holdfast extension: `{"progress": {"operation", "bytes_done", "bytes_total", "percent"}}`.
pub async fn progress(m: &Manager, call: &Call<'_>, id: &str) -> Result<HttpResponse, ApiError> {
    let b = m.get_backup(&call.ctx, id).await?;
    let body = match m.progress(id) {
        Some(p) => json!({"progress": {
            "status": b.status.as_str(),
            "operation": p.operation.as_str(),
            "bytes_done": p.bytes_done,
            "bytes_total": p.bytes_total,
            "bytes_moved": p.bytes_moved,
            "percent": if p.bytes_total == 0 { 0.0 } else { 100.0 * p.bytes_done as f64 / p.bytes_total as f64 },
        }}),
        None => {
            json!({"progress": {"status": b.status.as_str(), "operation": null, "bytes_done": 0, "bytes_total": 0, "percent": 0.0}})
        }
    };
    Ok(json_response(StatusCode::OK, &body))
}
