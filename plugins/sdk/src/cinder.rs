//! Cinder's chunked-driver layout (posix/NFS flavour), shared/docs/cinder-backup.md §4:
//! container `<id[0:2]>/<id[2:4]>/<id>`, objects `<prefix>-00001…`, then
//! `<prefix>_sha256file` and `<prefix>_metadata` (written in that order: a backup
//! without its metadata file is incomplete).

use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::{BackupInfo, DriverError, pyjson};

pub use holdfast_types::Timestamp as HostTime;

pub const METADATA_VERSION: &str = "1.0.0";
pub const METADATA_SUFFIX: &str = "_metadata";
pub const SHA256FILE_SUFFIX: &str = "_sha256file";

pub fn time(t: crate::Timestamp) -> HostTime {
    HostTime(t.seconds * 1_000_000 + i64::from(t.nanoseconds / 1000))
}

/// Default container of a backup: `9a/7f/9a7f3b2c-…`.
pub fn default_container(backup_id: &str) -> String {
    let id = backup_id;
    format!("{}/{}/{id}", id.get(0..2).unwrap_or("00"), id.get(2..4).unwrap_or("00"))
}

/// A user-given container is a relative path inside the backup root. Cinder does not
/// check this (`..` escapes its root); we refuse it.
pub fn validate_container(container: &str) -> Result<(), DriverError> {
    if !holdfast_types::is_valid_container(container) {
        return Err(DriverError::Invalid(format!(
            "container {container:?} must be a relative path without '.', '..' or empty components"
        )));
    }
    Ok(())
}

/// `volume_<volume_id>_<YYYYmmddHHMMSS>_backup_<backup_id>`.
pub fn object_prefix(info: &BackupInfo) -> String {
    format!("volume_{}_{}_backup_{}", info.volume_id, time(info.created_at).compact(), info.id)
}

/// Object stores (Swift, S3): `volume_<volume_id>/<YYYYmmddHHMMSS>/az_<zone>_backup_<backup_id>`.
pub fn object_store_prefix(info: &BackupInfo, zone: &str) -> String {
    format!("volume_{}/{}/az_{zone}_backup_{}", info.volume_id, time(info.created_at).compact(), info.id)
}

pub fn object_name(prefix: &str, number: u32) -> String {
    format!("{prefix}-{number:05}")
}

/// One stored object as the metadata file lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectEntry {
    pub name: String,
    pub offset: u64,
    /// Uncompressed length.
    pub length: u64,
    pub compression: String,
    /// MD5 hex of the uncompressed bytes.
    pub md5: String,
}

pub(crate) fn header(info: &BackupInfo) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("version".into(), json!(METADATA_VERSION));
    m.insert("backup_id".into(), json!(info.id));
    m.insert("volume_id".into(), json!(info.volume_id));
    m.insert("backup_name".into(), json!(info.name));
    m.insert("backup_description".into(), json!(info.description));
    m.insert("created_at".into(), json!(time(info.created_at).python_str()));
    m
}

/// `<prefix>_metadata`.
pub fn metadata_json(info: &BackupInfo, objects: &[ObjectEntry], volume_meta: Option<&str>) -> String {
    let mut m = header(info);
    m.insert("parent_id".into(), json!(info.parent_id));
    m.insert("volume_meta".into(), json!(volume_meta));
    // Entries written straight out: a Value each cost ~1 KB of the driver's memory,
    // which never shrinks (10 MB at 10 GiB). Their text is sized once (~180 bytes
    // each besides the strings; the rest of the file after them is small).
    pyjson::to_string_with(&m, "objects", |out| {
        let entries: usize = objects.iter().map(|o| 200 + o.name.len() + o.compression.len() + o.md5.len()).sum();
        out.reserve(entries + volume_meta.map_or(0, |v| 6 * v.len()) + TRAILER_ROOM);
        pyjson::write_array(out, objects.iter(), 1, |out, o| {
            pyjson::write_object(out, vec![o.name.as_str()], 2, |out, _| {
                pyjson::write_object(out, vec!["compression", "length", "md5", "offset"], 3, |out, key| match key {
                    "compression" => pyjson::write_string(out, &o.compression),
                    "length" => push_u64(out, o.length),
                    "md5" => pyjson::write_string(out, &o.md5),
                    _ => push_u64(out, o.offset),
                })
            })
        })
    })
}

