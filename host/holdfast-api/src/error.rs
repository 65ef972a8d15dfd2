//! Cinder-shaped errors: `{"<fault>": {"code": N, "message": "…"}}` plus the
//! microversion and request-id headers every Cinder response carries.

use bytes::Bytes;
use holdfast_manager::ManagerError;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};

use crate::HttpResponse;
use crate::microversion::Version;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// Cinder's fault name for a status.
    fn fault(&self) -> &'static str {
        match self.status.as_u16() {
            400 => "badRequest",
            401 => "unauthorized",
            403 => "forbidden",
            404 => "itemNotFound",
            405 => "badMethod",
            409 => "conflictingRequest",
            413 => "overLimit",
            503 => "serviceUnavailable",
            _ => "computeFault",
        }
    }

    pub fn response(&self) -> HttpResponse {
        let message = if self.status == StatusCode::INTERNAL_SERVER_ERROR {
            // Details are in the log; clients get Cinder's generic text.
            "The server has either erred or is incapable of performing the requested operation.".to_owned()
        } else {
            self.message.clone()
        };
        let mut body = serde_json::json!({ self.fault(): {"code": self.status.as_u16(), "message": message} });
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            // Cinder's overLimit carries a retry hint in the body and a header.
            body[self.fault()]["retryAfter"] = "0".into();
            let mut r = json_response(self.status, &body);
            r.headers_mut().insert("retry-after", HeaderValue::from_static("0"));
            return r;
        }
        json_response(self.status, &body)
    }
}

impl From<ManagerError> for ApiError {
    fn from(e: ManagerError) -> Self {
        match e {
            ManagerError::Invalid(m) => ApiError::bad_request(m),
            ManagerError::NotFound(m) => ApiError::not_found(m),
            ManagerError::NotSupported(m) => ApiError::new(StatusCode::METHOD_NOT_ALLOWED, m),
            ManagerError::OverLimit(m) => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, m),
            e @ ManagerError::ServiceDown(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            e => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }
}

pub fn json_response(status: StatusCode, body: &serde_json::Value) -> HttpResponse {
    serialized_response(status, body)
}

/// A JSON reply from anything serialisable (large lists skip the `Value` tree).
pub fn serialized_response<T: serde::Serialize + ?Sized>(status: StatusCode, body: &T) -> HttpResponse {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut r = Response::new(Full::new(Bytes::from(bytes)).boxed());
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// 202 with an empty body (Cinder still sends the JSON content type).
pub fn accepted_empty() -> HttpResponse {
    let mut r = Response::new(Full::new(Bytes::new()).boxed());
    *r.status_mut() = StatusCode::ACCEPTED;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

pub fn with_headers(mut r: HttpResponse, version: Option<Version>, request_id: &str) -> HttpResponse {
    let h = r.headers_mut();
    if let Some(v) = version
        && let Ok(value) = HeaderValue::from_str(&format!("volume {v}"))
    {
        h.insert("openstack-api-version", value);
    }
    h.insert("vary", HeaderValue::from_static("OpenStack-API-Version"));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        h.insert("x-openstack-request-id", id.clone());
        h.insert("x-compute-request-id", id);
    }
    r
}
