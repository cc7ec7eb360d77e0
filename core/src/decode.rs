//! Decoding into caller buffers: whole tensors, bands of tiles and single tiles.
//!
//! Two implementations sit behind one set of entry points. The scalar reference decoder
//! ([`Kernel::Scalar`], `crate::ans::decode_lanes`) is the oracle. The fast path (the default,
//! [`Kernel::Auto`]) decodes ANS sections with the SIMD kernels of `crate::simd`, and for
//! two-byte types whose second plane is raw (BF16, F16: the common case) fuses the rANS decode,
//! the merge with the raw plane, the inverse rotation and the transpose from column-major tile
//! order to row-major output, so that each output byte is written once.
//!
//! Both report the same errors: the fast per-tile decoders check in the scalar decoder's order;
//! a whole-tensor fused decode that fails anywhere reruns the scalar decoder, whose tile order
//! defines which error a corrupt frame reports.

use crate::ans::decode_lanes;
use crate::error::{Corruption, Error};
use crate::frame::{Frame, Section, TileLayout, TileMode};
use crate::simd::emit::{self, BLOCK};
use crate::simd::xxh::{HashJob, Xxh64};
use crate::simd::{self, Imp, Kernel};
use crate::table::DecodeTable;
use crate::{CARRY_SYMBOLS, LANES, RANS_L};

/// Where the symbols of one plane of one tile land in a destination buffer: symbol `j` (tile
/// order is column-major) goes to `base + (j % rows) * row_stride + (j / rows) * unit + byte`.
#[derive(Clone, Copy)]
pub(crate) struct Placement {
    pub base: usize,
    pub row_stride: usize,
    pub rows: usize,
    pub unit: usize,
}

impl Placement {
    #[inline]
    pub fn at(&self, j: usize, byte: usize) -> usize {
        self.base + (j % self.rows) * self.row_stride + (j / self.rows) * self.unit + byte
    }
}

/// Walks the destination offsets of consecutive symbols without divisions.
struct Cursor {
    off: usize,
    r: usize,
    rows: usize,
    row_stride: usize,
    col_rewind: usize,
}

impl Cursor {
    fn new(p: &Placement, byte: usize) -> Self {
        Cursor {
            off: p.base + byte,
            r: 0,
            rows: p.rows,
            row_stride: p.row_stride,
            col_rewind: (p.rows - 1) * p.row_stride,
        }
    }
    #[inline]
    fn next(&mut self, unit: usize) -> usize {
        let o = self.off;
        self.r += 1;
        if self.r == self.rows {
            self.r = 0;
            self.off = self.off - self.col_rewind + unit;
        } else {
            self.off += self.row_stride;
        }
        o
    }
}

/// Tallest tile the fused AVX2 kernel takes (its ring holds two blocks of 8 columns).
const FUSED_ROWS: usize = 256;

/// Tiles collected before a run of fused decodes (pairs) starts.
const RUN: usize = 8;

/// A fused two-byte tile in progress (see `Frame::fused2_begin`).
struct Fused2Job<'f> {
    t: u64,
    imp: Imp,
    lanes: simd::Lanes<'f>,
    /// Plane 1's stored bytes (all but the carried ones).
    raw: &'f [u8],
    s1: Section,
    rows: usize,
    cols: usize,
    carries: bool,
    /// Steps of the whole 8-column blocks that the fused kernel decodes (0: none).
    fused_steps: usize,
    place: Placement,
    ring: [u16; 16 * FUSED_ROWS],
}

/// Which table a [`DecodeTable`] holds during one decode call: `(plane, table)`.
type Loaded = Option<(usize, u8)>;

