//! `/volumes` and `/os-volume-manage` handlers: the volume calls the CLIs need.

use holdfast_manager::{CreateVolume, Manager, RegisterVolume, UpdateVolume};
use hyper::StatusCode;
use serde_json::{Value, json};

use crate::body;
use crate::error::{ApiError, accepted_empty, json_response};
use crate::paging::{self, SortValue};
use crate::views;
use crate::{Call, HttpResponse};

pub async fn list(m: &Manager, call: &Call<'_>, detail: bool) -> Result<HttpResponse, ApiError> {
    paging::check_filters(call, &["name", "status"])?;
    let mut vols = m.list_volumes(&call.ctx, crate::backups::all_tenants(call)?).await?;
    if let Some(name) = call.query("name") {
        vols.retain(|v| v.name.as_deref() == Some(name));
    }
    if let Some(status) = call.query("status") {
        vols.retain(|v| v.status.as_str() == status);
    }
    let vols = paging::apply(call, vols.into_iter().map(Listed).collect())?;
    let vols: Vec<_> = vols.into_iter().map(|l| l.0).collect();
    let mut items = Vec::with_capacity(vols.len());
    for v in &vols {
        let full = views::volume(call, v, &m.metadata_of(v).await?);
        items.push(if detail { full } else { json!({"id": v.id, "name": v.name, "links": full["links"]}) });
    }
    Ok(json_response(StatusCode::OK, &json!({"volumes": items})))
}

/// Keys of Cinder's volume-create schema. The stock clients send most of them, as
/// `null` when unused; the ones naming a source Holdfast cannot create from must be null.
const CREATE_KEYS: &[&str] = &[
    "size",
    "name",
    "description",
    "display_name",
    "display_description",
    "availability_zone",
    "volume_type",
    "metadata",
    "snapshot_id",
    "source_volid",
    "consistencygroup_id",
    "image_id",
    "imageRef",
    "group_id",
    "backup_id",
    "multiattach",
];

pub async fn create(m: &Manager, call: &Call<'_>) -> Result<HttpResponse, ApiError> {
    let v = body::parse(call.body)?;
    let b = body::envelope(&v, "volume", false)?.cloned().unwrap_or_default();
    body::only_keys(&b, "volume", CREATE_KEYS)?;
    for (key, what) in [
        ("snapshot_id", "from a snapshot"),
        ("source_volid", "from another volume"),
        ("consistencygroup_id", "in a consistency group"),
        ("group_id", "in a group"),
        ("image_id", "from an image"),
        ("imageRef", "from an image"),
        ("backup_id", "from a backup (restore the backup instead: POST /backups/{id}/restore)"),
        ("volume_type", "with a volume type"),
    ] {
        if b.get(key).is_some_and(|x| !x.is_null()) {
            return Err(ApiError::bad_request(format!(
                "Invalid input received: Holdfast does not create volumes {what} ('{key}' must be null)"
            )));
        }
    }
    if body::opt_bool(&b, "multiattach")? {
        return Err(ApiError::bad_request("Invalid input received: multiattach volumes are not supported"));
    }
    check_availability_zone(m, body::opt_string(&b, "availability_zone", 255)?)?;
    let size = match b.get("size") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| {
        ApiError::bad_request("Invalid input for field/attribute size. 'size' must be a whole number of GiB")
    })?;
    let name = body::opt_string(&b, "name", 255)?.or(body::opt_string(&b, "display_name", 255)?);
    let description = body::opt_string(&b, "description", 255)?.or(body::opt_string(&b, "display_description", 255)?);
    let req = CreateVolume {
        size_gib: size,
        name,
        description,
        metadata: body::metadata(b.get("metadata"), true)?.unwrap_or_default(),
    };
    let meta = req.metadata.clone();
    let vol = m.create_volume(&call.ctx, req).await?;
    Ok(json_response(StatusCode::ACCEPTED, &json!({"volume": views::volume(call, &vol, &meta)})))
}

/// Only this service's zone exists: another is a 400 before anything changes.
pub fn check_availability_zone(m: &Manager, az: Option<String>) -> Result<(), ApiError> {
    match az {
        Some(az) if az != m.config().availability_zone => Err(ApiError::bad_request(format!(
            "Invalid input received: Availability zone '{az}' is invalid (this service is in '{}')",
            m.config().availability_zone
        ))),
        _ => Ok(()),
    }
}

/// `PUT /volumes/{id}`: name, description (or their v1 names), metadata.
pub async fn update(m: &Manager, call: &Call<'_>, id: &str) -> Result<HttpResponse, ApiError> {
    let v = body::parse(call.body)?;
    let b = body::envelope(&v, "volume", false)?.cloned().unwrap_or_default();
    body::only_keys(&b, "volume", &["name", "description", "display_name", "display_description", "metadata"])?;
    let field = |new: &str, old: &str| -> Result<Option<Option<String>>, ApiError> {
        if b.contains_key(new) {
            Ok(Some(body::opt_string(&b, new, 255)?))
        } else if b.contains_key(old) {
            Ok(Some(body::opt_string(&b, old, 255)?))
        } else {
            Ok(None)
        }
    };
    let req = UpdateVolume {
        name: field("name", "display_name")?,
        description: field("description", "display_description")?,
        metadata: body::metadata(b.get("metadata"), false)?,
    };
    let vol = m.update_volume(&call.ctx, id, req).await?;
    let meta = m.metadata_of(&vol).await?;
    Ok(json_response(StatusCode::OK, &json!({"volume": views::volume(call, &vol, &meta)})))
}

