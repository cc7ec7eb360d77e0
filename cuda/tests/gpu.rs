//! GPU decoder tests: bit-exact against the CPU decoder. On a machine without a CUDA device each
//! test prints "skipped: no CUDA device (...)" and passes; with one they run for real.
//! Real weights are used when `$TILEANS_WEIGHTS` (default `.cache/weights` of the repository)
//! holds the MiniLM BF16 checkpoint; otherwise synthetic weights. Device images (FORMAT.md
//! section 11) are checked the same way against the CPU reference decoder (`Image::decode_into`),
//! with the Whisper F16 checkpoint for F16.
use tileans::image::{self, Image};
use tileans::{encode, ElemType, EncodeOptions, Frame, TileMode};
use tileans_cuda::{cuda_available, nvrtc_available, Error, GpuDecoder, ImageHeader};

fn gpu() -> Option<GpuDecoder> {
    match cuda_available() {
        Err(reason) => {
            println!("skipped: no CUDA device ({reason})");
            None
        }
        Ok(_) => Some(GpuDecoder::new(0).expect("CUDA device present but the decoder failed to start")),
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
    fn normal(&mut self) -> f32 {
        (0..4).map(|_| (self.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5).sum::<f32>() * 0.05
    }
}

fn bf16_weights(n: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng(seed | 1);
    (0..n)
        .flat_map(|_| {
            let u = r.normal().to_bits();
            (((u + 0x7FFF + ((u >> 16) & 1)) >> 16) as u16).to_le_bytes()
        })
        .collect()
}

/// `$TILEANS_WEIGHTS`, or the repository's `.cache/weights`.
fn weights_dir() -> std::path::PathBuf {
    std::env::var_os("TILEANS_WEIGHTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache/weights"))
}

/// Real BF16 weights (the first `n` elements of the MiniLM BF16 tensors) when available.
fn real_bf16(n: usize) -> Option<Vec<u8>> {
    let bytes = std::fs::read(weights_dir().join("all-MiniLM-L6-v2.bf16.safetensors")).ok()?;
    let hl = u64::from_le_bytes(bytes[..8].try_into().ok()?) as usize;
    // Tensor data follows the header; skip the first 4 KiB (an I64 position-id table).
    let data = &bytes[8 + hl + 4096..];
    (data.len() >= 2 * n).then(|| data[..2 * n].to_vec())
}

fn cpu_decode(frame: &[u8]) -> Vec<u8> {
    let f = Frame::parse(frame).unwrap();
    let mut out = vec![0u8; f.decoded_len()];
    f.decode_into(&mut out).unwrap();
    out
}

fn opts(tr: u32, tc: u32) -> EncodeOptions {
    EncodeOptions { tile_rows: tr, tile_cols: tc, adapt_tile_shape: false, ..Default::default() }
}

#[test]
fn nvrtc_compiles_the_kernels() {
    if !nvrtc_available() {
        println!("skipped: no NVRTC library");
        return;
    }
    let ptx = tileans_cuda::compile_kernels("compute_90").expect("NVRTC compile");
    let src = ptx.to_src();
    for k in ["tileans_cuda_decode_kernel", "tileans_cuda_decode_tiles_kernel", "tileans_cuda_build_luts_kernel"] {
        assert!(src.contains(k), "{k} missing from the PTX");
    }
}

#[test]
fn bf16_real_weights_every_geometry() {
    let Some(gpu) = gpu() else { return };
    let (data, what) = match real_bf16(1024 * 1024) {
        Some(d) => (d, "real"),
        None => (bf16_weights(1024 * 1024, 1), "synthetic"),
    };
    println!("{} on {}", what, gpu.device_name());
    for (tr, tc) in [(64, 512), (32, 512), (32, 256), (128, 256), (64, 520), (40, 50), (7, 13)] {
        let frame = encode(&data, ElemType::Bf16, &[1024, 1024], &opts(tr, tc)).unwrap();
        let got = gpu.decode(&frame).unwrap();
        assert!(got.all_ok(), "{tr}x{tc}: tile status {:?}", &got.tile_status[..8.min(got.tile_status.len())]);
        assert!(got.bytes == cpu_decode(&frame), "{tr}x{tc}: output differs from the CPU decoder");
    }
}

#[test]
fn every_element_type_and_edge_shapes() {
    let Some(gpu) = gpu() else { return };
    let mut r = Rng(7);
    let shapes: [&[u64]; 6] = [&[300, 200], &[1000], &[3, 5], &[64, 70, 2], &[], &[0, 4]];
    let mut frames = Vec::new();
    for elem in ElemType::ALL {
        for shape in shapes {
            if elem == ElemType::Packed4 && (shape.is_empty() || shape.last().is_some_and(|&d| d % 2 == 1)) {
                continue;
            }
            let units: u64 = shape.iter().product::<u64>() / elem.elems_per_unit();
            let n = (units as usize) * elem.planes();
            // low-entropy bytes so that every plane has something to code
            let data: Vec<u8> = (0..n)
                .map(|i| if i % elem.planes() == 0 { (r.next() % 5) as u8 } else { r.next() as u8 >> 3 })
                .collect();
            for o in [opts(64, 512), opts(32, 48), EncodeOptions { dense: true, ..opts(32, 64) }] {
                frames.push(encode(&data, elem, shape, &o).unwrap());
            }
        }
    }
    let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
    let got = gpu.decode_batch(&refs).unwrap();
    for (i, (f, g)) in frames.iter().zip(&got).enumerate() {
        assert!(g.all_ok(), "frame {i}: tile status {:?}", g.tile_status);
        assert!(g.bytes == cpu_decode(f), "frame {i}: output differs");
    }
}

#[test]
fn single_tiles_match_the_cpu() {
    let Some(gpu) = gpu() else { return };
    let data = bf16_weights(200 * 700, 3);
    let frame = encode(&data, ElemType::Bf16, &[200, 700], &opts(64, 512)).unwrap();
    let f = Frame::parse(&frame).unwrap();
    let tiles: Vec<u64> = (0..f.num_tiles()).collect();
    for fast in [false, true] {
        for (t, (bytes, status)) in gpu.decode_tiles(&frame, &tiles, fast).unwrap().into_iter().enumerate() {
            let mut want = vec![0u8; f.tile_decoded_len(t as u64).unwrap()];
            f.decode_tile_into(t as u64, &mut want).unwrap();
            assert_eq!(status, 0, "tile {t}");
            assert!(bytes == want, "tile {t} (fast {fast}) differs");
        }
    }
}

#[test]
fn corrupt_payloads_flag_the_same_tiles_as_the_cpu() {
    let Some(gpu) = gpu() else { return };
    let data = bf16_weights(256 * 1024, 5);
    let frame = encode(&data, ElemType::Bf16, &[256, 1024], &opts(64, 256)).unwrap();
    let header_len = u32::from_le_bytes(frame[20..24].try_into().unwrap()) as usize;
    let mut r = Rng(11);
    for round in 0..8 {
        let mut bad = frame.clone();
        for _ in 0..1 + round * 3 {
            let at = header_len + (r.next() as usize) % (frame.len() - header_len);
            bad[at] ^= 1 << (r.next() % 8);
        }
        let f = Frame::parse(&bad).unwrap();
        let got = gpu.decode(&bad).unwrap();
        for t in 0..f.num_tiles() {
            let mut tile = vec![0u8; f.tile_decoded_len(t).unwrap()];
            let cpu_ok = f.decode_tile_into(t, &mut tile).is_ok();
            assert_eq!(
                got.tile_status[t as usize] == 0,
                cpu_ok,
                "round {round} tile {t}: {:#x}",
                got.tile_status[t as usize]
            );
        }
    }
    // a truncated frame never reaches the GPU: the header parse rejects it
    assert!(gpu.decode(&frame[..frame.len() - 4]).is_err());
}

// ---- device images (docs/FORMAT.md section 11) ----------------------------------------------

/// A tensor of a safetensors file in the weights directory, by name: its bytes and shape.
fn real_tensor(file: &str, name: &str) -> Option<(Vec<u8>, Vec<u64>)> {
    let bytes = std::fs::read(weights_dir().join(file)).ok()?;
    let hl = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?) as usize;
    let header: serde_json::Value = serde_json::from_slice(bytes.get(8..8 + hl)?).ok()?;
    let t = header.get(name)?;
    let shape = t["shape"].as_array()?.iter().map(|d| d.as_u64()).collect::<Option<Vec<_>>>()?;
    let (a, b) = (t["data_offsets"][0].as_u64()? as usize, t["data_offsets"][1].as_u64()? as usize);
    Some((bytes.get(8 + hl + a..8 + hl + b)?.to_vec(), shape))
}

