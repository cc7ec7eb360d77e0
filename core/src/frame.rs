//! Frame parsing and geometry. Everything a decoder relies on is validated here, before any
//! payload byte is read, so that decoding cannot index out of bounds afterwards.

use crate::elem::ElemType;
use crate::error::Error;
use crate::{table, CARRY_SYMBOLS, FORMAT_VERSION, LANES, MAGIC, MAX_RANK, MAX_TABLES, MAX_TILE_SYMBOLS};

/// Length of the fixed part of the header.
pub(crate) const FIXED_HEADER: usize = 32;
/// Flag bit: an XXH64 content checksum is present.
pub(crate) const FLAG_CONTENT_CHECKSUM: u16 = 1;
/// Bytes of an ANS section before its words: 32 u32 states.
pub(crate) const STATES_BYTES: usize = 4 * LANES;

/// How one plane of one tile is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TileMode {
    /// Plain bytes (every plane of a raw plane; a coded plane whose tile did not compress).
    Raw,
    /// rANS-coded with table `table`, `words` 16-bit words after the 32 lane states.
    Ans {
        /// Table number within the plane.
        table: u8,
        /// Coded words.
        words: u32,
    },
    /// Every symbol of the tile equals `symbol`; no payload.
    Const {
        /// The symbol.
        symbol: u8,
    },
}

/// Where a tile sits in the tensor, in units (elements, or bytes for packed 4-bit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileExtent {
    /// First row.
    pub row0: u64,
    /// First column (in units).
    pub col0: u64,
    /// Rows in this tile.
    pub rows: u32,
    /// Columns (units) in this tile.
    pub cols: u32,
}

impl TileExtent {
    /// Symbols per plane in this tile.
    pub fn symbols(&self) -> usize {
        self.rows as usize * self.cols as usize
    }
}

/// One plane's section inside a tile record.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Section {
    pub mode: TileMode,
    /// Absolute byte offset of the section in the frame.
    pub at: usize,
    /// Section length without padding.
    pub len: usize,
    /// Section length with padding to 4 bytes.
    pub padded: usize,
    /// For a raw section: bytes stored (symbols minus those carried by the previous plane).
    pub stored: usize,
    /// For an ANS section: whether its lane states carry raw bytes of the next plane.
    pub carries: bool,
}

/// The layout of one tile's record.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TileLayout {
    pub extent: TileExtent,
    pub sections: [Section; 4],
}

/// Sizes of a frame's parts, for overhead accounting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SizeBreakdown {
    /// Fixed header, dimensions and checksums.
    pub header: u64,
    /// Stored frequency tables (with their counts and padding).
    pub tables: u64,
    /// The tile index.
    pub index: u64,
    /// Lane states of ANS sections.
    pub lane_states: u64,
    /// Coded words of ANS sections.
    pub coded_words: u64,
    /// Raw sections, including raw tiles of coded planes.
    pub raw: u64,
    /// Padding of sections to 4 bytes.
    pub padding: u64,
    /// Symbols coded by rANS.
    pub ans_symbols: u64,
    /// Symbols stored in constant tiles.
    pub const_symbols: u64,
    /// Raw bytes carried in lane states instead of raw sections.
    pub carried: u64,
}

/// A parsed, validated frame borrowing its bytes.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) elem: ElemType,
    pub(crate) rank: u8,
    pub(crate) dims: [u64; MAX_RANK],
    pub(crate) scale_bits: u8,
    pub(crate) coded_mask: u8,
    pub(crate) tile_rows: u32,
    pub(crate) tile_cols: u32,
    pub(crate) rows: u64,
    pub(crate) cols: u64,
    pub(crate) grid_rows: u64,
    pub(crate) grid_cols: u64,
    /// Offsets of tables: `tables[p][t]`.
    pub(crate) tables: [[u32; MAX_TABLES]; 4],
    pub(crate) n_tables: [u8; 4],
    pub(crate) index_at: usize,
    pub(crate) content_checksum: Option<u64>,
    pub(crate) payload_at: usize,
}

#[inline]
fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
#[inline]
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
#[inline]
fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// `ceil(a / b)` for b > 0.
pub(crate) const fn div_ceil(a: u64, b: u64) -> u64 {
    a / b + !a.is_multiple_of(b) as u64
}

