//! Result codes.

use core::ffi::CStr;

use tileans::Error;

/// Result codes. `TILEANS_OK` is 0; codes 1 to 21 are the errors of the codec (one per
/// kind of error of the Rust crate), codes from 100 are errors of the C interface. Values are
/// stable; new codes may be added.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum tileans_result {
    /// Success.
    TILEANS_OK = 0,
    /// The input ends before the structure it describes.
    TILEANS_ERR_TRUNCATED = 1,
    /// The input is not a tileans frame (bad magic bytes).
    TILEANS_ERR_BAD_MAGIC = 2,
    /// A frame format version this library does not read.
    TILEANS_ERR_UNSUPPORTED_VERSION = 3,
    /// Frame flag bits this library does not know.
    TILEANS_ERR_UNKNOWN_FLAGS = 4,
    /// An unknown element-type code (in a frame, or passed by the caller).
    TILEANS_ERR_UNKNOWN_ELEM_TYPE = 5,
    /// A rank above `TILEANS_MAX_RANK`.
    TILEANS_ERR_BAD_RANK = 6,
    /// Scale bits outside 8..=12 (8..=13 in a version-2 device image).
    TILEANS_ERR_BAD_SCALE_BITS = 7,
    /// The frame's coded-plane mask names planes its element type does not have.
    TILEANS_ERR_BAD_PLANE_MASK = 8,
    /// Tile rows or columns are zero, or a tile has more than 2^22 units.
    TILEANS_ERR_BAD_TILE_SHAPE = 9,
    /// The shape does not fit the element type (packed 4-bit with an odd last dimension or rank 0).
    TILEANS_ERR_BAD_SHAPE = 10,
    /// The tensor is too large for this platform or for the format.
    TILEANS_ERR_TOO_LARGE = 11,
    /// The frame's header length disagrees with its contents.
    TILEANS_ERR_HEADER_LENGTH = 12,
    /// The frame's payload length disagrees with the bytes given.
    TILEANS_ERR_PAYLOAD_LENGTH = 13,
    /// The header checksum does not match: header, tables or tile index are corrupt.
    TILEANS_ERR_HEADER_CHECKSUM = 14,
    /// A frequency table of the frame is invalid.
    TILEANS_ERR_BAD_TABLE = 15,
    /// A tile-index entry of the frame is invalid.
    TILEANS_ERR_BAD_INDEX = 16,
    /// A tile's coded data is corrupt.
    TILEANS_ERR_CORRUPT = 17,
    /// The decoded tensor does not match the frame's content checksum.
    TILEANS_ERR_CONTENT_CHECKSUM = 18,
    /// A buffer has the wrong size for the tensor (e.g. encoder input whose length does not
    /// match the shape and element type).
    TILEANS_ERR_BUFFER_SIZE = 19,
    /// A tile number at or beyond the number of tiles.
    TILEANS_ERR_TILE_OUT_OF_RANGE = 20,
    /// An encoder option is out of range.
    TILEANS_ERR_BAD_OPTION = 21,
    /// A required pointer argument is NULL.
    TILEANS_ERR_NULL_ARGUMENT = 100,
    /// An argument is invalid (a length above `PTRDIFF_MAX`, a buffer wrapping the address space,
    /// overlapping input and output buffers).
    TILEANS_ERR_INVALID_ARGUMENT = 101,
    /// The output buffer is too small; functions with a size out-parameter report the size needed.
    TILEANS_ERR_BUFFER_TOO_SMALL = 102,
    /// The library panicked (a bug in tileans; please report it). No state was left inconsistent
    /// except the output buffers of the call.
    TILEANS_ERR_PANIC = 103,
    /// An error of the codec that this version of the C interface has no code for.
    TILEANS_ERR_UNKNOWN = 104,
}

