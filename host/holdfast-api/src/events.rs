//! `/events` (Holdfast extension): the recorded `backup.*` notifications of the
//! caller's project, as a list or as a live server-sent-event stream.
//!
//! - `GET /events?backup_id=&since=&limit=`: oldest first; the latest `limit` (default
//!   100), or with `since=EVENT_ID` the ones after that event (pagination).
//! - `GET /events/stream?backup_id=`: `text/event-stream`, one `event:` per notification
//!   with the event id as `id:`; a client that reconnects with `Last-Event-ID` (or
//!   `since=`) first gets what it missed from the table, then live events.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use holdfast_manager::{MAX_EVENT_LIMIT, Manager};
use holdfast_types::Event;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, watch};

use crate::error::{ApiError, json_response};
use crate::{Call, HttpResponse};

const DEFAULT_LIMIT: i64 = 100;
/// A comment line this often keeps proxies from closing an idle stream and tells us
/// when the client has gone.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub fn view(e: &Event) -> Value {
    json!({
        "id": e.id,
        "event_type": e.event_type.to_string(),
        "priority": e.priority,
        "publisher_id": e.publisher_id,
        "backup_id": e.backup_id,
        "timestamp": e.created_at.api(),
        "payload": serde_json::from_str::<Value>(&e.payload).unwrap_or(Value::Null),
    })
}

fn limit(call: &Call<'_>) -> Result<i64, ApiError> {
    match call.query("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(l) => l.parse().map_err(|_| ApiError::bad_request(format!("Invalid input received: limit {l:?}"))),
    }
}

pub async fn list(m: &Manager, call: &Call<'_>) -> Result<HttpResponse, ApiError> {
    let events = m.list_events(&call.ctx, call.query("backup_id"), call.query("since"), limit(call)?).await?;
    let items: Vec<Value> = events.iter().map(view).collect();
    Ok(json_response(StatusCode::OK, &json!({"events": items})))
}

/// One SSE message.
fn frame(e: &Event) -> Bytes {
    Bytes::from(format!("id: {}\nevent: {}\ndata: {}\n\n", e.id, e.event_type, view(e)))
}

pub async fn stream(
    m: &Arc<Manager>,
    call: &Call<'_>,
    mut closing: watch::Receiver<bool>,
) -> Result<HttpResponse, ApiError> {
    let since = call
        .headers
        .get("last-event-id")
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| call.query("since").map(str::to_owned));
    let backup = call.query("backup_id").map(str::to_owned);
    let project = call.ctx.project_id.clone();
    // Subscribe before reading the table, so nothing falls between the two.
    let mut live = m.subscribe_events();
    let missed = match &since {
        Some(after) => m.list_events(&call.ctx, backup.as_deref(), Some(after), MAX_EVENT_LIMIT).await?,
        None => Vec::new(),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let mut last = None;
        if tx.send(Bytes::from_static(b": holdfast events\n\n")).await.is_err() {
            return;
        }
        for e in &missed {
            if tx.send(frame(e)).await.is_err() {
                return;
            }
            last = Some((e.created_at, e.id.clone()));
        }
        loop {
            let out = tokio::select! {
                got = live.recv() => match got {
                    Ok(e) if e.project_id != project => continue,
                    Ok(e) if backup.as_deref().is_some_and(|b| b != e.backup_id) => continue,
                    Ok(e) if last.as_ref().is_some_and(|l| (e.created_at, e.id.clone()) <= *l) => continue,
                    Ok(e) => frame(&e),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        Bytes::from(format!(": {n} events skipped; re-read them with GET /events?since=\n\n"))
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tokio::time::sleep(KEEP_ALIVE) => Bytes::from_static(b": keep-alive\n\n"),
                _ = closing.wait_for(|c| *c) => return, // the server is stopping: end the body
            };
            if tx.send(out).await.is_err() {
                return; // the client went away
            }
        }
    });
    let mut r = Response::new(SseBody(rx).boxed());
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    r.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(r)
}

/// A body fed from a channel; it ends when the sender does.
struct SseBody(mpsc::Receiver<Bytes>);

impl Body for SseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}
