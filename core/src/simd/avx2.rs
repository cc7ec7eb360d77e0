//! The AVX2 kernel: 32 lanes in four 256-bit registers.
//!
//! One step, per register of 8 lanes: `slot = x & (M-1)`; one table entry per lane by
//! `vpgatherdd` (or eight scalar loads: "simulated gather"); `x = (freq) * (x >> scale) + bias`
//! with `vpmulld`; the lanes with `x < 2^16` form an 8-bit mask (`vmovmskps`), which indexes a
//! table of permutations that route the next words of the shared stream to those lanes in
//! increasing lane order; `popcnt` of the mask advances the stream. The four registers take
//! their words one after the other, so the words of a step are read in lane order, as the
//! format requires.

use core::arch::x86_64::*;

use super::renorm_perm;
use super::xxh::HashJob;
use crate::LANES;

/// Proof that the CPU running us has AVX2 and POPCNT, and whether it has AVX-512F and
/// AVX-512VL too (for [`Flavor::Avx512`]; only with the `avx512` feature, whose intrinsics need
/// Rust 1.89). Only [`Token::get`] makes one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Token {
    avx512: bool,
}

impl Token {
    /// A token if the CPU has AVX2 and POPCNT: probed once and cached under `std`, decided at
    /// compile time (`target_feature`) without it.
    #[inline]
    pub(crate) fn get() -> Option<Token> {
        #[cfg(feature = "std")]
        {
            use core::sync::atomic::{AtomicU8, Ordering};
            // 0: not probed yet; 1: no AVX2; 2: AVX2; 3: AVX2 and AVX-512VL.
            static STATE: AtomicU8 = AtomicU8::new(0);
            let s = match STATE.load(Ordering::Relaxed) {
                0 => {
                    let avx2 = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("popcnt");
                    let avx512 = cfg!(feature = "avx512")
                        && std::is_x86_feature_detected!("avx512f")
                        && std::is_x86_feature_detected!("avx512vl");
                    let s = match (avx2, avx512) {
                        (false, _) => 1,
                        (true, false) => 2,
                        (true, true) => 3,
                    };
                    STATE.store(s, Ordering::Relaxed);
                    s
                }
                s => s,
            };
            (s >= 2).then_some(Token { avx512: s == 3 })
        }
        #[cfg(not(feature = "std"))]
        {
            cfg!(all(target_feature = "avx2", target_feature = "popcnt")).then_some(Token {
                avx512: cfg!(all(feature = "avx512", target_feature = "avx512f", target_feature = "avx512vl")),
            })
        }
    }

    /// Whether the CPU has AVX-512F and AVX-512VL.
    pub(crate) fn has_avx512(self) -> bool {
        self.avx512
    }
}

/// How a kernel renormalises (the rest of a step is the same AVX2 code).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// `vmovmskps` of a compare indexes a table of `vpermd` permutations; `vpblendvb` merges.
    Avx2,
    /// AVX-512VL on the same 256-bit registers: an unsigned compare into a mask register,
    /// `vpexpandd` routes the words to the lanes that take one, a masked shift-or merges.
    Avx512,
}

/// Whether hardware gathers beat simulated ones in the fused loop of `flavor` on this CPU:
/// measured once (best of several runs of each on a synthetic 32-row tile) and cached. Without
/// `std` (no clock), simulated gathers, which are never far behind.
pub(crate) fn prefer_hardware_gather(tok: Token, flavor: Flavor) -> bool {
    #[cfg(feature = "std")]
    {
        use core::sync::atomic::{AtomicU8, Ordering};
        // Per flavour: 0 not measured; 1 simulated; 2 hardware.
        static CHOICE: [AtomicU8; 2] = [AtomicU8::new(0), AtomicU8::new(0)];
        let cell = &CHOICE[(flavor == Flavor::Avx512) as usize];
        match cell.load(Ordering::Relaxed) {
            0 => {
                let hw = calibrate(tok, flavor);
                cell.store(if hw { 2 } else { 1 }, Ordering::Relaxed);
                hw
            }
            c => c == 2,
        }
    }
    #[cfg(not(feature = "std"))]
    {
        let _ = (tok, flavor);
        false
    }
}

/// Time both gathers on a synthetic tile: 32 rows, 64 columns, 16 equiprobable symbols.
#[cfg(feature = "std")]
fn calibrate(tok: Token, flavor: Flavor) -> bool {
    const ROWS: usize = 32;
    const STEPS: usize = 64;
    let lut: [u32; 4096] = core::array::from_fn(|s| 255 << 20 | (s as u32 % 256) << 8 | (s as u32 / 256));
    let mut seed = 0x9E37_79B9_u32;
    let mut rnd = || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    let words: [u8; 2 * LANES * STEPS] = core::array::from_fn(|_| rnd() as u8);
    let mant: [u8; LANES * STEPS] = core::array::from_fn(|_| rnd() as u8);
    let init: [u32; LANES] = core::array::from_fn(|_| 1 << 16 | rnd() >> 16);
    let mut out = [0u8; ROWS * 2 * STEPS];
    let mut ring = [0u16; 16 * ROWS];
    let mut best = [u64::MAX; 2];
    for _ in 0..7 {
        for (g, b) in best.iter_mut().enumerate() {
            let mut x = init;
            let mut tile = FusedTile {
                mant: &mant,
                base: 0,
                stride: 2 * STEPS,
                rows: ROWS,
                rot: true,
                ring: &mut ring,
                hash: None,
            };
            let lanes = FusedLanes { x: &mut x, words: &words, tail_rem: None, s0: 0, tile: &mut tile };
            let t = std::time::Instant::now();
            let r = fused2_steps(tok, flavor, g == 1, &lut, 12, &mut out, lanes, None, STEPS);
            *b = (*b).min(t.elapsed().as_nanos() as u64);
            core::hint::black_box(r);
        }
    }
    best[1] < best[0]
}

/// Permutations for the renormalisation (see [`renorm_perm`]): 8 KiB, 32-byte aligned rows.
#[repr(C, align(32))]
struct Perm([[u32; 8]; 256]);
static PERM: Perm = Perm(renorm_perm());

