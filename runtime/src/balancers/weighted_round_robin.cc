// weighted_round_robin: nginx's smooth weighted round robin. Each step, every endpoint's
// `current` grows by its weight; the largest (the first of equals) is picked and loses the
// total. It interleaves: weights {5,1,1} give a a b a c a a, not a a a a a b c.
//
// The sequence is periodic (period = the sum of the weights after dividing by their gcd), so
// Update computes one period into a table and a pick is one atomic increment and one lookup:
// O(1) at any endpoint count, where running the algorithm per pick costs O(n).
//
// Approximation: the table is capped at kMaxTableSize entries (or one per endpoint, if there
// are more). When the reduced weights sum to more, they are scaled down to sum to about the
// cap, each rounded to the nearest integer and kept at least 1. An endpoint's share is then off
// by at most about half a slot, i.e. 0.5 / kMaxTableSize of the traffic (0.003%), and an
// endpoint with a tiny weight among huge ones gets one slot per period rather than none.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include "balancers/backend_table.h"
#include "balancers/builtin.h"

namespace fulcrum::balancers {
namespace {

constexpr uint64_t kMaxTableSize = 16384;

// Weights reduced by their gcd, then scaled to fit the table cap.
std::vector<uint64_t> TableWeights(std::span<const Entry> a) {
  uint64_t g = 0;
  for (const Entry& e : a) g = std::gcd(g, static_cast<uint64_t>(e.weight));
  std::vector<uint64_t> w;
  w.reserve(a.size());
  uint64_t sum = 0;
  for (const Entry& e : a) {
    w.push_back(e.weight / g);
    sum += w.back();
  }
  const uint64_t cap = std::max<uint64_t>(kMaxTableSize, a.size());
  if (sum <= cap) return w;
  const double scale = static_cast<double>(cap) / static_cast<double>(sum);
  for (uint64_t& x : w) {
    x = std::max<uint64_t>(1, static_cast<uint64_t>(std::llround(static_cast<double>(x) * scale)));
  }
  return w;
}

class WeightedRoundRobinPicker final : public Picker {
 public:
  WeightedRoundRobinPicker(BackendTable table, const BalancerContext& ctx)
      : table_(std::move(table)) {
    BuildSequence();
    next_.store(ctx.rng().Uniform(sequence_.size()), std::memory_order_relaxed);
  }

  PickResult Pick(const PickArgs& args) const override {
    const uint64_t slot = next_.fetch_add(1, std::memory_order_relaxed) % sequence_.size();
    const Backend* b = table_.active()[sequence_[slot]].backend;
    if (args.excluded.empty() || !args.IsExcluded(b)) return {b};
    return {NextAllowed(args, slot)};
  }

 private:
  // Slow path: a retry takes the next turns of the sequence, so retries keep the weights
  // among what is left. Bounded; then the plain scan (which also covers spare endpoints).
  const Backend* NextAllowed(const PickArgs& args, uint64_t slot) const {
    for (int tries = 0; tries < 16; ++tries) {
      const uint64_t s = next_.fetch_add(1, std::memory_order_relaxed) % sequence_.size();
      const Backend* b = table_.active()[sequence_[s]].backend;
      if (!args.IsExcluded(b)) return b;
    }
    return table_.FirstAllowed(args, sequence_[slot] + 1);
  }

  void BuildSequence() {
    const std::vector<uint64_t> w = TableWeights(table_.active());
    const size_t n = w.size();
    const int64_t total = static_cast<int64_t>(std::accumulate(w.begin(), w.end(), uint64_t{0}));
    std::vector<int64_t> current(n, 0);
    sequence_.resize(static_cast<size_t>(total));
    for (int64_t step = 0; step < total; ++step) {
      size_t best = 0;
      for (size_t i = 0; i < n; ++i) {
        current[i] += static_cast<int64_t>(w[i]);
        if (current[i] > current[best]) best = i;
      }
      current[best] -= total;
      sequence_[static_cast<size_t>(step)] = static_cast<uint32_t>(best);
    }
  }

  const BackendTable table_;
  std::vector<uint32_t> sequence_;  // one period of indices into table_.active()
  alignas(64) mutable std::atomic<uint64_t> next_{0};
};

}  // namespace

std::unique_ptr<Balancer> NewWeightedRoundRobinBalancer(const BalancerContext& ctx) {
  return std::make_unique<StatelessBalancer<WeightedRoundRobinPicker>>(ctx);
}

}  // namespace fulcrum::balancers