/// Rows and columns (units) of the matrix view of a shape; `None` if the shape cannot hold `elem`.
pub(crate) fn matrix_view(elem: ElemType, dims: &[u64]) -> Option<(u64, u64)> {
    let epu = elem.elems_per_unit();
    let (rows, last) = match dims.split_last() {
        None => (1u64, 1u64),
        Some((&last, lead)) => (lead.iter().try_fold(1u64, |a, &d| a.checked_mul(d))?, last),
    };
    if dims.is_empty() && epu != 1 || last % epu != 0 {
        return None;
    }
    let cols = last / epu;
    // The decoded size and the row length must fit in u64 (and are checked against usize by
    // the caller), even for an empty tensor whose other dimension is huge.
    rows.checked_mul(cols.checked_mul(elem.planes() as u64)?)?;
    Some((rows, cols))
}

/// Encode a tile-index descriptor.
#[cfg(feature = "alloc")] // only the encoder uses it
pub(crate) fn descriptor(mode: TileMode) -> u32 {
    match mode {
        TileMode::Raw => 0,
        TileMode::Ans { table, words } => 1 | u32::from(table) << 2 | words << 8,
        TileMode::Const { symbol } => 2 | u32::from(symbol) << 8,
    }
}

fn parse_descriptor(d: u32, n_tables: u8, symbols: usize) -> Option<TileMode> {
    match d & 3 {
        0 if d == 0 => Some(TileMode::Raw),
        1 if d & 0xC0 == 0 => {
            let table = (d >> 2 & 0xF) as u8;
            let words = d >> 8;
            (table < n_tables && words as usize <= symbols).then_some(TileMode::Ans { table, words })
        }
        2 if d & 0xFFFF_00FC == 0 => Some(TileMode::Const { symbol: (d >> 8) as u8 }),
        _ => None,
    }
}

/// Length of a section (unpadded) for a mode, given the symbols it must hold.
pub(crate) fn section_len(mode: TileMode, stored_raw: usize) -> usize {
    match mode {
        TileMode::Raw => stored_raw,
        TileMode::Ans { words, .. } => STATES_BYTES + 2 * words as usize,
        TileMode::Const { .. } => 0,
    }
}

pub(crate) const fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