/// Up to `out.len() / 32` whole steps, each started only while at least 32 words remain in
/// `words`. Returns the steps done and the words consumed.
#[allow(clippy::too_many_arguments)]
pub(super) fn steps(
    tok: Token,
    flavor: Flavor,
    gather: bool,
    x: &mut [u32; LANES],
    lut: &[u32; 4096],
    scale: u32,
    words: &[u8],
    out: &mut [u8],
) -> (usize, usize) {
    let steps = out.len() / LANES;
    assert!(flavor == Flavor::Avx2 || tok.has_avx512());
    let a = Args {
        lut: lut.as_ptr(),
        scale,
        words: words.as_ptr(),
        avail: words.len() / 2,
        out: out.as_mut_ptr(),
        steps,
        rem: 0,
    };
    // SAFETY: the token proves AVX2 and POPCNT (and AVX-512F/VL for that flavour, asserted). A
    // step starts at word q only if q + 32 <= avail (the loop's margin check), and reads words
    // below q + 32 (each of the four registers loads 8 words at the position the previous
    // registers left, at most 24 words past q): inside `words`. Step s writes
    // out[32 s..32 s + 32], s < out.len() / 32. Table indices are masked below 2^scale <= 4096.
    unsafe { run_any::<false>(flavor, gather, x, a) }.expect("unchecked steps cannot fail")
}

/// Whole steps over a zero-padded buffer holding `rem < 32` real words: `None` as soon as a
/// step needs more than `rem` words.
#[allow(clippy::too_many_arguments)]
pub(super) fn tail_steps(
    tok: Token,
    flavor: Flavor,
    gather: bool,
    x: &mut [u32; LANES],
    lut: &[u32; 4096],
    scale: u32,
    buf: &[u8; 2 * super::TAIL_WORDS],
    rem: usize,
    out: &mut [u8],
) -> Option<usize> {
    assert!(rem < LANES);
    assert!(flavor == Flavor::Avx2 || tok.has_avx512());
    let steps = out.len() / LANES;
    let a =
        Args { lut: lut.as_ptr(), scale, words: buf.as_ptr(), avail: buf.len() / 2, out: out.as_mut_ptr(), steps, rem };
    // SAFETY: the token proves the features (asserted for AVX-512). Each step starts at word
    // q <= rem < 32 (the kernel returns as soon as q exceeds rem) and reads below word
    // q + 32 <= 63, inside the 64-word buffer. Stores stay in `out[..32 * steps]`. Table
    // indices are masked below 4096.
    unsafe { run_any::<true>(flavor, gather, x, a) }.map(|(_, q)| q)
}

/// Arguments of the decode loop.
struct Args {
    lut: *const u32,
    scale: u32,
    words: *const u8,
    /// Words readable at `words`: a step starts only at q with q + 32 <= avail.
    avail: usize,
    out: *mut u8,
    steps: usize,
    rem: usize,
}

/// Safety: the features of `flavor`, and the bounds argued by the callers.
unsafe fn run_any<const CHECK: bool>(
    flavor: Flavor,
    gather: bool,
    x: &mut [u32; LANES],
    a: Args,
) -> Option<(usize, usize)> {
    match (flavor, gather) {
        (Flavor::Avx2, true) => run_avx2::<true, CHECK>(x, a),
        (Flavor::Avx2, false) => run_avx2::<false, CHECK>(x, a),
        #[cfg(feature = "avx512")]
        (Flavor::Avx512, true) => run_avx512::<true, CHECK>(x, a),
        #[cfg(feature = "avx512")]
        (Flavor::Avx512, false) => run_avx512::<false, CHECK>(x, a),
        #[cfg(not(feature = "avx512"))]
        (Flavor::Avx512, _) => unreachable!("no token allows the AVX-512 flavour without the avx512 feature"),
    }
}

#[target_feature(enable = "avx2,popcnt")]
unsafe fn run_avx2<const GATHER: bool, const CHECK: bool>(x: &mut [u32; LANES], a: Args) -> Option<(usize, usize)> {
    run::<GATHER, CHECK, false>(x, a)
}

#[cfg(feature = "avx512")]
#[target_feature(enable = "avx2,popcnt,avx512f,avx512vl")]
unsafe fn run_avx512<const GATHER: bool, const CHECK: bool>(x: &mut [u32; LANES], a: Args) -> Option<(usize, usize)> {
    run::<GATHER, CHECK, true>(x, a)
}

/// Look up the table entries of 8 lanes: `vpgatherdd`, or eight scalar loads.
/// Safety: AVX2 in the caller; every index below 4096 (the table's length).
#[inline(always)]
unsafe fn lookup<const GATHER: bool>(lut: *const u32, slot: __m256i) -> __m256i {
    if GATHER {
        _mm256_i32gather_epi32::<4>(lut as *const i32, slot)
    } else {
        // Indices two at a time through 64-bit extractions; each entry broadcast straight from
        // memory (a load, no shuffle) and blended into place (an ALU operation), so that the
        // shuffle unit, busy with the rest of the step, is spared.
        let lo = _mm256_castsi256_si128(slot);
        let hi = _mm256_extracti128_si256::<1>(slot);
        let pairs = [
            _mm_cvtsi128_si64(lo) as u64,
            _mm_extract_epi64::<1>(lo) as u64,
            _mm_cvtsi128_si64(hi) as u64,
            _mm_extract_epi64::<1>(hi) as u64,
        ];
        let g = |k: usize| {
            let i = (pairs[k / 2] >> (32 * (k % 2))) as u32 as usize;
            _mm256_set1_epi32(*lut.add(i) as i32)
        };
        let mut r = g(0);
        r = _mm256_blend_epi32::<0x02>(r, g(1));
        r = _mm256_blend_epi32::<0x04>(r, g(2));
        r = _mm256_blend_epi32::<0x08>(r, g(3));
        r = _mm256_blend_epi32::<0x10>(r, g(4));
        r = _mm256_blend_epi32::<0x20>(r, g(5));
        r = _mm256_blend_epi32::<0x40>(r, g(6));
        _mm256_blend_epi32::<0x80>(r, g(7))
    }
}

