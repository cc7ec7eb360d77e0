// Checks that include/tileans.h is valid C++ (C++11) with the same layout as in C, and that the
// library is callable from C++: a small tensor is encoded, parsed and decoded.
//
// Run by ffi/tests/c_abi.rs (`cargo test -p tileans-ffi`); exit status 0 when every check passes.
#include "tileans.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <type_traits>
#include <vector>

static_assert(std::is_same<std::underlying_type<tileans_result>::type, uint32_t>::value,
              "tileans_result is a uint32_t enum");
static_assert(std::is_same<std::underlying_type<tileans_elem>::type, uint32_t>::value,
              "tileans_elem is a uint32_t enum");
static_assert(sizeof(tileans_tile_extent) == 24, "tile extent layout");
static_assert(offsetof(tileans_tile_extent, col0) == 8, "tile extent layout");
static_assert(offsetof(tileans_tile_extent, rows) == 16, "tile extent layout");
static_assert(offsetof(tileans_tile_extent, cols) == 20, "tile extent layout");
static_assert(sizeof(tileans_encode_options) == 28, "encode options layout");
static_assert(offsetof(tileans_encode_options, adapt_tile_shape) == 24, "encode options layout");
static_assert(std::is_standard_layout<tileans_encode_options>::value, "plain struct");
static_assert(TILEANS_ELEM_BF16 == 1 && TILEANS_ELEM_BYTES == 9, "format codes");
static_assert(TILEANS_OK == 0, "success is 0");

namespace {

int failures = 0;

void expect(bool ok, const char *what) {
    if (!ok) {
        std::fprintf(stderr, "header_compiles.cpp: check failed: %s\n", what);
        ++failures;
    }
}

// Owns a frame handle (the pairing of parse and free that C++ callers would write).
struct FrameHandle {
    tileans_frame *f = nullptr;
    FrameHandle() = default;
    FrameHandle(const FrameHandle &) = delete;
    FrameHandle &operator=(const FrameHandle &) = delete;
    ~FrameHandle() { tileans_frame_free(f); }
};

}  // namespace

int main() {
    expect(std::strlen(tileans_version()) > 0, "version string");

    // A 100 x 300 U8 tensor with a skewed distribution.
    const uint64_t shape[2] = {100, 300};
    std::vector<uint8_t> data(100 * 300);
    uint32_t x = 12345;
    for (auto &b : data) {
        x = x * 1103515245u + 12345u;
        b = static_cast<uint8_t>((x >> 16) % 7 * (x >> 29));
    }

    tileans_encode_options opts;
    tileans_encode_options_default(&opts);
    opts.tile_rows = 32;
    opts.tile_cols = 64;
    std::size_t bound = 0;
    tileans_result rc = tileans_encode_bound(TILEANS_ELEM_U8, shape, 2, &opts, &bound);
    expect(rc == TILEANS_OK, "encode_bound");
    std::vector<uint8_t> frame(bound);
    std::size_t frame_len = 0;
    rc = tileans_encode(data.data(), data.size(), TILEANS_ELEM_U8, shape, 2, &opts, frame.data(),
                        frame.size(), &frame_len);
    expect(rc == TILEANS_OK, tileans_result_message(rc));
    expect(frame_len > 0 && frame_len <= bound, "frame length within the bound");

    FrameHandle h;
    rc = tileans_frame_parse(frame.data(), frame_len, &h.f);
    expect(rc == TILEANS_OK && h.f != nullptr, "parse");
    if (h.f == nullptr) return 1;
    expect(tileans_frame_elem_type(h.f) == TILEANS_ELEM_U8, "element type");
    expect(tileans_frame_num_tiles(h.f) == 4 * 5, "tiles");

    std::vector<uint8_t> out(tileans_frame_decoded_size(h.f));
    rc = tileans_frame_decode(h.f, out.data(), out.size());
    expect(rc == TILEANS_OK && out == data, "decode");

    tileans_tile_extent e{};
    rc = tileans_frame_tile(h.f, 19, &e);
    expect(rc == TILEANS_OK && e.row0 == 96 && e.col0 == 256 && e.rows == 4 && e.cols == 44,
           "last tile extent");

    FrameHandle empty;
    rc = tileans_frame_parse(nullptr, 0, &empty.f);
    expect(rc == TILEANS_ERR_TRUNCATED && empty.f == nullptr, "empty input");
    expect(std::strcmp(tileans_result_message(TILEANS_ERR_NULL_ARGUMENT),
                       "a required pointer argument is NULL") == 0,
           "message");

    if (failures == 0) std::printf("C++: header compiles, library callable\n");
    return failures == 0 ? 0 : 1;
}
