//! The accept loop: hyper http1 over tokio, bodies read up to [`MAX_BODY`], graceful
//! shutdown when `shutdown` resolves (in-flight requests finish).
//!
//! A slow or idle client holds nothing for ever: request headers must arrive within
//! [`HEADER_TIMEOUT`] (which also ends idle keep-alive connections), a body within
//! [`BODY_TIMEOUT`], a reply must keep moving ([`crate::stall::WRITE_STALL`]), and at most [`MAX_CONNECTIONS`] connections are open at once
//! (further clients wait in the kernel's accept queue).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::body::MAX_BODY;
use crate::error::ApiError;
use crate::stall::{WRITE_STALL, WriteDeadline};
use crate::{Api, HttpResponse};

/// How long shutdown waits for open connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Time to receive a request's headers, and the longest a keep-alive connection idles.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Time to receive a request's body once its headers are in.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 1024;

async fn answer(api: Arc<Api>, req: Request<Incoming>) -> Result<HttpResponse, Infallible> {
    let (parts, body) = req.into_parts();
    let bytes = match tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, MAX_BODY).collect()).await {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            let e = ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("Request body is over {MAX_BODY} bytes"));
            return Ok(e.response());
        }
        // The client closed or broke the body midway (shorter than its Content-Length).
        Ok(Err(_)) => return Ok(ApiError::bad_request("Malformed request body: the body ended early").response()),
        Err(_) => {
            let e = ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!("The request body did not arrive within {} s", BODY_TIMEOUT.as_secs()),
            );
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
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        // A free slot first, so the cap holds; shutdown is heard while waiting for one.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(s) => s,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors (EMFILE) or similar: pause instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                let api = api.clone();
                connections.spawn(async move {
                    let _slot = slot;
                    let svc = service_fn(move |req| answer(api.clone(), req));
                    let conn = http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(HEADER_TIMEOUT)
                        .serve_connection(TokioIo::new(WriteDeadline::new(stream, WRITE_STALL)), svc);
                    if let Err(e) = conn.await {
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
