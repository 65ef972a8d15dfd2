//! Cinder's `<prefix>_sha256file`: the SHA-256 of each sha block of the volume as hex
//! in a JSON list, with the backup's header (shared/docs/cinder-backup.md §4).
//!
//! Written and read in the one buffer that holds its text. A driver's memory never
//! shrinks, and at 10 GiB the text is ~24 MB beside ~10 MB of raw digests: holding
//! both at once set the driver's peak. [`Builder`] keeps the raw digests at the front
//! of a buffer sized for the text and writes the text over them from the back; [`parse`]
//! decodes the digests over the text they came from.
//!
//! A store that appends and reads ranges (the host's, WIT 0.2.6) takes the file in
//! pieces instead: [`Pieces`] writes it as the backup runs, [`Reader`] reads it as a
//! restore or an incremental needs it, and the driver holds one piece at a time.

mod checks;
mod pieces;
mod reader;

pub use checks::Checks;
pub use pieces::Pieces;
pub use reader::{Fetch, Reader};

use std::cell::Cell;
use std::ops::Range;

use serde_json::json;
use serde_json::value::RawValue;

use crate::cinder;
use crate::{BackupInfo, DriverError, pyjson};

/// Text per digest in the list, from its comma to its closing quote: `,\n    "` + 64
/// hex digits + `"`.
const DIGEST_TEXT: usize = 72;

/// The list's closing `\n  ]`.
const LIST_END: &str = "\n  ]";

/// The sha256file for `sha256s`, 32 raw bytes per block (as the host gives them).
pub fn json(info: &BackupInfo, sha_block_size: u32, sha256s: &[u8]) -> String {
    let (head, tail) = around_list(info, sha_block_size);
    plain(head, sha256s, &tail)
}

/// `head`, the list of `sha256s`, `tail`: in room sized once.
fn plain(mut head: String, sha256s: &[u8], tail: &str) -> String {
    head.reserve_exact(sha256s.len().div_ceil(32) * DIGEST_TEXT + LIST_END.len() + tail.len());
    write_list(&mut head, sha256s);
    head.push_str(tail);
    head
}

fn write_list(out: &mut String, sha256s: &[u8]) {
    pyjson::write_array(out, sha256s.chunks(32), 1, |out, d| {
        out.push('"');
        cinder::push_hex(out, d);
        out.push('"');
    });
}

/// The file's text before and after its `sha256s` list.
pub(crate) fn around_list(info: &BackupInfo, sha_block_size: u32) -> (String, String) {
    let mut m = cinder::header(info);
    m.insert("chunk_size".into(), json!(sha_block_size));
    let at = Cell::new(0);
    let mut text = pyjson::to_string_with(&m, "sha256s", |out| at.set(out.len()));
    let tail = text.split_off(at.get());
    (text, tail)
}

/// A backup's sha256file, its digests collected as the chunks come: raw, at the front
/// of a buffer with room for the whole text, which [`Builder::finish`] then writes over
/// them from the back (the tail and the list's end, then digest `n - 1` down to digest
/// 0, then the header). Digest `i`'s text starts at `head + 72 i`, past the end of the
/// raw digests before it (`32 i`), so the text never reaches a digest not yet written
/// out. The room counts against the driver's memory from the start, but the pages
/// past the raw digests are first touched (made resident) at the end.
pub struct Builder {
    /// The raw digests so far, in room reserved for the text.
    buf: Vec<u8>,
    head: String,
    tail: String,
    /// Digests the volume's size gives; another count is written the plain way.
    expected: usize,
}

impl Builder {
    /// Room for the sha256file of `blocks` sha blocks; a clear error when it does not
    /// fit the driver's memory.
    pub fn new(info: &BackupInfo, sha_block_size: u32, blocks: u64) -> Result<Self, DriverError> {
        let (head, tail) = around_list(info, sha_block_size);
        let too_big = || {
            DriverError::Invalid(format!(
                "backup {}: the sha256file of {blocks} sha blocks does not fit the driver's memory; \
                 raise its memory grant or the sha block size",
                info.id
            ))
        };
        let expected = usize::try_from(blocks).map_err(|_| too_big())?;
        let text = expected
            .checked_mul(DIGEST_TEXT)
            .and_then(|list| list.checked_add(head.len() + LIST_END.len() + tail.len()))
            .ok_or_else(too_big)?;
        let mut buf = Vec::new();
        buf.try_reserve_exact(text).map_err(|_| too_big())?;
        Ok(Builder { buf, head, tail, expected })
    }

