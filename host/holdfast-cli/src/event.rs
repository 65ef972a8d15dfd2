//! `holdfast event ...`: the server's notifications (Cinder's `backup.*` events), as a
//! list or followed live over the server-sent-event stream.

use std::io::{BufRead, BufReader, Write};

use anyhow::{Context, Result};
use holdfast_types::EventType;
use serde_json::Value;

use crate::args::{ClientArgs, OutputFormat};
use crate::client::{Client, on_own_thread};
use crate::output;
use crate::resolve::{Kind, resolve};

/// Follow the events of the project, or of one backup.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum EventCommand {
    /// List recorded events, oldest first (the latest --limit of them)
    List {
        /// Only the events of this backup (id or unique name)
        #[arg(long, value_name = "BACKUP")]
        backup: Option<String>,
        /// How many events, at most 1000
        #[arg(long, value_name = "N", default_value_t = 100)]
        limit: u32,
    },
    /// Print events as they happen (server-sent events), until interrupted
    ///
    /// Each line shows the time, the event type, the backup, its status and, for
    /// progress events, the percentage. With --format json each event is one line of JSON.
    Watch {
        /// Only the events of this backup (id or unique name)
        #[arg(long, value_name = "BACKUP")]
        backup: Option<String>,
        /// Stop after the first event that ends an operation (`*.end` or `*.error`)
        #[arg(long)]
        until_end: bool,
    },
}

/// Runs one `holdfast event ...` command against the server in `args`.
pub fn run_event(args: &ClientArgs, cmd: EventCommand) -> Result<()> {
    on_own_thread(|| execute(args, cmd))
}

fn execute(args: &ClientArgs, cmd: EventCommand) -> Result<()> {
    let client = Client::new(args)?;
    let format = args.format;
    match cmd {
        EventCommand::List { backup, limit } => {
            let limit = limit.to_string();
            let mut query = vec![("limit", limit.as_str())];
            let id = backup.map(|b| resolve(&client, Kind::Backup, &b)).transpose()?.map(|f| f.id);
            if let Some(id) = &id {
                query.push(("backup_id", id));
            }
            let reply = client.get_query(&["events"], &query)?;
            let text = if format.is_json() {
                output::json(&reply)
            } else {
                let events = reply["events"].as_array().cloned().unwrap_or_default();
                let rows: String = events.iter().map(line).collect();
                format!("{HEADER}{rows}")
            };
            output::emit(&text)
        }
        EventCommand::Watch { backup, until_end } => {
            let id = backup.map(|b| resolve(&client, Kind::Backup, &b)).transpose()?.map(|f| f.id);
            let query: Vec<(&str, &str)> = id.iter().map(|id| ("backup_id", id.as_str())).collect();
            let reply = client.open_stream(&["events", "stream"], &query)?;
            // Connected and subscribed: from here on nothing is missed.
            eprintln!("watching events{} (Ctrl-C to stop)", id.map(|i| format!(" of backup {i}")).unwrap_or_default());
            watch(BufReader::new(reply), format, until_end)
        }
    }
}

/// Read SSE messages, printing each event's `data` as it completes.
fn watch(reader: impl BufRead, format: OutputFormat, until_end: bool) -> Result<()> {
    let mut data = String::new();
    let stdout = std::io::stdout();
    for l in reader.lines() {
        let l = l.context("the event stream broke off")?;
        if let Some(d) = l.strip_prefix("data:") {
            data.push_str(d.trim_start());
        } else if l.is_empty() && !data.is_empty() {
            let event: Value = serde_json::from_str(&data).context("the server sent an event that is not JSON")?;
            data.clear();
            let text = if format.is_json() { format!("{event}\n") } else { line(&event) };
            let mut out = stdout.lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
            let kind = event["event_type"].as_str().and_then(|k| k.parse::<EventType>().ok());
            if until_end && kind.is_some_and(EventType::is_final) {
                return Ok(());
            }
        }
    }
    anyhow::bail!("the server closed the event stream")
}

/// `TIME  EVENT  BACKUP  STATUS  [PERCENT | REASON]`, one line.
/// The column titles over `event list` (the widths of [`line`]'s fields).
const HEADER: &str = "Time                        Event                        Backup                                Status  Progress/Reason\n";

fn line(e: &Value) -> String {
    let p = &e["payload"];
    let mut text = format!(
        "{}  {:<28} {}  {}",
        output::cell(Some(&e["timestamp"])),
        output::cell(Some(&e["event_type"])),
        output::cell(Some(&e["backup_id"])),
        output::cell(Some(&p["status"])),
    );
    if let Some(pct) = p["backup_percent"].as_u64() {
        text += &format!("  {pct}%");
    }
    if let Some(why) = p["reason"].as_str().or(p["fail_reason"].as_str()) {
        text += &format!("  {why}");
    }
    text + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lines_show_percent_and_reason() {
        let e = json!({"timestamp": "2026-01-01T00:00:00.000000", "event_type": "backup.createprogress",
            "backup_id": "b1", "payload": {"status": "creating", "backup_percent": 40}});
        assert_eq!(
            line(&e),
            format!("2026-01-01T00:00:00.000000  {:<28} b1  creating  40%\n", "backup.createprogress")
        );
        let e = json!({"event_type": "backup.create.error", "payload": {"reason": "disk full"}});
        assert!(line(&e).ends_with("disk full\n"));
    }

    #[test]
    fn watch_stops_at_the_end_event_and_skips_comments() {
        let stream = ": hello\n\nid: 1\nevent: backup.create.start\ndata: {\"event_type\": \"backup.create.start\"}\n\n\
                      : keep-alive\n\nid: 2\nevent: backup.create.end\ndata: {\"event_type\": \"backup.create.end\"}\n\n\
                      id: 3\ndata: not json\n\n";
        watch(stream.as_bytes(), OutputFormat::Json, true).unwrap();
        let err = watch(stream.as_bytes(), OutputFormat::Json, false).unwrap_err().to_string();
        assert!(err.contains("not JSON"), "{err}");
    }
}
