//! The hostile-driver suite at the plugin host: each attack fails, or is stopped,
//! with a reason that names the cause, quickly, and leaves the host's threads and
//! memory as they were. Runs as one test so the memory figures are this suite's own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use holdfast_driver::{BackupDriver, Grants, OpContext};
use holdfast_plugin_host::DriverComponent;
use holdfast_volume::VolumeFile;

mod common;
use common::{row, rss, stored_row, threads};

const MIB: u64 = 1 << 20;

fn load(bytes: &[u8], attack: &str) -> DriverComponent {
    let grants = Grants { memory_bytes: Some(64 * MIB), ..Grants::default() };
    DriverComponent::load("hostile", bytes, grants, vec![("attack".to_owned(), attack.to_owned())]).unwrap()
}

struct Suite {
    volume: std::path::PathBuf,
    lines: Vec<String>,
}

impl Suite {
    /// Run one attack: it must fail with `expect` in its reason within `within`.
    fn attack(&mut self, name: &str, expect: &str, within: Duration, run: impl FnOnce(&Self) -> Result<(), String>) {
        let (threads_before, t) = (threads(), Instant::now());
        let e = run(self).expect_err(name);
        let took = t.elapsed();
        assert!(e.contains(expect), "{name}: {e}");
        assert!(e.len() < 2048, "{name}: the reason is cut ({} bytes)", e.len());
        assert!(took < within, "{name} took {took:?}");
        // The pipeline's threads of a dropped stream exit on their own, promptly.
        let t = Instant::now();
        while threads() > threads_before && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(threads() <= threads_before, "{name} left {} threads", threads() - threads_before);
        let (now, peak) = rss();
        self.lines.push(format!(
            "{name:<16} {:>7.1} ms  RSS {:>6.1} MiB (peak {:>6.1})  {}",
            took.as_secs_f64() * 1e3,
            now as f64 / 1048576.0,
            peak as f64 / 1048576.0,
            e.chars().take(110).collect::<String>()
        ));
    }

    fn backup(&self, d: &DriverComponent) -> Result<(), String> {
        self.backup_of(d, &self.volume)
    }

    fn backup_of(&self, d: &DriverComponent, volume: &std::path::Path) -> Result<(), String> {
        let source = Arc::new(VolumeFile::open_read(volume).unwrap());
        let size = std::fs::metadata(volume).unwrap().len();
        d.backup(OpContext::default(), &row("b", size), None, None, source).map(drop).map_err(|e| e.to_string())
    }
}

