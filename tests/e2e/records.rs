//! Export/import of backup records (issue 5 §6): a backup survives the loss of the
//! database — export, lose the database, import into a fresh one, restore.

use std::os::unix::fs::FileExt;
use std::path::Path;

use serde_json::json;

use crate::support::{MIB, Server, databases, sha256_file, write_mixed_volume};

#[test]
fn records_rebuild_a_lost_database() {
    for db in databases() {
        let mut old = Server::start(&db, &[]);
        let src = old.input("v.raw");
        write_mixed_volume(&src, 32 * MIB, 9);
        let vol = old.register(&src, "v");
        let (_, b) =
            old.post("/backups", json!({"backup": {"volume_id": vol, "name": "full", "metadata": {"tier": "gold"}}}));
        let full = b["backup"]["id"].as_str().unwrap().to_owned();
        old.wait_backup(&full, &["available"]);
        std::fs::OpenOptions::new()
            .write(true)
            .open(&src)
            .unwrap()
            .write_all_at(&[0xAB; 100_000], 5 * MIB as u64)
            .unwrap();
        let (_, b) = old.post("/backups", json!({"backup": {"volume_id": vol, "name": "inc", "incremental": true}}));
        let inc = b["backup"]["id"].as_str().unwrap().to_owned();
        old.wait_backup(&inc, &["available"]);
        let want = sha256_file(&src);

        let mut records = Vec::new();
        for id in [&full, &inc] {
            // One through the API, one through the CLI.
            let r = if *id == full {
                let (st, r) = old.get(&format!("/backups/{id}/export_record"));
                assert_eq!(st, 200, "{r}");
                r
            } else {
                old.cli_json(&["backup", "export", id, "--format", "json"])
            };
            let rec = r["backup-record"].clone();
            assert_eq!(rec["backup_service"], "cinder.backup.drivers.posix.PosixBackupDriver");
            assert!(rec["backup_url"].as_str().unwrap().starts_with("eyJkcml2ZXJfaW5mbyI6IHt9LCAiaWQiOiAi"));
            records.push(rec);
        }
        // The database is lost; only the backup directory remains.
        old.stop();
        let store = old.backup_root();
        let new = Server::start(&db, &["--backup-dir", store.to_str().unwrap()]);
        assert_eq!(new.get("/backups/detail").1["backups"].as_array().unwrap().len(), 0);
        let (st, r) = new.post("/backups/import_record", json!({"backup-record": records[0]}));
        assert_eq!(st, 201, "{r}");
        assert_eq!(r["backup"]["name"], serde_json::Value::Null);
        let (service, url) =
            (records[1]["backup_service"].as_str().unwrap(), records[1]["backup_url"].as_str().unwrap());
        let out = new.cli(&["backup", "import", service, url]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let imported = new.wait_backup(&inc, &["available", "error"]);
        assert_eq!(imported["status"], "available", "{imported}");
        // User metadata travels in the record.
        assert_eq!(new.wait_backup(&full, &["available"])["metadata"], json!({"tier": "gold"}), "{db:?}");
        assert_eq!(imported["name"], "inc");
        assert_eq!(imported["is_incremental"], true);
        new.wait_backup(&full, &["available"]);

        // Same id again, and garbage, are refused.
        let (st, e) = new.post("/backups/import_record", json!({"backup-record": records[0]}));
        assert_eq!(st, 400);
        assert!(e["badRequest"]["message"].as_str().unwrap().contains("already exists"), "{e}");
        let bad = json!({"backup-record": {"backup_service": "x", "backup_url": "%%%notbase64"}});
        assert_eq!(new.post("/backups/import_record", bad).0, 400);

        // The imported chain restores bit for bit.
        let (st, r) = new.post(&format!("/backups/{inc}/restore"), json!({"restore": {}}));
        assert_eq!(st, 202, "{r}");
        let v = new.wait_volume(r["restore"]["volume_id"].as_str().unwrap(), &["available", "error_restoring"]);
        assert_eq!(v["status"], "available");
        assert_eq!(sha256_file(Path::new(v["holdfast:path"].as_str().unwrap())), want, "{db:?}");
    }
}
