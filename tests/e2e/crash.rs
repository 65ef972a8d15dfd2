//! Crash recovery (issue 5 §8): SIGKILL the server in the middle of a backup, a
//! restore and a delete, restart it on the same data and database: nothing stays
//! stuck, no partial objects remain, every completed backup still restores.

use std::path::Path;

use serde_json::json;

use crate::support::{MIB, Server, databases, files_under, sha256_file, until, write_mixed_volume};

#[test]
fn killed_operations_are_cleaned_up_on_restart() {
    for db in databases() {
        let mut s = Server::start(&db, &[]);
        let src = s.input("v.raw");
        write_mixed_volume(&src, 512 * MIB, 5);
        let want = sha256_file(&src);
        let vol = s.register(&src, "v");

        // A completed backup that must survive everything below.
        let (_, b) = s.post("/backups", json!({"backup": {"volume_id": vol, "name": "good"}}));
        let good = b["backup"]["id"].as_str().unwrap().to_owned();
        s.wait_backup(&good, &["available"]);
        let good_files = files_under(&s.backup_root());

        // 1. Kill during a backup, once its first object is on disk.
        let (_, b) = s.post("/backups", json!({"backup": {"volume_id": vol, "name": "killed"}}));
        let killed = b["backup"]["id"].as_str().unwrap().to_owned();
        until("the first object of the killed backup", || files_under(&s.backup_root()).len() > good_files.len());
        assert_eq!(s.backup(&killed)["status"], "creating", "the backup finished before the kill; use a larger volume");
        s = s.kill_and_restart(&[]);
        let k = s.backup(&killed);
        assert_eq!(k["status"], "error", "{db:?}");
        assert_eq!(k["fail_reason"], "incomplete backup reset on manager restart");
        assert_eq!(s.volume(&vol)["status"], "available");
        // The partial objects go in the background, after the server is up.
        until("the partial objects removed", || files_under(&s.backup_root()) == good_files);

        // 2. Kill during a restore onto a new volume.
        let (st, r) = s.post(&format!("/backups/{good}/restore"), json!({"restore": {}}));
        assert_eq!(st, 202, "{r}");
        let target = r["restore"]["volume_id"].as_str().unwrap().to_owned();
        let progress = |s: &Server| s.get(&format!("/backups/{good}/progress")).1["progress"]["bytes_done"].as_u64();
        until("restore progress", || progress(&s).unwrap_or(0) > 0 || s.backup(&good)["status"] != "restoring");
        s = s.kill_and_restart(&[]);
        assert_eq!(s.backup(&good)["status"], "available");
        let t = s.volume(&target);
        assert!(["error_restoring", "available"].contains(&t["status"].as_str().unwrap()), "{t}");

        // 3. Kill right after a delete is accepted: the restart finishes it.
        let (_, e) = s.post("/backups", json!({"backup": {"volume_id": vol, "name": "doomed"}}));
        let doomed = e["backup"]["id"].as_str().unwrap().to_owned();
        s.wait_backup(&doomed, &["available"]);
        assert_eq!(s.request("DELETE", &format!("/backups/{doomed}"), None).0, 202);
        s = s.kill_and_restart(&[]);
        until("the resumed delete", || s.get(&format!("/backups/{doomed}")).0 == 404);
        assert!(files_under(&s.backup_root()).iter().all(|p| !p.to_string_lossy().contains(&doomed)));
        // The error backup of step 1 can be deleted too.
        assert_eq!(s.request("DELETE", &format!("/backups/{killed}"), None).0, 202);
        until("the delete of the killed backup", || s.get(&format!("/backups/{killed}")).0 == 404);
        assert_eq!(files_under(&s.backup_root()), good_files);

        // 4. Kill while a snapshot is being copied: it ends `error` with no partial copy,
        //    or `available` and whole; never stuck in `creating`.
        let (st, sn) = s.post("/snapshots", json!({"snapshot": {"volume_id": vol}}));
        assert_eq!(st, 202, "{sn}");
        let snap = sn["snapshot"]["id"].as_str().unwrap().to_owned();
        let copy = s.backup_root().parent().unwrap().join("snapshots").join(format!("{snap}.raw"));
        s = s.kill_and_restart(&[]);
        let after = s.get(&format!("/snapshots/{snap}")).1["snapshot"]["status"].clone();
        match after.as_str() {
            Some("error") => assert!(!copy.exists(), "{db:?}: the partial copy was removed"),
            Some("available") => assert_eq!(sha256_file(&copy), want, "{db:?}"),
            other => panic!("{db:?}: snapshot left in {other:?}"),
        }
        assert_eq!(s.request("DELETE", &format!("/snapshots/{snap}"), None).0, 202);
        assert!(!copy.exists());

        // 5. Kill during a backup of a snapshot: the snapshot is released, the backup `error`.
        let (_, sn) = s.post("/snapshots", json!({"snapshot": {"volume_id": vol}}));
        let snap = sn["snapshot"]["id"].as_str().unwrap().to_owned();
        until("the snapshot", || s.get(&format!("/snapshots/{snap}")).1["snapshot"]["status"] == "available");
        let (st, b) = s.post("/backups", json!({"backup": {"volume_id": vol, "snapshot_id": snap}}));
        assert_eq!(st, 202, "{b}");
        let of_snap = b["backup"]["id"].as_str().unwrap().to_owned();
        until("the first object of the snapshot backup", || files_under(&s.backup_root()).len() > good_files.len());
        s = s.kill_and_restart(&[]);
        assert_eq!(s.get(&format!("/snapshots/{snap}")).1["snapshot"]["status"], "available", "{db:?}");
        assert!(["error", "available"].contains(&s.backup(&of_snap)["status"].as_str().unwrap()));
        assert_eq!(s.request("DELETE", &format!("/backups/{of_snap}"), None).0, 202);
        until("the delete of the snapshot backup", || s.get(&format!("/backups/{of_snap}")).0 == 404);
        assert_eq!(files_under(&s.backup_root()), good_files, "{db:?}");

        // The completed backup still restores bit for bit.
        let (st, r) = s.post(&format!("/backups/{good}/restore"), json!({"restore": {}}));
        assert_eq!(st, 202, "{r}");
        let v = s.wait_volume(r["restore"]["volume_id"].as_str().unwrap(), &["available", "error_restoring"]);
        assert_eq!(v["status"], "available");
        assert_eq!(sha256_file(Path::new(v["holdfast:path"].as_str().unwrap())), want, "{db:?}");
    }
}