/// Decode one symbol in 8 lanes: the entry `e` and the state before renormalisation,
/// `freq * (x >> scale) + bias` computed as `(freq - 1) * xs + (xs + bias)` so that the addend
/// is ready before the product. Safety: AVX2 in the caller.
#[inline(always)]
unsafe fn advance(x: __m256i, e: __m256i, shift: __m128i) -> __m256i {
    let xs = _mm256_srl_epi32(x, shift);
    let bias = _mm256_add_epi32(_mm256_and_si256(_mm256_srli_epi32::<8>(e), _mm256_set1_epi32(0xFFF)), xs);
    _mm256_add_epi32(_mm256_mullo_epi32(_mm256_srli_epi32::<20>(e), xs), bias)
}

/// Renormalise 8 lanes: those with `xn < 2^16` take the next words of the stream at `words`
/// (word `q` on), in increasing lane order. Returns the new states and the words taken.
/// Safety: AVX2 and POPCNT (and AVX-512F/VL with `AVX512`) in the caller; 8 words readable.
// The AVX-512 intrinsics are stable since Rust 1.89: the `avx512` feature says so.
#[cfg_attr(feature = "avx512", allow(clippy::incompatible_msrv))]
#[inline(always)]
unsafe fn renorm<const AVX512: bool>(xn: __m256i, words: *const u8, q: usize) -> (__m256i, usize) {
    let w = _mm256_cvtepu16_epi32(_mm_loadu_si128(words.add(2 * q) as *const __m128i));
    if AVX512 {
        #[cfg(feature = "avx512")]
        {
            let k = _mm256_cmplt_epu32_mask(xn, _mm256_set1_epi32(1 << 16));
            let w = _mm256_maskz_expand_epi32(k, w);
            (_mm256_mask_or_epi32(xn, k, _mm256_slli_epi32::<16>(xn), w), (k as u32).count_ones() as usize)
        }
        #[cfg(not(feature = "avx512"))]
        unreachable!("the AVX-512 flavour needs the avx512 feature")
    } else {
        let need = _mm256_cmpeq_epi32(_mm256_srli_epi32::<16>(xn), _mm256_setzero_si256());
        let m = _mm256_movemask_ps(_mm256_castsi256_ps(need)) as u32;
        let perm = _mm256_load_si256(PERM.0[m as usize].as_ptr() as *const __m256i);
        let w = _mm256_permutevar8x32_epi32(w, perm);
        (_mm256_blendv_epi8(xn, _mm256_or_si256(_mm256_slli_epi32::<16>(xn), w), need), m.count_ones() as usize)
    }
}

/// The decode loop. With `CHECK`, returns `None` after the first step whose words run past
/// `rem`. Safety: the caller has the features (AVX-512F/VL with `AVX512`), and every load and
/// store stays in bounds as argued at the call sites.
#[cfg_attr(feature = "avx512", allow(clippy::incompatible_msrv))]
#[inline(always)]
unsafe fn run<const GATHER: bool, const CHECK: bool, const AVX512: bool>(
    st: &mut [u32; LANES],
    a: Args,
) -> Option<(usize, usize)> {
    let mask = _mm256_set1_epi32(((1u32 << a.scale) - 1) as i32);
    let m8 = _mm256_set1_epi32(0xFF);
    let shift = _mm_cvtsi32_si128(a.scale as i32);
    let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    let sp = st.as_mut_ptr() as *mut __m256i;
    // SAFETY (all loads/stores of states): `st` is 32 u32 = four 32-byte vectors.
    let mut x = [
        _mm256_loadu_si256(sp),
        _mm256_loadu_si256(sp.add(1)),
        _mm256_loadu_si256(sp.add(2)),
        _mm256_loadu_si256(sp.add(3)),
    ];
    let mut q = 0usize;
    let mut done = 0;
    for s in 0..a.steps {
        if q + LANES > a.avail {
            break;
        }
        let mut e = [_mm256_setzero_si256(); 4];
        for i in 0..4 {
            // SAFETY: indices masked below 2^scale <= 4096.
            e[i] = lookup::<GATHER>(a.lut, _mm256_and_si256(x[i], mask));
            x[i] = advance(x[i], e[i], shift);
        }
        // SAFETY: step s writes out[32 s..32 s + 32], inside `out` (see callers).
        let dst = a.out.add(LANES * s);
        if AVX512 {
            #[cfg(feature = "avx512")]
            for (i, &ei) in e.iter().enumerate() {
                _mm256_mask_cvtepi32_storeu_epi8(dst.add(8 * i) as *mut i8, 0xFF, ei);
            }
        } else {
            let s01 = _mm256_packus_epi32(_mm256_and_si256(e[0], m8), _mm256_and_si256(e[1], m8));
            let s23 = _mm256_packus_epi32(_mm256_and_si256(e[2], m8), _mm256_and_si256(e[3], m8));
            let syms = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(s01, s23), order);
            _mm256_storeu_si256(dst as *mut __m256i, syms);
        }
        for xi in x.iter_mut() {
            // SAFETY: reads words q..q + 8, in bounds as argued by the callers.
            let (nx, used) = renorm::<AVX512>(*xi, a.words, q);
            *xi = nx;
            q += used;
        }
        if CHECK && q > a.rem {
            return None;
        }
        done = s + 1;
    }
    _mm256_storeu_si256(sp, x[0]);
    _mm256_storeu_si256(sp.add(1), x[1]);
    _mm256_storeu_si256(sp.add(2), x[2]);
    _mm256_storeu_si256(sp.add(3), x[3]);
    Some((done, q))
}

/// AVX2 [`super::emit::merge2`]: blocks of 8 columns by 16 (then 8) rows, merged into 16-bit
/// units, transposed with unpacks and stored as row segments; the edges go to the portable code.
#[allow(clippy::too_many_arguments)]
pub(super) fn merge2(
    tok: Token,
    hi: &[u8],
    lo: &[u8],
    rows: usize,
    cols: usize,
    rot: bool,
    out: &mut [u8],
    stride: usize,
) {
    let _ = tok;
    let n = rows * cols;
    assert!(hi.len() >= n && lo.len() >= n && rows >= 1 && out.len() >= (rows - 1) * stride + 2 * cols);
    let cfull = cols / 8 * 8;
    // SAFETY: the token proves AVX2. Blocks cover rows r..r+16 (or r+8) <= rows and columns
    // c..c+8 <= cols: the loads read hi/lo[(c + j) * rows + r..][..16] inside rows * cols <= len,
    // the stores write out[(r + i) * stride + 2 c..][..16], below (rows - 1) * stride + 2 cols.
    let rfull = unsafe {
        if rot {
            merge2_blocks::<true>(hi.as_ptr(), lo.as_ptr(), rows, cfull, out.as_mut_ptr(), stride)
        } else {
            merge2_blocks::<false>(hi.as_ptr(), lo.as_ptr(), rows, cfull, out.as_mut_ptr(), stride)
        }
    };
    if rfull < rows {
        super::emit::merge2_portable(hi, lo, rows, cols, rot, out, stride, rfull);
    }
    if cfull < cols {
        super::emit::merge2_portable(
            &hi[cfull * rows..],
            &lo[cfull * rows..],
            rows,
            cols - cfull,
            rot,
            &mut out[2 * cfull..],
            stride,
            0,
        );
    }
}