#[test]
fn hostile_drivers_are_refused_stopped_and_contained() {
    // Times are of the attack's call (a fresh instance, its setup and the call), the
    // component already compiled.
    use holdfast_plugin_artifacts::{
        HOSTILE_GARBAGE_BYTES as GARBAGE, HOSTILE_HANDLES_BYTES as HANDLES, HOSTILE_HOG_BYTES as HOG,
    };
    let work = tempfile::tempdir().unwrap();
    let volume = work.path().join("v.raw");
    std::fs::write(&volume, (0..8 * MIB).map(|i| (i % 251) as u8).collect::<Vec<u8>>()).unwrap();
    let mut s = Suite { volume, lines: Vec::new() };
    let quick = Duration::from_secs(5);
    // Warm up what starts once per process (the epoch ticker, WASI's runtime), so
    // the thread counts below are the attacks' own.
    let _ = s.backup(&load(GARBAGE, "none"));
    let _ = s.backup(&load(HANDLES, "none"));

    // Garbage handed back.
    let d = load(GARBAGE, "location");
    s.attack("escaping location", "record-location: container \"../../escape\"", quick, |s| s.backup(&d));
    let d = load(GARBAGE, "huge-location");
    s.attack("8 MiB location", "record-location: container", quick, |s| s.backup(&d));
    let d = load(GARBAGE, "result");
    s.attack("escaping result", "backup returned container \"../../escape\"", quick, |s| s.backup(&d));
    let d = load(GARBAGE, "count");
    s.attack("4e9 objects", "object count 4294967295 is more than", quick, |s| s.backup(&d));
    let d = load(GARBAGE, "error");
    s.attack("8 MiB error", "bytes cut", quick, |s| s.backup(&d));
    let d = load(GARBAGE, "record");
    s.attack("8 MiB record", "export record of", quick, |_| {
        d.export_record(&stored_row("b", MIB)).map(drop).map_err(|e| e.to_string())
    });
    let d = load(GARBAGE, "record-json");
    s.attack("record not JSON", "is not a JSON object", quick, |_| {
        d.export_record(&stored_row("b", MIB)).map(drop).map_err(|e| e.to_string())
    });

    // Handles abused.
    let d = load(HANDLES, "streams");
    s.attack("1000 streams", "chunk streams are open already", quick, |s| s.backup(&d));
    let d = load(HANDLES, "sha-block");
    s.attack("1-byte sha block", "sha block size 1 is under the host's minimum", quick, |s| s.backup(&d));
    let d = load(HANDLES, "hoard");
    s.attack("hoarded chunks", "driver holds 6 chunks without dropping them (limit)", quick, |s| s.backup(&d));
    // 16 MiB chunks of an 80 MiB volume: held, their stored bytes pass the 64 MiB
    // grant with the driver's own memory at the fourth (without it, at the fifth),
    // before the count of handles is reached.
    let big = work.path().join("big.raw");
    std::fs::File::create(&big).unwrap().set_len(80 * MIB).unwrap();
    let d = load(HANDLES, "hoard-big");
    s.attack("hoarded big", "holds 4 chunks without dropping them", quick, |s| s.backup_of(&d, &big));
    let d = load(HANDLES, "write-stored-far");
    s.attack("write-stored far", "chunk.write-stored from 1099511627776", quick, |s| s.backup(&d));
    let d = load(HANDLES, "never-next");
    s.attack("unread stream", "left a stream unread", quick, |s| s.backup(&d));
    let d = load(HANDLES, "stale");
    s.attack("forged handle", "unknown handle index", quick, |s| s.backup(&d));
    let d = load(HANDLES, "write-length");
    let target = tempfile::NamedTempFile::new().unwrap();
    target.as_file().set_len(1 << 30).unwrap();
    s.attack("volume-sized write", "over the host's limit", quick, |_| {
        let sink = Arc::new(VolumeFile::open_write(target.path()).unwrap());
        d.restore(OpContext::default(), &[stored_row("b", 1 << 30)], sink, true).map(drop).map_err(|e| e.to_string())
    });

    // Traps outside backup.
    let d = load(holdfast_plugin_artifacts::HOSTILE_TRAP_MID_BACKUP_BYTES, "");
    s.attack("trap in restore", "trapped during restore", quick, |s| {
        let sink = Arc::new(VolumeFile::open_write(&s.volume).unwrap());
        d.restore(OpContext::default(), &[stored_row("b", 8 * MIB)], sink, false).map(drop).map_err(|e| e.to_string())
    });
    let grants = Grants::default();
    let trap_in_delete = vec![("trap_in".to_owned(), "delete".to_owned())];
    let d = DriverComponent::load(
        "hostile",
        holdfast_plugin_artifacts::HOSTILE_TRAP_MID_BACKUP_BYTES,
        grants,
        trap_in_delete,
    )
    .unwrap();
    s.attack("trap in delete", "trapped during delete", quick, |_| {
        d.delete(OpContext::default(), &stored_row("b", MIB)).map_err(|e| e.to_string())
    });

    // Memory without bound: trapped at the grant, the host's memory back after.
    let d = load(HOG, "");
    let (before, _) = rss();
    s.attack("allocate forever", "memory limit", quick, |s| s.backup(&d));
    let (after, peak) = rss();
    assert!(peak < 1 << 30, "peak RSS {peak}");
    assert!(after < before + 96 * MIB, "the hog's memory went back: {before} → {after}");

    // What a Rust guest cannot make: more memories and tables, built by appending core
    // instances to the hog (plugins/artifacts/build.rs). Refused as it is instantiated.
    use holdfast_plugin_artifacts::{
        HOSTILE_BIG_MEMORIES_BYTES, HOSTILE_BIG_TABLE_BYTES, HOSTILE_MANY_MEMORIES_BYTES, HOSTILE_MANY_TABLES_BYTES,
    };
    let setup = |d: &DriverComponent| d.setup().map(drop).map_err(|e| e.to_string());
    let d = load(HOSTILE_MANY_MEMORIES_BYTES, "");
    s.attack("9 memories", "memory count too high", quick, |_| setup(&d));
    let d = load(HOSTILE_BIG_MEMORIES_BYTES, "");
    s.attack("3 x 100 MiB memories", "memory limit", quick, |_| setup(&d));
    let d = load(HOSTILE_BIG_TABLE_BYTES, "");
    s.attack("4M-element table", "table limit", quick, |_| setup(&d));
    let d = load(HOSTILE_MANY_TABLES_BYTES, "");
    s.attack("21 tables", "table count too high", quick, |_| setup(&d));
    let (after, peak) = rss();
    assert!(peak < 1 << 30, "peak RSS {peak}");
    assert!(after < before + 96 * MIB, "nothing of them stays: {before} → {after}");

    println!("attack            time        host memory             reason");
    for l in &s.lines {
        println!("{l}");
    }
}