    /// Add the digests of the next blocks.
    pub fn push(&mut self, digests: &[u8]) {
        self.buf.extend_from_slice(digests);
    }

    /// The file's bytes.
    pub fn finish(self) -> Vec<u8> {
        let Builder { mut buf, head, tail, expected } = self;
        if buf.len() != expected * 32 || expected == 0 {
            // Not the count the volume's size gave (or none): the plain way.
            return plain(head, &buf, &tail).into_bytes();
        }
        let list_end = head.len() + expected * DIGEST_TEXT;
        buf.resize(list_end + LIST_END.len() + tail.len(), 0);
        buf[list_end + LIST_END.len()..].copy_from_slice(tail.as_bytes());
        buf[list_end..list_end + LIST_END.len()].copy_from_slice(LIST_END.as_bytes());
        for i in (0..expected).rev() {
            let mut digest = [0u8; 32];
            digest.copy_from_slice(&buf[32 * i..32 * (i + 1)]);
            // `,\n    "<64 hex>"`, or `[\n    "<64 hex>"` for the first.
            let at = head.len() + DIGEST_TEXT * i;
            debug_assert!(at >= 32 * i, "the text reached an unread digest");
            buf[at] = if i == 0 { b'[' } else { b',' };
            buf[at + 1..at + 7].copy_from_slice(b"\n    \"");
            for (pair, &b) in buf[at + 7..at + 71].chunks_exact_mut(2).zip(&digest) {
                pair.copy_from_slice(&cinder::hex_pair(b));
            }
            buf[at + 71] = b'"';
        }
        buf[..head.len()].copy_from_slice(head.as_bytes());
        buf
    }
}

/// A backup's sha256file as the chunks come: in [`Pieces`] for a store that appends,
/// else [`Builder`]'s whole file at the end.
pub enum Writer {
    Whole(Builder),
    Pieces(Pieces),
}

impl Writer {
    /// Add the digests of the next blocks; a piece ready to go goes to `out` with
    /// whether it is the file's first (which replaces the object; later ones append).
    pub fn push(
        &mut self,
        digests: &[u8],
        out: &mut impl FnMut(bool, &[u8]) -> Result<(), DriverError>,
    ) -> Result<(), DriverError> {
        match self {
            Writer::Whole(b) => {
                b.push(digests);
                Ok(())
            }
            Writer::Pieces(p) => p.push(digests, out),
        }
    }

    /// The rest of the file to `out` (the whole of it for [`Writer::Whole`]).
    pub fn finish(self, out: &mut impl FnMut(bool, &[u8]) -> Result<(), DriverError>) -> Result<(), DriverError> {
        match self {
            Writer::Whole(b) => out(true, &b.finish()),
            Writer::Pieces(p) => p.finish(out),
        }
    }
}

/// A backup's sha256file as it was found: read in pieces from a store that reads
/// ranges (and a file that gives its `chunk_size` before its list, as Cinder's
/// does), else fetched and parsed whole.
pub enum Opened<F> {
    Pieces(Reader<F>),
    Whole { block: u64, digests: Vec<u8> },
}

impl<F: Fetch> Opened<F> {
    /// Open the file through `fetch` when `pieces`, else (or when its header does not
    /// allow pieces) through `whole`.
    pub fn open(
        pieces: bool,
        fetch: F,
        whole: impl FnOnce() -> Result<Vec<u8>, DriverError>,
    ) -> Result<Self, DriverError> {
        if pieces && let Some(reader) = Reader::open(fetch)? {
            return Ok(Opened::Pieces(reader));
        }
        let (block, digests) = parse(whole()?)?;
        Ok(Opened::Whole { block, digests })
    }

    /// The file's sha block size.
    pub fn block_size(&self) -> u64 {
        match self {
            Opened::Pieces(reader) => reader.block_size(),
            Opened::Whole { block, .. } => *block,
        }
    }
}