/// Room for what follows a streamed list in Cinder's files (the keys sorted after it:
/// `version`, `volume_id`, and in metadata `parent_id`), so the text is not grown by
/// doubling at its very end.
const TRAILER_ROOM: usize = 1024;

fn push_u64(out: &mut String, n: u64) {
    use std::fmt::Write;
    let _ = write!(out, "{n}");
}

/// The digests of an object's blocks within a sha256file's (`all`, 32 bytes each, of
/// `block_size`-byte blocks from the volume's start): `None` unless the object starts
/// on a block and its blocks are all there.
pub fn object_digests(block_size: u32, all: &[u8], offset: u64, length: u64) -> Option<&[u8]> {
    let size = u64::from(block_size);
    if size == 0 || !offset.is_multiple_of(size) {
        return None;
    }
    let first = usize::try_from(offset / size).ok()?.checked_mul(32)?;
    let end = first.checked_add(usize::try_from(length.div_ceil(size)).ok()?.checked_mul(32)?)?;
    all.get(first..end)
}

/// Lower-case hex, the form Cinder's files store digests in.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    push_hex(&mut s, bytes);
    s
}

pub(crate) fn push_hex(s: &mut String, bytes: &[u8]) {
    for &b in bytes {
        s.extend(hex_pair(b).map(char::from));
    }
}

/// A byte's two lower-case hex digits.
pub(crate) fn hex_pair(b: u8) -> [u8; 2] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 15)]]
}

/// Each byte's value as a hex digit (either case); `0xFF` where it is not one.
pub(crate) const HEX_VALUE: [u8; 256] = {
    let mut t = [0xFF; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// A hex digit's value (either case).
pub(crate) fn hex_digit(c: u8) -> Option<u8> {
    let v = HEX_VALUE[usize::from(c)];
    (v != 0xFF).then_some(v)
}

/// The bytes of a hex string (either case); `None` if it is not hex.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    let t = text.as_bytes();
    if !t.len().is_multiple_of(2) {
        return None;
    }
    t.chunks_exact(2).map(|p| Some(hex_digit(p[0])? << 4 | hex_digit(p[1])?)).collect()
}

/// What restore needs from a metadata file.
#[derive(Debug, Clone)]
pub struct Metadata {
    pub backup_id: String,
    pub objects: Vec<ObjectEntry>,
    pub volume_meta: Option<String>,
}

pub fn parse_metadata(bytes: &[u8]) -> Result<Metadata, DriverError> {
    use serde::de::Deserializer;
    let bad = |why: &str| DriverError::Invalid(format!("backup metadata is malformed: {why}"));
    // Parsed entry by entry: a Value tree of the whole file cost ~1 KB per object.
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let file = de.deserialize_map(MetadataFile::default()).map_err(|e| bad(&e.to_string()))?;
    de.end().map_err(|e| bad(&e.to_string()))?;
    // The version first: another version's entries may well not read as ours.
    let version = file.version.as_ref().and_then(Value::as_str).unwrap_or("");
    if version != METADATA_VERSION {
        return Err(DriverError::Invalid(format!("No support to restore backup version {version}")));
    }
    let backup_id = file.backup_id.as_ref().and_then(Value::as_str).ok_or_else(|| bad("no backup_id"))?.to_owned();
    let volume_meta = file.volume_meta.as_ref().and_then(Value::as_str).map(str::to_owned);
    let list = file.objects.ok_or_else(|| bad("no objects list"))?;
    let objects = serde_json::Deserializer::from_str(list.get())
        .deserialize_seq(ObjectEntries)
        .map_err(|e| bad(&e.to_string()))?;
    Ok(Metadata { backup_id, objects, volume_meta })
}

/// The keys of a metadata file that restore reads (the rest are skipped); the objects
/// list kept as its text until the version is known.
#[derive(Default)]
struct MetadataFile<'de> {
    version: Option<Value>,
    backup_id: Option<Value>,
    volume_meta: Option<Value>,
    objects: Option<&'de RawValue>,
}

impl<'de> serde::de::Visitor<'de> for MetadataFile<'de> {
    type Value = MetadataFile<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a backup metadata object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut file = self;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match &*key {
                "version" => file.version = Some(map.next_value()?),
                "backup_id" => file.backup_id = Some(map.next_value()?),
                "volume_meta" => file.volume_meta = Some(map.next_value()?),
                "objects" => file.objects = Some(map.next_value()?),
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(file)
    }
}

