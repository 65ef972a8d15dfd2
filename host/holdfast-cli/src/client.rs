//! The blocking HTTP client for the server's Cinder v3 API: builds
//! `{url}/v3/{project}/...` URLs, sends the headers every request needs, and
//! maps transport failures and non-2xx replies to one-line errors.

use std::error::Error as StdError;
use std::io;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use reqwest::Method;
use reqwest::Url;
use reqwest::blocking::Client as Http;
use serde_json::Value;

use crate::args::ClientArgs;
use crate::fault::ApiError;

/// Cinder microversion the client speaks.
pub const API_VERSION: &str = "volume 3.64";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// A connection to one Holdfast server, acting as one project.
#[derive(Debug, Clone)]
pub struct Client {
    http: Http,
    /// `{url}/v3/{project}`.
    base: Url,
    /// The server URL as the user gave it, for error messages.
    server: String,
    /// Sent as `X-Auth-Token` when there is one.
    token: Option<String>,
}

/// The token to send: `--token` / `HOLDFAST_TOKEN`, else the admin token a local
/// server wrote in its data dir.
fn token(args: &ClientArgs) -> Option<String> {
    if let Some(t) = args.token.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        return Some(t.to_owned());
    }
    let dir = std::env::var_os("HOLDFAST_DATA_DIR").unwrap_or_else(|| "holdfast-data".into());
    let text = std::fs::read_to_string(std::path::Path::new(&dir).join("admin-token")).ok()?;
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

