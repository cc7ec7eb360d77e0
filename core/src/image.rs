//! The device image (`docs/FORMAT.md` section 11): a GPU-facing layout of a BF16 or F16 frame with
//! one word stream per lane and units assigned to lanes in row-major chunks of 8, so that a warp
//! decodes a tile row by row and stores whole lines straight from registers.
//!
//! [`Image::parse`] validates the header, tables and index (everything the layout depends on);
//! [`Image::decode_into`] is the scalar reference decoder (no allocation), checking every tile as
//! the GPU decoder does; [`build`] makes an image from a frame (feature `alloc`), and
//! [`build_tile`] + [`assemble`] do the same tile by tile for callers that build in parallel.

use crate::table::{self, DecodeTable};
use crate::{Corruption, ElemType, Error, TileExtent, TileMode, LANES, MAX_TABLES, MAX_TILE_SYMBOLS, RANS_L};

/// The four magic bytes that open every device image.
pub const IMAGE_MAGIC: [u8; 4] = [0x89, b'T', b'A', b'I'];
/// Device image version written and accepted by this crate.
pub const IMAGE_VERSION: u16 = 1;
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
        if version != IMAGE_VERSION {
            return Err(Error::UnsupportedVersion(version));
        }
        let elem = match ElemType::from_code(bytes[6]) {
            Some(e @ (ElemType::Bf16 | ElemType::F16)) => e,
            _ => return Err(Error::UnknownElemType(bytes[6])),
        };
        let scale_bits = bytes[7];
        if !crate::SCALE_BITS_RANGE.contains(&scale_bits) {
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
            let len = table::validate(&bytes[at..index_at], scale_bits)
                .ok_or(Error::BadTable { plane: 0, table: t as u8 })?;
            *slot = at;
            at += len;
        }
        if bytes[at..index_at].iter().any(|&b| b != 0) {
            return Err(Error::BadTable { plane: 0, table: n_tables as u8 });
        }
        let img =
            Image { bytes, elem, scale_bits, tile_rows, tile_cols, rows, cols, num_tiles, n_tables, tables, index_at };
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
    /// Number of frequency tables.
    pub fn num_tables(&self) -> usize {
        self.n_tables
    }
    /// Scale bits of the tables (frequencies sum to `2^scale_bits`).
    pub fn scale_bits(&self) -> u8 {
        self.scale_bits
    }
    /// Byte offset of stored table `k` (`k < num_tables`), from the image's first byte.
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

    /// [`Self::decode_into`] with a caller-provided lookup table (16 KiB; for small stacks).
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
        let rotate = self.elem == ElemType::Bf16;
        let row_bytes = self.cols as usize * 2;
        let mut put = |j: usize, col: usize, p0: u8| {
            let v = u16::from_be_bytes([p0, plane1[raw_block_at(g, j, col)]]);
            let u = if rotate { v.rotate_right(1) } else { v };
            let at = (e.row0 as usize + j) * row_bytes + (e.col0 as usize + col) * 2;
            out[at..at + 2].copy_from_slice(&u.to_le_bytes());
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
                let corrupt = |kind| Error::Corrupt { tile: t, plane: 0, kind };
                table.fill(&self.bytes[self.tables[tid as usize]..self.index_at], self.scale_bits);
                let w = words as usize;
                let word_at = ANS_HEAD_BYTES;
                if rec[word_at + 2 * w..rec.len() - b].iter().any(|&x| x != 0) {
                    return Err(corrupt(Corruption::Padding));
                }
                let start = |l: usize| if l == LANES { w } else { rd32(rec, 4 * LANES + 4 * l) as usize };
                let (sb, mask) = (u32::from(self.scale_bits), (1u32 << self.scale_bits) - 1);
                let lut = table.entries();
                // every lane's run before any lane decodes: the error names the lane at fault
                for l in 0..LANES {
                    if (l == 0 && start(0) != 0) || start(l) > start(l + 1) || start(l + 1) > w {
                        return Err(corrupt(Corruption::LaneStart { lane: l as u8 }));
                    }
                }
                for l in 0..LANES {
                    let (mut pos, end) = (start(l), start(l + 1));
                    let mut x = rd32(rec, 4 * l);
                    if x < RANS_L {
                        return Err(corrupt(Corruption::InitialState { lane: l as u8 }));
                    }
                    for j in 0..r {
                        for gc in 0..g {
                            for i in 0..CHUNK {
                                let en = lut[(x & mask) as usize];
                                x = ((en >> 20) + 1) * (x >> sb) + ((en >> 8) & 0xFFF);
                                if x < RANS_L {
                                    if pos == end {
                                        return Err(corrupt(Corruption::WordsExhausted));
                                    }
                                    x = x << 16 | u32::from(rd16(rec, word_at + 2 * pos));
                                    pos += 1;
                                }
                                let col = CHUNK_COLS * gc + CHUNK * l + i;
                                if col < c {
                                    put(j, col, en as u8);
                                }
                            }
                        }
                    }
                    if pos != end {
                        let (stored, consumed) = ((end - start(l)) as u32, (pos - start(l)) as u32);
                        return Err(corrupt(Corruption::WordsLeft { stored, consumed }));
                    }
                    if x != RANS_L {
                        return Err(corrupt(Corruption::FinalState { lane: l as u8 }));
                    }
                }
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
    use crate::ans::{enc_table, encode_one};
    use crate::Frame;
    use alloc::vec;
    use alloc::vec::Vec;

    /// One tile's image record, made by [`build_tile`] and placed by [`assemble`].
    #[derive(Clone, Debug)]
    pub struct ImageTile {
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

    /// The record of tile `t` of `frame`: its two planes decoded (and checked) with the CPU
    /// decoder, plane 0 re-encoded lane by lane in the image's order with the frame's table.
    pub fn build_tile(frame: &Frame, t: u64) -> Result<ImageTile, Error> {
        check_frame(frame)?;
        let e = frame.tile(t)?;
        let (r, c, n) = (e.rows as usize, e.cols as usize, e.symbols());
        let g = chunk_columns(e.cols);
        let b = raw_block_len(&e);
        let mut p0 = vec![0u8; n];
        let mut p1 = vec![0u8; n];
        frame.decode_tile_plane_into(t, 0, &mut p0)?;
        frame.decode_tile_plane_into(t, 1, &mut p1)?;
        // tile order is column-major: unit (j, col) is symbol col * r + j
        let block = |p: &[u8]| {
            let mut out = vec![0u8; b];
            for col in 0..c {
                for j in 0..r {
                    out[raw_block_at(g, j, col)] = p[col * r + j];
                }
            }
            out
        };
        let mode = frame.tile_mode(t, 0)?;
        let (mode, bytes) = match mode {
            TileMode::Raw => (mode, [block(&p0), block(&p1)].concat()),
            TileMode::Const { .. } => (mode, block(&p1)),
            TileMode::Ans { table: tid, .. } => {
                let freqs = table::frequencies(frame.table_bytes(0, tid));
                let enc = enc_table(&freqs, frame.scale_bits());
                let pad = (0..256).max_by_key(|&s| (freqs[s], core::cmp::Reverse(s))).unwrap_or(0) as u8;
                let shift = 32 + u32::from(frame.scale_bits());
                let steps = r * g * CHUNK;
                let mut states = [0u32; LANES];
                let mut starts = [0u32; LANES];
                let mut words: Vec<u8> = Vec::new();
                let mut lane_out = vec![0u8; 2 * steps + 2];
                let mut syms = vec![0u8; steps];
                for (l, (state, start)) in states.iter_mut().zip(starts.iter_mut()).enumerate() {
                    let mut k = 0;
                    for j in 0..r {
                        for gc in 0..g {
                            for i in 0..CHUNK {
                                let col = CHUNK_COLS * gc + CHUNK * l + i;
                                syms[k] = if col < c { p0[col * r + j] } else { pad };
                                k += 1;
                            }
                        }
                    }
                    let mut x = RANS_L;
                    let mut end = lane_out.len();
                    for &s in syms.iter().rev() {
                        encode_one(&mut x, &enc[s as usize], shift, &mut lane_out, &mut end);
                    }
                    *state = x;
                    *start = (words.len() / 2) as u32;
                    words.extend_from_slice(&lane_out[end..]);
                }
                let w = (words.len() / 2) as u32;
                let mut rec = Vec::with_capacity(ANS_HEAD_BYTES + words.len() + 16 + b);
                states.iter().chain(starts.iter()).for_each(|v| rec.extend_from_slice(&v.to_le_bytes()));
                rec.extend_from_slice(&words);
                rec.resize(ANS_HEAD_BYTES + round16(words.len() as u64) as usize, 0);
                rec.extend_from_slice(&block(&p1));
                (TileMode::Ans { table: tid, words: w }, rec)
            }
        };
        debug_assert_eq!(bytes.len() as u64, record_len(mode, &e));
        Ok(ImageTile { mode, bytes })
    }

    /// Place the records of every tile of `frame` (in tile order) after the header, tables and
    /// index.
    pub fn assemble(frame: &Frame, tiles: &[ImageTile]) -> Result<Vec<u8>, Error> {
        check_frame(frame)?;
        if tiles.len() as u64 != frame.num_tiles() {
            return Err(Error::BadOption("one image record per tile of the frame"));
        }
        let k = if frame.plane_coded(0) { frame.tables_in_plane(0) } else { 0 };
        let mut tables = Vec::new();
        for t in 0..k as u8 {
            let bytes = frame.table_bytes(0, t);
            let len = table::validate(bytes, frame.scale_bits()).expect("validated by Frame::parse");
            tables.extend_from_slice(&bytes[..len]);
        }
        tables.resize(round16(tables.len() as u64) as usize, 0);
        let n = frame.num_tiles() as usize;
        let records_at = IMAGE_HEADER_BYTES + tables.len() + IMAGE_ENTRY_BYTES * n;
        let total = records_at + tiles.iter().map(|t| t.bytes.len()).sum::<usize>();
        let mut out = Vec::with_capacity(total);
        let (tr, tc) = frame.tile_shape();
        out.extend_from_slice(&IMAGE_MAGIC);
        out.extend_from_slice(&IMAGE_VERSION.to_le_bytes());
        out.extend_from_slice(&[frame.elem_type().code(), frame.scale_bits()]);
        out.extend_from_slice(&tr.to_le_bytes());
        out.extend_from_slice(&tc.to_le_bytes());
        for v in [frame.rows(), frame.cols(), frame.num_tiles()] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&(k as u32).to_le_bytes());
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

    /// The device image of `frame` (BF16 or F16), tile by tile on this thread. The frame is
    /// decoded and checked on the way: a corrupt tile is reported as the decoder reports it.
    pub fn build(frame: &Frame) -> Result<Vec<u8>, Error> {
        let tiles = (0..frame.num_tiles()).map(|t| build_tile(frame, t)).collect::<Result<Vec<_>, _>>()?;
        assemble(frame, &tiles)
    }
}