impl Frame<'_> {
    /// Decode the whole tensor into `out` (exactly [`Self::decoded_len`] bytes), verifying the
    /// content checksum when the frame has one. Uses the fastest kernel of this CPU
    /// ([`Kernel::Auto`]) and 16 KiB of stack for the lookup table.
    pub fn decode_into(&self, out: &mut [u8]) -> Result<(), Error> {
        let mut table = DecodeTable::new();
        self.decode_into_using(Kernel::Auto, out, &mut table)
    }

    /// [`Self::decode_into`] with a caller-provided lookup table (no large stack use).
    pub fn decode_into_with(&self, out: &mut [u8], table: &mut DecodeTable) -> Result<(), Error> {
        self.decode_into_using(Kernel::Auto, out, table)
    }

    /// [`Self::decode_into`] with the scalar reference decoder (the oracle of the fast kernels).
    pub fn decode_into_scalar(&self, out: &mut [u8]) -> Result<(), Error> {
        let mut table = DecodeTable::new();
        self.decode_into_using(Kernel::Scalar, out, &mut table)
    }

    /// [`Self::decode_into`] with the given kernel; an error if it is not available on this CPU.
    /// Every kernel gives the same result.
    pub fn decode_into_using(&self, kernel: Kernel, out: &mut [u8], table: &mut DecodeTable) -> Result<(), Error> {
        let expected = self.decoded_len();
        if out.len() != expected {
            return Err(Error::BufferSize { expected: expected as u64, actual: out.len() as u64 });
        }
        match kernel.resolve()? {
            None => self.whole_by_planes(None, out, table)?,
            Some(imp) if self.fused2() && self.content_checksum.is_some() && imp.hashes_in_loop() => {
                let sum = self.content_checksum;
                match self.whole_fused_hashed(imp, out, table) {
                    Ok(h) if Some(h) == sum => return Ok(()),
                    Ok(_) => return Err(Error::ContentChecksum),
                    // The scalar decoder's traversal defines which error a frame reports.
                    Err(_) => self.whole_by_planes(None, out, table)?,
                }
            }
            Some(imp) if self.fused2() => {
                if self.whole_fused(imp, out, table).is_err() {
                    // The scalar decoder's traversal defines which error a frame reports.
                    self.whole_by_planes(None, out, table)?;
                }
            }
            Some(imp) => self.whole_by_planes(Some(imp), out, table)?,
        }
        if let Some(sum) = self.content_checksum {
            if xxhash_rust::xxh64::xxh64(out, 0) != sum {
                return Err(Error::ContentChecksum);
            }
        }
        Ok(())
    }

    /// Decode tile `t` alone into `out` ([`Self::tile_decoded_len`] bytes, row-major within the
    /// tile). The content checksum covers the whole tensor and is not checked here.
    pub fn decode_tile_into(&self, t: u64, out: &mut [u8]) -> Result<(), Error> {
        let mut table = DecodeTable::new();
        self.decode_tile_into_using(Kernel::Auto, t, out, &mut table)
    }

    /// [`Self::decode_tile_into`] with a caller-provided lookup table.
    pub fn decode_tile_into_with(&self, t: u64, out: &mut [u8], table: &mut DecodeTable) -> Result<(), Error> {
        self.decode_tile_into_using(Kernel::Auto, t, out, table)
    }

    /// [`Self::decode_tile_into`] with the scalar reference decoder.
    pub fn decode_tile_into_scalar(&self, t: u64, out: &mut [u8]) -> Result<(), Error> {
        let mut table = DecodeTable::new();
        self.decode_tile_into_using(Kernel::Scalar, t, out, &mut table)
    }

    /// [`Self::decode_tile_into`] with the given kernel.
    pub fn decode_tile_into_using(
        &self,
        kernel: Kernel,
        t: u64,
        out: &mut [u8],
        table: &mut DecodeTable,
    ) -> Result<(), Error> {
        let expected = self.tile_decoded_len(t)?;
        if out.len() != expected {
            return Err(Error::BufferSize { expected: expected as u64, actual: out.len() as u64 });
        }
        let imp = kernel.resolve()?;
        let l = self.layout_checked(t);
        let unit = self.elem.planes();
        let place =
            Placement { base: 0, row_stride: l.extent.cols as usize * unit, rows: l.extent.rows as usize, unit };
        self.decode_tile_at(imp, t, &l, out, place, table, &mut None)
    }

    /// Rows of the tensor covered by band `i` (the `i`-th row of tiles); a band past the last
    /// is reported as [`Error::TileOutOfRange`] of its first tile.
    fn band_rows(&self, band: u64) -> Result<(u64, u64), Error> {
        let (grid_rows, _) = self.grid();
        if band >= grid_rows {
            return Err(Error::TileOutOfRange { tile: band * self.grid_cols, tiles: self.num_tiles() });
        }
        let row0 = band * u64::from(self.tile_rows);
        Ok((row0, (self.rows - row0).min(u64::from(self.tile_rows))))
    }

    /// Bytes of band `band` decoded: its rows of the tensor, every column.
    pub fn band_decoded_len(&self, band: u64) -> Result<usize, Error> {
        let (_, rows) = self.band_rows(band)?;
        Ok(rows as usize * self.cols as usize * self.elem.planes())
    }

    /// Decode band `band` (the tiles `band * GC .. (band + 1) * GC` of one row of the tile grid)
    /// into `out`: exactly its rows of the decoded tensor ([`Self::band_decoded_len`] bytes),
    /// which is the byte range `[band_start, band_start + len)` of the whole decode, with
    /// `band_start = band * tile_rows * cols * unit`.
    ///
    /// Bands are disjoint, contiguous slices of the output, so threads can decode them in
    /// parallel straight into the tensor (`out.chunks_mut(tile_rows * cols * unit)`), with no
    /// copy; the tiles of a band share one lookup-table load per table and, for BF16/F16, are
    /// decoded in pairs. The tiles are checked in order, each as [`Self::decode_tile_into`]
    /// does; the content checksum is not checked (the caller can hash the tensor afterwards).
    pub fn decode_band_into(&self, band: u64, out: &mut [u8]) -> Result<(), Error> {
        let mut table = DecodeTable::new();
        self.decode_band_into_using(Kernel::Auto, band, out, &mut table)
    }

    /// [`Self::decode_band_into`] with a caller-provided lookup table (one per thread).
    pub fn decode_band_into_with(&self, band: u64, out: &mut [u8], table: &mut DecodeTable) -> Result<(), Error> {
        self.decode_band_into_using(Kernel::Auto, band, out, table)
    }

    /// [`Self::decode_band_into`] with the given kernel.
    pub fn decode_band_into_using(
        &self,
        kernel: Kernel,
        band: u64,
        out: &mut [u8],
        table: &mut DecodeTable,
    ) -> Result<(), Error> {
        let expected = self.band_decoded_len(band)?;
        if out.len() != expected {
            return Err(Error::BufferSize { expected: expected as u64, actual: out.len() as u64 });
        }
        let imp = kernel.resolve()?;
        let mut loaded = None;
        if let (Some(imp), true) = (imp, self.fused2()) {
            return self.band_fused(imp, band, out, table, &mut loaded, None);
        }
        let unit = self.elem.planes();
        let row_stride = self.cols as usize * unit;
        let place = |l: &TileLayout| Placement {
            base: l.extent.col0 as usize * unit,
            row_stride,
            rows: l.extent.rows as usize,
            unit,
        };
        for t in band * self.grid_cols..(band + 1) * self.grid_cols {
            let l = self.layout_checked(t);
            self.decode_tile_at(imp, t, &l, out, place(&l), table, &mut loaded)?;
        }
        Ok(())
    }

    /// [`Self::decode_tile_plane_into_using`] with the fastest kernel and a lookup table on the
    /// stack.
    pub fn decode_tile_plane_into(&self, t: u64, p: usize, out: &mut [u8]) -> Result<(), Error> {
        let mut table = DecodeTable::new();
        self.decode_tile_plane_into_using(Kernel::Auto, t, p, out, &mut table)
    }

    /// Decode the symbols of plane `p` of tile `t` alone, in tile order (column-major, as
    /// stored: symbol `k` is the unit at tile row `k % rows`, column `k / rows`), before the
    /// element type's inverse transform. `out` holds exactly the tile's symbol count.
    ///
    /// A raw plane whose last 64 symbols are carried by the previous plane's lane states
    /// decodes that plane too.
    pub fn decode_tile_plane_into_using(
        &self,
        kernel: Kernel,
        t: u64,
        p: usize,
        out: &mut [u8],
        table: &mut DecodeTable,
    ) -> Result<(), Error> {
        self.check_tile(t)?;
        if p >= self.elem.planes() {
            return Err(Error::BadOption("plane out of range"));
        }
        let l = self.layout_checked(t);
        let n = l.extent.symbols();
        if out.len() != n {
            return Err(Error::BufferSize { expected: n as u64, actual: out.len() as u64 });
        }
        let imp = kernel.resolve()?;
        let s = &l.sections[p];
        let corrupt = |kind| Error::Corrupt { tile: t, plane: p as u8, kind };
        match s.mode {
            TileMode::Const { symbol } => out.fill(symbol),
            TileMode::Ans { table: tid, .. } => {
                self.load_table_fast(p, tid, table)?;
                self.check_padding(s).map_err(corrupt)?;
                self.ans_symbols(imp, table, s, out).map_err(corrupt)?;
            }
            TileMode::Raw => {
                let carried = p > 0 && l.sections[p - 1].carries;
                if carried {
                    // The carried bytes are the previous plane's final states.
                    let prev = &l.sections[p - 1];
                    let TileMode::Ans { table: tid, .. } = prev.mode else { unreachable!("only ANS carries") };
                    self.load_table_fast(p - 1, tid, table)?;
                    let pc = |kind| Error::Corrupt { tile: t, plane: p as u8 - 1, kind };
                    self.check_padding(prev).map_err(pc)?;
                    let fin = self.ans_symbols(imp, table, prev, out).map_err(pc)?;
                    out[n - CARRY_SYMBOLS..].copy_from_slice(&simd::carried_bytes(&fin, n));
                }
                self.check_padding(s).map_err(corrupt)?;
                out[..s.stored].copy_from_slice(&self.bytes[s.at..s.at + s.stored]);
            }
        }
        Ok(())
    }

    /// Decode plane `p` of every tile: the symbols of tile 0 in tile order, then those of tile
    /// 1, and so on (`out` holds [`Self::decoded_len`]` / unit` bytes), before the element type's
    /// inverse transform. Each table is loaded once per run of tiles that use it; the tiles are
    /// checked in order, each as [`Self::decode_tile_plane_into_using`] does. For engines that
    /// consume decoded planes (e.g. exponents) tile by tile, and to compare the entropy decoder
    /// alone with other coders.
    pub fn decode_plane_into_using(
        &self,
        kernel: Kernel,
        p: usize,
        out: &mut [u8],
        table: &mut DecodeTable,
    ) -> Result<(), Error> {
        if p >= self.elem.planes() {
            return Err(Error::BadOption("plane out of range"));
        }
        let expected = self.decoded_len() / self.elem.planes();
        if out.len() != expected {
            return Err(Error::BufferSize { expected: expected as u64, actual: out.len() as u64 });
        }
        let imp = kernel.resolve()?;
        let mut loaded = None;
        let mut at = 0;
        for t in 0..self.num_tiles() {
            let l = self.layout_checked(t);
            let n = l.extent.symbols();
            let dst = &mut out[at..at + n];
            at += n;
            match l.sections[p].mode {
                TileMode::Ans { table: tid, .. } => {
                    self.ensure_table(p, tid, table, &mut loaded)?;
                    self.check_padding(&l.sections[p]).map_err(|kind| Error::Corrupt {
                        tile: t,
                        plane: p as u8,
                        kind,
                    })?;
                    self.ans_symbols(imp, table, &l.sections[p], dst).map_err(|kind| Error::Corrupt {
                        tile: t,
                        plane: p as u8,
                        kind,
                    })?;
                }
                _ => {
                    // Raw and constant sections (and raw planes carried by the plane before).
                    loaded = None;
                    self.decode_tile_plane_into_using(kernel, t, p, dst, table)?;
                }
            }
        }
        Ok(())
    }

    /// All symbols of an ANS section into `out` (tile order) by a fast kernel or the scalar
    /// oracle; returns the final states after checking them.
    fn ans_symbols(
        &self,
        imp: Option<Imp>,
        table: &DecodeTable,
        s: &Section,
        out: &mut [u8],
    ) -> Result<[u32; LANES], Corruption> {
        let body = &self.bytes[s.at..s.at + s.len];
        let fin = match imp {
            Some(imp) => simd::decode_section(imp, table, body, s.carries, out)?,
            None => {
                let (states, words) = body.split_at(crate::frame::STATES_BYTES);
                let mut i = 0;
                let fin = decode_lanes(table, states, words, out.len(), |sym| {
                    out[i] = sym;
                    i += 1;
                })?;
                check_final(&fin, s.carries)?;
                fin
            }
        };
        Ok(fin)
    }

    /// Whether the fused two-byte decoder applies: BF16 or F16 with a raw second plane, and
    /// tiles short enough that a block of whole columns fits the decoder's buffer.
    fn fused2(&self) -> bool {
        self.elem.planes() == 2 && self.coded_mask & 2 == 0 && self.tile_rows as usize <= BLOCK
    }

    /// The scalar decoder's traversal: one pass per (plane, table) over the tiles, then the
    /// raw and constant sections, then the inverse transform.
    fn whole_by_planes(&self, imp: Option<Imp>, out: &mut [u8], table: &mut DecodeTable) -> Result<(), Error> {
        let unit = self.elem.planes();
        let row_stride = self.cols as usize * unit;
        let place = |l: &TileLayout| Placement {
            base: l.extent.row0 as usize * row_stride + l.extent.col0 as usize * unit,
            row_stride,
            rows: l.extent.rows as usize,
            unit,
        };
        // One pass per (plane, table) so that each lookup table is built once.
        for p in 0..unit {
            for tid in 0..self.n_tables[p] {
                self.load_table_fast(p, tid, table)?;
                for t in 0..self.num_tiles() {
                    let l = self.layout_checked(t);
                    if matches!(l.sections[p].mode, TileMode::Ans { table, .. } if table == tid) {
                        self.decode_ans(imp, t, &l, p, table, out, place(&l))?;
                    }
                }
            }
        }
        for t in 0..self.num_tiles() {
            let l = self.layout_checked(t);
            self.decode_plain(t, &l, out, place(&l))?;
        }
        self.elem.inverse_all(out);
        Ok(())
    }

    /// The fused decode of band `band` into `out` (exactly its rows): runs of consecutive tiles
    /// whose plane 0 is coded with one table go in pairs; `loaded` carries the table across
    /// bands.
    fn band_fused(
        &self,
        imp: Imp,
        band: u64,
        out: &mut [u8],
        table: &mut DecodeTable,
        loaded: &mut Loaded,
        mut hash: Option<&mut HashJob>,
    ) -> Result<(), Error> {
        let row_stride = self.cols as usize * 2;
        let place = |l: &TileLayout| Placement {
            base: l.extent.col0 as usize * 2,
            row_stride,
            rows: l.extent.rows as usize,
            unit: 2,
        };
        let mut run: [Option<(u64, TileLayout, Placement)>; RUN] = [None; RUN];
        let (mut len, mut run_tid) = (0, 0);
        for t in band * self.grid_cols..(band + 1) * self.grid_cols {
            let l = self.layout_checked(t);
            let tid = match l.sections[0].mode {
                TileMode::Ans { table, .. } => Some(table),
                _ => None,
            };
            if len > 0 && (tid != Some(run_tid) || len == RUN) {
                self.run_fused2(imp, &run[..len], table, out, hash.as_deref_mut())?;
                len = 0;
            }
            match tid {
                Some(tid) => {
                    self.ensure_table(0, tid, table, loaded)?;
                    run[len] = Some((t, l, place(&l)));
                    len += 1;
                    run_tid = tid;
                }
                None => self.tile_plain2(imp, t, &l, out, place(&l))?,
            }
        }
        self.run_fused2(imp, &run[..len], table, out, hash)
    }

    /// The fused decode of the whole tensor band by band, for kernels whose loops hash (see
    /// `Imp::hashes_in_loop`): while band k is decoded, the loops hash band k - 1 into the
    /// content checksum a few stripes per step, and what they leave is hashed after the band
    /// (XXH64 is sequential over the tensor: the hasher's state streams through the bands in
    /// order). Returns the digest.
    fn whole_fused_hashed(&self, imp: Imp, out: &mut [u8], table: &mut DecodeTable) -> Result<u64, Error> {
        let mut h = Xxh64::new();
        let mut loaded = None;
        let (mut at, mut prev) = (0, 0);
        let (grid_rows, _) = self.grid();
        for band in 0..grid_rows {
            let len = self.band_decoded_len(band)?;
            // Band `band - 1` (at prev..at) is hashed while this one is decoded.
            let (done, rest) = out.split_at_mut(at);
            let (mut job, tail) = h.job(&done[prev..]);
            let r = self.band_fused(imp, band, &mut rest[..len], table, &mut loaded, Some(&mut job));
            h.end(job);
            r?;
            h.update(tail);
            (prev, at) = (at, at + len);
        }
        h.update(&out[prev..at]);
        Ok(h.digest())
    }

    /// The fused whole-tensor decode of two-byte types with a raw second plane: per table, the
    /// tiles coded with it, then the tiles whose first plane is raw or constant.
    fn whole_fused(&self, imp: Imp, out: &mut [u8], table: &mut DecodeTable) -> Result<(), Error> {
        let row_stride = self.cols as usize * 2;
        let place = |l: &TileLayout| Placement {
            base: l.extent.row0 as usize * row_stride + l.extent.col0 as usize * 2,
            row_stride,
            rows: l.extent.rows as usize,
            unit: 2,
        };
        for tid in 0..self.n_tables[0] {
            self.load_table_fast(0, tid, table)?;
            // In runs of up to RUN tiles, decoded in pairs.
            let mut run: [Option<(u64, TileLayout, Placement)>; RUN] = [None; RUN];
            let mut len = 0;
            for t in 0..self.num_tiles() {
                let l = self.layout_checked(t);
                if matches!(l.sections[0].mode, TileMode::Ans { table, .. } if table == tid) {
                    run[len] = Some((t, l, place(&l)));
                    len += 1;
                    if len == RUN {
                        self.run_fused2(imp, &run[..len], table, out, None)?;
                        len = 0;
                    }
                }
            }
            self.run_fused2(imp, &run[..len], table, out, None)?;
        }
        for t in 0..self.num_tiles() {
            let l = self.layout_checked(t);
            if !matches!(l.sections[0].mode, TileMode::Ans { .. }) {
                self.tile_plain2(imp, t, &l, out, place(&l))?;
            }
        }
        Ok(())
    }

    /// Decode one tile at `place` (checks in the scalar decoder's order for a tile).
    #[allow(clippy::too_many_arguments)]
    fn decode_tile_at(
        &self,
        imp: Option<Imp>,
        t: u64,
        l: &TileLayout,
        out: &mut [u8],
        place: Placement,
        table: &mut DecodeTable,
        loaded: &mut Loaded,
    ) -> Result<(), Error> {
        let unit = self.elem.planes();
        if let Some(imp) = imp {
            if self.fused2() {
                return match l.sections[0].mode {
                    TileMode::Ans { table: tid, .. } => {
                        self.ensure_table(0, tid, table, loaded)?;
                        self.tile_fused2(imp, t, l, table, out, place)
                    }
                    _ => self.tile_plain2(imp, t, l, out, place),
                };
            }
        }
        for p in 0..unit {
            if let TileMode::Ans { table: tid, .. } = l.sections[p].mode {
                self.ensure_table(p, tid, table, loaded)?;
                self.decode_ans(imp, t, l, p, table, out, place)?;
            }
        }
        self.decode_plain(t, l, out, place)?;
        self.inverse_tile(l, out, place);
        Ok(())
    }

    /// [`Self::load_table`] with the vectorised fill.
    fn load_table_fast(&self, p: usize, tid: u8, table: &mut DecodeTable) -> Result<(), Error> {
        if !self.plane_coded(p) || tid >= self.n_tables[p] {
            return Err(Error::BadOption("no such table"));
        }
        simd::fill_table(table, self.table_bytes(p, tid), self.scale_bits);
        Ok(())
    }

    fn ensure_table(&self, p: usize, tid: u8, table: &mut DecodeTable, loaded: &mut Loaded) -> Result<(), Error> {
        if *loaded != Some((p, tid)) {
            self.load_table_fast(p, tid, table)?;
            *loaded = Some((p, tid));
        }
        Ok(())
    }

    /// The element type's inverse transform over the units of one tile at `place`.
    fn inverse_tile(&self, l: &TileLayout, out: &mut [u8], place: Placement) {
        let width = l.extent.cols as usize * place.unit;
        for r in 0..l.extent.rows as usize {
            let at = place.base + r * place.row_stride;
            self.elem.inverse_all(&mut out[at..at + width]);
        }
    }

    /// Decode the ANS section of plane `p`, and place the raw bytes its lanes carry.
    #[allow(clippy::too_many_arguments)]
    fn decode_ans(
        &self,
        imp: Option<Imp>,
        t: u64,
        l: &TileLayout,
        p: usize,
        table: &DecodeTable,
        out: &mut [u8],
        place: Placement,
    ) -> Result<(), Error> {
        let s = &l.sections[p];
        let n = l.extent.symbols();
        let unit = place.unit;
        let byte = unit - 1 - p;
        let corrupt = |kind| Error::Corrupt { tile: t, plane: p as u8, kind };
        self.check_padding(s).map_err(corrupt)?;
        let body = &self.bytes[s.at..s.at + s.len];
        let mut cur = Cursor::new(&place, byte);
        let fin = match imp {
            None => {
                let (states, words) = body.split_at(crate::frame::STATES_BYTES);
                let fin = decode_lanes(table, states, words, n, |sym| out[cur.next(unit)] = sym).map_err(corrupt)?;
                check_final(&fin, s.carries).map_err(corrupt)?;
                fin
            }
            Some(imp) => {
                let (states, words) = body.split_at(crate::frame::STATES_BYTES);
                let mut lanes = simd::Lanes::new(imp, table, states, words).map_err(corrupt)?;
                let mut buf = [0u8; 2048];
                let mut k = 0;
                while k < n {
                    let m = (n - k).min(buf.len());
                    lanes.decode(&mut buf[..m]).map_err(corrupt)?;
                    for &sym in &buf[..m] {
                        out[cur.next(unit)] = sym;
                    }
                    k += m;
                }
                lanes.finish(s.carries).map_err(corrupt)?
            }
        };
        if s.carries {
            let first = n - CARRY_SYMBOLS;
            for (k, b) in simd::carried_bytes(&fin, n).into_iter().enumerate() {
                out[place.at(first + k, byte - 1)] = b;
            }
        }
        Ok(())
    }

    /// Place raw and constant sections of every plane of tile `t`.
    fn decode_plain(&self, t: u64, l: &TileLayout, out: &mut [u8], place: Placement) -> Result<(), Error> {
        let unit = place.unit;
        let n = l.extent.symbols();
        for (p, s) in l.sections[..unit].iter().enumerate() {
            let byte = unit - 1 - p;
            match s.mode {
                TileMode::Raw => {
                    self.check_padding(s).map_err(|kind| Error::Corrupt { tile: t, plane: p as u8, kind })?;
                    let mut cur = Cursor::new(&place, byte);
                    for &b in &self.bytes[s.at..s.at + s.stored] {
                        out[cur.next(unit)] = b;
                    }
                }
                TileMode::Const { symbol } => {
                    let mut cur = Cursor::new(&place, byte);
                    for _ in 0..n {
                        out[cur.next(unit)] = symbol;
                    }
                }
                TileMode::Ans { .. } => {}
            }
        }
        Ok(())
    }

    /// Fused decode of a two-byte tile whose plane 0 is ANS and plane 1 raw: decode plane 0 a
    /// block of whole columns at a time and emit each block merged with plane 1, transformed and
    /// transposed. Checks as the scalar tile decode: plane 0's padding, initial states, words,
    /// final states; then plane 1's padding.
    fn tile_fused2(
        &self,
        imp: Imp,
        t: u64,
        l: &TileLayout,
        table: &DecodeTable,
        out: &mut [u8],
        place: Placement,
    ) -> Result<(), Error> {
        let mut job = self.fused2_begin(imp, t, l, table, place)?;
        self.fused2_finish(&mut job, out, None)
    }

    /// Fused decodes of tiles `ts` (in order), all with plane 0 coded by the loaded `table`, in
    /// pairs whose dependency chains overlap; errors as if decoded one by one.
    fn tiles_fused2(
        &self,
        imp: Imp,
        ts: &[(u64, TileLayout, Placement)],
        table: &DecodeTable,
        out: &mut [u8],
        mut hash: Option<&mut HashJob>,
    ) -> Result<(), Error> {
        let mut it = ts.iter();
        while let Some((ta, la, pa)) = it.next() {
            let mut a = self.fused2_begin(imp, *ta, la, table, *pa)?;
            let Some((tb, lb, pb)) = it.next() else { return self.fused2_finish(&mut a, out, hash) };
            let mut b = match self.fused2_begin(imp, *tb, lb, table, *pb) {
                Ok(b) => b,
                Err(e) => {
                    self.fused2_finish(&mut a, out, None)?;
                    return Err(e);
                }
            };
            if a.fused_steps > 0 && b.fused_steps > 0 {
                let steps = a.fused_steps.min(b.fused_steps);
                let rot = self.elem == crate::ElemType::Bf16;
                let mut fa = simd::FusedTile::new(a.raw, a.place.base, a.place.row_stride, a.rows, rot, &mut a.ring)
                    .with_hash(hash.as_deref_mut());
                let mut fb = simd::FusedTile::new(b.raw, b.place.base, b.place.row_stride, b.rows, rot, &mut b.ring);
                simd::Lanes::fused2_pair(&mut a.lanes, &mut fa, &mut b.lanes, &mut fb, out, steps);
            }
            self.fused2_finish(&mut a, out, hash.as_deref_mut())?;
            self.fused2_finish(&mut b, out, hash.as_deref_mut())?;
        }
        Ok(())
    }

    /// [`Self::tiles_fused2`] of a run collected in an array.
    fn run_fused2(
        &self,
        imp: Imp,
        run: &[Option<(u64, TileLayout, Placement)>],
        table: &DecodeTable,
        out: &mut [u8],
        hash: Option<&mut HashJob>,
    ) -> Result<(), Error> {
        let mut ts = [(0u64, self.empty_layout(), Placement { base: 0, row_stride: 0, rows: 1, unit: 2 }); RUN];
        for (d, r) in ts.iter_mut().zip(run) {
            *d = r.expect("a run holds its tiles");
        }
        self.tiles_fused2(imp, &ts[..run.len()], table, out, hash)
    }

    /// A placeholder layout (never decoded).
    fn empty_layout(&self) -> TileLayout {
        let section = Section { mode: TileMode::Raw, at: 0, len: 0, padded: 0, stored: 0, carries: false };
        TileLayout { extent: crate::TileExtent { row0: 0, col0: 0, rows: 0, cols: 0 }, sections: [section; 4] }
    }

    /// Start a fused two-byte tile: plane 0's padding and initial states.
    fn fused2_begin<'t>(
        &'t self,
        imp: Imp,
        t: u64,
        l: &TileLayout,
        table: &'t DecodeTable,
        place: Placement,
    ) -> Result<Fused2Job<'t>, Error> {
        let rows = l.extent.rows as usize;
        let cols = l.extent.cols as usize;
        let n = rows * cols;
        let (s0, s1) = (&l.sections[0], &l.sections[1]);
        let c0 = |kind| Error::Corrupt { tile: t, plane: 0, kind };
        self.check_padding(s0).map_err(c0)?;
        let body = &self.bytes[s0.at..s0.at + s0.len];
        let (states, words) = body.split_at(crate::frame::STATES_BYTES);
        let lanes = simd::Lanes::new(imp, table, states, words).map_err(c0)?;
        // Whole 8-column blocks before the carried symbols go through the fused kernel, where
        // there is one (AVX2) and the rows are a multiple of 32.
        let simd_fused = cfg!(target_arch = "x86_64") && !matches!(imp, Imp::Portable);
        let fused_steps = if simd_fused && rows.is_multiple_of(LANES) && rows <= FUSED_ROWS {
            let spb = rows / 4;
            let carry_steps = if s0.carries { CARRY_SYMBOLS / LANES } else { 0 };
            (cols / 8).min((n / LANES - carry_steps) / spb) * spb
        } else {
            0
        };
        Ok(Fused2Job {
            t,
            imp,
            lanes,
            raw: &self.bytes[s1.at..s1.at + s1.stored],
            s1: *s1,
            rows,
            cols,
            carries: s0.carries,
            fused_steps,
            place,
            ring: [0; 16 * FUSED_ROWS],
        })
    }

    /// Finish a fused two-byte tile: the fused steps a pair did not do, then the columns left
    /// (block by block through a buffer), the final checks, the carried bytes and plane 1's
    /// padding.
    fn fused2_finish(&self, job: &mut Fused2Job, out: &mut [u8], hash: Option<&mut HashJob>) -> Result<(), Error> {
        let (t, imp, rows, cols) = (job.t, job.imp, job.rows, job.cols);
        let n = rows * cols;
        let c0 = |kind| Error::Corrupt { tile: t, plane: 0, kind };
        let rot = self.elem == crate::ElemType::Bf16;
        let stride = job.place.row_stride;
        let raw = job.raw;
        let lanes = &mut job.lanes;
        let mut c = 0;
        if job.fused_steps > 0 {
            let left = job.fused_steps - lanes.symbols_done() / LANES;
            let mut tile = simd::FusedTile::new(raw, job.place.base, stride, rows, rot, &mut job.ring).with_hash(hash);
            lanes.fused2(&mut tile, out, left).map_err(c0)?;
            lanes.fused2_flush(&mut tile, out, job.fused_steps / (rows / 4) - 1);
            c = 8 * job.fused_steps / (rows / 4);
        }
        let cb = (BLOCK / rows).min(8);
        let dst = &mut out[job.place.base..];
        // Symbols of plane 0 from `k0` on, `have` of them, in `buf`.
        let mut buf = [0u8; BLOCK + 2 * CARRY_SYMBOLS];
        let (mut k0, mut have) = (c * rows, 0usize);
        // The last 64 symbols need the final states when plane 1 is carried, and the final
        // partial step is decoded with the rest of the tile.
        let tail_from = if job.carries { n - CARRY_SYMBOLS } else { n };
        let full_end = n / LANES * LANES;
        while c < cols {
            let nb = cb.min(cols - c);
            let need = nb * rows;
            let end = k0 + need;
            if end > tail_from || end == n || end.next_multiple_of(LANES) > full_end {
                break;
            }
            if have < need {
                let steps = (need - have).div_ceil(LANES);
                lanes.decode(&mut buf[have..have + steps * LANES]).map_err(c0)?;
                have += steps * LANES;
            }
            emit::merge2(imp, &buf[..need], &raw[k0..k0 + need], rows, nb, rot, &mut dst[2 * c..], stride);
            buf.copy_within(need..have, 0);
            have -= need;
            k0 += need;
            c += nb;
        }
        // The rest of the tile: at most one block and the carried symbols, which fit `buf`.
        let rest = n - k0;
        lanes.decode(&mut buf[have..rest]).map_err(c0)?;
        let fin = lanes.finish(job.carries).map_err(c0)?;
        let mut lo = [0u8; BLOCK + 2 * CARRY_SYMBOLS];
        lo[..raw.len() - k0].copy_from_slice(&raw[k0..]);
        if job.carries {
            lo[rest - CARRY_SYMBOLS..rest].copy_from_slice(&simd::carried_bytes(&fin, n));
        }
        let mut k = 0;
        while c < cols {
            let nb = cb.min(cols - c);
            let need = nb * rows;
            emit::merge2(imp, &buf[k..k + need], &lo[k..k + need], rows, nb, rot, &mut dst[2 * c..], stride);
            k += need;
            c += nb;
        }
        self.check_padding(&job.s1).map_err(|kind| Error::Corrupt { tile: t, plane: 1, kind })
    }

    /// A two-byte tile whose plane 0 is raw or constant and plane 1 raw.
    fn tile_plain2(&self, imp: Imp, t: u64, l: &TileLayout, out: &mut [u8], place: Placement) -> Result<(), Error> {
        let rows = l.extent.rows as usize;
        let cols = l.extent.cols as usize;
        let n = rows * cols;
        let (s0, s1) = (&l.sections[0], &l.sections[1]);
        let cb = (BLOCK / rows).min(8);
        debug_assert!(cb > 0);
        if let TileMode::Raw = s0.mode {
            self.check_padding(s0).map_err(|kind| Error::Corrupt { tile: t, plane: 0, kind })?;
        }
        self.check_padding(s1).map_err(|kind| Error::Corrupt { tile: t, plane: 1, kind })?;
        let lo = &self.bytes[s1.at..s1.at + n];
        let rot = self.elem == crate::ElemType::Bf16;
        let dst = &mut out[place.base..];
        match s0.mode {
            TileMode::Raw => {
                let hi = &self.bytes[s0.at..s0.at + n];
                emit::merge2(imp, hi, lo, rows, cols, rot, dst, place.row_stride);
            }
            TileMode::Const { symbol } => {
                let hi = [symbol; BLOCK];
                let mut c = 0;
                while c < cols {
                    let nb = cb.min(cols - c);
                    let k = c * rows;
                    emit::merge2(imp, &hi, &lo[k..k + nb * rows], rows, nb, rot, &mut dst[2 * c..], place.row_stride);
                    c += nb;
                }
            }
            TileMode::Ans { .. } => unreachable!("tile_plain2 is called for tiles without ANS"),
        }
        Ok(())
    }

    fn check_padding(&self, s: &Section) -> Result<(), Corruption> {
        if self.bytes[s.at + s.len..s.at + s.padded].iter().any(|&b| b != 0) {
            return Err(Corruption::Padding);
        }
        Ok(())
    }
}

/// Every lane must end in its initial encoder state (`2^16`, or `2^16 + carried bytes`).
fn check_final(fin: &[u32; LANES], carries: bool) -> Result<(), Corruption> {
    for (lane, &x) in fin.iter().enumerate() {
        let ok = if carries { x >> 16 == 1 } else { x == RANS_L };
        if !ok {
            return Err(Corruption::FinalState { lane: lane as u8 });
        }
    }
    Ok(())
}
