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
    let mut keys: Vec<&str> = map.keys().map(String::as_str).chain([key]).collect();
    keys.sort_unstable();
    let mut out = String::new();
    out.push('{');
    for (i, k) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        newline(&mut out, 1);
        write_string(&mut out, k);
        out.push_str(": ");
        match map.get(k) {
            Some(v) if k != key => write_value(&mut out, v, 1),
            _ => write(&mut out),
        }
    }
    newline(&mut out, 0);
    out.push('}');
    out
}

/// Append a list of strings at depth 1 (a top-level key's value) as [`to_string`]
/// writes one, each item written by `item`.
pub fn write_list<T>(out: &mut String, items: impl ExactSizeIterator<Item = T>, item: impl Fn(&mut String, T)) {
    if items.len() == 0 {
        out.push_str("[]");
        return;
    }
    out.push('[');
    for (i, t) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        newline(out, 2);
        item(out, t);
    }
    newline(out, 1);
    out.push(']');
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
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                write_value(out, item, depth + 1);
            }
            newline(out, depth);
            out.push(']');
        }
        Value::Object(map) if map.is_empty() => out.push_str("{}"),
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                write_string(out, key);
                out.push_str(": ");
                write_value(out, &map[key], depth + 1);
            }
            newline(out, depth);
            out.push('}');
        }
    }
}

fn write_string(out: &mut String, s: &str) {
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
