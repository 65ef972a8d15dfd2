//! Bad input gets a clean 4xx in Cinder's error shape and changes nothing: a few
//! hundred malformed requests, then the database and the backup store are compared
//! with what they were, and the server still answers.

use std::io::{Read, Write};

use base64::Engine;
use serde_json::{Value, json};

use crate::support::{ADMIN_TOKEN, Database, MIB, Server, files_under};

/// Everything a request could have changed: every row the API shows (all projects,
/// with Holdfast's keys) and every file of the backup store with its length.
fn state(s: &Server) -> Value {
    let mut out = json!({});
    for list in ["backups/detail", "volumes/detail", "snapshots/detail"] {
        let (st, v) = s.get(&format!("/{list}?all_tenants=1"));
        assert_eq!(st, 200, "{v}");
        out[list] = v;
    }
    let mut files: Vec<(String, u64)> = files_under(&s.backup_root())
        .into_iter()
        .map(|p| {
            let len = std::fs::metadata(&p).unwrap().len();
            (p.to_string_lossy().into_owned(), len)
        })
        .collect();
    files.sort();
    out["files"] = json!(files);
    let (_, ev) = s.get("/events?limit=1000");
    out["events"] = json!(ev["events"].as_array().map(Vec::len));
    out
}

fn raw(s: &Server, method: &str, path: &str, content_type: Option<&str>, body: &[u8]) -> (u16, Value) {
    let mut req = reqwest::blocking::Client::new()
        .request(method.parse().unwrap(), format!("{}/v3/{}{path}", s.url, crate::support::PROJECT))
        .header("X-Auth-Token", ADMIN_TOKEN)
        .header("OpenStack-API-Version", "volume 3.64")
        .body(body.to_vec());
    if let Some(ct) = content_type {
        req = req.header("Content-Type", ct);
    }
    let r = req.send().unwrap();
    (r.status().as_u16(), r.json().unwrap_or(Value::Null))
}