/// Transpose 8 vectors of 8 u16 (per 128-bit lane): in `v[j]` column j, rows 0..8; out row i.
#[target_feature(enable = "avx2")]
fn transpose8x16(v: [__m256i; 8]) -> [__m256i; 8] {
    let a0 = _mm256_unpacklo_epi16(v[0], v[1]);
    let a1 = _mm256_unpackhi_epi16(v[0], v[1]);
    let a2 = _mm256_unpacklo_epi16(v[2], v[3]);
    let a3 = _mm256_unpackhi_epi16(v[2], v[3]);
    let a4 = _mm256_unpacklo_epi16(v[4], v[5]);
    let a5 = _mm256_unpackhi_epi16(v[4], v[5]);
    let a6 = _mm256_unpacklo_epi16(v[6], v[7]);
    let a7 = _mm256_unpackhi_epi16(v[6], v[7]);
    let b0 = _mm256_unpacklo_epi32(a0, a2);
    let b1 = _mm256_unpackhi_epi32(a0, a2);
    let b2 = _mm256_unpacklo_epi32(a1, a3);
    let b3 = _mm256_unpackhi_epi32(a1, a3);
    let b4 = _mm256_unpacklo_epi32(a4, a6);
    let b5 = _mm256_unpackhi_epi32(a4, a6);
    let b6 = _mm256_unpacklo_epi32(a5, a7);
    let b7 = _mm256_unpackhi_epi32(a5, a7);
    [
        _mm256_unpacklo_epi64(b0, b4),
        _mm256_unpackhi_epi64(b0, b4),
        _mm256_unpacklo_epi64(b1, b5),
        _mm256_unpackhi_epi64(b1, b5),
        _mm256_unpacklo_epi64(b2, b6),
        _mm256_unpackhi_epi64(b2, b6),
        _mm256_unpacklo_epi64(b3, b7),
        _mm256_unpackhi_epi64(b3, b7),
    ]
}

/// The 8-column blocks of [`merge2`] over `cfull` columns; returns the rows done (a multiple
/// of 8). Safety: AVX2, and the bounds argued in [`merge2`].
#[target_feature(enable = "avx2")]
unsafe fn merge2_blocks<const ROT: bool>(
    hi: *const u8,
    lo: *const u8,
    rows: usize,
    cfull: usize,
    out: *mut u8,
    stride: usize,
) -> usize {
    let mut r = 0;
    while r + 16 <= rows {
        for c in (0..cfull).step_by(8) {
            // SAFETY: AVX2 (this function's contract); rows r..r + 16 and columns c..c + 8 are
            // inside the planes and the output (see merge2).
            unsafe { merge2_block::<ROT, true>(hi, lo, rows, r, c, out, stride) };
        }
        r += 16;
    }
    if r + 8 <= rows {
        for c in (0..cfull).step_by(8) {
            // SAFETY: as above, for rows r..r + 8.
            unsafe { merge2_block::<ROT, false>(hi, lo, rows, r, c, out, stride) };
        }
        r += 8;
    }
    r
}

/// One block of [`merge2_blocks`]: 8 columns from column `c`, 16 rows from row `r` when `FULL`,
/// else 8. Safety: AVX2; those rows and columns are inside the planes and the output.
#[target_feature(enable = "avx2")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn merge2_block<const ROT: bool, const FULL: bool>(
    hi: *const u8,
    lo: *const u8,
    rows: usize,
    r: usize,
    c: usize,
    out: *mut u8,
    stride: usize,
) {
    let mut v = [_mm256_setzero_si256(); 8];
    for (j, vj) in v.iter_mut().enumerate() {
        let at = (c + j) * rows + r;
        // SAFETY: 16 (FULL) or 8 bytes at `at`, inside the planes (caller).
        let (h, l) = unsafe {
            if FULL {
                (_mm_loadu_si128(hi.add(at) as *const __m128i), _mm_loadu_si128(lo.add(at) as *const __m128i))
            } else {
                (_mm_loadl_epi64(hi.add(at) as *const __m128i), _mm_loadl_epi64(lo.add(at) as *const __m128i))
            }
        };
        let u = _mm256_or_si256(_mm256_slli_epi16::<8>(_mm256_cvtepu8_epi16(h)), _mm256_cvtepu8_epi16(l));
        *vj = if ROT { _mm256_or_si256(_mm256_srli_epi16::<1>(u), _mm256_slli_epi16::<15>(u)) } else { u };
    }
    let t = transpose8x16(v);
    for (i, ti) in t.iter().enumerate() {
        // SAFETY: row r + i (and r + 8 + i when FULL) < rows, columns c..c + 8 <= cols (caller).
        unsafe {
            let p = out.add((r + i) * stride + 2 * c);
            _mm_storeu_si128(p as *mut __m128i, _mm256_castsi256_si128(*ti));
            if FULL {
                let p = out.add((r + 8 + i) * stride + 2 * c);
                _mm_storeu_si128(p as *mut __m128i, _mm256_extracti128_si256::<1>(*ti));
            }
        }
    }
}

