use super::*;
use crate::codec::decompress_into;
use crate::digest;
use std::time::Duration;

struct MemSource(Vec<u8>);
impl ChunkSource for MemSource {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }
    fn read_chunk(&self, offset: u64, buf: &mut AlignedBuf) -> io::Result<SourceRead> {
        let o = offset as usize;
        let n = buf.len();
        buf.copy_from_slice(&self.0[o..o + n]);
        Ok(SourceRead::default())
    }
}

fn volume() -> Vec<u8> {
    let mut v = vec![0u8; 1 << 20];
    for (i, b) in v[..262_144].iter_mut().enumerate() {
        *b = (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3];
    }
    v[524_288..600_000].fill(b'x');
    v.truncate(1_000_000); // a short last chunk
    v
}

#[test]
fn chunks_come_back_in_order_with_cinder_digests() {
    let data = volume();
    let opts = ReadOptions {
        chunk_size: 131_072,
        sha_block_size: 32_768,
        compression: Compression::Zstd,
        md5: true,
        workers: 3,
        parent: None,
        extents: None,
        diff_check: DEFAULT_DIFF_CHECK,
        stored_hashes: StoredHashes::None,
    };
    let mut s = ChunkStream::start(Arc::new(MemSource(data.clone())), opts).unwrap();
    let mut rebuilt = Vec::new();
    let mut shas = Vec::new();
    while let Some(c) = s.next_chunk().unwrap() {
        assert_eq!(c.offset, rebuilt.len() as u64);
        let raw = c.read(0, c.length).unwrap();
        assert_eq!(c.md5.unwrap(), digest::md5(&raw));
        let mut out = vec![0u8; c.length as usize];
        decompress_into(c.stored_compression, &c.stored_bytes(), &mut out).unwrap();
        assert_eq!(out, raw);
        shas.extend(c.sha256s.iter().copied());
        rebuilt.extend(raw);
    }
    assert_eq!(rebuilt, data);
    let expected: Vec<_> = data.chunks(32_768).map(digest::sha256).collect();
    assert_eq!(shas, expected);
}

#[test]
fn incompressible_chunks_are_stored_raw() {
    let data = noise(262_144, 0x2545_F491_4F6C_DD1D);
    let opts = ReadOptions {
        chunk_size: 65_536,
        sha_block_size: 32_768,
        compression: Compression::Zstd,
        md5: false,
        workers: 2,
        parent: None,
        extents: None,
        diff_check: DEFAULT_DIFF_CHECK,
        stored_hashes: StoredHashes::None,
    };
    let mut s = ChunkStream::start(Arc::new(MemSource(data)), opts).unwrap();
    let c = s.next_chunk().unwrap().unwrap();
    assert_eq!(c.stored_compression, Compression::None);
    assert_eq!(c.stored_len(), 65_536);
}

#[test]
fn stored_digests_are_of_the_stored_bytes() {
    let mut data: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    data.extend(vec![0u8; 1 << 20]);
    let cases = [
        (Compression::Zstd, StoredHashes::Sha256AndMd5),
        (Compression::None, StoredHashes::Sha256AndMd5),
        (Compression::Zstd, StoredHashes::Md5),
        (Compression::None, StoredHashes::Md5),
        (Compression::Zstd, StoredHashes::None),
    ];
    for (compression, hashed) in cases {
        let opts = ReadOptions {
            chunk_size: 262_144,
            sha_block_size: 32_768,
            compression,
            md5: true,
            workers: 2,
            parent: None,
            extents: None,
            diff_check: DEFAULT_DIFF_CHECK,
            stored_hashes: hashed,
        };
        let mut s = ChunkStream::start(Arc::new(MemSource(data.clone())), opts).unwrap();
        let mut n = 0;
        while let Some(c) = s.next_chunk().unwrap() {
            let stored = c.stored();
            assert_eq!(
                c.stored_digests(),
                (digest::sha256(&stored), digest::md5(&stored)),
                "{compression:?} {hashed:?}"
            );
            assert_eq!(c.stored_md5(), digest::md5(&stored), "{compression:?} {hashed:?}");
            n += 1;
        }
        // Four objects of data, and the zeros: one compressed piece, or four raw ones.
        assert_eq!(n, if compression == Compression::None { 8 } else { 5 }, "{compression:?} {hashed:?}");
    }
}

