//! What the plugin host's tests share.

#![allow(dead_code)] // each test file uses part of it

use holdfast_types::{Backup, BackupStatus, Timestamp};

/// A backup row of `size_bytes` about to be backed up (no location yet).
pub fn row(id: &str, size_bytes: u64) -> Backup {
    Backup {
        id: id.into(),
        project_id: "p".into(),
        user_id: "u".into(),
        volume_id: "v".into(),
        snapshot_id: None,
        status: BackupStatus::Creating,
        display_name: None,
        display_description: None,
        size: 1,
        size_bytes,
        object_count: 0,
        container: None,
        service: None,
        service_metadata: None,
        parent_id: None,
        num_dependent_backups: 0,
        availability_zone: None,
        host: None,
        fail_reason: None,
        restore_volume_id: None,
        data_timestamp: None,
        created_at: Timestamp(0),
        updated_at: None,
        deleted_at: None,
        deleted: false,
    }
}

/// A row with its objects' location recorded (what delete, restore and export get).
pub fn stored_row(id: &str, size_bytes: u64) -> Backup {
    Backup { container: Some("c".into()), service_metadata: Some(format!("p-{id}")), ..row(id, size_bytes) }
}

/// This process's resident memory and its peak so far, in bytes.
pub fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Threads of this process.
pub fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0)
}