/// Synthetic F16 weights (normals rounded towards zero, tiny ones flushed to zero).
fn f16_weights(n: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng(seed | 1);
    (0..n)
        .flat_map(|_| {
            let u = r.normal().to_bits();
            let (sign, exp, mant) = ((u >> 16) & 0x8000, ((u >> 23) & 0xFF) as i32 - 127 + 15, (u >> 13) & 0x3FF);
            (if exp <= 0 { sign } else { sign | (exp as u32) << 10 | mant } as u16).to_le_bytes()
        })
        .collect()
}

/// The device image of `data` (through a frame, as `tileans::image::build` makes it).
fn image_of(data: &[u8], elem: ElemType, shape: &[u64], o: &EncodeOptions) -> Vec<u8> {
    let frame = encode(data, elem, shape, o).unwrap();
    image::build(&Frame::parse(&frame).unwrap()).unwrap()
}

/// Both device images of `data`: version 1 and the pair image (FORMAT.md 11.1, `build_pairs`).
fn images_of(data: &[u8], elem: ElemType, shape: &[u64], o: &EncodeOptions) -> [Vec<u8>; 2] {
    let frame = encode(data, elem, shape, o).unwrap();
    let f = Frame::parse(&frame).unwrap();
    [image::build(&f).unwrap(), image::build_pairs(&f).unwrap()]
}

