// Local (CPU-only) check of the host coder and of the kernel's word-ring protocol, emulated lane
// by lane. Build: g++ -O2 -std=c++17 host_check.cpp -o /tmp/host_check
#include "rans_host.h"
#include <cassert>
#include <cstdlib>

// Emulates decode_kernel<N, ILP=1, U, DIRECT=false> for one tile: returns 0 if equal to sym.
static int emulate(const ta::Table& t, const uint16_t* words, uint32_t nw, const uint32_t st[32], int N, int U,
                   const uint8_t* sym) {
  const int SEG = 256, RING = 512;
  uint16_t ring[512];
  uint32_t x[32];
  for (int l = 0; l < 32; ++l) x[l] = st[l];
  for (int i = 0; i < 512; ++i) ring[i] = words[i];
  uint32_t loaded = 512, pos = 0;
  const uint16_t* pf = words + 512;  // segment [loaded, loaded+256)
  int maxread = 0;
  for (int b = 0; b < N / 32 / U; ++b) {
    if (pos + 32 * U > loaded) {
      // slot being overwritten holds [loaded-512, loaded-256): must be consumed
      if (pos < loaded - 256) return 10;
      for (int i = 0; i < SEG; ++i) ring[(loaded & (RING - 1)) + i] = pf[i];
      loaded += SEG;
      pf = words + loaded;
    }
    for (int u = 0; u < U; ++u) {
      int step = b * U + u;
      uint32_t xn[32];
      bool need[32];
      uint32_t m = 0;
      for (int l = 0; l < 32; ++l) {
        uint32_t e = t.lut[x[l] & 4095];
        if ((e & 0xFF) != sym[step * 32 + l]) return 1;
        xn[l] = ((e >> 20) + 1) * (x[l] >> 12) + ((e >> 8) & 0xFFF);
        need[l] = xn[l] < ta::kL;
        if (need[l]) m |= 1u << l;
      }
      for (int l = 0; l < 32; ++l) {
        uint32_t idx = pos + __builtin_popcount(m & ((1u << l) - 1));
        if (need[l]) {
          if (idx >= loaded || idx + 512 < loaded + 0 || idx < loaded - 512) return 11;
          maxread = std::max<int>(maxread, (int)(idx - pos));
        }
        uint32_t w = ring[idx & (RING - 1)];
        x[l] = need[l] ? ((xn[l] << 16) | w) : xn[l];
      }
      pos += __builtin_popcount(m);
    }
  }
  for (int l = 0; l < 32; ++l)
    if (x[l] != ta::kL) return 2;
  if (pos != nw) return 3;
  // staged global reads reach words + loaded + 256: must be within the padding used by the bench
  if (loaded + 256 > nw + 8 + 4 * 512) return 4;
  return 0;
}

int main() {
  const size_t n = size_t(1) << 22;
  std::vector<uint16_t> bf(n);
  ta::gen_weights(bf.data(), n, 1);
  std::vector<uint8_t> sym(n), raw(n);
  uint64_t cnt[256] = {0};
  for (size_t i = 0; i < n; ++i) {
    sym[i] = ta::bf16_sym(bf[i]);
    raw[i] = ta::bf16_raw(bf[i]);
    if (ta::join(sym[i], raw[i]) != bf[i]) { printf("join fail\n"); return 1; }
    cnt[sym[i]]++;
  }
  ta::Table t = ta::build_table(cnt);
  double H = 0, X = 0;
  int used = 0;
  uint32_t fs = 0;
  for (int s = 0; s < 256; ++s) {
    fs += t.freq[s];
    if (!cnt[s]) continue;
    double p = (double)cnt[s] / n;
    H -= p * std::log2(p);
    X -= p * std::log2(t.freq[s] / 4096.0);
    used++;
  }
  printf("used %d H %.4f X %.4f sumfreq %u\n", used, H, X, fs);
  for (int N : {4096, 8192, 16384, 32768, 65536}) {
    size_t tiles = n / N, tw = 0;
    for (size_t ti = 0; ti < tiles; ++ti) {
      std::vector<uint16_t> w(N + 4096, 0);
      uint32_t st[32];
      size_t nw = ta::encode_tile(t, &sym[ti * N], N, w.data(), st);
      tw += nw;
      std::vector<uint8_t> dec(N);
      int rc = ta::decode_tile_ref(t, w.data(), nw, st, N, dec.data());
      if (rc || memcmp(dec.data(), &sym[ti * N], N)) { printf("ref fail N=%d tile %zu rc %d\n", N, ti, rc); return 1; }
      for (int U : {4, 8}) {
        int e = emulate(t, w.data(), (uint32_t)nw, st, N, U, &sym[ti * N]);
        if (e) { printf("emu fail N=%d U=%d tile %zu rc %d\n", N, U, ti, e); return 1; }
      }
    }
    printf("N=%d bits/sym %.4f (payload %.4f)\n", N, (tw * 16.0 + tiles * 1024.0) / n, tw * 16.0 / n);
  }
  printf("host check passed\n");
  return 0;
}
