//! The scalar reference decoder: whole tensors and single tiles, into caller buffers.

use crate::ans::decode_lanes;
use crate::error::{Corruption, Error};
use crate::frame::{Frame, Section, TileLayout, TileMode};
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

impl Frame<'_> {
    /// Decode the whole tensor into `out` (exactly [`Self::decoded_len`] bytes), verifying the
    /// content checksum when the frame has one. Uses 16 KiB of stack for the lookup table.
    pub fn decode_into(&self, out: &mut [u8]) -> Result<(), Error> {
        let mut table = DecodeTable::new();
        self.decode_into_with(out, &mut table)
    }

    /// [`Self::decode_into`] with a caller-provided lookup table (no large stack use).
    pub fn decode_into_with(&self, out: &mut [u8], table: &mut DecodeTable) -> Result<(), Error> {
        let expected = self.decoded_len();
        if out.len() != expected {
            return Err(Error::BufferSize { expected: expected as u64, actual: out.len() as u64 });
        }
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
                self.load_table(p, tid, table)?;
                for t in 0..self.num_tiles() {
                    let l = self.layout_checked(t);
                    if matches!(l.sections[p].mode, TileMode::Ans { table, .. } if table == tid) {
                        self.decode_ans(t, &l, p, table, out, place(&l))?;
                    }
                }
            }
        }
        for t in 0..self.num_tiles() {
            let l = self.layout_checked(t);
            self.decode_plain(t, &l, out, place(&l))?;
        }
        self.elem.inverse_all(out);
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
        self.decode_tile_into_with(t, out, &mut table)
    }

    /// [`Self::decode_tile_into`] with a caller-provided lookup table.
    pub fn decode_tile_into_with(&self, t: u64, out: &mut [u8], table: &mut DecodeTable) -> Result<(), Error> {
        let expected = self.tile_decoded_len(t)?;
        if out.len() != expected {
            return Err(Error::BufferSize { expected: expected as u64, actual: out.len() as u64 });
        }
        let l = self.layout_checked(t);
        let unit = self.elem.planes();
        let place =
            Placement { base: 0, row_stride: l.extent.cols as usize * unit, rows: l.extent.rows as usize, unit };
        for p in 0..unit {
            if let TileMode::Ans { table: tid, .. } = l.sections[p].mode {
                self.load_table(p, tid, table)?;
                self.decode_ans(t, &l, p, table, out, place)?;
            }
        }
        self.decode_plain(t, &l, out, place)?;
        self.elem.inverse_all(out);
        Ok(())
    }

    /// Decode the ANS section of plane `p`, and place the raw bytes its lanes carry.
    fn decode_ans(
        &self,
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
        let (states, words) = body.split_at(crate::frame::STATES_BYTES);
        let mut cur = Cursor::new(&place, byte);
        let fin = decode_lanes(table, states, words, n, |sym| out[cur.next(unit)] = sym).map_err(corrupt)?;
        for (lane, &x) in fin.iter().enumerate() {
            let ok = if s.carries { x >> 16 == 1 } else { x == RANS_L };
            if !ok {
                return Err(corrupt(Corruption::FinalState { lane: lane as u8 }));
            }
        }
        if s.carries {
            let first = n - CARRY_SYMBOLS;
            for j in first..n {
                let shift = if j < first + LANES { 0 } else { 8 };
                out[place.at(j, byte - 1)] = (fin[j % LANES] >> shift) as u8;
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

    fn check_padding(&self, s: &Section) -> Result<(), Corruption> {
        if self.bytes[s.at + s.len..s.at + s.padded].iter().any(|&b| b != 0) {
            return Err(Corruption::Padding);
        }
        Ok(())
    }
}