/// The CPU reference decoder's tensor.
fn cpu_image(img: &[u8]) -> Vec<u8> {
    let im = Image::parse(img).unwrap();
    let mut out = vec![0u8; im.decoded_len()];
    im.decode_into(&mut out).unwrap();
    out
}

/// A unit made of its two planes (BF16: plane 0 is the exponent, plane 1 sign and mantissa;
/// F16: the high and low bytes).
fn unit(elem: ElemType, p0: u8, p1: u8) -> [u8; 2] {
    let v = u16::from_be_bytes([p0, p1]);
    (if elem == ElemType::Bf16 { v.rotate_right(1) } else { v }).to_le_bytes()
}

/// `rows x cols` units in bands of `band` rows: band 0 has one plane-0 byte (CONST tiles), band 1
/// uniform bytes (RAW tiles), later bands skewed plane-0 bytes (ANS tiles).
fn mixed_tiles(elem: ElemType, rows: usize, cols: usize, band: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng(seed | 1);
    let mut out = Vec::with_capacity(2 * rows * cols);
    for row in 0..rows {
        for _ in 0..cols {
            let (x, y) = (r.next(), r.next() as u8);
            let p0 = match row / band {
                0 => 0x7C,
                1 => (x >> 32) as u8,
                _ => 0x70 + (x.trailing_zeros() as u8).min(12),
            };
            out.extend_from_slice(&unit(elem, p0, y));
        }
    }
    out
}

