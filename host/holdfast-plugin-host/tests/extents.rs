//! WIT 0.2.0 `source.extents`, `source.changed-extents` and reads of just some
//! extents, through a real component and a sparse file.

use std::io::{Seek, SeekFrom, Write};
use std::sync::Arc;

use holdfast_driver::{BackupDriver, Grants, OpContext};
use holdfast_plugin_host::DriverComponent;
use holdfast_volume::VolumeFile;

mod common;

fn parse(list: &str) -> Vec<(u64, u64)> {
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(|e| {
            let (o, l) = e.split_once('+').unwrap();
            (o.parse().unwrap(), l.parse().unwrap())
        })
        .collect()
}

#[test]
fn a_driver_lists_extents_and_reads_just_those() {
    let work = tempfile::tempdir().unwrap();
    let vol = work.path().join("sparse.raw");
    let mut f = std::fs::File::create(&vol).unwrap();
    f.set_len(8 << 20).unwrap();
    let data = [(1u64 << 20, 100_000usize), (5 << 20, 4096)];
    for (offset, len) in data {
        f.seek(SeekFrom::Start(offset)).unwrap();
        f.write_all(&vec![0xA5; len]).unwrap();
    }
    f.sync_all().unwrap();

    let d = DriverComponent::load(
        "probe",
        holdfast_plugin_artifacts::HOSTILE_EXTENT_PROBE_BYTES,
        Grants::default(),
        vec![],
    )
    .unwrap();
    let source = Arc::new(VolumeFile::open_read(&vol).unwrap());
    let report =
        d.backup(OpContext::default(), &common::row("b", 8 << 20), None, None, source).unwrap_err().to_string();
    let field = |name: &str| {
        report.split(' ').find_map(|w| w.strip_prefix(&format!("{name}="))).unwrap_or_else(|| panic!("{report}"))
    };
    // A file's extents are its data, at the filesystem's granularity: both writes,
    // and nowhere near the whole 8 MiB.
    let extents = parse(field("extents"));
    for (offset, len) in data {
        assert!(extents.iter().any(|&(o, l)| o <= offset && offset + len as u64 <= o + l), "{report}");
    }
    assert!(extents.iter().map(|e| e.1).sum::<u64>() < 1 << 20, "{report}");
    // Files cannot say what changed since a snapshot.
    assert_eq!(field("changed"), "unknown", "{report}");
    // The chunks read are exactly the extents, widened to 64 KiB sha blocks.
    let chunks = parse(field("chunks"));
    let widened: Vec<(u64, u64)> = holdfast_types::extent::normalize(
        &extents.iter().map(|&(offset, len)| holdfast_types::Extent { offset, len }).collect::<Vec<_>>(),
        65_536,
        8 << 20,
    )
    .iter()
    .map(|e| (e.offset, e.len))
    .collect();
    assert_eq!(chunks, widened, "{report}");
    assert!(field("bad-chunk-size").contains("Invalid"), "a typed volume error: {report}");
}
