//! Issue 4, the walking skeleton: full backup and restore of a real volume.

use serde_json::json;

use crate::support::{MIB, Server, databases, files_under, sha256_file, single, write_mixed_volume};

const VOLUME: usize = 256 * MIB;

#[test]
fn backup_restore_delete_round_trip_through_the_cli() {
    for db in databases() {
        let s = Server::start(&db, &[]);
        let src = s.input("source.raw");
        write_mixed_volume(&src, VOLUME, 7);
        let want = sha256_file(&src);

        let vol =
            single(s.cli_json(&["volume", "register", src.to_str().unwrap(), "--name", "source", "--format", "json"]));
        let vol_id = vol["id"].as_str().unwrap().to_owned();
        assert_eq!(vol["size"], 1, "{db:?}: 256 MiB is Cinder size 1 GiB");

        // Full backup, waited for by the CLI.
        let b = single(s.cli_json(&["backup", "create", "source", "--name", "first", "--wait", "--format", "json"]));
        assert_eq!(b["status"], "available", "{db:?}: {b}");
        let id = b["id"].as_str().unwrap().to_owned();
        let objects = b["object_count"].as_u64().unwrap() as usize;
        assert!(objects >= 32, "256 MiB in objects of at most 8 MiB: {objects}");
        assert_eq!(b["size"], 1);
        assert_eq!(s.volume(&vol_id)["status"], "available");
        let files = files_under(&s.backup_root());
        let names: Vec<String> = files.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(files.len(), objects + 2, "objects + metadata + sha256file: {names:?}");
        assert!(names.iter().any(|n| n.ends_with("_metadata")));
        assert!(names.iter().any(|n| n.ends_with("_sha256file")));
        // The metadata's objects tile the volume in order (Cinder's restore relies on offset/length).
        let meta_path = files.iter().find(|p| p.to_string_lossy().ends_with("_metadata")).unwrap();
        let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(meta_path).unwrap()).unwrap();
        let mut next = 0u64;
        for o in meta["objects"].as_array().unwrap() {
            let (_, e) = o.as_object().unwrap().iter().next().unwrap();
            assert_eq!(e["offset"].as_u64().unwrap(), next);
            assert!(e["length"].as_u64().unwrap() <= 8 * MIB as u64);
            next += e["length"].as_u64().unwrap();
        }
        assert_eq!(next, VOLUME as u64);
        let container = b["container"].as_str().unwrap();
        assert_eq!(container, format!("{}/{}/{id}", &id[..2], &id[2..4]));

        // Restore to a new volume: same bytes.
        let restored = single(s.cli_json(&["backup", "restore", &id, "--wait", "--format", "json"]));
        let new_id = restored["id"].as_str().unwrap();
        assert_ne!(new_id, vol_id);
        assert_eq!(restored["status"], "available");
        // The CLI names the new volume after the backup, so `source` stays unambiguous…
        assert_eq!(restored["name"], format!("{id}-restored"));
        // …while a Cinder client that names nothing gets Cinder's rule: the source's name.
        let (st, r) = s.post(&format!("/backups/{id}/restore"), serde_json::json!({"restore": {}}));
        assert_eq!(st, 202, "{r}");
        let cinder_named = s.wait_volume(r["restore"]["volume_id"].as_str().unwrap(), &["available"]);
        assert_eq!(cinder_named["name"], "source", "the auto-created volume takes the source volume's name");
        s.wait_backup(&id, &["available"]);
        assert_eq!(sha256_file(std::path::Path::new(restored["holdfast:path"].as_str().unwrap())), want, "{db:?}");

        // Restore onto an existing volume full of other data: same bytes.
        let other = s.input("other.raw");
        write_mixed_volume(&other, VOLUME, 99);
        assert_ne!(sha256_file(&other), want);
        let other_id = s.register(&other, "other");
        let onto = single(s.cli_json(&["backup", "restore", &id, "--volume", "other", "--wait", "--format", "json"]));
        assert_eq!(onto["id"], other_id.as_str());
        assert_eq!(sha256_file(&other), want, "{db:?}: restore onto an existing volume");
        assert_eq!(s.backup(&id)["status"], "available");

        // Delete: the objects go, the backup disappears from the API.
        let out = s.cli(&["backup", "delete", &id, "--wait"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(s.get(&format!("/backups/{id}")).0, 404);
        assert!(files_under(&s.backup_root()).is_empty(), "{:?}", files_under(&s.backup_root()));
        // The source volume is untouched by all of this.
        assert_eq!(sha256_file(&src), want);
    }
}

#[test]
fn bad_restores_are_refused_and_change_nothing() {
    for db in databases() {
        let s = Server::start(&db, &[]);
        let (_, vol) = s.mixed_volume("src", 16 * MIB, 3);
        let (st, created) = s.post("/backups", json!({"backup": {"volume_id": vol, "name": "b"}}));
        assert_eq!(st, 202, "{created}");
        let id = created["backup"]["id"].as_str().unwrap().to_owned();
        assert_eq!(created["backup"].as_object().unwrap().len(), 3, "summary has exactly id, name, links");
        s.wait_backup(&id, &["available"]);

        // Onto a smaller volume (same Cinder GiB size, fewer bytes).
        let small = s.input("small.raw");
        write_mixed_volume(&small, 8 * MIB, 5);
        let before = sha256_file(&small);
        let small_id = s.register(&small, "small");
        let (st, err) = s.post(&format!("/backups/{id}/restore"), json!({"restore": {"volume_id": small_id}}));
        assert_eq!(st, 400, "{err}");
        assert!(err["badRequest"]["message"].as_str().unwrap().contains("too small"), "{err}");
        assert_eq!(sha256_file(&small), before);
        assert_eq!(s.volume(&small_id)["status"], "available");
        assert_eq!(s.backup(&id)["status"], "available");

        // A missing volume, a missing backup.
        let ghost = "11111111-2222-3333-4444-555555555555";
        let (st, err) = s.post(&format!("/backups/{id}/restore"), json!({"restore": {"volume_id": ghost}}));
        assert_eq!(st, 404, "{err}");
        assert_eq!(err["itemNotFound"]["message"], format!("Volume {ghost} could not be found."));
        let (st, err) = s.post(&format!("/backups/{ghost}/restore"), json!({"restore": {}}));
        assert_eq!(st, 404, "{err}");
        assert_eq!(err["itemNotFound"]["message"], format!("Backup {ghost} could not be found."));
        assert_eq!(s.backup(&id)["status"], "available");

        // The CLI says the same in one line and exits non-zero.
        let out = s.cli(&["backup", "restore", &id, "--volume", "small"]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("too small") && err.lines().count() == 1, "{err}");
        let out = s.cli(&["backup", "show", ghost]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(ghost) && err.lines().count() == 1, "{err}");
        // No volume was created by the refused restores.
        let (_, vols) = s.get("/volumes/detail");
        assert_eq!(vols["volumes"].as_array().unwrap().len(), 2);
    }
}

#[test]
fn a_trapping_driver_fails_the_backup_and_the_host_keeps_serving() {
    let trap = holdfast_plugin_artifacts::HOSTILE_TRAP_MID_BACKUP;
    for db in databases() {
        let s = Server::start(&db, &["--driver", trap]);
        let (_, vol) = s.mixed_volume("v", 8 * MIB, 1);
        let out = s.cli(&["backup", "create", &vol, "--wait"]);
        assert!(!out.status.success(), "--wait must fail when the backup ends in error");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("trapped"), "{err}");
        let (_, list) = s.get("/backups/detail");
        let b = &list["backups"][0];
        assert_eq!(b["status"], "error");
        let reason = b["fail_reason"].as_str().unwrap();
        assert!(reason.contains("trapped during backup") && reason.contains("unreachable"), "{reason}");
        assert_eq!(s.volume(&vol)["status"], "available");
        // Still serving, and the failed backup can be deleted.
        assert_eq!(s.get("").0, 200);
        let id = b["id"].as_str().unwrap();
        assert_eq!(s.request("DELETE", &format!("/backups/{id}"), None).0, 202);
    }
}
