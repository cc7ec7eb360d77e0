//! The device image (`docs/FORMAT.md` section 11): a GPU-facing layout of a BF16 or F16 frame with
//! one word stream per lane and units assigned to lanes in row-major chunks of 8, so that a warp
//! decodes a tile row by row and stores whole lines straight from registers. Version 2 (section
//! 11.1, "pair images") codes the plane-0 symbols of two neighbouring units as one symbol of a
//! pair table at 13 scale bits: half the decode steps for about the same size.
//!
//! [`Image::parse`] validates the header, tables and index of either version (everything the
//! layout depends on); [`Image::decode_into`] is the scalar reference decoder (no allocation, one
//! 16 KiB [`DecodeTable`] for both versions), checking every tile as the GPU decoder does.
//! With feature `alloc`: [`build`] makes a version-1 image from a frame, [`build_tile`] +
//! [`assemble`] do the same tile by tile for callers that build in parallel; [`build_pairs`] makes
//! a version-2 image, [`PairCounts`] + [`PairTables::new`] + [`build_tile_pairs`] +
//! [`assemble_pairs`] in parallel.

use crate::table::{self, DecodeTable};
use crate::{Corruption, ElemType, Error, TileExtent, TileMode, LANES, MAX_TABLES, MAX_TILE_SYMBOLS, RANS_L};

/// The four magic bytes that open every device image.
pub const IMAGE_MAGIC: [u8; 4] = [0x89, b'T', b'A', b'I'];
/// Version of the images [`build`] writes (one symbol per unit); [`Image::parse`] also accepts
/// [`IMAGE_VERSION_PAIRS`].
pub const IMAGE_VERSION: u16 = 1;
/// Version of the pair images [`build_pairs`] writes (`docs/FORMAT.md` section 11.1).
pub const IMAGE_VERSION_PAIRS: u16 = 2;
/// Scale bits of the pair tables [`build_pairs`] writes, the largest a version-2 image allows
/// (version 1 keeps the frame's, at most 12).
pub const PAIR_SCALE_BITS: u8 = 13;
/// Bytes of the fixed header.
pub const IMAGE_HEADER_BYTES: usize = 64;
/// Bytes of one tile-index entry.
pub const IMAGE_ENTRY_BYTES: usize = 16;
/// Units per lane chunk (one 16-byte store of BF16/F16 units).
pub const CHUNK: usize = 8;
/// Columns covered by one chunk column: 32 lanes x 8 units.
pub const CHUNK_COLS: usize = LANES * CHUNK;
/// Bytes before the word area of an ANS record: 32 initial states and 32 lane starts.
pub const ANS_HEAD_BYTES: usize = 8 * LANES;

fn rd16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn rd32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn rd64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}
const fn round16(n: u64) -> u64 {
    n.div_ceil(16) * 16
}

/// Chunk columns of a tile `cols` wide: its columns padded to a multiple of 256.
pub fn chunk_columns(cols: u32) -> usize {
    (cols as usize).div_ceil(CHUNK_COLS)
}

/// Bytes of one plane of a tile in the raw block layout: 256 per row and chunk column.
pub fn raw_block_len(e: &TileExtent) -> usize {
    CHUNK_COLS * e.rows as usize * chunk_columns(e.cols)
}

/// Where, in the raw block layout, the byte of tile row `j`, column `col` sits.
#[inline]
pub fn raw_block_at(chunk_cols: usize, j: usize, col: usize) -> usize {
    let (g, rest) = (col / CHUNK_COLS, col % CHUNK_COLS);
    CHUNK * (LANES * (chunk_cols * j + g) + rest / CHUNK) + rest % CHUNK
}

/// The chunks lane `l` decodes, in order (section 11): for each tile row `j` and chunk column,
/// `(j, the chunk's first column)`. The lane's units are the chunks' columns in order; a
/// version-2 lane takes them two by two.
fn lane_chunks(l: usize, rows: usize, chunk_cols: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..rows).flat_map(move |j| (0..chunk_cols).map(move |g| (j, CHUNK_COLS * g + CHUNK * l)))
}

/// The unit (little-endian u16 value) of plane-0 symbol `a` and plane-1 byte `r` (section 2;
/// version 2 keeps a BF16 unit's sign in bit 7 of `r`, section 11.1).
#[inline]
fn unit(elem: ElemType, version: u16, a: u8, r: u8) -> u16 {
    match (elem, version) {
        (ElemType::Bf16, IMAGE_VERSION) => u16::from_be_bytes([a, r]).rotate_right(1),
        (ElemType::Bf16, _) => u16::from(r & 0x80) << 8 | u16::from(a) << 7 | u16::from(r & 0x7F),
        _ => u16::from_be_bytes([a, r]),
    }
}

/// The image's plane-1 byte for the frame's plane-1 byte `r` (the inverse of [`unit`]'s use of
/// it): version 2 moves a BF16 unit's sign from bit 0 to bit 7.
#[cfg(feature = "alloc")]
fn plane1_byte(elem: ElemType, version: u16, r: u8) -> u8 {
    if elem == ElemType::Bf16 && version == IMAGE_VERSION_PAIRS {
        r.rotate_right(1)
    } else {
        r
    }
}

/// The checksum at offset 56: XXH64 of the tables and index (`[64, records)`), seeded with the
/// XXH64 of the header's first 56 bytes.
fn header_checksum(head: &[u8]) -> u64 {
    use xxhash_rust::xxh64::xxh64;
    xxh64(&head[IMAGE_HEADER_BYTES..], xxh64(&head[..56], 0))
}

/// Record length of a tile with plane-0 mode `mode` (`words` for ANS).
fn record_len(mode: TileMode, e: &TileExtent) -> u64 {
    let b = raw_block_len(e) as u64;
    match mode {
        TileMode::Raw => 2 * b,
        TileMode::Const { .. } => b,
        TileMode::Ans { words, .. } => ANS_HEAD_BYTES as u64 + round16(2 * u64::from(words)) + b,
    }
}