impl Client {
    /// Validates `--url` / `--project` and prepares the HTTP client.
    pub fn new(args: &ClientArgs) -> Result<Self> {
        let project = args.project.trim();
        if project.is_empty() {
            bail!("--project must not be empty");
        }
        let (server, base) = base_url(&args.url, project)?;
        let http = Http::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("holdfast-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Self { http, base, server, token: token(args) })
    }

    /// `{base}/{segments...}`, each segment percent-encoded (so names with
    /// `/` or spaces stay one path segment).
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.extend(segments);
        }
        url
    }

    /// GET a resource; a 404 surfaces as an [`ApiError`] (see [`crate::fault::is_not_found`]).
    pub fn get(&self, segments: &[&str]) -> Result<Value> {
        self.send(Method::GET, self.url(segments), None)
    }

    /// GET with query parameters, e.g. `?name=foo`.
    pub fn get_query(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<Value> {
        let mut url = self.url(segments);
        url.query_pairs_mut().extend_pairs(query);
        self.send(Method::GET, url, None)
    }

    /// POST a JSON body; returns the reply body (`Null` when empty).
    pub fn post(&self, segments: &[&str], body: &Value) -> Result<Value> {
        self.send(Method::POST, self.url(segments), Some(body))
    }

    /// DELETE a resource; returns the reply body (`Null` when empty).
    pub fn delete(&self, segments: &[&str]) -> Result<Value> {
        self.send(Method::DELETE, self.url(segments), None)
    }

    /// Open a server-sent-event stream (`Accept: text/event-stream`), with no overall
    /// timeout: the reply body is read as events arrive, for as long as it lasts.
    pub fn open_stream(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<reqwest::blocking::Response> {
        let mut url = self.url(segments);
        url.query_pairs_mut().extend_pairs(query);
        let http = Http::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(None)
            .build()
            .context("cannot set up the HTTP client")?;
        let reply = self
            .authed(http.get(url))
            .header("Accept", "text/event-stream")
            .header("OpenStack-API-Version", API_VERSION)
            .send()
            .map_err(|e| transport_error(&self.server, &e))?;
        let status = reply.status();
        if !status.is_success() {
            let text = reply.text().unwrap_or_default();
            return Err(ApiError::from_reply(status.as_u16(), &text).into());
        }
        Ok(reply)
    }

    fn authed(&self, req: reqwest::blocking::RequestBuilder) -> reqwest::blocking::RequestBuilder {
        match &self.token {
            Some(t) => req.header("X-Auth-Token", t),
            None => req,
        }
    }

    fn send(&self, method: Method, url: Url, body: Option<&Value>) -> Result<Value> {
        let mut req = self
            .authed(self.http.request(method.clone(), url.clone()))
            .header("Accept", "application/json")
            .header("OpenStack-API-Version", API_VERSION)
            .header("X-Holdfast-Extensions", "true");
        if let Some(body) = body {
            req = req.json(body);
        }
        let reply = req.send().map_err(|e| transport_error(&self.server, &e))?;
        let status = reply.status();
        let text = reply.text().map_err(|e| transport_error(&self.server, &e))?;
        if !status.is_success() {
            return Err(ApiError::from_reply(status.as_u16(), &text).into());
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text)
            .map_err(|e| anyhow!("the server sent a reply that is not JSON to {method} {}: {e}", url.path()))
    }
}

/// Runs `work` on a fresh thread. reqwest's blocking client panics when used
/// from inside an async runtime (e.g. a `#[tokio::main]` binary), so the
/// public entry points never run on the caller's thread.
pub fn on_own_thread<T: Send>(work: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|scope| match scope.spawn(work).join() {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// Parses `--url` (adding `http://` when no scheme is given) and appends
/// `/v3/{project}`, keeping any path prefix (e.g. behind a reverse proxy).
fn base_url(raw: &str, project: &str) -> Result<(String, Url)> {
    let trimmed = raw.trim();
    let with_scheme = if trimmed.contains("://") { trimmed.to_owned() } else { format!("http://{trimmed}") };
    let mut url = Url::parse(&with_scheme).map_err(|e| anyhow!("invalid --url '{raw}': {e}"))?;
    if url.scheme() != "http" {
        bail!("unsupported --url scheme '{}': the Holdfast client speaks plain http", url.scheme());
    }
    url.set_query(None);
    url.set_fragment(None);
    let prefix = url.path().trim_end_matches('/').to_owned();
    url.set_path(&prefix);
    url.path_segments_mut()
        .map_err(|()| anyhow!("invalid --url '{raw}': it cannot have a path"))?
        .pop_if_empty()
        .extend(["v3", project]);
    let server = with_scheme.trim_end_matches('/').to_owned();
    Ok((server, url))
}

/// One line for a request that got no HTTP reply.
fn transport_error(server: &str, err: &reqwest::Error) -> anyhow::Error {
    let cause = root_cause(err);
    if err.is_connect() {
        anyhow!("cannot reach the Holdfast server at {server}: {cause} (is `holdfast serve` running?)")
    } else if err.is_timeout() {
        anyhow!("the Holdfast server at {server} did not answer in time: {cause}")
    } else {
        anyhow!("request to the Holdfast server at {server} failed: {cause}")
    }
}

/// The innermost error in the chain, in plain words for common socket errors.
fn root_cause(err: &(dyn StdError + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    if let Some(io) = current.downcast_ref::<io::Error>() {
        let plain = match io.kind() {
            io::ErrorKind::ConnectionRefused => Some("connection refused"),
            io::ErrorKind::ConnectionReset => Some("connection reset by the server"),
            io::ErrorKind::ConnectionAborted => Some("connection aborted"),
            io::ErrorKind::TimedOut => Some("timed out"),
            io::ErrorKind::UnexpectedEof => Some("the server closed the connection"),
            _ => None,
        };
        if let Some(plain) = plain {
            return plain.to_owned();
        }
    }
    let text = current.to_string();
    if text.is_empty() { err.to_string() } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stub::{Reply, Stub};

    fn client_for(url: &str) -> Client {
        Client::new(&ClientArgs {
            url: url.to_owned(),
            project: "abc".to_owned(),
            token: Some("t0ken".into()),
            ..ClientArgs::default()
        })
        .expect("client")
    }

    #[test]
    fn base_url_shapes() {
        let (_, u) = base_url("http://h:8776/", "p1").unwrap();
        assert_eq!(u.as_str(), "http://h:8776/v3/p1");
        let (server, u) = base_url("h:8776", "p1").unwrap();
        assert_eq!(server, "http://h:8776");
        assert_eq!(u.as_str(), "http://h:8776/v3/p1");
        let (_, u) = base_url("http://h/cinder//?x=1", "p1").unwrap();
        assert_eq!(u.as_str(), "http://h/cinder/v3/p1");
        let (server, u) = base_url(" http://h:1// ", "p1").unwrap();
        assert_eq!(server, "http://h:1");
        assert_eq!(u.as_str(), "http://h:1/v3/p1");
    }

    #[test]
    fn bad_urls_are_rejected() {
        let err = base_url("https://h", "p").unwrap_err().to_string();
        assert!(err.contains("unsupported --url scheme 'https'"), "{err}");
        let err = base_url("http://", "p").unwrap_err().to_string();
        assert!(err.starts_with("invalid --url"), "{err}");
        let args = ClientArgs { project: " ".into(), ..ClientArgs::default() };
        assert!(Client::new(&args).is_err());
    }

    #[test]
    fn segments_are_percent_encoded() {
        let c = client_for("http://h:1");
        assert_eq!(c.url(&["volumes", "a b/c"]).as_str(), "http://h:1/v3/abc/volumes/a%20b%2Fc");
    }

    #[test]
    fn sends_cinder_headers_and_json() {
        let stub = Stub::start(|_| Reply::json(202, r#"{"volume": {"id": "v1"}}"#));
        let c = client_for(&stub.url());
        let body = serde_json::json!({"volume": {"size": 1}});
        let reply = c.post(&["volumes"], &body).unwrap();
        assert_eq!(reply["volume"]["id"], "v1");
        let reqs = stub.requests();
        assert_eq!(reqs.len(), 1);
        let r = &reqs[0];
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/v3/abc/volumes");
        assert_eq!(r.header("accept"), Some("application/json"));
        assert_eq!(r.header("x-auth-token"), Some("t0ken"));
        assert_eq!(r.header("openstack-api-version"), Some("volume 3.64"));
        assert_eq!(r.json(), body);
    }

    #[test]
    fn error_replies_become_one_line() {
        let stub =
            Stub::start(|_| Reply::json(400, r#"{"badRequest": {"code": 400, "message": "Invalid volume: busy"}}"#));
        let err = client_for(&stub.url()).get(&["volumes", "x"]).unwrap_err();
        assert_eq!(err.to_string(), "Invalid volume: busy (HTTP 400)");
    }

    #[test]
    fn empty_and_non_json_success_bodies() {
        let stub = Stub::start(|r| match r.method.as_str() {
            "DELETE" => Reply::json(202, ""),
            _ => Reply::json(200, "not json"),
        });
        let c = client_for(&stub.url());
        assert_eq!(c.delete(&["backups", "b"]).unwrap(), Value::Null);
        let err = c.get(&["backups", "b"]).unwrap_err().to_string();
        assert!(err.contains("not JSON to GET /v3/abc/backups/b"), "{err}");
    }

    #[test]
    fn connection_refused_is_explained() {
        let url = crate::stub::closed_port_url();
        let err = client_for(&url).get(&["volumes"]).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "cannot reach the Holdfast server at {url}: connection refused \
                 (is `holdfast serve` running?)"
            )
        );
    }
}
