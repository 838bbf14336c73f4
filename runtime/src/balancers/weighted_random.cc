// weighted_random: a pick with probability proportional to the endpoint's weight, in O(1) with
// Vose's alias method: the table is built once per endpoint list (O(n)), and a pick is one
// random draw, one column, one comparison.
#include <cstdint>
#include <limits>
#include <vector>

#include "balancers/backend_table.h"
#include "balancers/builtin.h"

namespace fulcrum::balancers {
namespace {

class WeightedRandomPicker final : public Picker {
 public:
  WeightedRandomPicker(BackendTable table, const BalancerContext& ctx)
      : table_(std::move(table)), ctx_(ctx) {
    BuildAliasTable();
  }

  PickResult Pick(const PickArgs& args) const override {
    const size_t i = Draw(ctx_.rng().Next());
    const Backend* b = table_.active()[i].backend;
    if (args.excluded.empty() || !args.IsExcluded(b)) return {b};
    // Redrawing is exact and cheap when little is excluded; the O(n) draw covers the rest.
    for (int tries = 0; tries < 4; ++tries) {
      const Backend* again = table_.active()[Draw(ctx_.rng().Next())].backend;
      if (!args.IsExcluded(again)) return {again};
    }
    return {table_.RandomAllowed(args, ctx_.rng(), /*by_weight=*/true)};
  }

 private:
  struct Column {
    uint64_t threshold;  // keep the column's own index when the fraction is below this
    uint32_t alias;
  };

  // The high half of r*n picks the column; the low half, uniform in [0, 2^64), is the coin.
  size_t Draw(uint64_t r) const {
    const unsigned __int128 m = static_cast<unsigned __int128>(r) * columns_.size();
    const size_t i = static_cast<size_t>(m >> 64);
    const Column& c = columns_[i];
    return static_cast<uint64_t>(m) < c.threshold ? i : c.alias;
  }

  void BuildAliasTable() {
    const std::span<const Entry> a = table_.active();
    const size_t n = a.size();
    double total = 0;
    for (const Entry& e : a) total += e.weight;
    // Each column's share scaled so that the average is 1.
    std::vector<double> scaled(n);
    std::vector<uint32_t> small, large;
    for (size_t i = 0; i < n; ++i) {
      scaled[i] = a[i].weight * static_cast<double>(n) / total;
      (scaled[i] < 1.0 ? small : large).push_back(static_cast<uint32_t>(i));
    }
    columns_.assign(n, Column{std::numeric_limits<uint64_t>::max(), 0});
    for (size_t i = 0; i < n; ++i) columns_[i].alias = static_cast<uint32_t>(i);
    while (!small.empty() && !large.empty()) {
      const uint32_t s = small.back();
      small.pop_back();
      const uint32_t l = large.back();
      columns_[s].threshold = ToThreshold(scaled[s]);
      columns_[s].alias = l;
      scaled[l] -= 1.0 - scaled[s];
      if (scaled[l] < 1.0) {
        large.pop_back();
        small.push_back(l);
      }
    }
    // Whatever is left is 1 up to rounding: those columns keep themselves (threshold max).
  }

  static uint64_t ToThreshold(double p) {
    if (p <= 0) return 0;
    if (p >= 1) return std::numeric_limits<uint64_t>::max();
    return static_cast<uint64_t>(p * 0x1.0p64);
  }

  const BackendTable table_;
  const BalancerContext ctx_;
  std::vector<Column> columns_;
};

}  // namespace

std::unique_ptr<Balancer> NewWeightedRandomBalancer(const BalancerContext& ctx) {
  return std::make_unique<StatelessBalancer<WeightedRandomPicker>>(ctx);
}

}  // namespace fulcrum::balancers
