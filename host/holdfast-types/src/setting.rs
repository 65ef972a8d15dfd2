//! Driver settings the host sets itself, named once for the host and the SDK.

/// Settings under this prefix are the host's to set; an operator's may not use it.
pub const HOST_SETTING_PREFIX: &str = "holdfast.";

/// Added to a driver's settings for the operations of a backend granted
/// `caller_token` that have a Keystone caller: the caller's project id (Cinder's
/// per_user Swift account is `backup_swift_url` + it). Absent without a caller (a
/// backend's health check, work resumed after a restart).
pub const CALLER_PROJECT_SETTING: &str = "holdfast.caller_project_id";
