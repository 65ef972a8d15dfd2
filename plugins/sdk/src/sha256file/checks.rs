//! A backup's sha256file as a restore checks its objects with it: whole, or in pieces
//! from a store that reads ranges.

use super::{Fetch, Reader};
use crate::cinder;

/// The SHA-256s a restore checks each object against.
pub enum Checks<F> {
    /// No usable sha256file, or the operator turned checks off: the metadata's MD5s.
    Md5,
    Whole {
        block: u32,
        digests: Vec<u8>,
    },
    Pieces {
        block: u32,
        reader: Reader<F>,
        /// The current object's digests.
        object: Vec<u8>,
    },
}

impl<F: Fetch> Checks<F> {
    /// Checks read from `reader` as the objects come, in volume order.
    pub fn pieces(block: u32, reader: Reader<F>) -> Self {
        Checks::Pieces { block, reader, object: Vec::new() }
    }

    /// The block size and digests of the uncompressed object at `offset`, `length`
    /// bytes long; `None`: check it by its MD5 (an object off the block grid, behind
    /// the reader or past the list's end, or a file that turned out unreadable, from
    /// there on).
    pub fn object(&mut self, offset: u64, length: u64) -> Option<(u32, &[u8])> {
        if let Checks::Pieces { block, reader, object } = self {
            let size = u64::from(*block);
            if !offset.is_multiple_of(size) {
                return None;
            }
            object.clear();
            match reader.blocks(offset / size, length.div_ceil(size), object) {
                Ok(true) => {}
                Ok(false) => return None,
                Err(_) => {
                    *self = Checks::Md5;
                    return None;
                }
            }
        }
        match self {
            Checks::Md5 => None,
            Checks::Whole { block, digests } => {
                cinder::object_digests(*block, digests, offset, length).map(|d| (*block, d))
            }
            Checks::Pieces { block, object, .. } => Some((*block, object)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DriverError;
    use crate::sha256file::json;
    use crate::sha256file::tests::{digests, info};

    #[test]
    fn each_object_gets_its_blocks_or_falls_back_to_md5() {
        let shas = digests(10);
        let text = json(&info(), 4096, &shas);
        let fetch = move |offset: u64, length: u32| {
            let start = (offset as usize).min(text.len());
            Ok(text.as_bytes()[start..(start + length as usize).min(text.len())].to_vec())
        };
        let mut whole =
            Checks::<fn(u64, u32) -> Result<Vec<u8>, DriverError>>::Whole { block: 4096, digests: shas.clone() };
        let mut pieces = Checks::pieces(4096, Reader::with_piece(fetch, 50).unwrap().unwrap());
        for (offset, length, expected) in [
            (0, 8192, Some(&shas[..64])),
            (8192, 5000, Some(&shas[64..128])),
            (4096 * 5 + 1, 10, None),
            (4096 * 6, 4096 * 4, Some(&shas[192..320])),
            (4096 * 9, 4096 * 2, None),
        ] {
            assert_eq!(
                whole.object(offset, length).map(|(b, d)| (b, d.to_vec())),
                expected.map(|d| (4096, d.to_vec()))
            );
            assert_eq!(
                pieces.object(offset, length).map(|(b, d)| (b, d.to_vec())),
                expected.map(|d| (4096, d.to_vec()))
            );
        }
        assert!(pieces.object(0, 4096).is_none(), "behind the reader");
        let broken = |_: u64, _: u32| Err(DriverError::Io("gone".into()));
        let header = json(&info(), 4096, &shas);
        // The first piece holds the header and a digest or so; the next fetch fails.
        let first = header.find("sha256s").unwrap() as u32 + 100;
        let mut served = false;
        let mut flaky = Checks::pieces(
            4096,
            Reader::with_piece(
                move |offset: u64, length: u32| {
                    if std::mem::replace(&mut served, true) {
                        return broken(offset, length);
                    }
                    Ok(header.as_bytes()[..length as usize].to_vec())
                },
                first,
            )
            .unwrap()
            .unwrap(),
        );
        assert!(flaky.object(0, 4096 * 10).is_none(), "the store failed mid-file");
        assert!(matches!(flaky, Checks::Md5));
    }
}
