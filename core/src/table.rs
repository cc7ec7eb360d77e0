//! Frequency tables: their stored form, validation, and the decoder's lookup table.
//!
//! Stored form: a 32-byte presence bitmap (bit `s % 8` of byte `s / 8` set when symbol `s` has a
//! frequency), then `freq - 1` as a little-endian u16 for each present symbol in ascending order.
//! Frequencies sum to `2^scale_bits`.

/// Bytes of a stored table with `present` symbols.
pub(crate) const fn stored_len(present: usize) -> usize {
    32 + 2 * present
}

/// Validate the table at the start of `bytes`; returns its stored length.
pub(crate) fn validate(bytes: &[u8], scale_bits: u8) -> Option<usize> {
    let bitmap = bytes.get(..32)?;
    let present: usize = bitmap.iter().map(|b| b.count_ones() as usize).sum();
    if present == 0 {
        return None;
    }
    let len = stored_len(present);
    let freqs = bytes.get(32..len)?;
    let total: u32 = freqs.chunks_exact(2).map(|c| u32::from(u16::from_le_bytes([c[0], c[1]])) + 1).sum();
    (total == 1u32 << scale_bits).then_some(len)
}

/// Frequencies of a validated table (0 for absent symbols).
pub(crate) fn frequencies(bytes: &[u8]) -> [u32; 256] {
    let mut f = [0u32; 256];
    let mut at = 32;
    for (s, slot) in f.iter_mut().enumerate() {
        if bytes[s / 8] >> (s % 8) & 1 == 1 {
            *slot = u32::from(u16::from_le_bytes([bytes[at], bytes[at + 1]])) + 1;
            at += 2;
        }
    }
    f
}

/// Bytes of a stored pair table (version-2 device images, `docs/FORMAT.md` 11.1) of `n` entries:
/// a u32 `n`, then `n` entries `u16 key, u16 freq - 1`.
pub(crate) const fn pair_stored_len(n: usize) -> usize {
    4 + 4 * n
}

/// Entry `i` of a stored pair table (`stored` at its u32 `n`): its key and frequency.
#[inline]
pub(crate) fn pair_entry(stored: &[u8], i: usize) -> (u16, u32) {
    let at = pair_stored_len(i);
    let e = &stored[at..at + 4];
    (u16::from_le_bytes([e[0], e[1]]), u32::from(u16::from_le_bytes([e[2], e[3]])) + 1)
}

/// Validate the pair table at the start of `bytes`: `1 <= n <= 2^scale_bits` entries, keys
/// strictly increasing, frequencies summing to exactly `2^scale_bits`. Returns its stored length.
pub(crate) fn validate_pairs(bytes: &[u8], scale_bits: u8) -> Option<usize> {
    let m = 1u32 << scale_bits;
    let n = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?);
    if n == 0 || n > m {
        return None;
    }
    let len = pair_stored_len(n as usize);
    let stored = bytes.get(..len)?;
    // n <= 2^13 entries of at most 2^16: the sum fits a u32
    let total: u32 = (0..n as usize).map(|i| pair_entry(stored, i).1).sum();
    let sorted = (1..n as usize).all(|i| pair_entry(stored, i - 1).0 < pair_entry(stored, i).0);
    (sorted && total == m).then_some(len)
}

/// The decoder's lookup table: one packed u32 per slot,
/// `(freq - 1) << 20 | (slot - cumfreq) << 8 | symbol`.
///
/// 16 KiB; kept outside [`crate::Frame`] so that a caller with a small stack can place it where
/// it likes and reuse it across tiles. The device-image decoder ([`crate::image::Image`]) uses it
/// for both image versions: for a version-2 image it holds the pair table's cumulative
/// frequencies instead (a binary search per pair), so [`Self::entries`] is meaningful only after
/// a frame or version-1 table was loaded.
#[derive(Clone)]
pub struct DecodeTable {
    pub(crate) lut: [u32; 4096],
    pub(crate) scale_bits: u8,
}

impl Default for DecodeTable {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for DecodeTable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DecodeTable").field("scale_bits", &self.scale_bits).finish()
    }
}

