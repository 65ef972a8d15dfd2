//! Cinder's response views for backups, volumes and snapshots.

use holdfast_manager::RestoreView;
use holdfast_types::{Backup, Snapshot, Timestamp, Volume};
use serde_json::{Value, json};

use crate::Call;

fn links(call: &Call<'_>, collection: &str, id: &str) -> Value {
    json!([
        {"rel": "self", "href": format!("{}/{collection}/{id}", call.api_base())},
        {"rel": "bookmark", "href": format!("{}/{collection}/{id}", call.bookmark_base())},
    ])
}

fn time(t: Option<Timestamp>) -> Value {
    t.map(|t| Value::String(t.api())).unwrap_or(Value::Null)
}

/// Exactly `id`, `name`, `links` (tempest forbids more).
pub fn backup_summary(call: &Call<'_>, b: &Backup) -> Value {
    json!({"id": b.id, "name": b.display_name, "links": links(call, "backups", &b.id)})
}

pub fn backup_detail(call: &Call<'_>, b: &Backup) -> Value {
    let mut v = json!({
        "id": b.id,
        "status": b.status.as_str(),
        "size": b.size,
        "object_count": b.object_count,
        "availability_zone": b.availability_zone,
        "container": b.container,
        "created_at": b.created_at.api(),
        "updated_at": time(b.updated_at),
        "name": b.display_name,
        "description": b.display_description,
        "fail_reason": b.fail_reason,
        "volume_id": b.volume_id,
        "links": links(call, "backups", &b.id),
        "is_incremental": b.is_incremental(),
        "has_dependent_backups": b.num_dependent_backups > 0,
        "snapshot_id": b.snapshot_id,
        "data_timestamp": time(b.data_timestamp),
    });
    if call.version.at_least(3, 43) {
        v["metadata"] = json!({});
    }
    // Stored but not in Cinder's view (tempest forbids extra keys): only for clients
    // that ask, such as Holdfast's own CLI.
    if call.extensions() {
        v["holdfast:parent_id"] = json!(b.parent_id);
        v["holdfast:num_dependent_backups"] = json!(b.num_dependent_backups);
    }
    v
}

pub fn restore(r: &RestoreView) -> Value {
    json!({"restore": {"backup_id": r.backup_id, "volume_id": r.volume_id, "volume_name": r.volume_name}})
}

pub fn volume(call: &Call<'_>, v: &Volume, metadata: &std::collections::BTreeMap<String, String>) -> Value {
    json!({
        "id": v.id,
        "name": v.name,
        "description": v.description,
        "status": v.status.as_str(),
        "size": v.size,
        "availability_zone": "nova",
        "created_at": v.created_at.api(),
        "updated_at": time(v.updated_at),
        "bootable": "false",
        "encrypted": false,
        "multiattach": false,
        "attachments": [],
        "volume_type": null,
        "snapshot_id": null,
        "source_volid": null,
        "consistencygroup_id": null,
        "replication_status": null,
        "migration_status": null,
        "metadata": metadata,
        "user_id": v.user_id,
        "os-vol-tenant-attr:tenant_id": v.project_id,
        "links": links(call, "volumes", &v.id),
        "holdfast:path": v.path,
        "holdfast:size_bytes": v.size_bytes,
        "holdfast:managed_file": v.managed_file,
    })
}

/// Cinder's snapshot view; the summary omits the extended attributes. `copied` is the
/// percent of a copy in progress (Cinder's `progress` attribute).
pub fn snapshot(call: &Call<'_>, s: &Snapshot, detail: bool, copied: Option<u64>) -> Value {
    let mut v = json!({
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "volume_id": s.volume_id,
        "status": s.status.as_str(),
        "size": s.size,
        "created_at": s.created_at.api(),
        "updated_at": time(s.updated_at),
        "metadata": {},
        "links": links(call, "snapshots", &s.id),
    });
    if detail {
        let progress = match s.status {
            holdfast_types::SnapshotStatus::Creating => format!("{}%", copied.unwrap_or(0)),
            _ => "100%".to_owned(),
        };
        v["os-extended-snapshot-attributes:project_id"] = json!(s.project_id);
        v["os-extended-snapshot-attributes:progress"] = json!(progress);
        v["user_id"] = json!(s.user_id);
        v["holdfast:size_bytes"] = json!(s.size_bytes);
    }
    v
}