#[test]
fn a_read_of_several_objects_cuts_them_on_the_object_grid() {
    // 3 MiB: data, a 1.5 MiB zero stretch from 0.75 MiB, data again; 256 KiB objects.
    let mut data: Vec<u8> = (0..3u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    data[786_432..2_359_296].fill(0);
    for compression in [Compression::Zstd, Compression::None] {
        let opts = ReadOptions { compression, ..zstd_with_md5(262_144, StoredHashes::None) };
        assert_eq!(read_size(&opts), LANE_READ, "32 objects per read");
        let scan = ReadOptions { parent: Some(Arc::new(Vec::new())), ..opts.clone() };
        assert_eq!(read_size(&scan), SCAN_READ, "16 objects per read against a parent");
        let mut s = ChunkStream::start(Arc::new(MemSource(data.clone())), opts).unwrap();
        assert_eq!(s.chunk_count(), 1);
        let mut pieces = Vec::new();
        while let Some(c) = s.next_chunk().unwrap() {
            assert_eq!(c.md5.unwrap(), digest::md5(&data[c.offset as usize..(c.offset + c.length) as usize]));
            assert!(c.stored_len() <= 262_144, "{compression:?}: {} stored bytes", c.stored_len());
            pieces.push((c.offset, c.length, c.is_zero));
        }
        let zeros: Vec<_> = pieces.iter().filter(|p| p.2).map(|p| (p.0, p.1)).collect();
        let data_pieces: Vec<_> = pieces.iter().filter(|p| !p.2).map(|p| (p.0, p.1)).collect();
        assert!(data_pieces.iter().all(|&(o, l)| o % 262_144 == 0 && l == 262_144), "{data_pieces:?}");
        match compression {
            Compression::None => assert_eq!(
                zeros,
                [
                    (786_432, 262_144),
                    (1_048_576, 262_144),
                    (1_310_720, 262_144),
                    (1_572_864, 262_144),
                    (1_835_008, 262_144),
                    (2_097_152, 262_144)
                ]
            ),
            _ => assert_eq!(zeros, [(786_432, 1_572_864)], "compressed zeros stay one piece"),
        }
    }
}

/// A full read of `chunk_size` chunks, zstd, with Cinder's MD5 and 32 KiB blocks.
fn zstd_with_md5(chunk_size: u64, stored_hashes: StoredHashes) -> ReadOptions {
    ReadOptions {
        chunk_size,
        sha_block_size: 32_768,
        compression: Compression::Zstd,
        md5: true,
        workers: 2,
        parent: None,
        extents: None,
        diff_check: DEFAULT_DIFF_CHECK,
        stored_hashes,
    }
}

/// Each piece of `s` not unchanged since the parent, with its raw bytes (its MD5
/// checked against them first).
fn for_each_changed(s: &mut ChunkStream, data: &[u8], mut each: impl FnMut(&ProcessedChunk, &[u8])) {
    while let Some(c) = s.next_chunk().unwrap() {
        if c.unchanged {
            continue;
        }
        let raw = &data[c.offset as usize..(c.offset + c.length) as usize];
        assert_eq!(c.md5.unwrap(), digest::md5(raw));
        each(&c, raw);
    }
}

fn noise(len: usize, mut x: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn changed_extents_off_the_object_grid_stay_within_an_object_each() {
    // An incremental told which extents changed: its reads start where they start
    // (here 96 KiB into the volume), and each stored piece is still at most one object.
    let mut data: Vec<u8> = (0..6u32 << 20).map(|i| (i % 251) as u8).collect();
    let parent: Vec<_> = data.chunks(32_768).map(digest::sha256).collect();
    let changed = Extent { offset: 98_304, len: 3 << 20 };
    data[98_304..98_304 + (3 << 20)].copy_from_slice(&noise(3 << 20, 7));
    let opts = ReadOptions {
        parent: Some(Arc::new(parent)),
        extents: Some(vec![changed]),
        diff_check: 1.0,
        ..zstd_with_md5(1 << 20, StoredHashes::None)
    };
    let mut s = ChunkStream::start(Arc::new(MemSource(data.clone())), opts).unwrap();
    assert_eq!(s.change_source(), &ChangeSource::RbdDiff);
    let mut stored = Vec::new();
    for_each_changed(&mut s, &data, |c, _| {
        assert!(c.length <= 1 << 20 && c.stored_len() <= 1 << 20, "{} at {}", c.length, c.offset);
        stored.push((c.offset, c.length));
    });
    let o = 98_304;
    assert_eq!(stored, [(o, 1 << 20), (o + (1 << 20), 1 << 20), (o + (2 << 20), 1 << 20)]);
}

#[test]
fn a_short_incompressible_tail_is_stored_whole() {
    // The volume ends 40,000 bytes into a sha block, in random bytes.
    let mut data: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    data.extend(noise(40_000, 3));
    let mut s =
        ChunkStream::start(Arc::new(MemSource(data.clone())), zstd_with_md5(1 << 20, StoredHashes::Md5)).unwrap();
    let mut tail = None;
    // A full read: every piece is a changed one.
    for_each_changed(&mut s, &data, |c, raw| {
        let mut out = vec![0u8; raw.len()];
        decompress_into(c.stored_compression, &c.stored(), &mut out).unwrap();
        assert_eq!(out, raw);
        assert_eq!(c.stored_md5(), digest::md5(&c.stored()));
        tail = Some((c.offset, c.length, c.stored_compression));
    });
    assert_eq!(tail, Some((1 << 20, 40_000, Compression::None)));
}

#[test]
fn long_zero_stretches_become_their_own_chunks() {
    let mut data = vec![7u8; 4 << 20];
    data[(1 << 20)..(3 << 20)].fill(0);
    data[(3 << 20) + 100] = 0; // a zero byte inside data is just data
    data[(3 << 20) + 40_000..(3 << 20) + 80_000].fill(0); // short zero run: stays inside
    let opts = zstd_with_md5(4 << 20, StoredHashes::None);
    let mut s = ChunkStream::start(Arc::new(MemSource(data.clone())), opts).unwrap();
    let mut pieces = Vec::new();
    while let Some(c) = s.next_chunk().unwrap() {
        pieces.push((c.offset, c.length, c.is_zero));
        let raw = &data[c.offset as usize..(c.offset + c.length) as usize];
        assert_eq!(c.md5.unwrap(), digest::md5(raw));
        assert_eq!(c.sha256s, raw.chunks(32_768).map(digest::sha256).collect::<Vec<_>>());
    }
    assert_eq!(pieces, [(0, 1 << 20, false), (1 << 20, 2 << 20, true), (3 << 20, 1 << 20, false)]);
}

#[test]
fn raw_and_compressed_pieces_of_one_read_keep_their_own_bytes() {
    // One read: random (stored raw, a slice of the read buffer), zeros (a piece of
    // their own), text (compressed into the read's output buffer), random again.
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut random = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect()
    };
    let mut data = random(1 << 20);
    data.extend(vec![0u8; 2 << 20]);
    data.extend(b"the backup of a volume ".iter().cycle().take(1 << 20));
    data.extend(random(1 << 20));
    let opts = zstd_with_md5(8 << 20, StoredHashes::Md5);
    for _ in 0..3 {
        // Several streams: buffers come back from the pools between them.
        let mut s = ChunkStream::start(Arc::new(MemSource(data.clone())), opts.clone()).unwrap();
        let mut got = Vec::new();
        while let Some(c) = s.next_chunk().unwrap() {
            let raw = &data[c.offset as usize..(c.offset + c.length) as usize];
            let mut out = vec![0u8; c.length as usize];
            decompress_into(c.stored_compression, &c.stored(), &mut out).unwrap();
            assert_eq!(out, raw, "piece at {}", c.offset);
            assert_eq!(c.md5.unwrap(), digest::md5(raw));
            assert_eq!(c.stored_md5(), digest::md5(&c.stored()));
            got.push((c.offset, c.length, c.stored_compression));
        }
        assert_eq!(
            got,
            [
                (0, 1 << 20, Compression::None),
                (1 << 20, 2 << 20, Compression::Zstd),
                (3 << 20, 2 << 20, Compression::Zstd)
            ]
        );
    }
}

#[test]
fn incremental_reads_store_only_changed_runs() {
    let mut data = vec![0u8; 2 << 20];
    for (i, b) in data.iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    let parent: Vec<_> = data.chunks(32_768).map(digest::sha256).collect();
    data[40_000] ^= 1; // block 1
    data[100_000..110_000].fill(9); // blocks 3
    data[(1 << 20) + 5] ^= 1; // block 32, in the second read
    let opts = ReadOptions {
        chunk_size: 1 << 20,
        sha_block_size: 32_768,
        compression: Compression::Zstd,
        md5: true,
        workers: 2,
        parent: Some(Arc::new(parent)),
        extents: None,
        diff_check: DEFAULT_DIFF_CHECK,
        stored_hashes: StoredHashes::None,
    };
    let mut s = ChunkStream::start(Arc::new(MemSource(data.clone())), opts).unwrap();
    let (mut changed, mut shas) = (Vec::new(), Vec::new());
    while let Some(c) = s.next_chunk().unwrap() {
        shas.extend(c.sha256s.iter().copied());
        if !c.unchanged {
            changed.push((c.offset, c.length));
            assert_eq!(c.md5.unwrap(), digest::md5(&data[c.offset as usize..(c.offset + c.length) as usize]));
        } else {
            assert_eq!(c.stored_len(), 0);
        }
    }
    assert_eq!(changed, [(32_768, 32_768), (98_304, 32_768), (1 << 20, 32_768)]);
    assert_eq!(shas, data.chunks(32_768).map(digest::sha256).collect::<Vec<_>>(), "every block's digest");
}

#[test]
fn short_incompressible_changes_are_stored_raw_and_whole() {
    // Random 32 KiB changes (stored raw, copied out of the read) between compressible
    // ones, for a local store and for an object store's payload digests.
    let mut data: Vec<u8> = (0..2u32 << 20).map(|i| (i % 251) as u8).collect();
    let parent: Vec<_> = data.chunks(32_768).map(digest::sha256).collect();
    for (i, at) in [65_536usize, 196_608, (1 << 20) + 32_768].into_iter().enumerate() {
        data[at..at + 32_768].copy_from_slice(&noise(32_768, 0x9E37_79B9_7F4A_7C15 + i as u64));
    }
    data[500_000] ^= 1;
    for hashes in [StoredHashes::None, StoredHashes::Sha256AndMd5] {
        let opts = ReadOptions { parent: Some(Arc::new(parent.clone())), ..zstd_with_md5(1 << 20, hashes) };
        let mut s = ChunkStream::start(Arc::new(MemSource(data.clone())), opts).unwrap();
        let mut stored = Vec::new();
        for_each_changed(&mut s, &data, |c, raw| {
            let bytes = c.stored();
            let mut out = vec![0u8; raw.len()];
            decompress_into(c.stored_compression, &bytes, &mut out).unwrap();
            assert_eq!(out, raw);
            assert_eq!(c.stored_digests(), (digest::sha256(&bytes), digest::md5(&bytes)));
            stored.push((c.offset, c.stored_compression));
        });
        assert_eq!(
            stored,
            [
                (65_536, Compression::None),
                (196_608, Compression::None),
                (491_520, Compression::Zstd),
                ((1 << 20) + 32_768, Compression::None)
            ],
            "{hashes:?}"
        );
    }
}

#[test]
fn timing_tells_a_slow_disk_from_a_slow_consumer() {
    // 8 reads of 1 MiB, no MD5: one read per chunk, one reader, a window of five (a
    // full backup's: one read more than the reader, two workers and the consumer hold).
    struct Slow(MemSource, Duration);
    impl ChunkSource for Slow {
        fn size(&self) -> u64 {
            self.0.size()
        }
        fn read_chunk(&self, offset: u64, buf: &mut AlignedBuf) -> io::Result<SourceRead> {
            std::thread::sleep(self.1);
            self.0.read_chunk(offset, buf)
        }
        fn readers(&self) -> usize {
            1
        }
    }
    let opts = ReadOptions { md5: false, ..zstd_with_md5(1 << 20, StoredHashes::None) };
    let data = noise(8 << 20, 5);
    let pause = Duration::from_millis(40);
    // The stream's timing after its first piece and at its end: the first piece's
    // wait (threads starting, a loaded machine) is the same either way.
    let run = |read_pause: Duration, consume_pause: Duration| {
        let source = Slow(MemSource(data.clone()), read_pause);
        let mut s = ChunkStream::start(Arc::new(source), opts.clone()).unwrap();
        let mut first = None;
        while s.next_chunk().unwrap().is_some() {
            first.get_or_insert_with(|| s.timing());
            std::thread::sleep(consume_pause);
        }
        (first.unwrap(), s.timing())
    };
    // A slow disk: the reads take the time, and the consumer waits for them.
    let (_, disk) = run(pause, Duration::ZERO);
    assert!(disk.reading >= pause * 8, "{disk:?}");
    assert!(disk.consumer_waiting >= pause * 6, "{disk:?}");
    assert!(disk.window_full * 4 < disk.consumer_waiting, "{disk:?}");
    // A slow consumer: the reader waits on the window (reads 6 and 7, about a pause
    // each; bounds with room for a loaded machine, where the pipeline's threads run
    // at idle priority), the workers for work; the consumer, once started, little.
    let (first, consumer) = run(Duration::ZERO, pause);
    assert!(consumer.window_full >= pause, "{consumer:?}");
    assert!(consumer.workers_idle >= pause * 2, "{consumer:?}");
    assert!(consumer.consumer_waiting - first.consumer_waiting < consumer.window_full, "{consumer:?}");
    for t in [disk, consumer] {
        assert!(t.workers_busy > Duration::ZERO && t.elapsed >= t.consumer_waiting, "{t:?}");
    }
}

#[test]
fn bad_options_are_refused() {
    let opts = ReadOptions {
        chunk_size: 100_000,
        sha_block_size: 32_768,
        compression: Compression::None,
        md5: false,
        workers: 1,
        parent: None,
        extents: None,
        diff_check: DEFAULT_DIFF_CHECK,
        stored_hashes: StoredHashes::None,
    };
    assert!(ChunkStream::start(Arc::new(MemSource(vec![0; 10])), opts).is_err());
}

#[test]
fn extents_read_only_those_ranges_widened_to_blocks() {
    let data = volume();
    let opts = ReadOptions {
        chunk_size: 131_072,
        sha_block_size: 32_768,
        compression: Compression::None,
        md5: false,
        workers: 2,
        parent: None,
        extents: Some(vec![Extent { offset: 600_000, len: 1 }, Extent { offset: 40_000, len: 300_000 }]),
        diff_check: DEFAULT_DIFF_CHECK,
        stored_hashes: StoredHashes::None,
    };
    let mut s = ChunkStream::start(Arc::new(MemSource(data.clone())), opts).unwrap();
    let mut got = Vec::new();
    while let Some(c) = s.next_chunk().unwrap() {
        got.push((c.offset, c.length));
        assert_eq!(c.read(0, c.length).unwrap(), data[c.offset as usize..(c.offset + c.length) as usize]);
    }
    // [32768, 360448) cut at the chunk size, then the block holding byte 600000.
    assert_eq!(got, [(32_768, 131_072), (163_840, 131_072), (294_912, 65_536), (589_824, 32_768)]);
}

#[test]
fn tiny_sha_blocks_and_odd_chunk_sizes_are_refused() {
    let opts = |chunk_size, sha_block_size| ReadOptions {
        chunk_size,
        sha_block_size,
        compression: Compression::None,
        md5: false,
        workers: 1,
        parent: None,
        extents: None,
        diff_check: DEFAULT_DIFF_CHECK,
        stored_hashes: StoredHashes::None,
    };
    let src = || Arc::new(MemSource(vec![0; 65_536]));
    for (chunk, block) in [(4096, 1), (65_536, 2048), (65_536, 0), (10_000, 4096), (128 << 20, 4096)] {
        assert!(
            matches!(ChunkStream::start(src(), opts(chunk, block)), Err(PipelineError::Options(_))),
            "{chunk} {block}"
        );
    }
    assert!(ChunkStream::start(src(), opts(65_536, 4096)).is_ok());
}

/// A source that counts the bytes it is asked for.
struct Counted(Vec<u8>, AtomicU64);
impl ChunkSource for Counted {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }
    fn read_chunk(&self, offset: u64, buf: &mut AlignedBuf) -> io::Result<SourceRead> {
        self.1.fetch_add(buf.len() as u64, Ordering::Relaxed);
        let o = offset as usize;
        let n = buf.len();
        buf.copy_from_slice(&self.0[o..o + n]);
        Ok(SourceRead::default())
    }
}