/// A sha256file's block size and digests (32 raw bytes each, the form
/// `read-options.parent-sha256s` takes), decoded over the file's own bytes: each
/// digest's 32 bytes land before the 66 or more of text it came from.
pub fn parse(mut bytes: Vec<u8>) -> Result<(u64, Vec<u8>), DriverError> {
    use serde::de::Deserializer;
    let bad = |why: &str| DriverError::Invalid(format!("sha256file is malformed: {why}"));
    let (block, list) = {
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let (block, list) = de.deserialize_map(Header).map_err(|e| bad(&e.to_string()))?;
        de.end().map_err(|e| bad(&e.to_string()))?;
        let list = list.ok_or_else(|| bad("no sha256s"))?.get();
        // Where the list's text lies in `bytes` (a RawValue borrows it from there).
        let start = (list.as_ptr() as usize).checked_sub(bytes.as_ptr() as usize);
        let span = start.and_then(|s| Some(s..s.checked_add(list.len())?)).filter(|r| r.end <= bytes.len());
        (block.ok_or_else(|| bad("no chunk_size"))?, span.ok_or_else(|| bad("sha256s is not in the file"))?)
    };
    let n = decode_in_place(&mut bytes, list).map_err(bad)?;
    bytes.truncate(n * 32);
    bytes.shrink_to_fit();
    Ok((block, bytes))
}

/// The sha256file's `chunk_size` and the text of its `sha256s` (other keys are skipped;
/// either of those two given twice is refused: a reader in pieces takes the first, serde
/// the last, and a file must not mean two things).
pub(crate) struct Header;

impl<'de> serde::de::Visitor<'de> for Header {
    type Value = (Option<u64>, Option<&'de RawValue>);
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a sha256file object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut block, mut list) = (None, None);
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match &*key {
                "chunk_size" if block.is_none() => block = Some(map.next_value()?),
                "sha256s" if list.is_none() => list = Some(map.next_value()?),
                "chunk_size" | "sha256s" => {
                    return Err(serde::de::Error::custom(format_args!("{key} is given twice")));
                }
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok((block, list))
    }
}

/// Why a list item is refused.
const NOT_A_DIGEST: &str = "a digest is not 64 hex digits";

/// A digest's 66 bytes of text, `"<64 hex digits>"`, as its 32 bytes. An incremental
/// decodes its parent's whole list (32768 digests per GiB) before it reads the volume:
/// one table lookup per digit and one check per digest, not a branch per digit.
fn decode_digest(text: &[u8]) -> Option<[u8; 32]> {
    let text: &[u8; 66] = text.try_into().ok()?;
    if text[0] != b'"' || text[65] != b'"' {
        return None;
    }
    let mut digest = [0u8; 32];
    let mut invalid = 0u8;
    for (d, pair) in digest.iter_mut().zip(text[1..65].chunks_exact(2)) {
        let (high, low) = (cinder::HEX_VALUE[usize::from(pair[0])], cinder::HEX_VALUE[usize::from(pair[1])]);
        invalid |= high | low;
        *d = high << 4 | low;
    }
    (invalid & 0x80 == 0).then_some(digest)
}

