//! MD5 of two buffers at once. One MD5 is a single chain of dependent additions and
//! rotations, so a core runs it at a fraction of its width; two independent chains
//! interleaved in one loop run side by side (1.2–1.5× the two one after the other,
//! measured here). The host needs two MD5s of the same object where it is busiest: a
//! backup's raw and stored bytes (Cinder's metadata and the object store's Content-MD5).

pub(crate) const INIT: [u32; 4] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];

#[inline(always)]
fn f(b: u32, c: u32, d: u32) -> u32 {
    d ^ (b & (c ^ d))
}
#[inline(always)]
fn g(b: u32, c: u32, d: u32) -> u32 {
    c ^ (d & (b ^ c))
}
#[inline(always)]
fn h(b: u32, c: u32, d: u32) -> u32 {
    b ^ c ^ d
}
#[inline(always)]
fn i(b: u32, c: u32, d: u32) -> u32 {
    c ^ (b | !d)
}

fn words(block: &[u8]) -> [u32; 16] {
    let mut m = [0u32; 16];
    for (w, c) in m.iter_mut().zip(block.chunks_exact(4)) {
        *w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    m
}

/// One 64-byte block of each stream, their steps interleaved.
#[inline(always)]
fn compress2(sa: &mut [u32; 4], sb: &mut [u32; 4], ba: &[u8], bb: &[u8]) {
    let (ma, mb) = (words(ba), words(bb));
    let (mut a, mut b, mut c, mut d) = ((sa[0], sb[0]), (sa[1], sb[1]), (sa[2], sb[2]), (sa[3], sb[3]));
    macro_rules! step {
        ($f:ident, $a:ident, $b:ident, $c:ident, $d:ident, $k:expr, $g:expr, $s:expr) => {
            $a.0 = $b.0.wrapping_add(
                $a.0.wrapping_add($f($b.0, $c.0, $d.0)).wrapping_add($k).wrapping_add(ma[$g]).rotate_left($s),
            );
            $a.1 = $b.1.wrapping_add(
                $a.1.wrapping_add($f($b.1, $c.1, $d.1)).wrapping_add($k).wrapping_add(mb[$g]).rotate_left($s),
            );
        };
    }
    step!(f, a, b, c, d, 0xd76aa478, 0, 7);
    step!(f, d, a, b, c, 0xe8c7b756, 1, 12);
    step!(f, c, d, a, b, 0x242070db, 2, 17);
    step!(f, b, c, d, a, 0xc1bdceee, 3, 22);
    step!(f, a, b, c, d, 0xf57c0faf, 4, 7);
    step!(f, d, a, b, c, 0x4787c62a, 5, 12);
    step!(f, c, d, a, b, 0xa8304613, 6, 17);
    step!(f, b, c, d, a, 0xfd469501, 7, 22);
    step!(f, a, b, c, d, 0x698098d8, 8, 7);
    step!(f, d, a, b, c, 0x8b44f7af, 9, 12);
    step!(f, c, d, a, b, 0xffff5bb1, 10, 17);
    step!(f, b, c, d, a, 0x895cd7be, 11, 22);
    step!(f, a, b, c, d, 0x6b901122, 12, 7);
    step!(f, d, a, b, c, 0xfd987193, 13, 12);
    step!(f, c, d, a, b, 0xa679438e, 14, 17);
    step!(f, b, c, d, a, 0x49b40821, 15, 22);
    step!(g, a, b, c, d, 0xf61e2562, 1, 5);
    step!(g, d, a, b, c, 0xc040b340, 6, 9);
    step!(g, c, d, a, b, 0x265e5a51, 11, 14);
    step!(g, b, c, d, a, 0xe9b6c7aa, 0, 20);
    step!(g, a, b, c, d, 0xd62f105d, 5, 5);
    step!(g, d, a, b, c, 0x02441453, 10, 9);
    step!(g, c, d, a, b, 0xd8a1e681, 15, 14);
    step!(g, b, c, d, a, 0xe7d3fbc8, 4, 20);
    step!(g, a, b, c, d, 0x21e1cde6, 9, 5);
    step!(g, d, a, b, c, 0xc33707d6, 14, 9);
    step!(g, c, d, a, b, 0xf4d50d87, 3, 14);
    step!(g, b, c, d, a, 0x455a14ed, 8, 20);
    step!(g, a, b, c, d, 0xa9e3e905, 13, 5);
    step!(g, d, a, b, c, 0xfcefa3f8, 2, 9);
    step!(g, c, d, a, b, 0x676f02d9, 7, 14);
    step!(g, b, c, d, a, 0x8d2a4c8a, 12, 20);
    step!(h, a, b, c, d, 0xfffa3942, 5, 4);
    step!(h, d, a, b, c, 0x8771f681, 8, 11);
    step!(h, c, d, a, b, 0x6d9d6122, 11, 16);
    step!(h, b, c, d, a, 0xfde5380c, 14, 23);
    step!(h, a, b, c, d, 0xa4beea44, 1, 4);
    step!(h, d, a, b, c, 0x4bdecfa9, 4, 11);
    step!(h, c, d, a, b, 0xf6bb4b60, 7, 16);
    step!(h, b, c, d, a, 0xbebfbc70, 10, 23);
    step!(h, a, b, c, d, 0x289b7ec6, 13, 4);
    step!(h, d, a, b, c, 0xeaa127fa, 0, 11);
    step!(h, c, d, a, b, 0xd4ef3085, 3, 16);
    step!(h, b, c, d, a, 0x04881d05, 6, 23);
    step!(h, a, b, c, d, 0xd9d4d039, 9, 4);
    step!(h, d, a, b, c, 0xe6db99e5, 12, 11);
    step!(h, c, d, a, b, 0x1fa27cf8, 15, 16);
    step!(h, b, c, d, a, 0xc4ac5665, 2, 23);
    step!(i, a, b, c, d, 0xf4292244, 0, 6);
    step!(i, d, a, b, c, 0x432aff97, 7, 10);
    step!(i, c, d, a, b, 0xab9423a7, 14, 15);
    step!(i, b, c, d, a, 0xfc93a039, 5, 21);
    step!(i, a, b, c, d, 0x655b59c3, 12, 6);
    step!(i, d, a, b, c, 0x8f0ccc92, 3, 10);
    step!(i, c, d, a, b, 0xffeff47d, 10, 15);
    step!(i, b, c, d, a, 0x85845dd1, 1, 21);
    step!(i, a, b, c, d, 0x6fa87e4f, 8, 6);
    step!(i, d, a, b, c, 0xfe2ce6e0, 15, 10);
    step!(i, c, d, a, b, 0xa3014314, 6, 15);
    step!(i, b, c, d, a, 0x4e0811a1, 13, 21);
    step!(i, a, b, c, d, 0xf7537e82, 4, 6);
    step!(i, d, a, b, c, 0xbd3af235, 11, 10);
    step!(i, c, d, a, b, 0x2ad7d2bb, 2, 15);
    step!(i, b, c, d, a, 0xeb86d391, 9, 21);
    for (s, (x, y)) in [(0, a), (1, b), (2, c), (3, d)] {
        sa[s] = sa[s].wrapping_add(x);
        sb[s] = sb[s].wrapping_add(y);
    }
}

/// The padded last block(s) of a message of `len` bytes whose final partial block is `tail`.
fn padding(tail: &[u8], len: u64) -> ([u8; 128], usize) {
    let mut last = [0u8; 128];
    last[..tail.len()].copy_from_slice(tail);
    last[tail.len()] = 0x80;
    let n = if tail.len() < 56 { 64 } else { 128 };
    last[n - 8..n].copy_from_slice(&(len.wrapping_mul(8)).to_le_bytes());
    (last, n)
}

/// The digest of a message of `len` bytes whose blocks before `rest` left `state`.
pub(crate) fn finish(mut state: [u32; 4], rest: &[u8], len: u64) -> [u8; 16] {
    // The full blocks as they lie (no copy: this may be most of a buffer).
    let (full, tail) = rest.as_chunks::<64>();
    md5::block_api::compress(&mut state, full);
    let (last, n) = padding(tail, len);
    md5::block_api::compress(&mut state, last[..n].as_chunks::<64>().0);
    let mut out = [0u8; 16];
    for (o, w) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&w.to_le_bytes());
    }
    out
}

