//! Fast decoders: the same 32-lane rANS decode as the scalar oracle (`crate::ans`), run by an AVX2
//! kernel (x86_64) or a portable kernel written for the compiler to vectorise, plus fused
//! emitters that merge planes, undo the element transform and transpose the column-major tile
//! order into row-major output in one pass.
//!
//! **Selection.** [`Kernel::Auto`] picks AVX2 where the CPU has it, else the portable kernel. With
//! `std` the CPU is probed once at run time (`is_x86_feature_detected!`, cached in an atomic);
//! without `std` only what the build targets counts (`cfg(target_feature = "avx2")`, e.g.
//! `-C target-cpu=native`). There is no explicit NEON kernel: no aarch64 toolchain or emulator is
//! available to test one, so other targets use the portable kernel, which LLVM vectorises with
//! whatever the target has (SSE2, NEON, ...).
//!
//! **Semantics.** Every kernel decodes exactly the scalar oracle's symbols, consumes the words in
//! the format's order (within a step, lanes that renormalise take consecutive words in increasing
//! lane order) and reports the same [`Corruption`]s. The SIMD inner loop has no per-symbol
//! checks: a step consumes (and reads) at most 32 words, so a step is started only while at
//! least 32 words remain, one compare per 32 symbols, and it cannot leave the word stream; the
//! remaining steps run on a zero-padded copy of the last (fewer than 32) words with a check
//! after every step that no more words were taken than exist, and a final partial step runs
//! the scalar rule.
//!
//! **Unsafe.** This module is the only place in the crate with `unsafe` code (the AVX2 intrinsics
//! and their unchecked loads and stores); every block states why it is sound.

use crate::error::Corruption;
use crate::table::DecodeTable;
use crate::{LANES, RANS_L};

#[cfg(target_arch = "x86_64")]
mod avx2;
pub(crate) mod emit;
mod portable;
pub(crate) mod xxh;

/// Which decoder implementation to run.
///
/// Every kernel produces the same output bytes and the same errors as [`Kernel::Scalar`], the
/// reference decoder; the others differ only in speed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kernel {
    /// The fastest kernel this CPU supports: [`Kernel::Avx2`] where available, else
    /// [`Kernel::Portable`].
    #[default]
    Auto,
    /// The scalar reference decoder: simple, obviously correct, slow.
    Scalar,
    /// Plain Rust over arrays of 32 lanes, written for the compiler to vectorise; any target.
    Portable,
    /// AVX2 with hardware gathers (`vpgatherdd`) for the table lookups (x86_64).
    Avx2,
    /// AVX2 with simulated gathers (eight scalar loads): faster where gathers are slow (AMD
    /// Zen 4 in the fused BF16 loop; Intel CPUs with the "Downfall" microcode mitigation).
    Avx2SimGather,
    /// The AVX2 kernel with its renormalisation done by AVX-512F/VL instructions on the same
    /// 256-bit registers (mask compare, `vpexpandd`), hardware gathers (x86_64 CPUs with
    /// AVX-512VL: Intel since Skylake-SP, AMD since Zen 4). Needs the `avx512` cargo feature
    /// (Rust 1.89); unavailable without it.
    Avx512,
    /// [`Kernel::Avx512`] with simulated gathers.
    Avx512SimGather,
}

impl Kernel {
    /// Every kernel, [`Kernel::Auto`] first.
    pub const ALL: [Kernel; 7] = [
        Kernel::Auto,
        Kernel::Scalar,
        Kernel::Portable,
        Kernel::Avx2,
        Kernel::Avx2SimGather,
        Kernel::Avx512,
        Kernel::Avx512SimGather,
    ];

