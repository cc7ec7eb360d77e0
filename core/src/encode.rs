//! The encoder: tensor bytes in, frame bytes out.
//!
//! Work is split so that callers can parallelise it: [`Encoder::new`] makes one pass over the
//! tensor (histograms, tables, checksum), [`Encoder::encode_tile`] codes one tile independently
//! of the others, and [`Encoder::finish`] assembles the frame.

use alloc::vec;
use alloc::vec::Vec;

use crate::ans::{enc_table, encode_lanes, initial_states, EncSym};
use crate::elem::ElemType;
use crate::error::Error;
use crate::frame::{
    descriptor, div_ceil, matrix_view, pad4, TileExtent, TileMode, FIXED_HEADER, FLAG_CONTENT_CHECKSUM, STATES_BYTES,
};
use crate::table::{quantize, stored_len};
use crate::{CARRY_SYMBOLS, FORMAT_VERSION, MAGIC, MAX_RANK, MAX_TABLES, MAX_TILE_SYMBOLS};

/// Encoder settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodeOptions {
    /// Tile rows (GEMM N direction).
    pub tile_rows: u32,
    /// Tile columns in units (GEMM K direction).
    pub tile_cols: u32,
    /// Frequencies sum to `2^scale_bits` (8..=12).
    pub scale_bits: u8,
    /// Store an XXH64 of the decoded tensor, checked by whole-tensor decodes.
    pub content_checksum: bool,
    /// Consider entropy-coding every plane of BF16 and F16, not just plane 0 (denser, two coded
    /// symbols per element to decode). F32 always considers every plane: the low bytes of real
    /// F32 checkpoints are not uniform, and F32 is not a format engines decode on the GPU.
    pub dense: bool,
    /// Up to this many tables per coded plane, each tile using the one that codes it best.
    pub max_tables: u8,
    /// Reshape tiles of tensors narrower or shorter than a tile (conv kernels, vectors) so that
    /// a tile still holds about `tile_rows * tile_cols` symbols; rows stay a multiple of 32.
    pub adapt_tile_shape: bool,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions {
            tile_rows: 32,
            tile_cols: 512,
            scale_bits: 12,
            content_checksum: true,
            dense: false,
            max_tables: 4,
            adapt_tile_shape: true,
        }
    }
}

/// One encoded tile: its record bytes and its index descriptors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedTile {
    /// The tile record (sections of every plane, each padded to 4 bytes).
    pub bytes: Vec<u8>,
    modes: [TileMode; 4],
}

impl EncodedTile {
    /// How plane `p` was stored.
    pub fn mode(&self, p: usize) -> TileMode {
        self.modes[p]
    }
}

struct CodedPlane {
    /// Stored tables.
    stored: Vec<Vec<u8>>,
    enc: Vec<[EncSym; 256]>,
    /// Table per tile (empty when there is one table).
    tile_table: Vec<u8>,
}

/// A tensor prepared for encoding.
pub struct Encoder<'a> {
    data: &'a [u8],
    elem: ElemType,
    dims: [u64; MAX_RANK],
    rank: usize,
    rows: u64,
    cols: u64,
    grid_cols: u64,
    tiles: u64,
    opts: EncodeOptions,
    planes: [Option<CodedPlane>; 4],
    content_sum: Option<u64>,
}

/// Encode a tensor in one call (single-threaded; see [`Encoder`] to spread tiles over threads).
pub fn encode(data: &[u8], elem: ElemType, shape: &[u64], opts: &EncodeOptions) -> Result<Vec<u8>, Error> {
    let enc = Encoder::new(data, elem, shape, opts)?;
    let tiles: Vec<EncodedTile> = (0..enc.num_tiles()).map(|t| enc.encode_tile(t)).collect();
    enc.finish(&tiles)
}