impl tileans_result {
    /// Every code, for [`tileans_result_message`] and the tests.
    pub(crate) const ALL: [tileans_result; 27] = {
        use tileans_result::*;
        [
            TILEANS_OK,
            TILEANS_ERR_TRUNCATED,
            TILEANS_ERR_BAD_MAGIC,
            TILEANS_ERR_UNSUPPORTED_VERSION,
            TILEANS_ERR_UNKNOWN_FLAGS,
            TILEANS_ERR_UNKNOWN_ELEM_TYPE,
            TILEANS_ERR_BAD_RANK,
            TILEANS_ERR_BAD_SCALE_BITS,
            TILEANS_ERR_BAD_PLANE_MASK,
            TILEANS_ERR_BAD_TILE_SHAPE,
            TILEANS_ERR_BAD_SHAPE,
            TILEANS_ERR_TOO_LARGE,
            TILEANS_ERR_HEADER_LENGTH,
            TILEANS_ERR_PAYLOAD_LENGTH,
            TILEANS_ERR_HEADER_CHECKSUM,
            TILEANS_ERR_BAD_TABLE,
            TILEANS_ERR_BAD_INDEX,
            TILEANS_ERR_CORRUPT,
            TILEANS_ERR_CONTENT_CHECKSUM,
            TILEANS_ERR_BUFFER_SIZE,
            TILEANS_ERR_TILE_OUT_OF_RANGE,
            TILEANS_ERR_BAD_OPTION,
            TILEANS_ERR_NULL_ARGUMENT,
            TILEANS_ERR_INVALID_ARGUMENT,
            TILEANS_ERR_BUFFER_TOO_SMALL,
            TILEANS_ERR_PANIC,
            TILEANS_ERR_UNKNOWN,
        ]
    };

    /// The code for a value received from C, if it is one.
    pub(crate) fn from_u32(code: u32) -> Option<tileans_result> {
        Self::ALL.into_iter().find(|&r| r as u32 == code)
    }

    /// The static message of a code.
    pub(crate) fn message(self) -> &'static CStr {
        use tileans_result::*;
        match self {
            TILEANS_OK => c"success",
            TILEANS_ERR_TRUNCATED => c"truncated frame: the input ends before the structure it describes",
            TILEANS_ERR_BAD_MAGIC => c"not a tileans frame (bad magic bytes)",
            TILEANS_ERR_UNSUPPORTED_VERSION => c"unsupported frame format version",
            TILEANS_ERR_UNKNOWN_FLAGS => c"unknown frame flag bits",
            TILEANS_ERR_UNKNOWN_ELEM_TYPE => c"unknown element type code",
            TILEANS_ERR_BAD_RANK => c"rank exceeds the maximum of 8",
            TILEANS_ERR_BAD_SCALE_BITS => c"scale bits outside 8..=12 (8..=13 in a version-2 device image)",
            TILEANS_ERR_BAD_PLANE_MASK => c"coded-plane mask names planes the element type does not have",
            TILEANS_ERR_BAD_TILE_SHAPE => c"invalid tile shape (zero, or more than 2^22 units per tile)",
            TILEANS_ERR_BAD_SHAPE => c"shape does not fit the element type",
            TILEANS_ERR_TOO_LARGE => c"tensor too large",
            TILEANS_ERR_HEADER_LENGTH => c"header length disagrees with the header contents",
            TILEANS_ERR_PAYLOAD_LENGTH => c"payload length disagrees with the frame size",
            TILEANS_ERR_HEADER_CHECKSUM => c"header checksum mismatch (header, tables or tile index corrupt)",
            TILEANS_ERR_BAD_TABLE => c"invalid frequency table",
            TILEANS_ERR_BAD_INDEX => c"invalid tile-index entry",
            TILEANS_ERR_CORRUPT => c"corrupt coded data in a tile",
            TILEANS_ERR_CONTENT_CHECKSUM => c"decoded content does not match its checksum",
            TILEANS_ERR_BUFFER_SIZE => c"buffer size does not match the tensor's shape and element type",
            TILEANS_ERR_TILE_OUT_OF_RANGE => c"tile number out of range",
            TILEANS_ERR_BAD_OPTION => c"invalid encoder option",
            TILEANS_ERR_NULL_ARGUMENT => c"a required pointer argument is NULL",
            TILEANS_ERR_INVALID_ARGUMENT => c"invalid argument",
            TILEANS_ERR_BUFFER_TOO_SMALL => c"output buffer too small",
            TILEANS_ERR_PANIC => c"internal error: the library panicked (a bug in tileans)",
            TILEANS_ERR_UNKNOWN => c"codec error without a C code in this version",
        }
    }
}

