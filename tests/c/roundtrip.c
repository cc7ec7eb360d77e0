/*
 * Round-trips one tensor through the C interface of tileans (include/tileans.h and the static
 * library): encode, parse, inspect, decode whole and tile by tile, compare bytes, and check that
 * corrupt, truncated and garbage input and bad arguments give error codes.
 *
 * Usage: roundtrip RAW_FILE ELEM_CODE TILE_ROWS TILE_COLS DIM...
 *   RAW_FILE   the tensor's bytes (native little-endian layout, row-major)
 *   ELEM_CODE  a tileans_elem code (1 = BF16, ...)
 *   TILE_ROWS, TILE_COLS  tile shape for the encoder; 0 keeps the default
 *   DIM...     the shape (none for a scalar)
 *
 * Run by ffi/tests/c_abi.rs (`cargo test -p tileans-ffi`). Exit status 0 when every check passes;
 * otherwise a message naming the failed check on stderr and status 1.
 */
#include "tileans.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The layout the CUDA header and other C users rely on (C99: no _Static_assert). */
typedef char check_extent_size[sizeof(tileans_tile_extent) == 24 ? 1 : -1];
typedef char check_options_size[sizeof(tileans_encode_options) == 7 * sizeof(uint32_t) ? 1 : -1];
typedef char check_result_size[sizeof(tileans_result) == sizeof(uint32_t) ? 1 : -1];

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "roundtrip.c:%d: ", __LINE__);                                             \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
        exit(1);                                                                                   \
    } while (0)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) FAIL("check failed: %s", #cond);                                              \
    } while (0)

/* Evaluate a call returning tileans_result and compare it with the expected code. */
#define EXPECT(want, call)                                                                         \
    do {                                                                                           \
        tileans_result rc_ = (call);                                                               \
        if (rc_ != (want))                                                                         \
            FAIL("%s returned %u (%s), expected %u (%s)", #call, (unsigned)rc_,                    \
                 tileans_result_message(rc_), (unsigned)(want), tileans_result_message(want));     \
    } while (0)

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) FAIL("out of memory (%lu bytes)", (unsigned long)n);
    return p;
}

static uint8_t *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    long n;
    uint8_t *buf;
    if (!f) FAIL("cannot open %s", path);
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        FAIL("cannot size %s", path);
    buf = (uint8_t *)xmalloc((size_t)n);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) FAIL("cannot read %s", path);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static uint64_t ceil_div(uint64_t a, uint64_t b) { return a / b + (a % b != 0); }

