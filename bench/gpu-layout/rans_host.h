// Throwaway benchmark helper (bench/gpu-layout): host side of the tileans rANS tile coder.
// Normative coder as in the brief: byte symbols, scale bits n = 12, u32 state, L = 2^16,
// 16-bit renormalisation words, 32 interleaved lanes per tile (symbol j -> lane j % 32).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

namespace ta {

constexpr int kScaleBits = 12;
constexpr uint32_t kM = 1u << kScaleBits;  // 4096
constexpr uint32_t kL = 1u << 16;
constexpr int kLanes = 32;

struct Table {
  uint32_t freq[256];
  uint32_t cum[256];
  std::vector<uint32_t> lut;  // 4096 entries: (f-1)<<20 | bias<<8 | sym
};

// Quantise symbol counts to frequencies summing to 4096, every present symbol >= 1.
// Greedy on the exact cost (sum count * -log2(f/4096)).
inline Table build_table(const uint64_t count[256]) {
  Table t{};
  uint64_t total = 0;
  for (int s = 0; s < 256; ++s) total += count[s];
  int64_t sum = 0;
  for (int s = 0; s < 256; ++s) {
    if (!count[s]) { t.freq[s] = 0; continue; }
    double f = (double)count[s] * kM / (double)total;
    uint32_t q = (uint32_t)std::llround(f);
    if (q < 1) q = 1;
    t.freq[s] = q;
    sum += q;
  }
  while (sum != (int64_t)kM) {
    int best = -1;
    double bestc = 0;
    for (int s = 0; s < 256; ++s) {
      if (!count[s]) continue;
      double f = t.freq[s];
      if (sum > (int64_t)kM) {  // remove one: cheapest increase
        if (t.freq[s] <= 1) continue;
        double c = count[s] * std::log2(f / (f - 1));
        if (best < 0 || c < bestc) { best = s; bestc = c; }
      } else {  // add one: largest gain
        double c = count[s] * std::log2((f + 1) / f);
        if (best < 0 || c > bestc) { best = s; bestc = c; }
      }
    }
    if (sum > (int64_t)kM) { t.freq[best]--; sum--; } else { t.freq[best]++; sum++; }
  }
  uint32_t c = 0;
  for (int s = 0; s < 256; ++s) { t.cum[s] = c; c += t.freq[s]; }
  t.lut.assign(kM, 0);
  for (int s = 0; s < 256; ++s)
    for (uint32_t k = t.cum[s]; k < t.cum[s] + t.freq[s]; ++k)
      t.lut[k] = ((t.freq[s] - 1) << 20) | ((k - t.cum[s]) << 8) | (uint32_t)s;
  return t;
}

// Encode one tile of n symbols (n % 32 == 0 not required, but used so here).
// Writes the forward word stream to words_out (returns count) and 32 final states.
inline size_t encode_tile(const Table& t, const uint8_t* sym, size_t n, uint16_t* words_out,
                          uint32_t states[kLanes]) {
  uint32_t x[kLanes];
  for (int l = 0; l < kLanes; ++l) x[l] = kL;
  size_t nw = 0;
  for (size_t jj = n; jj-- > 0;) {
    int l = (int)(jj % kLanes);
    uint32_t s = sym[jj];
    uint32_t f = t.freq[s];
    if ((uint64_t)x[l] >= ((uint64_t)f << 20)) {
      words_out[nw++] = (uint16_t)(x[l] & 0xFFFF);
      x[l] >>= 16;
    }
    x[l] = ((x[l] / f) << kScaleBits) + (x[l] % f) + t.cum[s];
  }
  std::reverse(words_out, words_out + nw);
  for (int l = 0; l < kLanes; ++l) states[l] = x[l];
  return nw;
}

// Scalar reference decoder of one tile; returns 0 when the tile decodes cleanly
// (all final states == L and every stored word consumed).
inline int decode_tile_ref(const Table& t, const uint16_t* words, size_t nwords,
                           const uint32_t states[kLanes], size_t n, uint8_t* sym_out) {
  uint32_t x[kLanes];
  for (int l = 0; l < kLanes; ++l) x[l] = states[l];
  size_t pos = 0;
  for (size_t step = 0; step * kLanes < n; ++step) {
    for (int l = 0; l < kLanes; ++l) {
      size_t j = step * kLanes + l;
      if (j >= n) break;
      uint32_t e = t.lut[x[l] & (kM - 1)];
      sym_out[j] = (uint8_t)(e & 0xFF);
      x[l] = ((e >> 20) + 1) * (x[l] >> 12) + ((e >> 8) & 0xFFF);
    }
    for (int l = 0; l < kLanes; ++l) {
      size_t j = step * kLanes + l;
      if (j >= n) break;
      if (x[l] < kL) {
        if (pos >= nwords) return 1;
        x[l] = (x[l] << 16) | words[pos++];
      }
    }
  }
  for (int l = 0; l < kLanes; ++l)
    if (x[l] != kL) return 2;
  return pos == nwords ? 0 : 3;
}

// splitmix64-seeded xoshiro256** + Box-Muller: the synthetic weights.
struct Rng {
  uint64_t s[4];
  explicit Rng(uint64_t seed) {
    for (int i = 0; i < 4; ++i) {
      seed += 0x9E3779B97F4A7C15ull;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      s[i] = z ^ (z >> 31);
    }
  }
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t next() {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 45);
    return r;
  }
  double uni() { return ((next() >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
  void normal2(double& a, double& b) {
    double u = uni(), v = uni();
    double r = std::sqrt(-2.0 * std::log(u));
    a = r * std::cos(6.283185307179586 * v);
    b = r * std::sin(6.283185307179586 * v);
  }
};

inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7FFF + ((u >> 16) & 1);
  return (uint16_t)(u >> 16);
}

// Weight w = N(0,1) * 0.1 * 2^(0.4 * N(0,1)), i.i.d. per element (a Gaussian with a
// log-normally spread scale: the exponent marginal of a typical LLM matrix, mode 0x7B).
inline void gen_weights(uint16_t* bf, size_t n, uint64_t seed) {
  Rng r(seed);
  for (size_t i = 0; i < n; ++i) {
    double a, b;
    r.normal2(a, b);
    float w = (float)(a * 0.1 * std::exp2(0.4 * b));
    bf[i] = f32_to_bf16(w);
  }
}

// bf16 = s|eeeeeeee|mmmmmmm ; rotl16(bf,1) = eeeeeeee|mmmmmmm|s = (sym << 8) | raw.
inline uint8_t bf16_sym(uint16_t b) { return (uint8_t)((b >> 7) & 0xFF); }
inline uint8_t bf16_raw(uint16_t b) { return (uint8_t)(((b & 0x7F) << 1) | (b >> 15)); }
inline uint16_t join(uint8_t sym, uint8_t raw) {
  uint32_t v = ((uint32_t)sym << 8) | raw;
  return (uint16_t)((v >> 1) | ((v & 1) << 15));
}

}  // namespace ta
