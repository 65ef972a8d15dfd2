//! Test driver: its `setup` sends one `GET http://<authority>/probe` through
//! `wasi:http` and fails with what happened (`status=200`, or `refused: …`), so a test
//! can show that the host lets a request out only to the backend's granted endpoints.
//! With the setting `held` = `yes` it also reads the answer's body into the host's
//! `held-bytes` (WIT 0.2.8) and says how that ended (`held=<bytes>`, or `failed: …`):
//! the host's limits on bytes it holds for a driver; `held` = `twice` sends the
//! request and holds its body twice, the first dropped before the second.

use holdfast_driver_sdk::{BackupInfo, BackupOutcome, Driver, DriverError, DriverInfo, Setting, Source};

pub struct NetProbe;

#[cfg(target_arch = "wasm32")]
fn probe(authority: &str, held: bool) -> String {
    use holdfast_driver_sdk::bindings::holdfast::backup::volume::{HeldBytes, StreamEnd};
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
    let resp = match answer {
        Ok(Ok(resp)) => resp,
        Ok(Err(e)) => return format!("refused: {e:?}"),
        Err(()) => return "refused: no response".into(),
    };
    let status = format!("status={}", resp.status());
    if !held {
        return status;
    }
    let Ok(body) = resp.consume() else { return format!("{status} no body") };
    let Ok(stream) = body.stream() else { return format!("{status} no stream") };
    // Room asked for as if the server had announced a terabyte.
    let bytes = HeldBytes::new(1 << 40);
    let end = loop {
        match bytes.read_from(&stream) {
            Ok(0) => stream.subscribe().block(),
            Ok(_) => {}
            Err(StreamEnd::Closed) => break format!("held={}", bytes.length()),
            Err(StreamEnd::Failed(m)) => break format!("failed: {m}"),
            Err(StreamEnd::Refused(m)) => break format!("refused: {m}"),
        }
    };
    format!("{status} {end}")
}

#[cfg(not(target_arch = "wasm32"))]
fn probe(_authority: &str, _held: bool) -> String {
    "refused: only the wasm build sends requests".into()
}

impl Driver for NetProbe {
    fn setup(config: Vec<Setting>) -> Result<DriverInfo, DriverError> {
        let authority = config.iter().find(|s| s.key == "authority").map(|s| s.value.as_str()).unwrap_or("");
        let held = config.iter().find(|s| s.key == "held").map(|s| s.value.as_str());
        let report = match held {
            Some("twice") => format!("{} / {}", probe(authority, true), probe(authority, true)),
            Some("yes") => probe(authority, true),
            _ => probe(authority, false),
        };
        Err(DriverError::Other(report))
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
