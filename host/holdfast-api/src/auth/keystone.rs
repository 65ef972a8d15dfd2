//! `--auth keystone`: tokens validated by Keystone, as keystonemiddleware does.
//!
//! The host logs in as its service user (password, project-scoped), then checks each
//! caller's token with `GET /v3/auth/tokens?nocatalog` (`X-Auth-Token`: ours,
//! `X-Subject-Token`: theirs). Keystone lists implied roles already. A validation is
//! cached by the token's SHA-256 until the token expires or [`CACHE_FOR`] passes,
//! whichever is sooner. Keystone saying no is a 401; Keystone not answering is a 503,
//! never a pass.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use holdfast_types::Timestamp;
use hyper::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use super::{Identity, Roles, unauthorized};
use crate::error::ApiError;

/// keystonemiddleware's default `token_cache_time`.
const CACHE_FOR: Duration = Duration::from_secs(300);
/// Renew our own token this long before it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(120);
const MAX_CACHED: usize = 10_000;
const TIMEOUT: Duration = Duration::from_secs(10);

/// The service user Holdfast logs in as (`--keystone-user` …).
#[derive(Debug, Clone)]
pub struct ServiceCredentials {
    pub user: String,
    pub password: String,
    pub project: String,
    pub user_domain: String,
    pub project_domain: String,
}

pub struct Keystone {
    /// `http://host:5000`, without `/v3`.
    url: String,
    creds: ServiceCredentials,
    http: reqwest::Client,
    service_token: Mutex<Option<(String, Instant)>>,
    cache: std::sync::Mutex<HashMap<[u8; 32], (Identity, Instant)>>,
}

fn unavailable(why: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("Keystone cannot validate the token: {why}"))
}

impl Keystone {
    pub fn new(url: &str, creds: ServiceCredentials) -> Keystone {
        let url = url.trim_end_matches('/').trim_end_matches("/v3").trim_end_matches('/').to_owned();
        // No redirects: they would carry our token and password to wherever they point.
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Keystone { url, creds, http, service_token: Mutex::new(None), cache: Default::default() }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn validate(&self, token: &str) -> Result<Identity, ApiError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some((id, until)) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key)
            && Instant::now() < *until
        {
            return Ok(id.clone());
        }
        // One retry: our own token may have been revoked or expired early.
        for attempt in 0..2 {
            let service = self.service_token(attempt > 0).await?;
            let reply = self
                .http
                .get(format!("{}/v3/auth/tokens?nocatalog", self.url))
                .header("X-Auth-Token", &service)
                .header("X-Subject-Token", token)
                .send()
                .await
                .map_err(|e| unavailable(format!("{} is unreachable ({e})", self.url)))?;
            match reply.status().as_u16() {
                200 => {
                    let body: Value = reply.json().await.map_err(|e| unavailable(format!("unreadable reply: {e}")))?;
                    let (id, expires) = identity(&body).ok_or_else(unauthorized)?;
                    let until = Instant::now() + expires.min(CACHE_FOR);
                    let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
                    if cache.len() >= MAX_CACHED {
                        let now = Instant::now();
                        cache.retain(|_, (_, u)| *u > now);
                        if cache.len() >= MAX_CACHED {
                            cache.clear();
                        }
                    }
                    cache.insert(key, (id.clone(), until));
                    return Ok(id);
                }
                // The caller's token is unknown, revoked or expired.
                404 => return Err(unauthorized()),
                401 | 403 if attempt == 0 => continue,
                s => return Err(unavailable(format!("Keystone answered {s} to the validation"))),
            }
        }
        Err(unavailable("Keystone refused Holdfast's service credentials"))
    }

    /// Our own token, logging in when there is none, it is about to expire, or `renew`.
    async fn service_token(&self, renew: bool) -> Result<String, ApiError> {
        let mut slot = self.service_token.lock().await;
        if let Some((t, until)) = slot.as_ref()
            && !renew
            && Instant::now() + RENEW_BEFORE < *until
        {
            return Ok(t.clone());
        }
        let c = &self.creds;
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": c.user, "domain": {"name": c.user_domain}, "password": c.password}}},
            "scope": {"project": {"name": c.project, "domain": {"name": c.project_domain}}}}});
        let reply = self
            .http
            .post(format!("{}/v3/auth/tokens?nocatalog", self.url))
            .json(&body)
            .send()
            .await
            .map_err(|e| unavailable(format!("{} is unreachable ({e})", self.url)))?;
        if reply.status() != reqwest::StatusCode::CREATED {
            tracing::error!(status = %reply.status(), user = %c.user, "Keystone refused the service login");
            *slot = None;
            return Err(unavailable(format!(
                "Keystone refused the service user {:?} ({})",
                c.user,
                reply.status().as_u16()
            )));
        }
        let token = reply
            .headers()
            .get("x-subject-token")
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| unavailable("the service login returned no token"))?;
        let body: Value = reply.json().await.map_err(|e| unavailable(format!("unreadable reply: {e}")))?;
        let lifetime = expires_in(&body).unwrap_or(Duration::from_secs(600));
        *slot = Some((token.clone(), Instant::now() + lifetime));
        Ok(token)
    }
}

/// How long until `token.expires_at`.
fn expires_in(body: &Value) -> Option<Duration> {
    let at = Timestamp::parse(body["token"]["expires_at"].as_str()?)?;
    let left = at.micros() - Timestamp::now().micros();
    Some(Duration::from_micros(left.max(0) as u64))
}

/// The caller from a validation reply: project-scoped tokens only (Cinder's
/// resources belong to projects).
fn identity(body: &Value) -> Option<(Identity, Duration)> {
    let t = &body["token"];
    let project_id = t["project"]["id"].as_str()?;
    let user_id = t["user"]["id"].as_str()?;
    let roles = Roles::from_names(t["roles"].as_array()?.iter().filter_map(|r| r["name"].as_str()));
    let expires = expires_in(body)?;
    if expires.is_zero() {
        return None;
    }
    Some((Identity { user_id: user_id.into(), project_id: project_id.into(), roles }, expires))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_replies() {
        let later = Timestamp(Timestamp::now().micros() + 3_600_000_000).api();
        let body = json!({"token": {"user": {"id": "u1"}, "project": {"id": "p1"}, "expires_at": format!("{later}Z"),
            "roles": [{"id": "x", "name": "reader"}, {"id": "y", "name": "member"}]}});
        let (id, left) = identity(&body).unwrap();
        assert_eq!((id.user_id.as_str(), id.project_id.as_str()), ("u1", "p1"));
        assert_eq!(id.roles, Roles { admin: false, member: true, reader: true });
        assert!(left > Duration::from_secs(3500));
        // System-scoped (no project) and expired tokens are not accepted.
        let mut system = body.clone();
        system["token"].as_object_mut().unwrap().remove("project");
        assert!(identity(&system).is_none());
        let mut old = body;
        old["token"]["expires_at"] = json!("2000-01-01T00:00:00.000000Z");
        assert!(identity(&old).is_none());
    }

    #[tokio::test]
    async fn unreachable_keystone_is_503_never_a_pass() {
        // Nothing listens on port 9 of loopback.
        let k = Keystone::new(
            "http://127.0.0.1:9/v3/",
            ServiceCredentials {
                user: "u".into(),
                password: "p".into(),
                project: "service".into(),
                user_domain: "Default".into(),
                project_domain: "Default".into(),
            },
        );
        assert_eq!(k.url(), "http://127.0.0.1:9");
        let e = k.validate("whatever").await.unwrap_err();
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE, "{}", e.message);
    }
}