/// The MD5 digests of `a` and of `b`.
pub fn md5_pair(a: &[u8], b: &[u8]) -> ([u8; 16], [u8; 16]) {
    finish_pair((INIT, a, a.len() as u64), (INIT, b, b.len() as u64))
}

/// A message part way: the state its blocks so far left, the rest of it, its whole length.
pub(crate) type Partial<'a> = ([u32; 4], &'a [u8], u64);

/// Two messages finished side by side, each given as (the state its blocks before
/// `rest` left, `rest`, the message's whole length): the last two lanes of
/// [`crate::md5_lanes`] go on here, where a vector step would carry six idle lanes.
pub(crate) fn finish_pair((mut sa, a, la): Partial<'_>, (mut sb, b, lb): Partial<'_>) -> ([u8; 16], [u8; 16]) {
    let common = a.len().min(b.len()) / 64 * 64;
    for (ba, bb) in a[..common].chunks_exact(64).zip(b[..common].chunks_exact(64)) {
        compress2(&mut sa, &mut sb, ba, bb);
    }
    (finish(sa, &a[common..], la), finish(sb, &b[common..], lb))
}

#[cfg(test)]
mod tests {
    use super::*;
    use md5::{Digest, Md5};

    #[test]
    fn matches_md5_for_every_length_pairing() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        let lens = [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 4999, 5000];
        for &la in &lens {
            for &lb in &lens {
                let (a, b) = (&data[..la], &data[data.len() - lb..]);
                let (da, db) = md5_pair(a, b);
                assert_eq!(da, <[u8; 16]>::from(Md5::digest(a)), "a of {la} beside {lb}");
                assert_eq!(db, <[u8; 16]>::from(Md5::digest(b)), "b of {lb} beside {la}");
            }
        }
    }
}
