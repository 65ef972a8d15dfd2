//! Notifications: Cinder's `backup.*` events, recorded in the `events` table and fanned
//! out live to subscribers (the API's server-sent-event stream).
//!
//! | operation | events |
//! |---|---|
//! | create | `backup.create.start`, `backup.createprogress` (every 10 %, and 100 at the end), `backup.create.end` or `.error` |
//! | restore | `backup.restore.start`, `backup.restoreprogress`, `backup.restore.end` (also after a cancel) or `.error` |
//! | delete | `backup.delete.start`, `backup.delete.end` or `.error` |
//! | reset-status | `backup.reset_status.start`, `backup.reset_status.end` |
//!
//! Cinder sends nothing when a create fails; Holdfast adds `.error` events (priority
//! `ERROR`) so a watcher learns of failures without polling.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use holdfast_db::EventFilter;
use holdfast_types::{Backup, Event, EventOp, EventPhase, EventType, Timestamp};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::progress::Operation;
use crate::{Manager, ManagerError, RequestContext};

/// How often a running operation's progress is looked at for `*progress` events.
const PROGRESS_POLL: Duration = Duration::from_millis(200);
/// Live subscribers that fall this far behind miss events (they can re-read the table).
const CHANNEL: usize = 1024;
/// Most events one listing returns.
pub const MAX_EVENT_LIMIT: i64 = 1000;

pub(crate) struct Notifier {
    tx: broadcast::Sender<Event>,
    /// Last timestamp handed out: events get strictly increasing times, so
    /// (created_at, id) is a stable order and cursor.
    clock: Mutex<i64>,
}

impl Notifier {
    pub(crate) fn new(last: Option<Timestamp>) -> Self {
        Notifier { tx: broadcast::channel(CHANNEL).0, clock: Mutex::new(last.map_or(0, Timestamp::micros)) }
    }

    fn tick(&self) -> Timestamp {
        let mut last = self.clock.lock().expect("event clock");
        *last = Timestamp::now().micros().max(*last + 1);
        Timestamp(*last)
    }
}

/// Cinder's notification payload for a backup.
fn payload(b: &Backup, host: &str, extra: Value) -> Value {
    let mut p = json!({
        "tenant_id": b.project_id,
        "user_id": b.user_id,
        "availability_zone": b.availability_zone,
        "backup_id": b.id,
        "host": host,
        "display_name": b.display_name,
        "created_at": b.created_at.python_str(),
        "status": b.status.as_str(),
        "volume_id": b.volume_id,
        "size": b.size,
        "service_metadata": b.service_metadata,
        "service": b.service,
        "fail_reason": b.fail_reason,
        "parent_id": b.parent_id,
        "num_dependent_backups": b.num_dependent_backups,
        "snapshot_id": b.snapshot_id,
    });
    if let (Some(p), Value::Object(extra)) = (p.as_object_mut(), extra) {
        p.extend(extra);
    }
    p
}

impl Manager {
    /// Record and publish `event_type` for the backup as it is now in the database.
    /// Never fails the operation: a lost notification is logged, not raised.
    pub(crate) async fn notify(&self, backup_id: &str, event_type: EventType, extra: Value) {
        let b = match self.db.get_backup(backup_id).await {
            Ok(Some(b)) => b,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, %event_type, "could not read the backup for a notification");
                return;
            }
        };
        let event = Event {
            id: uuid::Uuid::new_v4().to_string(),
            event_type,
            priority: event_type.priority().to_owned(),
            publisher_id: format!("backup.{}", self.config.host),
            project_id: b.project_id.clone(),
            backup_id: b.id.clone(),
            payload: payload(&b, &self.config.host, extra).to_string(),
            created_at: self.events.tick(),
        };
        if let Err(e) = self.db.insert_event(&event).await {
            tracing::warn!(error = %e, %event_type, "could not record a notification");
        }
        tracing::debug!(%event_type, backup_id, "notification");
        self.metrics.notified(event_type);
        let _ = self.events.tx.send(event); // no subscribers is fine
    }

    /// Live events from now on, of every project (callers filter).
    pub fn subscribe_events(&self) -> broadcast::Receiver<Event> {
        self.events.tx.subscribe()
    }

    /// Recorded events of the caller's project, oldest first: the latest `limit`, or the
    /// first `limit` after the event `after`.
    pub async fn list_events(
        &self,
        ctx: &RequestContext,
        backup_id: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Event>, ManagerError> {
        if !(1..=MAX_EVENT_LIMIT).contains(&limit) {
            return Err(ManagerError::Invalid(format!(
                "Invalid input received: limit must be between 1 and {MAX_EVENT_LIMIT}, got {limit}"
            )));
        }
        let f = EventFilter { project_id: Some(&ctx.project_id), backup_id, after, limit };
        Ok(self.db.list_events(&f).await?)
    }

    /// Publish `backup.<op>progress` at each 10 % step while `op` runs on the backup,
    /// until [`ProgressWatch::stop`].
    pub(crate) fn watch_progress(self: &Arc<Self>, backup_id: &str, op: Operation) -> ProgressWatch {
        let (m, id) = (self.clone(), backup_id.to_owned());
        let stop = Arc::new(tokio::sync::Notify::new());
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let mut reported = 0;
            loop {
                tokio::select! {
                    _ = stopped.notified() => return,
                    _ = tokio::time::sleep(PROGRESS_POLL) => {}
                }
                let Some(p) = m.progress.get(&id) else { return };
                if p.operation != op || p.bytes_total == 0 {
                    continue;
                }
                let step = p.bytes_done * 10 / p.bytes_total * 10;
                if step > reported && step < 100 {
                    reported = step;
                    m.notify(&id, progress_event(op), json!({"backup_percent": step})).await;
                }
            }
        });
        ProgressWatch { stop, task }
    }
}

/// A running operation's progress publisher.
pub(crate) struct ProgressWatch {
    stop: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl ProgressWatch {
    /// Stop publishing and wait until a progress event being written is done, so no
    /// progress event can follow the operation's `.end`.
    pub(crate) async fn stop(self) {
        self.stop.notify_one(); // a stored permit if the task is busy writing
        let _ = self.task.await;
    }
}

/// Delete notifications older than `keep`, now and every `interval`, while the manager lives.
pub(crate) fn spawn_pruner(m: std::sync::Weak<Manager>, keep: Duration, interval: Duration) {
    tokio::spawn(async move {
        loop {
            let Some(m) = m.upgrade() else { return };
            let before = Timestamp(Timestamp::now().micros() - keep.as_micros().min(i64::MAX as u128) as i64);
            match m.db.prune_events(before).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(events = n, "pruned old notifications"),
                Err(e) => tracing::warn!(error = %e, "could not prune old notifications"),
            }
            drop(m);
            tokio::time::sleep(interval).await;
        }
    });
}

/// `backup.createprogress` / `backup.restoreprogress` (Cinder's names).
pub(crate) fn progress_event(op: Operation) -> EventType {
    let op = match op {
        Operation::Create => EventOp::Create,
        Operation::Restore => EventOp::Restore,
        // Only creates and restores are watched; snapshot copies notify nothing.
        Operation::Delete | Operation::Snapshot => EventOp::Delete,
    };
    EventType::new(op, EventPhase::Progress)
}
