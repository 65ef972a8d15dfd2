//! JSON exactly as Cinder writes it: Python's `json.dumps(obj, indent=2, sort_keys=True)`
//! with its default `ensure_ascii=True`. Written out by hand so key order never depends
//! on serde_json's `preserve_order` feature, which another crate may switch on.

use serde_json::Value;
use std::fmt::Write;

/// Serialise like Cinder (sorted keys, 2-space indent, `", "`/`": "` separators, ASCII only).
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value, 0);
    out
}

/// [`to_string`] of an object with one more top-level `key` (sorted in with the rest)
/// whose value `write` appends itself at depth 1: for a list too long to hold as
/// [`Value`]s (a sha256file's digests cost ~130 bytes of memory each that way).
pub fn to_string_with(map: &serde_json::Map<String, Value>, key: &str, write: impl Fn(&mut String)) -> String {
    let keys = map.keys().map(String::as_str).chain([key]).collect();
    let mut out = String::new();
    write_object(&mut out, keys, 0, |out, k| match map.get(k) {
        Some(v) if k != key => write_value(out, v, 1),
        _ => write(out),
    });
    out
}

/// Append a list at `depth` as [`to_string`] writes one, each item written by `item`
/// (at `depth + 1`).
pub fn write_array<T>(
    out: &mut String,
    items: impl ExactSizeIterator<Item = T>,
    depth: usize,
    item: impl Fn(&mut String, T),
) {
    if items.len() == 0 {
        out.push_str("[]");
        return;
    }
    out.push('[');
    for (i, t) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        newline(out, depth + 1);
        item(out, t);
    }
    newline(out, depth);
    out.push(']');
}

/// Append an object at `depth` with `keys` sorted as Python sorts them (by code
/// point: UTF-8's byte order), each value written by `value` (at `depth + 1`).
pub fn write_object<'k>(out: &mut String, mut keys: Vec<&'k str>, depth: usize, value: impl Fn(&mut String, &'k str)) {
    if keys.is_empty() {
        out.push_str("{}");
        return;
    }
    keys.sort_unstable();
    out.push('{');
    for (i, k) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        newline(out, depth + 1);
        write_string(out, k);
        out.push_str(": ");
        value(out, k);
    }
    newline(out, depth);
    out.push('}');
}

fn newline(out: &mut String, depth: usize) {
    out.push('\n');
    for _ in 0..depth {
        out.push_str("  ");
    }
}

fn write_value(out: &mut String, value: &Value, depth: usize) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => write_array(out, items.iter(), depth, |out, v| write_value(out, v, depth + 1)),
        Value::Object(map) => {
            let keys = map.keys().map(String::as_str).collect();
            write_object(out, keys, depth, |out, k| write_value(out, &map[k], depth + 1))
        }
    }
}

/// Append `s` as a JSON string, escaped as Python's `ensure_ascii` escapes it.
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    let mut units = [0u16; 2];
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || !c.is_ascii() => {
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{u:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_python_json_dumps() {
        let v = serde_json::json!({"b": [{"x": 1}], "a": null, "name": "caf\u{e9} \u{1F600}\n", "e": [], "o": {}});
        // python3 -c 'import json; print(json.dumps({"b":[{"x":1}],"a":None,"name":"café 😀\n","e":[],"o":{}}, indent=2, sort_keys=True))'
        let expected = "{\n  \"a\": null,\n  \"b\": [\n    {\n      \"x\": 1\n    }\n  ],\n  \"e\": [],\n  \"name\": \"caf\\u00e9 \\ud83d\\ude00\\n\",\n  \"o\": {}\n}";
        assert_eq!(to_string(&v), expected);
    }
}
