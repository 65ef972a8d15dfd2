//! Method + path → [`Endpoint`]. Every path exists with and without the project id
//! (`/v3/{p}/backups` and `/v3/backups`), as in Cinder.

use hyper::{Method, StatusCode};

use crate::error::ApiError;
use crate::{Api, Call, HttpResponse, backups, events, operator, plugins, services, snapshots, versions, volumes};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /` (300) or `GET /v3`, `/v3/`, `/v3/{p}` (200).
    Versions {
        root: bool,
    },
    ListBackups {
        detail: bool,
    },
    CreateBackup,
    ShowBackup(String),
    /// `PUT /backups/{id}` (≥ 3.9): name, description, metadata (≥ 3.43).
    UpdateBackup(String),
    DeleteBackup(String),
    RestoreBackup(String),
    BackupAction(String),
    /// Holdfast extension: live progress of the backup's running operation.
    BackupProgress(String),
    ExportRecord(String),
    ImportRecord,
    ListVolumes {
        detail: bool,
    },
    CreateVolume,
    ShowVolume(String),
    /// `PUT /volumes/{id}`: name, description, metadata.
    UpdateVolume(String),
    DeleteVolume(String),
    VolumeAction(String),
    /// Cinder's "manage existing" (`POST /os-volume-manage`).
    ManageVolume,
    /// `GET` (None), `POST` (merge: Some(false)), `PUT` (replace: Some(true)).
    VolumeMetadata(String, Option<bool>),
    ListSnapshots {
        detail: bool,
    },
    CreateSnapshot,
    ShowSnapshot(String),
    DeleteSnapshot(String),
    /// Holdfast extension: recorded notifications (`GET /events`).
    ListEvents,
    /// Holdfast extension: live notifications as server-sent events.
    StreamEvents,
    ListServices,
    Limits,
    /// Holdfast extension (admin): each backend's driver, version, digest, state.
    ListPlugins,
    /// Holdfast extension (admin): reload the config file (`{"force": bool}`).
    ReloadPlugins,
    /// `GET /healthz`: the database and the backup service (no token).
    Health,
    /// `GET /metrics`: Prometheus text (no token).
    Metrics,
    /// `GET /openapi.json`: this API's OpenAPI document (no token).
    OpenApi,
}

impl Endpoint {
    /// The variant's name, without ids: a label for metrics and logs.
    pub fn name(&self) -> &'static str {
        use Endpoint::*;
        match self {
            Versions { .. } => "versions",
            ListBackups { detail: false } => "list_backups",
            ListBackups { detail: true } => "list_backups_detail",
            CreateBackup => "create_backup",
            ShowBackup(_) => "show_backup",
            UpdateBackup(_) => "update_backup",
            DeleteBackup(_) => "delete_backup",
            RestoreBackup(_) => "restore_backup",
            BackupAction(_) => "backup_action",
            BackupProgress(_) => "backup_progress",
            ExportRecord(_) => "export_record",
            ImportRecord => "import_record",
            ListVolumes { detail: false } => "list_volumes",
            ListVolumes { detail: true } => "list_volumes_detail",
            CreateVolume => "create_volume",
            ShowVolume(_) => "show_volume",
            UpdateVolume(_) => "update_volume",
            DeleteVolume(_) => "delete_volume",
            VolumeAction(_) => "volume_action",
            ManageVolume => "manage_volume",
            VolumeMetadata(..) => "volume_metadata",
            ListSnapshots { detail: false } => "list_snapshots",
            ListSnapshots { detail: true } => "list_snapshots_detail",
            CreateSnapshot => "create_snapshot",
            ShowSnapshot(_) => "show_snapshot",
            DeleteSnapshot(_) => "delete_snapshot",
            ListEvents => "list_events",
            StreamEvents => "stream_events",
            ListServices => "list_services",
            Limits => "limits",
            ListPlugins => "list_plugins",
            ReloadPlugins => "reload_plugins",
            Health => "health",
            Metrics => "metrics",
            OpenApi => "openapi",
        }
    }
}

#[derive(Debug)]
pub struct Route {
    pub project: Option<String>,
    pub endpoint: Endpoint,
}

/// Cinder's default `project_id_regex`: hex digits and dashes.
pub fn is_project_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 255 && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

fn not_found() -> ApiError {
    ApiError::not_found("The resource could not be found.")
}

pub fn route(method: &Method, path: &str) -> Result<Route, ApiError> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    use Endpoint::*;
    let get = method == Method::GET;
    let (project, rest): (Option<String>, &[&str]) = match segs.as_slice() {
        [] if get => return Ok(Route { project: None, endpoint: Versions { root: true } }),
        ["healthz"] if get => return Ok(Route { project: None, endpoint: Health }),
        ["metrics"] if get => return Ok(Route { project: None, endpoint: Metrics }),
        ["openapi.json"] if get => return Ok(Route { project: None, endpoint: OpenApi }),
        ["v3"] if get => return Ok(Route { project: None, endpoint: Versions { root: false } }),
        ["v3", p] if get && is_project_id(p) => {
            return Ok(Route { project: Some((*p).to_owned()), endpoint: Versions { root: false } });
        }
        ["v3", p, rest @ ..] if is_project_id(p) => (Some((*p).to_owned()), rest),
        ["v3", rest @ ..] => (None, rest),
        _ => return Err(not_found()),
    };
    let id = |s: &str| s.to_owned();
    let endpoint = match (method.clone(), rest) {
        (Method::GET, ["backups"]) => ListBackups { detail: false },
        (Method::GET, ["backups", "detail"]) => ListBackups { detail: true },
        (Method::POST, ["backups"]) => CreateBackup,
        (Method::POST, ["backups", "import_record"]) => ImportRecord,
        (Method::GET, ["backups", b, "export_record"]) => ExportRecord(id(b)),
        (Method::GET, ["backups", b]) => ShowBackup(id(b)),
        (Method::PUT, ["backups", b]) => UpdateBackup(id(b)),
        (Method::DELETE, ["backups", b]) => DeleteBackup(id(b)),
        (Method::POST, ["backups", b, "restore"]) => RestoreBackup(id(b)),
        (Method::POST, ["backups", b, "action"]) => BackupAction(id(b)),
        (Method::GET, ["backups", b, "progress"]) => BackupProgress(id(b)),
        (Method::GET, ["volumes"]) => ListVolumes { detail: false },
        (Method::GET, ["volumes", "detail"]) => ListVolumes { detail: true },
        (Method::POST, ["volumes"]) => CreateVolume,
        (Method::GET, ["volumes", v]) => ShowVolume(id(v)),
        (Method::PUT, ["volumes", v]) => UpdateVolume(id(v)),
        (Method::DELETE, ["volumes", v]) => DeleteVolume(id(v)),
        (Method::POST, ["volumes", v, "action"]) => VolumeAction(id(v)),
        (Method::POST, ["os-volume-manage"]) => ManageVolume,
        (Method::GET, ["volumes", v, "metadata"]) => VolumeMetadata(id(v), None),
        (Method::POST, ["volumes", v, "metadata"]) => VolumeMetadata(id(v), Some(false)),
        (Method::PUT, ["volumes", v, "metadata"]) => VolumeMetadata(id(v), Some(true)),
        (Method::GET, ["snapshots"]) => ListSnapshots { detail: false },
        (Method::GET, ["snapshots", "detail"]) => ListSnapshots { detail: true },
        (Method::POST, ["snapshots"]) => CreateSnapshot,
        (Method::GET, ["snapshots", s]) => ShowSnapshot(id(s)),
        (Method::DELETE, ["snapshots", s]) => DeleteSnapshot(id(s)),
        (Method::GET, ["events"]) => ListEvents,
        (Method::GET, ["events", "stream"]) => StreamEvents,
        (Method::GET, ["os-services"]) => ListServices,
        (Method::GET, ["limits"]) => Limits,
        (Method::GET, ["holdfast-plugins"]) => ListPlugins,
        (Method::POST, ["holdfast-plugins", "reload"]) => ReloadPlugins,
        (
            _,
            ["backups", ..]
            | ["volumes", ..]
            | ["snapshots", ..]
            | ["events", ..]
            | ["os-services"]
            | ["os-volume-manage"],
        ) => {
            return Err(ApiError::new(StatusCode::METHOD_NOT_ALLOWED, format!("{method} is not allowed on {path}")));
        }
        _ => return Err(not_found()),
    };
    Ok(Route { project, endpoint })
}

pub async fn handle(api: &Api, endpoint: Endpoint, call: &Call<'_>) -> Result<HttpResponse, ApiError> {
    let m = &api.manager;
    match endpoint {
        Endpoint::Versions { root } => Ok(versions::document(call, root)),
        Endpoint::ListBackups { detail } => backups::list(m, call, detail).await,
        Endpoint::CreateBackup => backups::create(m, call).await,
        Endpoint::ShowBackup(id) => backups::show(m, call, &id).await,
        Endpoint::UpdateBackup(id) => backups::update(m, call, &id).await,
        Endpoint::DeleteBackup(id) => backups::delete(m, call, &id).await,
        Endpoint::RestoreBackup(id) => backups::restore(m, call, &id).await,
        Endpoint::BackupAction(id) => backups::action(m, call, &id).await,
        Endpoint::BackupProgress(id) => backups::progress(m, call, &id).await,
        Endpoint::ExportRecord(id) => backups::export_record(m, call, &id).await,
        Endpoint::ImportRecord => backups::import_record(m, call).await,
        Endpoint::ListVolumes { detail } => volumes::list(m, call, detail).await,
        Endpoint::CreateVolume => volumes::create(m, call).await,
        Endpoint::ShowVolume(id) => volumes::show(m, call, &id).await,
        Endpoint::UpdateVolume(id) => volumes::update(m, call, &id).await,
        Endpoint::DeleteVolume(id) => volumes::delete(m, call, &id).await,
        Endpoint::ManageVolume => volumes::manage(m, call).await,
        Endpoint::VolumeAction(id) => volumes::action(m, call, &id).await,
        Endpoint::VolumeMetadata(id, write) => volumes::metadata(m, call, &id, write).await,
        Endpoint::ListSnapshots { detail } => snapshots::list(m, call, detail).await,
        Endpoint::CreateSnapshot => snapshots::create(m, call).await,
        Endpoint::ShowSnapshot(id) => snapshots::show(m, call, &id).await,
        Endpoint::DeleteSnapshot(id) => snapshots::delete(m, call, &id).await,
        Endpoint::ListEvents => events::list(m, call).await,
        Endpoint::StreamEvents => events::stream(m, call, api.closing()).await,
        Endpoint::ListServices => services::list(m, call).await,
        Endpoint::Limits => services::limits(m, call).await,
        Endpoint::ListPlugins => plugins::list(m).await,
        Endpoint::ReloadPlugins => plugins::reload(m, call).await,
        Endpoint::Health => operator::health(m).await,
        Endpoint::Metrics => Ok(operator::metrics(api)),
        Endpoint::OpenApi => Ok(operator::openapi()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(method: Method, path: &str) -> Endpoint {
        route(&method, path).unwrap().endpoint
    }

    #[test]
    fn routes_with_and_without_project() {
        assert_eq!(ep(Method::GET, "/v3/0123abcd/backups/detail"), Endpoint::ListBackups { detail: true });
        assert_eq!(ep(Method::GET, "/v3/backups/detail"), Endpoint::ListBackups { detail: true });
        assert_eq!(ep(Method::POST, "/v3/0123abcd/backups/x/restore"), Endpoint::RestoreBackup("x".into()));
        assert_eq!(ep(Method::DELETE, "/v3/0123abcd/snapshots/s"), Endpoint::DeleteSnapshot("s".into()));
        assert_eq!(ep(Method::GET, "/v3/snapshots/detail"), Endpoint::ListSnapshots { detail: true });
        assert_eq!(ep(Method::GET, "/"), Endpoint::Versions { root: true });
        assert_eq!(ep(Method::GET, "/v3/"), Endpoint::Versions { root: false });
        assert_eq!(route(&Method::GET, "/v3/demo/backups").unwrap_err().status, StatusCode::NOT_FOUND);
        assert_eq!(route(&Method::PATCH, "/v3/backups").unwrap_err().status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(route(&Method::GET, "/nothing").unwrap_err().status, StatusCode::NOT_FOUND);
    }
}
