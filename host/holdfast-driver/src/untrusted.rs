//! What a driver hands back is untrusted input: every string and number is checked
//! here, once, before the host stores, logs, exports or sends it anywhere. Each
//! bound is a named constant (docs/limits.md lists them).

use crate::BackupResult;

/// Longest container name or object prefix (Cinder's columns are 255 wide).
pub const MAX_LOCATION_BYTES: usize = 255;

/// Longest text of a driver's error, log line or failure kept by the host; longer
/// ones are cut (at a character boundary) and marked.
pub const MAX_DRIVER_TEXT_BYTES: usize = 1024;

/// Largest driver part of an export record (a JSON object).
pub const MAX_RECORD_BYTES: usize = 64 << 10;

/// Smallest object a backup can have: the host's smallest sha block. A result
/// claiming more objects than the volume has room for is a lie.
pub const MIN_OBJECT_BYTES: u64 = 4096;

/// Objects a backup beyond its data objects (Cinder: the sha256file and the metadata).
const EXTRA_OBJECTS: u64 = 16;

/// The longest start of `text` of at most `max` bytes that ends on a character boundary.
pub fn char_prefix(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `text`, cut to at most `max` bytes at a character boundary, marked when cut.
pub fn truncate_text(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let kept = char_prefix(text, max);
    format!("{kept}… ({} bytes cut)", text.len() - kept.len())
}

/// A container and object prefix a driver wants to record: relative names, no `..`,
/// no control characters, at most [`MAX_LOCATION_BYTES`]; the prefix a relative path too
/// (object stores' prefixes have `/`; the host's own store refuses them in its names).
pub fn check_location(container: &str, prefix: &str) -> Result<(), String> {
    if !holdfast_types::is_valid_container(container) {
        return Err(format!(
            "container {:?} is not a relative name of at most {MAX_LOCATION_BYTES} bytes without `..`",
            truncate_text(container, 64)
        ));
    }
    if prefix.len() > MAX_LOCATION_BYTES || !holdfast_types::is_valid_object_prefix(prefix) {
        return Err(format!(
            "object prefix {:?} is not a relative name of at most {MAX_LOCATION_BYTES} bytes without `.` parts",
            truncate_text(prefix, 64)
        ));
    }
    Ok(())
}

/// A backup's result, for a volume of `size_bytes`.
pub fn check_result(r: &BackupResult, size_bytes: u64) -> Result<(), String> {
    check_location(&r.container, &r.service_metadata)?;
    let most = size_bytes.div_ceil(MIN_OBJECT_BYTES) + EXTRA_OBJECTS;
    if u64::from(r.object_count) > most {
        return Err(format!(
            "object count {} is more than a {size_bytes}-byte volume can have ({most})",
            r.object_count
        ));
    }
    Ok(())
}

/// The driver part of an export record: a JSON object of at most [`MAX_RECORD_BYTES`].
pub fn check_record(text: &str) -> Result<(), String> {
    if text.len() > MAX_RECORD_BYTES {
        return Err(format!("export record of {} bytes is over {MAX_RECORD_BYTES}", text.len()));
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) if v.is_object() => Ok(()),
        _ => Err(format!("export record {:?} is not a JSON object", truncate_text(text, 64))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused_and_long_text_cut() {
        assert!(check_location("9a/7f/9a7f", "volume_x_backup_y").is_ok());
        assert!(check_location("volumebackups", "volume_x/20261203101500/az_nova_backup_y").is_ok(), "object stores");
        for (c, p) in [
            ("../../escape", "p"),
            ("/abs", "p"),
            ("a//b", "p"),
            ("ok", ""),
            ("ok", "a//b"),
            ("ok", "/a"),
            ("ok", "a/.b"),
            ("ok", ".."),
            ("ok", "bell\u{7}"),
        ] {
            assert!(check_location(c, p).is_err(), "{c:?} {p:?}");
        }
        let huge = "x".repeat(8 << 20);
        assert!(check_location(&huge, "p").unwrap_err().len() < 300);
        assert!(check_location("c", &huge).is_err());
        let r = |n| BackupResult { container: "c".into(), service_metadata: "p".into(), object_count: n };
        assert!(check_result(&r(258), 1 << 20).is_ok());
        assert!(check_result(&r(u32::MAX), 1 << 20).is_err());
        assert!(check_record("{\"a\": 1}").is_ok());
        for bad in ["[]", "nope", "\"s\""] {
            assert!(check_record(bad).is_err(), "{bad}");
        }
        assert!(check_record(&format!("{{\"a\": \"{}\"}}", "x".repeat(MAX_RECORD_BYTES))).is_err());
        let cut = truncate_text(&"é".repeat(1000), 11);
        assert!(cut.starts_with("ééééé…") && cut.contains("bytes cut"), "{cut}");
        assert_eq!(truncate_text("short", 10), "short");
    }
}