/// AVX2 [`super::emit::split2`]: blocks of 16 rows by 8 columns loaded as row segments,
/// transposed with unpacks, rotated, split into high and low bytes and stored as column
/// segments of the two planes; the edges go to the portable code.
#[allow(clippy::too_many_arguments)]
#[cfg(feature = "alloc")] // only the encoder uses it
pub(super) fn split2(
    tok: Token,
    src: &[u8],
    stride: usize,
    rows: usize,
    cols: usize,
    rot: bool,
    hi: &mut [u8],
    lo: &mut [u8],
) {
    let _ = tok;
    let n = rows * cols;
    assert!(hi.len() >= n && lo.len() >= n && rows >= 1 && src.len() >= (rows - 1) * stride + 2 * cols);
    let cfull = cols / 8 * 8;
    let rfull = rows / 16 * 16;
    // SAFETY: the token proves AVX2. Blocks cover rows r..r+16 <= rows and columns c..c+8 <=
    // cols: the loads read src[(r + i) * stride + 2 c..][..16], below (rows - 1) * stride +
    // 2 cols <= len; the stores write hi/lo[(c + j) * rows + r..][..16], below rows * cols.
    unsafe {
        if rot {
            split2_blocks::<true>(src.as_ptr(), stride, rows, rfull, cfull, hi.as_mut_ptr(), lo.as_mut_ptr());
        } else {
            split2_blocks::<false>(src.as_ptr(), stride, rows, rfull, cfull, hi.as_mut_ptr(), lo.as_mut_ptr());
        }
    }
    if rfull < rows {
        super::emit::split2_portable(src, stride, rows, cols, rot, hi, lo, rfull);
    }
    if cfull < cols {
        let (h, l) = (&mut hi[cfull * rows..], &mut lo[cfull * rows..]);
        super::emit::split2_portable(&src[2 * cfull..], stride, rows, cols - cfull, rot, h, l, 0);
    }
}

/// Safety: AVX2, and the bounds argued in [`split2`].
#[target_feature(enable = "avx2")]
#[cfg(feature = "alloc")] // only the encoder uses it
unsafe fn split2_blocks<const ROT: bool>(
    src: *const u8,
    stride: usize,
    rows: usize,
    rfull: usize,
    cfull: usize,
    hi: *mut u8,
    lo: *mut u8,
) {
    let m8 = _mm256_set1_epi16(0xFF);
    let mut r = 0;
    while r < rfull {
        let mut c = 0;
        while c < cfull {
            let mut v = [_mm256_setzero_si256(); 8];
            for (i, vi) in v.iter_mut().enumerate() {
                // SAFETY: rows r + i and r + 8 + i, units c..c + 8 (see split2).
                let a = _mm_loadu_si128(src.add((r + i) * stride + 2 * c) as *const __m128i);
                let b = _mm_loadu_si128(src.add((r + 8 + i) * stride + 2 * c) as *const __m128i);
                *vi = _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(a), b);
            }
            let t = transpose8x16(v);
            for (j, &tj) in t.iter().enumerate() {
                let u = if ROT { _mm256_or_si256(_mm256_slli_epi16::<1>(tj), _mm256_srli_epi16::<15>(tj)) } else { tj };
                let p = _mm256_packus_epi16(_mm256_srli_epi16::<8>(u), _mm256_and_si256(u, m8));
                let p = _mm256_permute4x64_epi64::<0b11_01_10_00>(p);
                let at = (c + j) * rows + r;
                // SAFETY: 16 bytes of column c + j from row r (see split2).
                _mm_storeu_si128(hi.add(at) as *mut __m128i, _mm256_castsi256_si128(p));
                _mm_storeu_si128(lo.add(at) as *mut __m128i, _mm256_extracti128_si256::<1>(p));
            }
            c += 8;
        }
        r += 16;
    }
}

/// One tile of a fused two-byte decode (see [`fused2_steps`]): its plane-1 bytes, where its
/// units go in the output, and its ring of two 8-column blocks of 16-bit units (column-major,
/// `8 * rows` each) between decode and transpose.
pub(super) struct FusedTile<'a> {
    /// Plane 1 (raw), tile order: at least 32 bytes per step decoded.
    pub mant: &'a [u8],
    /// Offset of the tile's origin in the output; row `r`, column `c` at
    /// `base + r * stride + 2 c`.
    pub base: usize,
    pub stride: usize,
    pub rows: usize,
    pub rot: bool,
    pub ring: &'a mut [u16],
    /// Stripes of an earlier part of the output to hash meanwhile (the first tile of a pair).
    pub hash: Option<&'a mut HashJob>,
}

/// The lanes of one tile in a fused call: states, words from the current position (or the
/// zero-padded tail buffer and its real word count), and the first step.
pub(super) struct FusedLanes<'w, 't, 'a> {
    pub x: &'t mut [u32; LANES],
    pub words: &'w [u8],
    pub tail_rem: Option<usize>,
    pub s0: usize,
    pub tile: &'t mut FusedTile<'a>,
}

/// Check everything the fused loop of `j` touches in `steps` steps, and make its arguments.
/// `out` is the output's start and `out_len` its length (one pointer for both tiles of a pair).
fn fused_args(
    j: &mut FusedLanes,
    lut: &[u32; 4096],
    scale: u32,
    out: *mut u8,
    out_len: usize,
    steps: usize,
) -> FusedArgs {
    let f = &mut *j.tile;
    let rows = f.rows;
    let spb = rows / 4;
    assert!(rows.is_multiple_of(32) && rows >= 32 && f.ring.len() >= 16 * rows && f.stride >= 16);
    let end = j.s0 + steps;
    let blocks = end.div_ceil(spb);
    // Mantissas of every step; the columns of every block in `out`.
    assert!(f.mant.len() >= LANES * end);
    assert!(blocks == 0 || out_len >= f.base + (rows - 1) * f.stride + 16 * blocks);
    let rem = match j.tail_rem {
        None => 0,
        Some(rem) => {
            assert!(rem < LANES && j.words.len() >= 2 * super::TAIL_WORDS);
            rem
        }
    };
    FusedArgs {
        lut: lut.as_ptr(),
        scale,
        words: j.words.as_ptr(),
        avail: j.words.len() / 2,
        mant: f.mant.as_ptr(),
        // In bounds: base < out_len when blocks > 0 (assert); unused otherwise.
        out: out.wrapping_add(f.base),
        stride: f.stride,
        rows,
        ring: f.ring.as_mut_ptr(),
        s0: j.s0,
        steps,
        rem,
    }
}

