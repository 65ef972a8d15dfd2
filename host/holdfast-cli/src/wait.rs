//! `--wait`: follow a backup operation (create, delete, restore) until it ends,
//! drawing a progress bar on stderr meanwhile.
//!
//! The end is learnt from the server's event stream (the Holdfast extension `GET
//! .../events/stream?backup_id=`): every event of the backup wakes the wait to look
//! at its status at once, so `--wait` returns when the operation ends rather than up
//! to a poll later. Without the stream (a stock Cinder) the status is polled. The bar
//! reads `GET .../backups/{id}/progress`; when that endpoint is missing or idle it
//! just spins next to the current status.

use std::io::{BufRead, BufReader, IsTerminal};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use holdfast_types::{BackupStatus, SnapshotStatus, VolumeStatus};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

use crate::client::Client;
use crate::fault::{is_not_found, one_line};
use crate::progress::{Progress, RateMeter, status_line};

/// How often the server is asked for status and progress while a bar is drawn, or
/// while there is no event stream to wake the wait.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// With the event stream and nothing to draw: a status check this often all the same,
/// in case the stream says nothing (it carries the caller's project's events: an admin
/// waiting on another project's backup hears none).
pub const STREAM_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Bar resolution: one tick per 0.1 %.
const BAR_LEN: u64 = 1000;
const SPIN_TEMPLATE: &str = "{spinner} {prefix} {msg} [{elapsed}]";
const BAR_TEMPLATE: &str = "{spinner} {prefix} [{wide_bar}] {msg}";
/// Ids in the bar are shortened so the line fits an 80-column terminal.
const SHORT_ID: usize = 8;

/// What one look at the server concluded.
enum Step<T> {
    /// Still running; the text is the current status, for the spinner.
    Pending(String),
    Done(T),
}

/// Waits for `backups/{id}` to become `available`; returns its `GET` reply.
pub fn backup_created(client: &Client, id: &str, show_bar: bool) -> Result<Value> {
    let prefix = format!("Creating backup {}", short_id(id));
    poll(
        prefix,
        show_bar,
        wake_on_events(client, id),
        || fetch_progress(client, id),
        || {
            let reply = client.get(&["backups", id])?;
            let backup = &reply["backup"];
            match status(backup, "backup")? {
                BackupStatus::Available => Ok(Step::Done(reply.clone())),
                BackupStatus::Error => bail!("backup {id} failed: {}", fail_reason(backup)),
                other => Ok(Step::Pending(other.to_string())),
            }
        },
    )
}

/// Waits for `snapshots/{id}` to become `available`; returns its `GET` reply.
pub fn snapshot_created(client: &Client, id: &str, show_bar: bool) -> Result<Value> {
    let prefix = format!("Creating snapshot {}", short_id(id));
    // Cinder's `progress` attribute ("37%") of the copy, as bytes of the snapshot's size;
    // read from the same reply the status check fetched (poll checks first).
    let copied = |s: &Value| {
        let pct: u64 = s["os-extended-snapshot-attributes:progress"].as_str()?.strip_suffix('%')?.parse().ok()?;
        let total = s["holdfast:size_bytes"].as_u64()?;
        (s["status"] == SnapshotStatus::Creating.as_str()).then(|| Progress {
            operation: Some("snapshot".into()),
            bytes_done: total / 100 * pct,
            bytes_total: total,
            percent: Some(pct as f64),
            bytes_moved: None,
        })
    };
    let last = std::cell::Cell::new(None);
    poll(
        prefix,
        show_bar,
        None,
        || last.take(),
        || {
            let reply = client.get(&["snapshots", id])?;
            last.set(copied(&reply["snapshot"]));
            match status(&reply["snapshot"], "snapshot")? {
                SnapshotStatus::Available => Ok(Step::Done(reply.clone())),
                SnapshotStatus::Error => bail!("snapshot {id} failed: the copy could not be made (see the server log)"),
                other => Ok(Step::Pending(other.to_string())),
            }
        },
    )
}

