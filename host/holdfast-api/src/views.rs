//! Cinder's response views for backups, volumes and snapshots.

use holdfast_manager::RestoreView;
use holdfast_types::{Backup, Snapshot, Timestamp, Volume};
use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use crate::Call;

fn links(call: &Call<'_>, collection: &str, id: &str) -> Value {
    serde_json::to_value(link_pair(call, collection, id)).unwrap_or(Value::Null)
}

fn time(t: Option<Timestamp>) -> Value {
    t.map(|t| Value::String(t.api())).unwrap_or(Value::Null)
}

/// A `self` + `bookmark` pair, serialised without building a JSON tree.
#[derive(Serialize)]
pub struct Link {
    rel: &'static str,
    href: String,
}

fn link_pair(call: &Call<'_>, collection: &str, id: &str) -> [Link; 2] {
    [
        Link { rel: "self", href: format!("{}/{collection}/{id}", call.api_base()) },
        Link { rel: "bookmark", href: format!("{}/{collection}/{id}", call.bookmark_base()) },
    ]
}

/// Exactly `id`, `name`, `links` (tempest forbids more).
#[derive(Serialize)]
pub struct BackupSummary<'a> {
    id: &'a str,
    name: Option<&'a str>,
    links: [Link; 2],
}

pub fn backup_summary_view<'a>(call: &Call<'_>, b: &'a Backup) -> BackupSummary<'a> {
    BackupSummary { id: &b.id, name: b.display_name.as_deref(), links: link_pair(call, "backups", &b.id) }
}

pub fn backup_summary(call: &Call<'_>, b: &Backup) -> Value {
    serde_json::to_value(backup_summary_view(call, b)).unwrap_or(Value::Null)
}

/// Cinder's detail view, keys in Cinder's order. A struct, not a `json!` tree: a
/// 1000-backup page is serialised straight into the reply.
#[derive(Serialize)]
pub struct BackupDetail<'a> {
    id: &'a str,
    status: &'static str,
    size: i64,
    object_count: i64,
    availability_zone: Option<&'a str>,
    container: Option<&'a str>,
    created_at: String,
    updated_at: Option<String>,
    name: Option<&'a str>,
    description: Option<&'a str>,
    fail_reason: Option<&'a str>,
    volume_id: &'a str,
    links: [Link; 2],
    is_incremental: bool,
    has_dependent_backups: bool,
    snapshot_id: Option<&'a str>,
    data_timestamp: Option<String>,
    /// From 3.43.
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a BTreeMap<String, String>>,
    /// `backup:backup_project_attribute` (admins), from 3.18.
    #[serde(rename = "os-backup-project-attr:project_id", skip_serializing_if = "Option::is_none")]
    project_id: Option<&'a str>,
    /// Admins, from 3.56.
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    /// Stored but not in Cinder's view (tempest forbids extra keys): only for clients
    /// that ask, such as Holdfast's own CLI.
    #[serde(rename = "holdfast:parent_id", skip_serializing_if = "Option::is_none")]
    parent_id: Option<Option<&'a str>>,
    #[serde(rename = "holdfast:num_dependent_backups", skip_serializing_if = "Option::is_none")]
    num_dependent_backups: Option<i64>,
}

/// Cinder's detail view for the request's microversion; `metadata` is given from 3.43.
pub fn backup_detail_view<'a>(
    call: &Call<'_>,
    b: &'a Backup,
    metadata: Option<&'a BTreeMap<String, String>>,
) -> BackupDetail<'a> {
    let admin = call.roles.admin;
    let ext = call.extensions();
    BackupDetail {
        id: &b.id,
        status: b.status.as_str(),
        size: b.size,
        object_count: b.object_count,
        availability_zone: b.availability_zone.as_deref(),
        container: b.container.as_deref(),
        created_at: b.created_at.api(),
        updated_at: b.updated_at.map(Timestamp::api),
        name: b.display_name.as_deref(),
        description: b.display_description.as_deref(),
        fail_reason: b.fail_reason.as_deref(),
        volume_id: &b.volume_id,
        links: link_pair(call, "backups", &b.id),
        is_incremental: b.is_incremental(),
        has_dependent_backups: b.num_dependent_backups > 0,
        snapshot_id: b.snapshot_id.as_deref(),
        data_timestamp: b.data_timestamp.map(Timestamp::api),
        metadata,
        project_id: (admin && call.version.at_least(3, 18)).then_some(b.project_id.as_str()),
        user_id: (admin && call.version.at_least(3, 56)).then_some(b.user_id.as_str()),
        parent_id: ext.then_some(b.parent_id.as_deref()),
        num_dependent_backups: ext.then_some(b.num_dependent_backups),
    }
}

pub fn backup_detail(call: &Call<'_>, b: &Backup, metadata: Option<&BTreeMap<String, String>>) -> Value {
    serde_json::to_value(backup_detail_view(call, b, metadata)).unwrap_or(Value::Null)
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
        out["holdfast:path"] = json!(v.location.to_string());
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
