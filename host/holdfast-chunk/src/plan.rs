//! The read plan of one pipeline: which ranges of the volume to read, in chunk-sized
//! pieces, and — for an incremental given the extents changed since its parent —
//! which to skip (their digests the parent's), after a sampled check that the
//! volume's change tracking is right.

use crate::buffer::AlignedBuf;
use crate::digest::Sha256Digest;
use crate::pipeline::{ChunkSource, PipelineError, ReadOptions};
use holdfast_types::Extent;

/// [`ReadOptions::diff_check`]'s default: 0.1 % of the unchanged blocks.
pub const DEFAULT_DIFF_CHECK: f64 = 0.001;

/// How a backup found what changed, recorded with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeSource {
    /// No parent: every block read.
    Full,
    /// Every block read and compared with the parent's digests.
    ShaScan,
    /// Only the extents the volume reported changed were read (RBD's diff), the
    /// sampled check passed.
    RbdDiff,
}

impl ChangeSource {
    pub fn as_str(&self) -> &'static str {
        match self {
            ChangeSource::Full => "full",
            ChangeSource::ShaScan => "sha-scan",
            ChangeSource::RbdDiff => "rbd-diff",
        }
    }
}

/// One entry of the read plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Planned {
    Read(Extent),
    /// As in the parent: its digests, nothing read.
    Skip(Extent),
}

/// The reads that cover the volume (or just `extents`), each at most `read_size` long
/// and starting on a sha block, in volume order.
pub(crate) fn plan_reads(size: u64, read_size: u64, block: u64, extents: Option<&[Extent]>) -> Vec<Extent> {
    let whole = [Extent { offset: 0, len: size }];
    let spans = match extents {
        Some(e) => holdfast_types::extent::normalize(e, block, size),
        None => whole.to_vec(),
    };
    let mut reads = Vec::new();
    for span in spans {
        cut(span, read_size, &mut |e| reads.push(e));
    }
    reads
}

fn cut(span: Extent, read_size: u64, out: &mut dyn FnMut(Extent)) {
    let mut offset = span.offset;
    while offset < span.end() {
        let len = read_size.min(span.end() - offset);
        out(Extent { offset, len });
        offset += len;
    }
}

/// The plan for `opts`: with a parent and changed extents, reads of the changes and
/// skips (the parent's digests) for the rest the parent covers — after a sampled
/// check of the skipped blocks; otherwise reads of everything asked for.
pub(crate) fn plan_checked(
    source: &dyn ChunkSource,
    opts: &ReadOptions,
    read_size: u64,
    size: u64,
    block: u64,
) -> Result<(Vec<Planned>, ChangeSource), PipelineError> {
    let reads_of = |extents| plan_reads(size, read_size, block, extents).into_iter().map(Planned::Read).collect();
    let (Some(parent), Some(changed)) = (&opts.parent, &opts.extents) else {
        let how = if opts.parent.is_some() { ChangeSource::ShaScan } else { ChangeSource::Full };
        return Ok((reads_of(opts.extents.as_deref()), how));
    };
    // The parent's digests cover this much of the volume (it may have grown since).
    let covered = (parent.len() as u64 * block).min(size);
    let spans = holdfast_types::extent::normalize(changed, block, size);
    let mut plan = Vec::new();
    let mut skipped = Vec::new();
    let mut at = 0u64;
    let gap = |from: u64, to: u64, plan: &mut Vec<Planned>, skipped: &mut Vec<Extent>| {
        let skip_end = to.min(covered).max(from);
        if skip_end > from {
            skipped.push(Extent { offset: from, len: skip_end - from });
            cut(Extent { offset: from, len: skip_end - from }, read_size, &mut |e| plan.push(Planned::Skip(e)));
        }
        if to > skip_end {
            cut(Extent { offset: skip_end, len: to - skip_end }, read_size, &mut |e| plan.push(Planned::Read(e)));
        }
    };
    for span in &spans {
        gap(at, span.offset, &mut plan, &mut skipped);
        cut(*span, read_size, &mut |e| plan.push(Planned::Read(e)));
        at = span.end();
    }
    gap(at, size, &mut plan, &mut skipped);
    if let Some(why) = check_skipped(source, parent, &skipped, block, opts.diff_check)? {
        tracing::error!(
            reason = %why,
            "CHANGE TRACKING DISAGREES WITH THE DATA: a block the volume's diff calls unchanged differs from \
             the parent backup; reading the whole volume instead"
        );
        return Ok((reads_of(None), ChangeSource::ShaScan));
    }
    Ok((plan, ChangeSource::RbdDiff))
}

/// Read a sample of the blocks about to be skipped and compare them with the parent's
/// digests; why not, when one differs.
fn check_skipped(
    source: &dyn ChunkSource,
    parent: &[Sha256Digest],
    skipped: &[Extent],
    block: u64,
    fraction: f64,
) -> Result<Option<String>, PipelineError> {
    let blocks: u64 = skipped.iter().map(|e| e.len.div_ceil(block)).sum();
    if blocks == 0 || fraction <= 0.0 {
        return Ok(None);
    }
    let want = ((blocks as f64 * fraction.min(1.0)).ceil() as u64).clamp(1, blocks);
    // Spread over the skipped blocks, from a random start, so that no block is
    // always trusted.
    let step = blocks / want;
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let mut buf = AlignedBuf::new(block as usize);
    for k in 0..want {
        // The n-th skipped block, and its length (the last of an extent may be short).
        let mut n = (u64::from(seed) % step.max(1)) + k * step;
        let mut found = None;
        for e in skipped {
            let here = e.len.div_ceil(block);
            if n < here {
                let offset = e.offset + n * block;
                found = Some((offset, block.min(e.end() - offset)));
                break;
            }
            n -= here;
        }
        let Some((offset, len)) = found else { continue };
        buf.set_len(len as usize);
        source.read_chunk(offset, &mut buf).map_err(|e| PipelineError::Read { offset, source: e })?;
        let digest = crate::digest::sha256(&buf);
        let index = (offset / block) as usize;
        if parent.get(index) != Some(&digest) {
            return Ok(Some(format!("block at offset {offset} is not as in the parent backup")));
        }
    }
    Ok(None)
}
