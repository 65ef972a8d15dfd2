//! Test driver: its `setup` sends one `GET http://<authority>/probe` through
//! `wasi:http` and fails with what happened (`status=200`, or `refused: …`), so a test
//! can show that the host lets a request out only to the backend's granted endpoints.

use holdfast_driver_sdk::{BackupInfo, BackupOutcome, Driver, DriverError, DriverInfo, Setting, Source};

pub struct NetProbe;

#[cfg(target_arch = "wasm32")]
fn probe(authority: &str) -> String {
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{Fields, OutgoingRequest, Scheme};
    let req = OutgoingRequest::new(Fields::new());
    if req.set_scheme(Some(&Scheme::Http)).is_err()
        || req.set_authority(Some(authority)).is_err()
        || req.set_path_with_query(Some("/probe")).is_err()
    {
        return "refused: bad request".into();
    }
    let fut = match outgoing_handler::handle(req, None) {
        Ok(f) => f,
        Err(e) => return format!("refused: {e:?}"),
    };
    let answer = loop {
        if let Some(a) = fut.get() {
            break a;
        }
        fut.subscribe().block();
    };
    match answer {
        Ok(Ok(resp)) => format!("status={}", resp.status()),
        Ok(Err(e)) => format!("refused: {e:?}"),
        Err(()) => "refused: no response".into(),
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn probe(_authority: &str) -> String {
    "refused: only the wasm build sends requests".into()
}

impl Driver for NetProbe {
    fn setup(config: Vec<Setting>) -> Result<DriverInfo, DriverError> {
        let authority = config.iter().find(|s| s.key == "authority").map(|s| s.value.as_str()).unwrap_or("");
        Err(DriverError::Other(probe(authority)))
    }

    fn backup(
        _info: BackupInfo,
        _parent: Option<BackupInfo>,
        _meta: Option<String>,
        _source: &Source,
    ) -> Result<BackupOutcome, DriverError> {
        Err(DriverError::Other("not a backup driver".into()))
    }

    holdfast_hostile_common::inert!(restore, delete, export_record, import_record);
}

#[cfg(target_arch = "wasm32")]
holdfast_driver_sdk::export_driver!(NetProbe with_types_in holdfast_driver_sdk::bindings);
