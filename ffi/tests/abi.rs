//! The exported functions called as C would call them: NULL pointers, invalid codes, small
//! buffers, garbage and damaged frames give error codes, never a crash or a panic; the size bound
//! holds; frames decode from several threads at once.

use core::ffi::CStr;
use core::ptr::{null, null_mut};

use tileans_ffi::tileans_result::{self, *};
use tileans_ffi::*;

/// SplitMix64, so that test data needs no extra crates.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    /// BF16 weights: Gaussian values with a skewed exponent byte, as real weights have.
    fn bf16_weights(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 * n);
        for _ in 0..n {
            let u1 = (self.next() >> 11) as f64 / (1u64 << 53) as f64 + 1e-300;
            let u2 = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
            let g = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos() * 0.02;
            out.extend_from_slice(&(((g as f32).to_bits() >> 16) as u16).to_le_bytes());
        }
        out
    }
}

fn default_options() -> tileans_encode_options {
    let mut o = core::mem::MaybeUninit::<tileans_encode_options>::uninit();
    // SAFETY: `o` is valid for a write of the struct, which the call fills completely.
    unsafe {
        tileans_encode_options_default(o.as_mut_ptr());
        o.assume_init()
    }
}

fn bound(elem: u32, shape: &[u64], opts: Option<&tileans_encode_options>) -> Result<usize, tileans_result> {
    let mut n = 0usize;
    let o = opts.map_or(null(), |o| o as *const _);
    // SAFETY: `shape` is valid for `shape.len()` reads, `o` is NULL or a live struct, `n` is writable.
    let rc = unsafe { tileans_encode_bound(elem, shape.as_ptr(), shape.len(), o, &mut n) };
    if rc == TILEANS_OK {
        Ok(n)
    } else {
        Err(rc)
    }
}

/// Encode through the C ABI; `Err((code, *out_len))` on failure.
fn encode(
    data: &[u8],
    elem: u32,
    shape: &[u64],
    opts: Option<&tileans_encode_options>,
    cap: usize,
) -> Result<Vec<u8>, (tileans_result, usize)> {
    let mut out = vec![0u8; cap];
    let mut len = usize::MAX;
    let o = opts.map_or(null(), |o| o as *const _);
    // SAFETY: every pointer comes from a live slice or struct of the length passed with it.
    let rc = unsafe {
        tileans_encode(data.as_ptr(), data.len(), elem, shape.as_ptr(), shape.len(), o, out.as_mut_ptr(), cap, &mut len)
    };
    if rc != TILEANS_OK {
        return Err((rc, len));
    }
    out.truncate(len);
    Ok(out)
}

/// A parsed frame that frees itself; borrows the bytes it was parsed from.
struct Handle<'a> {
    ptr: *mut tileans_frame,
    _bytes: core::marker::PhantomData<&'a [u8]>,
}

impl<'a> Handle<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Handle<'a>, tileans_result> {
        let mut ptr = core::ptr::dangling_mut::<tileans_frame>(); // must be overwritten
                                                                  // SAFETY: `bytes` outlives the handle (the lifetime 'a), `ptr` is writable.
        let rc = unsafe { tileans_frame_parse(bytes.as_ptr(), bytes.len(), &mut ptr) };
        if rc == TILEANS_OK {
            assert!(!ptr.is_null());
            Ok(Handle { ptr, _bytes: core::marker::PhantomData })
        } else {
            assert!(ptr.is_null(), "a failed parse must leave NULL");
            Err(rc)
        }
    }
    fn decoded_size(&self) -> usize {
        // SAFETY: `ptr` is a live handle.
        unsafe { tileans_frame_decoded_size(self.ptr) }
    }
    fn num_tiles(&self) -> u64 {
        // SAFETY: `ptr` is a live handle.
        unsafe { tileans_frame_num_tiles(self.ptr) }
    }
    fn decode(&self, cap: usize) -> Result<Vec<u8>, tileans_result> {
        let mut out = vec![0u8; cap];
        // SAFETY: `ptr` is a live handle; `out` holds `cap` bytes.
        let rc = unsafe { tileans_frame_decode(self.ptr, out.as_mut_ptr(), cap) };
        if rc == TILEANS_OK {
            out.truncate(self.decoded_size());
            Ok(out)
        } else {
            Err(rc)
        }
    }
    fn decode_tile(&self, t: u64, cap: usize) -> Result<Vec<u8>, tileans_result> {
        let mut out = vec![0u8; cap];
        // SAFETY: `ptr` is a live handle; `out` holds `cap` bytes.
        let rc = unsafe { tileans_frame_decode_tile(self.ptr, t, out.as_mut_ptr(), cap) };
        if rc == TILEANS_OK {
            Ok(out)
        } else {
            Err(rc)
        }
    }
    fn tile_decoded_size(&self, t: u64) -> Result<usize, tileans_result> {
        let mut n = 0;
        // SAFETY: `ptr` is a live handle; `n` is writable.
        let rc = unsafe { tileans_frame_tile_decoded_size(self.ptr, t, &mut n) };
        if rc == TILEANS_OK {
            Ok(n)
        } else {
            Err(rc)
        }
    }
}

