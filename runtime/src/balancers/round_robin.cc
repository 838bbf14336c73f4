// round_robin: each endpoint in turn. One atomic counter per picker, started at a random
// offset so that many clients (or many pickers after an update) do not all hit the same
// endpoint at the same moment.
#include <atomic>

#include "balancers/backend_table.h"
#include "balancers/builtin.h"

namespace fulcrum::balancers {
namespace {

class RoundRobinPicker final : public Picker {
 public:
  RoundRobinPicker(BackendTable table, const BalancerContext& ctx)
      : table_(std::move(table)), next_(ctx.rng().Uniform(table_.active().size())) {}

  PickResult Pick(const PickArgs& args) const override {
    const std::span<const Entry> a = table_.active();
    const size_t i = next_.fetch_add(1, std::memory_order_relaxed) % a.size();
    if (args.excluded.empty() || !args.IsExcluded(a[i].backend)) return {a[i].backend};
    // A retry takes the next turns, so retries spread as evenly as first attempts.
    for (int tries = 0; tries < 8; ++tries) {
      const size_t j = next_.fetch_add(1, std::memory_order_relaxed) % a.size();
      if (!args.IsExcluded(a[j].backend)) return {a[j].backend};
    }
    return {table_.FirstAllowed(args, i + 1)};
  }

 private:
  const BackendTable table_;
  // On its own cache line: every pick writes it, and the table's fields are read-mostly.
  alignas(64) mutable std::atomic<uint64_t> next_;
};

}  // namespace

std::unique_ptr<Balancer> NewRoundRobinBalancer(const BalancerContext& ctx) {
  return std::make_unique<StatelessBalancer<RoundRobinPicker>>(ctx);
}

}  // namespace fulcrum::balancers
