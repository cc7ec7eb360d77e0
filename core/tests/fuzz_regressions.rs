//! Replays every input committed under fuzz/regressions/<target>/ (crashes the fuzzer found,
//! and seeds) through the same checks the fuzz targets run.

mod support;

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions").join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else { return 0 };
    let mut n = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        eprintln!("replaying {}", path.display());
        check(&data);
        n += 1;
    }
    n
}

#[test]
fn committed_fuzz_inputs_replay_cleanly() {
    let n = replay("decode", support::fuzz_logic::decode_arbitrary)
        + replay("round_trip", support::fuzz_logic::round_trip)
        + replay("single_tile", support::fuzz_logic::single_tile)
        + replay("simd_vs_scalar", support::kernels::simd_vs_scalar)
        + replay("image", support::fuzz_logic::image_arbitrary);
    assert!(n > 0, "no committed fuzz inputs found under fuzz/regressions");
}