fn parse_entry(d: u32, w: u32, n_tables: usize) -> Option<TileMode> {
    match d & 3 {
        0 if d == 0 && w == 0 => Some(TileMode::Raw),
        1 if d >> 6 == 0 && ((d >> 2) as usize) < n_tables => Some(TileMode::Ans { table: (d >> 2) as u8, words: w }),
        2 if d & !0xFF03 == 0 && w == 0 => Some(TileMode::Const { symbol: (d >> 8) as u8 }),
        _ => None,
    }
}

/// A device image, validated by [`Image::parse`], borrowing its bytes.
#[derive(Clone, Copy, Debug)]
pub struct Image<'a> {
    bytes: &'a [u8],
    version: u16,
    elem: ElemType,
    scale_bits: u8,
    tile_rows: u32,
    tile_cols: u32,
    rows: u64,
    cols: u64,
    num_tiles: u64,
    n_tables: usize,
    tables: [usize; MAX_TABLES],
    index_at: usize,
}

impl<'a> Image<'a> {
    /// Validate the header, the tables and the tile index (the layout of every record); the
    /// payload is checked tile by tile when decoding. `bytes` is the whole image.
    pub fn parse(bytes: &'a [u8]) -> Result<Image<'a>, Error> {
        let have = bytes.len() as u64;
        if bytes.len() < IMAGE_HEADER_BYTES {
            return Err(Error::Truncated { needed: IMAGE_HEADER_BYTES as u64, have });
        }
        if bytes[..4] != IMAGE_MAGIC {
            return Err(Error::BadMagic);
        }
        let version = rd16(bytes, 4);
        // the stored tables of each version, and their largest scale
        type Validate = fn(&[u8], u8) -> Option<usize>;
        let (validate, max_bits): (Validate, u8) = match version {
            IMAGE_VERSION => (table::validate, *crate::SCALE_BITS_RANGE.end()),
            IMAGE_VERSION_PAIRS => (table::validate_pairs, PAIR_SCALE_BITS),
            _ => return Err(Error::UnsupportedVersion(version)),
        };
        let elem = match ElemType::from_code(bytes[6]) {
            Some(e @ (ElemType::Bf16 | ElemType::F16)) => e,
            _ => return Err(Error::UnknownElemType(bytes[6])),
        };
        let scale_bits = bytes[7];
        if !(*crate::SCALE_BITS_RANGE.start()..=max_bits).contains(&scale_bits) {
            return Err(Error::BadScaleBits(scale_bits));
        }
        let (tile_rows, tile_cols) = (rd32(bytes, 8), rd32(bytes, 12));
        if tile_rows == 0 || tile_cols == 0 || u64::from(tile_rows) * u64::from(tile_cols) > MAX_TILE_SYMBOLS {
            return Err(Error::BadTileShape { rows: tile_rows, cols: tile_cols });
        }
        let (rows, cols, num_tiles) = (rd64(bytes, 16), rd64(bytes, 24), rd64(bytes, 32));
        let units = rows.checked_mul(cols).ok_or(Error::TooLarge)?;
        if units.checked_mul(2).is_none_or(|b| b > isize::MAX as u64) {
            return Err(Error::TooLarge);
        }
        let grid =
            if units == 0 { 0 } else { rows.div_ceil(u64::from(tile_rows)) * cols.div_ceil(u64::from(tile_cols)) };
        if num_tiles != grid {
            return Err(Error::BadShape);
        }
        let n_tables = rd32(bytes, 40) as usize;
        let tables_len = u64::from(rd32(bytes, 44));
        let image_len = rd64(bytes, 48);
        if image_len != have {
            return Err(Error::PayloadLength { stored: image_len, actual: have });
        }
        if n_tables > MAX_TABLES || tables_len % 16 != 0 {
            return Err(Error::BadOption(
                "device image: more than 16 tables, or a table area not a multiple of 16 bytes",
            ));
        }
        let index_at = IMAGE_HEADER_BYTES as u64 + tables_len;
        let records_at = num_tiles
            .checked_mul(IMAGE_ENTRY_BYTES as u64)
            .and_then(|i| i.checked_add(index_at))
            .ok_or(Error::TooLarge)?;
        if records_at > have {
            return Err(Error::Truncated { needed: records_at, have });
        }
        if header_checksum(&bytes[..records_at as usize]) != rd64(bytes, 56) {
            return Err(Error::HeaderChecksum);
        }
        let index_at = index_at as usize;
        // tables, then zero padding to the end of the area
        let mut tables = [0usize; MAX_TABLES];
        let mut at = IMAGE_HEADER_BYTES;
        for (t, slot) in tables.iter_mut().enumerate().take(n_tables) {
            let len = validate(&bytes[at..index_at], scale_bits).ok_or(Error::BadTable { plane: 0, table: t as u8 })?;
            *slot = at;
            at += len;
        }
        if bytes[at..index_at].iter().any(|&b| b != 0) {
            return Err(Error::BadTable { plane: 0, table: n_tables as u8 });
        }
        let img = Image {
            bytes,
            version,
            elem,
            scale_bits,
            tile_rows,
            tile_cols,
            rows,
            cols,
            num_tiles,
            n_tables,
            tables,
            index_at,
        };
        // records: contiguous, in order, each of the length its entry implies
        let mut expect = records_at;
        for t in 0..num_tiles {
            let (off, mode) = img.entry(t).ok_or(Error::BadIndex { tile: t })?;
            if off != expect {
                return Err(Error::BadIndex { tile: t });
            }
            expect = expect.checked_add(record_len(mode, &img.extent(t))).ok_or(Error::BadIndex { tile: t })?;
        }
        if expect != have {
            return Err(Error::BadIndex { tile: num_tiles.saturating_sub(1) });
        }
        Ok(img)
    }

    /// Offset and plane-0 mode of tile `t`'s record (None: invalid entry).
    fn entry(&self, t: u64) -> Option<(u64, TileMode)> {
        let at = self.index_at + t as usize * IMAGE_ENTRY_BYTES;
        let mode = parse_entry(rd32(self.bytes, at + 8), rd32(self.bytes, at + 12), self.n_tables)?;
        Some((rd64(self.bytes, at), mode))
    }

    fn extent(&self, t: u64) -> TileExtent {
        let gc = self.cols.div_ceil(u64::from(self.tile_cols));
        let (row0, col0) = ((t / gc) * u64::from(self.tile_rows), (t % gc) * u64::from(self.tile_cols));
        TileExtent {
            row0,
            col0,
            rows: (self.rows - row0).min(u64::from(self.tile_rows)) as u32,
            cols: (self.cols - col0).min(u64::from(self.tile_cols)) as u32,
        }
    }

    /// Format version: [`IMAGE_VERSION`] (one symbol per unit) or [`IMAGE_VERSION_PAIRS`].
    pub fn version(&self) -> u16 {
        self.version
    }
    /// Element type (BF16 or F16).
    pub fn elem_type(&self) -> ElemType {
        self.elem
    }
    /// Rows and columns of the matrix view.
    pub fn matrix(&self) -> (u64, u64) {
        (self.rows, self.cols)
    }
    /// Tile rows and columns.
    pub fn tile_shape(&self) -> (u32, u32) {
        (self.tile_rows, self.tile_cols)
    }
    /// Number of tiles.
    pub fn num_tiles(&self) -> u64 {
        self.num_tiles
    }
    /// Number of frequency tables (pair tables in version 2).
    pub fn num_tables(&self) -> usize {
        self.n_tables
    }
    /// Scale bits of the tables (frequencies sum to `2^scale_bits`; 8..=12 in version 1, 8..=13
    /// in version 2).
    pub fn scale_bits(&self) -> u8 {
        self.scale_bits
    }
    /// Byte offset of stored table `k` (`k < num_tables`), from the image's first byte: a
    /// frame table (section 4.2) in version 1, a pair table (section 11.1) in version 2.
    pub fn table_offset(&self, k: usize) -> Option<usize> {
        (k < self.n_tables).then(|| self.tables[k])
    }
    /// Byte offset of the tile index (the end of the table area).
    pub fn index_offset(&self) -> usize {
        self.index_at
    }
    /// Bytes of the decoded tensor.
    pub fn decoded_len(&self) -> usize {
        (self.rows * self.cols * 2) as usize
    }
    /// Total bytes of the image.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }
    /// Whether the image holds no bytes (never true for a parsed image).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Position, size and plane-0 mode of tile `t`.
    pub fn tile(&self, t: u64) -> Result<(TileExtent, TileMode), Error> {
        if t >= self.num_tiles {
            return Err(Error::TileOutOfRange { tile: t, tiles: self.num_tiles });
        }
        let (_, mode) = self.entry(t).expect("index validated by Image::parse");
        Ok((self.extent(t), mode))
    }

    /// Decode the whole tensor into `out` (exactly [`Self::decoded_len`] bytes, row-major).
    pub fn decode_into(&self, out: &mut [u8]) -> Result<(), Error> {
        let mut table = DecodeTable::new();
        self.decode_into_with(out, &mut table)
    }

    /// [`Self::decode_into`] with a caller-provided table (16 KiB; for small stacks). Either
    /// version decodes with it: a version-2 image keeps there its pair table's cumulative
    /// frequencies.
    pub fn decode_into_with(&self, out: &mut [u8], table: &mut DecodeTable) -> Result<(), Error> {
        if out.len() != self.decoded_len() {
            return Err(Error::BufferSize { expected: self.decoded_len() as u64, actual: out.len() as u64 });
        }
        for t in 0..self.num_tiles {
            self.decode_tile_into_tensor(t, out, table)?;
        }
        Ok(())
    }

    /// Decode tile `t` into its place in `out`, the whole tensor (row-major,
    /// [`Self::decoded_len`] bytes). Other tiles' bytes are left as they are.
    pub fn decode_tile_into_tensor(&self, t: u64, out: &mut [u8], table: &mut DecodeTable) -> Result<(), Error> {
        let (e, mode) = self.tile(t)?;
        if out.len() != self.decoded_len() {
            return Err(Error::BufferSize { expected: self.decoded_len() as u64, actual: out.len() as u64 });
        }
        let (off, _) = self.entry(t).expect("index validated by Image::parse");
        let rec = &self.bytes[off as usize..off as usize + record_len(mode, &e) as usize];
        let b = raw_block_len(&e);
        let g = chunk_columns(e.cols);
        let (r, c) = (e.rows as usize, e.cols as usize);
        let plane1 = &rec[rec.len() - b..];
        let (elem, version) = (self.elem, self.version);
        let row_bytes = self.cols as usize * 2;
        // padding units (columns >= c) are dropped
        let mut put = |j: usize, col: usize, a: u8| {
            if col < c {
                let u = unit(elem, version, a, plane1[raw_block_at(g, j, col)]);
                let at = (e.row0 as usize + j) * row_bytes + (e.col0 as usize + col) * 2;
                out[at..at + 2].copy_from_slice(&u.to_le_bytes());
            }
        };
        match mode {
            TileMode::Raw => {
                for j in 0..r {
                    for col in 0..c {
                        put(j, col, rec[raw_block_at(g, j, col)]);
                    }
                }
            }
            TileMode::Const { symbol } => {
                for j in 0..r {
                    for col in 0..c {
                        put(j, col, symbol);
                    }
                }
            }
            TileMode::Ans { table: tid, words } => {
                let stored = &self.bytes[self.tables[tid as usize]..self.index_at];
                let (sb, mask) = (u32::from(self.scale_bits), (1u32 << self.scale_bits) - 1);
                let lanes = AnsRecord { t, rec, words, plane1_len: b, rows: r, chunk_cols: g };
                if version == IMAGE_VERSION {
                    table.fill(stored, self.scale_bits);
                    let lut = table.entries();
                    lanes.run(|lane, j, col0| {
                        for col in col0..col0 + CHUNK {
                            let en = lut[(lane.x & mask) as usize];
                            lane.x = ((en >> 20) + 1) * (lane.x >> sb) + ((en >> 8) & 0xFFF);
                            lane.renormalise()?;
                            put(j, col, en as u8);
                        }
                        Ok(())
                    })?;
                } else {
                    let n = table.fill_pairs(stored);
                    let cums = &*table;
                    lanes.run(|lane, j, col0| {
                        for col in (col0..col0 + CHUNK).step_by(2) {
                            let slot = lane.x & mask;
                            let (i, cum) = cums.find_pair(n, slot);
                            let (key, freq) = table::pair_entry(stored, i);
                            lane.x = freq * (lane.x >> sb) + slot - cum;
                            lane.renormalise()?;
                            put(j, col, (key >> 8) as u8);
                            put(j, col + 1, key as u8);
                        }
                        Ok(())
                    })?;
                }
            }
        }
        Ok(())
    }
}

/// One lane of an ANS record while it decodes: its state and its own words.
struct Lane<'r> {
    x: u32,
    words: &'r [u8],
    pos: usize,
}

