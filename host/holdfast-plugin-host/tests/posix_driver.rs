//! The real posix component, driven through the plugin host (no server, no database).

use std::path::Path;

use holdfast_driver::{BackupDriver, DriverError, Grants, OpContext};
use holdfast_plugin_host::DriverComponent;
use holdfast_types::{Backup, Timestamp};
use holdfast_volume::VolumeFile;
use md5::Md5;
use sha2::{Digest, Sha256};

mod common;

fn posix(dir: &Path, config: &[(&str, &str)]) -> DriverComponent {
    posix_build(holdfast_plugin_artifacts::POSIX_BYTES, dir, config)
}

/// The current build keeps its objects in the host's store; builds before WIT 0.2.1
/// open the directory themselves (unconfined).
fn posix_build(bytes: &[u8], dir: &Path, config: &[(&str, &str)]) -> DriverComponent {
    let grants = if bytes == holdfast_plugin_artifacts::POSIX_BYTES {
        Grants::store(dir.to_owned())
    } else {
        Grants::backup_dir(dir.to_owned())
    };
    let config = config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    DriverComponent::load("posix", bytes, grants, config).unwrap()
}

/// The id of test backup or volume `n`.
fn id(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

/// `b` as the database keeps it once its backup returned `r`.
fn done(mut b: Backup, r: holdfast_driver::BackupResult) -> Backup {
    b.container = Some(r.container);
    b.service_metadata = Some(r.service_metadata);
    b
}

fn backup_row(id: &str, volume_id: &str, size_bytes: u64, created_at: Timestamp) -> Backup {
    Backup {
        volume_id: volume_id.into(),
        display_name: Some("nightly".into()),
        created_at,
        ..common::row(id, size_bytes)
    }
}

/// shared/docs/cinder-backup.md §4.12: six 32 KiB blocks, 64 KiB objects, zlib.
/// Our objects must carry the same offsets, lengths, compression names, MD5s and
/// SHA-256 list as Cinder's own PosixBackupDriver wrote.
#[test]
fn full_backup_matches_cinders_worked_example() {
    worked_example(holdfast_plugin_artifacts::POSIX_BYTES, "0.2.8");
}

/// The 0.2.0 build (files through WASI, kept byte for byte) binds to the 0.2.1 host by
/// semver and writes exactly the same.
#[test]
fn a_driver_built_for_wit_0_2_0_still_backs_up_and_restores() {
    worked_example(holdfast_plugin_artifacts::POSIX_WIT_0_2_0_BYTES, "0.2.0");
}

/// A posix driver built for WIT 0.1.0 by an earlier SDK (kept byte for byte) runs
/// through the `since_v0_1_0` conversion and writes and reads exactly the same.
#[test]
fn a_driver_built_for_wit_0_1_0_still_backs_up_and_restores() {
    worked_example(holdfast_plugin_artifacts::POSIX_WIT_0_1_0_BYTES, "0.1.0");
}

fn worked_example(component: &[u8], wit: &str) {
    let work = tempfile::tempdir().unwrap();
    let store = work.path().join("store");
    std::fs::create_dir(&store).unwrap();
    let mut image = vec![0u8; 196_608];
    image[32_768..65_536].fill(b'A');
    image[65_536..98_304].fill(b'B');
    image[98_304..131_072].fill(b'C');
    let random: Vec<u8> = (0..1024).flat_map(|i| Sha256::digest(format!("r-{i}").as_bytes()).to_vec()).collect();
    image[163_840..].copy_from_slice(&random[..32_768]);
    let vol = work.path().join("vol.raw");
    std::fs::write(&vol, &image).unwrap();

    let driver =
        posix_build(component, &store, &[("backup_file_size", "65536"), ("backup_compression_algorithm", "zlib")]);
    assert_eq!(driver.id().wit_version, wit);
    let b = backup_row(
        "9a7f3b2c-6d1e-4f80-a5b4-c3d2e1f0a9b8",
        "5c2e1d4a-0b7e-4c1f-9d3a-2f6b8e1a7c90",
        image.len() as u64,
        Timestamp(1_740_830_400_000_000),
    );
    let out = driver
        .backup(
            OpContext::default(),
            &b,
            None,
            Some("{\"version\": 2, \"volume-metadata\": {\"tier\": \"gold\"}}"),
            std::sync::Arc::new(VolumeFile::open_read(&vol).unwrap()),
        )
        .unwrap();
    assert_eq!(out.container, "9a/7f/9a7f3b2c-6d1e-4f80-a5b4-c3d2e1f0a9b8");
    assert_eq!(out.object_count, 3);
    let prefix =
        "volume_5c2e1d4a-0b7e-4c1f-9d3a-2f6b8e1a7c90_20250301120000_backup_9a7f3b2c-6d1e-4f80-a5b4-c3d2e1f0a9b8";
    assert_eq!(out.service_metadata, prefix);
    let dir = store.join(&out.container);
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(format!("{prefix}_metadata"))).unwrap()).unwrap();
    let objects = meta["objects"].as_array().unwrap();
    let expected_md5 =
        ["351b1a874fd230b0a61e9bc13f5381b6", "a32e686b8b936c68d1a7ce530ea76bd6", "68b104b77b292c3b3295b167ef70bd58"];
    for (i, o) in objects.iter().enumerate() {
        let name = format!("{prefix}-{:05}", i + 1);
        let e = &o[&name];
        assert_eq!(e["offset"], 65_536 * i as u64);
        assert_eq!(e["length"], 65_536);
        assert_eq!(e["compression"], "zlib");
        assert_eq!(e["md5"], expected_md5[i]);
        // Stored bytes are a zlib stream Python's zlib.decompress reads.
        let stored = std::fs::read(dir.join(&name)).unwrap();
        assert_eq!(stored[0], 0x78);
    }
    assert_eq!(meta["created_at"], "2025-03-01 12:00:00+00:00");
    assert_eq!(meta["backup_name"], "nightly");
    assert_eq!(meta["parent_id"], serde_json::Value::Null);
    assert_eq!(meta["version"], "1.0.0");
    assert_eq!(meta["volume_meta"], "{\"version\": 2, \"volume-metadata\": {\"tier\": \"gold\"}}");
    let sha: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(format!("{prefix}_sha256file"))).unwrap()).unwrap();
    assert_eq!(sha["chunk_size"], 32_768);
    let shas: Vec<&str> = sha["sha256s"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(
        shas,
        [
            "c35020473aed1b4642cd726cad727b63fff2824ad68cedd7ffb73c7cbd890479",
            "5ff074ddad88b7fcb4339cb7a3e68341061792869e43673b2de8525a75476bd8",
            "314a5163f130c25e1f962e1b0316d356d0702438df90c32c2d2dd16c84e551a8",
            "5becf6561bda86195a9736bfd2ece3932bff6ede11d1201824eabf1d7a2eea4b",
            "c35020473aed1b4642cd726cad727b63fff2824ad68cedd7ffb73c7cbd890479",
            "570b2ce487750619c590b249f4a3635671831a97d574c8e193e62dd5f729b45c",
        ]
    );
    let md5_of_first: String = Md5::digest(&image[..65_536]).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(md5_of_first, expected_md5[0]);

    // Restore onto a volume full of junk: zeros must overwrite it, data must land.
    let target = work.path().join("target.raw");
    std::fs::write(&target, vec![0xEEu8; image.len()]).unwrap();
    let mut done = b.clone();
    done.container = Some(out.container.clone());
    done.service_metadata = Some(out.service_metadata.clone());
    let r = driver
        .restore(
            OpContext::default(),
            &[done.clone()],
            std::sync::Arc::new(VolumeFile::open_write(&target).unwrap()),
            false,
        )
        .unwrap();
    assert_eq!(r.volume_metas.len(), 1);
    assert_eq!(std::fs::read(&target).unwrap(), image);

    // Next day: block 2 becomes `X`s, block 5 new random data (`sha256("s-i")` stream).
    // Cinder's incremental writes one object per changed run, never across reads.
    let mut image2 = image.clone();
    image2[65_536..98_304].fill(b'X');
    let random2: Vec<u8> = (0..1024).flat_map(|i| Sha256::digest(format!("s-{i}").as_bytes()).to_vec()).collect();
    image2[163_840..].copy_from_slice(&random2[..32_768]);
    std::fs::write(&vol, &image2).unwrap();
    let mut inc = backup_row(
        "b1e2c3d4-a5f6-4789-8abc-def012345678",
        "5c2e1d4a-0b7e-4c1f-9d3a-2f6b8e1a7c90",
        image2.len() as u64,
        Timestamp(1_740_916_800_000_000),
    );
    inc.parent_id = Some(done.id.clone());
    let out2 = driver
        .backup(
            OpContext::default(),
            &inc,
            Some(&done),
            None,
            std::sync::Arc::new(VolumeFile::open_read(&vol).unwrap()),
        )
        .unwrap();
    assert_eq!(out2.object_count, 2);
    let prefix2 =
        "volume_5c2e1d4a-0b7e-4c1f-9d3a-2f6b8e1a7c90_20250302120000_backup_b1e2c3d4-a5f6-4789-8abc-def012345678";
    let dir2 = store.join(&out2.container);
    let meta2: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir2.join(format!("{prefix2}_metadata"))).unwrap()).unwrap();
    assert_eq!(meta2["parent_id"], done.id.as_str());
    let objects2 = meta2["objects"].as_array().unwrap();
    let o1 = &objects2[0][format!("{prefix2}-00001")];
    let o2 = &objects2[1][format!("{prefix2}-00002")];
    assert_eq!((o1["offset"].as_u64(), o1["length"].as_u64()), (Some(65_536), Some(32_768)));
    assert_eq!(
        (o1["compression"].as_str(), o1["md5"].as_str()),
        (Some("zlib"), Some("bbe5552bc7dc8b1814f8476f42af090d"))
    );
    assert_eq!((o2["offset"].as_u64(), o2["length"].as_u64()), (Some(163_840), Some(32_768)));
    assert_eq!(
        (o2["compression"].as_str(), o2["md5"].as_str()),
        (Some("none"), Some("2492d99123891fb1966a465d39f3ed17"))
    );
    let sha2: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir2.join(format!("{prefix2}_sha256file"))).unwrap()).unwrap();
    assert_eq!(sha2["sha256s"][2], "a38480058050fe956d330b3cd12b2c930354a155a7f4dc78b0f79887fea1e3d2");
    assert_eq!(sha2["sha256s"][5], "e4ed39957ccfe30f4644c115745f5f951af43d2517f1029f0f93773ec4d3711c");
    assert_eq!(sha2["sha256s"][0], shas[0], "unchanged blocks keep the parent's digest");
    // Restoring the chain (full, then incremental) onto junk gives the second image.
    inc.container = Some(out2.container.clone());
    inc.service_metadata = Some(out2.service_metadata.clone());
    std::fs::write(&target, vec![0xEEu8; image.len()]).unwrap();
    let r = driver
        .restore(
            OpContext::default(),
            &[done.clone(), inc.clone()],
            std::sync::Arc::new(VolumeFile::open_write(&target).unwrap()),
            false,
        )
        .unwrap();
    assert_eq!(r.volume_metas.len(), 2);
    assert_eq!(std::fs::read(&target).unwrap(), image2);
    driver.delete(OpContext::default(), &inc).unwrap();

    // Delete removes every object and the now-empty default container.
    driver.delete(OpContext::default(), &done).unwrap();
    assert!(!dir.exists());
    assert_eq!(std::fs::read_dir(&store).unwrap().count(), 0);
}

