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

/// The decoder's lookup table: one packed u32 per slot,
/// `(freq - 1) << 20 | (slot - cumfreq) << 8 | symbol`.
///
/// 16 KiB; kept outside [`crate::Frame`] so that a caller with a small stack can place it where
/// it likes and reuse it across tiles.
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
}

/// Quantise symbol counts to frequencies summing to `2^scale_bits`, every symbol with
/// `present` set getting at least 1, minimising the coded size of `counts` (greedy exchange).
#[cfg(feature = "alloc")] // only the encoder uses it
pub(crate) fn quantize(counts: &[u64; 256], present: &[bool; 256], scale_bits: u8) -> [u32; 256] {
    let m = 1u64 << scale_bits;
    let total: u64 = counts.iter().sum();
    let mut f = [0u32; 256];
    let mut sum = 0u64;
    for s in 0..256 {
        if present[s] {
            let ideal = if total == 0 { 0 } else { (counts[s] as u128 * m as u128 / total as u128) as u64 };
            f[s] = ideal.max(1) as u32;
            sum += u64::from(f[s]);
        }
    }
    // Cost change of moving one unit of frequency, in bits: count * log2(new/old).
    let gain = |c: u64, from: u32, to: u32| c as f64 * libm::log2(f64::from(to) / f64::from(from));
    while sum != m {
        let mut best = usize::MAX;
        let mut best_delta = f64::INFINITY;
        for s in 0..256 {
            if !present[s] {
                continue;
            }
            let delta = if sum < m {
                -gain(counts[s], f[s], f[s] + 1)
            } else if f[s] > 1 {
                -gain(counts[s], f[s], f[s] - 1)
            } else {
                continue;
            };
            if delta < best_delta {
                best_delta = delta;
                best = s;
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
