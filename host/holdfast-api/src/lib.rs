//! Holdfast's Cinder-v3-compatible HTTP API on hyper.
//!
//! - [`server`]: the accept loop (hyper http1) and graceful shutdown.
//! - [`router`]: method + path → [`router::Endpoint`]; handlers never parse paths.
//! - [`microversion`]: the `OpenStack-API-Version` header (3.0 … [`MAX_VERSION`]).
//! - [`error`]: Cinder-shaped errors (`{"badRequest": {"code": 400, "message": …}}`).
//! - `backups`, `volumes`, `versions`, `services`: handlers, with views in `views`.
//!
//! [`Api::dispatch`] is the whole service as a function of a request; tests call it
//! without a socket. Internals are logged, never sent: a 500 says only that the
//! server failed.

pub mod auth;
mod backups;
mod body;
pub mod error;
mod events;
pub mod microversion;
mod operator;
mod paging;
mod plugins;
pub mod policy;
pub mod router;
pub mod server;
mod services;
mod snapshots;
mod stall;
mod versions;
mod views;
mod volumes;

use std::sync::Arc;

use bytes::Bytes;
use holdfast_driver::{Caller, CallerToken};
use holdfast_manager::{Manager, ManagerConfig, RequestContext};
use hyper::{HeaderMap, Method, Response, StatusCode};
use tracing::Instrument;

pub use error::ApiError;
pub use microversion::{MAX_VERSION, MIN_VERSION, Version};
pub use server::serve;

/// Project of the host's admin token, and of noauth requests that name none
/// (the hex spelling of "holdfast": Cinder project ids are hex).
pub const DEFAULT_PROJECT: &str = "686f6c6466617374";
const DEFAULT_USER: &str = "holdfast";

pub use auth::{Auth, Identity, Roles};

/// Bodies are boxed: JSON replies are one buffer, the event stream is open-ended.
pub type HttpResponse = Response<http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>>;

/// Everything a handler needs to answer one request.
pub struct Call<'a> {
    pub ctx: RequestContext,
    pub roles: Roles,
    pub config: &'a ManagerConfig,
    pub version: Version,
    /// `--public-url` (Cinder's `public_endpoint`), for links; never the request's Host.
    pub base_url: String,
    /// Whether the URL carried the project id (links keep the same shape).
    pub project_in_url: bool,
    pub query: Vec<(String, String)>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