/// Decode `steps` steps of one tile, or of two tiles in lockstep (their dependency chains
/// overlap), each a tile whose rows are a multiple of 32 (so each step is 32 consecutive rows
/// of one column) and whose plane 1 is raw, writing finished units into `out`: step `s` stores
/// its 32 merged units into block `s / spb` of the tile's ring (`spb = rows / 4` steps per
/// 8-column block), and every fourth step transposes one 16-row piece of the previous block
/// into the output. The last block is flushed by [`fused2_flush`]. Words as for [`steps`] (a
/// step starts only while every tile has 32 words left), or for a single tile the padded tail
/// with its real word count (`tail_rem`: then `None` when the words run out). A hash job on the
/// first tile (`FusedTile::hash`) gets a few stripes hashed per step. Returns the steps
/// done and the words each tile consumed.
#[allow(clippy::too_many_arguments)]
pub(super) fn fused2_steps(
    tok: Token,
    flavor: Flavor,
    gather: bool,
    lut: &[u32; 4096],
    scale: u32,
    out: &mut [u8],
    a: FusedLanes,
    b: Option<FusedLanes>,
    steps: usize,
) -> Option<(usize, usize, usize)> {
    let mut a = a;
    assert!(flavor == Flavor::Avx2 || tok.has_avx512());
    let rot = a.tile.rot;
    let (outp, out_len) = (out.as_mut_ptr(), out.len());
    let aa = fused_args(&mut a, lut, scale, outp, out_len, steps);
    let check = a.tail_rem.is_some();
    // Hash jobs read only the `left` stripes at `ptr`, a slice the caller keeps borrowed (see
    // `xxh::Xxh64::job`), so not `out`; the empty job reads nothing.
    let mut none = HashJob { acc: [0; 4], ptr: core::ptr::null(), left: 0 };
    let h: &mut HashJob = match a.tile.hash.as_deref_mut() {
        Some(h) => h,
        None => &mut none,
    };
    // SAFETY (both arms): the token proves AVX2 and POPCNT (and AVX-512F/VL for that flavour,
    // asserted). Word reads: as in `steps` (a step starts at q only if q + 32 <= avail and reads
    // below q + 32) or `tail_steps` (each step starts at word q <= rem < 32 and reads below
    // q + 32 <= 64 words of the padded buffer). Mantissas: step s reads mant[32 s..][..32],
    // s < end; ring: block b's units at ring[(b % 2) 8 rows..][..8 rows]; output: pieces of
    // blocks below `blocks`, rows below `rows` and columns below 8 blocks of each tile: all
    // asserted by `fused_args`.
    match b {
        None => unsafe {
            let q = match (flavor, gather, rot, check) {
                (Flavor::Avx2, true, true, false) => fused1_avx2::<true, true, false>(a.x, aa, h),
                (Flavor::Avx2, true, false, false) => fused1_avx2::<true, false, false>(a.x, aa, h),
                (Flavor::Avx2, false, true, false) => fused1_avx2::<false, true, false>(a.x, aa, h),
                (Flavor::Avx2, false, false, false) => fused1_avx2::<false, false, false>(a.x, aa, h),
                (Flavor::Avx2, true, true, true) => fused1_avx2::<true, true, true>(a.x, aa, h),
                (Flavor::Avx2, true, false, true) => fused1_avx2::<true, false, true>(a.x, aa, h),
                (Flavor::Avx2, false, true, true) => fused1_avx2::<false, true, true>(a.x, aa, h),
                (Flavor::Avx2, false, false, true) => fused1_avx2::<false, false, true>(a.x, aa, h),
                #[cfg(not(feature = "avx512"))]
                (Flavor::Avx512, ..) => unreachable!("no token allows the AVX-512 flavour without the avx512 feature"),
                #[cfg(feature = "avx512")]
                (Flavor::Avx512, true, true, false) => fused1_avx512::<true, true, false>(a.x, aa, h),
                #[cfg(feature = "avx512")]
                (Flavor::Avx512, true, false, false) => fused1_avx512::<true, false, false>(a.x, aa, h),
                #[cfg(feature = "avx512")]
                (Flavor::Avx512, false, true, false) => fused1_avx512::<false, true, false>(a.x, aa, h),
                #[cfg(feature = "avx512")]
                (Flavor::Avx512, false, false, false) => fused1_avx512::<false, false, false>(a.x, aa, h),
                #[cfg(feature = "avx512")]
                (Flavor::Avx512, true, true, true) => fused1_avx512::<true, true, true>(a.x, aa, h),
                #[cfg(feature = "avx512")]
                (Flavor::Avx512, true, false, true) => fused1_avx512::<true, false, true>(a.x, aa, h),
                #[cfg(feature = "avx512")]
                (Flavor::Avx512, false, true, true) => fused1_avx512::<false, true, true>(a.x, aa, h),
                #[cfg(feature = "avx512")]
                (Flavor::Avx512, false, false, true) => fused1_avx512::<false, false, true>(a.x, aa, h),
            }?;
            Some((q.0, q.1, 0))
        },
        Some(mut b) => {
            assert!(!check && b.tail_rem.is_none() && b.tile.rot == rot, "pairs run unchecked steps only");
            let ab = fused_args(&mut b, lut, scale, outp, out_len, steps);
            // SAFETY: as above, for each tile of the pair (both regions checked against `out`).
            unsafe {
                Some(match (flavor, gather, rot) {
                    (Flavor::Avx2, true, true) => fused2_avx2::<true, true>(a.x, aa, b.x, ab, h),
                    (Flavor::Avx2, true, false) => fused2_avx2::<true, false>(a.x, aa, b.x, ab, h),
                    (Flavor::Avx2, false, true) => fused2_avx2::<false, true>(a.x, aa, b.x, ab, h),
                    (Flavor::Avx2, false, false) => fused2_avx2::<false, false>(a.x, aa, b.x, ab, h),
                    #[cfg(not(feature = "avx512"))]
                    (Flavor::Avx512, ..) => {
                        unreachable!("no token allows the AVX-512 flavour without the avx512 feature")
                    }
                    #[cfg(feature = "avx512")]
                    (Flavor::Avx512, true, true) => fused2_avx512::<true, true>(a.x, aa, b.x, ab, h),
                    #[cfg(feature = "avx512")]
                    (Flavor::Avx512, true, false) => fused2_avx512::<true, false>(a.x, aa, b.x, ab, h),
                    #[cfg(feature = "avx512")]
                    (Flavor::Avx512, false, true) => fused2_avx512::<false, true>(a.x, aa, b.x, ab, h),
                    #[cfg(feature = "avx512")]
                    (Flavor::Avx512, false, false) => fused2_avx512::<false, false>(a.x, aa, b.x, ab, h),
                })
            }
        }
    }
}

