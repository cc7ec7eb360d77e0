/* htscodecs' 32-way rANS, order 0, on a byte plane in 1 MiB blocks: the CPU peer of tileans.
 *
 *   htscodecs_bench PLANE_FILE [REPS] [avx2|avx512|sse4|scalar|auto]
 *
 * Compresses each block with rans_compress_to_4x16(..., RANS_ORDER_X32) (order 0, 32 states),
 * then times rans_uncompress_to_4x16 over all blocks (best of REPS passes, one thread), checks
 * the round trip and prints one JSON object. The SIMD level is forced with rans_set_cpu
 * (default avx2: the AVX2 decoder, as in the tileans issue; "auto" lets htscodecs pick, which
 * is AVX-512 where the CPU has it).
 */
#include <htscodecs/rANS_static4x16.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BLOCK (1u << 20)

/* Thread CPU time (time the scheduler gives other processes does not count), or wall time with
 * TILEANS_BENCH_WALL=1: the same clock as the tileans benchmark. */
static double now(void) {
    struct timespec ts;
    clock_gettime(getenv("TILEANS_BENCH_WALL") ? CLOCK_MONOTONIC : CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s PLANE_FILE [REPS] [avx2|avx512|sse4|scalar|auto]\n", argv[0]);
        return 2;
    }
    int reps = argc > 2 ? atoi(argv[2]) : 7;
    const char *level = argc > 3 ? argv[3] : "avx2";
    int cpu = 0;
    if (!strcmp(level, "avx2")) cpu = RANS_CPU_ENC_AVX2 | RANS_CPU_DEC_AVX2;
    else if (!strcmp(level, "avx512")) cpu = RANS_CPU_ENC_AVX512 | RANS_CPU_DEC_AVX512;
    else if (!strcmp(level, "sse4")) cpu = RANS_CPU_ENC_SSE4 | RANS_CPU_DEC_SSE4;
    else if (!strcmp(level, "scalar")) cpu = 0;
    else if (!strcmp(level, "auto")) cpu = -1;
    else { fprintf(stderr, "unknown level %s\n", level); return 2; }
    if (cpu >= 0) rans_set_cpu(cpu);

    FILE *f = fopen(argv[1], "rb");
    if (!f) { perror(argv[1]); return 1; }
    fseek(f, 0, SEEK_END);
    size_t n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *in = malloc(n + 1), *dec = malloc(n + 1);
    if (!in || !dec || fread(in, 1, n, f) != n) { fprintf(stderr, "read failed\n"); return 1; }
    fclose(f);

    size_t nblocks = (n + BLOCK - 1) / BLOCK;
    unsigned char **comp = calloc(nblocks, sizeof *comp);
    unsigned int *clen = calloc(nblocks, sizeof *clen);
    size_t total = 0;
    int order = RANS_ORDER_X32; /* order 0, 32-way */
    double enc_best = 1e30;
    for (int r = 0; r < 3; r++) {
        double t0 = now();
        total = 0;
        for (size_t b = 0; b < nblocks; b++) {
            unsigned int len = (unsigned int)(b + 1 < nblocks ? BLOCK : n - b * BLOCK);
            unsigned int bound = rans_compress_bound_4x16(len, order);
            if (!comp[b]) comp[b] = malloc(bound);
            clen[b] = bound;
            if (!rans_compress_to_4x16(in + b * BLOCK, len, comp[b], &clen[b], order)) {
                fprintf(stderr, "compress failed\n");
                return 1;
            }
            total += clen[b];
        }
        double t = now() - t0;
        if (t < enc_best) enc_best = t;
    }
    double best = 1e30;
    for (int r = 0; r < reps + 1; r++) {
        double t0 = now();
        for (size_t b = 0; b < nblocks; b++) {
            unsigned int olen = (unsigned int)(b + 1 < nblocks ? BLOCK : n - b * BLOCK);
            if (!rans_uncompress_to_4x16(comp[b], clen[b], dec + b * BLOCK, &olen)) {
                fprintf(stderr, "uncompress failed\n");
                return 1;
            }
        }
        double t = now() - t0;
        if (r > 0 && t < best) best = t; /* pass 0 warms up */
    }
    if (memcmp(in, dec, n)) { fprintf(stderr, "round trip mismatch\n"); return 1; }
    printf("{\"tool\": \"htscodecs\", \"codec\": \"rans_4x16 RANS_ORDER_X32 (order 0, 32-way)\", \"simd\": \"%s\", "
           "\"block_bytes\": %u, \"symbols\": %zu, \"compressed_bytes\": %zu, \"bits_per_symbol\": %.4f, "
           "\"reps\": %d, \"clock\": \"%s\", \"decode_s\": %.6f, \"decode_Gsymps\": %.4f, \"encode_s\": %.6f, \"encode_Gsymps\": %.4f}\n",
           level, BLOCK, n, total, 8.0 * total / n, reps,
           getenv("TILEANS_BENCH_WALL") ? "wall time" : "thread CPU time", best, n / best / 1e9, enc_best, n / enc_best / 1e9);
    return 0;
}