#[test]
fn a_missing_backup_directory_fails_setup_clearly() {
    let work = tempfile::tempdir().unwrap();
    let missing = work.path().join("nope");
    for grants in [Grants::store(missing.clone()), Grants::backup_dir(missing.clone())] {
        let bytes = if grants.store.is_some() {
            holdfast_plugin_artifacts::POSIX_BYTES
        } else {
            holdfast_plugin_artifacts::POSIX_WIT_0_2_0_BYTES
        };
        let err = DriverComponent::load("posix", bytes, grants, vec![]).and_then(|d| d.setup()).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}

#[test]
fn a_trapping_driver_is_an_error_not_a_crash() {
    let work = tempfile::tempdir().unwrap();
    let vol = work.path().join("vol.raw");
    std::fs::write(&vol, vec![1u8; 4 << 20]).unwrap();
    let grants = Grants::backup_dir(work.path().to_owned());
    let d = DriverComponent::load("trap", holdfast_plugin_artifacts::HOSTILE_TRAP_MID_BACKUP_BYTES, grants, vec![])
        .unwrap();
    let b = backup_row("b1", "v1", 4 << 20, Timestamp::now());
    let err = d
        .backup(OpContext::default(), &b, None, None, std::sync::Arc::new(VolumeFile::open_read(&vol).unwrap()))
        .unwrap_err();
    assert!(matches!(err, DriverError::Trap { op: "backup", .. }), "{err}");
    assert!(err.to_string().contains("unreachable"), "{err}");
    // The same component still works for the next call.
    d.setup().unwrap();
}

#[test]
fn a_driver_reaches_only_its_granted_directory() {
    let work = tempfile::tempdir().unwrap();
    let vol = work.path().join("vol.raw");
    std::fs::write(&vol, vec![1u8; 1 << 20]).unwrap();
    let granted = work.path().join("granted");
    std::fs::create_dir(&granted).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", granted.join("escape-link")).unwrap();
    // A data dir beside the grant, as a careless layout would have it: the database and
    // the compile cache one `..` away, reached by relative links.
    let data = work.path().join("data");
    std::fs::create_dir_all(data.join("cache")).unwrap();
    std::fs::write(data.join("holdfast.db"), b"the database").unwrap();
    std::os::unix::fs::symlink("../data/holdfast.db", granted.join("db-link")).unwrap();
    std::os::unix::fs::symlink("../data/cache", granted.join("cache-link")).unwrap();
    let grants = Grants::backup_dir(granted.clone());
    let d =
        DriverComponent::load("escape", holdfast_plugin_artifacts::HOSTILE_ESCAPE_FS_BYTES, grants, vec![]).unwrap();
    let b = backup_row("b1", "v1", 1 << 20, Timestamp::now());
    let err = d
        .backup(OpContext::default(), &b, None, None, std::sync::Arc::new(VolumeFile::open_read(&vol).unwrap()))
        .unwrap_err()
        .to_string();
    let attempts: Vec<&str> = err.split_whitespace().filter(|w| w.contains('=')).collect();
    assert_eq!(attempts.len(), 10, "{err}");
    assert!(attempts.iter().all(|a| a.ends_with("=blocked")), "{err}");
    assert!(!std::path::Path::new("/tmp/holdfast-escape").exists());
    assert_eq!(std::fs::read(data.join("holdfast.db")).unwrap(), b"the database", "untouched");
}

/// A compiled driver is stored once and loaded from the cache after; an entry that
/// does not load (corrupt) is compiled again and replaced.
#[test]
fn compiled_drivers_are_cached() {
    let store = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().join("cache");
    let load = || {
        let grants = Grants::store(store.path().to_owned());
        DriverComponent::load_cached("posix", holdfast_plugin_artifacts::POSIX_BYTES, grants, vec![], Some(&dir))
            .unwrap()
    };
    load();
    let entries: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    assert!(entry.extension().is_some_and(|e| e == "cwasm"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700, "private");
    let stored = std::fs::metadata(entry).unwrap().modified().unwrap();
    let d = load();
    assert_eq!(std::fs::metadata(entry).unwrap().modified().unwrap(), stored, "loaded, not rewritten");
    d.setup().unwrap();

    std::fs::write(entry, b"not a compiled component").unwrap();
    let d = load();
    d.setup().unwrap();
    assert!(std::fs::read(entry).unwrap().len() > 1000, "the corrupt entry was replaced");
}

#[test]
fn components_that_are_not_drivers_for_this_host_are_refused_before_they_run() {
    let store = tempfile::tempdir().unwrap();
    let load = |bytes: &[u8]| {
        DriverComponent::load("x", bytes, Grants::backup_dir(store.path()), vec![]).err().map(|e| e.to_string())
    };
    let wrong = load(holdfast_plugin_artifacts::HOSTILE_WRONG_WORLD_BYTES).expect("a component of another world loads");
    assert!(wrong.contains("not a Holdfast backup driver") && wrong.contains("greet"), "{wrong}");
    let future = load(holdfast_plugin_artifacts::HOSTILE_FUTURE_WIT_BYTES).expect("a 9.0.0 driver loads");
    assert!(
        future.contains(
            "built for holdfast:backup@9.0.0, but this host supports 0.1.0, 0.2.0, 0.2.1, 0.2.2, 0.2.3, 0.2.4, 0.2.5, 0.2.6, 0.2.7, 0.2.8"
        ),
        "{future}"
    );
    let junk = load(b"\0asm\x0d\x00\x01\x00 definitely not sections").expect("junk loads");
    assert!(junk.contains("cannot load component"), "{junk}");
    // And the posix driver says which contract it was built for.
    let posix = posix(store.path(), &[]);
    assert_eq!(posix.id().wit_version, "0.2.8");
    // The SDK stamped the driver's own name and version into the component.
    assert_eq!((posix.id().name.as_str(), posix.id().version.as_str()), ("posix", env!("CARGO_PKG_VERSION")));
    assert_eq!(
        holdfast_plugin_host::supported_wit_versions(),
        ["0.1.0", "0.2.0", "0.2.1", "0.2.2", "0.2.3", "0.2.4", "0.2.5", "0.2.6", "0.2.7", "0.2.8"]
    );
}

/// An operator upgrades a backend from the 0.1.0 build to the current one (and back):
/// each reads what the other wrote, incrementals included. (The current build gets the
/// directory as its object store, the 0.1.0 one through WASI.)
#[test]
fn backups_cross_wit_versions_in_both_directions() {
    let work = tempfile::tempdir().unwrap();
    let store = work.path().join("store");
    std::fs::create_dir(&store).unwrap();
    let config = [("backup_file_size", "131072")];
    let old = posix_build(holdfast_plugin_artifacts::POSIX_WIT_0_1_0_BYTES, &store, &config);
    let new = posix_build(holdfast_plugin_artifacts::POSIX_BYTES, &store, &config);
    let vol = work.path().join("vol.raw");
    let mut image: Vec<u8> = (0..4096).flat_map(|i| Sha256::digest(format!("x-{i}").as_bytes()).to_vec()).collect();
    image.resize(1 << 20, 0);
    std::fs::write(&vol, &image).unwrap();
    let source = || std::sync::Arc::new(VolumeFile::open_read(&vol).unwrap());
    let full = backup_row(&id(1), &id(99), image.len() as u64, Timestamp(1_740_830_400_000_000));
    let r = old.backup(OpContext::default(), &full, None, None, source()).unwrap();
    let full = done(full, r);

    image[300_000..310_000].fill(7);
    std::fs::write(&vol, &image).unwrap();
    let mut inc = backup_row(&id(2), &id(99), image.len() as u64, Timestamp(1_740_916_800_000_000));
    inc.parent_id = Some(full.id.clone());
    let r = new.backup(OpContext::default(), &inc, Some(&full), None, source()).unwrap();
    assert_eq!(r.object_count, 1, "the current build found the one changed object against the 0.1.0 digests");
    let inc = done(inc, r);

    for (who, driver) in [("0.2.8", &new), ("0.1.0", &old)] {
        let target = work.path().join(format!("restored-{who}.raw"));
        std::fs::write(&target, vec![0xEE; image.len()]).unwrap();
        let sink = std::sync::Arc::new(VolumeFile::open_write(&target).unwrap());
        driver.restore(OpContext::default(), &[full.clone(), inc.clone()], sink, false).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), image, "the {who} build restores the mixed chain");
    }
}

