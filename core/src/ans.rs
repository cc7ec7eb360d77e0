//! The 32-lane interleaved rANS coder (scalar reference).
//!
//! State `x` is a u32 kept in `[2^16, 2^32)`. Symbol `j` of a tile belongs to lane `j % 32`.
//! Decoding one symbol: `e = lut[x & (M-1)]`, `x = freq(e) * (x >> scale) + bias(e)`; then, if
//! `x < 2^16`, the lane takes the next 16-bit word: `x = x << 16 | word`. Within a step, lanes
//! take words in increasing lane order from one shared forward stream. The encoder runs the
//! symbols backwards and emits the words in reverse.

use crate::error::Corruption;
use crate::table::DecodeTable;
use crate::{LANES, RANS_L};

/// Decode `n` symbols of one tile, handing each to `put` in tile order; returns the final states.
///
/// `states` holds the 32 initial states (u32 LE), `words` the coded words (u16 LE). Every word
/// read is bounds-checked and the number consumed must equal the number stored.
#[inline]
pub(crate) fn decode_lanes(
    table: &DecodeTable,
    states: &[u8],
    words: &[u8],
    n: usize,
    mut put: impl FnMut(u8),
) -> Result<[u32; LANES], Corruption> {
    let mut x = [0u32; LANES];
    for (lane, (s, c)) in x.iter_mut().zip(states.chunks_exact(4)).enumerate() {
        *s = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        if *s < RANS_L {
            return Err(Corruption::InitialState { lane: lane as u8 });
        }
    }
    let scale = u32::from(table.scale_bits);
    let mask = (1u32 << scale) - 1;
    let lut = &table.lut[..1 << scale];
    let mut words = words.chunks_exact(2);
    let stored = words.len() as u32;
    let mut lane = 0usize;
    for _ in 0..n {
        let s = x[lane];
        let e = lut[(s & mask) as usize];
        put(e as u8);
        let mut next = ((e >> 20) + 1) * (s >> scale) + ((e >> 8) & 0xFFF);
        if next < RANS_L {
            let w = words.next().ok_or(Corruption::WordsExhausted)?;
            next = next << 16 | u32::from(u16::from_le_bytes([w[0], w[1]]));
        }
        x[lane] = next;
        lane = (lane + 1) % LANES;
    }
    let left = words.len() as u32;
    if left != 0 {
        return Err(Corruption::WordsLeft { stored, consumed: stored - left });
    }
    Ok(x)
}

/// The initial encoder state of each lane: `2^16`, plus the two carried raw bytes where the tile
/// carries (`carry[j]` for the last 64 symbols of the tile; see docs/FORMAT.md).
#[cfg(feature = "alloc")] // only the encoder uses it
pub(crate) fn initial_states(n: usize, carry: Option<&[u8]>) -> [u32; LANES] {
    let mut x = [RANS_L; LANES];
    if let Some(raw) = carry {
        debug_assert!(n >= crate::CARRY_SYMBOLS && raw.len() == n);
        let first = n - crate::CARRY_SYMBOLS;
        for (k, &b) in raw[first..].iter().enumerate() {
            let j = first + k;
            let shift = if k < LANES { 0 } else { 8 };
            x[j % LANES] |= u32::from(b) << shift;
        }
    }
    x
}

#[cfg(feature = "alloc")]
pub(crate) use enc::*;

#[cfg(feature = "alloc")]
mod enc {
    use super::*;