    /// A short name ("auto", "scalar", "portable", "avx2", "avx2-simgather").
    pub const fn name(self) -> &'static str {
        match self {
            Kernel::Auto => "auto",
            Kernel::Scalar => "scalar",
            Kernel::Portable => "portable",
            Kernel::Avx2 => "avx2",
            Kernel::Avx2SimGather => "avx2-simgather",
            Kernel::Avx512 => "avx512",
            Kernel::Avx512SimGather => "avx512-simgather",
        }
    }

    /// Whether this kernel can run on this CPU (with this build).
    pub fn is_available(self) -> bool {
        match self {
            Kernel::Auto | Kernel::Scalar | Kernel::Portable => true,
            Kernel::Avx2 | Kernel::Avx2SimGather => avx2_available(),
            Kernel::Avx512 | Kernel::Avx512SimGather => avx512_available(),
        }
    }

    /// The kernel [`Kernel::Auto`] stands for on this CPU: the AVX-512 flavour where the CPU
    /// has AVX-512VL (and the `avx512` feature is on), else AVX2, else portable. Between hardware
    /// and simulated gathers, which differ by CPU (and by microcode), it picks by timing both on
    /// a small synthetic tile the first time it is asked (with `std`; simulated gathers without).
    pub fn detected() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        if let Some(tok) = avx2::Token::get() {
            let flavor = if tok.has_avx512() { avx2::Flavor::Avx512 } else { avx2::Flavor::Avx2 };
            return match (flavor, avx2::prefer_hardware_gather(tok, flavor)) {
                (avx2::Flavor::Avx512, true) => Kernel::Avx512,
                (avx2::Flavor::Avx512, false) => Kernel::Avx512SimGather,
                (avx2::Flavor::Avx2, true) => Kernel::Avx2,
                (avx2::Flavor::Avx2, false) => Kernel::Avx2SimGather,
            };
        }
        Kernel::Portable
    }

    /// The implementation to run, or `None` for the scalar oracle; an error where unavailable.
    pub(crate) fn resolve(self) -> Result<Option<Imp>, crate::Error> {
        let k = if self == Kernel::Auto { Kernel::detected() } else { self };
        Ok(Some(match k {
            Kernel::Scalar => return Ok(None),
            Kernel::Portable => Imp::Portable,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 | Kernel::Avx2SimGather | Kernel::Avx512 | Kernel::Avx512SimGather => {
                let wide = matches!(k, Kernel::Avx512 | Kernel::Avx512SimGather);
                match avx2::Token::get() {
                    Some(tok) if !wide || tok.has_avx512() => {
                        let flavor = if wide { avx2::Flavor::Avx512 } else { avx2::Flavor::Avx2 };
                        Imp::Avx2 { tok, flavor, gather: matches!(k, Kernel::Avx2 | Kernel::Avx512) }
                    }
                    _ => return Err(crate::Error::BadOption("this SIMD kernel is not available on this CPU")),
                }
            }
            _ => return Err(crate::Error::BadOption("this SIMD kernel is not available on this CPU")),
        }))
    }
}

impl core::fmt::Display for Kernel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

fn avx512_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        avx2::Token::get().is_some_and(|t| t.has_avx512())
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

fn avx2_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        avx2::Token::get().is_some()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A resolved fast implementation. The AVX2 variant holds the proof that the CPU has AVX2.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Imp {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2 {
        tok: avx2::Token,
        flavor: avx2::Flavor,
        gather: bool,
    },
}

impl Imp {
    /// Whether the fused loops of this kernel hash a band while decoding the next (see
    /// [`xxh`]): only with simulated gathers, which leave the scalar multiplier idle. With
    /// hardware gathers (measured on Zen 4 and a Xeon) the hash costs as much inside the loop as
    /// after it, and a whole-tensor decode does better table by table, hashing at the end.
    pub(crate) fn hashes_in_loop(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        if let Imp::Avx2 { gather, .. } = self {
            return !gather;
        }
        false
    }
}

/// Words of the zero-padded tail buffer: fewer than 32 real words remain when it is used, and a
/// step starting at word `q <= rem < 32` reads words below `q + 32 <= 63`.
pub(crate) const TAIL_WORDS: usize = 64;

/// The lanes of one ANS section being decoded: states, word position and the table.
pub(crate) struct Lanes<'a> {
    imp: Imp,
    lut: &'a [u32; 4096],
    scale: u32,
    x: [u32; LANES],
    /// The section's words, 2W bytes.
    words: &'a [u8],
    /// Words consumed.
    q: usize,
    /// Symbols decoded.
    pos: usize,
}

