//! Non-2xx replies: Cinder wraps errors as `{"<faultKey>": {"code": 400,
//! "message": "..."}}` where the single top-level key varies (badRequest,
//! itemNotFound, overLimit, computeFault, serviceUnavailable, ...). This
//! module turns any such body, or a non-JSON one, into one readable line.

use std::fmt;

use serde_json::Value;

/// Longest message text kept from a non-JSON error body.
const MAX_TEXT: usize = 200;

/// An HTTP-level failure reported by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status code.
    pub status: u16,
    /// One-line, human-readable message (without the status suffix).
    pub message: String,
}

impl ApiError {
    /// Builds the error from a reply's status and raw body.
    pub fn from_reply(status: u16, body: &str) -> Self {
        let mut message = fault_message(status, body);
        if status == 401 {
            message.push_str(
                "; give a token with --token or HOLDFAST_TOKEN (a local server's admin token is in \
                 <data-dir>/admin-token, read from $HOLDFAST_DATA_DIR or ./holdfast-data)",
            );
        }
        Self { status, message }
    }

    /// True when the server answered 404 Not Found.
    pub fn is_not_found(&self) -> bool {
        self.status == 404
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (HTTP {})", self.message, self.status)
    }
}

impl std::error::Error for ApiError {}

/// True when `err` (anywhere in its chain) is an [`ApiError`] with status 404.
pub fn is_not_found(err: &anyhow::Error) -> bool {
    err.downcast_ref::<ApiError>().is_some_and(ApiError::is_not_found)
}

/// Extracts the message of an error body, falling back to the status's
/// canonical reason ("Not Found") when the body says nothing useful.
pub fn fault_message(status: u16, body: &str) -> String {
    let found = match serde_json::from_str::<Value>(body) {
        Ok(json) => json_message(&json),
        Err(_) => text_message(body),
    };
    found.map(|m| one_line(&m)).filter(|m| !m.is_empty()).unwrap_or_else(|| reason(status))
}

/// `{"anyKey": {"message": "..."}}`, `{"message": "..."}`, or `{"error": "..."}`.
fn json_message(json: &Value) -> Option<String> {
    let obj = json.as_object()?;
    if let Some(msg) = obj.get("message").and_then(Value::as_str) {
        return Some(msg.to_owned());
    }
    let nested = obj.values().find_map(|v| match v {
        Value::Object(inner) => inner.get("message").and_then(Value::as_str),
        _ => None,
    });
    if let Some(msg) = nested {
        return Some(msg.to_owned());
    }
    obj.get("error").and_then(Value::as_str).map(str::to_owned)
}

/// Plain-text bodies are used as-is (shortened); HTML pages are ignored.
fn text_message(body: &str) -> Option<String> {
    let text = body.trim();
    if text.is_empty() || text.starts_with('<') {
        return None;
    }
    let mut out: String = text.chars().take(MAX_TEXT).collect();
    if text.chars().count() > MAX_TEXT {
        out.push_str("...");
    }
    Some(out)
}

/// Collapses all whitespace runs (including newlines) into single spaces.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn reason(status: u16) -> String {
    reqwest::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("request failed").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(status: u16, body: &str) -> String {
        ApiError::from_reply(status, body).to_string()
    }

    #[test]
    fn every_cinder_fault_key_is_understood() {
        for (key, status) in [
            ("badRequest", 400),
            ("itemNotFound", 404),
            ("overLimit", 413),
            ("computeFault", 500),
            ("serviceUnavailable", 503),
            ("conflictingRequest", 409),
        ] {
            let body = format!(r#"{{"{key}": {{"code": {status}, "message": "boom {key}"}}}}"#);
            assert_eq!(line(status, &body), format!("boom {key} (HTTP {status})"));
        }
    }

    #[test]
    fn real_world_bad_request() {
        let body = r#"{"badRequest": {"code": 400, "message": "Invalid volume: Volume status must be available."}}"#;
        assert_eq!(line(400, body), "Invalid volume: Volume status must be available. (HTTP 400)");
    }

    #[test]
    fn multi_line_messages_become_one_line() {
        let body = r#"{"computeFault": {"code": 500, "message": "disk\n  on fire\n"}}"#;
        assert_eq!(line(500, body), "disk on fire (HTTP 500)");
    }

    #[test]
    fn flat_message_and_error_keys() {
        assert_eq!(line(400, r#"{"message": "flat"}"#), "flat (HTTP 400)");
        assert_eq!(line(403, r#"{"error": "nope"}"#), "nope (HTTP 403)");
        assert!(line(401, r#"{"error": "nope"}"#).starts_with("nope; give a token with --token"));
    }

    #[test]
    fn json_without_message_falls_back_to_reason() {
        assert_eq!(line(404, r#"{"itemNotFound": {"code": 404}}"#), "Not Found (HTTP 404)");
        assert_eq!(line(500, "[1, 2]"), "Internal Server Error (HTTP 500)");
        assert_eq!(line(409, r#"{"x": {"message": "   "}}"#), "Conflict (HTTP 409)");
    }

    #[test]
    fn non_json_bodies() {
        assert_eq!(line(502, ""), "Bad Gateway (HTTP 502)");
        assert_eq!(line(404, "no such route\n"), "no such route (HTTP 404)");
        assert_eq!(line(503, "<html><body>Service Unavailable</body></html>"), "Service Unavailable (HTTP 503)");
        let long = "x".repeat(500);
        let msg = fault_message(500, &long);
        assert_eq!(msg.len(), MAX_TEXT + 3);
        assert!(msg.ends_with("..."));
    }

    #[test]
    fn unknown_status_has_generic_reason() {
        assert_eq!(line(599, ""), "request failed (HTTP 599)");
    }

    #[test]
    fn not_found_is_detectable_through_anyhow() {
        let err = anyhow::Error::new(ApiError::from_reply(404, ""));
        assert!(is_not_found(&err));
        let err = anyhow::Error::new(ApiError::from_reply(400, ""));
        assert!(!is_not_found(&err));
        assert!(!is_not_found(&anyhow::anyhow!("other")));
    }
}