    /// Per-symbol encoder entry for division-free coding: with `v` the state after
    /// renormalisation and `q = (v * rcp) >> (32 + scale) = v / freq`, the new state
    /// `q * M + v % freq + cum` is `v + q * cmpl + cum`, `cmpl = M - freq`.
    ///
    /// `rcp = ceil(2^(32+scale) / freq)` makes `q` exact and the product fit 64 bits, because
    /// renormalisation bounds `v < freq * 2^(32-scale)`: `v * rcp / 2^(32+scale)` exceeds
    /// `v / freq` by less than `v / 2^(32+scale) < freq / 2^(2 scale) <= 1 / freq`, the gap to the
    /// next integer; and `v * rcp <= 2^64 - 2^(32+scale)/freq + freq * 2^(32-scale) - 1 < 2^64`.
    #[derive(Clone, Copy, Default)]
    pub(crate) struct EncSym {
        /// Renormalise (emit a word) when the state is at least this: `freq << (32 - scale)`.
        pub(crate) x_max: u64,
        pub(crate) rcp: u64,
        pub(crate) cmpl: u32,
        pub(crate) cum: u32,
        pub(crate) freq: u32,
    }

    /// Encoder entries for a frequency table.
    pub(crate) fn enc_table(freqs: &[u32; 256], scale_bits: u8) -> [EncSym; 256] {
        let mut out = [EncSym::default(); 256];
        let mut cum = 0u32;
        for (s, &f) in freqs.iter().enumerate() {
            if f == 0 {
                continue;
            }
            out[s] = enc_sym(f, cum, scale_bits);
            cum += f;
        }
        out
    }

    /// The encoder entry of a symbol of frequency `freq` (`1..=2^scale_bits`) at `cum`, for any
    /// alphabet (the frame's bytes, a version-2 image's pairs) at the formats' scale bits (8..=13).
    pub(crate) fn enc_sym(freq: u32, cum: u32, scale_bits: u8) -> EncSym {
        let sb = u32::from(scale_bits);
        let rcp = (1u64 << (32 + sb)).div_ceil(u64::from(freq));
        EncSym { x_max: u64::from(freq) << (32 - sb), rcp, cmpl: (1 << sb) - freq, cum, freq }
    }

    /// One encoding step of a lane: renormalise (a word into `out` just below byte `*end`,
    /// moving `end` down when a word is emitted), then code the symbol; `shift = 32 + scale`.
    #[inline(always)]
    pub(crate) fn encode_one(s: &mut u32, e: &EncSym, shift: u32, out: &mut [u8], end: &mut usize) {
        debug_assert!(e.freq != 0, "symbol missing from its table");
        let at = *end - 2;
        out[at..at + 2].copy_from_slice(&(*s as u16).to_le_bytes());
        let emit = u64::from(*s) >= e.x_max;
        *end -= 2 * emit as usize;
        let v = if emit { *s >> 16 } else { *s };
        let q = ((u64::from(v) * e.rcp) >> shift) as u32;
        *s = v.wrapping_add(q.wrapping_mul(e.cmpl)).wrapping_add(e.cum);
    }

    /// Encode `syms` (tile order) from `init` states. The words are written little-endian at
    /// the end of `out` (at least two bytes per symbol), in stream order: the encoder runs from
    /// the last symbol to the first (lanes in decreasing order within a step) and emits words
    /// in the reverse of the order the decoder reads them, so it writes them back to front.
    /// Returns the final encoder states (the decoder's initial states) and the word count.
    pub(crate) fn encode_lanes(
        syms: &[u8],
        table: &[EncSym; 256],
        scale_bits: u8,
        init: [u32; LANES],
        out: &mut [u8],
    ) -> ([u32; LANES], usize) {
        assert!(out.len() >= 2 * syms.len());
        let shift = 32 + u32::from(scale_bits);
        let mut end = out.len();
        let mut x = init;
        // At most one word per symbol, so `end >= 2` at every write.
        let mut one = |s: &mut u32, sym: u8| encode_one(s, &table[sym as usize], shift, out, &mut end);
        let full = syms.len() / LANES * LANES;
        for (lane, &sym) in syms[full..].iter().enumerate().rev() {
            one(&mut x[lane], sym);
        }
        for step in syms[..full].chunks_exact(LANES).rev() {
            for (s, &sym) in x.iter_mut().zip(step).rev() {
                one(s, sym);
            }
        }
        (x, (out.len() - end) / 2)
    }
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn table_for(freqs: &[u32; 256], bits: u8) -> DecodeTable {
        let mut stored = alloc::vec![0u8; 32];
        for (s, &f) in freqs.iter().enumerate() {
            if f > 0 {
                stored[s / 8] |= 1 << (s % 8);
                stored.extend_from_slice(&((f - 1) as u16).to_le_bytes());
            }
        }
        let mut t = DecodeTable::new();
        t.fill(&stored, bits);
        t
    }

