//! Operators' endpoints: `/healthz`, `/metrics`, `/openapi.json`, and links built
//! from `--public-url`, never from the request's Host header.

use serde_json::{Value, json};

use crate::support::{ADMIN_TOKEN, Database, MIB, PROJECT, Server};

fn get_text(url: &str) -> (u16, String) {
    let r = reqwest::blocking::get(url).unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

/// Whether `path` matches an OpenAPI path template (`{x}` matches one segment).
fn matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len() && t.iter().zip(&p).all(|(t, p)| (t.starts_with('{') && t.ends_with('}')) || t == p)
}

#[test]
fn health_metrics_openapi_and_public_links() {
    let s = Server::start(&Database::Sqlite, &["--public-url", "https://backup.example.com:8776/"]);
    let (st, h) = get_text(&format!("{}/healthz", s.url));
    assert_eq!(st, 200, "{h}");
    let h: Value = serde_json::from_str(&h).unwrap();
    assert_eq!((&h["status"], &h["database"], &h["services"][0]["state"]), (&json!("ok"), &json!("ok"), &json!("up")));

    let (_, vol) = s.mixed_volume("v", 4 * MIB, 5);
    // A forged Host header does not reach the links.
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/v3/{PROJECT}/backups", s.url))
        .header("X-Auth-Token", ADMIN_TOKEN)
        .header("Host", "evil.example.net")
        .json(&json!({"backup": {"volume_id": vol}}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let b: Value = r.json().unwrap();
    let link = b["backup"]["links"][0]["href"].as_str().unwrap();
    assert!(link.starts_with(&format!("https://backup.example.com:8776/v3/{PROJECT}/backups/")), "{link}");
    let id = b["backup"]["id"].as_str().unwrap().to_owned();
    s.wait_backup(&id, &["available"]);
    let (_, v) = s.request("GET", &format!("{}/", s.url), None);
    assert!(v["versions"][0]["links"].to_string().contains("https://backup.example.com:8776/v3/"), "{v}");

    let (st, m) = get_text(&format!("{}/metrics", s.url));
    assert_eq!(st, 200);
    assert!(m.contains("holdfast_operations_total{kind=\"create\",outcome=\"success\"} 1"), "{m}");
    assert!(m.contains(&format!("holdfast_bytes_total{{direction=\"backup\"}} {}", 4 * MIB)), "{m}");
    assert!(m.contains("holdfast_driver_call_seconds_count{driver=\"posix\",call=\"backup\"} 1"), "{m}");
    assert!(m.contains("holdfast_api_request_seconds_count{endpoint=\"create_backup\",status=\"2xx\"} 1"), "{m}");
    assert!(m.contains("holdfast_queued_operations 0"), "{m}");

    // The served OpenAPI document is the repo's, and names every route the server has.
    let (st, doc) = get_text(&format!("{}/openapi.json", s.url));
    assert_eq!(st, 200);
    assert_eq!(doc, include_str!("../../docs/openapi.json"));
    let doc: Value = serde_json::from_str(&doc).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    let p = format!("/v3/{PROJECT}");
    let routes = [
        ("get", "/".to_owned()),
        ("get", "/v3".to_owned()),
        ("get", "/healthz".to_owned()),
        ("get", "/metrics".to_owned()),
        ("get", "/openapi.json".to_owned()),
        ("get", format!("{p}/backups")),
        ("get", format!("{p}/backups/detail")),
        ("post", format!("{p}/backups")),
        ("post", format!("{p}/backups/import_record")),
        ("get", format!("{p}/backups/{id}/export_record")),
        ("get", format!("{p}/backups/{id}")),
        ("put", format!("{p}/backups/{id}")),
        ("delete", format!("{p}/backups/{id}")),
        ("post", format!("{p}/backups/{id}/restore")),
        ("post", format!("{p}/backups/{id}/action")),
        ("get", format!("{p}/backups/{id}/progress")),
        ("get", format!("{p}/volumes")),
        ("get", format!("{p}/volumes/detail")),
        ("post", format!("{p}/volumes")),
        ("get", format!("{p}/volumes/{vol}")),
        ("put", format!("{p}/volumes/{vol}")),
        ("delete", format!("{p}/volumes/{vol}")),
        ("post", format!("{p}/volumes/{vol}/action")),
        ("post", format!("{p}/os-volume-manage")),
        ("get", format!("{p}/volumes/{vol}/metadata")),
        ("post", format!("{p}/volumes/{vol}/metadata")),
        ("put", format!("{p}/volumes/{vol}/metadata")),
        ("get", format!("{p}/snapshots")),
        ("get", format!("{p}/snapshots/detail")),
        ("post", format!("{p}/snapshots")),
        ("get", format!("{p}/snapshots/{id}")),
        ("delete", format!("{p}/snapshots/{id}")),
        ("get", format!("{p}/events")),
        ("get", format!("{p}/events/stream")),
        ("get", format!("{p}/os-services")),
        ("get", format!("{p}/limits")),
        ("get", format!("{p}/holdfast-plugins")),
        ("post", format!("{p}/holdfast-plugins/reload")),
    ];
    for (method, path) in routes {
        // The most specific template wins (`/backups/detail` over `/backups/{backup_id}`).
        let best = paths
            .iter()
            .filter(|(t, _)| matches(t, &path))
            .min_by_key(|(t, _)| t.matches('{').count())
            .unwrap_or_else(|| panic!("{path} is not in docs/openapi.json"));
        assert!(best.1.get(method).is_some(), "{method} {} is not in docs/openapi.json", best.0);
    }

    // A backup service that is down makes the host unhealthy, and says why.
    let down = Server::start(&Database::Sqlite, &["--backup-dir", "/nonexistent/holdfast-backups"]);
    let (st, h) = get_text(&format!("{}/healthz", down.url));
    assert_eq!(st, 503, "{h}");
    let h: Value = serde_json::from_str(&h).unwrap();
    assert_eq!(h["status"], "degraded");
    assert_eq!(h["services"][0]["state"], "down");
    assert!(h["services"][0]["reason"].is_string(), "{h}");
}
