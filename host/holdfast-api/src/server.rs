//! The accept loop: hyper http1 over tokio, bodies read up to [`MAX_BODY`], graceful
//! shutdown when `shutdown` resolves (in-flight requests finish).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::body::MAX_BODY;
use crate::error::ApiError;
use crate::{Api, HttpResponse};

/// How long shutdown waits for open connections.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

async fn answer(api: Arc<Api>, req: Request<Incoming>) -> Result<HttpResponse, Infallible> {
    let (parts, body) = req.into_parts();
    let bytes = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            let e = ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("Request body is over {MAX_BODY} bytes"));
            return Ok(e.response());
        }
    };
    let pq = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    Ok(api.dispatch(&parts.method, pq, &parts.headers, &bytes).await)
}

/// Serve until `shutdown` resolves.
pub async fn serve(listener: TcpListener, api: Arc<Api>, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                };
                let api = api.clone();
                connections.spawn(async move {
                    let svc = service_fn(move |req| answer(api.clone(), req));
                    if let Err(e) = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    api.close_streams();
    // Let in-flight requests finish; idle keep-alive connections do not hold us up.
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        tracing::warn!(open = connections.len(), "connections still open after the shutdown grace; closing them");
        connections.abort_all();
    }
    Ok(())
}