/// An upper bound of the size of the frame [`encode`] writes for a tensor of this type and shape
/// with these options (docs/FORMAT.md section 8), so that callers can size the output first.
pub fn encode_bound(elem: ElemType, shape: &[u64], opts: &EncodeOptions) -> Result<u64, Error> {
    if shape.len() > MAX_RANK {
        return Err(Error::BadRank(shape.len() as u8));
    }
    let (rows, cols) = matrix_view(elem, shape).ok_or(Error::BadShape)?;
    let (tr, tc) = if opts.adapt_tile_shape {
        adapted_tile(rows, cols, opts.tile_rows, opts.tile_cols)
    } else {
        (opts.tile_rows, opts.tile_cols)
    };
    if tr == 0 || tc == 0 {
        return Err(Error::BadTileShape { rows: tr, cols: tc });
    }
    let p = elem.planes() as u64;
    let coded = if opts.dense || elem == ElemType::F32 { p } else { 1 };
    let tiles = if rows == 0 || cols == 0 { 0 } else { div_ceil(rows, u64::from(tr)) * div_ceil(cols, u64::from(tc)) };
    // Fixed header, header and content checksums, dims, tables, their padding.
    let fixed = FIXED_HEADER as u64 + 16 + 8 * shape.len() as u64 + coded * (1 + u64::from(opts.max_tables) * 544) + 3;
    // Index entry, and up to 3 bytes of padding per section (a section is never larger than raw).
    let per_tile = 4 + 4 * coded + 3 * p;
    tiles.checked_mul(per_tile).and_then(|t| t.checked_add(fixed + rows * cols * p)).ok_or(Error::TooLarge)
}

/// The tile shape for a `rows x cols` matrix: a tile narrower than the matrix allows becomes
/// taller (rows rounded up to a multiple of 32), a flat one wider, keeping about `tr * tc` symbols.
pub(crate) fn adapted_tile(rows: u64, cols: u64, tr: u32, tc: u32) -> (u32, u32) {
    let target = u64::from(tr) * u64::from(tc);
    if cols < u64::from(tc) && rows > u64::from(tr) && cols > 0 {
        let want = div_ceil(target, cols).next_multiple_of(32).min(rows);
        if want * cols > MAX_TILE_SYMBOLS {
            return (tr, tc);
        }
        (want as u32, cols as u32)
    } else if rows < u64::from(tr) && cols > u64::from(tc) && rows > 0 {
        let want = div_ceil(target, rows).min(cols);
        (rows as u32, want as u32)
    } else {
        (tr, tc)
    }
}

/// Bits to code `counts` with frequencies `freqs` (all counted symbols must have a frequency).
fn cross_entropy_bits(counts: &[u64; 256], freqs: &[u32; 256], scale_bits: u8) -> f64 {
    let m = f64::from(1u32 << scale_bits);
    counts.iter().zip(freqs).filter(|(&c, _)| c > 0).map(|(&c, &f)| c as f64 * libm::log2(m / f64::from(f))).sum()
}

fn store_table(freqs: &[u32; 256]) -> Vec<u8> {
    let mut out = vec![0u8; 32];
    for (s, &f) in freqs.iter().enumerate() {
        if f > 0 {
            out[s / 8] |= 1 << (s % 8);
            out.extend_from_slice(&((f - 1) as u16).to_le_bytes());
        }
    }
    debug_assert_eq!(out.len(), stored_len(freqs.iter().filter(|&&f| f > 0).count()));
    out
}

