// Random: the runtime's only source of randomness, injected so tests can be seeded.
//
//   fulcrum::Random& rng = fulcrum::Random::ThreadLocal();
//   uint64_t i = rng.Uniform(n);  // in [0, n)
//
// Random::ThreadLocal() is safe from any thread (one generator per thread). A SeededRandom is
// deterministic and NOT thread-safe: give each test thread its own.
#pragma once

#include <cstdint>

namespace fulcrum {

class Random {
 public:
  virtual ~Random() = default;
  virtual uint64_t Next() = 0;

  // Uniform in [0, n); n must be > 0. Lemire's multiply-shift: no division, bias < n / 2^64.
  uint64_t Uniform(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
  }
  // Uniform in [0, 1).
  double NextDouble() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

  // A per-thread generator seeded from std::random_device.
  static Random& ThreadLocal();
};

// wyrand: small, fast, passes BigCrush; good enough for load balancing and jitter.
class SeededRandom final : public Random {
 public:
  explicit SeededRandom(uint64_t seed) : state_(seed) {}
  uint64_t Next() override {
    state_ += 0xa0761d6478bd642fULL;
    unsigned __int128 m = static_cast<unsigned __int128>(state_) * (state_ ^ 0xe7037ed1a0b428dbULL);
    return static_cast<uint64_t>(m >> 64) ^ static_cast<uint64_t>(m);
  }

 private:
  uint64_t state_;
};

}  // namespace fulcrum
