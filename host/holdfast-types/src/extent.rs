//! Byte ranges of a volume: what a source reports as allocated or changed, and what a
//! reader may be asked to read.

/// A byte range of a volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub offset: u64,
    pub len: u64,
}

impl Extent {
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.len)
    }
}

/// `extents` widened to whole `block`s, clipped to `size`, sorted and merged;
/// empty ranges drop out. `block` must not be 0.
pub fn normalize(extents: &[Extent], block: u64, size: u64) -> Vec<Extent> {
    let mut spans: Vec<(u64, u64)> = extents
        .iter()
        .filter(|e| e.len > 0 && e.offset < size)
        .map(|e| (e.offset / block * block, e.end().min(size).div_ceil(block).saturating_mul(block).min(size)))
        .collect();
    spans.sort_unstable();
    let mut out: Vec<Extent> = Vec::with_capacity(spans.len());
    for (start, end) in spans {
        match out.last_mut() {
            Some(last) if start <= last.end() => last.len = last.len.max(end - last.offset),
            _ => out.push(Extent { offset: start, len: end - start }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(offset: u64, len: u64) -> Extent {
        Extent { offset, len }
    }

    #[test]
    fn widened_clipped_sorted_merged() {
        let got = normalize(&[e(9000, 10), e(100, 1), e(4096, 4096), e(50_000, 0), e(20_000, 99_999)], 4096, 24_576);
        assert_eq!(got, vec![e(0, 12_288), e(16_384, 8192)]);
        assert_eq!(normalize(&[e(30_000, 5)], 4096, 24_576), vec![]);
        assert_eq!(normalize(&[e(0, u64::MAX)], 4096, 10_000), vec![e(0, 10_000)]);
    }
}
