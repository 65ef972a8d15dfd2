//! Cinder's default policies (29.0.0, shared/docs/cinder-backup.md §1.10): which role
//! each endpoint needs. Scoping (a project sees only its own resources, admins reach
//! any by id) is the manager's, through [`holdfast_manager::RequestContext`].

use hyper::StatusCode;

use crate::auth::Roles;
use crate::error::ApiError;
use crate::router::Endpoint;

/// The least role an endpoint needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Version documents: no token at all (clients discover before they log in).
    Nothing,
    Reader,
    Member,
    Admin,
}

/// Cinder's rule name and what it needs. Actions are told apart by their body's key.
pub fn rule(endpoint: &Endpoint, body: &[u8]) -> (&'static str, Need) {
    use Endpoint::*;
    use Need::*;
    match endpoint {
        Versions { .. } => ("versions", Nothing),
        ListBackups { .. } => ("backup:get_all", Reader),
        ShowBackup(_) | BackupProgress(_) => ("backup:get", Reader),
        CreateBackup => ("backup:create", Member),
        UpdateBackup(_) => ("backup:update", Member),
        DeleteBackup(_) => ("backup:delete", Member),
        RestoreBackup(_) => ("backup:restore", Member),
        BackupAction(_) => match action_key(body).as_deref() {
            Some("os-reset_status") => ("volume_extension:backup_admin_actions:reset_status", Admin),
            Some("os-force_delete") => ("volume_extension:backup_admin_actions:force_delete", Admin),
            // Unknown actions get the handler's 400.
            _ => ("backup:get", Reader),
        },
        ExportRecord(_) => ("backup:export-import", Admin),
        ImportRecord => ("backup:backup-import", Admin),
        ListVolumes { .. } => ("volume:get_all", Reader),
        ShowVolume(_) => ("volume:get", Reader),
        CreateVolume => ("volume:create", Member),
        UpdateVolume(_) => ("volume:update", Member),
        DeleteVolume(_) => ("volume:delete", Member),
        VolumeAction(_) => match action_key(body).as_deref() {
            Some("os-extend") => ("volume:extend", Member),
            Some("os-attach" | "os-detach") => ("volume_extension:volume_actions:attach", Member),
            _ => ("volume:get", Reader),
        },
        ManageVolume => ("volume_extension:volume_manage", Admin),
        VolumeMetadata(_, None) => ("volume:get_volume_metadata", Reader),
        VolumeMetadata(_, Some(_)) => ("volume:update_volume_metadata", Member),
        ListSnapshots { .. } => ("volume:get_all_snapshots", Reader),
        ShowSnapshot(_) => ("volume:get_snapshot", Reader),
        CreateSnapshot => ("volume:create_snapshot", Member),
        DeleteSnapshot(_) => ("volume:delete_snapshot", Member),
        ListEvents | StreamEvents => ("holdfast:events", Reader),
        ListServices => ("volume_extension:services:index", Admin),
        Limits => ("limits_extension:used_limits", Reader),
        ListPlugins => ("holdfast:plugins:index", Admin),
        ReloadPlugins => ("holdfast:plugins:reload", Admin),
        // Operators' endpoints: no tenant data (counts, up/down, the API's shape).
        Health => ("holdfast:health", Nothing),
        Metrics => ("holdfast:metrics", Nothing),
        OpenApi => ("holdfast:openapi", Nothing),
    }
}

fn action_key(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let o = v.as_object().filter(|o| o.len() == 1)?;
    o.keys().next().cloned()
}

/// 403 in Cinder's words when `roles` fall short of what `endpoint` needs.
pub fn authorize(endpoint: &Endpoint, body: &[u8], roles: Roles) -> Result<(), ApiError> {
    let (name, need) = rule(endpoint, body);
    let ok = match need {
        Need::Nothing => true,
        Need::Reader => roles.reader,
        Need::Member => roles.member,
        Need::Admin => roles.admin,
    };
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::FORBIDDEN, format!("Policy doesn't allow {name} to be performed.")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const READER: Roles = Roles { admin: false, member: false, reader: true };
    const MEMBER: Roles = Roles { admin: false, member: true, reader: true };

    /// cinder-tempest-plugin's rbac matrix for backups (shared/docs/cinder-backup.md §10.3).
    #[test]
    fn cinder_backup_rbac_matrix() {
        let id = || "b".to_owned();
        let cases: Vec<(Endpoint, &[u8], [bool; 3])> = vec![
            (Endpoint::ListBackups { detail: true }, b"", [true, true, true]),
            (Endpoint::ShowBackup(id()), b"", [true, true, true]),
            (Endpoint::CreateBackup, b"", [false, true, true]),
            (Endpoint::DeleteBackup(id()), b"", [false, true, true]),
            (Endpoint::RestoreBackup(id()), b"", [false, true, true]),
            (Endpoint::UpdateBackup(id()), b"", [false, true, true]),
            (Endpoint::ExportRecord(id()), b"", [false, false, true]),
            (Endpoint::ImportRecord, b"", [false, false, true]),
            (Endpoint::BackupAction(id()), br#"{"os-reset_status": {"status": "error"}}"#, [false, false, true]),
            (Endpoint::BackupAction(id()), br#"{"os-force_delete": null}"#, [false, false, true]),
            (Endpoint::ManageVolume, b"", [false, false, true]),
            (Endpoint::CreateVolume, b"", [false, true, true]),
            (Endpoint::ListServices, b"", [false, false, true]),
        ];
        for (ep, body, want) in cases {
            for (roles, allowed) in [READER, MEMBER, Roles::ADMIN].into_iter().zip(want) {
                let got = authorize(&ep, body, roles);
                assert_eq!(got.is_ok(), allowed, "{ep:?} {roles:?}");
                if let Err(e) = got {
                    assert!(e.message.starts_with("Policy doesn't allow"), "{}", e.message);
                }
            }
        }
        assert!(authorize(&Endpoint::Versions { root: true }, b"", Roles::default()).is_ok());
        assert!(authorize(&Endpoint::ListBackups { detail: false }, b"", Roles::default()).is_err());
    }
}