/// Decode the JSON list of 64-hex-digit strings at `list` (valid JSON: serde checked
/// it) into 32-byte digests at the front of `bytes`; their count. Digits written as
/// JSON escapes (`\u0061`) are refused: Python never writes them.
fn decode_in_place(bytes: &mut [u8], list: Range<usize>) -> Result<usize, &'static str> {
    let end = list.end;
    let mut at = list.start;
    let skip_space = |bytes: &[u8], at: &mut usize| {
        while *at < end && matches!(bytes[*at], b' ' | b'\n' | b'\r' | b'\t') {
            *at += 1;
        }
    };
    if bytes.get(at) != Some(&b'[') {
        return Err("sha256s is not a list");
    }
    at += 1;
    skip_space(bytes, &mut at);
    let mut n = 0;
    if bytes.get(at) == Some(&b']') {
        return Ok(0);
    }
    loop {
        let digest = bytes.get(at..at + 66).and_then(decode_digest).ok_or(NOT_A_DIGEST)?;
        at += 66;
        // Each digest's text is at least 66 bytes and the list starts past byte 0.
        debug_assert!(32 * (n + 1) <= at);
        bytes[32 * n..32 * (n + 1)].copy_from_slice(&digest);
        n += 1;
        skip_space(bytes, &mut at);
        match bytes.get(at) {
            Some(b',') if at < end => {
                at += 1;
                skip_space(bytes, &mut at);
            }
            Some(b']') if at + 1 == end => return Ok(n),
            _ => return Err(NOT_A_DIGEST),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// Cinder's test backup, its name not ASCII (escaped in the header).
    pub(super) fn info() -> BackupInfo {
        BackupInfo { name: Some("n\u{e9}".into()), ..cinder::tests::info() }
    }

    pub(super) fn digests(n: usize) -> Vec<u8> {
        (0..n * 32).map(|i| (i * 7 + i / 32) as u8).collect()
    }

    #[test]
    fn round_trips_to_raw_digests() {
        let mut shas = vec![0u8; 31];
        shas.push(0xff);
        shas.extend([0xab; 32]);
        let text = json(&info(), 32_768, &shas);
        assert!(text.contains(&format!("\"{}ff\"", "00".repeat(31))), "{text}");
        assert!(text.contains(&format!("\"{}\"", "ab".repeat(32))), "{text}");
        let (block, raw) = parse(text.into_bytes()).unwrap();
        assert_eq!(block, 32_768);
        assert_eq!(raw, shas);
        assert_eq!(cinder::unhex("aBff"), Some(vec![0xab, 0xff]));
        assert_eq!(cinder::unhex("abc"), None);
        for bad in [
            &b"{\"chunk_size\": 1, \"sha256s\": [\"zz\"]}"[..],
            b"{\"chunk_size\": 1}",
            b"{\"sha256s\": []}",
            b"[32768, []]",
            b"{\"chunk_size\": 1, \"sha256s\": []} x",
            b"{\"chunk_size\": 1, \"sha256s\": 5}",
            b"{\"chunk_size\": 1, \"sha256s\": {\"a\": 1}}",
            b"{\"chunk_size\": 1, \"sha256s\": [], \"chunk_size\": 1}",
            b"{\"chunk_size\": 1, \"sha256s\": [], \"sha256s\": []}",
        ] {
            let err = parse(bad.to_vec()).unwrap_err().to_string();
            assert!(err.contains("sha256file is malformed"), "{}: {err}", String::from_utf8_lossy(bad));
        }
        let d = "cd".repeat(32);
        for bad in [format!("[\"{d}\" \"{d}\"]"), format!("[\"{d}\",]"), format!("[\"{d}1\"]"), format!("[[\"{d}\"]]")]
        {
            let text = format!("{{\"chunk_size\": 1, \"sha256s\": {bad}}}");
            assert!(parse(text.clone().into_bytes()).is_err(), "{text}");
        }
        // Other keys (Cinder's header) are skipped, in any order; any JSON spacing.
        let text = format!(
            "{{\"sha256s\": [ \"{d}\" ,\n\"{}\"\t], \"x\": {{\"y\": [1]}}, \"chunk_size\": 4096}}",
            "EF".repeat(32)
        );
        let (block, raw) = parse(text.into_bytes()).unwrap();
        assert_eq!(block, 4096);
        assert_eq!(raw, [[0xcd; 32], [0xef; 32]].concat());
        assert_eq!(parse(b"{\"sha256s\":[],\"chunk_size\":1}".to_vec()).unwrap(), (1, vec![]));
    }

    #[test]
    fn is_written_as_cinder_writes_it() {
        // The whole object as Values through the one serialiser, as before digests were
        // streamed; and the builder's text written over its own digests, byte for byte.
        for n in [0usize, 1, 2, 3, 100, 4097] {
            let shas = digests(n);
            let mut m = cinder::header(&info());
            m.insert("chunk_size".into(), json!(32_768));
            let list = shas.chunks(32).map(|d| Value::String(cinder::hex(d))).collect();
            m.insert("sha256s".into(), Value::Array(list));
            let expected = pyjson::to_string(&Value::Object(m));
            assert_eq!(json(&info(), 32_768, &shas), expected, "{n} digests");
            let mut b = Builder::new(&info(), 32_768, n as u64).unwrap();
            // In the uneven pieces chunks come in.
            for piece in shas.chunks(32 * 3) {
                b.push(piece);
            }
            assert_eq!(String::from_utf8(b.finish()).unwrap(), expected, "{n} digests, built in place");
            assert_eq!(parse(expected.into_bytes()).unwrap(), (32_768, shas));
        }
    }

    #[test]
    fn a_builder_given_another_count_writes_what_came() {
        for (expected, given) in [(3, 2), (3, 4), (0, 1), (2, 0)] {
            let shas = digests(given);
            let mut b = Builder::new(&info(), 4096, expected).unwrap();
            b.push(&shas[..shas.len() / 2]);
            b.push(&shas[shas.len() / 2..]);
            assert_eq!(String::from_utf8(b.finish()).unwrap(), json(&info(), 4096, &shas), "{expected}/{given}");
        }
        let err = Builder::new(&info(), 1, u64::MAX).err().unwrap().to_string();
        assert!(err.contains("does not fit the driver's memory"), "{err}");
    }
}
