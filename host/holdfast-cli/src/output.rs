//! What the commands print on stdout: aligned tables for lists, key/value
//! listings for single objects, and pretty JSON for `--format json`.
//! Rendering functions return `String`s so they can be tested.

use std::io::{self, Write};

use anyhow::{Context, Result, anyhow};
use serde_json::Value;

use crate::args::OutputFormat;

/// Shown for JSON `null` and absent fields.
pub const NONE: &str = "-";
const GAP: &str = "  ";

/// Fields listed first (in this order) in key/value listings; the rest follow
/// alphabetically.
const LEADING_FIELDS: &[&str] = &["id", "name", "description", "status", "size", "volume_id"];

/// Writes `text` to stdout. A closed pipe (`holdfast ... | head`) is not an error.
pub fn emit(text: &str) -> Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}

/// Pretty-printed JSON followed by a newline.
pub fn json(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    text.push('\n');
    text
}

/// Text for one table cell. Arrays put one element per line; `{"rel","href"}`
/// link objects read as `rel: href`; other objects are compact JSON.
pub fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => NONE.to_owned(),
        Some(Value::String(s)) if s.is_empty() => NONE.to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) if items.is_empty() => NONE.to_owned(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match (item.get("rel"), item.get("href")) {
                (Some(Value::String(rel)), Some(Value::String(href))) => format!("{rel}: {href}"),
                _ => cell(Some(item)),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Some(other) => other.to_string(),
    }
}

/// A plain aligned table: a header row, a dashed rule, then the rows.
/// Multi-line cells span several lines; the last column is not padded.
#[derive(Debug, Clone, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        Self { headers: headers.iter().map(|h| (*h).to_owned()).collect(), rows: Vec::new() }
    }

    /// Adds a row; missing trailing cells render empty, extra cells are dropped.
    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (w, text) in widths.iter_mut().zip(row) {
                *w = (*w).max(text.lines().map(width).max().unwrap_or(0));
            }
        }
        let mut out = String::new();
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        push_line(&mut out, &widths, &self.headers);
        push_line(&mut out, &widths, &rule);
        for row in &self.rows {
            let cells: Vec<Vec<&str>> =
                (0..columns).map(|i| row.get(i).map_or_else(Vec::new, |c| c.lines().collect())).collect();
            let height = cells.iter().map(Vec::len).max().unwrap_or(0).max(1);
            for line in 0..height {
                let texts: Vec<&str> = cells.iter().map(|c| c.get(line).copied().unwrap_or("")).collect();
                push_line(&mut out, &widths, &texts);
            }
        }
        out
    }
}

fn width(s: &str) -> usize {
    s.chars().count()
}

