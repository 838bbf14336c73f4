// random: a uniform pick over the endpoints. Stateless, O(1), no shared writes: the cheapest
// balancer there is, and a fair baseline for the others.
#include "balancers/backend_table.h"
#include "balancers/builtin.h"

namespace fulcrum::balancers {
namespace {

class RandomPicker final : public Picker {
 public:
  RandomPicker(BackendTable table, const BalancerContext& ctx)
      : table_(std::move(table)), ctx_(ctx) {}

  PickResult Pick(const PickArgs& args) const override {
    const std::span<const Entry> a = table_.active();
    Random& rng = ctx_.rng();
    size_t i = ScaleToRange(rng.Next(), a.size());
    if (args.excluded.empty() || !args.IsExcluded(a[i].backend)) return {a[i].backend};
    // Redrawing is exact and cheap when little is excluded; the O(n) draw covers the rest.
    for (int tries = 0; tries < 4; ++tries) {
      i = ScaleToRange(rng.Next(), a.size());
      if (!args.IsExcluded(a[i].backend)) return {a[i].backend};
    }
    return {table_.RandomAllowed(args, ctx_.rng(), /*by_weight=*/false)};
  }

 private:
  const BackendTable table_;
  const BalancerContext ctx_;
};

}  // namespace

std::unique_ptr<Balancer> NewRandomBalancer(const BalancerContext& ctx) {
  return std::make_unique<StatelessBalancer<RandomPicker>>(ctx);
}

}  // namespace fulcrum::balancers