impl<'a> Lanes<'a> {
    /// Read and check the 32 initial states (`states`: 128 bytes) of a section whose words are
    /// `words` (2W bytes).
    pub(crate) fn new(imp: Imp, table: &'a DecodeTable, states: &[u8], words: &'a [u8]) -> Result<Self, Corruption> {
        let mut x = [0u32; LANES];
        for (lane, (s, c)) in x.iter_mut().zip(states.chunks_exact(4)).enumerate() {
            *s = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            if *s < RANS_L {
                return Err(Corruption::InitialState { lane: lane as u8 });
            }
        }
        Ok(Lanes { imp, lut: &table.lut, scale: u32::from(table.scale_bits), x, words, q: 0, pos: 0 })
    }

    /// Symbols decoded so far.
    pub(crate) fn symbols_done(&self) -> usize {
        self.pos
    }

    /// Words stored (W).
    fn stored(&self) -> usize {
        self.words.len() / 2
    }

    /// Decode the next `out.len()` symbols (tile order). Every call but the last must ask for a
    /// multiple of 32 symbols (whole steps).
    pub(crate) fn decode(&mut self, out: &mut [u8]) -> Result<(), Corruption> {
        debug_assert_eq!(self.pos % LANES, 0, "only the last call may end inside a step");
        let full = out.len() / LANES * LANES;
        let (body, partial) = out.split_at_mut(full);
        let mut done = 0;
        while done < full {
            if self.stored() - self.q < LANES {
                self.tail(&mut body[done..])?;
                break;
            }
            let (steps, used) = self.margin_steps(&mut body[done..]);
            self.q += used;
            done += steps * LANES;
        }
        self.pos += full;
        self.partial_step(partial)
    }

    /// Whole steps, each started only while at least 32 words remain (a step takes at most 32):
    /// no other checks. Returns the steps done and the words consumed.
    fn margin_steps(&mut self, out: &mut [u8]) -> (usize, usize) {
        let words = &self.words[2 * self.q..];
        match self.imp {
            Imp::Portable => portable::steps(&mut self.x, self.lut, self.scale, words, out),
            #[cfg(target_arch = "x86_64")]
            Imp::Avx2 { tok, flavor, gather } => {
                avx2::steps(tok, flavor, gather, &mut self.x, self.lut, self.scale, words, out)
            }
        }
    }

    /// Whole steps with fewer than 32 words left: run on a zero-padded copy, checking after
    /// every step that the words consumed do not exceed those stored.
    fn tail(&mut self, out: &mut [u8]) -> Result<(), Corruption> {
        let rem = self.stored() - self.q;
        debug_assert!(rem < LANES);
        let mut buf = [0u8; 2 * TAIL_WORDS];
        buf[..2 * rem].copy_from_slice(&self.words[2 * self.q..]);
        let used = match self.imp {
            Imp::Portable => portable::tail_steps(&mut self.x, self.lut, self.scale, &buf, rem, out),
            #[cfg(target_arch = "x86_64")]
            Imp::Avx2 { tok, flavor, gather } => {
                avx2::tail_steps(tok, flavor, gather, &mut self.x, self.lut, self.scale, &buf, rem, out)
            }
        };
        self.q += used.ok_or(Corruption::WordsExhausted)?;
        Ok(())
    }

    /// The first `out.len() < 32` lanes of a final, partial step: the scalar rule.
    fn partial_step(&mut self, out: &mut [u8]) -> Result<(), Corruption> {
        let mask = (1u32 << self.scale) - 1;
        for (lane, o) in out.iter_mut().enumerate() {
            let s = self.x[lane];
            let e = self.lut[(s & mask) as usize];
            *o = e as u8;
            let mut next = ((e >> 20) + 1) * (s >> self.scale) + ((e >> 8) & 0xFFF);
            if next < RANS_L {
                let w = self.words.get(2 * self.q..2 * self.q + 2).ok_or(Corruption::WordsExhausted)?;
                next = next << 16 | u32::from(u16::from_le_bytes([w[0], w[1]]));
                self.q += 1;
            }
            self.x[lane] = next;
        }
        self.pos += out.len();
        Ok(())
    }