/// Waits until `backups/{id}` answers 404.
pub fn backup_deleted(client: &Client, id: &str, show_bar: bool) -> Result<()> {
    let prefix = format!("Deleting backup {}", short_id(id));
    // A delete removes objects: there is no byte count to draw, only the status.
    poll(
        prefix,
        show_bar,
        wake_on_events(client, id),
        || None,
        || {
            let reply = match client.get(&["backups", id]) {
                Err(e) if is_not_found(&e) => return Ok(Step::Done(())),
                other => other?,
            };
            let backup = &reply["backup"];
            match status(backup, "backup")? {
                BackupStatus::Error | BackupStatus::ErrorDeleting => {
                    bail!("deleting backup {id} failed: {}", fail_reason(backup))
                }
                other => Ok(Step::Pending(other.to_string())),
            }
        },
    )
}

/// Waits for the backup to leave `restoring`, then checks the target volume;
/// returns the volume's `GET` reply once it is `available`.
pub fn backup_restored(client: &Client, id: &str, volume_id: &str, show_bar: bool) -> Result<Value> {
    let prefix = format!("Restoring backup {}", short_id(id));
    poll(
        prefix,
        show_bar,
        wake_on_events(client, id),
        || fetch_progress(client, id),
        || {
            let reply = client.get(&["backups", id])?;
            let backup = &reply["backup"];
            let backup_status: BackupStatus = status(backup, "backup")?;
            if backup_status == BackupStatus::Restoring {
                return Ok(Step::Pending(backup_status.to_string()));
            }
            let volume_reply = client.get(&["volumes", volume_id])?;
            match status(&volume_reply["volume"], "volume")? {
                VolumeStatus::Available => Ok(Step::Done(volume_reply.clone())),
                bad @ (VolumeStatus::ErrorRestoring | VolumeStatus::Error) => {
                    let reason = given_reason(backup).unwrap_or_else(|| format!("volume status is {bad}"));
                    bail!("restore of backup {id} to volume {volume_id} failed: {reason}")
                }
                other => Ok(Step::Pending(format!("volume {other}"))),
            }
        },
    )
}

/// The first [`SHORT_ID`] characters of an id (UUIDs stay recognisable).
fn short_id(id: &str) -> &str {
    id.char_indices().nth(SHORT_ID).map_or(id, |(i, _)| &id[..i])
}

/// The `status` string of a backup/volume object.
/// The reply's status, typed (Cinder's statuses are a closed set).
fn status<S: std::str::FromStr>(object: &Value, what: &str) -> Result<S> {
    let text = object["status"].as_str().ok_or_else(|| anyhow!("the server's {what} reply has no status"))?;
    text.parse().map_err(|_| anyhow!("the server's {what} reply has an unknown status {text:?}"))
}

/// A backup's `fail_reason`, or a stand-in when the server gave none.
fn fail_reason(backup: &Value) -> String {
    given_reason(backup).unwrap_or_else(|| {
        let status = backup["status"].as_str().unwrap_or("unknown");
        format!("no reason given (status {status})")
    })
}

/// A non-blank `fail_reason`, on one line (errors are printed as one line).
fn given_reason(backup: &Value) -> Option<String> {
    let reason = one_line(backup["fail_reason"].as_str()?);
    (!reason.is_empty()).then_some(reason)
}

/// A receiver woken by every event the server records for `backup_id`, from its event
/// stream; `None` when the server has none (or refuses it). The stream is open before
/// this returns, so an event after the caller's next status check cannot be missed.
fn wake_on_events(client: &Client, backup_id: &str) -> Option<Receiver<()>> {
    let reply = client.open_stream(&["events", "stream"], &[("backup_id", backup_id)]).ok()?;
    let is_stream = reply
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if !is_stream {
        return None;
    }
    let (tx, rx) = channel();
    thread::spawn(move || {
        for line in BufReader::new(reply).lines() {
            let Ok(line) = line else { return };
            // An event, or the server's notice that it skipped some (a comment):
            // either may be the end. Ends when the wait is over (the receiver is
            // gone) or the stream breaks.
            let worth_a_look = line.starts_with("event:") || line.contains("skipped");
            if worth_a_look && tx.send(()).is_err() {
                return;
            }
        }
    });
    Some(rx)
}

