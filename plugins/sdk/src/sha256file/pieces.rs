//! A sha256file written in pieces while the backup runs, for stores that append: the
//! driver holds at most one piece of its text (the whole file is ~2.3 MB per GiB of
//! volume, and a driver's memory never shrinks).

use super::{DIGEST_TEXT, LIST_END, around_list};
use crate::{BackupInfo, DriverError, cinder};

/// Text that goes out at once: 1 MiB, the digests of about 450 MiB of volume.
pub const PIECE: usize = 1 << 20;

/// A sha256file being written: the header and the digests so far, less the pieces
/// already handed out.
pub struct Pieces {
    text: String,
    tail: String,
    digests: u64,
    /// Whether the first piece went out (it replaces the object; later ones append).
    started: bool,
    piece: usize,
}

impl Pieces {
    pub fn new(info: &BackupInfo, sha_block_size: u32) -> Pieces {
        Self::with_piece(info, sha_block_size, PIECE)
    }

    /// Pieces of about `piece` bytes (tests cut small ones).
    pub(crate) fn with_piece(info: &BackupInfo, sha_block_size: u32, piece: usize) -> Pieces {
        let (mut text, tail) = around_list(info, sha_block_size);
        text.reserve_exact(piece + DIGEST_TEXT);
        Pieces { text, tail, digests: 0, started: false, piece }
    }

    /// Add the digests of the next blocks (32 raw bytes each); each full piece goes to
    /// `out` with whether it is the file's first.
    pub fn push(
        &mut self,
        digests: &[u8],
        out: &mut impl FnMut(bool, &[u8]) -> Result<(), DriverError>,
    ) -> Result<(), DriverError> {
        for d in digests.chunks(32) {
            // As `write_list`: `[` or `,`, then `\n    "<64 hex>"`.
            self.text.push(if self.digests == 0 { '[' } else { ',' });
            self.text.push_str("\n    \"");
            cinder::push_hex(&mut self.text, d);
            self.text.push('"');
            self.digests += 1;
            if self.text.len() >= self.piece {
                self.emit(out)?;
            }
        }
        Ok(())
    }

    /// The list's end and the rest of the file, as the last piece.
    pub fn finish(mut self, out: &mut impl FnMut(bool, &[u8]) -> Result<(), DriverError>) -> Result<(), DriverError> {
        self.text.push_str(if self.digests == 0 { "[]" } else { LIST_END });
        let tail = std::mem::take(&mut self.tail);
        self.text.push_str(&tail);
        self.emit(out)
    }

    fn emit(&mut self, out: &mut impl FnMut(bool, &[u8]) -> Result<(), DriverError>) -> Result<(), DriverError> {
        out(!self.started, self.text.as_bytes())?;
        self.started = true;
        self.text.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sha256file::json;
    use crate::sha256file::tests::{digests, info};

    #[test]
    fn the_pieces_make_the_file_cinder_writes() {
        for (n, piece) in [(0, 1), (1, 1), (3, 100), (100, 1000), (4097, 7), (4097, PIECE)] {
            let shas = digests(n);
            let mut p = Pieces::with_piece(&info(), 32_768, piece);
            let (mut file, mut calls) = (Vec::new(), Vec::new());
            let mut out = |first: bool, bytes: &[u8]| {
                if first {
                    file.clear();
                }
                calls.push(first);
                file.extend_from_slice(bytes);
                Ok(())
            };
            for part in shas.chunks(32 * 5) {
                p.push(part, &mut out).unwrap();
            }
            p.finish(&mut out).unwrap();
            assert_eq!(String::from_utf8(file).unwrap(), json(&info(), 32_768, &shas), "{n} digests in {piece}");
            assert_eq!(calls.iter().filter(|&&first| first).count(), 1, "one first piece, then appends");
            assert!(calls[0]);
            let text = json(&info(), 32_768, &shas).len();
            assert!(calls.len() <= text / piece + 2, "{} pieces of {piece} for {text} bytes", calls.len());
        }
    }

    #[test]
    fn a_failed_piece_stops_the_file() {
        let mut p = Pieces::with_piece(&info(), 32_768, 100);
        let mut out = |_: bool, _: &[u8]| Err(DriverError::Io("the store is full".into()));
        let err = p.push(&digests(3), &mut out).unwrap_err();
        assert_eq!(err.to_string(), DriverError::Io("the store is full".into()).to_string());
    }
}