/* Decoding a damaged copy of the frame must fail, never crash or succeed. */
static void check_damage(const uint8_t *frame, size_t frame_len, size_t decoded_size) {
    uint8_t *copy = (uint8_t *)xmalloc(frame_len + 1);
    uint8_t *out = (uint8_t *)xmalloc(decoded_size);
    tileans_frame *f = NULL;
    size_t positions[3];
    size_t i;

    /* A changed header byte (here in the dims) is caught by the header checksum at parse. */
    memcpy(copy, frame, frame_len);
    copy[40] ^= 0x01;
    EXPECT(TILEANS_ERR_HEADER_CHECKSUM, tileans_frame_parse(copy, frame_len, &f));
    CHECK(f == NULL);

    /* A changed payload byte parses (the payload is checked while decoding) but cannot decode:
     * the tile checks or the content checksum catch it. */
    positions[0] = frame_len / 2;
    positions[1] = frame_len - frame_len / 5;
    positions[2] = frame_len - 1;
    for (i = 0; i < 3; i++) {
        tileans_result rc;
        memcpy(copy, frame, frame_len);
        copy[positions[i]] ^= 0x5A;
        EXPECT(TILEANS_OK, tileans_frame_parse(copy, frame_len, &f));
        rc = tileans_frame_decode(f, out, decoded_size);
        if (rc != TILEANS_ERR_CORRUPT && rc != TILEANS_ERR_CONTENT_CHECKSUM)
            FAIL("payload byte %lu changed: decode returned %u (%s)", (unsigned long)positions[i],
                 (unsigned)rc, tileans_result_message(rc));
        tileans_frame_free(f);
    }

    /* Truncated, and with a trailing byte. */
    memcpy(copy, frame, frame_len);
    copy[frame_len] = 0;
    EXPECT(TILEANS_ERR_TRUNCATED, tileans_frame_parse(copy, frame_len - 1, &f));
    CHECK(f == NULL);
    EXPECT(TILEANS_ERR_TRUNCATED, tileans_frame_parse(copy, 16, &f));
    EXPECT(TILEANS_ERR_PAYLOAD_LENGTH, tileans_frame_parse(copy, frame_len + 1, &f));
    CHECK(f == NULL);

    /* Garbage. */
    for (i = 0; i < frame_len; i++) copy[i] = (uint8_t)(i * 131u + 7u);
    EXPECT(TILEANS_ERR_BAD_MAGIC, tileans_frame_parse(copy, frame_len, &f));
    memcpy(copy, frame, 4); /* right magic, garbage after it */
    CHECK(tileans_frame_parse(copy, frame_len, &f) != TILEANS_OK);
    CHECK(f == NULL);
    EXPECT(TILEANS_ERR_TRUNCATED, tileans_frame_parse(copy, 0, &f));

    free(out);
    free(copy);
}

/* NULL pointers and invalid integers give error codes. */
static void check_bad_arguments(const uint8_t *data, size_t data_len, uint32_t elem,
                                const uint64_t *dims, size_t rank) {
    tileans_frame *f = (tileans_frame *)&f; /* must be overwritten with NULL */
    size_t n = 0;
    uint32_t r, c;
    tileans_encode_options opts;

    EXPECT(TILEANS_ERR_NULL_ARGUMENT, tileans_frame_parse(NULL, 100, &f));
    CHECK(f == NULL);
    EXPECT(TILEANS_ERR_NULL_ARGUMENT, tileans_frame_parse(data, data_len, NULL));
    tileans_frame_free(NULL);
    CHECK(tileans_frame_elem_type(NULL) == 0);
    CHECK(tileans_frame_num_tiles(NULL) == 0);
    CHECK(tileans_frame_decoded_size(NULL) == 0);
    CHECK(!tileans_frame_has_content_checksum(NULL));
    EXPECT(TILEANS_ERR_NULL_ARGUMENT, tileans_frame_tile_shape(NULL, &r, &c));
    EXPECT(TILEANS_ERR_NULL_ARGUMENT, tileans_frame_decode(NULL, NULL, 0));

    EXPECT(TILEANS_ERR_UNKNOWN_ELEM_TYPE, tileans_encode_bound(0, dims, rank, NULL, &n));
    EXPECT(TILEANS_ERR_UNKNOWN_ELEM_TYPE, tileans_encode_bound(10, dims, rank, NULL, &n));
    EXPECT(TILEANS_ERR_UNKNOWN_ELEM_TYPE, tileans_encode_bound(0x100 + elem, dims, rank, NULL, &n));
    EXPECT(TILEANS_ERR_BAD_RANK, tileans_encode_bound(elem, dims, TILEANS_MAX_RANK + 1, NULL, &n));
    EXPECT(TILEANS_ERR_NULL_ARGUMENT, tileans_encode_bound(elem, NULL, 2, NULL, &n));
    EXPECT(TILEANS_ERR_NULL_ARGUMENT, tileans_encode_bound(elem, dims, rank, NULL, NULL));
    EXPECT(TILEANS_ERR_NULL_ARGUMENT,
           tileans_encode(NULL, data_len, elem, dims, rank, NULL, NULL, 0, &n));
    EXPECT(TILEANS_ERR_BUFFER_SIZE,
           tileans_encode(data, data_len - 1, elem, dims, rank, NULL, NULL, 0, &n));

    tileans_encode_options_default(NULL);
    tileans_encode_options_default(&opts);
    opts.tile_rows = 0;
    EXPECT(TILEANS_ERR_BAD_TILE_SHAPE, tileans_encode_bound(elem, dims, rank, &opts, &n));
    tileans_encode_options_default(&opts);
    opts.scale_bits = 13;
    EXPECT(TILEANS_ERR_BAD_SCALE_BITS, tileans_encode_bound(elem, dims, rank, &opts, &n));
    tileans_encode_options_default(&opts);
    opts.content_checksum = 2;
    EXPECT(TILEANS_ERR_BAD_OPTION,
           tileans_encode(data, data_len, elem, dims, rank, &opts, NULL, 0, &n));

    CHECK(strcmp(tileans_result_message(12345), "unknown result code") == 0);
    CHECK(strcmp(tileans_result_message(TILEANS_OK), "success") == 0);
}

