//! The Cinder API surface: versions, microversions, error shapes, validation.

use serde_json::json;

use crate::support::{ADMIN_TOKEN, Database, MIB, Server};

#[test]
fn cinder_shapes_and_errors() {
    let s = Server::start(&Database::Sqlite, &[]);
    // Version discovery: `/` answers 300, `/v3` 200, both with the document.
    let (st, v) = s.request("GET", &format!("{}/", s.url), None);
    assert_eq!(st, 300);
    assert_eq!(v["versions"][0]["version"], "3.71");
    assert_eq!(s.request("GET", &format!("{}/v3", s.url), None).0, 200);

    let (st, e) = s.post("/backups", json!({"backup": {}}));
    assert_eq!(st, 400);
    assert!(e["badRequest"]["message"].as_str().unwrap().contains("'volume_id' is a required property"), "{e}");
    let (st, e) =
        s.post("/backups", json!({"backup": {"volume_id": "5c2e1d4a-0b7e-4c1f-9d3a-2f6b8e1a7c90", "force": "maybe"}}));
    assert_eq!(st, 400, "{e}");
    let (st, e) =
        s.post("/backups", json!({"backup": {"volume_id": "5c2e1d4a-0b7e-4c1f-9d3a-2f6b8e1a7c90", "bogus": 1}}));
    assert_eq!(st, 400);
    assert!(e["badRequest"]["message"].as_str().unwrap().contains("('bogus' was unexpected)"));
    let (st, e) = s.post("/backups", json!({"backup": {"volume_id": "5c2e1d4a-0b7e-4c1f-9d3a-2f6b8e1a7c90"}}));
    assert_eq!(st, 404, "{e}");
    assert_eq!(e["itemNotFound"]["code"], 404);

    let (src, vol) = s.mixed_volume("v", 4 * MIB, 2);
    let (st, e) = s.post("/backups", json!({"backup": {"volume_id": vol, "container": "../escape"}}));
    assert_eq!(st, 400, "{e}");
    // Registering outside the manage roots, or a file of odd length, is refused.
    let (st, e) = s.post("/os-volume-manage", json!({"volume": {"ref": {"source-name": "/etc/passwd"}}}));
    assert_eq!(st, 400, "{e}");
    assert!(e["badRequest"]["message"].as_str().unwrap().contains("outside"), "{e}");
    let odd = s.input("odd.raw");
    std::fs::write(&odd, vec![1u8; 1000]).unwrap();
    let (st, e) = s.post("/os-volume-manage", json!({"volume": {"ref": {"source-name": odd}}}));
    assert_eq!(st, 400);
    assert!(e["badRequest"]["message"].as_str().unwrap().contains("whole number of MiB"), "{e}");

    // Microversions.
    let r = reqwest::blocking::Client::new()
        .get(format!("{}/v3/backups", s.url))
        .header("OpenStack-API-Version", "volume 3.99")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 406);
    let r = reqwest::blocking::Client::new().get(format!("{}/v3/backups", s.url)).body("x").send().unwrap();
    assert_eq!(r.headers()["openstack-api-version"], "volume 3.0");
    assert!(r.headers().contains_key("x-openstack-request-id"));

    // Malformed JSON, a wrong project id shape, unknown action.
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/v3/backups", s.url))
        .header("X-Auth-Token", ADMIN_TOKEN)
        .body("{nope")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(s.request("GET", &format!("{}/v3/demo/backups", s.url), None).0, 404);
    // A volume being backed up cannot be backed up again or deleted; a delete of
    // a volume that is not in use works.
    let (st, _) = s.request("DELETE", &format!("/volumes/{vol}"), None);
    assert_eq!(st, 202);
    assert!(src.exists(), "deleting an adopted volume keeps the operator's file");
}

#[test]
fn listing_filters_sorts_and_pages_in_sql() {
    let s = Server::start(&Database::Sqlite, &[]);
    let (_, vol) = s.mixed_volume("v", 4 * MIB, 3);
    let mut ids = Vec::new();
    for name in ["b-one", "b-two", "b-three"] {
        let (st, b) = s.post("/backups", json!({"backup": {"volume_id": vol, "name": name}}));
        assert_eq!(st, 202, "{b}");
        let id = b["backup"]["id"].as_str().unwrap().to_owned();
        s.wait_backup(&id, &["available"]);
        ids.push(id);
    }
    let names = |v: &serde_json::Value| -> Vec<String> {
        v["backups"].as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap().to_owned()).collect()
    };
    let (_, l) = s.get("/backups?sort=name:asc");
    assert_eq!(names(&l), ["b-one", "b-three", "b-two"]);
    let (_, l) = s.get("/backups/detail?name~=t&sort=display_name:desc&with_count=true");
    assert_eq!(names(&l), ["b-two", "b-three"]);
    assert_eq!(l["count"], 2);
    // Pages by marker follow the next link to the end.
    let (_, p1) = s.get("/backups?limit=2");
    assert_eq!(names(&p1), ["b-three", "b-two"]);
    let next = p1["backups_links"][0]["href"].as_str().unwrap().to_owned();
    let (_, p2) = s.get(&next);
    assert_eq!(names(&p2), ["b-one"]);
    assert!(p2.get("backups_links").is_none());
    // Filter values survive into the next link encoded (`&` would split them).
    let (_, p) = s.get("/backups?name~=b-&sort=name:asc&limit=1&status=available");
    let next = p["backups_links"][0]["href"].as_str().unwrap().to_owned();
    assert!(next.contains("name~=b-"), "{next}");
    let (st, p2) = s.get(&next);
    assert_eq!(st, 200, "{p2}");
    assert_eq!(names(&p2), ["b-three"]);
    for bad in [
        "limit=-1",
        "limit=x",
        "offset=-2",
        "sort=foo:asc",
        "sort=name:sideways",
        "sort=id&sort_key=id",
        "colour=red",
        "with_count=maybe",
    ] {
        let (st, e) = s.get(&format!("/backups/detail?{bad}"));
        assert_eq!(st, 400, "{bad}: {e}");
    }
    let (st, _) = s.get("/backups?marker=5c2e1d4a-0b7e-4c1f-9d3a-2f6b8e1a7c90");
    assert_eq!(st, 404);
    // Volumes and snapshots take the same parameters, with the same errors.
    s.post("/volumes", json!({"volume": {"size": 1, "name": "a-second"}}));
    let (_, v) = s.get("/volumes?sort=name:asc&limit=1");
    assert_eq!(v["volumes"].as_array().unwrap().len(), 1);
    assert_eq!(v["volumes"][0]["name"], "a-second");
    let (_, v) = s.get(&format!("/volumes?sort=name:asc&marker={}", v["volumes"][0]["id"].as_str().unwrap()));
    assert_eq!(v["volumes"][0]["name"], "v");
    for bad in [
        "/volumes?limit=-1",
        "/volumes/detail?limit=x",
        "/volumes?sort=foo:bar",
        "/snapshots?limit=x",
        "/snapshots?sort=size:up",
        "/volumes?colour=red",
    ] {
        let (st, e) = s.get(bad);
        assert_eq!(st, 400, "{bad}: {e}");
    }
}