impl DecodeTable {
    /// An empty table (every slot decodes symbol 0 with frequency 1; filled before use).
    pub const fn new() -> Self {
        DecodeTable { lut: [0; 4096], scale_bits: 12 }
    }

    /// Fill from a validated stored table.
    pub(crate) fn fill(&mut self, stored: &[u8], scale_bits: u8) {
        let freqs = frequencies(stored);
        self.scale_bits = scale_bits;
        let mut slot = 0usize;
        for (s, &f) in freqs.iter().enumerate() {
            for k in 0..f {
                self.lut[slot] = (f - 1) << 20 | k << 8 | s as u32;
                slot += 1;
            }
        }
    }

    /// The packed entries in use (`2^scale_bits` of them).
    pub fn entries(&self) -> &[u32] {
        &self.lut[..1 << self.scale_bits]
    }

    /// Fill from a validated pair table (`validate_pairs`) for the version-2 image decoder: the
    /// cumulative frequency of each entry, two u16 per u32 (at most 8192 entries, each below
    /// 8192), found by binary search in [`Self::find_pair`]. The same 16 KiB as a frame's table,
    /// so that the image decoders need no more memory for version 2. Returns the entry count;
    /// [`Self::entries`] is meaningless until the next [`Self::fill`].
    pub(crate) fn fill_pairs(&mut self, stored: &[u8]) -> usize {
        let n = u32::from_le_bytes([stored[0], stored[1], stored[2], stored[3]]) as usize;
        let mut cum = 0u32;
        for i in 0..n {
            let half = 16 * (i as u32 & 1);
            self.lut[i / 2] = self.lut[i / 2] & !(0xFFFF << half) | cum << half;
            cum += pair_entry(stored, i).1;
        }
        n
    }

    /// The entry of a pair table filled by [`Self::fill_pairs`] (`n` entries) whose interval
    /// `[cum, cum + freq)` holds `slot`, and its `cum`.
    #[inline]
    pub(crate) fn find_pair(&self, n: usize, slot: u32) -> (usize, u32) {
        let cum = |i: usize| self.lut[i / 2] >> (16 * (i & 1)) & 0xFFFF;
        // cum(lo) <= slot < cum(hi), with cum(n) read as 2^scale_bits
        let (mut lo, mut hi) = (0, n);
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if cum(mid) <= slot {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        (lo, cum(lo))
    }
}

/// Quantise symbol counts to frequencies summing to `2^scale_bits`, every symbol with
/// `present` set getting at least 1, minimising the coded size of `counts` (greedy exchange).
#[cfg(feature = "alloc")] // only the encoder uses it
pub(crate) fn quantize(counts: &[u64; 256], present: &[bool; 256], scale_bits: u8) -> [u32; 256] {
    let mut f = [0u32; 256];
    quantize_into(counts, present, scale_bits, &mut f);
    f
}

/// [`quantize`] for any alphabet (the frame's 256 symbols, a pair table's entries): `f[s]` gets
/// the frequency of `counts[s]`. Starts from the floor of the ideal frequencies (at least 1 where
/// present), then moves one unit at a time where it costs least (or saves most), which is
/// optimal for this separable convex cost. Needs at most `2^scale_bits` present symbols.
#[cfg(feature = "alloc")]
pub(crate) fn quantize_into(counts: &[u64], present: &[bool], scale_bits: u8, f: &mut [u32]) {
    use alloc::collections::BinaryHeap;
    let m = 1u64 << scale_bits;
    let total: u64 = counts.iter().sum();
    let mut sum = 0u64;
    for s in 0..counts.len() {
        f[s] = 0;
        if present[s] {
            let ideal = if total == 0 { 0 } else { (counts[s] as u128 * m as u128 / total as u128) as u64 };
            f[s] = ideal.max(1) as u32;
            sum += u64::from(f[s]);
        }
    }
    // The sum moves one way only: up (each step the largest saving) or down (the smallest cost).
    let up = sum < m;
    // Cost in bits of moving `s` from `from` one unit that way: count * log2(from / to).
    let step = |s: usize, from: u32| {
        let to = if up { from + 1 } else { from - 1 };
        Step { cost: -(counts[s] as f64 * libm::log2(f64::from(to) / f64::from(from))), s }
    };
    let movable = |s: usize, f: u32| present[s] && (up || f > 1);
    let mut heap: BinaryHeap<Step> = (0..counts.len()).filter(|&s| movable(s, f[s])).map(|s| step(s, f[s])).collect();
    while sum != m {
        // `present` symbols number at most `m`, so a step down always has a symbol above 1.
        let Some(Step { s, .. }) = heap.pop() else { break };
        if up {
            f[s] += 1;
            sum += 1;
        } else {
            f[s] -= 1;
            sum -= 1;
        }
        if movable(s, f[s]) {
            heap.push(step(s, f[s]));
        }
    }
}

/// A candidate move of [`quantize_into`]: the heap pops the lowest cost, then the lowest symbol
/// (costs compare as floats, so `-0.0 == 0.0`).
#[cfg(feature = "alloc")]
struct Step {
    cost: f64,
    s: usize,
}

#[cfg(feature = "alloc")]
impl Ord for Step {
    fn cmp(&self, o: &Self) -> core::cmp::Ordering {
        let by_cost = o.cost.partial_cmp(&self.cost).unwrap_or(core::cmp::Ordering::Equal);
        by_cost.then(o.s.cmp(&self.s))
    }
}
#[cfg(feature = "alloc")]
impl PartialOrd for Step {
    fn partial_cmp(&self, o: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
#[cfg(feature = "alloc")]
impl PartialEq for Step {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o).is_eq()
    }
}
#[cfg(feature = "alloc")]
impl Eq for Step {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantize_sums_to_scale_and_keeps_rare_symbols() {
        let mut counts = [0u64; 256];
        let mut present = [false; 256];
        for (s, c) in [(3usize, 1_000_000u64), (7, 10), (200, 1), (9, 500_000)] {
            counts[s] = c;
            present[s] = true;
        }
        for bits in 8..=12u8 {
            let f = quantize(&counts, &present, bits);
            assert_eq!(f.iter().map(|&x| u64::from(x)).sum::<u64>(), 1 << bits);
            assert!(f[200] >= 1 && f[7] >= 1);
            assert!(f[3] > f[9]);
        }
    }

