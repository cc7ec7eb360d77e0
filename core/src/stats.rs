//! Order-0 statistics of byte planes: the bound a per-tensor table can reach.

use crate::elem::ElemType;

/// Symbol counts of each byte plane of a tensor.
#[derive(Clone, Debug)]
pub struct PlaneHistogram {
    /// `counts[p][s]`: occurrences of byte `s` in plane `p`.
    pub counts: [[u64; 256]; 4],
    /// The element type.
    pub elem: ElemType,
}

impl PlaneHistogram {
    /// An empty histogram.
    pub fn new(elem: ElemType) -> Self {
        PlaneHistogram { counts: [[0; 256]; 4], elem }
    }

    /// Count the planes of `data` (whole units; a trailing partial unit is ignored).
    pub fn add(&mut self, data: &[u8]) {
        let planes = self.elem.planes();
        for unit in data.chunks_exact(planes) {
            for p in 0..planes {
                self.counts[p][self.elem.plane_byte(unit, p) as usize] += 1;
            }
        }
    }

    /// Add another histogram of the same type.
    pub fn merge(&mut self, other: &PlaneHistogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            for (x, y) in a.iter_mut().zip(b.iter()) {
                *x += y;
            }
        }
    }

    /// `n * H0` of plane `p` in bits: the size of the plane under its own order-0 model.
    pub fn entropy_bits(&self, p: usize) -> f64 {
        entropy_bits(&self.counts[p])
    }

    /// The order-0 bound of a layout in bits: `n * H0` for each plane in `coded_mask`, 8 bits per
    /// symbol for the others.
    pub fn bound_bits(&self, coded_mask: u8) -> f64 {
        (0..self.elem.planes())
            .map(|p| {
                if coded_mask >> p & 1 == 1 {
                    self.entropy_bits(p)
                } else {
                    8.0 * self.counts[p].iter().sum::<u64>() as f64
                }
            })
            .sum()
    }
}

/// `n * H0` in bits of a symbol histogram.
pub(crate) fn entropy_bits(counts: &[u64; 256]) -> f64 {
    let n: u64 = counts.iter().sum();
    if n == 0 {
        return 0.0;
    }
    let nf = n as f64;
    counts.iter().filter(|&&c| c > 0).map(|&c| c as f64 * libm::log2(nf / c as f64)).sum()
}

/// The order-0 bound in bits of `data` (a tensor of `elem`) for a layout coding the planes in
/// `coded_mask` with one table per tensor and storing the others raw.
pub fn order0_bound_bits(data: &[u8], elem: ElemType, coded_mask: u8) -> f64 {
    let mut h = PlaneHistogram::new(elem);
    h.add(data);
    h.bound_bits(coded_mask)
}