/// Transpose every piece of block `b` of a tile, the last block [`fused2_steps`] decoded (the
/// pieces of a block go out while the next block is decoded).
pub(super) fn fused2_flush(tok: Token, f: &mut FusedTile, out: &mut [u8], b: usize) {
    let _ = tok;
    let rows = f.rows;
    assert!(
        rows.is_multiple_of(16)
            && f.ring.len() >= 16 * rows
            && out.len() >= f.base + (rows - 1) * f.stride + 16 * (b + 1)
    );
    for p in 0..rows / 16 {
        // SAFETY: AVX2 by the token; piece p of block b reads ring[(b % 2) 8 rows + j rows + 16 p..][..16]
        // for j < 8 and writes rows 16 p..16 p + 16, columns 8 b..8 b + 8 of the tile (asserts).
        unsafe {
            let dst = out.as_mut_ptr().add(f.base + 16 * b);
            piece16(f.ring.as_ptr().add((b % 2) * 8 * rows), rows, p, dst, f.stride)
        };
    }
}

/// Transpose piece `p` (rows 16p..16p+16) of an 8-column block of 16-bit units, column-major
/// with `rows` per column at `blk`, into rows of `out` (`stride` apart, block origin at `out`).
#[target_feature(enable = "avx2")]
unsafe fn piece16(blk: *const u16, rows: usize, p: usize, out: *mut u8, stride: usize) {
    let v: [__m256i; 8] = core::array::from_fn(|j| _mm256_loadu_si256(blk.add(j * rows + 16 * p) as *const __m256i));
    let t = transpose8x16(v);
    for (i, ti) in t.iter().enumerate() {
        _mm_storeu_si128(out.add((16 * p + i) * stride) as *mut __m128i, _mm256_castsi256_si128(*ti));
        _mm_storeu_si128(out.add((16 * p + 8 + i) * stride) as *mut __m128i, _mm256_extracti128_si256::<1>(*ti));
    }
}

/// Stripes (32 bytes) of a [`HashJob`] hashed per step of one tile (which writes 64 bytes).
const HASH1: usize = 2;

/// Arguments of the fused loop.
struct FusedArgs {
    lut: *const u32,
    scale: u32,
    words: *const u8,
    /// Words readable at `words`: a step starts only at q with q + 32 <= avail.
    avail: usize,
    mant: *const u8,
    out: *mut u8,
    stride: usize,
    rows: usize,
    ring: *mut u16,
    s0: usize,
    steps: usize,
    rem: usize,
}

#[target_feature(enable = "avx2,popcnt")]
unsafe fn fused1_avx2<const GATHER: bool, const ROT: bool, const CHECK: bool>(
    x: &mut [u32; LANES],
    a: FusedArgs,
    h: &mut HashJob,
) -> Option<(usize, usize)> {
    run_fused1::<GATHER, ROT, CHECK, false>(x, a, h)
}

#[cfg(feature = "avx512")]
#[target_feature(enable = "avx2,popcnt,avx512f,avx512vl")]
unsafe fn fused1_avx512<const GATHER: bool, const ROT: bool, const CHECK: bool>(
    x: &mut [u32; LANES],
    a: FusedArgs,
    h: &mut HashJob,
) -> Option<(usize, usize)> {
    run_fused1::<GATHER, ROT, CHECK, true>(x, a, h)
}

#[target_feature(enable = "avx2,popcnt")]
unsafe fn fused2_avx2<const GATHER: bool, const ROT: bool>(
    xa: &mut [u32; LANES],
    aa: FusedArgs,
    xb: &mut [u32; LANES],
    ab: FusedArgs,
    h: &mut HashJob,
) -> (usize, usize, usize) {
    run_fused2::<GATHER, ROT, false>(xa, aa, xb, ab, h)
}

#[cfg(feature = "avx512")]
#[target_feature(enable = "avx2,popcnt,avx512f,avx512vl")]
unsafe fn fused2_avx512<const GATHER: bool, const ROT: bool>(
    xa: &mut [u32; LANES],
    aa: FusedArgs,
    xb: &mut [u32; LANES],
    ab: FusedArgs,
    h: &mut HashJob,
) -> (usize, usize, usize) {
    run_fused2::<GATHER, ROT, true>(xa, aa, xb, ab, h)
}

/// Load 32 states into four registers. Safety: AVX in the caller.
#[inline(always)]
unsafe fn load_states(st: &[u32; LANES]) -> [__m256i; 4] {
    let sp = st.as_ptr() as *const __m256i;
    [
        _mm256_loadu_si256(sp),
        _mm256_loadu_si256(sp.add(1)),
        _mm256_loadu_si256(sp.add(2)),
        _mm256_loadu_si256(sp.add(3)),
    ]
}

/// Store four registers as 32 states. Safety: AVX in the caller.
#[inline(always)]
unsafe fn store_states(st: &mut [u32; LANES], x: &[__m256i; 4]) {
    let sp = st.as_mut_ptr() as *mut __m256i;
    for (i, xi) in x.iter().enumerate() {
        _mm256_storeu_si256(sp.add(i), *xi);
    }
}

/// Step `s` of a fused tile: step `i` of 8-column block `b` (`s = b spb + i`), tracked without
/// divisions.
#[derive(Clone, Copy)]
struct Pos {
    s: usize,
    b: usize,
    i: usize,
}

impl Pos {
    #[inline(always)]
    fn new(s: usize, spb: usize) -> Pos {
        Pos { s, b: s / spb, i: s % spb }
    }

    /// The next step. With hardware gathers (`DIV`), by division: measured a little faster
    /// there (Zen 4, ~1%), slower with simulated gathers.
    #[inline(always)]
    fn next<const DIV: bool>(self, spb: usize) -> Pos {
        if DIV {
            Pos::new(self.s + 1, spb)
        } else if self.i + 1 == spb {
            Pos { s: self.s + 1, b: self.b + 1, i: 0 }
        } else {
            Pos { s: self.s + 1, b: self.b, i: self.i + 1 }
        }
    }
}