impl<'a> Encoder<'a> {
    /// Validate the input, gather statistics and build the tables.
    pub fn new(data: &'a [u8], elem: ElemType, shape: &[u64], opts: &EncodeOptions) -> Result<Self, Error> {
        if shape.len() > MAX_RANK {
            return Err(Error::BadRank(shape.len() as u8));
        }
        if opts.tile_rows == 0
            || opts.tile_cols == 0
            || u64::from(opts.tile_rows) * u64::from(opts.tile_cols) > MAX_TILE_SYMBOLS
        {
            return Err(Error::BadTileShape { rows: opts.tile_rows, cols: opts.tile_cols });
        }
        if !crate::SCALE_BITS_RANGE.contains(&opts.scale_bits) {
            return Err(Error::BadScaleBits(opts.scale_bits));
        }
        if opts.max_tables == 0 || opts.max_tables as usize > MAX_TABLES {
            return Err(Error::BadOption("max_tables must be 1..=16"));
        }
        let (rows, cols) = matrix_view(elem, shape).ok_or(Error::BadShape)?;
        let expected = rows * cols * elem.planes() as u64;
        if data.len() as u64 != expected {
            return Err(Error::BufferSize { expected, actual: data.len() as u64 });
        }
        let mut dims = [0u64; MAX_RANK];
        dims[..shape.len()].copy_from_slice(shape);
        // The content checksum is computed with the first statistics pass over the data, a
        // band of rows at a time, so that the tensor is read once for both.
        let mut hasher = opts.content_checksum.then(|| xxhash_rust::xxh64::Xxh64::new(0));
        let mut opts = opts.clone();
        if opts.adapt_tile_shape {
            (opts.tile_rows, opts.tile_cols) = adapted_tile(rows, cols, opts.tile_rows, opts.tile_cols);
        }
        let grid_rows = div_ceil(rows, u64::from(opts.tile_rows));
        let grid_cols = div_ceil(cols, u64::from(opts.tile_cols));
        let tiles = if rows == 0 || cols == 0 { 0 } else { grid_rows * grid_cols };
        let mut enc = Encoder {
            data,
            elem,
            dims,
            rank: shape.len(),
            rows,
            cols,
            grid_cols,
            tiles,
            opts,
            planes: [None, None, None, None],
            content_sum: None,
        };
        if tiles == 0 {
            enc.content_sum = hasher.map(|mut h| {
                h.update(data);
                h.digest()
            });
            return Ok(enc);
        }
        let candidates = if enc.opts.dense || elem == ElemType::F32 { elem.planes() } else { 1 };
        let clustering = enc.opts.max_tables > 1 && enc.tiles >= 2;
        let band_bytes = enc.opts.tile_rows as usize * cols as usize * elem.planes();
        for p in 0..candidates {
            let mut counts = [0u64; 256];
            let mut tile_hists: Vec<[u64; 256]> = Vec::new();
            if clustering {
                // Clustering needs every tile's histogram; their sum is the plane's. Band by
                // band, each hashed while it is in cache.
                tile_hists.reserve_exact(enc.tiles as usize);
                for (band, bytes) in data.chunks(band_bytes).enumerate() {
                    if let Some(h) = hasher.as_mut() {
                        h.update(bytes);
                    }
                    let first = band as u64 * grid_cols;
                    tile_hists.extend((first..first + grid_cols).map(|t| enc.tile_histogram(t, p)));
                }
                for h in &tile_hists {
                    for (c, x) in counts.iter_mut().zip(h) {
                        *c += x;
                    }
                }
            } else {
                let mut h = Histogram::new();
                for chunk in data.chunks(64 << 10) {
                    if let Some(x) = hasher.as_mut() {
                        x.update(chunk);
                    }
                    h.add_plane(chunk, elem, p);
                }
                counts = h.finish();
            }
            // The data is hashed with the first plane's pass.
            enc.content_sum = enc.content_sum.or(hasher.take().map(|h| h.digest()));
            enc.planes[p] = enc.plan_plane(&counts, &tile_hists);
        }
        Ok(enc)
    }

    /// Tables for plane `p`, or `None` when storing it raw is estimated to be smaller.
    fn plan_plane(&self, counts: &[u64; 256], tile_hists: &[[u64; 256]]) -> Option<CodedPlane> {
        let bits = self.opts.scale_bits;
        let n: u64 = counts.iter().sum();
        let present: [bool; 256] = core::array::from_fn(|s| counts[s] > 0);
        let one = quantize(counts, &present, bits);
        // Fixed cost per coded tile: lane states, descriptor, padding.
        let per_tile_bits = 8.0 * (STATES_BYTES + 4 + 2) as f64;
        let table_bits = |k: usize| 8.0 * (k * stored_len(present.iter().filter(|&&x| x).count())) as f64;
        let mut best_cost = cross_entropy_bits(counts, &one, bits) + table_bits(1);
        let mut best = (vec![one], Vec::new());
        if self.opts.max_tables > 1 {
            if let Some((tables, assign, cost)) = self.cluster(tile_hists, &present) {
                let cost = cost + table_bits(tables.len());
                if cost < best_cost {
                    best_cost = cost;
                    best = (tables, assign);
                }
            }
        }
        if best_cost + per_tile_bits * self.tiles as f64 >= 8.0 * n as f64 {
            return None;
        }
        let (tables, tile_table) = best;
        Some(CodedPlane {
            stored: tables.iter().map(store_table).collect(),
            enc: tables.iter().map(|f| enc_table(f, bits)).collect(),
            tile_table,
        })
    }

