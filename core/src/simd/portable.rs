//! The portable kernel: safe Rust over arrays of 32 lanes. The table lookups are scalar loads;
//! the arithmetic of a step is written as independent per-lane loops that LLVM vectorises for
//! the target (SSE2 on baseline x86_64, NEON on aarch64); the word routing is a branch-free
//! running count.

use crate::{LANES, RANS_L};

/// One step of 32 lanes reading words from `w` (at least the 32 words the step may need);
/// returns the words consumed.
#[inline(always)]
fn step(x: &mut [u32; LANES], lut: &[u32; 4096], scale: u32, w: &[u8; 2 * LANES], out: &mut [u8; LANES]) -> usize {
    let mask = (1u32 << scale) - 1;
    let mut e = [0u32; LANES];
    for (e, &x) in e.iter_mut().zip(x.iter()) {
        // `& 4095` keeps the index provably inside the table (mask < 4096 already).
        *e = lut[(x & mask & 4095) as usize];
    }
    for ((x, &e), o) in x.iter_mut().zip(e.iter()).zip(out.iter_mut()) {
        *o = e as u8;
        *x = ((e >> 20) + 1) * (*x >> scale) + ((e >> 8) & 0xFFF);
    }
    let mut c = 0usize;
    for x in x.iter_mut() {
        let need = *x < RANS_L;
        let at = 2 * (c & (LANES - 1));
        let word = u32::from(u16::from_le_bytes([w[at], w[at + 1]]));
        *x = if need { *x << 16 | word } else { *x };
        c += need as usize;
    }
    c
}

/// Up to `out.len() / 32` whole steps, each started only while at least 32 words remain in
/// `words`. Returns the steps done and the words consumed.
pub(super) fn steps(
    x: &mut [u32; LANES],
    lut: &[u32; 4096],
    scale: u32,
    words: &[u8],
    out: &mut [u8],
) -> (usize, usize) {
    let mut q = 0;
    let mut done = 0;
    for o in out.chunks_exact_mut(LANES) {
        let Some(w) = words.get(2 * q..2 * q + 2 * LANES) else { break };
        q += step(x, lut, scale, w.try_into().expect("32 words"), o.try_into().expect("32 symbols"));
        done += 1;
    }
    (done, q)
}

/// Whole steps over a zero-padded buffer holding `rem < 32` real words: `None` as soon as a
/// step needs more than `rem` words.
pub(super) fn tail_steps(
    x: &mut [u32; LANES],
    lut: &[u32; 4096],
    scale: u32,
    buf: &[u8; 2 * super::TAIL_WORDS],
    rem: usize,
    out: &mut [u8],
) -> Option<usize> {
    let mut q = 0;
    for o in out.chunks_exact_mut(LANES) {
        let w: &[u8; 2 * LANES] = buf[2 * q..2 * q + 2 * LANES].try_into().expect("32 words");
        q += step(x, lut, scale, w, o.try_into().expect("32 symbols"));
        if q > rem {
            return None;
        }
    }
    Some(q)
}