impl<'a> Frame<'a> {
    /// Parse and validate a frame occupying exactly `bytes`.
    pub fn parse(bytes: &'a [u8]) -> Result<Frame<'a>, Error> {
        let have = bytes.len() as u64;
        let need = |n: u64| if have < n { Err(Error::Truncated { needed: n, have }) } else { Ok(()) };
        need(4)?;
        if bytes[..4] != MAGIC {
            return Err(Error::BadMagic);
        }
        need(FIXED_HEADER as u64)?;
        let version = u16_at(bytes, 4);
        if version != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion(version));
        }
        let header_len = u64::from(u32_at(bytes, 20));
        let payload_len = u64_at(bytes, 24);
        if header_len < FIXED_HEADER as u64 + 8 || header_len % 4 != 0 {
            return Err(Error::HeaderLength { stored: header_len, expected: FIXED_HEADER as u64 + 8 });
        }
        need(header_len)?;
        let header_len = header_len as usize;
        // The checksum covers everything the rest of the parse reads, so check it first.
        let stored_sum = u64_at(bytes, header_len - 8);
        if xxhash_rust::xxh64::xxh64(&bytes[..header_len - 8], 0) != stored_sum {
            return Err(Error::HeaderChecksum);
        }
        let actual_payload = have - header_len as u64;
        if payload_len != actual_payload {
            if payload_len > actual_payload {
                return Err(Error::Truncated { needed: (header_len as u64).saturating_add(payload_len), have });
            }
            return Err(Error::PayloadLength { stored: payload_len, actual: actual_payload });
        }
        let flags = u16_at(bytes, 6);
        if flags & !FLAG_CONTENT_CHECKSUM != 0 {
            return Err(Error::UnknownFlags(flags));
        }
        let elem = ElemType::from_code(bytes[8]).ok_or(Error::UnknownElemType(bytes[8]))?;
        let rank = bytes[9];
        if rank as usize > MAX_RANK {
            return Err(Error::BadRank(rank));
        }
        let scale_bits = bytes[10];
        if !crate::SCALE_BITS_RANGE.contains(&scale_bits) {
            return Err(Error::BadScaleBits(scale_bits));
        }
        let coded_mask = bytes[11];
        if u32::from(coded_mask) >> elem.planes() != 0 || bytes[11] & 0xF0 != 0 {
            return Err(Error::BadPlaneMask(coded_mask));
        }
        let tile_rows = u32_at(bytes, 12);
        let tile_cols = u32_at(bytes, 16);
        if tile_rows == 0 || tile_cols == 0 || u64::from(tile_rows) * u64::from(tile_cols) > MAX_TILE_SYMBOLS {
            return Err(Error::BadTileShape { rows: tile_rows, cols: tile_cols });
        }
        // Variable part, walked with a cursor bounded by header_len - 8 (the checksum).
        let end = header_len - 8;
        let mut at = FIXED_HEADER;
        let overrun = |at: usize| Error::HeaderLength { stored: header_len as u64, expected: at as u64 + 8 };
        let mut dims = [0u64; MAX_RANK];
        for d in dims.iter_mut().take(rank as usize) {
            if at + 8 > end {
                return Err(overrun(at + 8));
            }
            *d = u64_at(bytes, at);
            at += 8;
        }
        let (rows, cols) = matrix_view(elem, &dims[..rank as usize]).ok_or(Error::BadShape)?;
        let decoded = rows * cols * elem.planes() as u64;
        if usize::try_from(decoded).is_err() || usize::try_from(cols * elem.planes() as u64).is_err() {
            return Err(Error::TooLarge);
        }
        let mut tables = [[0u32; MAX_TABLES]; 4];
        let mut n_tables = [0u8; 4];
        for p in 0..elem.planes() {
            if coded_mask >> p & 1 == 0 {
                continue;
            }
            if at + 1 > end {
                return Err(overrun(at + 1));
            }
            let k = bytes[at];
            at += 1;
            if k == 0 || k as usize > MAX_TABLES {
                return Err(Error::BadTable { plane: p as u8, table: 0 });
            }
            n_tables[p] = k;
            for t in 0..k {
                let len =
                    table::validate(&bytes[at..end], scale_bits).ok_or(Error::BadTable { plane: p as u8, table: t })?;
                tables[p][t as usize] = at as u32;
                at += len;
            }
        }
        let index_at = pad4(at);
        if index_at > end || bytes[at..index_at].iter().any(|&b| b != 0) {
            return Err(overrun(index_at));
        }
        let grid_rows = div_ceil(rows, u64::from(tile_rows));
        let grid_cols = div_ceil(cols, u64::from(tile_cols));
        let tiles = if rows == 0 || cols == 0 { 0 } else { grid_rows * grid_cols };
        let entry = 4 * (1 + coded_mask.count_ones() as u64);
        let checksum_len = if flags & FLAG_CONTENT_CHECKSUM != 0 { 8 } else { 0 };
        let expected = (index_at as u64)
            .checked_add(tiles.checked_mul(entry).ok_or(Error::TooLarge)?)
            .and_then(|v| v.checked_add(checksum_len + 8))
            .ok_or(Error::TooLarge)?;
        if expected != header_len as u64 {
            return Err(Error::HeaderLength { stored: header_len as u64, expected });
        }
        let content_checksum = (checksum_len != 0).then(|| u64_at(bytes, end - 8));
        let frame = Frame {
            bytes,
            elem,
            rank,
            dims,
            scale_bits,
            coded_mask,
            tile_rows,
            tile_cols,
            rows,
            cols,
            grid_rows: if tiles == 0 { 0 } else { grid_rows },
            grid_cols: if tiles == 0 { 0 } else { grid_cols },
            tables,
            n_tables,
            index_at,
            content_checksum,
            payload_at: header_len,
        };
        frame.validate_index()?;
        Ok(frame)
    }

    /// Check every index entry: descriptors, and offsets equal to the running sum of record sizes.
    fn validate_index(&self) -> Result<(), Error> {
        let payload = (self.bytes.len() - self.payload_at) as u64;
        let mut expect = 0u64;
        for t in 0..self.num_tiles() {
            let offset = self.record_offset(t);
            if offset != expect || expect * 4 > payload {
                return Err(Error::BadIndex { tile: t });
            }
            let layout = self.layout(t).ok_or(Error::BadIndex { tile: t })?;
            let size: usize = layout.sections[..self.elem.planes()].iter().map(|s| s.padded).sum();
            expect += (size / 4) as u64;
        }
        if expect * 4 != payload {
            return Err(Error::PayloadLength { stored: payload, actual: expect * 4 });
        }
        Ok(())
    }

    fn entry_words(&self) -> usize {
        1 + self.coded_mask.count_ones() as usize
    }

    /// Record offset of tile `t` in 4-byte units from the payload start.
    fn record_offset(&self, t: u64) -> u64 {
        u64::from(u32_at(self.bytes, self.index_at + 4 * self.entry_words() * t as usize))
    }

    /// Section layout of tile `t` (< num_tiles), or `None` if its descriptors are invalid.
    pub(crate) fn layout(&self, t: u64) -> Option<TileLayout> {
        let extent = self.extent(t);
        let n = extent.symbols();
        let entry = self.index_at + 4 * self.entry_words() * t as usize;
        let mut at = self.payload_at + 4 * self.record_offset(t) as usize;
        let mut sections = [Section { mode: TileMode::Raw, at: 0, len: 0, padded: 0, stored: 0, carries: false }; 4];
        let mut desc_at = entry + 4;
        let mut prev_carries = false;
        for (p, section) in sections.iter_mut().enumerate().take(self.elem.planes()) {
            let coded = self.coded_mask >> p & 1 == 1;
            let mode = if coded {
                let d = u32_at(self.bytes, desc_at);
                desc_at += 4;
                parse_descriptor(d, self.n_tables[p], n)?
            } else {
                TileMode::Raw
            };
            let next_is_raw_plane = p + 1 < self.elem.planes() && self.coded_mask >> (p + 1) & 1 == 0;
            let carries = matches!(mode, TileMode::Ans { .. }) && next_is_raw_plane && n >= CARRY_SYMBOLS;
            let stored = if prev_carries { n - CARRY_SYMBOLS } else { n };
            let len = section_len(mode, stored);
            *section = Section { mode, at, len, padded: pad4(len), stored, carries };
            at += pad4(len);
            prev_carries = carries;
        }
        Some(TileLayout { extent, sections })
    }

    /// The element type.
    pub fn elem_type(&self) -> ElemType {
        self.elem
    }
    /// The tensor shape in elements.
    pub fn shape(&self) -> &[u64] {
        &self.dims[..self.rank as usize]
    }
    /// Rows of the matrix view (leading dimensions flattened; 1 for rank 0 and 1).
    pub fn rows(&self) -> u64 {
        self.rows
    }
    /// Columns of the matrix view, in units (elements; bytes for packed 4-bit).
    pub fn cols(&self) -> u64 {
        self.cols
    }
    /// Tile shape (rows, columns in units).
    pub fn tile_shape(&self) -> (u32, u32) {
        (self.tile_rows, self.tile_cols)
    }
    /// Tile grid (tile rows, tile columns); (0, 0) for an empty tensor.
    pub fn grid(&self) -> (u64, u64) {
        (self.grid_rows, self.grid_cols)
    }
    /// Number of tiles.
    pub fn num_tiles(&self) -> u64 {
        self.grid_rows * self.grid_cols
    }
    /// Scale bits of the frequency tables.
    pub fn scale_bits(&self) -> u8 {
        self.scale_bits
    }
    /// Whether plane `p` is entropy-coded (otherwise stored raw).
    pub fn plane_coded(&self, p: usize) -> bool {
        p < self.elem.planes() && self.coded_mask >> p & 1 == 1
    }
    /// Number of frequency tables of plane `p` (0 for raw planes).
    pub fn tables_in_plane(&self, p: usize) -> usize {
        self.n_tables.get(p).map_or(0, |&k| k as usize)
    }
    /// Bytes of the decoded tensor.
    pub fn decoded_len(&self) -> usize {
        (self.rows * self.cols) as usize * self.elem.planes()
    }
    /// Number of elements.
    pub fn elements(&self) -> u64 {
        self.rows * self.cols * self.elem.elems_per_unit()
    }
    /// The content checksum (XXH64 of the decoded bytes), if the frame has one.
    pub fn content_checksum(&self) -> Option<u64> {
        self.content_checksum
    }
    /// Total frame length in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }
    /// Whether the frame holds no elements.
    pub fn is_empty(&self) -> bool {
        self.num_tiles() == 0
    }
    /// The frame's bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Position and size of tile `t` (panics if `t >= num_tiles()`; see [`Self::tile`]).
    fn extent(&self, t: u64) -> TileExtent {
        let (i, j) = (t / self.grid_cols, t % self.grid_cols);
        let row0 = i * u64::from(self.tile_rows);
        let col0 = j * u64::from(self.tile_cols);
        TileExtent {
            row0,
            col0,
            rows: (self.rows - row0).min(u64::from(self.tile_rows)) as u32,
            cols: (self.cols - col0).min(u64::from(self.tile_cols)) as u32,
        }
    }

    /// Position and size of tile `t`.
    pub fn tile(&self, t: u64) -> Result<TileExtent, Error> {
        self.check_tile(t)?;
        Ok(self.extent(t))
    }

    /// Bytes of tile `t` decoded alone (row-major within the tile).
    pub fn tile_decoded_len(&self, t: u64) -> Result<usize, Error> {
        Ok(self.tile(t)?.symbols() * self.elem.planes())
    }

    /// How plane `p` of tile `t` is stored.
    pub fn tile_mode(&self, t: u64, p: usize) -> Result<TileMode, Error> {
        self.check_tile(t)?;
        if p >= self.elem.planes() {
            return Err(Error::BadOption("plane out of range"));
        }
        Ok(self.layout_checked(t).sections[p].mode)
    }

    pub(crate) fn check_tile(&self, t: u64) -> Result<(), Error> {
        if t >= self.num_tiles() {
            return Err(Error::TileOutOfRange { tile: t, tiles: self.num_tiles() });
        }
        Ok(())
    }

    /// Layout of a tile already validated by `parse`.
    pub(crate) fn layout_checked(&self, t: u64) -> TileLayout {
        self.layout(t).expect("tile index validated by Frame::parse")
    }

    /// Stored table `t` of plane `p` (validated by parse).
    pub(crate) fn table_bytes(&self, p: usize, t: u8) -> &'a [u8] {
        &self.bytes[self.tables[p][t as usize] as usize..self.index_at]
    }

    /// Fill `table` with table `t` of coded plane `p`.
    pub fn load_table(&self, p: usize, t: u8, table: &mut crate::DecodeTable) -> Result<(), Error> {
        if !self.plane_coded(p) || t >= self.n_tables[p] {
            return Err(Error::BadOption("no such table"));
        }
        table.fill(self.table_bytes(p, t), self.scale_bits);
        Ok(())
    }

    /// Where the bytes of the frame go.
    pub fn breakdown(&self) -> SizeBreakdown {
        let mut b = SizeBreakdown::default();
        let checksums = 8 + if self.content_checksum.is_some() { 8 } else { 0 };
        let dims_end = FIXED_HEADER as u64 + 8 * u64::from(self.rank);
        b.header = dims_end + checksums;
        b.tables = self.index_at as u64 - dims_end;
        b.index = self.num_tiles() * 4 * self.entry_words() as u64;
        for t in 0..self.num_tiles() {
            let l = self.layout_checked(t);
            let n = l.extent.symbols() as u64;
            for s in &l.sections[..self.elem.planes()] {
                b.padding += (s.padded - s.len) as u64;
                match s.mode {
                    TileMode::Raw => b.raw += s.len as u64,
                    TileMode::Ans { words, .. } => {
                        b.lane_states += STATES_BYTES as u64;
                        b.coded_words += 2 * u64::from(words);
                        b.ans_symbols += n;
                        if s.carries {
                            b.carried += CARRY_SYMBOLS as u64;
                        }
                    }
                    TileMode::Const { .. } => b.const_symbols += n,
                }
            }
        }
        b
    }
}
