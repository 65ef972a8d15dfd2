//! Confinement per operation: a driver working on one backup cannot read, overwrite,
//! delete or list another backup's objects in the same store, nor write its own before
//! it records where they go; its chain is read-only. Each attempt stops the driver
//! with a reason that names it, and the victim still restores bit for bit.

use std::path::Path;
use std::sync::Arc;

use holdfast_driver::{BackupDriver, Grants, OpContext};
use holdfast_plugin_host::DriverComponent;
use holdfast_types::{Backup, Timestamp};
use holdfast_volume::VolumeFile;
use sha2::{Digest, Sha256};

mod common;

const SIZE: u64 = 1 << 20;

fn volume(path: &Path, seed: &str) -> Vec<u8> {
    let mut image: Vec<u8> = (0..SIZE / 32).flat_map(|i| Sha256::digest(format!("{seed}-{i}")).to_vec()).collect();
    image[..4096].fill(0);
    std::fs::write(path, &image).unwrap();
    image
}

/// The store's files and their contents, to show an attack changed nothing.
fn snapshot(store: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut dirs = vec![store.to_owned()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                out.push((p.strip_prefix(store).unwrap().display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn an_operation_reaches_its_own_backup_only() {
    let work = tempfile::tempdir().unwrap();
    let store = work.path().join("store");
    std::fs::create_dir(&store).unwrap();
    let grants = Grants::store(store.clone());
    let config = vec![("backup_file_size".to_owned(), "131072".to_owned())];
    let d =
        DriverComponent::load("neighbour", holdfast_plugin_artifacts::HOSTILE_NEIGHBOUR_BYTES, grants, config).unwrap();
    let id = |n: u32| format!("00000000-0000-4000-8000-{n:012}");
    let vol = work.path().join("victim.raw");
    let image = volume(&vol, "victim");
    let source = || Arc::new(VolumeFile::open_read(&vol).unwrap());

    // The victim: an honest full backup, and an incremental on it.
    let mut victim = Backup { volume_id: id(90), created_at: Timestamp::now(), ..common::row(&id(1), SIZE) };
    let r = d.backup(OpContext::default(), &victim, None, None, source()).unwrap();
    victim.container = Some(r.container.clone());
    victim.service_metadata = Some(r.service_metadata.clone());
    let (vc, vp) = (r.container, r.service_metadata);
    let object = format!("{vp}-00001");
    let before = snapshot(&store);
    assert!(before.iter().any(|(p, _)| p.ends_with(&object)), "{before:?}");

    // An attacker's backup of another volume, in the same container (a user-named
    // one, as `--container` makes) and in its own.
    let attacker = |n: u32, op: &str, kind: &str, target: &str, container: Option<&str>| Backup {
        volume_id: id(91),
        created_at: Timestamp::now(),
        container: container.map(str::to_owned),
        display_description: Some(format!("attack:{op}:{kind}:{vc}:{target}")),
        ..common::row(&id(n), SIZE)
    };
    let stored = |b: Backup| Backup {
        container: Some(b.container.clone().unwrap_or_else(|| vc.clone())),
        service_metadata: Some(format!("volume_{}_x_backup_{}", b.volume_id, b.id)),
        ..b
    };
    let mut outcomes = Vec::new();
    let mut n = 10;
    for (op, kind, target) in [
        ("backup", "read", object.as_str()),
        ("backup", "read", &format!("{vp}_metadata")),
        ("backup", "overwrite", &object),
        ("backup", "append", &format!("{vp}_sha256file")),
        ("backup", "read-range", &format!("{vp}_sha256file")),
        ("backup", "delete", &object),
        ("backup", "list", ""),
        ("backup", "list-prefix", &vp),
        ("backup", "put-chunk", &object),
        ("backup", "write-unrecorded", &object),
        ("restore", "read", &object),
        ("restore", "list-prefix", &vp),
        ("restore", "read-range", &object),
        ("restore", "append", &object),
        ("restore", "restore-object", &object),
        ("delete", "delete", &object),
        ("delete", "overwrite", &object),
        ("delete", "read", &object),
        ("delete", "read-range", &object),
    ] {
        for same_container in [false, true] {
            n += 1;
            let b = attacker(n, op, kind, target, same_container.then_some(vc.as_str()));
            let e = match op {
                "backup" => d.backup(OpContext::default(), &b, None, None, source()).map(drop),
                "restore" => {
                    let sink =
                        Arc::new(VolumeFile::open_write(&work.path().join("scratch.raw")).unwrap_or_else(|_| {
                            std::fs::write(work.path().join("scratch.raw"), vec![0u8; SIZE as usize]).unwrap();
                            VolumeFile::open_write(&work.path().join("scratch.raw")).unwrap()
                        }));
                    d.restore(OpContext::default(), &[stored(b)], sink, false).map(drop)
                }
                _ => d.delete(OpContext::default(), &stored(b)),
            }
            .expect_err(&format!("{op} {kind} {target}"))
            .to_string();
            assert!(e.contains("denied"), "{op} {kind} {target}: {e}");
            assert!(!e.contains("let through"), "{op} {kind}: {e}");
            assert_eq!(snapshot(&store).iter().filter(|(p, _)| p.contains(&vp)).count(), before.len(), "{op} {kind}");
            outcomes.push(format!("{op:<8} {kind:<17} {}", e.chars().take(140).collect::<String>()));
        }
    }
    println!("{}", outcomes.join("\n"));
    let after: Vec<_> = snapshot(&store).into_iter().filter(|(p, _)| p.contains(&vp)).collect();
    assert_eq!(after, before, "the victim's objects are byte for byte as they were");

    // The victim restores bit for bit.
    let target = work.path().join("restored.raw");
    std::fs::write(&target, vec![0xEE; SIZE as usize]).unwrap();
    let sink = Arc::new(VolumeFile::open_write(&target).unwrap());
    d.restore(OpContext::default(), &[victim.clone()], sink, false).unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), image);

    // And an honest incremental reads its parent (the chain) but cannot change it.
    let mut inc = Backup { volume_id: id(90), created_at: Timestamp::now(), ..common::row(&id(2), SIZE) };
    inc.parent_id = Some(victim.id.clone());
    let r = d.backup(OpContext::default(), &inc, Some(&victim), None, source()).unwrap();
    assert_eq!(r.object_count, 0, "nothing changed since the parent");
    inc.container = Some(r.container);
    inc.service_metadata = Some(r.service_metadata);
    d.delete(OpContext::default(), &inc).unwrap();
    d.delete(OpContext::default(), &victim).unwrap();
    assert_eq!(std::fs::read_dir(&store).unwrap().count(), 0, "deletes leave no objects and no empty containers");
}
