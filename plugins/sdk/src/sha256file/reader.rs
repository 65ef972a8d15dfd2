//! A sha256file read in pieces, for stores with ranged reads: a restore takes each
//! object's digests as it reaches that object, an incremental its parent's whole
//! list, and the driver holds one piece of the text at a time.

use serde::de::Deserializer;

use super::{Header, NOT_A_DIGEST, decode_digest};
use crate::DriverError;

/// Text fetched at once.
pub const PIECE: u32 = 1 << 20;

/// Most text before the list and after it (Cinder's header is a few hundred bytes).
const MAX_AROUND: usize = 1 << 20;

fn bad(why: impl std::fmt::Display) -> DriverError {
    DriverError::Invalid(format!("sha256file is malformed: {why}"))
}

/// Where a reader's text comes from: `(offset, length)` → up to `length` bytes of the
/// file from `offset`, fewer only at its end ([`ObjectStore::get_range`]).
///
/// [`ObjectStore::get_range`]: crate::chunked::ObjectStore::get_range
pub trait Fetch: FnMut(u64, u32) -> Result<Vec<u8>, DriverError> {}

impl<F: FnMut(u64, u32) -> Result<Vec<u8>, DriverError>> Fetch for F {}

/// Where a reader is in the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    /// At the list's `[`.
    Start,
    /// Past a digest.
    Listed,
    /// Past the list's `]`.
    Ended,
}

/// A sha256file whose digests are read in order as they are needed.
pub struct Reader<F> {
    fetch: F,
    piece: u32,
    /// Fetched text; `buf[pos..]` is not read yet.
    buf: Vec<u8>,
    pos: usize,
    /// The file offset the next fetch starts at.
    next: u64,
    eof: bool,
    /// The text before the list, kept to check the whole file at its end.
    head: Vec<u8>,
    block: u64,
    /// Digests read so far.
    read: u64,
    at: At,
}

impl<F: Fetch> Reader<F> {
    /// Read the header. `None` when the file gives no `chunk_size` before its list
    /// (Cinder's always does: its keys are sorted): read such a file whole.
    pub fn open(fetch: F) -> Result<Option<Self>, DriverError> {
        Self::with_piece(fetch, PIECE)
    }

    /// [`Self::open`] fetching `piece` bytes at a time (tests cut small ones).
    pub(crate) fn with_piece(fetch: F, piece: u32) -> Result<Option<Self>, DriverError> {
        let mut r = Reader {
            fetch,
            piece,
            buf: Vec::new(),
            pos: 0,
            next: 0,
            eof: false,
            head: Vec::new(),
            block: 0,
            read: 0,
            at: At::Start,
        };
        loop {
            match scan_header(&r.buf)? {
                Scan::More if r.buf.len() > MAX_AROUND => return Err(bad("its header is over 1 MiB")),
                Scan::More => {
                    if !r.fill()? {
                        return Err(bad("it ends in its header"));
                    }
                }
                Scan::List { block: None, .. } => return Ok(None),
                Scan::List { start, block: Some(block) } => {
                    r.head = r.buf[..start].to_vec();
                    r.pos = start;
                    r.block = block;
                    return Ok(Some(r));
                }
            }
        }
    }

    /// The file's `chunk_size`: bytes per digest.
    pub fn block_size(&self) -> u64 {
        self.block
    }