    /// k-means over tile histograms: up to `max_tables` tables, each tile with its cheapest.
    /// Returns tables, the table of each tile, and the coded bits.
    #[allow(clippy::type_complexity)]
    fn cluster(&self, hists: &[[u64; 256]], present: &[bool; 256]) -> Option<(Vec<[u32; 256]>, Vec<u8>, f64)> {
        let bits = self.opts.scale_bits;
        let k = (self.opts.max_tables as usize).min(hists.len());
        if k < 2 {
            return None;
        }
        // Seed clusters by each tile's mean symbol, split into k quantiles.
        let mean = |h: &[u64; 256]| {
            let n: u64 = h.iter().sum();
            h.iter().enumerate().map(|(s, &c)| s as u64 * c).sum::<u64>() as f64 / n.max(1) as f64
        };
        let mut order: Vec<usize> = (0..hists.len()).collect();
        order.sort_by(|&a, &b| mean(&hists[a]).total_cmp(&mean(&hists[b])));
        let mut assign = vec![0u8; hists.len()];
        for (rank, &t) in order.iter().enumerate() {
            assign[t] = (rank * k / hists.len()) as u8;
        }
        let mut tables = Vec::new();
        let mut cost = f64::INFINITY;
        for _ in 0..6 {
            let mut sums = vec![[0u64; 256]; k];
            for (h, &a) in hists.iter().zip(&assign) {
                for (x, y) in sums[a as usize].iter_mut().zip(h) {
                    *x += y;
                }
            }
            tables = sums.iter().map(|s| quantize(s, present, bits)).collect::<Vec<_>>();
            // Bits per symbol of each table, computed once per table rather than per tile (the
            // same sums as `cross_entropy_bits`, in the same order).
            let m = f64::from(1u32 << bits);
            let costs: Vec<[f64; 256]> = tables
                .iter()
                .map(|f| core::array::from_fn(|s| if f[s] > 0 { libm::log2(m / f64::from(f[s])) } else { 0.0 }))
                .collect();
            let mut total = 0.0;
            for (h, a) in hists.iter().zip(assign.iter_mut()) {
                let (best, c) = costs
                    .iter()
                    .enumerate()
                    .map(|(i, lf)| {
                        (i, h.iter().zip(lf).filter(|(&c, _)| c > 0).map(|(&c, &l)| c as f64 * l).sum::<f64>())
                    })
                    .min_by(|x, y| x.1.total_cmp(&y.1))
                    .expect("k >= 2");
                *a = best as u8;
                total += c;
            }
            if total >= cost {
                break;
            }
            cost = total;
        }
        Some((tables, assign, cost))
    }

    /// Number of tiles.
    pub fn num_tiles(&self) -> u64 {
        self.tiles
    }

    /// Planes that will be entropy-coded, as a bit mask.
    pub fn coded_mask(&self) -> u8 {
        (0..4).filter(|&p| self.planes[p].is_some()).fold(0, |m, p| m | 1 << p)
    }

    fn extent(&self, t: u64) -> TileExtent {
        let (i, j) = (t / self.grid_cols, t % self.grid_cols);
        let row0 = i * u64::from(self.opts.tile_rows);
        let col0 = j * u64::from(self.opts.tile_cols);
        TileExtent {
            row0,
            col0,
            rows: (self.rows - row0).min(u64::from(self.opts.tile_rows)) as u32,
            cols: (self.cols - col0).min(u64::from(self.opts.tile_cols)) as u32,
        }
    }

    /// The units of tile `t`, row by row (each row a contiguous slice of the tensor).
    fn tile_rows_of(&self, e: TileExtent) -> impl Iterator<Item = &'a [u8]> + '_ {
        let unit = self.elem.planes();
        let stride = self.cols as usize * unit;
        let width = e.cols as usize * unit;
        let first = e.row0 as usize * stride + e.col0 as usize * unit;
        (0..e.rows as usize).map(move |r| &self.data[first + r * stride..first + r * stride + width])
    }

    /// Histogram of plane `p` over tile `t`.
    fn tile_histogram(&self, t: u64, p: usize) -> [u64; 256] {
        let mut h = Histogram::new();
        for row in self.tile_rows_of(self.extent(t)) {
            h.add_plane(row, self.elem, p);
        }
        h.finish()
    }

    /// The planes of tile `e` in tile order (column-major), after the forward transform.
    fn gather_planes(&self, e: TileExtent, planes: &mut [Vec<u8>; 4]) {
        let unit = self.elem.planes();
        let (rows, cols) = (e.rows as usize, e.cols as usize);
        let n = rows * cols;
        for plane in planes.iter_mut().take(unit) {
            plane.clear();
            plane.resize(n, 0);
        }
        let stride = self.cols as usize * unit;
        let first = e.row0 as usize * stride + e.col0 as usize * unit;
        let src = &self.data[first..first + (rows - 1) * stride + cols * unit];
        match self.elem.planes() {
            2 => {
                let [hi, lo, ..] = planes;
                crate::simd::emit::split2(src, stride, rows, cols, self.elem == ElemType::Bf16, hi, lo);
            }
            1 => {
                let plane = &mut planes[0];
                for c in 0..cols {
                    for (r, o) in plane[c * rows..(c + 1) * rows].iter_mut().enumerate() {
                        *o = src[r * stride + c];
                    }
                }
            }
            _ => {
                for c in 0..cols {
                    for r in 0..rows {
                        let at = r * stride + unit * c;
                        let mut u = [0u8; 4];
                        u[..unit].copy_from_slice(&src[at..at + unit]);
                        self.elem.forward(&mut u[..unit]);
                        for (p, plane) in planes.iter_mut().enumerate().take(unit) {
                            plane[c * rows + r] = u[unit - 1 - p];
                        }
                    }
                }
            }
        }
    }