    /// The fused AVX2 decode of a two-byte tile with `rows % 32 == 0` whose plane 1 is raw
    /// (`tile.mant`, tile order): decode the next `steps` steps, writing the units of each
    /// 8-column block, merged, rotated and transposed through `tile.ring`, into `out` at the
    /// tile's place, the block before the last one as the last one is decoded (the last block
    /// goes out with [`Self::fused2_flush`]). Returns `Ok(false)`, having done nothing, with
    /// other kernels.
    pub(crate) fn fused2(&mut self, tile: &mut FusedTile, out: &mut [u8], steps: usize) -> Result<bool, Corruption> {
        #[cfg(target_arch = "x86_64")]
        if let Imp::Avx2 { tok, flavor, gather } = self.imp {
            debug_assert_eq!(self.pos % LANES, 0);
            let mut done = 0;
            while done < steps {
                let s0 = self.pos / LANES;
                let mut buf = [0u8; 2 * TAIL_WORDS];
                let tail = self.stored() - self.q < LANES;
                let (words, tail_rem) = if tail {
                    let rem = self.stored() - self.q;
                    buf[..2 * rem].copy_from_slice(&self.words[2 * self.q..]);
                    (&buf[..], Some(rem))
                } else {
                    (&self.words[2 * self.q..], None)
                };
                let lanes = avx2::FusedLanes { x: &mut self.x, words, tail_rem, s0, tile: &mut tile.0 };
                let r = avx2::fused2_steps(tok, flavor, gather, self.lut, self.scale, out, lanes, None, steps - done);
                let (k, q, _) = r.ok_or(Corruption::WordsExhausted)?;
                self.q += q;
                self.pos += LANES * k;
                done += k;
            }
            return Ok(true);
        }
        let _ = (tile, out, steps);
        Ok(false)
    }

    /// [`Self::fused2`] of two tiles (same table and element type) in lockstep, while both have
    /// at least 32 words left at the start of a step; returns the steps done, at most `steps`
    /// (0 with other kernels). Each tile then goes on alone.
    pub(crate) fn fused2_pair(
        a: &mut Lanes,
        ta: &mut FusedTile,
        b: &mut Lanes,
        tb: &mut FusedTile,
        out: &mut [u8],
        steps: usize,
    ) -> usize {
        #[cfg(target_arch = "x86_64")]
        if let Imp::Avx2 { tok, flavor, gather } = a.imp {
            debug_assert!(a.pos.is_multiple_of(LANES) && b.pos.is_multiple_of(LANES) && core::ptr::eq(a.lut, b.lut));
            let la = avx2::FusedLanes {
                x: &mut a.x,
                words: &a.words[2 * a.q..],
                tail_rem: None,
                s0: a.pos / LANES,
                tile: &mut ta.0,
            };
            let lb = avx2::FusedLanes {
                x: &mut b.x,
                words: &b.words[2 * b.q..],
                tail_rem: None,
                s0: b.pos / LANES,
                tile: &mut tb.0,
            };
            let (done, qa, qb) =
                avx2::fused2_steps(tok, flavor, gather, a.lut, a.scale, out, la, Some(lb), steps).expect("unchecked");
            a.q += qa;
            b.q += qb;
            a.pos += LANES * done;
            b.pos += LANES * done;
            return done;
        }
        let _ = (a, ta, b, tb, out, steps);
        0
    }

    /// Write the last block decoded by [`Self::fused2`] (block `b` of the tile).
    pub(crate) fn fused2_flush(&self, tile: &mut FusedTile, out: &mut [u8], b: usize) {
        #[cfg(target_arch = "x86_64")]
        if let Imp::Avx2 { tok, .. } = self.imp {
            avx2::fused2_flush(tok, &mut tile.0, out, b);
        }
        let _ = (tile, out, b);
    }

    /// After the last symbol: every word must have been consumed and every lane must end in
    /// its initial encoder state. Returns the final states (which hold carried bytes).
    pub(crate) fn finish(&self, carries: bool) -> Result<[u32; LANES], Corruption> {
        let stored = self.stored();
        if self.q != stored {
            return Err(Corruption::WordsLeft { stored: stored as u32, consumed: self.q as u32 });
        }
        for (lane, &x) in self.x.iter().enumerate() {
            let ok = if carries { x >> 16 == 1 } else { x == RANS_L };
            if !ok {
                return Err(Corruption::FinalState { lane: lane as u8 });
            }
        }
        Ok(self.x)
    }
}

/// One tile of a fused decode: its raw plane, its place in the output, its ring buffer.
pub(crate) struct FusedTile<'a>(
    #[cfg(target_arch = "x86_64")] avx2::FusedTile<'a>,
    #[cfg(not(target_arch = "x86_64"))] core::marker::PhantomData<&'a ()>,
);

