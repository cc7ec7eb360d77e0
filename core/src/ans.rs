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
    use alloc::vec::Vec;

    /// Per-symbol encoder entry: frequency, cumulative frequency, and a reciprocal for
    /// division-free `x / freq` (Alverson's method, as in ryg_rans).
    #[derive(Clone, Copy, Default)]
    pub(crate) struct EncSym {
        pub(crate) freq: u32,
        pub(crate) cum: u32,
        pub(crate) x_max: u64,
        pub(crate) rcp: u64,
        pub(crate) shift: u32,
    }

    /// Encoder entries for a frequency table.
    pub(crate) fn enc_table(freqs: &[u32; 256], scale_bits: u8) -> [EncSym; 256] {
        let mut out = [EncSym::default(); 256];
        let mut cum = 0u32;
        for (s, &f) in freqs.iter().enumerate() {
            if f == 0 {
                continue;
            }
            // Smallest shift with 2^shift >= f; rcp = ceil(2^(32+shift) / f).
            let shift = 32 - (f - 1).leading_zeros().min(32);
            let shift = if f == 1 { 0 } else { shift };
            let rcp = (1u128 << (32 + shift)).div_ceil(u128::from(f));
            out[s] =
                EncSym { freq: f, cum, x_max: u64::from(f) << (32 - u32::from(scale_bits)), rcp: rcp as u64, shift };
            cum += f;
        }
        out
    }

    /// Encode `syms` (tile order) from `init` states; appends the forward word stream to `words`
    /// and returns the final encoder states (the decoder's initial states).
    pub(crate) fn encode_lanes(
        syms: &[u8],
        table: &[EncSym; 256],
        scale_bits: u8,
        init: [u32; LANES],
        words: &mut Vec<u16>,
    ) -> [u32; LANES] {
        let start = words.len();
        let mut x = init;
        let scale = u32::from(scale_bits);
        for (j, &sym) in syms.iter().enumerate().rev() {
            let e = &table[sym as usize];
            debug_assert!(e.freq != 0, "symbol {sym} missing from its table");
            let lane = j % LANES;
            let mut s = x[lane];
            if u64::from(s) >= e.x_max {
                words.push(s as u16);
                s >>= 16;
            }
            let q = if e.freq == 1 { s } else { ((u128::from(s) * u128::from(e.rcp)) >> (32 + e.shift)) as u32 };
            x[lane] = (q << scale) + (s - q * e.freq) + e.cum;
        }
        words[start..].reverse();
        x
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
        let mut freqs = [0u32; 256];
        for (s, f) in freqs.iter_mut().enumerate() {
            *f = 1 + s as u32 * 7 % 13;
        }
        let tab = enc_table(&freqs, 12);
        for e in tab.iter().filter(|e| e.freq > 1) {
            for x in [1u32 << 16, 65_537, 1 << 20, 0x7FFF_FFFF, u32::MAX, 123_456_789] {
                let q = ((u128::from(x) * u128::from(e.rcp)) >> (32 + e.shift)) as u32;
                assert_eq!(q, x / e.freq, "x={x} f={}", e.freq);
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
            let mut words = Vec::new();
            let fin = encode_lanes(&syms, &enc, 12, init, &mut words);
            let states: Vec<u8> = fin.iter().flat_map(|s| s.to_le_bytes()).collect();
            let wbytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
            let mut out = Vec::new();
            let end = decode_lanes(&dec, &states, &wbytes, syms.len(), |s| out.push(s)).unwrap();
            assert_eq!(out, syms);
            assert_eq!(end, init);
        }
    }
}
