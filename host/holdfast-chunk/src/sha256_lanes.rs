//! SHA-256 of many buffers at once. A backup hashes every 32 KiB sha block of a
//! volume, and one read gives 256 of them: independent chains, hashed together.
//! With SHA-NI, four chains interleaved (`sha256_ni`): 2.7–3.0 GB/s per core on an AMD
//! EPYC (Zen 3) against 1.4–1.5 one chain at a time. With AVX-512, sixteen chains in the
//! lanes of its registers: 1.85–2.0 GB/s on a 2.1 GHz Xeon where SHA-NI one chain at a
//! time ran at 1.0–1.2. A CPU with both gets whichever it runs faster, timed once per
//! process on 1 MiB ([`path`]); without either, each buffer goes through `sha2`.
//! `cargo run --release -p holdfast-chunk --example kernels` prints each path's rate.

// Only x86-64 has the lanes; elsewhere `sha2` does all of it.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code, unused_mut))]

pub(crate) const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
    0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
    0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
    0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
];
pub(crate) const IV: [u32; 8] =
    [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

const LANES: usize = 16;

/// The SHA-256 of each buffer into `out`.
pub fn sha256_many(bufs: &[&[u8]], out: &mut [[u8; 32]]) {
    assert_eq!(bufs.len(), out.len(), "one digest per buffer");
    let at = match path() {
        #[cfg(target_arch = "x86_64")]
        Path::ShaNi => {
            // SAFETY: `path` picks SHA-NI only where the CPU has it.
            unsafe { crate::sha256_ni::sha256_all(bufs, out) };
            bufs.len()
        }
        Path::Lanes => sixteen_lanes(bufs, out),
        _ => 0,
    };
    for (b, o) in bufs[at..].iter().zip(&mut out[at..]) {
        *o = one(b);
    }
}

/// How [`sha256_many`] hashes on this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// Four SHA-NI chains interleaved.
    ShaNi,
    /// Sixteen AVX-512 lanes.
    Lanes,
    /// `sha2`, one buffer at a time.
    OneByOne,
}

/// The path this CPU runs: the only one it has, or — with both SHA-NI and AVX-512 —
/// the faster of the two over 32 blocks of 32 KiB, best of three tries each (~3 ms,
/// once per process): which wins depends on the core (AVX-512 is double-pumped on
/// some, SHA-NI's latency differs), and neither was measured on every kind.
pub fn path() -> Path {
    static PATH: std::sync::OnceLock<Path> = std::sync::OnceLock::new();
    *PATH.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            match (crate::sha256_ni::available(), lanes_available()) {
                (true, true) => race(),
                (true, false) => Path::ShaNi,
                (false, true) => Path::Lanes,
                (false, false) => Path::OneByOne,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Path::OneByOne
    })
}

/// SHA-NI against AVX-512 on 1 MiB; the faster one.
#[cfg(target_arch = "x86_64")]
fn race() -> Path {
    let data: Vec<u8> = (0..32u32 << 15).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let bufs: Vec<&[u8]> = data.chunks(32 << 10).collect();
    let best = |f: &mut dyn FnMut(&mut [[u8; 32]])| {
        let mut best = std::time::Duration::MAX;
        let mut out = vec![[0u8; 32]; bufs.len()];
        for _ in 0..3 {
            let t = std::time::Instant::now();
            f(&mut out);
            best = best.min(t.elapsed());
        }
        best
    };
    // SAFETY: only called where the CPU has SHA-NI.
    let ni = best(&mut |out| unsafe { crate::sha256_ni::sha256_all(&bufs, out) });
    let lanes = best(&mut |out| {
        sixteen_lanes(&bufs, out);
    });
    let path = if ni <= lanes { Path::ShaNi } else { Path::Lanes };
    tracing::debug!(?path, sha_ni_us = ni.as_micros() as u64, lanes_us = lanes.as_micros() as u64, "SHA-256 path");
    path
}

/// The first buffers' SHA-256 in sixteen AVX-512 lanes, sixteen at a time while more
/// than eight are left (sixteen lanes cost about what eight one-at-a-time hashes do);
/// returns how many it hashed: none without AVX-512.
pub fn sixteen_lanes(bufs: &[&[u8]], out: &mut [[u8; 32]]) -> usize {
    let mut at = 0;
    #[cfg(target_arch = "x86_64")]
    if lanes_available() {
        while bufs.len() - at > LANES / 2 {
            let n = (bufs.len() - at).min(LANES);
            // SAFETY: the CPU has the instructions the function is compiled for.
            unsafe { group_avx512(&bufs[at..at + n], &mut out[at..at + n]) };
            at += n;
        }
    }
    at
}

/// True when this CPU has the instructions [`sixteen_lanes`] needs.
pub fn lanes_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bw");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

