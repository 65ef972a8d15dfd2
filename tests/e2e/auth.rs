//! Authentication and Cinder's default policies in `--auth token` mode (the default),
//! and Cinder's exact views for callers that do not ask for Holdfast's extensions.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use serde_json::{Value, json};

use crate::support::{
    ADMIN_TOKEN, BIN, Database, MEMBER_TOKEN, MIB, OTHER_PROJECT, OTHER_TOKEN, PROJECT, READER_TOKEN, Server, databases,
};

/// A stock client's request: a token (or none), a microversion, no extensions.
fn call(s: &Server, token: Option<&str>, version: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let url = if path.starts_with("http") { path.to_owned() } else { format!("{}/v3/{PROJECT}{path}", s.url) };
    let mut req = reqwest::blocking::Client::new()
        .request(method.parse().unwrap(), url)
        .header("OpenStack-API-Version", format!("volume {version}"));
    if let Some(t) = token {
        req = req.header("X-Auth-Token", t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().unwrap();
    let status = r.status().as_u16();
    let text = r.text().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort();
    k
}

#[test]
fn tokens_roles_and_projects() {
    for db in databases() {
        let s = Server::start(&db, &[]);
        // Discovery needs no token; everything else does.
        assert_eq!(call(&s, None, "3.0", "GET", &format!("{}/", s.url), None).0, 300);
        assert_eq!(call(&s, None, "3.0", "GET", &format!("{}/v3/", s.url), None).0, 200);
        let (st, e) = call(&s, None, "3.64", "GET", "/backups", None);
        assert_eq!(st, 401, "{db:?}");
        assert_eq!(e["unauthorized"]["code"], 401);
        assert_eq!(call(&s, Some("forged"), "3.64", "GET", "/backups", None).0, 401);
        assert_eq!(call(&s, Some(&format!("tester:{PROJECT}")), "3.64", "GET", "/backups", None).0, 401);
        // A token of one project cannot use another's URL.
        let (st, e) = call(&s, Some(OTHER_TOKEN), "3.64", "GET", "/backups", None);
        assert_eq!(st, 400, "{e}");
        assert!(e["badRequest"]["message"].as_str().unwrap().contains("doesn't match"), "{e}");

        // The admin token written on first start: private, an admin of the default project.
        let admin_file = s.dir.path().join("data").join("admin-token");
        assert_eq!(std::fs::metadata(&admin_file).unwrap().permissions().mode() & 0o777, 0o600);
        let host_admin = std::fs::read_to_string(&admin_file).unwrap().trim().to_owned();
        let default_url = format!("{}/v3/{}/backups", s.url, "686f6c6466617374");
        assert_eq!(call(&s, Some(&host_admin), "3.64", "GET", &default_url, None).0, 200);
        // …which the CLI uses when it is given no token.
        let out = Command::new(BIN)
            .args(["volume", "list", "--format", "json"])
            .env("HOLDFAST_URL", &s.url)
            .env("HOLDFAST_DATA_DIR", s.dir.path().join("data"))
            .env_remove("HOLDFAST_TOKEN")
            .env_remove("HOLDFAST_PROJECT")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let out = Command::new(BIN)
            .args(["volume", "list"])
            .env("HOLDFAST_URL", &s.url)
            .env("HOLDFAST_DATA_DIR", s.dir.path())
            .env_remove("HOLDFAST_TOKEN")
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("--token"), "{}", String::from_utf8_lossy(&out.stderr));

        // Readers read, members write, admins administer.
        let (_, vol) = s.mixed_volume("v", 4 * MIB, 7);
        let create = json!({"backup": {"volume_id": vol, "name": "b1"}});
        let (st, e) = call(&s, Some(READER_TOKEN), "3.64", "POST", "/backups", Some(create.clone()));
        assert_eq!(st, 403, "{e}");
        assert_eq!(e["forbidden"]["message"], "Policy doesn't allow backup:create to be performed.");
        let (st, b) = call(&s, Some(MEMBER_TOKEN), "3.64", "POST", "/backups", Some(create));
        assert_eq!(st, 202, "{b}");
        let id = b["backup"]["id"].as_str().unwrap().to_owned();
        s.wait_backup(&id, &["available"]);
        assert_eq!(call(&s, Some(READER_TOKEN), "3.64", "GET", &format!("/backups/{id}"), None).0, 200);
        for (method, path, body) in [
            ("GET", format!("/backups/{id}/export_record"), None),
            ("POST", format!("/backups/{id}/action"), Some(json!({"os-reset_status": {"status": "error"}}))),
            ("POST", format!("/backups/{id}/action"), Some(json!({"os-force_delete": null}))),
            (
                "POST",
                "/backups/import_record".into(),
                Some(json!({"backup-record": {"backup_service": "x", "backup_url": "eA=="}})),
            ),
            ("POST", "/os-volume-manage".into(), Some(json!({"volume": {"ref": {"source-name": "/x"}}}))),
            ("GET", "/os-services".into(), None),
        ] {
            let (st, e) = call(&s, Some(MEMBER_TOKEN), "3.64", method, &path, body.clone());
            assert_eq!(st, 403, "member {method} {path}: {e}");
            assert_eq!(call(&s, Some(READER_TOKEN), "3.64", method, &path, body).0, 403, "reader {method} {path}");
        }
        for (method, path) in [("DELETE", format!("/backups/{id}")), ("PUT", format!("/backups/{id}"))] {
            let (st, e) = call(&s, Some(READER_TOKEN), "3.64", method, &path, Some(json!({"backup": {}})));
            assert_eq!(st, 403, "reader {method} {path}: {e}");
        }
        assert_eq!(call(&s, Some(ADMIN_TOKEN), "3.64", "GET", &format!("/backups/{id}/export_record"), None).0, 200);

        // Another project sees none of it; an admin reaches it by id and with all_tenants.
        let other = |path: &str| format!("{}/v3/{OTHER_PROJECT}{path}", s.url);
        let (st, e) = call(&s, Some(OTHER_TOKEN), "3.64", "GET", &other(&format!("/backups/{id}")), None);
        assert_eq!(st, 404, "{e}");
        assert_eq!(call(&s, Some(OTHER_TOKEN), "3.64", "GET", &other(&format!("/volumes/{vol}")), None).0, 404);
        let (_, l) = call(&s, Some(OTHER_TOKEN), "3.64", "GET", &other("/backups/detail?all_tenants=1"), None);
        assert_eq!(l["backups"], json!([]), "all_tenants is ignored for non-admins");
        let (_, ob) =
            call(&s, Some(OTHER_TOKEN), "3.64", "POST", &other("/volumes"), Some(json!({"volume": {"size": 1}})));
        let other_vol = ob["volume"]["id"].as_str().unwrap().to_owned();
        let (st, e) =
            call(&s, Some(MEMBER_TOKEN), "3.64", "POST", "/backups", Some(json!({"backup": {"volume_id": other_vol}})));
        assert_eq!(st, 404, "another project's volume is not found: {e}");
        let (st, _) = call(&s, Some(ADMIN_TOKEN), "3.64", "GET", &format!("/volumes/{other_vol}"), None);
        assert_eq!(st, 200, "an admin reaches any project's volume by id");
        let (_, mine) = call(&s, Some(ADMIN_TOKEN), "3.64", "GET", "/volumes/detail", None);
        assert_eq!(mine["volumes"].as_array().unwrap().len(), 1);
        let (_, all) = call(&s, Some(ADMIN_TOKEN), "3.64", "GET", "/volumes/detail?all_tenants=true", None);
        assert_eq!(all["volumes"].as_array().unwrap().len(), 2);
        let (st, e) = call(&s, Some(ADMIN_TOKEN), "3.64", "GET", "/backups?all_tenants=maybe", None);
        assert_eq!(st, 400, "{e}");
    }
}

#[test]
fn cinder_views_and_updates() {
    let s = Server::start(&Database::Sqlite, &[]);
    // What `openstack volume create --size 1 v1` sends: every key of the schema.
    let body = json!({"volume": {"size": 1, "consistencygroup_id": null, "snapshot_id": null, "name": "v1",
        "description": null, "volume_type": null, "availability_zone": null, "metadata": {}, "imageRef": null,
        "source_volid": null, "backup_id": null}});
    let (st, v) = call(&s, Some(MEMBER_TOKEN), "3.71", "POST", "/volumes", Some(body));
    assert_eq!(st, 202, "{v}");
    let vol = v["volume"].clone();
    let id = vol["id"].as_str().unwrap().to_owned();
    assert!(keys(&vol).iter().all(|k| !k.starts_with("holdfast:") && !k.starts_with("os-vol-")), "{vol}");
    let (st, e) = call(
        &s,
        Some(MEMBER_TOKEN),
        "3.71",
        "POST",
        "/volumes",
        Some(json!({"volume": {"size": 1, "availability_zone": "elsewhere"}})),
    );
    assert_eq!(st, 400, "{e}");
    // Admins get Cinder's admin attributes, host paths only when they ask for extensions.
    let (_, a) = call(&s, Some(ADMIN_TOKEN), "3.71", "GET", &format!("/volumes/{id}"), None);
    assert_eq!(a["volume"]["os-vol-tenant-attr:tenant_id"], PROJECT);
    assert!(a["volume"].get("holdfast:path").is_none(), "{a}");
    assert!(s.volume(&id)["holdfast:path"].is_string());

    // Update and extend (openstack volume set --name --size).
    let (st, u) = call(
        &s,
        Some(MEMBER_TOKEN),
        "3.71",
        "PUT",
        &format!("/volumes/{id}"),
        Some(json!({"volume": {"name": "renamed", "description": "d"}})),
    );
    assert_eq!(st, 200, "{u}");
    assert_eq!(u["volume"]["name"], "renamed");
    let (st, e) = call(
        &s,
        Some(MEMBER_TOKEN),
        "3.71",
        "POST",
        &format!("/volumes/{id}/action"),
        Some(json!({"os-extend": {"new_size": 2}})),
    );
    assert_eq!(st, 202, "{e}");
    assert_eq!(s.volume(&id)["size"], 2);
    assert_eq!(std::fs::metadata(s.volume(&id)["holdfast:path"].as_str().unwrap()).unwrap().len(), 2 << 30);
    let (st, _) = call(
        &s,
        Some(MEMBER_TOKEN),
        "3.71",
        "POST",
        &format!("/volumes/{id}/action"),
        Some(json!({"os-extend": {"new_size": 2}})),
    );
    assert_eq!(st, 400, "extend must grow");

    // Backups with metadata (3.43), updated with PUT (3.9), views by microversion.
    let (st, e) = call(
        &s,
        Some(MEMBER_TOKEN),
        "3.42",
        "POST",
        "/backups",
        Some(json!({"backup": {"volume_id": id, "metadata": {"k": "v"}}})),
    );
    assert_eq!(st, 400, "metadata below 3.43: {e}");
    let (st, b) = call(
        &s,
        Some(MEMBER_TOKEN),
        "3.64",
        "POST",
        "/backups",
        Some(json!({"backup": {"volume_id": id, "name": "n", "metadata": {"k": "v"}}})),
    );
    assert_eq!(st, 202, "{b}");
    assert_eq!(keys(&b["backup"]), ["id", "links", "name"]);
    let bid = b["backup"]["id"].as_str().unwrap().to_owned();
    s.wait_backup(&bid, &["available"]);
    let (_, shown) = call(&s, Some(MEMBER_TOKEN), "3.64", "GET", &format!("/backups/{bid}"), None);
    assert_eq!(shown["backup"]["metadata"], json!({"k": "v"}));
    assert!(shown["backup"].get("os-backup-project-attr:project_id").is_none(), "admin-only: {shown}");
    assert!(shown["backup"].get("holdfast:parent_id").is_none());
    let (_, old) = call(&s, Some(MEMBER_TOKEN), "3.0", "GET", &format!("/backups/{bid}"), None);
    assert!(old["backup"].get("metadata").is_none());
    let (_, adm) = call(&s, Some(ADMIN_TOKEN), "3.64", "GET", &format!("/backups/{bid}"), None);
    assert_eq!(adm["backup"]["os-backup-project-attr:project_id"], PROJECT);
    assert_eq!(adm["backup"]["user_id"], "mia");

    assert_eq!(
        call(&s, Some(MEMBER_TOKEN), "3.8", "PUT", &format!("/backups/{bid}"), Some(json!({"backup": {"name": "x"}})))
            .0,
        404
    );
    let (st, e) = call(
        &s,
        Some(MEMBER_TOKEN),
        "3.9",
        "PUT",
        &format!("/backups/{bid}"),
        Some(json!({"backup": {"name": "x", "metadata": {"a": "b"}}})),
    );
    assert_eq!(st, 400, "metadata below 3.43: {e}");
    let (st, u) = call(
        &s,
        Some(MEMBER_TOKEN),
        "3.43",
        "PUT",
        &format!("/backups/{bid}"),
        Some(json!({"backup": {"name": "x", "description": "why", "metadata": {"a": "b"}}})),
    );
    assert_eq!(st, 200, "{u}");
    assert_eq!(keys(&u["backup"]), ["id", "links", "name"]);
    let (_, shown) = call(&s, Some(MEMBER_TOKEN), "3.64", "GET", &format!("/backups/{bid}"), None);
    assert_eq!((&shown["backup"]["name"], &shown["backup"]["description"]), (&json!("x"), &json!("why")));
    assert_eq!(shown["backup"]["metadata"], json!({"a": "b"}));

    // A snapshot-create reply is Cinder's view, without Holdfast's keys.
    let (st, sn) = call(
        &s,
        Some(MEMBER_TOKEN),
        "3.64",
        "POST",
        "/snapshots",
        Some(json!({"snapshot": {"volume_id": id, "name": "s1", "description": null, "force": false, "metadata": {}}})),
    );
    assert_eq!(st, 202, "{sn}");
    assert_eq!(
        keys(&sn["snapshot"]),
        [
            "created_at",
            "description",
            "group_snapshot_id",
            "id",
            "metadata",
            "name",
            "size",
            "status",
            "updated_at",
            "user_id",
            "volume_id"
        ]
    );
}