fn digests_of(source: Arc<dyn ChunkSource>, opts: ReadOptions) -> (Vec<Sha256Digest>, ChangeSource) {
    let mut s = ChunkStream::start(source, opts).unwrap();
    let mut out = Vec::new();
    let mut next = 0;
    while let Some(c) = s.next_chunk().unwrap() {
        assert_eq!(c.offset, next, "chunks tile the volume");
        next += c.length;
        out.extend(c.sha256s);
    }
    (out, s.change_source().clone())
}

#[test]
fn changed_extents_read_only_the_changes_and_keep_the_parents_digests() {
    let block = 32_768u64;
    let mut data: Vec<u8> = (0..4 << 20).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let opts = |parent: Option<Vec<Sha256Digest>>, extents: Option<Vec<Extent>>, check: f64| ReadOptions {
        chunk_size: 262_144,
        sha_block_size: block as u32,
        compression: Compression::None,
        md5: false,
        workers: 2,
        parent: parent.map(Arc::new),
        extents,
        diff_check: check,
        stored_hashes: StoredHashes::None,
    };
    let (parent, how) = digests_of(Arc::new(MemSource(data.clone())), opts(None, None, 0.0));
    assert_eq!(how, ChangeSource::Full);

    // One block changes; the diff says so.
    data[1_000_000..1_000_100].fill(7);
    let changed = vec![Extent { offset: 1_000_000, len: 100 }];
    let (want, _) = digests_of(Arc::new(MemSource(data.clone())), opts(None, None, 0.0));
    let src = Arc::new(Counted(data.clone(), AtomicU64::new(0)));
    let (got, how) = digests_of(src.clone(), opts(Some(parent.clone()), Some(changed.clone()), 0.001));
    assert_eq!(how, ChangeSource::RbdDiff);
    assert_eq!(got, want, "the new digest list is whole: the parent's where nothing changed");
    let read = src.1.load(Ordering::Relaxed);
    assert!(read <= 2 * block, "read {read} bytes: the changed block and one sampled block");

    // A diff that misses a change: the sampled check (here every block) catches it
    // and the whole volume is read, so the backup is still right.
    data[3_000_000] ^= 0xFF;
    let (want, _) = digests_of(Arc::new(MemSource(data.clone())), opts(None, None, 0.0));
    let src = Arc::new(Counted(data.clone(), AtomicU64::new(0)));
    let (got, how) = digests_of(src.clone(), opts(Some(parent.clone()), Some(changed), 1.0));
    assert_eq!(how, ChangeSource::ShaScan);
    assert_eq!(got, want);

    // A volume grown since the parent: the new part is read, whatever the diff says.
    data.extend(std::iter::repeat_n(9u8, 65_536));
    let (want, _) = digests_of(Arc::new(MemSource(data.clone())), opts(None, None, 0.0));
    let (got, _) = digests_of(Arc::new(MemSource(data)), opts(Some(parent), Some(vec![]), 0.0));
    assert_eq!(got.len(), want.len());
    assert_eq!(got[want.len() - 2..], want[want.len() - 2..]);
}