impl Lane<'_> {
    /// Section 6's renormalisation, taking the lane's next word.
    #[inline]
    fn renormalise(&mut self) -> Result<(), Corruption> {
        if self.x < RANS_L {
            let w = self.words.get(2 * self.pos..2 * self.pos + 2).ok_or(Corruption::WordsExhausted)?;
            self.x = self.x << 16 | u32::from(u16::from_le_bytes([w[0], w[1]]));
            self.pos += 1;
        }
        Ok(())
    }
}

/// The ANS record of tile `t` (section 11), whatever the symbols its lanes decode.
struct AnsRecord<'r> {
    t: u64,
    rec: &'r [u8],
    words: u32,
    plane1_len: usize,
    rows: usize,
    chunk_cols: usize,
}

impl AnsRecord<'_> {
    /// Run the 32 lanes, `chunk` decoding each of a lane's chunks in order (the lane, the tile
    /// row, the chunk's first column), with every check of section 11: the word area's padding
    /// and the lane runs first (the error names the lane at fault), then per lane its initial
    /// state, its word count and its final state. Errors name the tile.
    fn run(&self, mut chunk: impl FnMut(&mut Lane<'_>, usize, usize) -> Result<(), Corruption>) -> Result<(), Error> {
        let (rec, w) = (self.rec, self.words as usize);
        let corrupt = |kind| Error::Corrupt { tile: self.t, plane: 0, kind };
        if rec[ANS_HEAD_BYTES + 2 * w..rec.len() - self.plane1_len].iter().any(|&x| x != 0) {
            return Err(corrupt(Corruption::Padding));
        }
        let start = |l: usize| if l == LANES { w } else { rd32(rec, 4 * LANES + 4 * l) as usize };
        for l in 0..LANES {
            if (l == 0 && start(0) != 0) || start(l) > start(l + 1) || start(l + 1) > w {
                return Err(corrupt(Corruption::LaneStart { lane: l as u8 }));
            }
        }
        for l in 0..LANES {
            let (first, end) = (start(l), start(l + 1));
            let words = &rec[ANS_HEAD_BYTES + 2 * first..ANS_HEAD_BYTES + 2 * end];
            let mut lane = Lane { x: rd32(rec, 4 * l), words, pos: 0 };
            if lane.x < RANS_L {
                return Err(corrupt(Corruption::InitialState { lane: l as u8 }));
            }
            for (j, col0) in lane_chunks(l, self.rows, self.chunk_cols) {
                chunk(&mut lane, j, col0).map_err(corrupt)?;
            }
            if lane.pos != end - first {
                return Err(corrupt(Corruption::WordsLeft { stored: (end - first) as u32, consumed: lane.pos as u32 }));
            }
            if lane.x != RANS_L {
                return Err(corrupt(Corruption::FinalState { lane: l as u8 }));
            }
        }
        Ok(())
    }
}