int main(int argc, char **argv) {
    const char *path;
    uint32_t elem;
    uint64_t dims[TILEANS_MAX_RANK], got_dims[TILEANS_MAX_RANK];
    size_t rank, got_rank, data_len, bound, frame_len, needed, decoded_size, tile_bytes_total;
    uint8_t *data, *frame, *decoded, *tile_buf;
    tileans_encode_options opts;
    tileans_frame *f = NULL;
    uint32_t tile_rows, tile_cols;
    uint64_t rows, cols, grid_rows, grid_cols, tiles, elements, t;
    size_t unit, i;
    char version[64];

    if (argc < 5 || (size_t)(argc - 5) > TILEANS_MAX_RANK) {
        fprintf(stderr, "usage: %s RAW_FILE ELEM_CODE TILE_ROWS TILE_COLS DIM...\n", argv[0]);
        return 2;
    }
    path = argv[1];
    elem = (uint32_t)strtoul(argv[2], NULL, 10);
    rank = (size_t)(argc - 5);
    elements = 1;
    for (i = 0; i < rank; i++) {
        dims[i] = (uint64_t)strtoull(argv[5 + i], NULL, 10);
        elements *= dims[i];
    }
    data = read_file(path, &data_len);

    snprintf(version, sizeof version, "%d.%d.%d", TILEANS_VERSION_MAJOR, TILEANS_VERSION_MINOR,
             TILEANS_VERSION_PATCH);
    CHECK(strcmp(tileans_version(), version) == 0);

    /* Options: defaults, then the tile shape asked for. */
    tileans_encode_options_default(&opts);
    CHECK(opts.tile_rows > 0 && opts.tile_cols > 0 && opts.scale_bits == 12);
    CHECK(opts.content_checksum == 1 && opts.dense == 0 && opts.adapt_tile_shape == 1);
    if (atoi(argv[3]) > 0) opts.tile_rows = (uint32_t)atoi(argv[3]);
    if (atoi(argv[4]) > 0) opts.tile_cols = (uint32_t)atoi(argv[4]);

    /* Encode: size query, bound, too-small buffer, then for real. */
    EXPECT(TILEANS_OK, tileans_encode_bound(elem, dims, rank, &opts, &bound));
    CHECK(bound >= data_len);
    needed = 0;
    EXPECT(TILEANS_ERR_BUFFER_TOO_SMALL,
           tileans_encode(data, data_len, elem, dims, rank, &opts, NULL, 0, &needed));
    CHECK(needed > 0 && needed <= bound);
    frame = (uint8_t *)xmalloc(bound);
    frame_len = 0;
    EXPECT(TILEANS_ERR_BUFFER_TOO_SMALL,
           tileans_encode(data, data_len, elem, dims, rank, &opts, frame, needed - 1, &frame_len));
    CHECK(frame_len == needed);
    frame_len = 0;
    EXPECT(TILEANS_OK, tileans_encode(data, data_len, elem, dims, rank, &opts, frame, bound, &frame_len));
    CHECK(frame_len == needed);
    EXPECT(TILEANS_ERR_INVALID_ARGUMENT, /* output overlapping the input */
           tileans_encode(data, data_len, elem, dims, rank, &opts, data + 1, data_len - 1, &needed));

    /* Parse and inspect. */
    EXPECT(TILEANS_OK, tileans_frame_parse(frame, frame_len, &f));
    CHECK(f != NULL);
    CHECK(tileans_frame_elem_type(f) == elem);
    CHECK(tileans_frame_rank(f) == rank);
    EXPECT(TILEANS_OK, tileans_frame_shape(f, got_dims, TILEANS_MAX_RANK, &got_rank));
    CHECK(got_rank == rank);
    for (i = 0; i < rank; i++) CHECK(got_dims[i] == dims[i]);
    if (rank > 0) {
        EXPECT(TILEANS_ERR_BUFFER_TOO_SMALL, tileans_frame_shape(f, got_dims, rank - 1, &got_rank));
        CHECK(got_rank == rank);
    }
    CHECK(tileans_frame_elements(f) == elements);
    decoded_size = tileans_frame_decoded_size(f);
    CHECK(decoded_size == data_len);
    CHECK(tileans_frame_has_content_checksum(f));
    EXPECT(TILEANS_OK, tileans_frame_tile_shape(f, &tile_rows, &tile_cols));
    EXPECT(TILEANS_OK, tileans_frame_matrix(f, &rows, &cols));
    EXPECT(TILEANS_OK, tileans_frame_grid(f, &grid_rows, &grid_cols));
    tiles = tileans_frame_num_tiles(f);
    CHECK(rows * cols > 0); /* the tests use non-empty tensors */
    CHECK(grid_rows == ceil_div(rows, tile_rows) && grid_cols == ceil_div(cols, tile_cols));
    CHECK(tiles == grid_rows * grid_cols);
    unit = decoded_size / (size_t)(rows * cols);
    CHECK(unit * rows * cols == decoded_size);

    /* Whole-tensor decode. */
    decoded = (uint8_t *)xmalloc(decoded_size + 1);
    EXPECT(TILEANS_ERR_BUFFER_TOO_SMALL, tileans_frame_decode(f, decoded, decoded_size - 1));
    memset(decoded, 0xEE, decoded_size + 1);
    EXPECT(TILEANS_OK, tileans_frame_decode(f, decoded, decoded_size + 1));
    CHECK(memcmp(decoded, data, data_len) == 0);
    CHECK(decoded[decoded_size] == 0xEE); /* nothing written past the decoded size */
    EXPECT(TILEANS_ERR_INVALID_ARGUMENT, tileans_frame_decode(f, frame, frame_len));

    /* Tile by tile: each tile's rows must equal the matching part of the tensor. */
    tile_buf = (uint8_t *)xmalloc((size_t)tile_rows * tile_cols * unit);
    tile_bytes_total = 0;
    for (t = 0; t < tiles; t++) {
        tileans_tile_extent e;
        size_t tile_size, r;
        EXPECT(TILEANS_OK, tileans_frame_tile(f, t, &e));
        CHECK(e.row0 == (t / grid_cols) * tile_rows && e.col0 == (t % grid_cols) * tile_cols);
        CHECK(e.rows >= 1 && e.rows <= tile_rows && e.row0 + e.rows <= rows);
        CHECK(e.cols >= 1 && e.cols <= tile_cols && e.col0 + e.cols <= cols);
        EXPECT(TILEANS_OK, tileans_frame_tile_decoded_size(f, t, &tile_size));
        CHECK(tile_size == (size_t)e.rows * e.cols * unit);
        if (tile_size > 0)
            EXPECT(TILEANS_ERR_BUFFER_TOO_SMALL, tileans_frame_decode_tile(f, t, tile_buf, tile_size - 1));
        EXPECT(TILEANS_OK, tileans_frame_decode_tile(f, t, tile_buf, tile_size));
        for (r = 0; r < e.rows; r++) {
            const uint8_t *want = data + ((e.row0 + r) * cols + e.col0) * unit;
            if (memcmp(tile_buf + r * e.cols * unit, want, e.cols * unit) != 0)
                FAIL("tile %lu row %lu differs from the input", (unsigned long)t, (unsigned long)r);
        }
        tile_bytes_total += tile_size;
    }
    CHECK(tile_bytes_total == decoded_size);
    {
        tileans_tile_extent e;
        EXPECT(TILEANS_ERR_TILE_OUT_OF_RANGE, tileans_frame_tile(f, tiles, &e));
        EXPECT(TILEANS_ERR_TILE_OUT_OF_RANGE, tileans_frame_decode_tile(f, tiles, tile_buf, 1));
    }

    /* The device images (docs/FORMAT.md section 11, version 2 in 11.1) of a BF16 or F16 frame:
     * built, then decoded by the CPU reference decoder to the same tensor; other element types
     * are refused. */
    {
        typedef tileans_result (*image_builder)(const tileans_frame *, uint8_t *, size_t, size_t *);
        const image_builder builders[2] = {tileans_image_build, tileans_image_build_pairs};
        int version;
        for (version = 1; version <= 2; version++) {
            const image_builder build = builders[version - 1];
            size_t image_len = 0;
            uint8_t *image;
            if (elem != TILEANS_ELEM_BF16 && elem != TILEANS_ELEM_F16) {
                EXPECT(TILEANS_ERR_BAD_OPTION, build(f, NULL, 0, &image_len));
                continue;
            }
            EXPECT(TILEANS_ERR_BUFFER_TOO_SMALL, build(f, NULL, 0, &image_len));
            CHECK(image_len > 64);
            image = (uint8_t *)xmalloc(image_len);
            EXPECT(TILEANS_OK, build(f, image, image_len, &image_len));
            CHECK(image[4] == version && image[5] == 0);
            memset(decoded, 0xEE, decoded_size + 1);
            EXPECT(TILEANS_OK, tileans_image_decode(image, image_len, decoded, decoded_size));
            CHECK(memcmp(decoded, data, data_len) == 0);
            {
                /* tile 0's first lane state: an ANS tile must then fail its checks */
                size_t index_at = 64, rec0 = 0;
                int k;
                index_at += (size_t)image[44] | (size_t)image[45] << 8 | (size_t)image[46] << 16 |
                            (size_t)image[47] << 24;
                for (k = 7; k >= 0; k--) rec0 = rec0 << 8 | image[index_at + (size_t)k];
                if ((image[index_at + 8] & 3) == 1) {
                    image[rec0 + 1] ^= 0x40;
                    EXPECT(TILEANS_ERR_CORRUPT, tileans_image_decode(image, image_len, decoded, decoded_size));
                }
            }
            EXPECT(TILEANS_ERR_TRUNCATED, tileans_image_decode(image, 40, decoded, decoded_size));
            printf("device image version %d: %lu bytes (%.3f bits/element)\n", version, (unsigned long)image_len,
                   8.0 * (double)image_len / (double)elements);
            free(image);
        }
    }

    printf("%lu bytes -> %lu (bound %lu): %.3f bits/element, %lu tiles of %lux%lu in a %lux%lu matrix\n",
           (unsigned long)data_len, (unsigned long)frame_len, (unsigned long)bound,
           8.0 * (double)frame_len / (double)elements, (unsigned long)tiles, (unsigned long)tile_rows,
           (unsigned long)tile_cols, (unsigned long)rows, (unsigned long)cols);

    tileans_frame_free(f);
    check_damage(frame, frame_len, decoded_size);
    check_bad_arguments(data, data_len, elem, dims, rank);

    free(tile_buf);
    free(decoded);
    free(frame);
    free(data);
    return 0;
}
