//! Issue 5 §1: incremental backups — only changed sha blocks are stored, restores lay
//! the chain from the full backup up, parents with dependents cannot be deleted.

use std::os::unix::fs::FileExt;
use std::path::Path;

use serde_json::{Value, json};

use crate::support::{MIB, Server, databases, sha256_file, single};

const VOLUME: usize = 256 * MIB;

/// Overwrite `count` 64 KiB regions (32 KiB aligned) with fresh bytes; returns bytes changed.
fn change(path: &Path, count: usize, seed: u64) -> usize {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    let mut x = seed | 1;
    let regions = VOLUME / (64 * 1024);
    for i in 0..count {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let region = (x as usize + i * 7919) % regions;
        let bytes: Vec<u8> = (0..64 * 1024).map(|j| (j as u64 ^ x ^ i as u64) as u8 | 1).collect();
        f.write_all_at(&bytes, (region * 64 * 1024) as u64).unwrap();
    }
    f.sync_all().unwrap();
    count * 64 * 1024
}

/// Sum of the uncompressed lengths of a backup's stored objects.
fn stored_span(s: &Server, backup: &Value) -> u64 {
    let dir = s.backup_root().join(backup["container"].as_str().unwrap());
    let meta = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with("_metadata"))
        .unwrap();
    let meta: Value = serde_json::from_slice(&std::fs::read(meta.path()).unwrap()).unwrap();
    meta["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_object().unwrap().values().next().unwrap()["length"].as_u64().unwrap())
        .sum()
}

fn create(s: &Server, volume: &str, incremental: bool) -> Value {
    let mut args = vec!["backup", "create", volume, "--wait", "--format", "json"];
    if incremental {
        args.push("--incremental");
    }
    single(s.cli_json(&args))
}

#[test]
fn incremental_chain_stores_changes_and_restores_bit_for_bit() {
    for db in databases() {
        let s = Server::start(&db, &[]);
        let (src, vol) = s.mixed_volume("v", VOLUME, 11);

        // The first backup of a volume cannot be incremental.
        let (st, e) = s.post("/backups", json!({"backup": {"volume_id": vol, "incremental": true}}));
        assert_eq!(st, 400, "{e}");
        assert!(e["badRequest"]["message"].as_str().unwrap().contains("No backups available"), "{e}");

        let full = create(&s, &vol, false);
        assert_eq!(full["is_incremental"], false);

        // 1% changed → the incremental stores about 1%.
        let changed = change(&src, 41, 1);
        let inc = create(&s, &vol, true);
        assert_eq!(inc["is_incremental"], true, "{db:?}");
        let span = stored_span(&s, &inc);
        assert!(span >= changed as u64 / 2 && span <= 2 * changed as u64, "stored {span} bytes for {changed} changed");
        assert_eq!(s.backup(full["id"].as_str().unwrap())["has_dependent_backups"], true);
        // The dependent count and parent: Holdfast's CLI asks for them; Cinder's view has neither.
        assert_eq!(full["holdfast:num_dependent_backups"], 0, "the CLI saw the full before its child");
        let shown = single(s.cli_json(&["backup", "show", full["id"].as_str().unwrap(), "--format", "json"]));
        assert_eq!(shown["holdfast:num_dependent_backups"], 1, "{db:?}");
        assert_eq!(inc["holdfast:parent_id"], full["id"]);
        let (_, plain) = s.get_cinder(&format!("/backups/{}", full["id"].as_str().unwrap()));
        assert!(plain["backup"].get("holdfast:num_dependent_backups").is_none(), "{plain}");
        let want = sha256_file(&src);
        let r = single(s.cli_json(&["backup", "restore", inc["id"].as_str().unwrap(), "--wait", "--format", "json"]));
        assert_eq!(
            sha256_file(Path::new(r["holdfast:path"].as_str().unwrap())),
            want,
            "{db:?}: restore of the incremental"
        );

        // A chain of five incrementals; the last restores onto an existing volume.
        let mut last = inc;
        for i in 0..4 {
            change(&src, 20, 100 + i);
            last = create(&s, &vol, true);
        }
        let want = sha256_file(&src);
        let (other, other_id) = s.mixed_volume("other", VOLUME, 77);
        let last_id = last["id"].as_str().unwrap().to_owned();
        let r =
            single(s.cli_json(&["backup", "restore", &last_id, "--volume", &other_id, "--wait", "--format", "json"]));
        assert_eq!(r["status"], "available");
        assert_eq!(sha256_file(&other), want, "{db:?}: chain of 5 incrementals");

        // A parent with dependents cannot be deleted; newest first works.
        let (st, e) = s.request("DELETE", &format!("/backups/{}", full["id"].as_str().unwrap()), None);
        assert_eq!(st, 400);
        assert!(e["badRequest"]["message"].as_str().unwrap().contains("Incremental backups exist"), "{e}");
        let out = s.cli(&["backup", "delete", &last_id, "--wait"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}
