//! Volume metadata (issue 5 §7) is saved with each backup and restored with it.

use serde_json::json;

use crate::support::{MIB, Server, databases};

#[test]
fn volume_metadata_travels_with_the_backup() {
    for db in databases() {
        let s = Server::start(&db, &[]);
        let (_, vol) = s.mixed_volume("source", 8 * MIB, 6);
        let (st, m) = s.post(&format!("/volumes/{vol}/metadata"), json!({"metadata": {"tier": "gold", "app": "db"}}));
        assert_eq!(st, 200, "{m}");
        let (st, _) = s.post(&format!("/volumes/{vol}/metadata"), json!({"metadata": {"tier": 5}}));
        assert_eq!(st, 400, "values must be strings");
        let (_, b) = s.post("/backups", json!({"backup": {"volume_id": vol}}));
        let id = b["backup"]["id"].as_str().unwrap().to_owned();
        s.wait_backup(&id, &["available"]);
        // Later changes to the source do not leak into the restore.
        s.request("PUT", &format!("/volumes/{vol}/metadata"), Some(json!({"metadata": {"tier": "bronze"}})));

        let (_, r) = s.post(&format!("/backups/{id}/restore"), json!({"restore": {}}));
        let new = s.wait_volume(r["restore"]["volume_id"].as_str().unwrap(), &["available", "error_restoring"]);
        assert_eq!(new["status"], "available");
        assert_eq!(new["metadata"], json!({"tier": "gold", "app": "db", "src_backup_id": id}), "{db:?}");
        assert_eq!(new["name"], "source", "an auto-created target takes the source's name");
        // The volume is released before the backup returns to `available`.
        s.wait_backup(&id, &["available"]);

        let (_, c) = s.post("/volumes", json!({"volume": {"size": 1, "name": "kept", "metadata": {"x": "y"}}}));
        let other = c["volume"]["id"].as_str().unwrap_or_else(|| panic!("{c}")).to_owned();
        assert_eq!(c["volume"]["metadata"], json!({"x": "y"}));
        let (st, _) = s.post(&format!("/backups/{id}/restore"), json!({"restore": {"volume_id": other}}));
        assert_eq!(st, 202);
        let o = s.wait_volume(&other, &["available", "error_restoring"]);
        assert_eq!(o["metadata"], json!({"tier": "gold", "app": "db", "src_backup_id": id}));
        assert_eq!(o["name"], "kept", "a named target keeps its name");
    }
}
