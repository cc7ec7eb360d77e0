//! Shared helpers for the integration tests and the fuzz targets.
#![allow(dead_code)]

pub mod fuzz_logic;
pub mod kernels;

use tileans::{ElemType, Frame};

/// A small deterministic generator (SplitMix64), so that test data needs no extra crates.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// A normal deviate (Box–Muller), for weight-like data.
    pub fn gauss(&mut self) -> f64 {
        let u1 = (self.next() >> 11) as f64 / (1u64 << 53) as f64 + 1e-300;
        let u2 = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// How test tensors are filled.
#[derive(Clone, Copy, Debug)]
pub enum Fill {
    /// Uniformly random bytes (incompressible).
    Uniform,
    /// Weight-like: Gaussian values of the element type (skewed exponents).
    Weights,
    /// Few distinct byte values, very skewed.
    Skewed,
    /// Every byte the same.
    Constant,
}

/// Bytes of `units` units of `elem`, filled as asked.
pub fn make_data(elem: ElemType, units: usize, fill: Fill, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed);
    let unit = elem.planes();
    let mut out = Vec::with_capacity(units * unit);
    for _ in 0..units {
        match fill {
            Fill::Uniform => out.extend((0..unit).map(|_| rng.next() as u8)),
            Fill::Constant => out.extend(std::iter::repeat_n(0x3Cu8, unit)),
            Fill::Skewed => {
                let r = rng.below(100);
                let b = if r < 80 {
                    7
                } else if r < 95 {
                    9
                } else {
                    rng.next() as u8
                };
                out.extend(std::iter::repeat_n(b, unit));
            }
            Fill::Weights => {
                let v = (rng.gauss() * 0.02) as f32;
                match elem {
                    ElemType::Bf16 => out.extend_from_slice(&((v.to_bits() >> 16) as u16).to_le_bytes()),
                    ElemType::F16 => out.extend_from_slice(&f32_to_f16_bits(v).to_le_bytes()),
                    ElemType::F32 => out.extend_from_slice(&v.to_bits().to_le_bytes()),
                    _ => out.push((v * 3000.0).clamp(-127.0, 127.0) as i8 as u8),
                }
            }
        }
    }
    out
}

/// IEEE binary16 bits of `v` (truncating; enough for test data).
pub fn f32_to_f16_bits(v: f32) -> u16 {
    let b = v.to_bits();
    let sign = (b >> 16) & 0x8000;
    let exp = ((b >> 23) & 0xFF) as i32 - 127 + 15;
    let man = (b >> 13) & 0x3FF;
    if exp <= 0 {
        sign as u16
    } else if exp >= 31 {
        (sign | 0x7C00) as u16
    } else {
        (sign | (exp as u32) << 10 | man) as u16
    }
}

/// The row-major bytes of tile `t` cut out of a whole decoded tensor.
pub fn tile_slice(frame: &Frame, whole: &[u8], t: u64) -> Vec<u8> {
    let e = frame.tile(t).unwrap();
    let unit = frame.elem_type().planes();
    let stride = frame.cols() as usize * unit;
    let mut out = Vec::with_capacity(e.symbols() * unit);
    for r in 0..e.rows as usize {
        let at = (e.row0 as usize + r) * stride + e.col0 as usize * unit;
        out.extend_from_slice(&whole[at..at + e.cols as usize * unit]);
    }
    out
}

/// Recompute the header checksum after editing header bytes (to reach the checks behind it).
pub fn reseal(frame: &mut [u8]) {
    let header_len = u32::from_le_bytes(frame[20..24].try_into().unwrap()) as usize;
    if header_len < 40 || header_len > frame.len() {
        return;
    }
    let sum = xxhash_rust::xxh64::xxh64(&frame[..header_len - 8], 0);
    frame[header_len - 8..header_len].copy_from_slice(&sum.to_le_bytes());
}

/// Recompute a device image's header checksum (docs/FORMAT.md section 11) after editing its
/// header, tables or index, when the header's lengths allow it.
pub fn reseal_image(img: &mut [u8]) {
    if img.len() < 64 {
        return;
    }
    let tables = u32::from_le_bytes(img[44..48].try_into().unwrap()) as u64;
    let tiles = u64::from_le_bytes(img[32..40].try_into().unwrap());
    let Some(end) = tiles.checked_mul(16).and_then(|i| i.checked_add(64 + tables)) else { return };
    if end > img.len() as u64 {
        return;
    }
    use xxhash_rust::xxh64::xxh64;
    let sum = xxh64(&img[64..end as usize], xxh64(&img[..56], 0));
    img[56..64].copy_from_slice(&sum.to_le_bytes());
}
