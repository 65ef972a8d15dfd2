//! Issue 5 §2: backups of snapshots — the host takes a point-in-time copy, the backup
//! reads the copy (not the live volume), its data_timestamp is the snapshot's time,
//! and an incremental of a snapshot takes a parent older than the snapshot.

use std::os::unix::fs::FileExt;
use std::path::Path;

use serde_json::json;

use crate::support::{MIB, Server, databases, sha256_file, single};

const VOLUME: usize = 32 * MIB;

fn scribble(path: &Path, seed: u8) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    for i in 0..8u64 {
        f.write_all_at(&vec![seed ^ i as u8 | 1; 256 * 1024], i * 3 * MIB as u64).unwrap();
    }
    f.sync_all().unwrap();
}

#[test]
fn backups_of_snapshots_read_the_point_in_time_copy() {
    for db in databases() {
        let s = Server::start(&db, &[]);
        let (src, vol) = s.mixed_volume("v", VOLUME, 5);
        let first = single(s.cli_json(&["backup", "create", &vol, "--wait", "--format", "json"]));

        // Snapshot at content B, then the volume moves on to C and gets a newer backup.
        scribble(&src, 0x20);
        let want = sha256_file(&src);
        let snap =
            single(s.cli_json(&["snapshot", "create", "v", "--name", "before-upgrade", "--wait", "--format", "json"]));
        assert_eq!(snap["status"], "available", "{db:?}");
        assert_eq!(snap["volume_id"], vol.as_str());
        let snap_id = snap["id"].as_str().unwrap().to_owned();
        let copy = s.backup_root().parent().unwrap().join("snapshots").join(format!("{snap_id}.raw"));
        assert_eq!(sha256_file(&copy), want, "the snapshot is a copy of the volume at that moment");
        scribble(&src, 0x40);
        let newer = single(s.cli_json(&["backup", "create", &vol, "--wait", "--format", "json"]));

        // An incremental of the snapshot: the parent is the backup older than the snapshot.
        let b = single(s.cli_json(&[
            "backup",
            "create",
            &vol,
            "--snapshot",
            "before-upgrade",
            "--incremental",
            "--wait",
            "--format",
            "json",
        ]));
        assert_eq!(b["snapshot_id"], snap_id.as_str(), "{db:?}");
        assert_eq!(b["is_incremental"], true);
        assert_eq!(b["data_timestamp"], snap["created_at"], "data_timestamp is the snapshot's time");
        assert_eq!(s.backup(first["id"].as_str().unwrap())["has_dependent_backups"], true, "parent = first");
        assert_eq!(s.backup(newer["id"].as_str().unwrap())["has_dependent_backups"], false);
        assert_eq!(s.volume(&vol)["status"], "available", "the volume was not locked");
        let (_, sv) = s.get(&format!("/snapshots/{snap_id}"));
        assert_eq!(sv["snapshot"]["status"], "available", "the snapshot is released");

        let r = single(s.cli_json(&["backup", "restore", b["id"].as_str().unwrap(), "--wait", "--format", "json"]));
        assert_eq!(sha256_file(Path::new(r["holdfast:path"].as_str().unwrap())), want, "{db:?}: snapshot content");

        // Refusals: another volume's snapshot, a missing one, deleting a volume that has one.
        let (_, other) = s.mixed_volume("other", 4 * MIB, 6);
        let (st, e) = s.post("/backups", json!({"backup": {"volume_id": other, "snapshot_id": snap_id}}));
        assert_eq!(st, 400, "{e}");
        assert!(e["badRequest"]["message"].as_str().unwrap().contains("does not match"), "{e}");
        let missing = "00000000-0000-0000-0000-000000000000";
        let (st, e) = s.post("/backups", json!({"backup": {"volume_id": vol, "snapshot_id": missing}}));
        assert_eq!(st, 404, "{e}");
        assert_eq!(e["itemNotFound"]["message"], format!("Snapshot {missing} could not be found."));
        let (st, e) = s.request("DELETE", &format!("/volumes/{vol}"), None);
        assert_eq!(st, 400, "{e}");
        assert!(e["badRequest"]["message"].as_str().unwrap().contains("dependent snapshots"), "{e}");

        // In-use volumes need force, as for backups.
        assert_eq!(s.post(&format!("/volumes/{other}/action"), json!({"os-attach": {}})).0, 202);
        let (st, _) = s.post("/snapshots", json!({"snapshot": {"volume_id": other}}));
        assert_eq!(st, 400);
        let (st, forced) = s.post("/snapshots", json!({"snapshot": {"volume_id": other, "force": true}}));
        assert_eq!(st, 202, "{forced}");
        // Cinder's create reply has no extended attributes; show has them.
        assert!(forced["snapshot"].get("os-extended-snapshot-attributes:progress").is_none(), "{forced}");
        let forced_id = forced["snapshot"]["id"].as_str().unwrap();
        crate::support::until("the forced snapshot", || {
            let (_, v) = s.get(&format!("/snapshots/{forced_id}"));
            let p = v["snapshot"]["os-extended-snapshot-attributes:progress"].as_str().unwrap().to_owned();
            assert!(p.ends_with('%') && p[..p.len() - 1].parse::<u64>().is_ok_and(|n| n <= 100), "{p}");
            v["snapshot"]["status"] == "available" && p == "100%"
        });

        let list = s.cli_json(&["snapshot", "list", "--volume", &vol, "--format", "json"]);
        assert_eq!(list["snapshots"].as_array().unwrap().len(), 1, "{list}");

        // Deleting the snapshot removes the copy; then the volume can go.
        let out = s.cli(&["snapshot", "delete", &snap_id]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(!copy.exists());
        assert_eq!(s.get(&format!("/snapshots/{snap_id}")).0, 404);
        assert_eq!(s.request("DELETE", &format!("/volumes/{vol}"), None).0, 202);
    }
}