fn tile_modes(img: &[u8]) -> (bool, bool, bool) {
    let im = Image::parse(img).unwrap();
    let modes: Vec<TileMode> = (0..im.num_tiles()).map(|t| im.tile(t).unwrap().1).collect();
    (
        modes.iter().any(|m| matches!(m, TileMode::Ans { .. })),
        modes.iter().any(|m| matches!(m, TileMode::Const { .. })),
        modes.iter().any(|m| matches!(m, TileMode::Raw)),
    )
}

/// The bytes of tile `t` of a decoded tensor, packed row-major.
fn tile_of(tensor: &[u8], im: &Image, t: u64) -> Vec<u8> {
    let (e, _) = im.tile(t).unwrap();
    let row = 2 * im.matrix().1 as usize;
    (0..e.rows as usize)
        .flat_map(|j| {
            let at = (e.row0 as usize + j) * row + 2 * e.col0 as usize;
            tensor[at..at + 2 * e.cols as usize].to_vec()
        })
        .collect()
}

/// 16 tiles of 32 x 256 whose plane-0 bytes have disjoint supports: one table each, more LUTs
/// (16 x 16 KiB) than fit in shared memory beside the rings of a block on sm_80/sm_90 (227 KiB).
fn many_tables_image(elem: ElemType) -> Vec<u8> {
    let mut r = Rng(21);
    let (rows, cols) = (128usize, 1024usize);
    let mut data = Vec::with_capacity(2 * rows * cols);
    for row in 0..rows {
        for col in 0..cols {
            let k = (row / 32 * 4 + col / 256) as u8;
            let x = r.next();
            data.extend_from_slice(&unit(elem, 16 * k + (x.trailing_zeros() as u8).min(7), (x >> 40) as u8));
        }
    }
    image_of(&data, elem, &[rows as u64, cols as u64], &EncodeOptions { max_tables: 16, ..opts(32, 256) })
}

#[test]
fn nvrtc_compiles_the_image_kernels() {
    if !nvrtc_available() {
        println!("skipped: no NVRTC library");
        return;
    }
    for arch in ["compute_80", "compute_90"] {
        let ptx = tileans_cuda::compile_image_kernels(arch).expect("NVRTC compile");
        let src = ptx.to_src();
        for k in ["tileans_rs_image_luts_kernel", "tileans_rs_image_decode_kernel"] {
            assert!(src.contains(k), "{k} missing from the {arch} PTX");
        }
    }
}

#[test]
fn image_source_is_one_self_contained_program() {
    // NVRTC gets no include path: every header is in the source, no "#include" left to open
    let src = tileans_cuda::image_kernel_source();
    assert!(!src.lines().any(|l| l.trim_start().starts_with("#include \"")), "an #include \"...\" is left");
    for needle in
        ["typedef struct tileans_cuda_image", "namespace image", "build_lut_block", "tileans_rs_image_decode_kernel"]
    {
        assert!(src.contains(needle), "{needle} missing");
    }
    // the frame kernels stay out of the image program (and its compile time)
    assert!(!src.contains("\n#define TILEANS_CUDA_DEFINE_KERNELS"));
}