#[cfg(feature = "alloc")]
pub use build::*;

#[cfg(feature = "alloc")]
mod build {
    use super::*;
    use crate::ans::{enc_sym, enc_table, encode_one, EncSym};
    use crate::Frame;
    use alloc::vec;
    use alloc::vec::Vec;

    /// One tile's image record, made by [`build_tile`] (version 1) or [`build_tile_pairs`]
    /// (version 2) and placed by [`assemble`] or [`assemble_pairs`].
    #[derive(Clone, Debug)]
    pub struct ImageTile {
        version: u16,
        mode: TileMode,
        bytes: Vec<u8>,
    }

    fn descriptor(mode: TileMode) -> (u32, u32) {
        match mode {
            TileMode::Raw => (0, 0),
            TileMode::Ans { table, words } => (1 | u32::from(table) << 2, words),
            TileMode::Const { symbol } => (2 | u32::from(symbol) << 8, 0),
        }
    }

    fn check_frame(frame: &Frame) -> Result<(), Error> {
        match frame.elem_type() {
            ElemType::Bf16 | ElemType::F16 => Ok(()),
            _ => Err(Error::BadOption("device images hold BF16 or F16 tensors only")),
        }
    }

    /// The frame's plane-0 tables (none when plane 0 is not coded).
    fn frame_tables(frame: &Frame) -> usize {
        if frame.plane_coded(0) {
            frame.tables_in_plane(0)
        } else {
            0
        }
    }

