//! Per-core rates of the kernels a backup runs over every byte, on this CPU:
//! `cargo run --release -p holdfast-chunk --example kernels`.
//!
//! The pipeline picks its SHA-256 and MD5 paths by CPU feature; these rates say
//! whether that pick is right on a given machine (AVX-512 is double-pumped on
//! some cores, SHA-NI fast on others), and what zstd costs on each kind of data.
//! Each kernel runs over one 8 MiB input that stays in cache: rates of the core, not
//! of freshly read buffers (a backup's zero check reads memory, not cache).

use std::time::{Duration, Instant};

use holdfast_chunk::codec::Compressor;
use holdfast_chunk::{digest, md5_lanes, sha256_lanes};

const BLOCK: usize = 32 * 1024;
const READ: usize = 8 << 20;

fn main() {
    let random = prng_bytes(READ, 1);
    let text = text_bytes(READ);
    let blocks: Vec<&[u8]> = random.chunks(BLOCK).collect();

    let mut out = vec![[0u8; 32]; blocks.len()];
    rate("SHA-256, 256 blocks of 32 KiB, the pipeline's pick", READ, || {
        sha256_lanes::sha256_many(&blocks, &mut out);
        std::hint::black_box(&out);
    });
    println!("SHA-256 path the pipeline takes here: {:?}", sha256_lanes::path());
    #[cfg(target_arch = "x86_64")]
    if holdfast_chunk::sha256_ni::available() {
        rate("SHA-256, 256 blocks of 32 KiB, SHA-NI 4 chains", READ, || {
            // SAFETY: checked just above.
            unsafe { holdfast_chunk::sha256_ni::sha256_all(&blocks, &mut out) };
            std::hint::black_box(&out);
        });
    }
    if sha256_lanes::lanes_available() {
        rate("SHA-256, 256 blocks of 32 KiB, AVX-512 16 lanes", READ, || {
            sha256_lanes::sixteen_lanes(&blocks, &mut out);
            std::hint::black_box(&out);
        });
    }
    rate("SHA-256, 256 blocks of 32 KiB, sha2 each", READ, || {
        for (b, o) in blocks.iter().zip(out.iter_mut()) {
            *o = digest::sha256(b);
        }
        std::hint::black_box(&out);
    });

    let objects: Vec<&[u8]> = random.chunks(1 << 20).collect();
    rate("MD5, 8 objects of 1 MiB, lanes", READ, || {
        std::hint::black_box(md5_lanes::md5_many(&objects));
    });
    rate("MD5, 8 objects of 1 MiB, md-5 each", READ, || {
        for o in &objects {
            std::hint::black_box(digest::md5(o));
        }
    });

    let mut c = Compressor::new();
    let mut room = vec![0u8; 1 << 20];
    for (name, data) in [("text", &text), ("random", &random)] {
        rate(&format!("zstd-1, 1 MiB objects, {name}"), READ, || {
            for o in data.chunks(1 << 20) {
                std::hint::black_box(c.zstd_into(o, &mut room[..o.len() - 1]).unwrap());
            }
        });
    }
    let zeros = vec![0u8; READ];
    rate("zero check, 8 MiB of zeros", READ, || {
        std::hint::black_box(digest::is_zero(std::hint::black_box(&zeros)));
    });
}

/// Runs `f` (over `bytes` each time) for about a second; prints MB/s per core.
fn rate(name: &str, bytes: usize, mut f: impl FnMut()) {
    f();
    let start = Instant::now();
    let mut n = 0usize;
    while start.elapsed() < Duration::from_secs(1) {
        f();
        n += 1;
    }
    let mbs = (n * bytes) as f64 / start.elapsed().as_secs_f64() / 1e6;
    println!("{name:<45} {mbs:>8.0} MB/s");
}

fn prng_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n / 8)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .collect()
}

/// The bench volume's text runs (`holdfast bench`'s `fill_run`): skewed words, some numbers.
fn text_bytes(n: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "the",
        "backup",
        "volume",
        "of",
        "and",
        "cinder",
        "to",
        "block",
        "a",
        "snapshot",
        "data",
        "in",
        "restore",
        "chunk",
        "object",
        "is",
        "storage",
        "driver",
        "for",
        "incremental",
        "with",
        "on",
        "metadata",
        "error",
    ];
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut s = Vec::with_capacity(n + 32);
    while s.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let w = WORDS[((x % 1000) * (x % 1000) / 1000 * WORDS.len() as u64 / 1000) as usize];
        let piece = if x & 0xf00 == 0 { format!("{w} {} ", x % 10_000) } else { format!("{w} ") };
        s.extend_from_slice(piece.as_bytes());
    }
    s.truncate(n);
    s
}
