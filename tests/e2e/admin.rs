//! Admin actions (issue 5 §4, §5): reset-status, force delete of a backup being
//! created, cancelling a restore by resetting its backup's status.

use serde_json::json;

use crate::support::{MIB, Server, databases, files_under, single, until};

#[test]
fn reset_status_force_delete_and_cancelled_restore() {
    for db in databases() {
        let s = Server::start(&db, &[]);
        let (_, vol) = s.mixed_volume("v", 512 * MIB, 21);
        let good = single(s.cli_json(&["backup", "create", "v", "--name", "good", "--wait", "--format", "json"]));
        let good_id = good["id"].as_str().unwrap().to_owned();
        let good_files = files_under(&s.backup_root());

        // reset-state: to error and back; anything else is refused.
        let b = single(s.cli_json(&["backup", "reset-state", &good_id, "--state", "error", "--format", "json"]));
        assert_eq!(b["status"], "error");
        let (st, e) = s.post(&format!("/backups/{good_id}/action"), json!({"os-reset_status": {"status": "creating"}}));
        assert_eq!(st, 400);
        assert_eq!(
            e["badRequest"]["message"],
            "Backup status: creating is invalid, valid statuses are: ['available', 'error']."
        );
        let (st, _) =
            s.post(&format!("/backups/{good_id}/action"), json!({"os-reset_status": {"status": "AVAILABLE"}}));
        assert_eq!(st, 202);
        assert_eq!(s.backup(&good_id)["status"], "available");

        // Force delete of a backup in `creating`: the driver stops, its objects go.
        let (_, b) = s.post("/backups", json!({"backup": {"volume_id": vol, "name": "doomed"}}));
        let doomed = b["backup"]["id"].as_str().unwrap().to_owned();
        until("the first object", || files_under(&s.backup_root()).len() > good_files.len());
        assert_eq!(s.backup(&doomed)["status"], "creating", "finished before the force delete; use a larger volume");
        // Not to `available`: the cancel would remove what it stored so far.
        let (st, e) = s.post(&format!("/backups/{doomed}/action"), json!({"os-reset_status": {"status": "available"}}));
        assert_eq!(st, 400, "{e}");
        assert!(e["badRequest"]["message"].as_str().unwrap().contains("reset its status to error"), "{e}");
        assert_eq!(s.backup(&doomed)["status"], "creating");
        let out = s.cli(&["backup", "delete", &doomed, "--force", "--wait"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(s.get(&format!("/backups/{doomed}")).0, 404);
        s.wait_volume(&vol, &["available"]);
        assert_eq!(files_under(&s.backup_root()), good_files, "{db:?}: partial objects removed");

        // Cancel a restore: reset the backup's status while it restores.
        let (st, r) = s.post(&format!("/backups/{good_id}/restore"), json!({"restore": {}}));
        assert_eq!(st, 202, "{r}");
        let target = r["restore"]["volume_id"].as_str().unwrap().to_owned();
        let (st, _) = s.post(&format!("/backups/{good_id}/action"), json!({"os-reset_status": {"status": "error"}}));
        assert_eq!(st, 202);
        let t = s.wait_volume(&target, &["error", "available", "error_restoring"]);
        assert_eq!(t["status"], "error", "{db:?}: a cancelled restore leaves the target in error");
        s.wait_backup(&good_id, &["available"]);
    }
}

#[test]
fn in_use_volumes_need_force() {
    for db in databases() {
        let s = Server::start(&db, &[]);
        let (_, vol) = s.mixed_volume("v", 8 * MIB, 2);
        assert_eq!(s.post(&format!("/volumes/{vol}/action"), json!({"os-attach": {"mountpoint": "/dev/vdb"}})).0, 202);
        assert_eq!(s.volume(&vol)["status"], "in-use");
        let (st, e) = s.post("/backups", json!({"backup": {"volume_id": vol}}));
        assert_eq!(st, 400);
        assert_eq!(e["badRequest"]["message"], "Invalid volume: Backing up an in-use volume must use the force flag.");
        let b = single(s.cli_json(&["backup", "create", &vol, "--force", "--wait", "--format", "json"]));
        assert_eq!(b["status"], "available", "{db:?}");
        assert_eq!(s.volume(&vol)["status"], "in-use", "the volume keeps its status");
        // An in-use volume cannot be restored onto; detached it can.
        let id = b["id"].as_str().unwrap();
        let (st, _) = s.post(&format!("/backups/{id}/restore"), json!({"restore": {"volume_id": vol}}));
        assert_eq!(st, 400);
        assert_eq!(s.post(&format!("/volumes/{vol}/action"), json!({"os-detach": {}})).0, 202);
        let (st, _) = s.post(&format!("/backups/{id}/restore"), json!({"restore": {"volume_id": vol}}));
        assert_eq!(st, 202);
        s.wait_volume(&vol, &["available"]);
    }
}
