#include "fulcrum/random.h"

#include <random>

namespace fulcrum {

Random& Random::ThreadLocal() {
  thread_local SeededRandom rng([] {
    std::random_device rd;
    return (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }());
  return rng;
}

}  // namespace fulcrum
