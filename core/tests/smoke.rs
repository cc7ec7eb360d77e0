use tileans::*;

fn lcg(seed: &mut u64) -> u64 {
    *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    *seed >> 33
}

#[test]
fn bf16_gaussianish_round_trip() {
    let mut seed = 7;
    let (r, c) = (200usize, 700usize);
    let mut data = Vec::with_capacity(r * c * 2);
    for _ in 0..r * c {
        let v = ((lcg(&mut seed) % 2000) as f32 - 1000.0) / 30000.0 * ((lcg(&mut seed) % 4) as f32 + 0.1);
        let b = (v.to_bits() >> 16) as u16;
        data.extend_from_slice(&b.to_le_bytes());
    }
    for opts in [EncodeOptions::default(), EncodeOptions { max_tables: 4, dense: true, ..Default::default() }] {
        let f = encode(&data, ElemType::Bf16, &[r as u64, c as u64], &opts).unwrap();
        let frame = Frame::parse(&f).unwrap();
        let mut out = vec![0u8; frame.decoded_len()];
        frame.decode_into(&mut out).unwrap();
        assert_eq!(out, data);
        println!(
            "{} bytes for {} elements: {:.3} bits/elem, {:?}",
            f.len(),
            r * c,
            f.len() as f64 * 8.0 / (r * c) as f64,
            frame.breakdown()
        );
    }
}