    /// The symbol padding units take: the table's most frequent (the lowest of equals).
    fn most_frequent(freqs: &[u32; 256]) -> u8 {
        (0..256).max_by_key(|&s| (freqs[s], core::cmp::Reverse(s))).unwrap_or(0) as u8
    }

    /// [`most_frequent`] of frame table `tid`.
    fn pad_symbol(frame: &Frame, tid: u8) -> u8 {
        most_frequent(&table::frequencies(frame.table_bytes(0, tid)))
    }

    /// A tile's geometry in the image and its plane-0 symbols as the frame decodes them (tile
    /// order: column-major, unit `(j, col)` is symbol `col * rows + j`).
    struct Plane0 {
        e: TileExtent,
        rows: usize,
        cols: usize,
        chunk_cols: usize,
        p0: Vec<u8>,
    }

    impl Plane0 {
        fn decode(frame: &Frame, t: u64) -> Result<Plane0, Error> {
            let e = frame.tile(t)?;
            let mut p0 = vec![0u8; e.symbols()];
            frame.decode_tile_plane_into(t, 0, &mut p0)?;
            Ok(Plane0 { e, rows: e.rows as usize, cols: e.cols as usize, chunk_cols: chunk_columns(e.cols), p0 })
        }

        /// Units per lane (section 11): `8 r G`.
        fn lane_units(&self) -> usize {
            CHUNK * self.rows * self.chunk_cols
        }

        /// Plane bytes in tile order laid out as the raw block (padding units 0).
        fn block(&self, p: &[u8]) -> Vec<u8> {
            let mut out = vec![0u8; raw_block_len(&self.e)];
            for col in 0..self.cols {
                for j in 0..self.rows {
                    out[raw_block_at(self.chunk_cols, j, col)] = p[col * self.rows + j];
                }
            }
            out
        }

        /// Lane `l`'s plane-0 symbols in decoding order, padding units taking `pad`.
        fn lane_symbols(&self, l: usize, pad: u8) -> impl Iterator<Item = u8> + '_ {
            lane_chunks(l, self.rows, self.chunk_cols).flat_map(move |(j, col0)| {
                (col0..col0 + CHUNK).map(move |col| if col < self.cols { self.p0[col * self.rows + j] } else { pad })
            })
        }

