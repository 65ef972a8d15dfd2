//! Issue 5 §10: notifications — backup.create/restore/delete start/end/error events are
//! recorded, listed, and streamed as server-sent events with progress percentages.

use std::io::{BufRead, BufReader};

use serde_json::Value;

use crate::support::{ADMIN_TOKEN, MIB, PROJECT, Server, databases, files_under, single, until};

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["event_type"].as_str().unwrap()).collect()
}

/// The progress events lie between start and end, with percentages rising to 100.
fn check_operation(events: &[Value], op: &str) {
    let t = types(events);
    assert_eq!(t.first(), Some(&format!("backup.{op}.start").as_str()), "{t:?}");
    assert_eq!(t.last(), Some(&format!("backup.{op}.end").as_str()), "{t:?}");
    let pcts: Vec<u64> = events
        .iter()
        .filter(|e| e["event_type"] == format!("backup.{op}progress"))
        .map(|e| e["payload"]["backup_percent"].as_u64().unwrap())
        .collect();
    assert!(pcts.windows(2).all(|w| w[0] < w[1]), "{pcts:?}");
    assert_eq!(pcts.last(), Some(&100), "{t:?}");
}

#[test]
fn events_are_recorded_listed_and_streamed() {
    for db in databases() {
        let s = Server::start(&db, &[]);
        let (_, vol) = s.mixed_volume("v", 128 * MIB, 3);

        // Watch live, then back up: the watcher sees the whole create, in order.
        let mut watch = s.cli_spawn(&["event", "watch", "--until-end", "--format", "json"]);
        let mut err = BufReader::new(watch.stderr.take().unwrap());
        let mut first = String::new();
        err.read_line(&mut first).unwrap();
        assert!(first.starts_with("watching events"), "{first}");
        let b = single(s.cli_json(&["backup", "create", &vol, "--name", "watched", "--wait", "--format", "json"]));
        let id = b["id"].as_str().unwrap().to_owned();
        let out = watch.wait_with_output().unwrap();
        assert!(out.status.success(), "{db:?}");
        let seen: Vec<Value> =
            String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        check_operation(&seen, "create");
        assert!(seen.iter().all(|e| e["backup_id"] == id.as_str()));
        let end = seen.last().unwrap();
        assert_eq!(end["payload"]["status"], "available");
        assert_eq!(end["payload"]["display_name"], "watched");
        assert_eq!(end["payload"]["tenant_id"], PROJECT);
        assert_eq!(end["publisher_id"].as_str().unwrap().split('.').next(), Some("backup"));

        // The same events are recorded: listed by backup, oldest first.
        let listed = s.cli_json(&["event", "list", "--backup", &id, "--format", "json"]);
        assert_eq!(listed["events"].as_array().unwrap(), &seen, "{db:?}: the stream and the table agree");

        // A restore, then a restore that fails (an object is gone): .end, then .error.
        let r = single(s.cli_json(&["backup", "restore", &id, "--wait", "--format", "json"]));
        assert_eq!(r["status"], "available");
        let object =
            files_under(&s.backup_root()).into_iter().find(|p| p.to_string_lossy().ends_with("-00001")).unwrap();
        std::fs::remove_file(&object).unwrap();
        let out = s.cli(&["backup", "restore", &id, "--wait"]);
        assert!(!out.status.success());
        // Events follow the status change they report: wait for the last one.
        let events = |s: &Server| s.get(&format!("/events?backup_id={id}&limit=1000")).1["events"].clone();
        until("the restore.error event", || {
            events(&s).as_array().unwrap().last().unwrap()["event_type"] == "backup.restore.error"
        });
        let all = events(&s).as_array().unwrap().clone();
        let restores: Vec<Value> =
            all.iter().filter(|e| e["event_type"].as_str().unwrap().contains("restore")).cloned().collect();
        let first_restore =
            &restores[..restores.iter().position(|e| e["event_type"] == "backup.restore.end").unwrap() + 1];
        check_operation(first_restore, "restore");
        let last = restores.last().unwrap();
        assert_eq!(last["event_type"], "backup.restore.error", "{db:?}");
        assert_eq!(last["priority"], "ERROR");
        assert!(last["payload"]["reason"].as_str().unwrap().contains("failed"), "{last}");

        // Reconnecting with Last-Event-ID replays what came after it.
        let http = reqwest::blocking::Client::builder().timeout(std::time::Duration::from_secs(30)).build().unwrap();
        let stream = http
            .get(format!("{}/v3/{PROJECT}/events/stream?backup_id={id}", s.url))
            .header("Last-Event-ID", all[all.len() - 3]["id"].as_str().unwrap())
            .header("X-Auth-Token", ADMIN_TOKEN)
            .send()
            .unwrap();
        assert_eq!(stream.headers()["content-type"], "text/event-stream");
        let mut ids = Vec::new();
        for line in BufReader::new(stream).lines() {
            if let Some(i) = line.unwrap().strip_prefix("id: ") {
                ids.push(i.to_owned());
                if ids.len() == 2 {
                    break;
                }
            }
        }
        assert_eq!(ids, [all[all.len() - 2]["id"].as_str().unwrap(), all[all.len() - 1]["id"].as_str().unwrap()]);

        // Delete: start and end; bad limits are a clear 400.
        assert_eq!(s.request("DELETE", &format!("/backups/{id}"), None).0, 202);
        until("the delete.end event", || {
            events(&s).as_array().unwrap().last().unwrap()["event_type"] == "backup.delete.end"
        });
        assert_eq!(s.get(&format!("/backups/{id}")).0, 404);
        let (_, e) = s.get(&format!("/events?backup_id={id}&limit=2"));
        assert_eq!(types(e["events"].as_array().unwrap()), ["backup.delete.start", "backup.delete.end"]);
        let (st, e) = s.get("/events?limit=0");
        assert_eq!(st, 400, "{e}");
        let (st, e) = s.get("/events?limit=many");
        assert_eq!(st, 400, "{e}");
    }
}

