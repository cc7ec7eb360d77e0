use core::fmt;

/// What went wrong inside one tile's coded data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Corruption {
    /// An initial lane state is below the normalisation bound 2^16.
    InitialState {
        /// The lane.
        lane: u8,
    },
    /// The decoder needed more renormalisation words than the tile stores.
    WordsExhausted,
    /// The decoder finished with words left over.
    WordsLeft {
        /// Words stored.
        stored: u32,
        /// Words consumed.
        consumed: u32,
    },
    /// A lane did not end in the encoder's initial state.
    FinalState {
        /// The lane.
        lane: u8,
    },
    /// Padding bytes at the end of a section are not zero.
    Padding,
    /// A device-image lane's first word is out of order or outside the tile's words.
    LaneStart {
        /// The lane.
        lane: u8,
    },
}

/// Every way parsing, decoding or encoding can fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The input ends before the structure it describes.
    Truncated {
        /// Bytes needed.
        needed: u64,
        /// Bytes present.
        have: u64,
    },
    /// The input does not start with the tileans magic bytes.
    BadMagic,
    /// A format version this crate does not know.
    UnsupportedVersion(u16),
    /// Flag bits this crate does not know.
    UnknownFlags(u16),
    /// An element-type code this crate does not know.
    UnknownElemType(u8),
    /// Rank above [`crate::MAX_RANK`].
    BadRank(u8),
    /// Scale bits outside [`crate::SCALE_BITS_RANGE`] (in a version-2 device image: outside 8..=13).
    BadScaleBits(u8),
    /// The coded-plane mask names planes the element type does not have.
    BadPlaneMask(u8),
    /// Tile rows or columns are zero, or a tile has more than [`crate::MAX_TILE_SYMBOLS`] symbols.
    BadTileShape {
        /// Tile rows.
        rows: u32,
        /// Tile columns.
        cols: u32,
    },
    /// The shape does not fit the element type (e.g. an odd last dimension for packed 4-bit).
    BadShape,
    /// The tensor is too large for this platform or for the format's 32-bit offsets.
    TooLarge,
    /// The header length field disagrees with the structure it describes.
    HeaderLength {
        /// Stored header length.
        stored: u64,
        /// Length implied by the header contents.
        expected: u64,
    },
    /// The payload length field disagrees with the frame size.
    PayloadLength {
        /// Stored payload length.
        stored: u64,
        /// Bytes actually following the header.
        actual: u64,
    },
    /// The header checksum does not match: the header, tables or tile index are corrupt.
    HeaderChecksum,
    /// A frequency table is invalid.
    BadTable {
        /// Plane of the table.
        plane: u8,
        /// Table number within the plane.
        table: u8,
    },
    /// A tile-index entry is invalid.
    BadIndex {
        /// The tile.
        tile: u64,
    },
    /// A tile's coded data is corrupt.
    Corrupt {
        /// The tile.
        tile: u64,
        /// The plane.
        plane: u8,
        /// What was wrong.
        kind: Corruption,
    },
    /// The decoded content does not match the content checksum.
    ContentChecksum,
    /// A caller buffer has the wrong size.
    BufferSize {
        /// Bytes required.
        expected: u64,
        /// Bytes given.
        actual: u64,
    },
    /// A tile number at or beyond the number of tiles.
    TileOutOfRange {
        /// The tile asked for.
        tile: u64,
        /// Tiles in the frame.
        tiles: u64,
    },
    /// An encoder option is out of range.
    BadOption(&'static str),
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Corruption::InitialState { lane } => write!(f, "lane {lane} starts below 2^16"),
            Corruption::WordsExhausted => f.write_str("coded words run out before the last symbol"),
            Corruption::WordsLeft { stored, consumed } => {
                write!(f, "{consumed} of {stored} coded words consumed")
            }
            Corruption::FinalState { lane } => {
                write!(f, "lane {lane} ends in a state the encoder did not start from")
            }
            Corruption::Padding => f.write_str("non-zero padding"),
            Corruption::LaneStart { lane } => write!(f, "lane {lane}'s word run is out of order or out of range"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated { needed, have } => {
                write!(f, "truncated frame: {needed} bytes needed, {have} present")
            }
            Error::BadMagic => f.write_str("not a tileans frame or device image (bad magic bytes)"),
            Error::UnsupportedVersion(v) => write!(f, "unsupported format version {v}"),
            Error::UnknownFlags(x) => write!(f, "unknown flag bits {x:#06x}"),
            Error::UnknownElemType(c) => write!(f, "unknown element type code {c}"),
            Error::BadRank(r) => write!(f, "rank {r} exceeds the maximum of {}", crate::MAX_RANK),
            Error::BadScaleBits(b) => write!(f, "scale bits {b} outside 8..=12 (8..=13 in a version-2 device image)"),
            Error::BadPlaneMask(m) => write!(f, "coded-plane mask {m:#04x} names missing planes"),
            Error::BadTileShape { rows, cols } => write!(f, "invalid tile shape {rows}x{cols}"),
            Error::BadShape => f.write_str("shape does not fit the element type"),
            Error::TooLarge => f.write_str("tensor too large"),
            Error::HeaderLength { stored, expected } => {
                write!(f, "header length {stored} but its contents need {expected}")
            }
            Error::PayloadLength { stored, actual } => {
                write!(f, "payload length {stored} but {actual} bytes follow the header")
            }
            Error::HeaderChecksum => f.write_str("header checksum mismatch (header, tables or tile index corrupt)"),
            Error::BadTable { plane, table } => write!(f, "invalid frequency table {table} of plane {plane}"),
            Error::BadIndex { tile } => write!(f, "invalid tile-index entry for tile {tile}"),
            Error::Corrupt { tile, plane, kind } => {
                write!(f, "corrupt data in tile {tile}, plane {plane}: {kind}")
            }
            Error::ContentChecksum => f.write_str("decoded content does not match its checksum"),
            Error::BufferSize { expected, actual } => {
                write!(f, "buffer of {actual} bytes, {expected} required")
            }
            Error::TileOutOfRange { tile, tiles } => write!(f, "tile {tile} out of range ({tiles} tiles)"),
            Error::BadOption(what) => write!(f, "invalid option: {what}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}