/// A restore checks each object against the backup's sha256file (SHA-256 per block)
/// and, where there is none, against the metadata's MD5: two objects of the same
/// length swapped in the store are caught either way, and nothing is reported restored.
#[test]
fn swapped_objects_are_caught_by_the_sha256file_or_the_md5() {
    let work = tempfile::tempdir().unwrap();
    let store = work.path().join("store");
    std::fs::create_dir(&store).unwrap();
    let image: Vec<u8> = (0..4096).flat_map(|i| Sha256::digest(format!("o-{i}").as_bytes()).to_vec()).collect();
    let vol = work.path().join("vol.raw");
    std::fs::write(&vol, &image).unwrap();
    let driver = posix(&store, &[("backup_file_size", "65536"), ("backup_compression_algorithm", "none")]);
    let mut b = backup_row(
        "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
        "5c2e1d4a-0b7e-4c1f-9d3a-2f6b8e1a7c90",
        image.len() as u64,
        Timestamp(1_740_830_400_000_000),
    );
    let out = driver
        .backup(OpContext::default(), &b, None, None, std::sync::Arc::new(VolumeFile::open_read(&vol).unwrap()))
        .unwrap();
    assert_eq!(out.object_count, 2);
    b.container = Some(out.container.clone());
    b.service_metadata = Some(out.service_metadata.clone());
    let dir = store.join(&out.container);
    let object = |n: u32| dir.join(format!("{}-{n:05}", out.service_metadata));
    let (first, second) = (std::fs::read(object(1)).unwrap(), std::fs::read(object(2)).unwrap());
    std::fs::write(object(1), &second).unwrap();
    std::fs::write(object(2), &first).unwrap();
    let restore = || {
        let target = work.path().join("target.raw");
        std::fs::write(&target, vec![0u8; image.len()]).unwrap();
        driver
            .restore(
                OpContext::default(),
                std::slice::from_ref(&b),
                std::sync::Arc::new(VolumeFile::open_write(&target).unwrap()),
                false,
            )
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    let e = restore();
    assert!(e.contains("SHA-256") && e.contains("sha256file"), "{e}");
    std::fs::remove_file(dir.join(format!("{}_sha256file", out.service_metadata))).unwrap();
    let e = restore();
    assert!(e.contains("MD5"), "{e}");
}

/// With 4 KiB sha blocks a 64 MiB volume has a sha256file of ~1.2 MB: written in two
/// pieces (WIT 0.2.6 `objects.append`) and read in pieces (`objects.get-range`) by the
/// incremental (its parent's digests) and the restore (each object's), which still
/// catches two objects swapped past the first piece.
#[test]
fn a_sha256file_of_several_pieces_is_written_and_read_in_pieces() {
    const MIB: usize = 1 << 20;
    let work = tempfile::tempdir().unwrap();
    let store = work.path().join("store");
    std::fs::create_dir(&store).unwrap();
    let config = [("backup_sha_block_size_bytes", "4096"), ("backup_file_size", "1048576")];
    let driver = posix(&store, &config);
    let mut image = vec![0u8; 64 * MIB];
    for (i, block) in image.chunks_mut(4096).enumerate().filter(|(i, _)| i % 3 != 0) {
        block[..32].copy_from_slice(&Sha256::digest(format!("p-{i}").as_bytes()));
        block[4000] = i as u8;
    }
    let vol = work.path().join("vol.raw");
    std::fs::write(&vol, &image).unwrap();
    let source = || std::sync::Arc::new(VolumeFile::open_read(&vol).unwrap());
    let full = backup_row(&id(1), &id(99), image.len() as u64, Timestamp(1_740_830_400_000_000));
    let r = driver.backup(OpContext::default(), &full, None, None, source()).unwrap();
    let full = done(full, r);
    let dir = store.join(full.container.as_ref().unwrap());
    let prefix = full.service_metadata.clone().unwrap();
    let text = std::fs::read(dir.join(format!("{prefix}_sha256file"))).unwrap();
    assert!(text.len() > 1 << 20, "{} bytes: more than one piece", text.len());
    let file: serde_json::Value = serde_json::from_slice(&text).unwrap();
    assert_eq!(file["chunk_size"], 4096);
    let listed: Vec<&str> = file["sha256s"].as_array().unwrap().iter().map(|d| d.as_str().unwrap()).collect();
    let hex = |d: &[u8]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let expected: Vec<String> = image.chunks(4096).map(|b| hex(&Sha256::digest(b))).collect();
    assert_eq!(listed, expected, "every block's digest, in order, across the pieces");
    assert!(text.ends_with(b"\n}"), "the tail after the last piece");

    // An incremental reads its parent's list in pieces: one block changed far into it.
    image[60 * MIB + 123] ^= 0xFF;
    std::fs::write(&vol, &image).unwrap();
    let mut inc = backup_row(&id(2), &id(99), image.len() as u64, Timestamp(1_740_916_800_000_000));
    inc.parent_id = Some(full.id.clone());
    let r = driver.backup(OpContext::default(), &inc, Some(&full), None, source()).unwrap();
    assert_eq!(r.object_count, 1, "the one changed block, found against digests from the second piece");
    let inc = done(inc, r);
    let restore = |chain: &[Backup]| {
        let target = work.path().join("target.raw");
        std::fs::write(&target, vec![0xEE; image.len()]).unwrap();
        let sink = std::sync::Arc::new(VolumeFile::open_write(&target).unwrap());
        driver.restore(OpContext::default(), chain, sink, false).map(|_| std::fs::read(&target).unwrap())
    };
    assert!(restore(&[full.clone(), inc.clone()]).unwrap() == image, "the chain restores bit for bit");

    // Two data objects swapped well past the first piece: the reader's digests catch it.
    let object = |n: u32| dir.join(format!("{prefix}-{n:05}"));
    let (a, b) = (std::fs::read(object(61)).unwrap(), std::fs::read(object(62)).unwrap());
    assert_ne!(a, b);
    std::fs::write(object(61), &b).unwrap();
    std::fs::write(object(62), &a).unwrap();
    let e = restore(std::slice::from_ref(&full)).map(drop).unwrap_err().to_string();
    assert!(e.contains("SHA-256") && e.contains("sha256file"), "{e}");
}

/// The driver's memory does not grow with the sha256file: a 1 GiB volume in 4 KiB sha
/// blocks has one of 18.9 MB (whole, it was held in the driver), and a backend granted
/// 16 MiB of memory backs it up, incrementally too (the parent's 8 MB of raw digests
/// held until the host has them), and restores it.
#[test]
fn a_sha256file_larger_than_the_memory_grant_goes_through_in_pieces() {
    const GIB: u64 = 1 << 30;
    let work = tempfile::tempdir().unwrap();
    let store = work.path().join("store");
    std::fs::create_dir(&store).unwrap();
    let grants = Grants { memory_bytes: Some(16 << 20), ..Grants::store(store.clone()) };
    let config =
        [("backup_sha_block_size_bytes", "4096")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let driver = DriverComponent::load("posix", holdfast_plugin_artifacts::POSIX_BYTES, grants, config).unwrap();
    let vol = work.path().join("vol.raw");
    let f = std::fs::File::create(&vol).unwrap();
    f.set_len(GIB).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(b"the one block with data", GIB / 2).unwrap();
    let source = || std::sync::Arc::new(VolumeFile::open_read(&vol).unwrap());
    let full = backup_row(&id(1), &id(99), GIB, Timestamp(1_740_830_400_000_000));
    let r = driver.backup(OpContext::default(), &full, None, None, source()).unwrap();
    let full = done(full, r);
    let sha = store
        .join(full.container.as_ref().unwrap())
        .join(format!("{}_sha256file", full.service_metadata.as_ref().unwrap()));
    assert!(std::fs::metadata(&sha).unwrap().len() > 18 << 20);

    f.write_all_at(b"changed", GIB - 4096).unwrap();
    let mut inc = backup_row(&id(2), &id(99), GIB, Timestamp(1_740_916_800_000_000));
    inc.parent_id = Some(full.id.clone());
    let r = driver.backup(OpContext::default(), &inc, Some(&full), None, source()).unwrap();
    assert_eq!(r.object_count, 1);
    let inc = done(inc, r);

    let target = work.path().join("target.raw");
    std::fs::File::create(&target).unwrap().set_len(GIB).unwrap();
    let sink = std::sync::Arc::new(VolumeFile::open_write(&target).unwrap());
    driver.restore(OpContext::default(), &[full, inc], sink, false).unwrap();
    let restored = std::fs::File::open(&target).unwrap();
    let mut buf = vec![0u8; 4096];
    for (at, text) in [(GIB / 2, &b"the one block with data"[..]), (GIB - 4096, b"changed")] {
        restored.read_exact_at(&mut buf, at).unwrap();
        assert_eq!(&buf[..text.len()], text);
    }
}
