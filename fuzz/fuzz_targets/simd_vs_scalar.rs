//! Fuzz target `simd_vs_scalar`: every fast kernel agrees with the scalar decoder on every input.
//! The checks live in core/tests/support/kernels.rs so that `cargo test` replays every input
//! committed under fuzz/regressions/simd_vs_scalar/.
#![no_main]

#[path = "../../core/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

libfuzzer_sys::fuzz_target!(|data: &[u8]| support::kernels::simd_vs_scalar(data));