    /// Encode tile `t` (< [`Self::num_tiles`]).
    pub fn encode_tile(&self, t: u64) -> EncodedTile {
        let e = self.extent(t);
        let n = e.symbols();
        let unit = self.elem.planes();
        let mut planes: [Vec<u8>; 4] = Default::default();
        self.gather_planes(e, &mut planes);
        // Room for every plane at its largest (a section is ANS only when smaller than raw).
        let mut out = Vec::with_capacity(unit * (pad4(n) + STATES_BYTES + 4));
        // The coder's words, written back to front into room for one per symbol. A separate
        // buffer, freed at the end, so that the record (kept until `finish`) only ever touches
        // the memory it keeps and the allocator reuses this one for the next tile.
        let mut scratch = Vec::new();
        let mut modes = [TileMode::Raw; 4];
        let mut prev_carries = false;
        for p in 0..unit {
            let syms = &planes[p];
            let next_is_raw = p + 1 < unit && self.planes[p + 1].is_none();
            let stored_raw = if prev_carries { n - CARRY_SYMBOLS } else { n };
            let mut carries = false;
            let mut mode = TileMode::Raw;
            if let Some(cp) = &self.planes[p] {
                if syms.iter().all(|&s| s == syms[0]) {
                    mode = TileMode::Const { symbol: syms[0] };
                } else {
                    let tid = cp.tile_table.get(t as usize).copied().unwrap_or(0);
                    let carry = (next_is_raw && n >= CARRY_SYMBOLS).then(|| &planes[p + 1][..]);
                    let init = initial_states(n, carry);
                    scratch.resize(2 * n, 0);
                    let (states, w) =
                        encode_lanes(syms, &cp.enc[tid as usize], self.opts.scale_bits, init, &mut scratch);
                    let ans = pad4(STATES_BYTES + 2 * w);
                    let saved = if carry.is_some() { pad4(n) - pad4(n - CARRY_SYMBOLS) } else { 0 };
                    if ans < pad4(stored_raw) + saved {
                        mode = TileMode::Ans { table: tid, words: w as u32 };
                        carries = carry.is_some();
                        for s in states {
                            out.extend_from_slice(&s.to_le_bytes());
                        }
                        out.extend_from_slice(&scratch[2 * n - 2 * w..]);
                    }
                }
            }
            if mode == TileMode::Raw {
                out.extend_from_slice(&syms[..stored_raw]);
            }
            out.resize(pad4(out.len()), 0);
            modes[p] = mode;
            prev_carries = carries;
        }
        EncodedTile { bytes: out, modes }
    }

