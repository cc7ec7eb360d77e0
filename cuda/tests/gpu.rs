//! GPU decoder tests: bit-exact against the CPU decoder. On a machine without a CUDA device each
//! test prints "skipped: no CUDA device (...)" and passes; with one they run for real.
//! Real weights are used when `$TILEANS_WEIGHTS` (default `.cache/weights` of the repository)
//! holds the MiniLM BF16 checkpoint; otherwise synthetic weights.
use tileans::{encode, ElemType, EncodeOptions, Frame};
use tileans_cuda::{cuda_available, nvrtc_available, GpuDecoder};

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

/// Real BF16 weights (the first `n` elements of the MiniLM BF16 tensors) when available.
fn real_bf16(n: usize) -> Option<Vec<u8>> {
    let dir = std::env::var_os("TILEANS_WEIGHTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache/weights"));
    let bytes = std::fs::read(dir.join("all-MiniLM-L6-v2.bf16.safetensors")).ok()?;
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
