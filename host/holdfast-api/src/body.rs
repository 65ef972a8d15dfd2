//! Request bodies, checked the way Cinder's JSON schemas check them
//! (`additionalProperties: false`, length limits, boolean strings).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::ApiError;

/// Largest request body we read (Cinder bodies are a few hundred bytes).
pub const MAX_BODY: usize = 1 << 20;

/// A body must be JSON (Cinder: "Invalid content type"); a missing header is taken
/// as JSON, as Cinder's default content type.
pub fn check_content_type(headers: &hyper::HeaderMap, body: &[u8]) -> Result<(), ApiError> {
    if body.is_empty() {
        return Ok(());
    }
    let Some(ct) = headers.get(hyper::header::CONTENT_TYPE) else { return Ok(()) };
    let ct = ct.to_str().unwrap_or("");
    let media = ct.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("application/json") || media.to_ascii_lowercase().ends_with("+json") {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!("Invalid content type {ct}.")))
    }
}

pub fn parse(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|_| ApiError::bad_request("Malformed request body"))
}

fn invalid(field: &str, value: &Value, why: &str) -> ApiError {
    ApiError::bad_request(format!("Invalid input for field/attribute {field}. Value: {value}. {why}"))
}

/// `{"<key>": {...}}` → the inner object. `null` counts as `{}` when `null_ok`.
pub fn envelope<'a>(v: &'a Value, key: &str, null_ok: bool) -> Result<Option<&'a Map<String, Value>>, ApiError> {
    let Some(obj) = v.as_object() else {
        return Err(ApiError::bad_request("Malformed request body"));
    };
    match obj.get(key) {
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(Value::Null) if null_ok => Ok(None),
        Some(other) => Err(invalid(key, other, &format!("{other} is not of type 'object'"))),
        None => Err(invalid(key, v, &format!("'{key}' is a required property"))),
    }
}

pub fn only_keys(m: &Map<String, Value>, field: &str, allowed: &[&str]) -> Result<(), ApiError> {
    if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(invalid(
            field,
            &Value::Object(m.clone()),
            &format!("Additional properties are not allowed ('{k}' was unexpected)"),
        ));
    }
    Ok(())
}

/// Optional string of at most `max` characters; `null` is `None`. Names and
/// descriptions are stripped of surrounding whitespace, as Cinder does.
pub fn opt_string(m: &Map<String, Value>, key: &str, max: usize) -> Result<Option<String>, ApiError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s.trim().to_owned())),
        Some(v @ Value::String(_)) => Err(invalid(key, v, &format!("{v} is too long (at most {max} characters)"))),
        Some(v) => Err(invalid(key, v, &format!("{v} is not of type 'string', 'null'"))),
    }
}

const TRUE: &[&str] = &["True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes", "y", "t"];
const FALSE: &[&str] = &["False", "FALSE", "false", "0", "OFF", "Off", "off", "NO", "No", "no", "n", "f"];

/// One of Cinder's boolean strings (`True`, `yes`, `0`, …), else `None`.
pub fn bool_string(s: &str) -> Option<bool> {
    if TRUE.contains(&s) {
        Some(true)
    } else if FALSE.contains(&s) {
        Some(false)
    } else {
        None
    }
}

/// Cinder's boolean: JSON true/false or one of its boolean strings.
pub fn opt_bool(m: &Map<String, Value>, key: &str) -> Result<bool, ApiError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v @ Value::String(s)) => bool_string(s).ok_or_else(|| invalid(key, v, &format!("{v} is not a boolean"))),
        Some(v) => Err(invalid(key, v, &format!("{v} is not a boolean"))),
    }
}

/// Cinder's `metadata`: an object whose keys match `^[a-zA-Z0-9-_:. /]{1,255}$` and
/// whose values are strings of at most 255 characters. Absent → `None`; `null` →
/// `None` where the schema allows it (create), a 400 where it does not (update).
pub fn metadata(v: Option<&Value>, null_ok: bool) -> Result<Option<BTreeMap<String, String>>, ApiError> {
    let v = match v {
        None => return Ok(None),
        Some(Value::Null) if null_ok => return Ok(None),
        Some(v) => v,
    };
    let Some(obj) = v.as_object() else {
        return Err(invalid("metadata", v, &format!("{v} is not of type 'object'")));
    };
    use holdfast_types::{is_valid_metadata_key as key_ok, is_valid_metadata_value as value_ok};
    obj.iter()
        .map(|(k, val)| match val.as_str() {
            Some(s) if key_ok(k) && value_ok(s) => Ok((k.clone(), s.to_owned())),
            Some(_) if !key_ok(k) => Err(invalid(
                "metadata",
                v,
                &format!("'{k}' does not match any of the regexes: '^[a-zA-Z0-9-_:. /]{{1,255}}$'"),
            )),
            _ => Err(invalid("metadata", v, &format!("{val} is not a string of at most 255 characters"))),
        })
        .collect::<Result<_, _>>()
        .map(Some)
}

/// "UUID-like": 32 hex digits, hyphens optional. Returned in canonical form.
pub fn opt_uuid(m: &Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => match uuid::Uuid::parse_str(s) {
            Ok(u) => Ok(Some(u.to_string())),
            Err(_) => Err(invalid(key, &Value::String(s.clone()), &format!("'{s}' is not a 'uuid'"))),
        },
        Some(v) => Err(invalid(key, v, &format!("{v} is not of type 'string'"))),
    }
}

pub fn required_uuid(m: &Map<String, Value>, key: &str, field: &str) -> Result<String, ApiError> {
    opt_uuid(m, key)?
        .ok_or_else(|| invalid(field, &Value::Object(m.clone()), &format!("'{key}' is a required property")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cinder_schema_rules() {
        let v = json!({"backup": {"volume_id": "5C2E1D4A0B7E4C1F9D3A2F6B8E1A7C90", "force": "yes", "name": "  n  ", "x": 1}});
        let m = envelope(&v, "backup", false).unwrap().unwrap();
        assert_eq!(required_uuid(m, "volume_id", "backup").unwrap(), "5c2e1d4a-0b7e-4c1f-9d3a-2f6b8e1a7c90");
        assert!(opt_bool(m, "force").unwrap());
        assert_eq!(opt_string(m, "name", 255).unwrap().as_deref(), Some("n"));
        let e = only_keys(m, "backup", &["volume_id", "force", "name"]).unwrap_err();
        assert!(e.message.contains("('x' was unexpected)"), "{}", e.message);
        assert!(opt_bool(&json!({"f": "maybe"}).as_object().unwrap().clone(), "f").is_err());
        assert!(envelope(&json!({"restore": null}), "restore", true).unwrap().is_none());
        assert!(envelope(&json!([]), "backup", false).is_err());
        assert!(parse(b"{not json").is_err());
    }
}