#[test]
fn image_header_is_filled_as_the_c_parser_fills_it() {
    let img = image_of(&mixed_tiles(ElemType::F16, 100, 700, 32, 1), ElemType::F16, &[100, 700], &opts(32, 512));
    let h = ImageHeader::parse(&img).unwrap();
    let im = Image::parse(&img).unwrap();
    let rd64 = |at: usize| u64::from_le_bytes(img[at..at + 8].try_into().unwrap());
    let rd32 = |at: usize| u32::from_le_bytes(img[at..at + 4].try_into().unwrap());
    assert_eq!((h.rows, h.cols, h.grid_rows, h.grid_cols, h.num_tiles), (100, 700, 4, 2, 8));
    assert_eq!((h.tile_rows, h.tile_cols, h.elem_type, h.scale_bits), (32, 512, 2, img[7]));
    assert_eq!((h.n_tables, h.tables_len), (rd32(40), rd32(44)));
    assert_eq!(h.index_at, 64 + u64::from(h.tables_len));
    assert_eq!(h.records_at, h.index_at + 16 * h.num_tiles);
    assert_eq!(rd64(h.index_at as usize), h.records_at, "the first record follows the index");
    assert_eq!((h.image_len, h.decoded_len), (img.len() as u64, im.decoded_len() as u64));
    assert!(h.n_tables >= 1);
    assert_eq!(h.table_at[0], 64);
    for i in 1..h.n_tables as usize {
        // each table: a 32-byte presence bitmap, then a u16 per present symbol
        let at = h.table_at[i - 1] as usize;
        let present: u32 = img[at..at + 32].iter().map(|b| b.count_ones()).sum();
        assert_eq!(h.table_at[i] as usize, at + 32 + 2 * present as usize, "table {i}");
    }
    assert!(h.table_at[h.n_tables as usize..].iter().all(|&a| a == 0));
    assert!(u64::from(h.table_at[h.n_tables as usize - 1]) < h.index_at);
    // an empty tensor: no tiles, an empty grid
    let empty = image_of(&[], ElemType::Bf16, &[0, 512], &opts(32, 512));
    let h = ImageHeader::parse(&empty).unwrap();
    assert_eq!((h.num_tiles, h.grid_rows, h.grid_cols, h.decoded_len), (0, 0, 0, 0));
    // an invalid image is refused here, before any GPU work
    assert!(matches!(ImageHeader::parse(&img[..img.len() - 1]), Err(Error::ImageFormat(_))));
}

#[test]
fn image_test_inputs_have_the_tiles_they_claim() {
    for elem in [ElemType::Bf16, ElemType::F16] {
        let img = image_of(&mixed_tiles(elem, 100, 700, 32, 3), elem, &[100, 700], &opts(32, 512));
        assert_eq!(tile_modes(&img), (true, true, true), "{elem}: ANS, CONST and RAW tiles expected");
        let many = many_tables_image(elem);
        let h = ImageHeader::parse(&many).unwrap();
        assert!(h.n_tables >= 14, "{elem}: {} tables, the global-LUT path needs more than 13", h.n_tables);
    }
}

#[test]
fn image_real_weights_bf16_and_f16() {
    let Some(gpu) = gpu() else { return };
    let minilm = "all-MiniLM-L6-v2.bf16.safetensors";
    let tensors = [
        (ElemType::Bf16, real_tensor(minilm, "encoder.layer.0.intermediate.dense.weight")),
        (ElemType::Bf16, real_tensor(minilm, "encoder.layer.0.attention.self.query.weight")),
        (ElemType::F16, real_tensor("whisper-tiny.en.f16.safetensors", "decoder/layer_0/ffn/linear_0/weight")),
    ];
    for (i, (elem, t)) in tensors.into_iter().enumerate() {
        let (data, shape, what) = match t {
            Some((d, s)) => (d, s, "real"),
            None if elem == ElemType::Bf16 => (bf16_weights(1536 * 384, 10 + i as u64), vec![1536, 384], "synthetic"),
            None => (f16_weights(1536 * 384, 10 + i as u64), vec![1536, 384], "synthetic"),
        };
        println!("{what} {elem} {shape:?} on {}", gpu.device_name());
        for (tr, tc) in [(32, 512), (64, 512), (32, 256), (128, 256), (64, 520), (40, 50), (7, 13)] {
            for (v, img) in images_of(&data, elem, &shape, &opts(tr, tc)).iter().enumerate() {
                let got = gpu.decode_image(img).unwrap_or_else(|e| panic!("{elem} {tr}x{tc} v{}: {e}", v + 1));
                assert!(got == cpu_image(img), "{elem} {shape:?} {tr}x{tc} v{}: differs from the CPU decoder", v + 1);
                assert!(got == data, "{elem} {shape:?} {tr}x{tc} v{}: output differs from the weights", v + 1);
            }
        }
    }
}