fn one(b: &[u8]) -> [u8; 32] {
    crate::digest::sha256(b)
}

/// Up to sixteen buffers: their common whole 64-byte blocks in the lanes (a lane
/// without a buffer repeats the first), each one's rest and padding on its own.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
fn group_avx512(bufs: &[&[u8]], out: &mut [[u8; 32]]) {
    use std::arch::x86_64::*;
    let common = bufs.iter().map(|b| b.len() / 64).min().unwrap_or(0);
    let mut ptrs = [bufs[0].as_ptr(); LANES];
    for (p, b) in ptrs.iter_mut().zip(bufs) {
        *p = b.as_ptr();
    }
    let mut state: [__m512i; 8] = std::array::from_fn(|j| _mm512_set1_epi32(IV[j] as i32));
    for block in 0..common {
        // SAFETY: every lane has at least `common` whole blocks (unused lanes repeat lane 0).
        unsafe { compress_avx512(&mut state, &ptrs, block * 64) };
    }
    let mut words = [[0u32; LANES]; 8];
    for (w, s) in words.iter_mut().zip(state) {
        // SAFETY: 64 bytes into 64 bytes.
        unsafe { _mm512_storeu_si512(w.as_mut_ptr().cast(), s) };
    }
    for (l, (b, o)) in bufs.iter().zip(out.iter_mut()).enumerate() {
        let mut s: [u32; 8] = std::array::from_fn(|j| words[j][l]);
        *o = finish(&mut s, &b[common * 64..], b.len() as u64);
    }
}

/// The rest of a message from `state`: its remaining whole blocks, then the padding.
pub(crate) fn finish(state: &mut [u32; 8], rest: &[u8], total: u64) -> [u8; 32] {
    let (blocks, tail) = rest.as_chunks::<64>();
    sha2::block_api::compress256(state, blocks);
    let mut last = [0u8; 128];
    last[..tail.len()].copy_from_slice(tail);
    last[tail.len()] = 0x80;
    let n = if tail.len() < 56 { 64 } else { 128 };
    last[n - 8..n].copy_from_slice(&(total * 8).to_be_bytes());
    sha2::block_api::compress256(state, last[..n].as_chunks::<64>().0);
    let mut out = [0u8; 32];
    for (o, w) in out.chunks_exact_mut(4).zip(state.iter()) {
        o.copy_from_slice(&w.to_be_bytes());
    }
    out
}

