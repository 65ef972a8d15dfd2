//! VOLUME / BACKUP arguments accept an id or a name: try `GET .../{x}` first;
//! if the server does not know that id, list `.../detail?name=x` and take the
//! single exact-name match.

use anyhow::{Result, anyhow, bail};
use serde_json::Value;

use crate::client::Client;
use crate::fault::ApiError;

/// The kinds of resources the CLI addresses by id or name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Volume,
    Backup,
    Snapshot,
}

impl Kind {
    /// Singular noun, also the JSON wrapper key of one object (`{"volume": {...}}`).
    pub fn singular(self) -> &'static str {
        match self {
            Self::Volume => "volume",
            Self::Backup => "backup",
            Self::Snapshot => "snapshot",
        }
    }

    /// Plural noun, also the URL collection and the list wrapper key.
    pub fn plural(self) -> &'static str {
        match self {
            Self::Volume => "volumes",
            Self::Backup => "backups",
            Self::Snapshot => "snapshots",
        }
    }
}

/// A resolved resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub id: String,
    /// The server's `GET .../{id}` reply, when the argument was an id.
    pub reply: Option<Value>,
}

/// The `GET .../{id}` reply of the resource `ident` names (fetched once either way).
pub fn show(client: &Client, kind: Kind, ident: &str) -> Result<Value> {
    let found = resolve(client, kind, ident)?;
    match found.reply {
        Some(reply) => Ok(reply),
        None => client.get(&[kind.plural(), &found.id]),
    }
}

/// Resolves `ident` (an id or a name) to one existing resource.
pub fn resolve(client: &Client, kind: Kind, ident: &str) -> Result<Found> {
    let ident = ident.trim();
    if ident.is_empty() {
        bail!("the {} id or name must not be empty", kind.singular());
    }
    match client.get(&[kind.plural(), ident]) {
        Ok(reply) => {
            if let Some(id) = wrapped_id(kind, &reply) {
                return Ok(Found { id, reply: Some(reply) });
            }
            // Not an object reply (e.g. the name "detail" hits the list route): try as a name.
        }
        Err(e) if falls_back_to_name(&e) => {}
        Err(e) => return Err(e),
    }
    let list = client.get_query(&[kind.plural(), "detail"], &[("name", ident)])?;
    let items = list
        .get(kind.plural())
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("the server's {} list reply has no \"{}\" array", kind.singular(), kind.plural()))?;
    Ok(Found { id: pick_by_name(kind, ident, items)?, reply: None })
}

/// The `id` inside a `{"<kind>": {"id": ...}}` reply.
fn wrapped_id(kind: Kind, reply: &Value) -> Option<String> {
    let id = reply.get(kind.singular())?.get("id")?.as_str()?;
    Some(id.to_owned())
}

/// Unknown ids give 404; a server that validates id syntax may answer 400.
fn falls_back_to_name(err: &anyhow::Error) -> bool {
    err.downcast_ref::<ApiError>().is_some_and(|e| matches!(e.status, 400 | 404))
}

/// The id of the single item named exactly `name` (the server's name filter
/// is not trusted to be exact).
pub fn pick_by_name(kind: Kind, name: &str, items: &[Value]) -> Result<String> {
    let ids: Vec<&str> = items
        .iter()
        .filter(|item| item.get("name").and_then(Value::as_str) == Some(name))
        .filter_map(|item| item.get("id").and_then(Value::as_str))
        .collect();
    match ids.as_slice() {
        [] => bail!("no {} with id or name '{name}'", kind.singular()),
        [id] => Ok((*id).to_owned()),
        many => bail!("{} {} are named '{name}' ({}); use an id instead", many.len(), kind.plural(), many.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::ClientArgs;
    use crate::stub::{Reply, Stub};
    use serde_json::json;

    #[test]
    fn picks_the_unique_exact_match() {
        let items = vec![
            json!({"id": "1", "name": "db"}),
            json!({"id": "2", "name": "db-old"}),
            json!({"id": "3", "name": null}),
        ];
        assert_eq!(pick_by_name(Kind::Volume, "db", &items).unwrap(), "1");
    }

    #[test]
    fn no_match_and_ambiguous_names_are_errors() {
        let items = vec![json!({"id": "1", "name": "DB"}), json!({"id": "2", "name": "x"})];
        assert_eq!(pick_by_name(Kind::Backup, "db", &items).unwrap_err().to_string(), "no backup with id or name 'db'");
        let items = vec![json!({"id": "1", "name": "db"}), json!({"id": "2", "name": "db"})];
        assert_eq!(
            pick_by_name(Kind::Volume, "db", &items).unwrap_err().to_string(),
            "2 volumes are named 'db' (1, 2); use an id instead"
        );
    }

    fn client(stub: &Stub) -> Client {
        Client::new(&ClientArgs { url: stub.url(), project: "p".into(), ..ClientArgs::default() }).unwrap()
    }

    #[test]
    fn id_hit_needs_one_request() {
        let stub = Stub::start(|_| Reply::json(200, r#"{"volume": {"id": "v1", "name": "db"}}"#));
        let found = resolve(&client(&stub), Kind::Volume, "v1").unwrap();
        assert_eq!(found.id, "v1");
        assert!(found.reply.is_some());
        assert_eq!(stub.requests().len(), 1);
    }

    #[test]
    fn unknown_id_falls_back_to_name_listing() {
        let stub = Stub::start(|r| {
            if r.path.starts_with("/v3/p/backups/detail") {
                Reply::json(200, r#"{"backups": [{"id": "b9", "name": "nightly run"}]}"#)
            } else {
                Reply::json(404, r#"{"itemNotFound": {"code": 404, "message": "nope"}}"#)
            }
        });
        let found = resolve(&client(&stub), Kind::Backup, "nightly run").unwrap();
        assert_eq!(found, Found { id: "b9".into(), reply: None });
        let paths: Vec<String> = stub.requests().into_iter().map(|r| r.path).collect();
        assert_eq!(paths, ["/v3/p/backups/nightly%20run", "/v3/p/backups/detail?name=nightly+run"]);
    }

    #[test]
    fn other_errors_are_not_masked() {
        let stub = Stub::start(|_| Reply::json(503, r#"{"serviceUnavailable": {"code": 503, "message": "busy"}}"#));
        let err = resolve(&client(&stub), Kind::Volume, "x").unwrap_err();
        assert_eq!(err.to_string(), "busy (HTTP 503)");
        assert_eq!(stub.requests().len(), 1);
    }
}
