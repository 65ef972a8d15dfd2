//! `/volumes` and `/os-volume-manage` handlers: the volume calls the CLIs need.

use std::collections::BTreeMap;

use holdfast_manager::{CreateVolume, Manager, RegisterVolume};
use hyper::StatusCode;
use serde_json::{Value, json};

use crate::body;
use crate::error::{ApiError, accepted_empty, json_response};
use crate::views;
use crate::{Call, HttpResponse};

pub async fn list(m: &Manager, call: &Call<'_>, detail: bool) -> Result<HttpResponse, ApiError> {
    let mut vols = m.list_volumes(&call.ctx).await?;
    if let Some(name) = call.query("name") {
        vols.retain(|v| v.name.as_deref() == Some(name));
    }
    if let Some(status) = call.query("status") {
        vols.retain(|v| v.status.as_str() == status);
    }
    let mut items = Vec::with_capacity(vols.len());
    for v in &vols {
        let full = views::volume(call, v, &m.metadata_of(v).await?);
        items.push(if detail { full } else { json!({"id": v.id, "name": v.name, "links": full["links"]}) });
    }
    Ok(json_response(StatusCode::OK, &json!({"volumes": items})))
}

pub async fn create(m: &Manager, call: &Call<'_>) -> Result<HttpResponse, ApiError> {
    let v = body::parse(call.body)?;
    let b = body::envelope(&v, "volume", false)?.cloned().unwrap_or_default();
    body::only_keys(&b, "volume", &["size", "name", "description", "availability_zone", "volume_type", "metadata"])?;
    if b.get("volume_type").is_some_and(|x| !x.is_null()) {
        return Err(ApiError::bad_request("Invalid input received: volume types are not supported by Holdfast"));
    }
    let size = match b.get("size") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| {
        ApiError::bad_request("Invalid input for field/attribute size. 'size' must be a whole number of GiB")
    })?;
    let req = CreateVolume {
        size_gib: size,
        name: body::opt_string(&b, "name", 255)?,
        description: body::opt_string(&b, "description", 255)?,
        metadata: metadata_map(b.get("metadata"))?,
    };
    let meta = req.metadata.clone();
    let vol = m.create_volume(&call.ctx, req).await?;
    Ok(json_response(StatusCode::ACCEPTED, &json!({"volume": views::volume(call, &vol, &meta)})))
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

/// Cinder's metadata rules: an object of string values, keys 1–255 characters.
fn metadata_map(v: Option<&Value>) -> Result<BTreeMap<String, String>, ApiError> {
    let Some(v) = v.filter(|v| !v.is_null()) else { return Ok(BTreeMap::new()) };
    let bad = || {
        ApiError::bad_request(format!(
            "Invalid input for field/attribute metadata. Value: {v}. Keys must be 1-255 characters and values strings of at most 255"
        ))
    };
    let obj = v.as_object().ok_or_else(bad)?;
    obj.iter()
        .map(|(k, v)| match v.as_str() {
            Some(s) if !k.is_empty() && k.chars().count() <= 255 && s.chars().count() <= 255 => {
                Ok((k.clone(), s.to_owned()))
            }
            _ => Err(bad()),
        })
        .collect()
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
            let meta = metadata_map(Some(given))?;
            m.set_volume_metadata(&call.ctx, id, meta, replace).await?
        }
    };
    Ok(json_response(StatusCode::OK, &json!({"metadata": all})))
}

/// `POST /volumes/{id}/action` with `os-attach` or `os-detach` (their arguments are
/// the hypervisor's business; Holdfast records only the status).
pub async fn action(m: &Manager, call: &Call<'_>, id: &str) -> Result<HttpResponse, ApiError> {
    let v = body::parse(call.body)?;
    let action = v.as_object().filter(|o| o.len() == 1).and_then(|o| o.keys().next().cloned()).unwrap_or_default();
    let attached = match action.as_str() {
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
