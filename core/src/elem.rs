//! Element types and how each splits into byte planes.
//!
//! A "unit" is the group of bytes that one symbol of every plane covers: one element for BF16,
//! F16, F32 and the 8-bit types, one byte (two elements) for packed 4-bit, one byte for opaque
//! bytes. Plane `p` of a unit is byte `P-1-p` (little-endian) of the unit after the type's
//! forward transform: BF16 and F32 rotate their bits left by one, so that the exponent fills the
//! top byte (plane 0) and the sign lands in the lowest bit.

/// The element types a frame can hold. Codes are the format's `elem_type` byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ElemType {
    /// bfloat16: plane 0 = exponent byte, plane 1 = mantissa and sign.
    Bf16,
    /// IEEE binary16: plane 0 = high byte (sign, exponent, two mantissa bits), plane 1 = low byte.
    F16,
    /// IEEE binary32: plane 0 = exponent byte, planes 1–3 = mantissa and sign.
    F32,
    /// FP8 E4M3: one plane.
    F8E4M3,
    /// FP8 E5M2: one plane.
    F8E5M2,
    /// Signed 8-bit integers: one plane.
    I8,
    /// Unsigned 8-bit integers: one plane.
    U8,
    /// Packed 4-bit values, two per byte (element 2i in the low nibble): one plane of bytes.
    Packed4,
    /// Opaque bytes: one plane.
    Bytes,
}

impl ElemType {
    /// All element types, in code order.
    pub const ALL: [ElemType; 9] = [
        ElemType::Bf16,
        ElemType::F16,
        ElemType::F32,
        ElemType::F8E4M3,
        ElemType::F8E5M2,
        ElemType::I8,
        ElemType::U8,
        ElemType::Packed4,
        ElemType::Bytes,
    ];

    /// The format's code for this type.
    pub const fn code(self) -> u8 {
        match self {
            ElemType::Bf16 => 1,
            ElemType::F16 => 2,
            ElemType::F32 => 3,
            ElemType::F8E4M3 => 4,
            ElemType::F8E5M2 => 5,
            ElemType::I8 => 6,
            ElemType::U8 => 7,
            ElemType::Packed4 => 8,
            ElemType::Bytes => 9,
        }
    }

    /// The type for a code, if known.
    pub const fn from_code(code: u8) -> Option<ElemType> {
        Some(match code {
            1 => ElemType::Bf16,
            2 => ElemType::F16,
            3 => ElemType::F32,
            4 => ElemType::F8E4M3,
            5 => ElemType::F8E5M2,
            6 => ElemType::I8,
            7 => ElemType::U8,
            8 => ElemType::Packed4,
            9 => ElemType::Bytes,
            _ => return None,
        })
    }