    #[test]
    fn quantize_single_symbol_takes_everything() {
        let mut counts = [0u64; 256];
        let mut present = [false; 256];
        counts[42] = 5;
        present[42] = true;
        let f = quantize(&counts, &present, 12);
        assert_eq!(f[42], 4096);
    }

    /// The frame encoder's original quantiser (a full scan per move), which `quantize_into`
    /// must match exactly: frames must not change.
    fn quantize_by_scan(counts: &[u64], present: &[bool], scale_bits: u8) -> alloc::vec::Vec<u32> {
        let m = 1u64 << scale_bits;
        let total: u64 = counts.iter().sum();
        let mut f = alloc::vec![0u32; counts.len()];
        let mut sum = 0u64;
        for s in 0..counts.len() {
            if present[s] {
                let ideal = if total == 0 { 0 } else { (counts[s] as u128 * m as u128 / total as u128) as u64 };
                f[s] = ideal.max(1) as u32;
                sum += u64::from(f[s]);
            }
        }
        let gain = |c: u64, from: u32, to: u32| c as f64 * libm::log2(f64::from(to) / f64::from(from));
        while sum != m {
            let (mut best, mut best_delta) = (usize::MAX, f64::INFINITY);
            for s in 0..counts.len() {
                let delta = match () {
                    _ if !present[s] => continue,
                    _ if sum < m => -gain(counts[s], f[s], f[s] + 1),
                    _ if f[s] > 1 => -gain(counts[s], f[s], f[s] - 1),
                    _ => continue,
                };
                if delta < best_delta {
                    (best, best_delta) = (s, delta);
                }
            }
            if sum < m {
                f[best] += 1;
                sum += 1;
            } else {
                f[best] -= 1;
                sum -= 1;
            }
        }
        f
    }