/// One step `s` of a fused tile (see [`fused2_steps`]); returns the words consumed. Safety:
/// the features, and the bounds argued there.
#[inline(always)]
unsafe fn fused_step<const GATHER: bool, const ROT: bool, const AVX512: bool>(
    x: &mut [__m256i; 4],
    q: usize,
    a: &FusedArgs,
    p: Pos,
) -> usize {
    let mask = _mm256_set1_epi32(((1u32 << a.scale) - 1) as i32);
    let m8 = _mm256_set1_epi32(0xFF);
    let shift = _mm_cvtsi32_si128(a.scale as i32);
    let (rows, ring) = (a.rows, a.ring);
    let Pos { s, b, i } = p;
    let mut u = [_mm256_setzero_si256(); 4];
    for k in 0..4 {
        let e = lookup::<GATHER>(a.lut, _mm256_and_si256(x[k], mask));
        x[k] = advance(x[k], e, shift);
        u[k] = _mm256_and_si256(e, m8);
    }
    // The units, 16 lanes at a time: symbol << 8 | mantissa byte, rotated right by one for
    // BF16. Symbols packed to 16 bits in lane order, mantissas zero-extended.
    let dst = ring.add((b % 2) * 8 * rows + LANES * i);
    for h in 0..2 {
        let sym = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packus_epi32(u[2 * h], u[2 * h + 1]));
        let m = _mm256_cvtepu8_epi16(_mm_loadu_si128(a.mant.add(LANES * s + 16 * h) as *const __m128i));
        let v = _mm256_or_si256(_mm256_slli_epi16::<8>(sym), m);
        let v = if ROT { _mm256_or_si256(_mm256_srli_epi16::<1>(v), _mm256_slli_epi16::<15>(v)) } else { v };
        _mm256_storeu_si256(dst.add(16 * h) as *mut __m256i, v);
    }
    let mut used = 0;
    for xi in x.iter_mut() {
        let (nx, k) = renorm::<AVX512>(*xi, a.words, q + used);
        *xi = nx;
        used += k;
    }
    // Meanwhile, one piece (16 rows) of the previous block goes out every fourth step.
    if b > 0 && i % 4 == 0 {
        piece16(ring.add(((b - 1) % 2) * 8 * rows), rows, i / 4, a.out.add(16 * (b - 1)), a.stride);
    }
    used
}

/// The fused loop of one tile. Safety: the features, and the bounds argued in [`fused2_steps`].
#[inline(always)]
unsafe fn run_fused1<const GATHER: bool, const ROT: bool, const CHECK: bool, const AVX512: bool>(
    st: &mut [u32; LANES],
    a: FusedArgs,
    h: &mut HashJob,
) -> Option<(usize, usize)> {
    // The loop without a hash job stays free of it.
    if !GATHER && h.left > 0 {
        fused1_loop::<GATHER, ROT, CHECK, AVX512, true>(st, a, h)
    } else {
        fused1_loop::<GATHER, ROT, CHECK, AVX512, false>(st, a, h)
    }
}

/// [`run_fused1`], with or without a hash job.
#[inline(always)]
unsafe fn fused1_loop<const GATHER: bool, const ROT: bool, const CHECK: bool, const AVX512: bool, const HASH: bool>(
    st: &mut [u32; LANES],
    a: FusedArgs,
    h: &mut HashJob,
) -> Option<(usize, usize)> {
    let mut x = load_states(st);
    let mut q = 0usize;
    let mut done = 0;
    let mut hj = HashJob { acc: h.acc, ptr: h.ptr, left: h.left };
    let spb = a.rows / 4;
    let mut p = Pos::new(a.s0, spb);
    while done < a.steps && q + LANES <= a.avail {
        q += fused_step::<GATHER, ROT, AVX512>(&mut x, q, &a, p);
        p = p.next::<GATHER>(spb);
        if CHECK && q > a.rem {
            return None;
        }
        done += 1;
        if HASH && hj.left >= HASH1 {
            hj.some(HASH1);
        }
    }
    (h.acc, h.ptr, h.left) = (hj.acc, hj.ptr, hj.left);
    store_states(st, &x);
    Some((done, q))
}

/// The fused loop of two tiles in lockstep (unchecked steps only). Safety: as for
/// [`run_fused1`], for each tile.
#[inline(always)]
unsafe fn run_fused2<const GATHER: bool, const ROT: bool, const AVX512: bool>(
    sa: &mut [u32; LANES],
    aa: FusedArgs,
    sb: &mut [u32; LANES],
    ab: FusedArgs,
    h: &mut HashJob,
) -> (usize, usize, usize) {
    if !GATHER && h.left > 0 {
        fused2_loop::<GATHER, ROT, AVX512, true>(sa, aa, sb, ab, h)
    } else {
        fused2_loop::<GATHER, ROT, AVX512, false>(sa, aa, sb, ab, h)
    }
}

/// [`run_fused2`], with or without a hash job.
#[inline(always)]
unsafe fn fused2_loop<const GATHER: bool, const ROT: bool, const AVX512: bool, const HASH: bool>(
    sa: &mut [u32; LANES],
    aa: FusedArgs,
    sb: &mut [u32; LANES],
    ab: FusedArgs,
    h: &mut HashJob,
) -> (usize, usize, usize) {
    let (mut xa, mut xb) = (load_states(sa), load_states(sb));
    let (mut qa, mut qb) = (0usize, 0usize);
    let mut done = 0;
    let mut hj = HashJob { acc: h.acc, ptr: h.ptr, left: h.left };
    let (spa, spb) = (aa.rows / 4, ab.rows / 4);
    let (mut pa, mut pb) = (Pos::new(aa.s0, spa), Pos::new(ab.s0, spb));
    while done < aa.steps && qa + LANES <= aa.avail && qb + LANES <= ab.avail {
        qa += fused_step::<GATHER, ROT, AVX512>(&mut xa, qa, &aa, pa);
        qb += fused_step::<GATHER, ROT, AVX512>(&mut xb, qb, &ab, pb);
        (pa, pb) = (pa.next::<GATHER>(spa), pb.next::<GATHER>(spb));
        done += 1;
        if HASH && hj.left >= 2 * HASH1 {
            hj.some(2 * HASH1);
        }
    }
    (h.acc, h.ptr, h.left) = (hj.acc, hj.ptr, hj.left);
    store_states(sa, &xa);
    store_states(sb, &xb);
    (done, qa, qb)
}