/// Runs `check` until it is done or fails: again on each event `wake` brings, and
/// every [`POLL_INTERVAL`] while a bar is drawn or there are no events to wait for
/// (else every [`STREAM_POLL_INTERVAL`]), updating the progress display in between.
fn poll<T>(
    prefix: String,
    show_bar: bool,
    wake: Option<Receiver<()>>,
    progress: impl FnMut() -> Option<Progress>,
    check: impl FnMut() -> Result<Step<T>>,
) -> Result<T> {
    poll_every(prefix, show_bar, wake, STREAM_POLL_INTERVAL, progress, check)
}

fn poll_every<T>(
    prefix: String,
    show_bar: bool,
    mut wake: Option<Receiver<()>>,
    quiet_interval: Duration,
    mut progress: impl FnMut() -> Option<Progress>,
    mut check: impl FnMut() -> Result<Step<T>>,
) -> Result<T> {
    let mut display = Display::new(prefix, show_bar);
    let outcome = loop {
        match check() {
            Ok(Step::Pending(status)) => {
                display.update(progress().as_ref(), &status);
                let interval = if display.is_drawn() { POLL_INTERVAL } else { quiet_interval };
                match &wake {
                    Some(events) => match events.recv_timeout(interval) {
                        // Several events may be queued: one check covers them all.
                        Ok(()) => while events.try_recv().is_ok() {},
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => wake = None,
                    },
                    None => thread::sleep(POLL_INTERVAL),
                }
            }
            Ok(Step::Done(value)) => break Ok(value),
            Err(e) => break Err(e),
        }
    };
    display.finish(outcome.is_ok());
    outcome
}

/// The running operation's progress; `None` when the server has no progress
/// endpoint (404/405/501), nothing is running, or the request failed (the
/// status check reports real trouble).
fn fetch_progress(client: &Client, backup_id: &str) -> Option<Progress> {
    let reply = client.get(&["backups", backup_id, "progress"]).ok()?;
    Progress::from_reply(&reply)
}

/// The stderr progress bar plus the throughput measurement feeding it.
struct Display {
    bar: ProgressBar,
    /// Data bytes moved (MB/s) and volume bytes covered (ETA).
    meter: RateMeter,
    covered: RateMeter,
    started: Instant,
    /// Operation of the last progress report; `None` while spinning.
    operation: Option<String>,
    /// The last report drawn, to end the bar at 100 % on success.
    last: Option<Progress>,
}