    #[test]
    fn quantize_matches_the_full_scan() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for case in 0..300 {
            let n = 1 + (next() % 600) as usize;
            let bits = 8 + (case % 6) as u8;
            let n = n.min(1 << bits);
            // skewed counts with ties, zeros, and present symbols of count 0
            let counts: alloc::vec::Vec<u64> =
                (0..n).map(|_| if next() % 4 == 0 { 0 } else { (next() % 50).pow((next() % 4) as u32) }).collect();
            let present: alloc::vec::Vec<bool> = counts.iter().map(|&c| c > 0 || next() % 8 == 0).collect();
            if !present.iter().any(|&p| p) {
                continue;
            }
            let mut f = alloc::vec![7u32; n];
            quantize_into(&counts, &present, bits, &mut f);
            assert_eq!(f, quantize_by_scan(&counts, &present, bits), "case {case}");
            assert_eq!(f.iter().map(|&v| u64::from(v)).sum::<u64>(), 1 << bits);
        }
    }

    fn pair_table(entries: &[(u16, u32)]) -> alloc::vec::Vec<u8> {
        let mut t = (entries.len() as u32).to_le_bytes().to_vec();
        for &(k, f) in entries {
            t.extend_from_slice(&k.to_le_bytes());
            t.extend_from_slice(&((f - 1) as u16).to_le_bytes());
        }
        t
    }

    #[test]
    fn pair_tables_validate_and_find_every_slot() {
        let entries = [(0x0102u16, 5000u32), (0x0201, 3000), (0x7F7F, 1), (0xFFFF, 191)];
        let t = pair_table(&entries);
        assert_eq!(validate_pairs(&t, 13), Some(20));
        let mut d = DecodeTable::new();
        assert_eq!(d.fill_pairs(&t), 4);
        let mut cum = 0;
        for (i, &(_, f)) in entries.iter().enumerate() {
            for slot in cum..cum + f {
                assert_eq!(d.find_pair(4, slot), (i, cum), "slot {slot}");
            }
            cum += f;
        }
        // one entry taking everything; 8192 entries of 1
        let one = pair_table(&[(7, 8192)]);
        assert_eq!(validate_pairs(&one, 13), Some(8));
        assert_eq!(d.fill_pairs(&one), 1);
        assert_eq!(d.find_pair(1, 8191), (0, 0));
        let all: alloc::vec::Vec<(u16, u32)> = (0..8192u16).map(|k| (k, 1)).collect();
        let all = pair_table(&all);
        assert_eq!(validate_pairs(&all, 13), Some(4 + 4 * 8192));
        assert_eq!(d.fill_pairs(&all), 8192);
        for slot in [0, 1, 4095, 4096, 8190, 8191] {
            assert_eq!(d.find_pair(8192, slot), (slot as usize, slot));
        }
    }

    #[test]
    fn pair_tables_reject_bad_counts_order_and_sums() {
        let ok = pair_table(&[(1, 100), (2, 156)]);
        assert_eq!(validate_pairs(&ok, 8), Some(12));
        assert_eq!(validate_pairs(&ok, 9), None); // sum 256, not 512
        assert_eq!(validate_pairs(&ok[..11], 8), None); // truncated
        assert_eq!(validate_pairs(&pair_table(&[(2, 100), (1, 156)]), 8), None); // unsorted
        assert_eq!(validate_pairs(&pair_table(&[(1, 100), (1, 156)]), 8), None); // repeated key
        assert_eq!(validate_pairs(&[0, 0, 0, 0], 8), None); // n = 0
        let mut big = pair_table(&[(1, 256)]);
        big[..4].copy_from_slice(&257u32.to_le_bytes()); // n > M
        big.resize(4 + 4 * 257, 0);
        assert_eq!(validate_pairs(&big, 8), None);
    }

    #[test]
    fn validate_rejects_bad_sums_and_empty_tables() {
        let mut t = [0u8; 36];
        assert_eq!(validate(&t, 12), None);
        t[0] = 0b11; // symbols 0 and 1
        t[32..34].copy_from_slice(&2047u16.to_le_bytes());
        t[34..36].copy_from_slice(&2047u16.to_le_bytes());
        assert_eq!(validate(&t, 12), Some(36));
        assert_eq!(validate(&t, 11), None);
        assert_eq!(validate(&t[..35], 12), None);
    }
}