impl From<Error> for tileans_result {
    fn from(e: Error) -> Self {
        use tileans_result::*;
        match e {
            Error::Truncated { .. } => TILEANS_ERR_TRUNCATED,
            Error::BadMagic => TILEANS_ERR_BAD_MAGIC,
            Error::UnsupportedVersion(_) => TILEANS_ERR_UNSUPPORTED_VERSION,
            Error::UnknownFlags(_) => TILEANS_ERR_UNKNOWN_FLAGS,
            Error::UnknownElemType(_) => TILEANS_ERR_UNKNOWN_ELEM_TYPE,
            Error::BadRank(_) => TILEANS_ERR_BAD_RANK,
            Error::BadScaleBits(_) => TILEANS_ERR_BAD_SCALE_BITS,
            Error::BadPlaneMask(_) => TILEANS_ERR_BAD_PLANE_MASK,
            Error::BadTileShape { .. } => TILEANS_ERR_BAD_TILE_SHAPE,
            Error::BadShape => TILEANS_ERR_BAD_SHAPE,
            Error::TooLarge => TILEANS_ERR_TOO_LARGE,
            Error::HeaderLength { .. } => TILEANS_ERR_HEADER_LENGTH,
            Error::PayloadLength { .. } => TILEANS_ERR_PAYLOAD_LENGTH,
            Error::HeaderChecksum => TILEANS_ERR_HEADER_CHECKSUM,
            Error::BadTable { .. } => TILEANS_ERR_BAD_TABLE,
            Error::BadIndex { .. } => TILEANS_ERR_BAD_INDEX,
            Error::Corrupt { .. } => TILEANS_ERR_CORRUPT,
            Error::ContentChecksum => TILEANS_ERR_CONTENT_CHECKSUM,
            Error::BufferSize { .. } => TILEANS_ERR_BUFFER_SIZE,
            Error::TileOutOfRange { .. } => TILEANS_ERR_TILE_OUT_OF_RANGE,
            Error::BadOption(_) => TILEANS_ERR_BAD_OPTION,
            // `Error` is non_exhaustive: a variant added to the core later maps here until it
            // gets a code of its own.
            _ => TILEANS_ERR_UNKNOWN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tileans::Corruption;

    #[test]
    fn every_core_error_has_its_own_code() {
        let errors = [
            Error::Truncated { needed: 1, have: 0 },
            Error::BadMagic,
            Error::UnsupportedVersion(2),
            Error::UnknownFlags(2),
            Error::UnknownElemType(0),
            Error::BadRank(9),
            Error::BadScaleBits(7),
            Error::BadPlaneMask(0x10),
            Error::BadTileShape { rows: 0, cols: 1 },
            Error::BadShape,
            Error::TooLarge,
            Error::HeaderLength { stored: 0, expected: 40 },
            Error::PayloadLength { stored: 0, actual: 4 },
            Error::HeaderChecksum,
            Error::BadTable { plane: 0, table: 0 },
            Error::BadIndex { tile: 0 },
            Error::Corrupt { tile: 0, plane: 0, kind: Corruption::WordsExhausted },
            Error::ContentChecksum,
            Error::BufferSize { expected: 1, actual: 0 },
            Error::TileOutOfRange { tile: 1, tiles: 1 },
            Error::BadOption("x"),
        ];
        let codes: Vec<u32> = errors.iter().map(|&e| tileans_result::from(e) as u32).collect();
        // Codes 1..=21 in the order of the core's variants, each used once.
        assert_eq!(codes, (1..=21).collect::<Vec<u32>>());
    }

    #[test]
    fn messages_are_distinct_and_codes_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for r in tileans_result::ALL {
            assert_eq!(tileans_result::from_u32(r as u32), Some(r));
            assert!(seen.insert(r.message().to_bytes()), "duplicate message for {r:?}");
        }
        assert_eq!(tileans_result::from_u32(22), None);
        assert_eq!(tileans_result::from_u32(u32::MAX), None);
    }
}