#[test]
fn image_edge_const_and_raw_tiles() {
    let Some(gpu) = gpu() else { return };
    for elem in [ElemType::Bf16, ElemType::F16] {
        // ANS, CONST and RAW tiles, edge tiles of 4 rows and 188 columns (one chunk column, part
        // of it padding)
        for (rows, cols, tr, tc, band) in [
            (100, 700, 32, 512, 32),
            (200, 700, 64, 512, 64),
            (33, 257, 32, 512, 16),
            (96, 384, 32, 512, 32),
            (40, 300, 16, 300, 16),
            (7, 9, 32, 512, 3),
            (1, 5000, 128, 512, 1),
            (130, 2048, 64, 1024, 64),
        ] {
            let data = mixed_tiles(elem, rows, cols, band, rows as u64 * 31 + cols as u64);
            for (v, img) in images_of(&data, elem, &[rows as u64, cols as u64], &opts(tr, tc)).iter().enumerate() {
                let what = format!("{elem} {rows}x{cols} {tr}x{tc} v{}", v + 1);
                let st = gpu.decode_image_status(img).unwrap();
                assert!(st.all_ok(), "{what}: tile status {:?}", st.tile_status);
                assert!(st.bytes == cpu_image(img), "{what}: output differs from the CPU decoder");
                assert!(st.bytes == data, "{what}: output differs from the input");
            }
        }
        // a whole tensor of one kind of tile
        for (what, p0) in [("const", None), ("raw", Some(()))] {
            let mut r = Rng(5);
            let data: Vec<u8> =
                (0..64 * 1024).flat_map(|_| unit(elem, p0.map_or(0x7C, |_| r.next() as u8), r.next() as u8)).collect();
            let img = image_of(&data, elem, &[64, 1024], &opts(32, 512));
            assert_eq!(gpu.decode_image(&img).unwrap(), data, "{elem}: all {what} tiles");
        }
        // an empty tensor decodes to nothing, without a launch
        let empty = image_of(&[], elem, &[0, 512], &opts(32, 512));
        assert!(gpu.decode_image(&empty).unwrap().is_empty());
    }
}

#[test]
fn image_with_more_luts_than_shared_memory_holds() {
    let Some(gpu) = gpu() else { return };
    for elem in [ElemType::Bf16, ElemType::F16] {
        let img = many_tables_image(elem);
        assert_eq!(gpu.decode_image(&img).unwrap(), cpu_image(&img), "{elem}");
    }
}

#[test]
fn image_single_tiles_match_the_cpu() {
    let Some(gpu) = gpu() else { return };
    for elem in [ElemType::Bf16, ElemType::F16] {
        for (tr, tc) in [(64, 512), (7, 13)] {
            let data = mixed_tiles(elem, 200, 700, 64, 9);
            let img = image_of(&data, elem, &[200, 700], &opts(tr, tc));
            let im = Image::parse(&img).unwrap();
            let tiles: Vec<u64> = (0..im.num_tiles()).rev().collect();
            for fast in [false, true] {
                let got = gpu.decode_image_tiles(&img, &tiles, fast).unwrap();
                for (&t, (bytes, status)) in tiles.iter().zip(got) {
                    assert_eq!(status, 0, "{elem} {tr}x{tc} tile {t}");
                    assert!(bytes == tile_of(&data, &im, t), "{elem} {tr}x{tc} tile {t} (fast {fast}) differs");
                }
            }
            assert!(matches!(gpu.decode_image_tiles(&img, &[im.num_tiles()], true), Err(Error::ImageFormat(_))));
        }
    }
}