/// The metadata's `objects`: a list of objects `{name: {offset, length, compression,
/// md5}}`, each made an [`ObjectEntry`] as it is parsed.
struct ObjectEntries;

impl<'de> serde::de::Visitor<'de> for ObjectEntries {
    type Value = Vec<ObjectEntry>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of objects")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut objects = Vec::new();
        while let Some((name, fields)) = seq.next_element_seed(FirstEntry)? {
            objects.push(object_entry(name, &fields).map_err(serde::de::Error::custom)?);
        }
        Ok(objects)
    }
}

/// One entry of the objects list: its first name and that name's fields, the rest
/// skipped, as Cinder's restore reads it (`list(metadata_object.items())[0]`).
struct FirstEntry;

impl<'de> serde::de::DeserializeSeed<'de> for FirstEntry {
    type Value = (String, Value);
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for FirstEntry {
    type Value = (String, Value);
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object entry {name: {offset, length, compression, md5}}")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let first = map
            .next_entry::<String, Value>()?
            .ok_or_else(|| serde::de::Error::custom("an object entry names no object"))?;
        while map.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
        Ok(first)
    }
}

/// An entry's fields as Cinder's restore reads them: a missing or null compression
/// is none, a missing md5 is not checked.
fn object_entry(name: String, fields: &Value) -> Result<ObjectEntry, String> {
    let num = |k: &str| fields.get(k).and_then(Value::as_u64).ok_or_else(|| format!("{name}: no {k}"));
    let (offset, length) = (num("offset")?, num("length")?);
    let text = |k: &str, default: &str| fields.get(k).and_then(Value::as_str).unwrap_or(default).to_owned();
    let (compression, md5) = (text("compression", "none"), text("md5", ""));
    Ok(ObjectEntry { name, offset, length, compression, md5 })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::Timestamp;

    #[test]
    fn an_objects_digests_are_its_blocks_of_the_sha256file() {
        let all: Vec<u8> = (0..10u8).flat_map(|i| [i; 32]).collect();
        // Blocks 2, 3 and the short fourth of an object at block 2.
        let d = object_digests(4096, &all, 2 * 4096, 3 * 4096 - 100).unwrap();
        assert_eq!(d.len(), 96);
        assert_eq!((d[0], d[64]), (2, 4));
        assert_eq!(object_digests(4096, &all, 7 * 4096, 3 * 4096), Some(&all[7 * 32..]));
        assert_eq!(object_digests(4096, &all, 7 * 4096, 3 * 4096 + 1), None, "past the file's blocks");
        assert_eq!(object_digests(4096, &all, 100, 4096), None, "not on a block");
        assert_eq!(object_digests(0, &all, 0, 4096), None);
    }

    /// A backup to write files for (the tests of [`crate::sha256file`] too).
    pub(crate) fn info() -> BackupInfo {
        BackupInfo {
            id: "9a7f3b2c-6d1e-4f80-a5b4-c3d2e1f0a9b8".into(),
            volume_id: "5c2e1d4a-0b7e-4c1f-9d3a-2f6b8e1a7c90".into(),
            name: Some("nightly".into()),
            description: None,
            created_at: Timestamp { seconds: 1_740_830_400, nanoseconds: 0 },
            parent_id: None,
            container: None,
            service_metadata: None,
            size_bytes: 196_608,
            object_count: 0,
        }
    }

    #[test]
    fn names_follow_cinder() {
        let i = info();
        assert_eq!(default_container(&i.id), "9a/7f/9a7f3b2c-6d1e-4f80-a5b4-c3d2e1f0a9b8");
        let p = object_prefix(&i);
        assert_eq!(
            p,
            "volume_5c2e1d4a-0b7e-4c1f-9d3a-2f6b8e1a7c90_20250301120000_backup_9a7f3b2c-6d1e-4f80-a5b4-c3d2e1f0a9b8"
        );
        assert_eq!(object_name(&p, 1), format!("{p}-00001"));
        assert_eq!(object_name("x", 123_456), "x-123456");
    }

    #[test]
    fn containers_stay_inside_the_root() {
        for ok in ["c1", "a/b/c", "nightly.2025"] {
            validate_container(ok).unwrap();
        }
        for bad in ["", "/etc", "../x", "a/../../b", "a//b", "./a"] {
            assert!(validate_container(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn metadata_round_trips_and_matches_cinder_shape() {
        let i = info();
        let objects = vec![ObjectEntry {
            name: "p-00001".into(),
            offset: 0,
            length: 65_536,
            compression: "zlib".into(),
            md5: "351b1a874fd230b0a61e9bc13f5381b6".into(),
        }];
        let text = metadata_json(&i, &objects, Some("{\"version\": 2}"));
        assert!(text.starts_with("{\n  \"backup_description\": null,\n  \"backup_id\": \"9a7f3b2c"));
        assert!(text.contains("\"created_at\": \"2025-03-01 12:00:00+00:00\""));
        assert!(text.contains(
            "\"objects\": [\n    {\n      \"p-00001\": {\n        \"compression\": \"zlib\",\n        \"length\": 65536,"
        ));
        let m = parse_metadata(text.as_bytes()).unwrap();
        assert_eq!(m.objects, objects);
        assert_eq!(m.volume_meta.as_deref(), Some("{\"version\": 2}"));
        assert!(parse_metadata(b"{\"version\": \"2.0.0\"}").is_err());
    }

    #[test]
    fn metadata_is_written_as_cinder_writes_it() {
        // The whole object as Values through the one serialiser, as before entries
        // were streamed: byte for byte, with no objects, some, and a non-ASCII volume_meta.
        let mut i = info();
        i.parent_id = Some("p".into());
        i.description = Some("caf\u{e9} \"nightly\"".into());
        for n in [0u64, 1, 3] {
            let objects: Vec<ObjectEntry> = (0..n)
                .map(|k| ObjectEntry {
                    name: object_name("volume_x_backup_y", k as u32 + 1),
                    offset: k << 20,
                    length: 1 << 20,
                    compression: ["zstd", "none"][k as usize % 2].into(),
                    md5: hex(&[k as u8; 16]),
                })
                .collect();
            for meta in [None, Some("{\"n\u{e9}\": [1]}")] {
                let mut m = header(&i);
                m.insert("parent_id".into(), json!(i.parent_id));
                let list = objects
                    .iter()
                    .map(|o| {
                        json!({ o.name.clone(): {
                            "offset": o.offset, "length": o.length, "compression": o.compression, "md5": o.md5,
                        }})
                    })
                    .collect();
                m.insert("objects".into(), Value::Array(list));
                m.insert("volume_meta".into(), json!(meta));
                let text = metadata_json(&i, &objects, meta);
                assert_eq!(text, pyjson::to_string(&Value::Object(m)), "{n} objects");
                assert_eq!(parse_metadata(text.as_bytes()).unwrap().objects, objects);
            }
        }
    }

    #[test]
    fn metadata_entries_are_read_as_cinder_reads_them() {
        let parse = |objects: &str| {
            parse_metadata(
                format!("{{\"version\": \"1.0.0\", \"backup_id\": \"b\", \"objects\": {objects}}}").as_bytes(),
            )
        };
        let m = parse(r#"[{"a-00001": {"offset": 0, "length": 8, "compression": null, "x": 1}}]"#).unwrap();
        assert_eq!((m.objects[0].compression.as_str(), m.objects[0].md5.as_str()), ("none", ""));
        assert_eq!(m.volume_meta, None);
        // Cinder reads an entry's first name and ignores the rest.
        let m = parse(r#"[{"b": {"offset": 0, "length": 8}, "a": {"offset": 8, "length": 8}}]"#).unwrap();
        assert_eq!((m.objects[0].name.as_str(), m.objects[0].offset), ("b", 0));
        // The version is checked before the entries are read.
        let other = parse_metadata(br#"{"version": "2.0.0", "backup_id": "b", "objects": [{"a": 1}]}"#);
        assert!(other.unwrap_err().to_string().contains("No support to restore backup version 2.0.0"));
        for bad in [
            r#"[{}]"#,
            r#"[{"a": 1}]"#,
            r#"[["a"]]"#,
            r#"[{"a": {"offset": -1, "length": 8}}]"#,
            r#"[{"a": {"length": 8}}]"#,
            r#"{"a": {"offset": 0, "length": 8}}"#,
        ] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains("backup metadata is malformed"), "{bad}: {err}");
        }
        assert!(parse_metadata(b"{\"version\": \"1.0.0\", \"backup_id\": \"b\"}").is_err(), "no objects");
        assert!(parse("[]").is_ok());
        assert!(parse("[] x").is_err(), "trailing bytes");
    }
}