#[test]
fn old_events_are_pruned() {
    // Retention long enough that a backup slowed by a loaded machine still has its
    // start event when its end is written; each kind counts once it has been seen.
    let s = Server::start(&crate::support::Database::Sqlite, &["--event-retention", "5", "--periodic-interval", "1"]);
    let (_, vol) = s.mixed_volume("v", 4 * MIB, 1);
    single(s.cli_json(&["backup", "create", &vol, "--wait", "--format", "json"]));
    let events = |s: &Server| s.get("/events").1["events"].as_array().unwrap().clone();
    let mut seen = std::collections::BTreeSet::new();
    until("the create's events", || {
        seen.extend(events(&s).iter().filter_map(|e| e["event_type"].as_str().map(str::to_owned)));
        seen.len() >= 3
    });
    until("the pruning of events older than 5 s", || events(&s).is_empty());
}

/// SIGTERM with a watcher connected: the stream ends, the watcher says so, and the
/// server stops without waiting out its shutdown grace on the open stream.
#[test]
fn shutdown_ends_open_event_streams() {
    let mut s = Server::start(&crate::support::Database::Sqlite, &[]);
    let mut watch = s.cli_spawn(&["event", "watch"]);
    let mut err = BufReader::new(watch.stderr.take().unwrap());
    let mut first = String::new();
    err.read_line(&mut first).unwrap();
    assert!(first.starts_with("watching events"), "{first}");
    assert!(s.terminate().success());
    let out = watch.wait_with_output().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert!(!out.status.success());
    assert!(rest.contains("the server closed the event stream"), "{rest}");
    assert!(s.log().contains("holdfast stopped"), "{}", s.log());
    assert!(!s.log().contains("still open after the shutdown grace"), "{}", s.log());
}
