// Hash64: a stable 64-bit hash for routing keys. Stable means the same bytes hash to the same
// value in every process and build, which std::hash does not promise; consistent hashing
// depends on it. Thread-safe (pure functions).
#pragma once

#include <cstdint>
#include <string_view>

namespace fulcrum {

// Mixes a 64-bit value (splitmix64 finaliser). Also used to derive per-attempt hashes.
constexpr uint64_t Mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// FNV-1a over the bytes, then Mix64 so that nearby keys land far apart.
constexpr uint64_t Hash64(std::string_view bytes, uint64_t seed = 0) {
  uint64_t h = 0xcbf29ce484222325ULL ^ seed;
  for (char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return Mix64(h);
}

constexpr uint64_t Hash64(uint64_t value, uint64_t seed = 0) { return Mix64(value ^ Mix64(seed)); }

}  // namespace fulcrum
