//! The bench's volume and disk: the generated mixed volume (4 MiB runs, about half
//! zeros, a quarter text-like, a quarter random: the "mixed" set of
//! shared/docs/baselines.md), its 1 % change, cold reads (synced, dropped from the page
//! cache), the disk's own ceiling for a scan, and byte-for-byte comparison.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};

/// The mixed volume's runs.
const RUN: usize = 4 << 20;

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// One 4 MiB run of kind `i % 4` (0, 1: zeros; 2: text; 3: random), shuffled by a PRNG.
fn fill_run(rng: &mut XorShift, buf: &mut [u8]) {
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
    match rng.next() % 4 {
        0 | 1 => {
            // Written as data, not holes: the backup must read them.
            buf.fill(0);
        }
        2 => {
            let mut i = 0;
            while i < buf.len() {
                // Skewed choice: low indices far more often, like real text.
                let r = rng.next();
                let w = WORDS[((r % 1000) * (r % 1000) / 1000 * WORDS.len() as u64 / 1000) as usize];
                let piece = if r & 0xf00 == 0 { format!("{w} {} ", r % 10_000) } else { format!("{w} ") };
                let n = piece.len().min(buf.len() - i);
                buf[i..i + n].copy_from_slice(&piece.as_bytes()[..n]);
                i += n;
            }
        }
        _ => {
            for c in buf.chunks_exact_mut(8) {
                c.copy_from_slice(&rng.next().to_le_bytes());
            }
        }
    }
}

pub(crate) fn generate(path: &Path, size: u64) -> Result<()> {
    let mut f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut buf = vec![0u8; RUN];
    let mut written = 0;
    while written < size {
        fill_run(&mut rng, &mut buf);
        f.write_all(&buf)?;
        written += RUN as u64;
    }
    f.sync_all()?;
    drop_cache(&f);
    Ok(())
}

/// Drop `path` from the page cache, so the next read comes from the disk.
pub(crate) fn drop_cache_of(path: &Path) -> Result<()> {
    drop_cache(&File::open(path)?);
    Ok(())
}

/// Make the filesystem under `path` finish what the bench itself left it (a deleted
/// 1 GiB volume, restic's repository) before the next timed phase. On a filesystem
/// mounted with `discard` (this VM's root) a delete's discards run at the next journal
/// commit: the next fsync waited for them — a scan's final flush of one sha256file
/// took 651 ms after the restored volume was removed, and the 1 % and unchanged rounds
/// that fell to 70–80 % were those.
pub(crate) fn settle(path: &Path) -> Result<()> {
    let dir = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: a valid fd; syncfs only writes back and waits.
    if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
        return Err(std::io::Error::last_os_error()).context("syncfs");
    }
    Ok(())
}

fn drop_cache(f: &File) {
    // SAFETY: advisory call on a valid fd.
    unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
}

/// Read the whole volume with O_DIRECT 8 MiB reads, four in flight, and
/// throw the bytes away; returns the seconds it took.
pub(crate) fn read_only(path: &Path) -> Result<f64> {
    use holdfast_chunk::{AlignedBuf, ChunkSource};
    // More in flight than the pipeline keeps: the disk's best, not ours.
    const READERS: usize = 4;
    const CHUNK: u64 = 8 << 20;
    let file = holdfast_volume::VolumeFile::open_read(path)?;
    let chunks = file.size().div_ceil(CHUNK);
    let t = Instant::now();
    std::thread::scope(|s| {
        let readers: Vec<_> = (0..READERS as u64)
            .map(|r| {
                let file = &file;
                s.spawn(move || -> std::io::Result<()> {
                    let mut buf = AlignedBuf::new(CHUNK as usize);
                    for seq in (r..chunks).step_by(READERS) {
                        let offset = seq * CHUNK;
                        buf.set_len(CHUNK.min(file.size() - offset) as usize);
                        file.read_chunk(offset, &mut buf)?;
                    }
                    Ok(())
                })
            })
            .collect();
        readers.into_iter().try_for_each(|h| h.join().expect("reader thread"))
    })?;
    Ok(t.elapsed().as_secs_f64())
}

/// Overwrite 1% of the volume in 64 KiB pieces spread over it, with bytes from `seed`
/// (a later round must change the volume again, not write what is already there);
/// returns bytes changed.
pub(crate) fn change_one_percent_with(path: &Path, size: u64, seed: u64) -> Result<u64> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(path)?;
    let piece = 64 * 1024u64;
    let count = size / 100 / piece;
    let stride = size / count;
    let mut rng = XorShift(seed.max(1));
    let mut buf = vec![0u8; piece as usize];
    for i in 0..count {
        for c in buf.chunks_exact_mut(8) {
            c.copy_from_slice(&rng.next().to_le_bytes());
        }
        f.write_all_at(&buf, i * stride)?;
    }
    f.sync_all()?;
    drop_cache(&f);
    Ok(count * piece)
}

pub(crate) fn walk_size(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    rd.filter_map(|e| e.ok())
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => walk_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

pub(crate) fn files_equal(a: &Path, b: &Path) -> Result<bool> {
    use std::io::Read;
    let (mut fa, mut fb) = (File::open(a)?, File::open(b)?);
    if fa.metadata()?.len() != fb.metadata()?.len() {
        return Ok(false);
    }
    let (mut ba, mut bb) = (vec![0u8; RUN], vec![0u8; RUN]);
    loop {
        let n = fa.read(&mut ba)?;
        if n == 0 {
            return Ok(true);
        }
        fb.read_exact(&mut bb[..n])?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}