impl<'a> FusedTile<'a> {
    /// `mant`: plane 1 in tile order; the tile's origin at `out[base..]`, rows `stride` bytes
    /// apart; `rows` a multiple of 32; `ring` at least `16 * rows` units.
    pub(crate) fn new(mant: &'a [u8], base: usize, stride: usize, rows: usize, rot: bool, ring: &'a mut [u16]) -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            FusedTile(avx2::FusedTile { mant, base, stride, rows, rot, ring, hash: None })
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (mant, base, stride, rows, rot, ring);
            FusedTile(core::marker::PhantomData)
        }
    }

    /// Let the fused loop of this tile (the first of a pair) hash a few stripes of `hash` per
    /// step, while it decodes.
    pub(crate) fn with_hash(self, hash: Option<&'a mut xxh::HashJob>) -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let mut t = self;
            t.0.hash = hash;
            t
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = hash;
            self
        }
    }
}

/// Decode a whole section of `n` symbols into `out` (tile order); returns the final states.
pub(crate) fn decode_section(
    imp: Imp,
    table: &DecodeTable,
    body: &[u8],
    carries: bool,
    out: &mut [u8],
) -> Result<[u32; LANES], Corruption> {
    let (states, words) = body.split_at(crate::frame::STATES_BYTES);
    let mut lanes = Lanes::new(imp, table, states, words)?;
    lanes.decode(out)?;
    lanes.finish(carries)
}

/// The carried raw bytes of the next plane: `carry[k]` is raw symbol `n - 64 + k`.
pub(crate) fn carried_bytes(fin: &[u32; LANES], n: usize) -> [u8; crate::CARRY_SYMBOLS] {
    let first = n - crate::CARRY_SYMBOLS;
    core::array::from_fn(|k| {
        let j = first + k;
        let shift = if k < LANES { 0 } else { 8 };
        (fin[j % LANES] >> shift) as u8
    })
}

/// Per-lane permutation for renormalisation: for an 8-bit mask `m` of lanes that take a word,
/// entry `i` is the number of set bits of `m` below bit `i` (the lane's word within the group).
#[cfg(target_arch = "x86_64")]
pub(crate) const fn renorm_perm() -> [[u32; 8]; 256] {
    let mut t = [[0u32; 8]; 256];
    let mut m = 0;
    while m < 256 {
        let mut c = 0;
        let mut i = 0;
        while i < 8 {
            if m >> i & 1 == 1 {
                t[m][i] = c;
                c += 1;
            }
            i += 1;
        }
        m += 1;
    }
    t
}