impl Drop for Handle<'_> {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from a successful parse and is freed once.
        unsafe { tileans_frame_free(self.ptr) };
    }
}

const BF16: u32 = tileans_elem::TILEANS_ELEM_BF16 as u32;
const U8: u32 = tileans_elem::TILEANS_ELEM_U8 as u32;

/// The shape of the sample tensor, and its tile shape: a 3 x 3 grid with edge tiles.
const ROWS: u64 = 80;
const COLS: u64 = 150;
const SHAPE: [u64; 2] = [ROWS, COLS];

fn sample_options() -> tileans_encode_options {
    tileans_encode_options { tile_rows: 32, tile_cols: 64, ..default_options() }
}

/// BF16 weights and their frame.
fn sample_frame() -> (Vec<u8>, Vec<u8>) {
    let data = Rng(1).bf16_weights((ROWS * COLS) as usize);
    let o = sample_options();
    let frame = encode(&data, BF16, &SHAPE, Some(&o), bound(BF16, &SHAPE, Some(&o)).unwrap()).unwrap();
    (data, frame)
}

#[test]
fn version_and_messages_are_static_strings() {
    // SAFETY: both functions return static NUL-terminated strings.
    let version = unsafe { CStr::from_ptr(tileans_version()) };
    assert_eq!(version.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    for code in [0, 1, 21, 22, 99, 100, 104, 105, u32::MAX] {
        let p = tileans_result_message(code);
        assert!(!p.is_null());
        // SAFETY: as above.
        let msg = unsafe { CStr::from_ptr(p) }.to_str().unwrap();
        assert!(!msg.is_empty());
        assert_eq!(msg == "unknown result code", matches!(code, 22 | 99 | 105 | u32::MAX), "{code}");
    }
}

#[test]
fn null_pointers_give_null_argument() {
    let (_, frame) = sample_frame();
    let h = Handle::parse(&frame).unwrap();
    let mut out = [0u8; 4];
    let (mut a, mut b, mut r, mut n) = (0u32, 0u32, 0u64, 0usize);
    let mut extent = tileans_tile_extent::default();
    // SAFETY: every call below passes NULL where a pointer is required; the functions must check
    // before dereferencing. All other pointers are live locals.
    unsafe {
        let mut f = null_mut();
        assert_eq!(tileans_frame_parse(null(), 10, &mut f), TILEANS_ERR_NULL_ARGUMENT);
        assert_eq!(tileans_frame_parse(frame.as_ptr(), frame.len(), null_mut()), TILEANS_ERR_NULL_ARGUMENT);
        tileans_frame_free(null_mut());
        assert_eq!(tileans_frame_elem_type(null()), 0);
        assert_eq!(tileans_frame_rank(null()), 0);
        assert_eq!(tileans_frame_num_tiles(null()), 0);
        assert_eq!(tileans_frame_elements(null()), 0);
        assert_eq!(tileans_frame_decoded_size(null()), 0);
        assert!(!tileans_frame_has_content_checksum(null()));
        assert_eq!(tileans_frame_shape(null(), null_mut(), 0, null_mut()), TILEANS_ERR_NULL_ARGUMENT);
        assert_eq!(tileans_frame_shape(h.ptr, null_mut(), 8, null_mut()), TILEANS_ERR_NULL_ARGUMENT);
        assert_eq!(tileans_frame_tile_shape(null(), &mut a, &mut b), TILEANS_ERR_NULL_ARGUMENT);
        assert_eq!(tileans_frame_tile_shape(h.ptr, null_mut(), &mut b), TILEANS_ERR_NULL_ARGUMENT);
        assert_eq!(tileans_frame_tile_shape(h.ptr, &mut a, null_mut()), TILEANS_ERR_NULL_ARGUMENT);
        assert_eq!(tileans_frame_grid(h.ptr, &mut r, null_mut()), TILEANS_ERR_NULL_ARGUMENT);
        assert_eq!(tileans_frame_matrix(h.ptr, null_mut(), &mut r), TILEANS_ERR_NULL_ARGUMENT);
        assert_eq!(tileans_frame_tile(null(), 0, &mut extent), TILEANS_ERR_NULL_ARGUMENT);
        assert_eq!(tileans_frame_tile(h.ptr, 0, null_mut()), TILEANS_ERR_NULL_ARGUMENT);
        assert_eq!(tileans_frame_tile_decoded_size(h.ptr, 0, null_mut()), TILEANS_ERR_NULL_ARGUMENT);
        assert_eq!(tileans_frame_decode(null(), out.as_mut_ptr(), 4), TILEANS_ERR_NULL_ARGUMENT);
        assert_eq!(tileans_frame_decode(h.ptr, null_mut(), 4), TILEANS_ERR_NULL_ARGUMENT);
        assert_eq!(tileans_frame_decode_tile(null(), 0, out.as_mut_ptr(), 4), TILEANS_ERR_NULL_ARGUMENT);
        assert_eq!(tileans_frame_decode_tile(h.ptr, 0, null_mut(), 4), TILEANS_ERR_NULL_ARGUMENT);
        tileans_encode_options_default(null_mut());
        let shape = [4u64];
        assert_eq!(tileans_encode_bound(U8, null(), 1, null(), &mut n), TILEANS_ERR_NULL_ARGUMENT);
        assert_eq!(tileans_encode_bound(U8, shape.as_ptr(), 1, null(), null_mut()), TILEANS_ERR_NULL_ARGUMENT);
        let data = [1u8; 4];
        let enc = |d: *const u8, s: *const u64, o: *mut u8, cap: usize, len: *mut usize| {
            tileans_encode(d, 4, U8, s, 1, null(), o, cap, len)
        };
        assert_eq!(enc(null(), shape.as_ptr(), out.as_mut_ptr(), 4, &mut n), TILEANS_ERR_NULL_ARGUMENT);
        assert_eq!(enc(data.as_ptr(), null(), out.as_mut_ptr(), 4, &mut n), TILEANS_ERR_NULL_ARGUMENT);
        assert_eq!(enc(data.as_ptr(), shape.as_ptr(), null_mut(), 4, &mut n), TILEANS_ERR_NULL_ARGUMENT);
        assert_eq!(enc(data.as_ptr(), shape.as_ptr(), out.as_mut_ptr(), 4, null_mut()), TILEANS_ERR_NULL_ARGUMENT);
    }
}

#[test]
fn zero_lengths_accept_null_pointers() {
    // An empty tensor: NULL data, and NULL output for the size query.
    let shape = [0u64, 16];
    let mut len = 0;
    // SAFETY: zero lengths; `len` is writable.
    let rc = unsafe { tileans_encode(null(), 0, U8, shape.as_ptr(), 2, null(), null_mut(), 0, &mut len) };
    assert_eq!(rc, TILEANS_ERR_BUFFER_TOO_SMALL);
    let frame = encode(&[], U8, &shape, None, len).unwrap();
    let h = Handle::parse(&frame).unwrap();
    assert_eq!(h.decoded_size(), 0);
    assert_eq!(h.num_tiles(), 0);
    // SAFETY: zero capacity with a NULL buffer.
    assert_eq!(unsafe { tileans_frame_decode(h.ptr, null_mut(), 0) }, TILEANS_OK);
    assert_eq!(h.decode_tile(0, 0), Err(TILEANS_ERR_TILE_OUT_OF_RANGE));
    // A scalar: rank 0 with a NULL shape.
    let frame = encode(&[1, 2, 3, 4], tileans_elem::TILEANS_ELEM_F32 as u32, &[], None, 1000).unwrap();
    let h = Handle::parse(&frame).unwrap();
    let mut rank = 99;
    // SAFETY: rank 0 needs no dims; `rank` is writable.
    assert_eq!(unsafe { tileans_frame_shape(h.ptr, null_mut(), 0, &mut rank) }, TILEANS_OK);
    assert_eq!(rank, 0);
    assert_eq!(h.decode(4).unwrap(), [1, 2, 3, 4]);
}

#[test]
fn integers_from_c_are_validated() {
    let data = vec![0u8; 64];
    for code in [0, 10, 255, 256 + BF16, u32::MAX] {
        assert_eq!(bound(code, &[64], None), Err(TILEANS_ERR_UNKNOWN_ELEM_TYPE), "{code}");
        assert_eq!(encode(&data, code, &[64], None, 1000).unwrap_err().0, TILEANS_ERR_UNKNOWN_ELEM_TYPE);
    }
    assert_eq!(bound(U8, &[1; 9], None), Err(TILEANS_ERR_BAD_RANK));
    // SAFETY: the rank is rejected before the (dangling) shape pointer is read.
    let rc = unsafe { tileans_encode_bound(U8, core::ptr::dangling::<u64>(), usize::MAX, null(), &mut 0) };
    assert_eq!(rc, TILEANS_ERR_BAD_RANK);
    let p4 = tileans_elem::TILEANS_ELEM_PACKED4 as u32;
    assert_eq!(bound(p4, &[3, 5], None), Err(TILEANS_ERR_BAD_SHAPE));
    assert_eq!(bound(p4, &[], None), Err(TILEANS_ERR_BAD_SHAPE));
    assert_eq!(bound(U8, &[u64::MAX, 2], None), Err(TILEANS_ERR_BAD_SHAPE));
    let base = default_options();
    let bad = [
        (tileans_encode_options { tile_rows: 0, ..base }, TILEANS_ERR_BAD_TILE_SHAPE),
        (tileans_encode_options { tile_cols: 1 << 23, ..base }, TILEANS_ERR_BAD_TILE_SHAPE),
        (tileans_encode_options { scale_bits: 0x10C, ..base }, TILEANS_ERR_BAD_SCALE_BITS),
        (tileans_encode_options { max_tables: 0, ..base }, TILEANS_ERR_BAD_OPTION),
        (tileans_encode_options { content_checksum: 2, ..base }, TILEANS_ERR_BAD_OPTION),
        (tileans_encode_options { dense: 0x100, ..base }, TILEANS_ERR_BAD_OPTION),
        (tileans_encode_options { adapt_tile_shape: 3, ..base }, TILEANS_ERR_BAD_OPTION),
    ];
    for (o, code) in bad {
        assert_eq!(bound(U8, &[64], Some(&o)), Err(code), "{o:?}");
        assert_eq!(encode(&data, U8, &[64], Some(&o), 1000).unwrap_err().0, code, "{o:?}");
    }
    // Data whose length does not match the shape.
    assert_eq!(encode(&data, U8, &[65], None, 1000).unwrap_err().0, TILEANS_ERR_BUFFER_SIZE);
    assert_eq!(encode(&data, BF16, &[64], None, 1000).unwrap_err().0, TILEANS_ERR_BUFFER_SIZE);
}

#[test]
fn small_buffers_report_the_size_needed() {
    let (data, frame) = sample_frame();
    let o = sample_options();
    for cap in [0, 1, frame.len() - 1] {
        assert_eq!(encode(&data, BF16, &SHAPE, Some(&o), cap), Err((TILEANS_ERR_BUFFER_TOO_SMALL, frame.len())));
    }
    assert_eq!(encode(&data, BF16, &SHAPE, Some(&o), frame.len() + 7).unwrap(), frame);
    let h = Handle::parse(&frame).unwrap();
    assert_eq!(h.decode(data.len() - 1), Err(TILEANS_ERR_BUFFER_TOO_SMALL));
    assert_eq!(h.decode(data.len() + 3).unwrap(), data);
    let n = h.tile_decoded_size(0).unwrap();
    assert_eq!(h.decode_tile(0, n - 1), Err(TILEANS_ERR_BUFFER_TOO_SMALL));
    assert_eq!(h.decode_tile(0, n).unwrap().len(), n);
    let mut dims = [0u64; 1];
    let mut rank = 0;
    // SAFETY: `dims` holds one u64, `rank` is writable.
    let rc = unsafe { tileans_frame_shape(h.ptr, dims.as_mut_ptr(), 1, &mut rank) };
    assert_eq!((rc, rank), (TILEANS_ERR_BUFFER_TOO_SMALL, 2));
}

#[test]
fn out_of_range_tiles_and_overlapping_buffers_are_rejected() {
    let (data, frame) = sample_frame();
    let h = Handle::parse(&frame).unwrap();
    let t = h.num_tiles();
    assert_eq!(h.decode_tile(t, 1 << 20), Err(TILEANS_ERR_TILE_OUT_OF_RANGE));
    assert_eq!(h.decode_tile(u64::MAX, 1 << 20), Err(TILEANS_ERR_TILE_OUT_OF_RANGE));
    assert_eq!(h.tile_decoded_size(t), Err(TILEANS_ERR_TILE_OUT_OF_RANGE));
    let mut e = tileans_tile_extent::default();
    // SAFETY: live handle, writable extent.
    assert_eq!(unsafe { tileans_frame_tile(h.ptr, t, &mut e) }, TILEANS_ERR_TILE_OUT_OF_RANGE);
    // Decoding over the frame's own bytes would alias them.
    let (p, len) = (frame.as_ptr().cast_mut(), frame.len());
    // SAFETY: the function must reject the overlap before writing; `p` is valid for `len` bytes.
    assert_eq!(unsafe { tileans_frame_decode(h.ptr, p, len) }, TILEANS_ERR_INVALID_ARGUMENT);
    // SAFETY: as above.
    assert_eq!(unsafe { tileans_frame_decode_tile(h.ptr, 0, p.add(8), len - 8) }, TILEANS_ERR_INVALID_ARGUMENT);
    drop(h);
    // Encoding into the input.
    let mut buf = data.clone();
    buf.resize(data.len() * 2, 0);
    let mut n = 0;
    let (p, shape) = (buf.as_mut_ptr(), SHAPE);
    // SAFETY: both ranges lie inside `buf`; the function must reject the overlap before writing.
    let rc = unsafe { tileans_encode(p, data.len(), BF16, shape.as_ptr(), 2, null(), p.add(100), data.len(), &mut n) };
    assert_eq!(rc, TILEANS_ERR_INVALID_ARGUMENT);
    // Lengths no object can have.
    // SAFETY: the length is rejected before the pointer is used.
    let rc = unsafe { tileans_frame_parse(frame.as_ptr(), usize::MAX, &mut null_mut()) };
    assert_eq!(rc, TILEANS_ERR_INVALID_ARGUMENT);
}

#[test]
fn unaligned_shapes_and_outputs_work() {
    let data = Rng(2).bytes(6 * 10);
    // The shape read from an odd address.
    let mut raw = [0u8; 1 + 16];
    raw[1..9].copy_from_slice(&6u64.to_ne_bytes());
    raw[9..17].copy_from_slice(&10u64.to_ne_bytes());
    let shape = raw[1..].as_ptr().cast::<u64>();
    let mut out = vec![0u8; 4096];
    let mut len = [0u8; 1 + size_of::<usize>()];
    let len_ptr = len[1..].as_mut_ptr().cast::<usize>();
    // SAFETY: `shape` points at 2 u64 and `len_ptr` at one usize (unaligned; the ABI allows it).
    let rc = unsafe {
        tileans_encode(data.as_ptr(), data.len(), U8, shape, 2, null(), out.as_mut_ptr(), out.len(), len_ptr)
    };
    assert_eq!(rc, TILEANS_OK);
    let n = usize::from_ne_bytes(len[1..].try_into().unwrap());
    let h = Handle::parse(&out[..n]).unwrap();
    let mut dims = [0u8; 1 + 16];
    // SAFETY: room for 2 u64 at an odd address.
    let rc = unsafe { tileans_frame_shape(h.ptr, dims[1..].as_mut_ptr().cast(), 2, null_mut()) };
    assert_eq!(rc, TILEANS_OK);
    assert_eq!(dims[1..9], 6u64.to_ne_bytes());
    assert_eq!(dims[9..], 10u64.to_ne_bytes());
    assert_eq!(h.decode(data.len()).unwrap(), data);
}

#[test]
fn garbage_and_damaged_frames_give_error_codes() {
    let mut rng = Rng(3);
    for n in [0, 1, 3, 4, 31, 32, 40, 100, 1000] {
        let junk = rng.bytes(n);
        assert!(Handle::parse(&junk).is_err());
        let mut with_magic = junk.clone();
        if n >= 4 {
            with_magic[..4].copy_from_slice(&[0x89, b'T', b'A', b'N']);
            let rc = Handle::parse(&with_magic).err().unwrap();
            assert_ne!(rc, TILEANS_ERR_PANIC);
        }
    }
    assert_eq!(Handle::parse(b"not a frame at all, clearly").err(), Some(TILEANS_ERR_BAD_MAGIC));

    let (data, frame) = sample_frame();
    assert_eq!(Handle::parse(&frame[..frame.len() - 1]).err(), Some(TILEANS_ERR_TRUNCATED));
    let mut longer = frame.clone();
    longer.push(0);
    assert_eq!(Handle::parse(&longer).err(), Some(TILEANS_ERR_PAYLOAD_LENGTH));
    // Bytes flipped in turn: header damage fails the parse, payload damage the decode.
    // Every byte of the start (fixed header, dims, tables), then a sample of the rest.
    let start = 400;
    for i in (0..start).chain((start..frame.len()).step_by(frame.len() / 150)) {
        let mut bad = frame.clone();
        bad[i] ^= 1 << (i % 8);
        match Handle::parse(&bad) {
            Err(rc) => assert_ne!(rc, TILEANS_ERR_PANIC),
            Ok(h) => {
                let rc = h.decode(data.len()).unwrap_err();
                assert!(matches!(rc, TILEANS_ERR_CORRUPT | TILEANS_ERR_CONTENT_CHECKSUM), "byte {i}: {rc:?}");
                for t in 0..h.num_tiles() {
                    let n = h.tile_decoded_size(t).unwrap();
                    if let Err(rc) = h.decode_tile(t, n) {
                        assert_eq!(rc, TILEANS_ERR_CORRUPT);
                    }
                }
            }
        };
    }
}

/// The size bound holds for every element type, incompressible and compressible data, tiny and
/// adapted tiles, several tables and dense coding.
#[test]
fn encode_bound_is_an_upper_bound() {
    let mut rng = Rng(4);
    let shapes: &[&[u64]] = &[&[], &[7], &[33, 7], &[2, 3, 10], &[1, 600], &[600, 2], &[40, 70]];
    let tiles = [(64, 512), (1, 1), (5, 3), (7, 700)];
    for code in 1..=9u32 {
        for &shape in shapes {
            if code == tileans_elem::TILEANS_ELEM_PACKED4 as u32
                && (shape.is_empty() || shape[shape.len() - 1] % 2 == 1)
            {
                assert_eq!(bound(code, shape, None), Err(TILEANS_ERR_BAD_SHAPE));
                continue;
            }
            let elements: u64 = shape.iter().product();
            let bytes_per = match code {
                1 | 2 => 2.0,
                3 => 4.0,
                8 => 0.5,
                _ => 1.0,
            };
            let len = (elements as f64 * bytes_per) as usize;
            for (tr, tc) in tiles {
                if tr * tc < 8 && elements > 64 {
                    continue; // tiny tiles only on tiny tensors: debug builds are slow
                }
                // Clustering tiles into many tables is slow in debug builds: only with few tiles.
                let tiles = (elements / u64::from(tr * tc)).max(1);
                let many = if tiles <= 8 { 16 } else { 2 };
                for (dense, max_tables, adapt) in [(0, 1, 1), (1, many, 0)] {
                    let o = tileans_encode_options {
                        tile_rows: tr,
                        tile_cols: tc,
                        dense,
                        max_tables,
                        adapt_tile_shape: adapt,
                        ..default_options()
                    };
                    let b = bound(code, shape, Some(&o)).unwrap();
                    // Incompressible (every tile raw) and constant (every tile CONST) data.
                    for data in [rng.bytes(len), vec![0x3C; len]] {
                        let frame = encode(&data, code, shape, Some(&o), b)
                            .unwrap_or_else(|e| panic!("code {code} shape {shape:?} {o:?}: {e:?}"));
                        assert!(frame.len() <= b);
                    }
                }
            }
        }
    }
}

#[test]
fn bound_follows_the_documented_formula() {
    // 51 + 8 rank + C (1 + 544 K) + T (4 + 4 C + 3 P) + R C P, with P = 2 planes, C = 1 coded
    // plane, K tables and T tiles of the shape the encoder uses: 256 columns are narrower than
    // the default 512, so tiles become 256 wide and 16384 / 256 = 64 rows tall.
    let o = default_options();
    let k = o.max_tables as usize;
    let t = 256 / 64;
    let formula = 51 + 8 * 2 + (1 + 544 * k) + t * (4 + 4 + 3 * 2) + 256 * 256 * 2;
    assert_eq!(bound(BF16, &[256, 256], None), Ok(formula));
    let raw = 2 * 1024 * 1024;
    let b = bound(BF16, &[1024, 1024], None).unwrap();
    assert!(b > raw && ((b - raw) as f64) < 0.002 * raw as f64, "{b}");
}

#[test]
fn whole_and_tile_decodes_match_and_threads_share_a_frame() {
    let (data, frame) = sample_frame();
    let h = Handle::parse(&frame).unwrap();
    assert_eq!(h.decode(data.len()).unwrap(), data);
    let (mut gr, mut gc, mut rows, mut cols) = (0, 0, 0, 0);
    // SAFETY: live handle, writable locals.
    unsafe {
        assert_eq!(tileans_frame_grid(h.ptr, &mut gr, &mut gc), TILEANS_OK);
        assert_eq!(tileans_frame_matrix(h.ptr, &mut rows, &mut cols), TILEANS_OK);
    }
    assert_eq!((rows, cols), (ROWS, COLS));
    assert_eq!((gr, gc), (3, 3));
    assert_eq!(gr * gc, h.num_tiles());
    // Four threads decode every tile of the same handle at once.
    let addr = h.ptr as usize;
    std::thread::scope(|s| {
        for _ in 0..4 {
            let data = &data;
            s.spawn(move || {
                let ptr = addr as *const tileans_frame;
                for t in 0..gr * gc {
                    let mut e = tileans_tile_extent::default();
                    // SAFETY: the handle outlives the scope; frames may be used from many threads.
                    assert_eq!(unsafe { tileans_frame_tile(ptr, t, &mut e) }, TILEANS_OK);
                    let n = e.rows as usize * e.cols as usize * 2;
                    let mut out = vec![0u8; n];
                    // SAFETY: as above; `out` holds `n` bytes.
                    assert_eq!(unsafe { tileans_frame_decode_tile(ptr, t, out.as_mut_ptr(), n) }, TILEANS_OK);
                    for r in 0..e.rows as usize {
                        let at = ((e.row0 as usize + r) * COLS as usize + e.col0 as usize) * 2;
                        let w = e.cols as usize * 2;
                        assert_eq!(out[r * w..(r + 1) * w], data[at..at + w]);
                    }
                }
            });
        }
    });
}

/// A builder of device images through the C ABI (`tileans_image_build` or `_build_pairs`).
type ImageBuild = unsafe extern "C" fn(*const tileans_frame, *mut u8, usize, *mut usize) -> tileans_result;
/// Each image version and its builder.
const BUILDERS: [(u16, ImageBuild); 2] = [(1, tileans_image_build), (2, tileans_image_build_pairs)];

/// Build a device image through the C ABI: `Err((code, *out_len))` on failure.
fn image_build(build: ImageBuild, h: &Handle, cap: usize) -> Result<Vec<u8>, (tileans_result, usize)> {
    let mut out = vec![0u8; cap];
    let mut len = usize::MAX;
    let ptr = if cap == 0 { null_mut() } else { out.as_mut_ptr() };
    // SAFETY: `h.ptr` is a live handle, `out` holds `cap` bytes (or is NULL), `len` is writable.
    let rc = unsafe { build(h.ptr, ptr, cap, &mut len) };
    if rc != TILEANS_OK {
        return Err((rc, len));
    }
    out.truncate(len);
    Ok(out)
}

#[test]
fn device_images_build_and_decode_through_the_c_abi() {
    let (data, frame) = sample_frame();
    let h = Handle::parse(&frame).unwrap();
    for (version, build) in BUILDERS {
        // size query: NULL output reports the length
        let (rc, need) = image_build(build, &h, 0).unwrap_err();
        assert_eq!(rc, TILEANS_ERR_BUFFER_TOO_SMALL);
        assert_eq!(image_build(build, &h, need - 1).unwrap_err(), (TILEANS_ERR_BUFFER_TOO_SMALL, need));
        let img = image_build(build, &h, need + 7).unwrap();
        assert_eq!(img.len(), need);
        assert_eq!(u16::from_le_bytes([img[4], img[5]]), version);
        let mut out = vec![0u8; data.len()];
        // SAFETY: `img` and `out` are live buffers of the lengths passed.
        let rc = unsafe { tileans_image_decode(img.as_ptr(), img.len(), out.as_mut_ptr(), out.len()) };
        assert_eq!(rc, TILEANS_OK, "version {version}");
        assert_eq!(out, data);
        // a small output, a damaged image, NULLs
        // SAFETY: as above, with shorter lengths than the buffers hold.
        unsafe {
            assert_eq!(
                tileans_image_decode(img.as_ptr(), img.len(), out.as_mut_ptr(), 10),
                TILEANS_ERR_BUFFER_TOO_SMALL
            );
            assert_eq!(tileans_image_decode(img.as_ptr(), 40, out.as_mut_ptr(), out.len()), TILEANS_ERR_TRUNCATED);
            assert_eq!(tileans_image_decode(null(), 5, out.as_mut_ptr(), out.len()), TILEANS_ERR_NULL_ARGUMENT);
            assert_eq!(build(h.ptr, null_mut(), 0, null_mut()), TILEANS_ERR_NULL_ARGUMENT);
            assert_eq!(build(null(), null_mut(), 0, &mut 0), TILEANS_ERR_NULL_ARGUMENT);
            // the output over the frame's own bytes
            let fp = frame.as_ptr() as *mut u8;
            assert_eq!(build(h.ptr, fp, frame.len(), &mut 0), TILEANS_ERR_INVALID_ARGUMENT);
        }
        let mut bad = img.clone();
        // tile 0's first lane state (its record starts at the offset of index entry 0)
        let index_at = 64 + u32::from_le_bytes(bad[44..48].try_into().unwrap()) as usize;
        let rec0 = u64::from_le_bytes(bad[index_at..index_at + 8].try_into().unwrap()) as usize;
        bad[rec0 + 1] ^= 0x40;
        // SAFETY: live buffers.
        let rc = unsafe { tileans_image_decode(bad.as_ptr(), bad.len(), out.as_mut_ptr(), out.len()) };
        assert_eq!(rc, TILEANS_ERR_CORRUPT);
        // a table byte: the header checksum
        let mut bad = img.clone();
        bad[70] ^= 4;
        // SAFETY: live buffers.
        let rc = unsafe { tileans_image_decode(bad.as_ptr(), bad.len(), out.as_mut_ptr(), out.len()) };
        assert_eq!(rc, TILEANS_ERR_HEADER_CHECKSUM);
    }
}

#[test]
fn device_images_refuse_other_element_types() {
    let data = Rng(4).bytes(64 * 64);
    let frame = encode(&data, U8, &[64, 64], None, bound(U8, &[64, 64], None).unwrap()).unwrap();
    let h = Handle::parse(&frame).unwrap();
    for (_, build) in BUILDERS {
        assert_eq!(image_build(build, &h, 1 << 20).unwrap_err().0, TILEANS_ERR_BAD_OPTION);
    }
}

/// A frame table whose tiles hold more than 8192 distinct pairs of exponents has no version-2
/// image (`TILEANS_ERR_BAD_OPTION`); its version-1 image builds.
#[test]
fn pair_images_refuse_too_many_distinct_pairs() {
    let mut rng = Rng(6);
    // exponents uniform over 128 values: coded at 7 bits, about 16,000 distinct pairs
    let data: Vec<u8> = (0..256 * 512)
        .flat_map(|_| ((rng.next() as u16 & 0x807F) | (64 + rng.next() as u16 % 128) << 7).to_le_bytes())
        .collect();
    let mut o = default_options();
    o.max_tables = 1;
    let frame = encode(&data, BF16, &[256, 512], Some(&o), bound(BF16, &[256, 512], Some(&o)).unwrap()).unwrap();
    let h = Handle::parse(&frame).unwrap();
    assert_eq!(image_build(tileans_image_build_pairs, &h, 1 << 22).unwrap_err().0, TILEANS_ERR_BAD_OPTION);
    assert!(image_build(tileans_image_build, &h, 1 << 22).is_ok());
}
