//! SHA-256 of four buffers at once with the CPU's SHA instructions (SHA-NI). One
//! message is a chain of `sha256rnds2` steps, each waiting for the last: one chain
//! at a time ran at 1.4–1.5 GB/s on an AMD EPYC (Zen 3), where four independent
//! chains with their steps interleaved ran at 2.7–3.0 (32 KiB blocks; `openssl speed
//! -evp sha256` 1.54; eight chains spill registers and ran slower than four).

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use crate::sha256_lanes::{IV, K, finish};

/// How many chains run together.
pub const WAYS: usize = 4;

/// True when this CPU has the instructions [`sha256_group`] needs.
pub fn available() -> bool {
    is_x86_feature_detected!("sha") && is_x86_feature_detected!("ssse3") && is_x86_feature_detected!("sse4.1")
}

/// The SHA-256 of each of up to [`WAYS`] buffers into `out`: their common whole
/// 64-byte blocks together, each one's rest and padding on its own.
///
/// # Safety
/// The CPU must have SHA-NI, SSSE3 and SSE4.1 ([`available`]).
pub unsafe fn sha256_group(bufs: &[&[u8]], out: &mut [[u8; 32]]) {
    assert!(bufs.len() == out.len() && bufs.len() <= WAYS, "one digest per buffer, at most {WAYS}");
    // SAFETY (each arm): the caller's promise about the CPU.
    unsafe {
        match bufs.len() {
            4 => group::<4>(bufs, out),
            3 => group::<3>(bufs, out),
            2 => group::<2>(bufs, out),
            1 => group::<1>(bufs, out),
            _ => {}
        }
    }
}

/// The SHA-256 of each buffer into `out`, [`WAYS`] at a time.
///
/// # Safety
/// The CPU must have SHA-NI, SSSE3 and SSE4.1 ([`available`]).
pub unsafe fn sha256_all(bufs: &[&[u8]], out: &mut [[u8; 32]]) {
    for (b, o) in bufs.chunks(WAYS).zip(out.chunks_mut(WAYS)) {
        // SAFETY: the caller's promise about the CPU.
        unsafe { sha256_group(b, o) };
    }
}

/// A state as SHA-NI keeps it: words A, B, E, F in one register, C, D, G, H in the other.
#[derive(Clone, Copy)]
struct State {
    abef: __m128i,
    cdgh: __m128i,
}

#[target_feature(enable = "sha,ssse3,sse4.1")]
fn group<const N: usize>(bufs: &[&[u8]], out: &mut [[u8; 32]]) {
    let common = bufs.iter().map(|b| b.len() / 64).min().unwrap_or(0);
    let mut states = [to_registers(&IV); N];
    for block in 0..common {
        let ptrs: [*const u8; N] = std::array::from_fn(|n| bufs[n][block * 64..].as_ptr());
        // SAFETY: every buffer has at least `common` whole blocks: 64 bytes from each pointer.
        unsafe { compress(&mut states, ptrs) };
    }
    for ((b, o), s) in bufs.iter().zip(out.iter_mut()).zip(states) {
        let mut words = from_registers(s);
        *o = finish(&mut words, &b[common * 64..], b.len() as u64);
    }
}

#[target_feature(enable = "sha,ssse3,sse4.1")]
fn to_registers(s: &[u32; 8]) -> State {
    // SAFETY: 32 bytes read from a [u32; 8].
    let (dcba, efgh) = unsafe { (_mm_loadu_si128(s.as_ptr().cast()), _mm_loadu_si128(s.as_ptr().add(4).cast())) };
    let cdab = _mm_shuffle_epi32::<0xB1>(dcba);
    let efhg = _mm_shuffle_epi32::<0x1B>(efgh);
    State { abef: _mm_alignr_epi8::<8>(cdab, efhg), cdgh: _mm_blend_epi16::<0xF0>(efhg, cdab) }
}

#[target_feature(enable = "sha,ssse3,sse4.1")]
fn from_registers(s: State) -> [u32; 8] {
    let feba = _mm_shuffle_epi32::<0x1B>(s.abef);
    let dchg = _mm_shuffle_epi32::<0xB1>(s.cdgh);
    let mut words = [0u32; 8];
    // SAFETY: 32 bytes written into a [u32; 8].
    unsafe {
        _mm_storeu_si128(words.as_mut_ptr().cast(), _mm_blend_epi16::<0xF0>(feba, dchg));
        _mm_storeu_si128(words.as_mut_ptr().add(4).cast(), _mm_alignr_epi8::<8>(dchg, feba));
    }
    words
}

/// One 64-byte block into each of the `N` states, the chains' steps interleaved so
/// that the core works on one while the others wait for their last step.
///
/// # Safety
/// Each pointer must be valid for reads of 64 bytes; the CPU must have SHA-NI.
#[inline]
#[target_feature(enable = "sha,ssse3,sse4.1")]
unsafe fn compress<const N: usize>(states: &mut [State; N], ptrs: [*const u8; N]) {
    let swap = _mm_set_epi64x(0x0C0D_0E0F_0809_0A0B, 0x0405_0607_0001_0203);
    let saved = *states;
    // Message words of each chain, four at a time: the last four groups the schedule needs.
    // SAFETY: the caller's promise.
    let mut w: [[__m128i; 4]; N] = std::array::from_fn(|n| {
        std::array::from_fn(|j| _mm_shuffle_epi8(unsafe { _mm_loadu_si128(ptrs[n].add(16 * j).cast()) }, swap))
    });
    for i in 0..16 {
        // SAFETY: 4 × i + 4 ≤ 64 words of K.
        let k = unsafe { _mm_loadu_si128(K.as_ptr().add(4 * i).cast()) };
        for (s, w) in states.iter_mut().zip(w.iter_mut()) {
            if i >= 4 {
                let (w0, w1, w2, w3) = (w[i % 4], w[(i + 1) % 4], w[(i + 2) % 4], w[(i + 3) % 4]);
                let t = _mm_add_epi32(_mm_sha256msg1_epu32(w0, w1), _mm_alignr_epi8::<4>(w3, w2));
                w[i % 4] = _mm_sha256msg2_epu32(t, w3);
            }
            let wk = _mm_add_epi32(w[i % 4], k);
            s.cdgh = _mm_sha256rnds2_epu32(s.cdgh, s.abef, wk);
            s.abef = _mm_sha256rnds2_epu32(s.abef, s.cdgh, _mm_shuffle_epi32::<0x0E>(wk));
        }
    }
    for (s, v) in states.iter_mut().zip(saved) {
        s.abef = _mm_add_epi32(s.abef, v.abef);
        s.cdgh = _mm_add_epi32(s.cdgh, v.cdgh);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_sha2_for_every_group_size_and_length() {
        if !available() {
            eprintln!("this CPU has no SHA-NI: nothing to check");
            return;
        }
        let data: Vec<u8> = (0..100_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        let lens = [0usize, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 4096, 32_768, 70_000];
        for n in 1..=WAYS {
            for first in 0..lens.len() {
                // Lengths differ within a group, so that its chains stop at different blocks.
                let bufs: Vec<&[u8]> = (0..n).map(|i| &data[i * 13..][..lens[(first + i * 3) % lens.len()]]).collect();
                let mut out = vec![[0u8; 32]; n];
                // SAFETY: checked above.
                unsafe { sha256_group(&bufs, &mut out) };
                for (i, (b, o)) in bufs.iter().zip(&out).enumerate() {
                    assert_eq!(*o, crate::digest::sha256(b), "buffer {i} of {n} ({} bytes)", b.len());
                }
            }
        }
    }
}