    /// The digests of `count` blocks from block `first` on, appended to `out` (the
    /// blocks before `first` are passed over). `false`, with nothing appended, when
    /// `first` lies behind what was read already or the list ends before them.
    pub fn blocks(&mut self, first: u64, count: u64, out: &mut Vec<u8>) -> Result<bool, DriverError> {
        if first < self.read {
            return Ok(false);
        }
        let had = out.len();
        while self.read < first {
            if self.next_digest()?.is_none() {
                return Ok(false);
            }
        }
        for _ in 0..count {
            match self.next_digest()? {
                Some(d) => out.extend_from_slice(&d),
                None => {
                    out.truncate(had);
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Every digest not read yet, appended to `out`; then the rest of the file is
    /// checked: the whole must be a JSON object with this `chunk_size`.
    pub fn read_to_end(mut self, out: &mut Vec<u8>) -> Result<(), DriverError> {
        loop {
            self.decode_held(out);
            match self.next_digest()? {
                Some(d) => out.extend_from_slice(&d),
                None => break,
            }
        }
        while self.fill()? {
            if self.buf.len() - self.pos > MAX_AROUND {
                return Err(bad("over 1 MiB follows its list"));
            }
        }
        let mut whole = std::mem::take(&mut self.head);
        whole.extend_from_slice(b"[]");
        whole.extend_from_slice(&self.buf[self.pos..]);
        let mut de = serde_json::Deserializer::from_slice(&whole);
        // `Header` refuses a second chunk_size or sha256s after the list.
        de.deserialize_map(Header).map_err(bad)?;
        de.end().map_err(bad)?;
        Ok(())
    }

    /// Every whole `, "<digest>"` already fetched, decoded in one pass over the buffer
    /// (the per-byte path below fetches at each step); stops before anything else — the
    /// list's start or end, an item cut by a piece's edge, text that is not a digest —
    /// and leaves it to [`Self::next_digest`], which reads it or says what is wrong.
    fn decode_held(&mut self, out: &mut Vec<u8>) {
        if self.at != At::Listed {
            return;
        }
        let held = &self.buf[..];
        let mut at = self.pos;
        loop {
            let mut p = space(held, at);
            if held.get(p) != Some(&b',') {
                break;
            }
            p = space(held, p + 1);
            let Some(digest) = held.get(p..p + 66).and_then(decode_digest) else { break };
            out.extend_from_slice(&digest);
            self.read += 1;
            at = p + 66;
        }
        self.pos = at;
    }

    /// The next digest, or `None` where the list ends.
    fn next_digest(&mut self) -> Result<Option<[u8; 32]>, DriverError> {
        match self.at {
            At::Ended => return Ok(None),
            At::Start => {
                if self.take(1)? != b"[" {
                    return Err(bad("sha256s is not a list"));
                }
                self.skip_space()?;
                if self.peek()? == Some(b']') {
                    self.pos += 1;
                    self.at = At::Ended;
                    return Ok(None);
                }
            }
            At::Listed => {
                self.skip_space()?;
                match self.take(1)? {
                    b"," => self.skip_space()?,
                    b"]" => {
                        self.at = At::Ended;
                        return Ok(None);
                    }
                    _ => return Err(bad(NOT_A_DIGEST)),
                }
            }
        }
        let digest = decode_digest(self.take(66)?).ok_or_else(|| bad(NOT_A_DIGEST))?;
        self.at = At::Listed;
        self.read += 1;
        Ok(Some(digest))
    }

    /// Fetch the piece after what is held; `false` when nothing came (the file's end).
    fn fill(&mut self) -> Result<bool, DriverError> {
        if self.eof {
            return Ok(false);
        }
        let piece = (self.fetch)(self.next, self.piece)?;
        let got = piece.len();
        if got > self.piece as usize {
            return Err(DriverError::Io(format!("asked for {} bytes of a sha256file, got {got}", self.piece)));
        }
        self.eof = got < self.piece as usize;
        self.next += got as u64;
        if self.pos == self.buf.len() {
            // All read: the piece takes the buffer's place (no copy).
            self.buf = piece;
        } else {
            self.buf.drain(..self.pos);
            self.buf.extend_from_slice(&piece);
        }
        self.pos = 0;
        Ok(got > 0)
    }

    /// The next byte, fetching when needed; `None` at the file's end.
    fn peek(&mut self) -> Result<Option<u8>, DriverError> {
        while self.pos == self.buf.len() {
            if !self.fill()? {
                return Ok(None);
            }
        }
        Ok(Some(self.buf[self.pos]))
    }

    fn skip_space(&mut self) -> Result<(), DriverError> {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek()? {
            self.pos += 1;
        }
        Ok(())
    }

    /// The next `n` bytes, fetching when needed.
    fn take(&mut self, n: usize) -> Result<&[u8], DriverError> {
        while self.buf.len() - self.pos < n {
            if !self.fill()? {
                return Err(bad("it ends in its list"));
            }
        }
        self.pos += n;
        Ok(&self.buf[self.pos - n..self.pos])
    }
}

/// What the first bytes of a sha256file tell.
#[derive(Debug, PartialEq, Eq)]
enum Scan {
    /// The header goes on past them.
    More,
    /// The list's value starts at `start`; `block` is the `chunk_size` given before it.
    List { start: usize, block: Option<u64> },
}

/// Find where the `sha256s` list starts in `b`, the file's first bytes, and the
/// `chunk_size` before it. Other values are only skipped: [`Reader::read_to_end`] has
/// serde check the whole file.
fn scan_header(b: &[u8]) -> Result<Scan, DriverError> {
    let mut at = space(b, 0);
    match b.get(at) {
        None => return Ok(Scan::More),
        Some(b'{') => at += 1,
        Some(_) => return Err(bad("it is not a JSON object")),
    }
    let mut block = None;
    loop {
        at = space(b, at);
        match b.get(at) {
            None => return Ok(Scan::More),
            Some(b'"') => {}
            Some(_) => return Err(bad("no sha256s")),
        }
        let Some(end) = value_end(b, at) else { return Ok(Scan::More) };
        let key: String = serde_json::from_slice(&b[at..end]).map_err(bad)?;
        at = space(b, end);
        match b.get(at) {
            None => return Ok(Scan::More),
            Some(b':') => at = space(b, at + 1),
            Some(_) => return Err(bad("a key without a value")),
        }
        if at == b.len() {
            return Ok(Scan::More);
        }
        if key == "sha256s" {
            return Ok(Scan::List { start: at, block });
        }
        let Some(end) = value_end(b, at) else { return Ok(Scan::More) };
        if key == "chunk_size" {
            block = Some(serde_json::from_slice(&b[at..end]).map_err(bad)?);
        }
        at = space(b, end);
        match b.get(at) {
            None => return Ok(Scan::More),
            Some(b',') => at += 1,
            Some(_) => return Err(bad("no sha256s")),
        }
    }
}

fn space(b: &[u8], mut at: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = b.get(at) {
        at += 1;
    }
    at
}

/// Where the JSON value at `b[at]` ends (a string, a number or literal, an object or
/// array); `None` when `b` ends first.
fn value_end(b: &[u8], at: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = at;
    loop {
        match *b.get(i)? {
            b'"' => {
                i = string_end(b, i)?;
                if depth == 0 {
                    return Some(i);
                }
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' if depth == 0 => return Some(i),
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            b',' | b':' | b' ' | b'\n' | b'\r' | b'\t' if depth == 0 => return Some(i),
            _ => {}
        }
        i += 1;
    }
}

/// Past the closing quote of the string that opens at `b[at]`.
fn string_end(b: &[u8], at: usize) -> Option<usize> {
    let mut i = at + 1;
    loop {
        match *b.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sha256file::tests::{digests, info};
    use crate::sha256file::{json, parse};

    /// A reader of `text` in pieces of `piece` bytes.
    fn reader(text: &[u8], piece: u32) -> Result<Option<Reader<impl Fetch>>, DriverError> {
        let text = text.to_vec();
        Reader::with_piece(
            move |offset, length| {
                let start = usize::try_from(offset).unwrap().min(text.len());
                Ok(text[start..(start + length as usize).min(text.len())].to_vec())
            },
            piece,
        )
    }

    #[test]
    fn reads_what_parse_reads_in_pieces_of_any_size() {
        for n in [0usize, 1, 2, 3, 100, 4097] {
            let text = json(&info(), 32_768, &digests(n));
            for piece in [1, 7, 66, 67, 4096, PIECE] {
                let r = reader(text.as_bytes(), piece).unwrap().expect("chunk_size comes first");
                assert_eq!(r.block_size(), 32_768);
                let mut all = Vec::new();
                r.read_to_end(&mut all).unwrap();
                assert_eq!((32_768, all), parse(text.clone().into_bytes()).unwrap(), "{n} digests in {piece}");
            }
        }
    }

    #[test]
    fn gives_each_object_its_blocks_in_order() {
        let shas = digests(100);
        let text = json(&info(), 4096, &shas);
        let mut r = reader(text.as_bytes(), 100).unwrap().unwrap();
        let mut out = Vec::new();
        assert!(r.blocks(0, 3, &mut out).unwrap());
        assert_eq!(out, shas[..96]);
        out.clear();
        assert!(r.blocks(10, 2, &mut out).unwrap(), "blocks 3 to 9 passed over");
        assert_eq!(out, shas[320..384]);
        assert!(!r.blocks(5, 1, &mut out).unwrap(), "behind");
        assert!(!r.blocks(99, 2, &mut out).unwrap(), "past the list's end");
        assert_eq!(out, shas[320..384], "nothing appended");
        assert!(!r.blocks(100, 1, &mut out).unwrap());
    }

    #[test]
    fn refuses_what_parse_refuses() {
        let d = "cd".repeat(32);
        for bad in [
            "{\"chunk_size\": 1, \"sha256s\": [\"zz\"]}".to_owned(),
            "{\"chunk_size\": 1}".into(),
            "[32768, []]".into(),
            "{\"chunk_size\": 1, \"sha256s\": []} x".into(),
            "{\"chunk_size\": 1, \"sha256s\": 5}".into(),
            "{\"chunk_size\": 1, \"sha256s\": {\"a\": 1}}".into(),
            "{\"chunk_size\": \"1\", \"sha256s\": []}".into(),
            "{\"chunk_size\": 1, \"sha256s\": []".into(),
            format!("{{\"chunk_size\": 1, \"sha256s\": [\"{d}\" \"{d}\"]}}"),
            format!("{{\"chunk_size\": 1, \"sha256s\": [\"{d}\",]}}"),
            format!("{{\"chunk_size\": 1, \"sha256s\": [\"{d}1\"]}}"),
            format!("{{\"chunk_size\": 1, \"sha256s\": [[\"{d}\"]]}}"),
            format!("{{\"chunk_size\": 1, \"sha256s\": [\"{d}\""),
            // A bad digit amid whole digests (the batch pass stops there; the rest says why).
            format!("{{\"chunk_size\": 1, \"sha256s\": [\"{d}\", \"{d}\", \"{}g\", \"{d}\"]}}", &d[..63]),
            format!("{{\"chunk_size\": 1, \"sha256s\": [\"{d}\", \"{d}\", \"{d}\" , , \"{d}\"]}}"),
        ] {
            for piece in [1, 5, 4096] {
                let read =
                    reader(bad.as_bytes(), piece).and_then(|r| r.map(|r| r.read_to_end(&mut Vec::new())).transpose());
                let err = read.expect_err(&bad).to_string();
                assert!(err.contains("sha256file is malformed"), "{bad}: {err}");
            }
            assert!(parse(bad.clone().into_bytes()).is_err(), "{bad}");
        }
        // A file that gives its block size or its list twice means two things: refused.
        let d = "ab".repeat(32);
        for twice in [
            "{\"chunk_size\": 1, \"sha256s\": [], \"chunk_size\": 2}".to_owned(),
            format!("{{\"chunk_size\": 1, \"sha256s\": [\"{d}\"], \"sha256s\": []}}"),
        ] {
            let err = reader(twice.as_bytes(), 7).unwrap().unwrap().read_to_end(&mut Vec::new()).unwrap_err();
            assert!(err.to_string().contains("is given twice"), "{err}");
            assert!(parse(twice.into_bytes()).unwrap_err().to_string().contains("is given twice"));
        }
    }

    #[test]
    fn leaves_files_without_an_early_chunk_size_to_parse() {
        let d = "ab".repeat(32);
        let late = format!("{{\"sha256s\": [\"{d}\"], \"chunk_size\": 4096}}");
        assert!(reader(late.as_bytes(), 7).unwrap().is_none());
        // Any spacing, other keys of any kind before the list, escapes in strings.
        let text = format!(
            "\n{{ \"x\\\"]\": {{\"y\": [1, \"]}}\"]}} ,\"chunk_size\"\t:4096,\"z\":null, \"sha256s\":[\n\"{d}\" ,\"{d}\"\t] }}"
        );
        let r = reader(text.as_bytes(), 3).unwrap().unwrap();
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        assert_eq!(all, [[0xab; 32], [0xab; 32]].concat());
        // Digits in either case, as `parse` takes them.
        let upper = format!("{{\"chunk_size\": 4096, \"sha256s\": [\"{d}\", \"{}\", \"{d}\"]}}", d.to_uppercase());
        let mut all = Vec::new();
        reader(upper.as_bytes(), PIECE).unwrap().unwrap().read_to_end(&mut all).unwrap();
        assert_eq!(all, [[0xab; 32]; 3].concat());
        assert_eq!(parse(upper.into_bytes()).unwrap().1, all);
    }

    #[test]
    fn a_store_error_or_an_overlong_piece_is_an_error() {
        let failing = Reader::with_piece(|_, _| Err(DriverError::Io("down".into())), 16);
        assert_eq!(failing.err().unwrap().to_string(), DriverError::Io("down".into()).to_string());
        let overlong = Reader::with_piece(|_, n| Ok(vec![b' '; n as usize + 1]), 16);
        assert!(overlong.err().unwrap().to_string().contains("got 17"));
    }
}