#[test]
fn malformed_requests_change_nothing() {
    let s = Server::start(&Database::Sqlite, &[]);
    let (_, vol) = s.mixed_volume("v", 4 * MIB, 11);
    let (st, b) = s.post("/backups", json!({"backup": {"volume_id": vol, "name": "keep"}}));
    assert_eq!(st, 202, "{b}");
    let bid = b["backup"]["id"].as_str().unwrap().to_owned();
    s.wait_backup(&bid, &["available"]);
    let (_, rec) = s.get(&format!("/backups/{bid}/export_record"));
    let service = rec["backup-record"]["backup_service"].as_str().unwrap().to_owned();
    let b64 = base64::engine::general_purpose::STANDARD;
    let record: Value =
        serde_json::from_slice(&b64.decode(rec["backup-record"]["backup_url"].as_str().unwrap()).unwrap()).unwrap();
    let before = state(&s);

    let unknown = "5c2e1d4a-0b7e-4c1f-9d3a-2f6b8e1a7c90";
    let long = "x".repeat(300);
    let mut cases: Vec<(&str, String, Option<&str>, Vec<u8>)> = Vec::new();
    let mut add = |m: &'static str, p: String, ct: Option<&'static str>, body: Vec<u8>| cases.push((m, p, ct, body));
    let json_ct = Some("application/json");
    // Bodies that are not what any endpoint takes, on every writing endpoint.
    let bad_bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"{".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"42".to_vec(),
        b"\"backup\"".to_vec(),
        b"{\"x\": 1}".to_vec(),
        vec![0xff, 0xfe, 0x00],
        br#"{"backup": null}"#.to_vec(),
        br#"{"backup": []}"#.to_vec(),
        br#"{"volume": "x"}"#.to_vec(),
        br#"{"restore": 5}"#.to_vec(),
        br#"{"snapshot": {"volume_id": 5}}"#.to_vec(),
    ];
    let writers = [
        ("POST", "/backups".to_owned()),
        ("PUT", format!("/backups/{bid}")),
        ("POST", format!("/backups/{bid}/restore")),
        ("POST", format!("/backups/{bid}/action")),
        ("POST", "/backups/import_record".to_owned()),
        ("POST", "/volumes".to_owned()),
        ("PUT", format!("/volumes/{vol}")),
        ("POST", format!("/volumes/{vol}/action")),
        ("POST", format!("/volumes/{vol}/metadata")),
        ("POST", "/os-volume-manage".to_owned()),
        ("POST", "/snapshots".to_owned()),
    ];
    for (m, p) in &writers {
        for body in &bad_bodies {
            add(m, p.clone(), json_ct, body.clone());
        }
        // Right shape, wrong content type.
        add(m, p.clone(), Some("text/plain"), br#"{"backup": {}}"#.to_vec());
        add(m, p.clone(), Some("application/x-www-form-urlencoded"), b"a=b".to_vec());
    }
    // Field-level mistakes.
    let fields: Vec<Value> = vec![
        json!({"backup": {"volume_id": "not-a-uuid"}}),
        json!({"backup": {"volume_id": vol, "name": long}}),
        json!({"backup": {"volume_id": vol, "force": "maybe"}}),
        json!({"backup": {"volume_id": vol, "incremental": 3}}),
        json!({"backup": {"volume_id": vol, "container": "../escape"}}),
        json!({"backup": {"volume_id": vol, "container": "/abs"}}),
        json!({"backup": {"volume_id": vol, "availability_zone": "elsewhere"}}),
        json!({"backup": {"volume_id": vol, "metadata": {"k": 5}}}),
        json!({"backup": {"volume_id": vol, "metadata": {"bad\nkey": "v"}}}),
        json!({"backup": {"volume_id": vol, "snapshot_id": unknown}}),
        json!({"backup": {"volume_id": unknown}}),
        json!({"backup": {"volume_id": vol, "unknown": 1}}),
    ];
    for f in fields {
        add("POST", "/backups".into(), json_ct, f.to_string().into_bytes());
    }
    for f in [
        json!({"volume": {"size": -1}}),
        json!({"volume": {"size": 0}}),
        json!({"volume": {"size": "x"}}),
        json!({"volume": {"size": 1e30}}),
        json!({"volume": {"size": 1, "availability_zone": "elsewhere"}}),
        json!({"volume": {"size": 1, "source_volid": vol}}),
        json!({"volume": {"size": 1, "volume_type": "gold"}}),
        json!({"volume": {"size": 1, "name": long}}),
        json!({"volume": {"size": 1, "metadata": []}}),
        json!({"volume": {"size": 1, "bogus": null}}),
    ] {
        add("POST", "/volumes".into(), json_ct, f.to_string().into_bytes());
    }
    for f in [
        json!({"os-extend": {"new_size": -5}}),
        json!({"os-extend": {"new_size": "x"}}),
        json!({"os-extend": {}}),
        json!({"os-frobnicate": {}}),
        json!({"os-extend": {"new_size": 1}, "os-attach": {}}),
    ] {
        add("POST", format!("/volumes/{vol}/action"), json_ct, f.to_string().into_bytes());
    }
    for f in [
        json!({"os-reset_status": {"status": "creating"}}),
        json!({"os-reset_status": {}}),
        json!({"os-reset_status": null}),
        json!({"os-frobnicate": null}),
    ] {
        add("POST", format!("/backups/{bid}/action"), json_ct, f.to_string().into_bytes());
    }
    for f in [
        json!({"restore": {"volume_id": "nope"}}),
        json!({"restore": {"volume_id": unknown}}),
        json!({"restore": {"name": 5}}),
        json!({"restore": {"x": 1}}),
    ] {
        add("POST", format!("/backups/{bid}/restore"), json_ct, f.to_string().into_bytes());
    }
    for f in [
        json!({"backup": {"name": long}}),
        json!({"backup": {"metadata": null}}),
        json!({"backup": {"status": "available"}}),
    ] {
        add("PUT", format!("/backups/{bid}"), json_ct, f.to_string().into_bytes());
    }
    // Import records: every hole the issue lists, and a few more.
    let mut records: Vec<(String, String)> = vec![
        (service.clone(), "%%%notbase64".into()),
        (service.clone(), b64.encode("not json")),
        (service.clone(), b64.encode("[1, 2]")),
        (String::new(), b64.encode(record.to_string())),
        ("cinder.backup.drivers.swift.SwiftBackupDriver".into(), b64.encode(record.to_string())),
        (service.clone(), String::new()),
    ];
    let fresh = || {
        let mut r = record.clone();
        r["id"] = json!(uuid::Uuid::new_v4().to_string());
        r
    };
    for (key, value) in [
        ("size", json!(-1)),
        ("size", json!(0)),
        ("size", json!("1")),
        ("size", json!(1_000_000)),
        ("id", json!("../../etc")),
        ("id", json!(42)),
        ("container", json!("../../../etc")),
        ("container", json!("/abs/path")),
        ("service_metadata", json!("../x")),
        ("service_metadata", json!("a//b")),
        ("service_metadata", json!("a/.b")),
        ("volume_id", json!("../v")),
        ("parent_id", json!("nope")),
        ("object_count", json!(-3)),
        ("data_timestamp", json!("yesterday")),
        ("display_name", json!(long.clone())),
        ("driver_info", json!("x")),
        ("holdfast:size_bytes", json!(1)),
    ] {
        let mut r = fresh();
        r[key] = value;
        records.push((service.clone(), b64.encode(r.to_string())));
    }
    for key in ["id", "size", "container", "service_metadata", "object_count", "display_name"] {
        let mut r = fresh();
        r.as_object_mut().unwrap().remove(key);
        records.push((service.clone(), b64.encode(r.to_string())));
    }
    let mut same = record.clone();
    same["id"] = json!(bid);
    records.push((service.clone(), b64.encode(same.to_string())));
    for (svc, url) in records {
        let body = json!({"backup-record": {"backup_service": svc, "backup_url": url}});
        add("POST", "/backups/import_record".into(), json_ct, body.to_string().into_bytes());
    }
    // Query strings.
    for q in [
        "/backups?limit=-1",
        "/backups?limit=x",
        "/backups/detail?all_tenants=maybe",
        &format!("/backups/detail?marker={unknown}"),
        "/backups/detail?limit=1.5",
        &format!("/backups/{unknown}"),
        "/backups/not-an-id",
        &format!("/volumes/{unknown}"),
        "/events?limit=0",
        "/events?limit=x",
    ] {
        add("GET", q.to_owned(), None, Vec::new());
    }
    let total = cases.len();
    assert!(total >= 200, "only {total} cases");
    for (m, p, ct, body) in cases {
        let (st, e) = raw(&s, m, &p, ct, &body);
        assert!((400..500).contains(&st), "{m} {p} {:?} answered {st} (want 4xx): {e}", String::from_utf8_lossy(&body));
        let fault = e.as_object().and_then(|o| o.values().next()).unwrap_or(&Value::Null);
        assert_eq!(fault["code"], st, "{m} {p}: not Cinder's error shape: {e}");
        assert!(fault["message"].is_string(), "{m} {p}: {e}");
    }

    // A body cut short (Content-Length larger than what comes) is a 400, not a 413.
    let addr = s.url.trim_start_matches("http://");
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    write!(
        tcp,
        "POST /v3/{}/backups HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {ADMIN_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"backup\"",
        crate::support::PROJECT
    )
    .unwrap();
    tcp.shutdown(std::net::Shutdown::Write).unwrap();
    let mut reply = String::new();
    let _ = tcp.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");

    // Give anything wrongly accepted in the background a moment to show, then compare.
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(state(&s), before, "a malformed request changed something");
    assert_eq!(s.request("GET", &format!("{}/", s.url), None).0, 300, "the server still answers");
    eprintln!("{total} malformed requests, all refused with a 4xx, nothing changed");
}
