//! The manager's state machine against an in-process driver ([`fake::FakeDriver`]):
//! no component is compiled or loaded, so these run in milliseconds.

mod backends;
mod fake;
mod lifecycle;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::{Backend, ManagerConfig, RequestContext};

/// A manager in `dir` (volumes may be adopted from `dir/in`): `slots` backups and
/// restores move data at once, a failed setup is retried every `retry`.
fn config(dir: &Path, slots: usize, retry: Duration) -> ManagerConfig {
    std::fs::create_dir_all(dir.join("in")).unwrap();
    ManagerConfig {
        data_dir: dir.join("data"),
        manage_roots: vec![dir.join("in")],
        availability_zone: "nova".into(),
        host: "test".into(),
        workers: 2,
        periodic_interval: retry,
        max_operations: slots,
        quotas: Default::default(),
        event_retention: None,
        rbd: Default::default(),
    }
}

fn backend(name: &str, zone: &str, driver: &Arc<fake::FakeDriver>) -> Backend {
    Backend { name: name.into(), availability_zone: zone.into(), driver: driver.clone(), load_time: Default::default() }
}

/// An admin of project p1.
fn admin() -> RequestContext {
    RequestContext { project_id: "p1".into(), user_id: "u1".into(), is_admin: true, caller: None }
}