    /// Assemble the frame from every tile's encoding, in tile order.
    pub fn finish(&self, tiles: &[EncodedTile]) -> Result<Vec<u8>, Error> {
        if tiles.len() as u64 != self.tiles {
            return Err(Error::BadOption("finish needs every tile, in order"));
        }
        let coded_mask = self.coded_mask();
        let mut h = Vec::new();
        h.extend_from_slice(&MAGIC);
        h.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        let flags = if self.content_sum.is_some() { FLAG_CONTENT_CHECKSUM } else { 0 };
        h.extend_from_slice(&flags.to_le_bytes());
        h.push(self.elem.code());
        h.push(self.rank as u8);
        h.push(self.opts.scale_bits);
        h.push(coded_mask);
        h.extend_from_slice(&self.opts.tile_rows.to_le_bytes());
        h.extend_from_slice(&self.opts.tile_cols.to_le_bytes());
        h.extend_from_slice(&[0; 12]); // header_len, payload_len: filled below
        debug_assert_eq!(h.len(), FIXED_HEADER);
        for d in &self.dims[..self.rank] {
            h.extend_from_slice(&d.to_le_bytes());
        }
        for cp in self.planes.iter().flatten() {
            h.push(cp.stored.len() as u8);
            for t in &cp.stored {
                h.extend_from_slice(t);
            }
        }
        h.resize(pad4(h.len()), 0);
        let mut offset = 0u64;
        for tile in tiles {
            let words = u32::try_from(offset).map_err(|_| Error::TooLarge)?;
            h.extend_from_slice(&words.to_le_bytes());
            for p in 0..self.elem.planes() {
                if coded_mask >> p & 1 == 1 {
                    h.extend_from_slice(&descriptor(tile.modes[p]).to_le_bytes());
                }
            }
            offset += (tile.bytes.len() / 4) as u64;
        }
        if let Some(sum) = self.content_sum {
            h.extend_from_slice(&sum.to_le_bytes());
        }
        let header_len = u32::try_from(h.len() + 8).map_err(|_| Error::TooLarge)?;
        h[20..24].copy_from_slice(&header_len.to_le_bytes());
        h[24..32].copy_from_slice(&(offset * 4).to_le_bytes());
        let sum = xxhash_rust::xxh64::xxh64(&h, 0);
        h.extend_from_slice(&sum.to_le_bytes());
        h.reserve_exact(offset as usize * 4);
        for tile in tiles {
            h.extend_from_slice(&tile.bytes);
        }
        Ok(h)
    }
}

/// Byte counts with four interleaved sub-histograms, so that runs of one symbol (the exponent
/// plane is very skewed) do not serialise on one counter.
/// Fields: the sub-histograms, the flushed totals, units counted since the last flush.
struct Histogram([[u32; 256]; 4], [u64; 256], usize);

impl Histogram {
    fn new() -> Self {
        Histogram([[0; 256]; 4], [0; 256], 0)
    }

    /// Count plane `p` of the units in `data` (whole units of `elem`).
    fn add_plane(&mut self, data: &[u8], elem: ElemType, p: usize) {
        // Flush the u32 counters often enough that they cannot overflow.
        for chunk in data.chunks(elem.planes() << 28) {
            self.2 += chunk.len() / elem.planes();
            if self.2 > 1 << 28 {
                self.flush();
                self.2 = chunk.len() / elem.planes();
            }
            match elem {
                // The exponent: bits 7..15 of the unit.
                ElemType::Bf16 if p == 0 => self.add_units::<8, 4>(chunk, |u| {
                    let v = u64::from_le_bytes(u);
                    [(v >> 7) as u8, (v >> 23) as u8, (v >> 39) as u8, (v >> 55) as u8]
                }),
                ElemType::Bf16 => self.add_units::<2, 1>(chunk, |u| [u16::from_le_bytes(u).rotate_left(1) as u8]),
                ElemType::F16 => self.add_units::<2, 1>(chunk, |u| [u[1 - p]]),
                ElemType::F32 => {
                    self.add_units::<4, 1>(chunk, |u| [(u32::from_le_bytes(u).rotate_left(1) >> (24 - 8 * p)) as u8])
                }
                _ => self.add_units::<1, 1>(chunk, |u| [u[0]]),
            }
        }
    }

    /// Count the bytes `byte` extracts from each group of `U` input bytes (one or more units);
    /// a trailing partial group is counted unit by unit by the caller's smaller `U`.
    #[inline(always)]
    fn add_units<const U: usize, const K: usize>(&mut self, data: &[u8], byte: impl Fn([u8; U]) -> [u8; K]) {
        let [h0, h1, h2, h3] = &mut self.0;
        let mut it = data.chunks_exact(4 * U);
        for c in &mut it {
            let g = |i: usize| -> [u8; U] { c[i * U..(i + 1) * U].try_into().expect("unit") };
            for (h, i) in [(&mut *h0, 0), (&mut *h1, 1), (&mut *h2, 2), (&mut *h3, 3)] {
                for b in byte(g(i)) {
                    h[b as usize] += 1;
                }
            }
        }
        let rest = it.remainder();
        let unit = U / K;
        for u in rest.chunks_exact(unit) {
            // A group of U bytes holds K units; pad the last units into a whole group.
            let mut g = [0u8; U];
            g[..unit].copy_from_slice(u);
            h0[byte(g)[0] as usize] += 1;
        }
    }

    fn flush(&mut self) {
        for h in &mut self.0 {
            for (t, c) in self.1.iter_mut().zip(h.iter_mut()) {
                *t += u64::from(*c);
                *c = 0;
            }
        }
    }

    fn finish(mut self) -> [u64; 256] {
        self.flush();
        self.1
    }
}