impl Display {
    fn new(prefix: String, show_bar: bool) -> Self {
        let target = if show_bar && std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(BAR_LEN), target).with_prefix(prefix);
        bar.set_style(style(SPIN_TEMPLATE));
        bar.set_message("(starting)");
        bar.enable_steady_tick(Duration::from_millis(100));
        Self {
            bar,
            meter: RateMeter::default(),
            covered: RateMeter::default(),
            started: Instant::now(),
            operation: None,
            last: None,
        }
    }

    /// Whether anything is on screen to keep moving.
    fn is_drawn(&self) -> bool {
        !self.bar.is_hidden()
    }

    fn update(&mut self, progress: Option<&Progress>, status: &str) {
        let Some(progress) = progress else {
            if self.operation.take().is_some() {
                self.meter.clear();
                self.covered.clear();
                self.bar.set_style(style(SPIN_TEMPLATE));
            }
            self.bar.set_message(format!("({status})"));
            return;
        };
        if self.operation != progress.operation {
            self.operation.clone_from(&progress.operation);
            self.meter.clear();
            self.covered.clear();
            self.bar.set_style(style(BAR_TEMPLATE));
        }
        let at = self.started.elapsed();
        self.meter.record(at, progress.bytes_moved.unwrap_or(progress.bytes_done));
        self.covered.record(at, progress.bytes_done);
        // Truncation is fine: percent() is within 0..=100.
        self.bar.set_position((progress.percent() * 10.0).round() as u64);
        self.bar.set_message(status_line(progress, self.meter.rate(), self.covered.rate()));
        self.last = Some(progress.clone());
    }

    /// On success a bar that was drawn ends at 100 % (the last poll may have come
    /// just before the end) and stays on screen; a spinner or a failure is cleared.
    fn finish(&self, success: bool) {
        match (&self.last, success) {
            (Some(last), true) => {
                let done = Progress { bytes_done: last.bytes_total, percent: Some(100.0), ..last.clone() };
                self.bar.set_position(BAR_LEN);
                self.bar.set_message(status_line(&done, self.meter.rate(), None));
                self.bar.finish();
            }
            _ => self.bar.finish_and_clear(),
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::ClientArgs;
    use crate::stub::{Reply, Stub};
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn client(stub: &Stub) -> Client {
        Client::new(&ClientArgs { url: stub.url(), ..ClientArgs::default() }).unwrap()
    }

    #[test]
    fn templates_are_valid() {
        assert!(ProgressStyle::with_template(SPIN_TEMPLATE).is_ok());
        assert!(ProgressStyle::with_template(BAR_TEMPLATE).is_ok());
    }

    #[test]
    fn create_waits_for_available() {
        let polls = AtomicUsize::new(0);
        let stub = Stub::start(move |r| {
            if r.path.contains("/events/") {
                return Reply::json(404, "");
            }
            if r.path.ends_with("/progress") {
                return Reply::json(
                    200,
                    r#"{"progress": {"operation": "create", "bytes_done": 5, "bytes_total": 10, "percent": 50.0}}"#,
                );
            }
            let status = if polls.fetch_add(1, Ordering::SeqCst) < 2 { "creating" } else { "available" };
            Reply::json(200, &format!(r#"{{"backup": {{"id": "b1", "status": "{status}"}}}}"#))
        });
        let reply = backup_created(&client(&stub), "b1", true).unwrap();
        assert_eq!(reply["backup"]["status"], "available");
        let progress_polls = stub.requests().iter().filter(|r| r.path.ends_with("/progress")).count();
        assert_eq!(progress_polls, 2);
    }

    #[test]
    fn an_event_wakes_the_wait_before_its_next_poll() {
        // With two minutes between quiet polls, only the event can end this wait sooner.
        let polls = AtomicUsize::new(0);
        let stub = Stub::start(move |r| {
            if r.path.contains("/events/stream") {
                return Reply::event_stream("id: 7\nevent: backup.create.end\ndata: {}\n\n");
            }
            let status = if polls.fetch_add(1, Ordering::SeqCst) < 1 { "creating" } else { "available" };
            Reply::json(200, &format!(r#"{{"backup": {{"id": "b1", "status": "{status}"}}}}"#))
        });
        let client = client(&stub);
        let (started, quiet) = (Instant::now(), Duration::from_secs(120));
        let check = || {
            let reply = client.get(&["backups", "b1"])?;
            Ok(match reply["backup"]["status"].as_str() {
                Some("available") => Step::Done(()),
                other => Step::Pending(format!("{other:?}")),
            })
        };
        let wake = wake_on_events(&client, "b1");
        assert!(wake.is_some(), "the stub serves an event stream");
        poll_every("test".into(), false, wake, quiet, || None, check).unwrap();
        assert!(started.elapsed() < Duration::from_secs(60), "woken by the event, not the next poll");
        let stream = stub.requests().iter().filter(|r| r.path.contains("/events/stream")).count();
        assert_eq!(stream, 1);
        assert!(stub.requests().iter().any(|r| r.path.contains("backup_id=b1")));
    }

    #[test]
    fn a_server_without_events_is_polled() {
        let stub = Stub::start(|r| match r.path.contains("/events/") {
            true => Reply::json(404, r#"{"itemNotFound": {"code": 404, "message": "no such thing"}}"#),
            false => Reply::json(200, r#"{"backup": {"id": "b1", "status": "available"}}"#),
        });
        assert!(wake_on_events(&client(&stub), "b1").is_none());
        backup_created(&client(&stub), "b1", false).unwrap();
    }

    #[test]
    fn create_failure_carries_fail_reason() {
        let stub = Stub::start(|r| {
            if r.path.contains("/events/") {
                return Reply::json(404, "");
            }
            if r.path.ends_with("/progress") {
                return Reply::json(404, "");
            }
            Reply::json(200, r#"{"backup": {"id": "b1", "status": "error", "fail_reason": "disk full"}}"#)
        });
        let err = backup_created(&client(&stub), "b1", false).unwrap_err();
        assert_eq!(err.to_string(), "backup b1 failed: disk full");
    }

    #[test]
    fn delete_ends_on_404() {
        let polls = AtomicUsize::new(0);
        let stub = Stub::start(move |r| {
            if r.path.contains("/events/") {
                return Reply::json(404, "");
            }
            if r.path.ends_with("/progress") || polls.fetch_add(1, Ordering::SeqCst) > 0 {
                return Reply::json(404, r#"{"itemNotFound": {"code": 404, "message": "gone"}}"#);
            }
            Reply::json(200, r#"{"backup": {"id": "b1", "status": "deleting"}}"#)
        });
        backup_deleted(&client(&stub), "b1", false).unwrap();
    }

    #[test]
    fn restore_waits_for_backup_then_volume() {
        let polls = AtomicUsize::new(0);
        let stub = Stub::start(move |r| {
            if r.path.contains("/events/") {
                return Reply::json(404, "");
            }
            let n = polls.fetch_add(1, Ordering::SeqCst);
            if r.path.ends_with("/progress") {
                Reply::json(404, "")
            } else if r.path.contains("/volumes/") {
                let status = if n < 5 { "restoring-backup" } else { "available" };
                Reply::json(200, &format!(r#"{{"volume": {{"id": "v1", "status": "{status}"}}}}"#))
            } else {
                let status = if n < 2 { "restoring" } else { "available" };
                Reply::json(200, &format!(r#"{{"backup": {{"id": "b1", "status": "{status}"}}}}"#))
            }
        });
        let volume = backup_restored(&client(&stub), "b1", "v1", false).unwrap();
        assert_eq!(volume["volume"]["status"], "available");
        let volume_gets = stub.requests().iter().filter(|r| r.path.contains("/volumes/")).count();
        assert_eq!(volume_gets, 2);
    }

    #[test]
    fn restore_failure_reports_volume_status() {
        let stub = Stub::start(|r| {
            if r.path.contains("/events/") {
                return Reply::json(404, "");
            }
            if r.path.contains("/volumes/") {
                Reply::json(200, r#"{"volume": {"id": "v1", "status": "error_restoring"}}"#)
            } else {
                Reply::json(200, r#"{"backup": {"id": "b1", "status": "available", "fail_reason": null}}"#)
            }
        });
        let err = backup_restored(&client(&stub), "b1", "v1", false).unwrap_err();
        assert_eq!(err.to_string(), "restore of backup b1 to volume v1 failed: volume status is error_restoring");
    }

    #[test]
    fn short_ids() {
        assert_eq!(short_id("b1"), "b1");
        assert_eq!(short_id("0b5c1d2e-aaaa-bbbb"), "0b5c1d2e");
        assert_eq!(short_id("ééééééééé"), "éééééééé");
    }

    #[test]
    fn fail_reason_stand_in() {
        let b = serde_json::json!({"status": "error", "fail_reason": ""});
        assert_eq!(fail_reason(&b), "no reason given (status error)");
        let b = serde_json::json!({"status": "error", "fail_reason": "a\n  b"});
        assert_eq!(fail_reason(&b), "a b");
    }
}