/// Cinder's manage-existing: `{"volume": {"ref": {"source-name": PATH}, "name": …}}`.
pub async fn manage(m: &Manager, call: &Call<'_>) -> Result<HttpResponse, ApiError> {
    let v = body::parse(call.body)?;
    let b = body::envelope(&v, "volume", false)?.cloned().unwrap_or_default();
    body::only_keys(
        &b,
        "volume",
        &["ref", "name", "description", "host", "availability_zone", "volume_type", "bootable", "metadata"],
    )?;
    let path = b.get("ref").and_then(|r| r.get("source-name")).and_then(Value::as_str).ok_or_else(|| {
        ApiError::bad_request("Invalid input received: ref must name the file or device as {\"source-name\": PATH}")
    })?;
    let req = RegisterVolume {
        path: path.to_owned(),
        name: body::opt_string(&b, "name", 255)?,
        description: body::opt_string(&b, "description", 255)?,
    };
    let vol = m.register_volume(&call.ctx, req).await?;
    Ok(json_response(StatusCode::ACCEPTED, &json!({"volume": views::volume(call, &vol, &Default::default())})))
}

pub async fn show(m: &Manager, call: &Call<'_>, id: &str) -> Result<HttpResponse, ApiError> {
    let vol = m.get_volume(&call.ctx, id).await?;
    let meta = m.metadata_of(&vol).await?;
    Ok(json_response(StatusCode::OK, &json!({"volume": views::volume(call, &vol, &meta)})))
}

pub async fn delete(m: &Manager, call: &Call<'_>, id: &str) -> Result<HttpResponse, ApiError> {
    m.delete_volume(&call.ctx, id).await?;
    Ok(accepted_empty())
}

/// `GET/POST/PUT /volumes/{id}/metadata`: POST merges keys, PUT replaces them all.
pub async fn metadata(m: &Manager, call: &Call<'_>, id: &str, write: Option<bool>) -> Result<HttpResponse, ApiError> {
    let all = match write {
        None => m.volume_metadata(&call.ctx, id).await?,
        Some(replace) => {
            let v = body::parse(call.body)?;
            let Some(given) = v.as_object().filter(|o| o.len() == 1).and_then(|o| o.get("metadata")) else {
                return Err(ApiError::bad_request("Malformed request body: expected {\"metadata\": {...}}"));
            };
            let meta = body::metadata(Some(given), false)?.unwrap_or_default();
            m.set_volume_metadata(&call.ctx, id, meta, replace).await?
        }
    };
    Ok(json_response(StatusCode::OK, &json!({"metadata": all})))
}

/// `POST /volumes/{id}/action`: `os-extend` (`{"new_size": N}`), `os-attach` or
/// `os-detach` (their arguments are the hypervisor's business; Holdfast records only
/// the status).
pub async fn action(m: &Manager, call: &Call<'_>, id: &str) -> Result<HttpResponse, ApiError> {
    let v = body::parse(call.body)?;
    let Some((action, arg)) = v.as_object().filter(|o| o.len() == 1).and_then(|o| o.iter().next()) else {
        return Err(ApiError::bad_request("Malformed request body: expected one action"));
    };
    let attached = match action.as_str() {
        "os-extend" => {
            let new_size = match arg.get("new_size") {
                Some(Value::Number(n)) => n.as_i64(),
                Some(Value::String(s)) => s.trim().parse().ok(),
                _ => None,
            }
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Invalid input for field/attribute new_size. Value: {arg}. new_size must be a positive whole number of GiB"
                ))
            })?;
            m.extend_volume(&call.ctx, id, new_size).await?;
            return Ok(accepted_empty());
        }
        "os-attach" => true,
        "os-detach" => false,
        other => {
            return Err(ApiError::bad_request(format!(
                "There is no such action: {other}. Verify the request body and Content-Type header and try again."
            )));
        }
    };
    m.set_attached(&call.ctx, id, attached).await?;
    Ok(accepted_empty())
}

/// A volume as the list parameters see it.
struct Listed(holdfast_types::Volume);

impl paging::Row for Listed {
    fn id(&self) -> &str {
        &self.0.id
    }

    fn sort_value(&self, key: &str) -> Option<SortValue> {
        let v = &self.0;
        Some(match key {
            "created_at" => SortValue::Int(v.created_at.micros()),
            "updated_at" => SortValue::Int(v.updated_at.map_or(0, |t| t.micros())),
            "id" => SortValue::Text(v.id.clone()),
            "name" | "display_name" => SortValue::Text(v.name.clone().unwrap_or_default()),
            "status" => SortValue::Text(v.status.as_str().to_owned()),
            "size" => SortValue::Int(v.size),
            _ => return None,
        })
    }
}
