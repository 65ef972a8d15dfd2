//! Every driver call has a deadline: a guest that spins without calling the host is
//! stopped at it, in every call, with a reason that says which limit it hit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use holdfast_driver::{BackupDriver, Grants, OpContext};
use holdfast_plugin_host::DriverComponent;
use holdfast_volume::VolumeFile;

mod common;

fn spin(spin_in_setup: bool) -> DriverComponent {
    hung(spin_in_setup, "spin")
}

/// The hostile `spin` driver, spinning or (`mode = sleep`) asleep in a WASI call.
fn hung(in_setup: bool, mode: &str) -> DriverComponent {
    let grants = Grants {
        control_timeout: Duration::from_millis(500),
        call_timeout: Duration::from_millis(700),
        ..Grants::default()
    };
    let mut config = vec![("mode".to_owned(), mode.to_owned())];
    if in_setup {
        config.push(("spin_in".to_owned(), "setup".to_owned()));
    }
    DriverComponent::load("spin", holdfast_plugin_artifacts::HOSTILE_SPIN_BYTES, grants, config).unwrap()
}

/// `call` fails naming `limit`, stopped within a second of the deadline.
fn stopped(call: &str, limit: &str, deadline: Duration, run: impl FnOnce() -> Result<(), String>) {
    let t = Instant::now();
    let e = run().expect_err(call);
    let took = t.elapsed();
    assert!(e.contains(limit), "{call}: {e}");
    assert!(took >= deadline && took < deadline + Duration::from_secs(1), "{call} stopped after {took:?}");
}

#[test]
fn spinning_calls_are_stopped_at_their_deadline() {
    let work = tempfile::tempdir().unwrap();
    let vol = work.path().join("v.raw");
    std::fs::write(&vol, vec![1u8; 1 << 20]).unwrap();
    let control = Duration::from_millis(500);
    // Compiled before the clock starts: the deadline is on the call, not the load.
    let in_setup = spin(true);
    stopped("setup", "setup ran past its 0.5 s deadline", control, || {
        in_setup.setup().map(drop).map_err(|e| e.to_string())
    });
    let d = spin(false);
    stopped("delete", "delete ran past its 0.5 s deadline", control, || {
        d.delete(OpContext::default(), &common::stored_row("b", 1 << 20)).map_err(|e| e.to_string())
    });
    stopped("export", "export-record ran past", control, || {
        d.export_record(&common::stored_row("b", 1 << 20)).map(drop).map_err(|e| e.to_string())
    });
    stopped("import", "import-record ran past", control, || {
        d.import_record(&common::stored_row("b", 1 << 20), "{}").map_err(|e| e.to_string())
    });
    stopped("backup", "no progress for 0.7 s", Duration::from_millis(700), || {
        let source = Arc::new(VolumeFile::open_read(&vol).unwrap());
        d.backup(OpContext::default(), &common::stored_row("b", 1 << 20), None, None, source)
            .map(drop)
            .map_err(|e| e.to_string())
    });
    stopped("restore", "no progress for 0.7 s", Duration::from_millis(700), || {
        let sink = Arc::new(VolumeFile::open_write(&vol).unwrap());
        d.restore(OpContext::default(), &[common::stored_row("b", 1 << 20)], sink, false)
            .map(drop)
            .map_err(|e| e.to_string())
    });
}

/// A guest asleep inside a WASI call is stopped at its deadline too (the call is
/// async: the deadline drops it), and so is one that ignores a cancellation.
#[test]
fn calls_blocked_in_wasi_are_stopped_too() {
    let work = tempfile::tempdir().unwrap();
    let vol = work.path().join("v.raw");
    std::fs::write(&vol, vec![1u8; 1 << 20]).unwrap();
    let control = Duration::from_millis(500);
    let in_setup = hung(true, "sleep");
    stopped("setup", "setup ran past its 0.5 s deadline", control, || {
        in_setup.setup().map(drop).map_err(|e| e.to_string())
    });
    let d = hung(false, "sleep");
    stopped("delete", "delete ran past its 0.5 s deadline", control, || {
        d.delete(OpContext::default(), &common::stored_row("b", 1 << 20)).map_err(|e| e.to_string())
    });
    stopped("backup", "no progress for 0.7 s", Duration::from_millis(700), || {
        let source = Arc::new(VolumeFile::open_read(&vol).unwrap());
        d.backup(OpContext::default(), &common::stored_row("b", 1 << 20), None, None, source)
            .map(drop)
            .map_err(|e| e.to_string())
    });
}