        /// Lane `l`'s pairs of units (section 11.1), as keys `a << 8 | b`.
        fn lane_pairs(&self, l: usize, pad: u8) -> impl Iterator<Item = u16> + '_ {
            let mut units = self.lane_symbols(l, pad);
            core::iter::from_fn(move || Some(u16::from(units.next()?) << 8 | u16::from(units.next()?)))
        }
    }

    /// The record of tile `t` of `frame` in image version `version`: both planes decoded (and
    /// checked) with the CPU decoder, plane 1 in the raw block layout; `ans` codes plane 0 of an
    /// ANS tile (its frame table given), returning the image's table for it, the word count and
    /// the record.
    fn tile_record(
        frame: &Frame,
        t: u64,
        version: u16,
        ans: impl FnOnce(&Plane0, u8, &[u8]) -> Result<(u8, u32, Vec<u8>), Error>,
    ) -> Result<ImageTile, Error> {
        check_frame(frame)?;
        let p = Plane0::decode(frame, t)?;
        let mut p1 = vec![0u8; p.e.symbols()];
        frame.decode_tile_plane_into(t, 1, &mut p1)?;
        p1.iter_mut().for_each(|r| *r = plane1_byte(frame.elem_type(), version, *r));
        let block1 = p.block(&p1);
        let (mode, bytes) = match frame.tile_mode(t, 0)? {
            mode @ TileMode::Raw => (mode, [p.block(&p.p0), block1].concat()),
            mode @ TileMode::Const { .. } => (mode, block1),
            TileMode::Ans { table: tid, .. } => {
                let (table, words, rec) = ans(&p, tid, &block1)?;
                (TileMode::Ans { table, words }, rec)
            }
        };
        debug_assert_eq!(bytes.len() as u64, record_len(mode, &p.e));
        Ok(ImageTile { version, mode, bytes })
    }

    /// An ANS record: each lane's `steps` symbols (`codes(l, ..)` appends them in decoding
    /// order, as indices into `enc`) encoded from `RANS_L`, then the states, lane starts, words
    /// (zero-padded to 16 bytes) and `block1`. Returns the word count and the record.
    fn ans_record(
        enc: &[EncSym],
        scale_bits: u8,
        steps: usize,
        mut codes: impl FnMut(usize, &mut Vec<u16>) -> Result<(), Error>,
        block1: &[u8],
    ) -> Result<(u32, Vec<u8>), Error> {
        let shift = 32 + u32::from(scale_bits);
        let mut states = [0u32; LANES];
        let mut starts = [0u32; LANES];
        let mut words: Vec<u8> = Vec::new();
        // at most one word per symbol, and `encode_one` writes below `end >= 2`
        let mut lane_out = vec![0u8; 2 * steps + 2];
        let mut lane = Vec::with_capacity(steps);
        for (l, (state, start)) in states.iter_mut().zip(starts.iter_mut()).enumerate() {
            lane.clear();
            codes(l, &mut lane)?;
            debug_assert_eq!(lane.len(), steps);
            let mut x = RANS_L;
            let mut end = lane_out.len();
            for &s in lane.iter().rev() {
                encode_one(&mut x, &enc[s as usize], shift, &mut lane_out, &mut end);
            }
            *state = x;
            *start = (words.len() / 2) as u32;
            words.extend_from_slice(&lane_out[end..]);
        }
        let w = (words.len() / 2) as u32;
        let mut rec = Vec::with_capacity(ANS_HEAD_BYTES + words.len() + 16 + block1.len());
        states.iter().chain(starts.iter()).for_each(|v| rec.extend_from_slice(&v.to_le_bytes()));
        rec.extend_from_slice(&words);
        rec.resize(ANS_HEAD_BYTES + round16(words.len() as u64) as usize, 0);
        rec.extend_from_slice(block1);
        Ok((w, rec))
    }

    /// The version-1 record of tile `t` of `frame`: its two planes decoded (and checked) with the
    /// CPU decoder, plane 0 re-encoded lane by lane in the image's order with the frame's table.
    pub fn build_tile(frame: &Frame, t: u64) -> Result<ImageTile, Error> {
        tile_record(frame, t, IMAGE_VERSION, |p, tid, block1| {
            let freqs = table::frequencies(frame.table_bytes(0, tid));
            let enc = enc_table(&freqs, frame.scale_bits());
            let pad = most_frequent(&freqs);
            let codes = |l, out: &mut Vec<u16>| {
                out.extend(p.lane_symbols(l, pad).map(u16::from));
                Ok(())
            };
            let (words, rec) = ans_record(&enc, frame.scale_bits(), p.lane_units(), codes, block1)?;
            Ok((tid, words, rec))
        })
    }

    /// The header, tables and index of an image of `version`, then the records.
    fn write_image(
        frame: &Frame,
        version: u16,
        scale_bits: u8,
        (n_tables, mut tables): (usize, Vec<u8>),
        tiles: &[ImageTile],
    ) -> Result<Vec<u8>, Error> {
        check_frame(frame)?;
        if tiles.len() as u64 != frame.num_tiles() {
            return Err(Error::BadOption("one image record per tile of the frame"));
        }
        if tiles.iter().any(|t| t.version != version) {
            return Err(Error::BadOption("image records of the other image version"));
        }
        tables.resize(round16(tables.len() as u64) as usize, 0);
        let n = frame.num_tiles() as usize;
        let records_at = IMAGE_HEADER_BYTES + tables.len() + IMAGE_ENTRY_BYTES * n;
        let total = records_at + tiles.iter().map(|t| t.bytes.len()).sum::<usize>();
        let mut out = Vec::with_capacity(total);
        let (tr, tc) = frame.tile_shape();
        out.extend_from_slice(&IMAGE_MAGIC);
        out.extend_from_slice(&version.to_le_bytes());
        out.extend_from_slice(&[frame.elem_type().code(), scale_bits]);
        out.extend_from_slice(&tr.to_le_bytes());
        out.extend_from_slice(&tc.to_le_bytes());
        for v in [frame.rows(), frame.cols(), frame.num_tiles()] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&(n_tables as u32).to_le_bytes());
        out.extend_from_slice(&(tables.len() as u32).to_le_bytes());
        out.extend_from_slice(&(total as u64).to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes()); // the checksum, below
        out.extend_from_slice(&tables);
        let mut at = records_at as u64;
        for tile in tiles {
            let (d, w) = descriptor(tile.mode);
            out.extend_from_slice(&at.to_le_bytes());
            out.extend_from_slice(&d.to_le_bytes());
            out.extend_from_slice(&w.to_le_bytes());
            at += tile.bytes.len() as u64;
        }
        let sum = header_checksum(&out);
        out[56..64].copy_from_slice(&sum.to_le_bytes());
        for tile in tiles {
            out.extend_from_slice(&tile.bytes);
        }
        debug_assert_eq!(out.len(), total);
        Ok(out)
    }

    /// Place the version-1 records of every tile of `frame` (in tile order) after the header,
    /// tables and index.
    pub fn assemble(frame: &Frame, tiles: &[ImageTile]) -> Result<Vec<u8>, Error> {
        check_frame(frame)?;
        let mut tables = Vec::new();
        for t in 0..frame_tables(frame) as u8 {
            let bytes = frame.table_bytes(0, t);
            let len = table::validate(bytes, frame.scale_bits()).expect("validated by Frame::parse");
            tables.extend_from_slice(&bytes[..len]);
        }
        write_image(frame, IMAGE_VERSION, frame.scale_bits(), (frame_tables(frame), tables), tiles)
    }

    /// The version-1 device image of `frame` (BF16 or F16), tile by tile on this thread. The
    /// frame is decoded and checked on the way: a corrupt tile is reported as the decoder
    /// reports it.
    pub fn build(frame: &Frame) -> Result<Vec<u8>, Error> {
        let tiles = (0..frame.num_tiles()).map(|t| build_tile(frame, t)).collect::<Result<Vec<_>, _>>()?;
        assemble(frame, &tiles)
    }

    /// Distinct pairs a pair table holds at most: `2^13`, every entry at least 1.
    const MAX_PAIRS: usize = 1 << PAIR_SCALE_BITS;

    /// The error of a pair table whose tiles hold more than [`MAX_PAIRS`] distinct pairs, one
    /// message per frame table (per-table grouping) so that it names the table.
    const TOO_MANY_PAIRS: [&str; MAX_TABLES] = {
        macro_rules! each {
            ($($k:literal)*) => {
                [$(concat!(
                    "version-2 image: the tiles of frame table ", $k,
                    " hold more than 8192 distinct symbol pairs (build a version-1 image)"
                )),*]
            };
        }
        each!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15)
    };
    /// The same for the one table of all tiles ([`PairGrouping::OneTable`]).
    const TOO_MANY_PAIRS_ONE: &str =
        "version-2 image: the frame's tiles hold more than 8192 distinct symbol pairs (build a version-1 image)";

    /// Which tiles share a pair table (section 11.1 leaves it to the encoder).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum PairGrouping {
        /// One pair table for every ANS tile (the default): one 64 KiB GPU decode table, which a
        /// block stages in shared memory beside 32 warps' word rings (four would not fit).
        OneTable,
        /// One pair table per plane-0 table of the frame, in its numbering (a smaller image when
        /// the frame's tables differ much; a GPU then reads more than two from L1).
        PerFrameTable,
    }

    /// Pair tables or counts that do not belong to the frame they are used with.
    const OTHER_FRAME: Error = Error::BadOption("version-2 image: pair tables or counts of another frame");

    /// Counts of the pairs of a frame's ANS tiles, per plane-0 table (section 11.1, informative):
    /// [`Self::add_tile`] every tile (in any order, possibly over several threads, then
    /// [`Self::merge`]d), then [`PairTables::new`].
    #[derive(Clone, Default)]
    pub struct PairCounts {
        /// Per frame table, 65536 counts by key (empty until a tile of that table is added).
        tables: Vec<Vec<u64>>,
    }

    impl core::fmt::Debug for PairCounts {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            let distinct: Vec<usize> = self.tables.iter().map(|c| c.iter().filter(|&&n| n > 0).count()).collect();
            f.debug_struct("PairCounts").field("distinct_pairs", &distinct).finish()
        }
    }

    impl PairCounts {
        /// No counts yet.
        pub fn new() -> Self {
            Self::default()
        }

        /// The counts of frame table `tid`.
        fn table(&mut self, tid: u8) -> &mut Vec<u64> {
            let k = tid as usize;
            if self.tables.len() <= k {
                self.tables.resize(k + 1, Vec::new());
            }
            if self.tables[k].is_empty() {
                self.tables[k] = vec![0; 1 << 16];
            }
            &mut self.tables[k]
        }

        /// Count the pairs of tile `t` of `frame` if its plane 0 is ANS-coded (its plane 0 is
        /// decoded and checked): every lane's units two by two in the image's order, padding
        /// units taking the table's most frequent symbol.
        pub fn add_tile(&mut self, frame: &Frame, t: u64) -> Result<(), Error> {
            check_frame(frame)?;
            let TileMode::Ans { table: tid, .. } = frame.tile_mode(t, 0)? else { return Ok(()) };
            let p = Plane0::decode(frame, t)?;
            let pad = pad_symbol(frame, tid);
            let counts = self.table(tid);
            for l in 0..LANES {
                p.lane_pairs(l, pad).for_each(|key| counts[key as usize] += 1);
            }
            Ok(())
        }

        /// The counts of every tile of `frame`, on this thread.
        pub fn from_frame(frame: &Frame) -> Result<PairCounts, Error> {
            let mut counts = PairCounts::new();
            for t in 0..frame.num_tiles() {
                counts.add_tile(frame, t)?;
            }
            Ok(counts)
        }

        /// Add the counts of `other` (of other tiles of the same frame).
        pub fn merge(&mut self, other: &PairCounts) {
            for (k, c) in other.tables.iter().enumerate().filter(|(_, c)| !c.is_empty()) {
                let mine = self.table(k as u8);
                mine.iter_mut().zip(c).for_each(|(a, b)| *a += b);
            }
        }
    }

    /// The pair tables of a frame's version-2 image (one, or one per plane-0 table of the frame:
    /// [`PairGrouping`]) and what the encoder needs of them.
    #[derive(Clone)]
    pub struct PairTables {
        tables: Vec<PairTable>,
        /// Per plane-0 table of the frame: its pair table and the symbol of its padding units.
        of_frame_table: Vec<(u8, u8)>,
    }

    #[derive(Clone)]
    struct PairTable {
        /// The table's keys (increasing) and frequencies (summing to `2^13`).
        keys: Vec<u16>,
        freqs: Vec<u32>,
        /// Encoder entry of each key, and the entry number of every key ([`ABSENT`] if none).
        enc: Vec<EncSym>,
        index: Vec<u16>,
    }

    const ABSENT: u16 = u16::MAX;

    impl PairTable {
        /// The table of pair counts `c` (65536 by key, or empty): normalised to `2^13`, every
        /// pair seen at least 1; no pair seen gives the padding pair alone.
        fn quantised(c: &[u64], pad: u8, too_many: &'static str) -> Result<PairTable, Error> {
            let (mut keys, mut n): (Vec<u16>, Vec<u64>) =
                c.iter().enumerate().filter(|(_, &n)| n > 0).map(|(key, &n)| (key as u16, n)).unzip();
            if keys.is_empty() {
                (keys, n) = (vec![u16::from(pad) << 8 | u16::from(pad)], vec![1]);
            }
            if keys.len() > MAX_PAIRS {
                return Err(Error::BadOption(too_many));
            }
            let mut freqs = vec![0u32; keys.len()];
            table::quantize_into(&n, &vec![true; keys.len()], PAIR_SCALE_BITS, &mut freqs);
            let mut index = vec![ABSENT; 1 << 16];
            let mut enc = Vec::with_capacity(keys.len());
            let mut cum = 0;
            for (i, (&key, &f)) in keys.iter().zip(&freqs).enumerate() {
                index[key as usize] = i as u16;
                enc.push(enc_sym(f, cum, PAIR_SCALE_BITS));
                cum += f;
            }
            Ok(PairTable { keys, freqs, enc, index })
        }
    }

    impl core::fmt::Debug for PairTables {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            let entries: Vec<usize> = self.tables.iter().map(|t| t.keys.len()).collect();
            f.debug_struct("PairTables").field("entries", &entries).finish()
        }
    }

    impl PairTables {
        /// Normalise the pair counts of `frame`'s tiles to one table of `2^13`
        /// ([`PAIR_SCALE_BITS`], [`PairGrouping::OneTable`]), every pair seen getting at least
        /// 1, at the least coded size for these counts. More than 8192 distinct pairs is an
        /// error (`Error::BadOption`): such a frame has no version-2 image.
        pub fn new(frame: &Frame, counts: &PairCounts) -> Result<PairTables, Error> {
            Self::grouped(frame, counts, PairGrouping::OneTable)
        }

        /// [`Self::new`] with the tables grouped as `grouping` says; with
        /// [`PairGrouping::PerFrameTable`] the error names the frame table at fault. A table no
        /// ANS tile uses holds the padding pair alone.
        pub fn grouped(frame: &Frame, counts: &PairCounts, grouping: PairGrouping) -> Result<PairTables, Error> {
            check_frame(frame)?;
            let k = frame_tables(frame);
            if counts.tables.len() > k {
                return Err(OTHER_FRAME);
            }
            let pads: Vec<u8> = (0..k).map(|tid| pad_symbol(frame, tid as u8)).collect();
            let counts_of = |tid: usize| counts.tables.get(tid).map_or(&[][..], |c| &c[..]);
            let (tables, of_frame_table) = match grouping {
                PairGrouping::PerFrameTable => (
                    (0..k)
                        .map(|tid| PairTable::quantised(counts_of(tid), pads[tid], TOO_MANY_PAIRS[tid]))
                        .collect::<Result<Vec<_>, _>>()?,
                    (0..k).map(|tid| (tid as u8, pads[tid])).collect(),
                ),
                PairGrouping::OneTable if k == 0 => (Vec::new(), Vec::new()),
                PairGrouping::OneTable => {
                    let mut all = vec![0u64; 1 << 16];
                    for tid in 0..k {
                        all.iter_mut().zip(counts_of(tid)).for_each(|(a, b)| *a += b);
                    }
                    let one = PairTable::quantised(&all, pads[0], TOO_MANY_PAIRS_ONE)?;
                    (vec![one], pads.iter().map(|&p| (0, p)).collect())
                }
            };
            Ok(PairTables { tables, of_frame_table })
        }

        /// [`Self::new`] with the counts of every tile of `frame`, on this thread.
        pub fn from_frame(frame: &Frame) -> Result<PairTables, Error> {
            PairTables::new(frame, &PairCounts::from_frame(frame)?)
        }

        /// Number of pair tables (1, or the frame's plane-0 tables; 0 when plane 0 is not coded).
        pub fn len(&self) -> usize {
            self.tables.len()
        }

        /// Whether there are none (plane 0 of the frame is not coded).
        pub fn is_empty(&self) -> bool {
            self.tables.is_empty()
        }

        /// Whether these are tables for `frame` (made for as many plane-0 tables).
        fn fit(&self, frame: &Frame) -> Result<(), Error> {
            if self.of_frame_table.len() == frame_tables(frame) {
                Ok(())
            } else {
                Err(OTHER_FRAME)
            }
        }

        /// The stored tables (section 11.1), one after the other.
        fn stored(&self) -> Vec<u8> {
            let mut out = Vec::new();
            for t in &self.tables {
                out.extend_from_slice(&(t.keys.len() as u32).to_le_bytes());
                for (&key, &f) in t.keys.iter().zip(&t.freqs) {
                    out.extend_from_slice(&key.to_le_bytes());
                    out.extend_from_slice(&((f - 1) as u16).to_le_bytes());
                }
            }
            out
        }
    }

    /// The version-2 record of tile `t` of `frame` with `tables` (made from the same frame):
    /// its two planes decoded (and checked) with the CPU decoder, plane 0 re-encoded lane by
    /// lane as pairs of units, plane 1 with the BF16 sign in bit 7 (section 11.1).
    pub fn build_tile_pairs(frame: &Frame, t: u64, tables: &PairTables) -> Result<ImageTile, Error> {
        tables.fit(frame)?;
        tile_record(frame, t, IMAGE_VERSION_PAIRS, |p, tid, block1| {
            let (table, pad) = tables.of_frame_table[tid as usize];
            let pt = &tables.tables[table as usize];
            let codes = |l, out: &mut Vec<u16>| {
                for key in p.lane_pairs(l, pad) {
                    match pt.index[key as usize] {
                        ABSENT => return Err(OTHER_FRAME),
                        i => out.push(i),
                    }
                }
                Ok(())
            };
            let (words, rec) = ans_record(&pt.enc, PAIR_SCALE_BITS, p.lane_units() / 2, codes, block1)?;
            Ok((table, words, rec))
        })
    }

    /// Place the version-2 records of every tile of `frame` (in tile order) after the header,
    /// the pair tables and the index.
    pub fn assemble_pairs(frame: &Frame, tables: &PairTables, tiles: &[ImageTile]) -> Result<Vec<u8>, Error> {
        check_frame(frame)?;
        tables.fit(frame)?;
        write_image(frame, IMAGE_VERSION_PAIRS, PAIR_SCALE_BITS, (tables.len(), tables.stored()), tiles)
    }

    /// The version-2 device image ("pair image", `docs/FORMAT.md` section 11.1) of `frame`
    /// (BF16 or F16), on this thread: one pair table from every ANS tile, then every tile. The
    /// frame is decoded and checked on the way. `Error::BadOption` when the tiles hold more than
    /// 8192 distinct pairs (then use [`build`]).
    pub fn build_pairs(frame: &Frame) -> Result<Vec<u8>, Error> {
        build_pairs_grouped(frame, PairGrouping::OneTable)
    }

    /// [`build_pairs`] with the pair tables grouped as `grouping` says.
    pub fn build_pairs_grouped(frame: &Frame, grouping: PairGrouping) -> Result<Vec<u8>, Error> {
        let tables = PairTables::grouped(frame, &PairCounts::from_frame(frame)?, grouping)?;
        let tiles =
            (0..frame.num_tiles()).map(|t| build_tile_pairs(frame, t, &tables)).collect::<Result<Vec<_>, _>>()?;
        assemble_pairs(frame, &tables, &tiles)
    }
}