    /// A short lowercase name ("bf16", "f8e4m3", ...).
    pub const fn name(self) -> &'static str {
        match self {
            ElemType::Bf16 => "bf16",
            ElemType::F16 => "f16",
            ElemType::F32 => "f32",
            ElemType::F8E4M3 => "f8e4m3",
            ElemType::F8E5M2 => "f8e5m2",
            ElemType::I8 => "i8",
            ElemType::U8 => "u8",
            ElemType::Packed4 => "packed4",
            ElemType::Bytes => "bytes",
        }
    }

    /// Number of byte planes, which is also the number of bytes per unit.
    pub const fn planes(self) -> usize {
        match self {
            ElemType::Bf16 | ElemType::F16 => 2,
            ElemType::F32 => 4,
            _ => 1,
        }
    }

    /// Elements per unit along the last dimension (2 for packed 4-bit, else 1).
    pub const fn elems_per_unit(self) -> u64 {
        match self {
            ElemType::Packed4 => 2,
            _ => 1,
        }
    }

    /// Forward transform of one unit (little-endian bytes in place) before the plane split.
    #[inline]
    #[cfg(feature = "alloc")] // only the encoder uses it
    pub(crate) fn forward(self, unit: &mut [u8]) {
        match self {
            ElemType::Bf16 => {
                let v = u16::from_le_bytes([unit[0], unit[1]]).rotate_left(1);
                unit.copy_from_slice(&v.to_le_bytes());
            }
            ElemType::F32 => {
                let v = u32::from_le_bytes([unit[0], unit[1], unit[2], unit[3]]).rotate_left(1);
                unit.copy_from_slice(&v.to_le_bytes());
            }
            _ => {}
        }
    }

    /// Undo [`Self::forward`] on every unit of `bytes` (a whole number of units).
    pub(crate) fn inverse_all(self, bytes: &mut [u8]) {
        match self {
            ElemType::Bf16 => {
                for u in bytes.chunks_exact_mut(2) {
                    let v = u16::from_le_bytes([u[0], u[1]]).rotate_right(1);
                    u.copy_from_slice(&v.to_le_bytes());
                }
            }
            ElemType::F32 => {
                for u in bytes.chunks_exact_mut(4) {
                    let v = u32::from_le_bytes([u[0], u[1], u[2], u[3]]).rotate_right(1);
                    u.copy_from_slice(&v.to_le_bytes());
                }
            }
            _ => {}
        }
    }

    /// Byte `plane` of a unit after the forward transform, read from original unit bytes.
    #[inline]
    pub(crate) fn plane_byte(self, unit: &[u8], plane: usize) -> u8 {
        let p = self.planes();
        match self {
            ElemType::Bf16 => {
                let v = u16::from_le_bytes([unit[0], unit[1]]).rotate_left(1);
                v.to_le_bytes()[p - 1 - plane]
            }
            ElemType::F32 => {
                let v = u32::from_le_bytes([unit[0], unit[1], unit[2], unit[3]]).rotate_left(1);
                v.to_le_bytes()[p - 1 - plane]
            }
            _ => unit[p - 1 - plane],
        }
    }
}

impl core::fmt::Display for ElemType {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_codes_are_none() {
        for t in ElemType::ALL {
            assert_eq!(ElemType::from_code(t.code()), Some(t));
        }
        assert_eq!(ElemType::from_code(0), None);
        assert_eq!(ElemType::from_code(10), None);
    }

    #[test]
    fn bf16_plane_zero_is_the_exponent() {
        // 1.0 in BF16 is 0x3F80: exponent 0x7F, sign 0, mantissa 0.
        let unit = 0x3F80u16.to_le_bytes();
        assert_eq!(ElemType::Bf16.plane_byte(&unit, 0), 0x7F);
        assert_eq!(ElemType::Bf16.plane_byte(&unit, 1), 0x00);
        // -1.5: 0xBFC0: exponent 0x7F, mantissa 0x40, sign 1 -> low byte = 0x40<<1 | 1.
        let unit = 0xBFC0u16.to_le_bytes();
        assert_eq!(ElemType::Bf16.plane_byte(&unit, 0), 0x7F);
        assert_eq!(ElemType::Bf16.plane_byte(&unit, 1), 0x81);
    }

    #[test]
    fn f32_plane_zero_is_the_exponent() {
        let unit = (-2.0f32).to_bits().to_le_bytes();
        assert_eq!(ElemType::F32.plane_byte(&unit, 0), 0x80);
        assert_eq!(ElemType::F32.plane_byte(&unit, 3), 0x01);
    }

    #[test]
    fn forward_then_inverse_is_identity() {
        for t in [ElemType::Bf16, ElemType::F32, ElemType::F16] {
            let mut bytes = [0x12u8, 0x9A, 0xFE, 0x01, 0x80, 0x7F, 0x00, 0xFF];
            let orig = bytes;
            for u in bytes.chunks_exact_mut(t.planes()) {
                t.forward(u);
            }
            t.inverse_all(&mut bytes);
            assert_eq!(bytes, orig);
        }
    }
}