/// One 64-byte block per lane, from byte `at` of each.
///
/// # Safety
/// Each pointer must be valid for reads of `at + 64` bytes; the CPU must have AVX-512F/BW.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn compress_avx512(state: &mut [std::arch::x86_64::__m512i; 8], ptrs: &[*const u8; LANES], at: usize) {
    use std::arch::x86_64::*;
    // Each lane's block as big-endian words, then transposed: w[t] holds word t of every lane.
    let swap = _mm512_set4_epi32(0x0c0d0e0f, 0x08090a0b, 0x04050607, 0x00010203);
    // SAFETY: the caller's promise.
    let r: [__m512i; 16] =
        std::array::from_fn(|l| _mm512_shuffle_epi8(unsafe { _mm512_loadu_si512(ptrs[l].add(at).cast()) }, swap));
    let t: [__m512i; 16] = std::array::from_fn(|i| match i % 2 {
        0 => _mm512_unpacklo_epi32(r[i], r[i + 1]),
        _ => _mm512_unpackhi_epi32(r[i - 1], r[i]),
    });
    let u: [__m512i; 16] = std::array::from_fn(|i| {
        let g = i / 4 * 4;
        match i % 4 {
            0 => _mm512_unpacklo_epi64(t[g], t[g + 2]),
            1 => _mm512_unpackhi_epi64(t[g], t[g + 2]),
            2 => _mm512_unpacklo_epi64(t[g + 1], t[g + 3]),
            _ => _mm512_unpackhi_epi64(t[g + 1], t[g + 3]),
        }
    });
    let mut w = [_mm512_setzero_si512(); 16];
    for j in 0..4 {
        let v0 = _mm512_shuffle_i32x4::<0x44>(u[j], u[4 + j]);
        let v1 = _mm512_shuffle_i32x4::<0xee>(u[j], u[4 + j]);
        let v2 = _mm512_shuffle_i32x4::<0x44>(u[8 + j], u[12 + j]);
        let v3 = _mm512_shuffle_i32x4::<0xee>(u[8 + j], u[12 + j]);
        w[j] = _mm512_shuffle_i32x4::<0x88>(v0, v2);
        w[4 + j] = _mm512_shuffle_i32x4::<0xdd>(v0, v2);
        w[8 + j] = _mm512_shuffle_i32x4::<0x88>(v1, v3);
        w[12 + j] = _mm512_shuffle_i32x4::<0xdd>(v1, v3);
    }
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
    macro_rules! round {
        ($a:ident, $b:ident, $c:ident, $d:ident, $e:ident, $f:ident, $g:ident, $h:ident, $t:expr) => {
            let s1 = _mm512_ternarylogic_epi32::<0x96>(
                _mm512_ror_epi32::<6>($e),
                _mm512_ror_epi32::<11>($e),
                _mm512_ror_epi32::<25>($e),
            );
            let ch = _mm512_ternarylogic_epi32::<0xca>($e, $f, $g);
            let kw = _mm512_add_epi32(_mm512_set1_epi32(K[$t] as i32), w[$t % 16]);
            let t1 = _mm512_add_epi32(_mm512_add_epi32($h, s1), _mm512_add_epi32(ch, kw));
            let s0 = _mm512_ternarylogic_epi32::<0x96>(
                _mm512_ror_epi32::<2>($a),
                _mm512_ror_epi32::<13>($a),
                _mm512_ror_epi32::<22>($a),
            );
            let maj = _mm512_ternarylogic_epi32::<0xe8>($a, $b, $c);
            $d = _mm512_add_epi32($d, t1);
            $h = _mm512_add_epi32(t1, _mm512_add_epi32(s0, maj));
        };
    }
    let mut t = 0;
    while t < 64 {
        if t >= 16 {
            for i in t..t + 8 {
                let x = w[(i + 1) % 16];
                let y = w[(i + 14) % 16];
                let s0 = _mm512_ternarylogic_epi32::<0x96>(
                    _mm512_ror_epi32::<7>(x),
                    _mm512_ror_epi32::<18>(x),
                    _mm512_srli_epi32::<3>(x),
                );
                let s1 = _mm512_ternarylogic_epi32::<0x96>(
                    _mm512_ror_epi32::<17>(y),
                    _mm512_ror_epi32::<19>(y),
                    _mm512_srli_epi32::<10>(y),
                );
                w[i % 16] = _mm512_add_epi32(_mm512_add_epi32(w[i % 16], s0), _mm512_add_epi32(w[(i + 9) % 16], s1));
            }
        }
        round!(a, b, c, d, e, f, g, h, t);
        round!(h, a, b, c, d, e, f, g, t + 1);
        round!(g, h, a, b, c, d, e, f, t + 2);
        round!(f, g, h, a, b, c, d, e, t + 3);
        round!(e, f, g, h, a, b, c, d, t + 4);
        round!(d, e, f, g, h, a, b, c, t + 5);
        round!(c, d, e, f, g, h, a, b, t + 6);
        round!(b, c, d, e, f, g, h, a, t + 7);
        t += 8;
    }
    for (s, v) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
        *s = _mm512_add_epi32(*s, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_is_one_this_cpu_has() {
        #[cfg(target_arch = "x86_64")]
        match path() {
            Path::ShaNi => assert!(crate::sha256_ni::available()),
            Path::Lanes => assert!(lanes_available()),
            Path::OneByOne => {}
        }
        eprintln!("SHA-256 path here: {:?}", path());
    }

    #[test]
    fn matches_sha2_for_every_count_and_length() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        let lens = [0usize, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 4096, 32_768, 70_000];
        for n in 0..=40 {
            // Lengths spread so that lanes run out at different times.
            let bufs: Vec<&[u8]> = (0..n).map(|i| &data[i * 7 % 50..][..lens[(i * 5 + n) % lens.len()]]).collect();
            let mut out = vec![[0u8; 32]; n];
            sha256_many(&bufs, &mut out);
            for (i, (b, o)) in bufs.iter().zip(&out).enumerate() {
                assert_eq!(*o, crate::digest::sha256(b), "buffer {i} of {n} ({} bytes)", b.len());
            }
            // The AVX-512 lanes too, which a CPU with SHA-NI does not pick.
            let mut lanes = vec![[0u8; 32]; n];
            let done = sixteen_lanes(&bufs, &mut lanes);
            for (i, (b, o)) in bufs.iter().zip(&lanes).take(done).enumerate() {
                assert_eq!(*o, crate::digest::sha256(b), "lane buffer {i} of {n} ({} bytes)", b.len());
            }
        }
        // Sixteen of one length: every lane through the vector path to the end.
        let bufs: Vec<&[u8]> = (0..16).map(|i| &data[i * 1000..][..32_768]).collect();
        let mut out = vec![[0u8; 32]; 16];
        sha256_many(&bufs, &mut out);
        for (b, o) in bufs.iter().zip(&out) {
            assert_eq!(*o, crate::digest::sha256(b));
        }
    }
}
