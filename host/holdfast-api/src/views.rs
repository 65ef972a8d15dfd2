//! Cinder's response views for backups, volumes and snapshots.

use holdfast_manager::RestoreView;
use holdfast_types::{Backup, Snapshot, Timestamp, Volume};
use std::collections::BTreeMap;

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

/// Cinder's detail view for the request's microversion; `metadata` is given from 3.43.
pub fn backup_detail(call: &Call<'_>, b: &Backup, metadata: Option<&BTreeMap<String, String>>) -> Value {
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
    if let Some(meta) = metadata {
        v["metadata"] = json!(meta);
    }
    // `backup:backup_project_attribute`: admins only.
    if call.roles.admin && call.version.at_least(3, 18) {
        v["os-backup-project-attr:project_id"] = json!(b.project_id);
    }
    if call.roles.admin && call.version.at_least(3, 56) {
        v["user_id"] = json!(b.user_id);
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

/// Cinder's volume detail view: admin-only attributes for admins, keys added by later
/// microversions from those on, host paths only for admins asking for extensions.
pub fn volume(call: &Call<'_>, v: &Volume, metadata: &BTreeMap<String, String>) -> Value {
    let mut out = json!({
        "id": v.id,
        "status": v.status.as_str(),
        "size": v.size,
        "availability_zone": call.config.availability_zone,
        "created_at": v.created_at.api(),
        "updated_at": time(v.updated_at),
        "attachments": [],
        "name": v.name,
        "description": v.description,
        "volume_type": null,
        "snapshot_id": null,
        "source_volid": null,
        "metadata": metadata,
        "links": links(call, "volumes", &v.id),
        "user_id": v.user_id,
        "bootable": "false",
        "encrypted": false,
        "replication_status": null,
        "consistencygroup_id": null,
        "multiattach": false,
    });
    if call.version.at_least(3, 13) {
        out["group_id"] = Value::Null;
    }
    if call.version.at_least(3, 48) {
        out["shared_targets"] = json!(false);
    }
    if call.version.at_least(3, 65) {
        out["consumes_quota"] = json!(true);
    }
    if call.roles.admin {
        out["os-vol-tenant-attr:tenant_id"] = json!(v.project_id);
        out["os-vol-host-attr:host"] = json!(call.config.host);
        out["os-vol-mig-status-attr:migstat"] = Value::Null;
        out["os-vol-mig-status-attr:name_id"] = Value::Null;
        out["migration_status"] = Value::Null;
    }
    if call.operator_view() {
        out["holdfast:path"] = json!(v.path);
        out["holdfast:size_bytes"] = json!(v.size_bytes);
        out["holdfast:managed_file"] = json!(v.managed_file);
    }
    out
}

/// Cinder's snapshot view (no links). Show and detail lists add the extended
/// attributes (`detail`); `copied` is the percent of a copy in progress.
pub fn snapshot(call: &Call<'_>, s: &Snapshot, detail: bool, copied: Option<u64>) -> Value {
    let mut v = json!({
        "id": s.id,
        "created_at": s.created_at.api(),
        "updated_at": time(s.updated_at),
        "name": s.name,
        "description": s.description,
        "volume_id": s.volume_id,
        "status": s.status.as_str(),
        "size": s.size,
        "metadata": {},
    });
    if call.version.at_least(3, 14) {
        v["group_snapshot_id"] = Value::Null;
    }
    if call.version.at_least(3, 41) {
        v["user_id"] = json!(s.user_id);
    }
    if call.version.at_least(3, 65) {
        v["consumes_quota"] = json!(true);
    }
    if detail {
        let progress = match s.status {
            holdfast_types::SnapshotStatus::Creating => format!("{}%", copied.unwrap_or(0)),
            _ => "100%".to_owned(),
        };
        v["os-extended-snapshot-attributes:project_id"] = json!(s.project_id);
        v["os-extended-snapshot-attributes:progress"] = json!(progress);
    }
    if call.extensions() {
        v["holdfast:size_bytes"] = json!(s.size_bytes);
    }
    v
}