fn push_line<S: AsRef<str>>(out: &mut String, widths: &[usize], cells: &[S]) {
    let mut line = String::new();
    for (i, (text, w)) in cells.iter().zip(widths).enumerate() {
        if i > 0 {
            line.push_str(GAP);
        }
        let text = text.as_ref();
        line.push_str(text);
        line.extend(std::iter::repeat_n(' ', w.saturating_sub(width(text))));
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// A table of `items`, one row each; `columns` pairs a header with the JSON key.
pub fn list_table(items: &[Value], columns: &[(&str, &str)]) -> String {
    let headers: Vec<&str> = columns.iter().map(|(h, _)| *h).collect();
    let mut table = Table::new(&headers);
    for item in items {
        table.push(columns.iter().map(|(_, k)| cell(item.get(*k))).collect());
    }
    table.render()
}

/// A Field/Value listing of one JSON object (well-known fields first).
/// Non-objects are printed as their cell text.
pub fn key_values(object: &Value) -> String {
    let Some(map) = object.as_object() else {
        return format!("{}\n", cell(Some(object)));
    };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort_by_key(|k| {
        let rank = LEADING_FIELDS.iter().position(|f| f == k);
        (rank.unwrap_or(LEADING_FIELDS.len()), k.as_str())
    });
    let mut table = Table::new(&["Field", "Value"]);
    for key in keys {
        table.push(vec![key.clone(), cell(map.get(key.as_str()))]);
    }
    table.render()
}

/// A single-object reply (`{"<key>": {...}}`): the JSON as returned, or a
/// Field/Value listing of the inner object.
pub fn object(format: OutputFormat, reply: &Value, key: &str) -> String {
    if format.is_json() { json(reply) } else { key_values(reply.get(key).unwrap_or(reply)) }
}

/// A list reply (`{"<key>": [...]}`): the JSON as returned, or a table.
pub fn list(format: OutputFormat, reply: &Value, key: &str, columns: &[(&str, &str)]) -> Result<String> {
    if format.is_json() {
        return Ok(json(reply));
    }
    let items = reply
        .get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("the server's list reply has no \"{key}\" array"))?;
    Ok(list_table(items, columns))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cells() {
        assert_eq!(cell(None), "-");
        assert_eq!(cell(Some(&json!(null))), "-");
        assert_eq!(cell(Some(&json!(""))), "-");
        assert_eq!(cell(Some(&json!("x"))), "x");
        assert_eq!(cell(Some(&json!(10))), "10");
        assert_eq!(cell(Some(&json!(false))), "false");
        assert_eq!(cell(Some(&json!([]))), "-");
        assert_eq!(cell(Some(&json!(["a", 1]))), "a\n1");
        assert_eq!(cell(Some(&json!({"a": 1}))), r#"{"a":1}"#);
        let links = json!([{"rel": "self", "href": "http://h/b1"}, {"rel": "bookmark", "href": "http://h/x"}]);
        assert_eq!(cell(Some(&links)), "self: http://h/b1\nbookmark: http://h/x");
    }

    #[test]
    fn table_aligns_columns() {
        let mut t = Table::new(&["ID", "Name", "Size"]);
        t.push(vec!["a1".into(), "first volume".into(), "10".into()]);
        t.push(vec!["b22222".into(), "-".into(), "1".into()]);
        assert_eq!(
            t.render(),
            "ID      Name          Size\n\
             ------  ------------  ----\n\
             a1      first volume  10\n\
             b22222  -             1\n"
        );
    }

    #[test]
    fn table_handles_multiline_unicode_and_short_rows() {
        let mut t = Table::new(&["K", "V", "W"]);
        t.push(vec!["é".into(), "l1\nline2".into(), "z".into()]);
        t.push(vec!["k".into()]);
        assert_eq!(
            t.render(),
            "K  V      W\n\
             -  -----  -\n\
             é  l1     z\n   line2\n\
             k\n"
        );
    }

    #[test]
    fn empty_table_has_header_only() {
        let out = list_table(&[], &[("ID", "id"), ("Name", "name")]);
        assert_eq!(out, "ID  Name\n--  ----\n");
    }

    #[test]
    fn list_table_picks_keys_and_marks_missing() {
        let items =
            vec![json!({"id": "v1", "name": "db", "holdfast:path": "/dev/sdb"}), json!({"id": "v2", "name": null})];
        let out = list_table(&items, &[("ID", "id"), ("Name", "name"), ("Path", "holdfast:path")]);
        assert_eq!(out, "ID  Name  Path\n--  ----  --------\nv1  db    /dev/sdb\nv2  -     -\n");
    }

    #[test]
    fn key_values_orders_well_known_fields_first() {
        let obj = json!({"zeta": 1, "status": "available", "id": "b1", "alpha": null, "name": "n"});
        assert_eq!(
            key_values(&obj),
            "Field   Value\n\
             ------  ---------\n\
             id      b1\n\
             name    n\n\
             status  available\n\
             alpha   -\n\
             zeta    1\n"
        );
    }

    #[test]
    fn object_and_list_by_format() {
        let reply = json!({"volume": {"id": "v1"}});
        assert_eq!(object(OutputFormat::Json, &reply, "volume"), json(&reply));
        assert_eq!(object(OutputFormat::Table, &reply, "volume"), "Field  Value\n-----  -----\nid     v1\n");
        let reply = json!({"volumes": [{"id": "v1"}]});
        let cols = [("ID", "id")];
        assert_eq!(list(OutputFormat::Table, &reply, "volumes", &cols).unwrap(), "ID\n--\nv1\n");
        assert_eq!(list(OutputFormat::Json, &reply, "volumes", &cols).unwrap(), json(&reply));
        assert!(list(OutputFormat::Table, &json!({}), "volumes", &cols).is_err());
    }

    #[test]
    fn json_is_pretty_with_newline() {
        assert_eq!(json(&json!({"a": [1]})), "{\n  \"a\": [\n    1\n  ]\n}\n");
    }
}