/// Fill `table` from a validated stored table: the same entries as `DecodeTable::fill`,
/// written a symbol's run at a time (a loop LLVM vectorises) instead of entry by entry.
pub(crate) fn fill_table(table: &mut DecodeTable, stored: &[u8], scale_bits: u8) {
    let freqs = crate::table::frequencies(stored);
    table.scale_bits = scale_bits;
    let mut slot = 0usize;
    for (s, &f) in freqs.iter().enumerate() {
        if f == 0 {
            continue;
        }
        let base = (f - 1) << 20 | s as u32;
        let run = &mut table.lut[slot..slot + f as usize];
        for (k, e) in (0u32..).zip(run.iter_mut()) {
            *e = base | k << 8;
        }
        slot += f as usize;
    }
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// Every fast implementation this CPU has.
    fn imps() -> Vec<Imp> {
        Kernel::ALL.into_iter().filter(|k| k.is_available()).filter_map(|k| k.resolve().ok().flatten()).collect()
    }

    /// Symbol 0 with frequency 4095, symbol 1 with frequency 1 (slot 4095); lanes starting at
    /// `0x10FFF` decode symbol 1 and fall to 16, so all 32 lanes take a word in a step, the worst
    /// case the margin check guards against. Words `0x0FFF` keep them on symbol 1 for a while.
    fn worst_case(words: usize) -> (DecodeTable, Vec<u8>, Vec<u8>) {
        let mut stored = alloc::vec![0u8; 32];
        stored[0] = 0b11;
        stored.extend_from_slice(&4094u16.to_le_bytes());
        stored.extend_from_slice(&0u16.to_le_bytes());
        let mut table = DecodeTable::new();
        table.fill(&stored, 12);
        let states = (0..LANES).flat_map(|_| 0x10FFFu32.to_le_bytes()).collect();
        // A buffer whose words end exactly at its end, so an over-read panics or differs.
        let w = (0..words).flat_map(|_| 0x0FFFu16.to_le_bytes()).collect();
        (table, states, w)
    }

    #[test]
    fn every_lane_renormalising_at_the_margin_matches_the_scalar_decoder() {
        for words in 24..=100 {
            for n in [LANES, 2 * LANES, 8 * LANES, 8 * LANES + 5] {
                let (table, states, w) = worst_case(words);
                let mut want = alloc::vec![0u8; n];
                let mut i = 0;
                let scalar = crate::ans::decode_lanes(&table, &states, &w, n, |s| {
                    want[i] = s;
                    i += 1;
                });
                for imp in imps() {
                    // The same contract as `decode_lanes`: symbols, words exhausted or left.
                    let mut lanes = Lanes::new(imp, &table, &states, &w).unwrap();
                    let mut got = alloc::vec![0u8; n];
                    let r = match lanes.decode(&mut got) {
                        Err(e) => Err(e),
                        Ok(()) if lanes.q == words => Ok(lanes.x),
                        Ok(()) => Err(Corruption::WordsLeft { stored: words as u32, consumed: lanes.q as u32 }),
                    };
                    assert!(lanes.q <= words, "{imp:?} consumed {} of {words} words", lanes.q);
                    assert_eq!(r, scalar, "{imp:?}: {words} words, {n} symbols");
                    if r.is_ok() {
                        assert_eq!(got, want, "{imp:?}: {words} words, {n} symbols");
                    }
                }
            }
        }
    }

    #[test]
    fn fused_loop_at_the_margin_matches_the_scalar_decoder() {
        // One 32-row tile of 16 columns (two 8-column blocks, 16 steps), plane 1 raw.
        const ROWS: usize = 32;
        const COLS: usize = 16;
        let n = ROWS * COLS;
        for words in 24..=200 {
            let (table, states, w) = worst_case(words);
            let scalar = crate::ans::decode_lanes(&table, &states, &w, n, |_| {});
            for imp in imps() {
                let mut lanes = Lanes::new(imp, &table, &states, &w).unwrap();
                let mant = alloc::vec![0u8; n];
                let mut out = alloc::vec![0u8; ROWS * 2 * COLS];
                let mut ring = alloc::vec![0u16; 16 * ROWS];
                let mut tile = FusedTile::new(&mant, 0, 2 * COLS, ROWS, true, &mut ring);
                let r = lanes.fused2(&mut tile, &mut out, n / LANES);
                match r {
                    Ok(false) => continue, // no fused kernel
                    Ok(true) => {
                        assert!(lanes.q <= words, "{imp:?} consumed {} of {words} words", lanes.q);
                        if let Ok(x) = scalar {
                            assert_eq!(lanes.x, x, "{imp:?}: {words} words");
                        }
                    }
                    Err(e) => assert_eq!(Err(e), scalar.map(|_| ()), "{imp:?}: {words} words"),
                }
            }
        }
    }

    #[test]
    fn fill_table_matches_the_reference_fill() {
        for (bits, seed) in [(12u8, 1u32), (12, 7), (8, 3), (10, 5)] {
            let m = 1u32 << bits;
            // Frequencies from a small generator, summing to m.
            let mut freqs = [0u32; 256];
            let mut left = m;
            let mut x = seed;
            for f in freqs.iter_mut() {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let take = if x % 3 == 0 { 0 } else { (x >> 16) % (left / 8 + 1) };
                *f = take.min(left);
                left -= *f;
            }
            freqs[255] += left;
            let mut stored = alloc::vec![0u8; 32];
            for (s, &f) in freqs.iter().enumerate().filter(|(_, &f)| f > 0) {
                stored[s / 8] |= 1 << (s % 8);
                stored.extend_from_slice(&((f - 1) as u16).to_le_bytes());
            }
            let (mut a, mut b) = (DecodeTable::new(), DecodeTable::new());
            a.fill(&stored, bits);
            fill_table(&mut b, &stored, bits);
            assert_eq!(a.entries(), b.entries());
            assert_eq!(a.lut.iter().collect::<Vec<_>>(), b.lut.iter().collect::<Vec<_>>());
        }
    }
}
