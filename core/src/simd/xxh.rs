//! XXH64 (seed 0) with a state that can be handed to the fused decode loops, which hash an
//! earlier, finished band of the output a few 32-byte stripes per step: the multiplies of the
//! hash run on the scalar units, which the (vector-bound) decode leaves idle. Same digest as
//! `xxhash_rust::xxh64::xxh64` (tested).

const P1: u64 = 0x9E37_79B1_85EB_CA87;
const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const P3: u64 = 0x1656_67B1_9E37_79F9;
const P4: u64 = 0x85EB_CA77_C2B2_AE63;
const P5: u64 = 0x27D4_EB2F_1656_67C5;

#[inline(always)]
fn round(acc: u64, input: u64) -> u64 {
    acc.wrapping_add(input.wrapping_mul(P2)).rotate_left(31).wrapping_mul(P1)
}

#[inline(always)]
fn read64(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().expect("8 bytes"))
}

/// One 32-byte stripe into the four accumulators. Safety: 32 bytes readable at `p`.
#[inline(always)]
pub(crate) unsafe fn stripe(acc: &mut [u64; 4], p: *const u8) {
    for (i, a) in acc.iter_mut().enumerate() {
        // SAFETY: 8 bytes at p + 8 i < p + 32 (caller).
        *a = round(*a, u64::from_le(unsafe { (p.add(8 * i) as *const u64).read_unaligned() }));
    }
}

/// Whole stripes of a byte range for a decode loop to hash: the accumulators, the next stripe
/// and how many are left. Made by [`Xxh64::job`], consumed by [`Xxh64::end`]; it points into
/// the slice given to `job`, which the caller keeps borrowed (and unchanged) until then.
/// Invariant (relied on by [`HashJob::some`]): `left` stripes of 32 bytes are readable at
/// `ptr`; a job made otherwise must have `left == 0`.
pub(crate) struct HashJob {
    pub acc: [u64; 4],
    pub ptr: *const u8,
    pub left: usize,
}

impl HashJob {
    /// Hash up to `k` of the stripes left.
    #[inline(always)]
    pub(crate) fn some(&mut self, k: usize) {
        let k = k.min(self.left);
        for _ in 0..k {
            // SAFETY: `left` stripes are readable at `ptr` (see `Xxh64::job`).
            unsafe {
                stripe(&mut self.acc, self.ptr);
                self.ptr = self.ptr.add(32);
            }
        }
        self.left -= k;
    }
}

/// Streaming XXH64 with seed 0.
pub(crate) struct Xxh64 {
    acc: [u64; 4],
    total: u64,
    buf: [u8; 32],
    n: usize,
}

impl Xxh64 {
    pub(crate) fn new() -> Self {
        Xxh64 { acc: [P1.wrapping_add(P2), P2, 0, 0u64.wrapping_sub(P1)], total: 0, buf: [0; 32], n: 0 }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        let mut job = self.job(data);
        job.0.some(usize::MAX);
        self.end(job.0);
        let tail = job.1;
        self.buf[self.n..self.n + tail.len()].copy_from_slice(tail);
        self.n += tail.len();
        self.total += tail.len() as u64;
    }

    /// Fill the buffer from `data`, then hand out its whole stripes as a job; returns the job
    /// and the bytes after the stripes, which the caller passes to [`Self::update`] after
    /// [`Self::end`]. The job reads `data`, which must stay borrowed until `end`.
    pub(crate) fn job<'d>(&mut self, mut data: &'d [u8]) -> (HashJob, &'d [u8]) {
        if self.n > 0 {
            let k = (32 - self.n).min(data.len());
            self.buf[self.n..self.n + k].copy_from_slice(&data[..k]);
            self.n += k;
            self.total += k as u64;
            data = &data[k..];
            if self.n < 32 {
                return (HashJob { acc: self.acc, ptr: data.as_ptr(), left: 0 }, data);
            }
            // SAFETY: 32 bytes in `buf`.
            unsafe { stripe(&mut self.acc, self.buf.as_ptr()) };
            self.n = 0;
        }
        let left = data.len() / 32;
        self.total += 32 * left as u64;
        (HashJob { acc: self.acc, ptr: data.as_ptr(), left }, &data[32 * left..])
    }

    /// Take back a job, hashing the stripes it has left.
    pub(crate) fn end(&mut self, mut job: HashJob) {
        job.some(usize::MAX);
        self.acc = job.acc;
    }

    pub(crate) fn digest(&self) -> u64 {
        let [v1, v2, v3, v4] = self.acc;
        let mut h = if self.total >= 32 {
            let mut h = v1
                .rotate_left(1)
                .wrapping_add(v2.rotate_left(7))
                .wrapping_add(v3.rotate_left(12))
                .wrapping_add(v4.rotate_left(18));
            for v in self.acc {
                h = (h ^ round(0, v)).wrapping_mul(P1).wrapping_add(P4);
            }
            h
        } else {
            P5
        };
        h = h.wrapping_add(self.total);
        let mut rest = &self.buf[..self.n];
        while rest.len() >= 8 {
            h = (h ^ round(0, read64(rest))).rotate_left(27).wrapping_mul(P1).wrapping_add(P4);
            rest = &rest[8..];
        }
        if rest.len() >= 4 {
            let k = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes"));
            h = (h ^ u64::from(k).wrapping_mul(P1)).rotate_left(23).wrapping_mul(P2).wrapping_add(P3);
            rest = &rest[4..];
        }
        for &b in rest {
            h = (h ^ u64::from(b).wrapping_mul(P5)).rotate_left(11).wrapping_mul(P1);
        }
        h ^= h >> 33;
        h = h.wrapping_mul(P2);
        h ^= h >> 29;
        h = h.wrapping_mul(P3);
        h ^ (h >> 32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_xxhash_rust() {
        let data: [u8; 300] = core::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ (i >> 3) as u8);
        for n in 0..data.len() {
            let d = &data[..n];
            let want = xxhash_rust::xxh64::xxh64(d, 0);
            let mut h = Xxh64::new();
            h.update(d);
            assert_eq!(h.digest(), want, "n = {n}");
            // In pieces, some through jobs hashed partly by "the kernel".
            for cut in [1, 5, 31, 33, 64, 100] {
                let mut h = Xxh64::new();
                let mut rest = d;
                let mut i = 0;
                while !rest.is_empty() {
                    let k = (cut + i).min(rest.len());
                    if i % 2 == 0 {
                        h.update(&rest[..k]);
                    } else {
                        let (mut job, tail) = h.job(&rest[..k]);
                        job.some(1);
                        h.end(job);
                        h.update(tail);
                    }
                    rest = &rest[k..];
                    i += 1;
                }
                assert_eq!(h.digest(), want, "n = {n}, cut = {cut}");
            }
        }
    }
}