impl Call<'_> {
    /// `…/v3/{p}` or `…/v3` as the client used it.
    pub fn api_base(&self) -> String {
        if self.project_in_url {
            format!("{}/v3/{}", self.base_url, self.ctx.project_id)
        } else {
            format!("{}/v3", self.base_url)
        }
    }

    /// Bookmark base: the same without the version segment.
    pub fn bookmark_base(&self) -> String {
        if self.project_in_url { format!("{}/{}", self.base_url, self.ctx.project_id) } else { self.base_url.clone() }
    }

    /// The client asked for Holdfast's extra fields (`X-Holdfast-Extensions: true`);
    /// stock Cinder clients and tempest get Cinder's exact shapes.
    pub fn extensions(&self) -> bool {
        self.headers
            .get("x-holdfast-extensions")
            .and_then(|h| h.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
    }

    pub fn query(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Host paths and other operator details: admins who asked for extensions.
    pub fn operator_view(&self) -> bool {
        self.roles.admin && self.extensions()
    }
}

pub struct Api {
    pub manager: Arc<Manager>,
    auth: Auth,
    /// Scheme, host and path prefix clients reach us at (no trailing slash).
    public_url: String,
    latency: holdfast_manager::metrics::Histograms,
    /// Set when the server stops accepting: open event streams end, so shutdown does
    /// not wait on clients that would never hang up.
    closing: tokio::sync::watch::Sender<bool>,
}

impl Api {
    pub fn new(manager: Arc<Manager>, auth: Auth, public_url: &str) -> Arc<Api> {
        Arc::new(Api {
            manager,
            auth,
            public_url: public_url.trim_end_matches('/').to_owned(),
            latency: Default::default(),
            closing: tokio::sync::watch::channel(false).0,
        })
    }

    fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// End the open event streams (the server is shutting down).
    pub fn close_streams(&self) {
        self.closing.send_replace(true);
    }

    /// Answer one request. Never fails: errors become Cinder error bodies.
    pub async fn dispatch(
        &self,
        method: &Method,
        path_and_query: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> HttpResponse {
        let request_id = format!("req-{}", uuid::Uuid::new_v4());
        let started = std::time::Instant::now();
        let span = tracing::info_span!("http", %method, path = %path_and_query, request_id = %request_id, user = tracing::field::Empty);
        // `instrument`, not `span.enter()`: an entered guard held across `.await` leaves
        // the span on whichever thread the task last ran on, and tracing's registry then
        // panics cloning it once closed (seen as dropped connections under load).
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        // Routed once: the handler and the latency metric's label both use it.
        let routed = router::route(method, path);
        let endpoint = routed.as_ref().map_or("unrouted", |r| r.endpoint.name());
        let response = async {
            let version = match microversion::negotiate(headers) {
                Ok(v) => v,
                Err(e) => return error::with_headers(e.response(), None, &request_id),
            };
            let result = self.route(routed, query, headers, body, version).await;
            let response = match result {
                Ok(r) => r,
                Err(e) => {
                    if e.status == StatusCode::INTERNAL_SERVER_ERROR {
                        tracing::error!(error = %e.message, "request failed");
                    }
                    e.response()
                }
            };
            error::with_headers(response, Some(version), &request_id)
        }
        .instrument(span)
        .await;
        self.observe(endpoint, response.status(), started);
        response
    }

    fn observe(&self, endpoint: &str, status: StatusCode, started: std::time::Instant) {
        let class = format!("{}xx", status.as_u16() / 100);
        self.latency.observe(format!("endpoint=\"{endpoint}\",status=\"{class}\""), started.elapsed().as_secs_f64());
    }

    async fn route(
        &self,
        routed: Result<router::Route, ApiError>,
        query: &str,
        headers: &HeaderMap,
        body: &[u8],
        version: Version,
    ) -> Result<HttpResponse, ApiError> {
        let route = routed?;
        let base_url = self.public_url.clone();
        let project_in_url = route.project.is_some();
        let identity = if policy::rule(&route.endpoint, body).1 == policy::Need::Nothing {
            // Version documents: clients discover before they have a token.
            Identity { user_id: String::new(), project_id: DEFAULT_PROJECT.into(), roles: Roles::default() }
        } else {
            let id = self.auth.identify(headers, route.project.as_deref()).await?;
            if let Some(p) = &route.project
                && *p != id.project_id
            {
                return Err(ApiError::bad_request(format!(
                    "Malformed request URL: URL's project_id '{p}' doesn't match Context's project_id '{}'",
                    id.project_id
                )));
            }
            policy::authorize(&route.endpoint, body, id.roles)?;
            body::check_content_type(headers, body)?;
            id
        };
        tracing::Span::current().record("user", &identity.user_id);
        // A Keystone token the operation may pass on (Swift's per_user backends); the
        // other modes' tokens mean nothing to an object store.
        let caller = match &self.auth {
            auth::Auth::Keystone(_) => auth::token(headers)
                .map(|t| Caller { project_id: identity.project_id.clone(), token: CallerToken::new(t) }),
            _ => None,
        };
        let call = Call {
            ctx: RequestContext {
                project_id: identity.project_id,
                user_id: identity.user_id,
                is_admin: identity.roles.admin,
                caller,
            },
            roles: identity.roles,
            config: self.manager.config(),
            version,
            base_url,
            project_in_url,
            query: parse_query(query),
            headers,
            body,
        };
        router::handle(self, route.endpoint, &call).await
    }
}

fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Query-string encoding for links we build from decoded parameters.
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode() {
        assert_eq!(
            parse_query("sort=created_at%3Aasc&name=a+b&x"),
            vec![("sort".into(), "created_at:asc".into()), ("name".into(), "a b".into()), ("x".into(), "".into())]
        );
        assert_eq!(percent_decode("100%"), "100%");
        for s in ["a&b", "x+y z", "name~", "ü/%"] {
            assert_eq!(percent_decode(&percent_encode(s)), s);
        }
    }
}