    #[test]
    fn reciprocal_division_is_exact() {
        // Every frequency at every scale, for states at the renormalisation bound and below.
        for bits in 8..=13u8 {
            let m = 1u32 << bits;
            for f in 1..=m {
                let rcp = (1u64 << (32 + u32::from(bits))).div_ceil(u64::from(f));
                let vmax = (u64::from(f) << (32 - u32::from(bits))) - 1;
                for v in [vmax, vmax - 1, vmax / 2, vmax / 3, u64::from(f) * 12345 % (vmax + 1), 65_536, 1] {
                    let v = v.min(vmax) as u32;
                    let q = ((u64::from(v) * rcp) >> (32 + u32::from(bits))) as u32;
                    assert_eq!(q, v / f, "bits {bits} f {f} v {v}");
                    assert!(u64::from(v).checked_mul(rcp).is_some());
                }
            }
        }
    }

    #[test]
    fn encode_step_matches_the_definition() {
        // x' = (v / f) * M + v % f + cum, for every frequency including 1 and M - 1.
        for bits in [8u8, 12, 13] {
            let m = 1u32 << bits;
            for f in [1u32, 2, 3, 5, 255, m / 2, m - 1] {
                let mut freqs = [0u32; 256];
                freqs[0] = m - f - 1;
                freqs[1] = f;
                freqs[2] = 1;
                let tab = enc_table(&freqs, bits);
                let cum = m - f - 1;
                let x_max = u64::from(f) << (32 - u32::from(bits));
                for x in [1u32 << 16, (1 << 16) + 12345, 1 << 24, u32::MAX] {
                    let mut s = x;
                    let (mut out, mut end) = ([0u8; 2], 2);
                    encode_one(&mut s, &tab[1], 32 + u32::from(bits), &mut out, &mut end);
                    let v = if u64::from(x) >= x_max { x >> 16 } else { x };
                    assert_eq!(end, if u64::from(x) >= x_max { 0 } else { 2 });
                    let want = u64::from(v / f) * u64::from(m) + u64::from(v % f) + u64::from(cum);
                    assert_eq!(u64::from(s), want, "bits {bits} f {f} x {x}");
                }
            }
        }
    }

    #[test]
    fn encode_decode_round_trip_with_and_without_carry() {
        let mut freqs = [0u32; 256];
        freqs[1] = 3000;
        freqs[2] = 1000;
        freqs[200] = 95;
        freqs[7] = 1;
        let enc = enc_table(&freqs, 12);
        let dec = table_for(&freqs, 12);
        let syms: Vec<u8> = (0..1000u32).map(|i| [1u8, 2, 1, 200, 1, 7, 2][(i * 7 % 13 % 7) as usize]).collect();
        let raw: Vec<u8> = (0..1000u32).map(|i| (i * 31) as u8).collect();
        for carry in [None, Some(&raw[..])] {
            let init = initial_states(syms.len(), carry);
            let mut buf = alloc::vec![0u8; 2 * syms.len()];
            let (fin, w) = encode_lanes(&syms, &enc, 12, init, &mut buf);
            let states: Vec<u8> = fin.iter().flat_map(|s| s.to_le_bytes()).collect();
            let wbytes = buf[buf.len() - 2 * w..].to_vec();
            let mut out = Vec::new();
            let end = decode_lanes(&dec, &states, &wbytes, syms.len(), |s| out.push(s)).unwrap();
            assert_eq!(out, syms);
            assert_eq!(end, init);
        }
    }
}