#[test]
fn corrupt_images_name_the_tile_the_cpu_names() {
    let Some(gpu) = gpu() else { return };
    for elem in [ElemType::Bf16, ElemType::F16] {
        let data = if elem == ElemType::Bf16 { bf16_weights(256 * 1024, 5) } else { f16_weights(256 * 1024, 5) };
        let img = image_of(&data, elem, &[256, 1024], &opts(64, 256));
        let records_at = ImageHeader::parse(&img).unwrap().records_at as usize;
        let mut r = Rng(11);
        let mut caught = 0;
        for round in 0..16 {
            let mut bad = img.clone();
            for _ in 0..1 + round % 8 * 3 {
                let at = records_at + (r.next() as usize) % (img.len() - records_at);
                bad[at] ^= 1 << (r.next() % 8);
            }
            // the records are not covered by the header checksum: the image parses
            let im = Image::parse(&bad).unwrap();
            let got = gpu.decode_image_status(&bad).unwrap();
            let mut cpu = vec![0u8; im.decoded_len()];
            let mut table = tileans::DecodeTable::new();
            let mut first_bad = None;
            for t in 0..im.num_tiles() {
                let cpu_ok = im.decode_tile_into_tensor(t, &mut cpu, &mut table).is_ok();
                let gpu_status = got.tile_status[t as usize];
                assert_eq!(gpu_status == 0, cpu_ok, "{elem} round {round} tile {t}: {gpu_status:#x}");
                if cpu_ok {
                    assert!(tile_of(&got.bytes, &im, t) == tile_of(&cpu, &im, t), "{elem} round {round} tile {t}");
                } else if first_bad.is_none() {
                    first_bad = Some(t);
                }
            }
            // decode_image names the first failing tile, as the CPU decoder does
            match (gpu.decode_image(&bad), first_bad) {
                (Ok(bytes), None) => assert!(bytes == cpu),
                (Err(Error::Tile { tile, status }), Some(t)) => {
                    assert_eq!(tile, t, "{elem} round {round}");
                    assert_ne!(status, 0);
                    let cpu_err = im.decode_into(&mut cpu).unwrap_err();
                    assert!(matches!(cpu_err, tileans::Error::Corrupt { tile, .. } if tile == t), "{cpu_err}");
                    let msg = Error::Tile { tile, status }.to_string();
                    assert!(msg.contains(&format!("tile {t}")), "{msg}");
                    caught += 1;
                }
                (got, want) => panic!("{elem} round {round}: GPU {got:?}, CPU's first corrupt tile {want:?}"),
            }
        }
        assert!(caught >= 8, "{elem}: only {caught} of 16 corrupt images caught");
    }
}

#[test]
fn malformed_images_never_reach_the_gpu() {
    let Some(gpu) = gpu() else { return };
    let data = bf16_weights(70 * 600, 13);
    let img = image_of(&data, ElemType::Bf16, &[70, 600], &opts(32, 512));
    let records_at = ImageHeader::parse(&img).unwrap().records_at as usize;
    let mut r = Rng(17);
    for _ in 0..64 {
        // header, tables and index are covered by the header checksum
        let mut bad = img.clone();
        bad[(r.next() as usize) % records_at] ^= 1 << (r.next() % 8);
        assert!(matches!(gpu.decode_image(&bad), Err(Error::ImageFormat(_))));
    }
    for len in [0, 63, records_at - 1, img.len() - 16, img.len() - 1] {
        assert!(matches!(gpu.decode_image(&img[..len]), Err(Error::ImageFormat(_))), "truncated to {len}");
    }
    let mut longer = img.clone();
    longer.extend_from_slice(&[0; 16]);
    assert!(matches!(gpu.decode_image(&longer), Err(Error::ImageFormat(_))));
    // a frame is not an image
    let frame = encode(&data, ElemType::Bf16, &[70, 600], &opts(32, 512)).unwrap();
    assert!(matches!(gpu.decode_image(&frame), Err(Error::ImageFormat(_))));
    assert_eq!(gpu.decode_image(&img).unwrap(), data);
}
