// p2c_least_loaded: power of two choices on in-flight calls. Two random endpoints, the one
// with fewer calls in flight wins (ties at random). Picking the global minimum instead would
// send a burst of calls to the same endpoint before any of them shows up in its count; two
// random choices get almost all of the benefit without that herd (Mitzenmacher).
#include "balancers/backend_table.h"
#include "balancers/builtin.h"

namespace fulcrum::balancers {
namespace {

class P2CLeastLoadedPicker final : public Picker {
 public:
  P2CLeastLoadedPicker(BackendTable table, const BalancerContext& ctx)
      : table_(std::move(table)), ctx_(ctx) {}

  PickResult Pick(const PickArgs& args) const override {
    return {PickTwoChoices(table_, args, ctx_.rng(),
                           [](const Entry& e) { return e.stats->in_flight(); })};
  }

 private:
  const BackendTable table_;
  const BalancerContext ctx_;
};

}  // namespace

std::unique_ptr<Balancer> NewP2CLeastLoadedBalancer(const BalancerContext& ctx) {
  return std::make_unique<StatelessBalancer<P2CLeastLoadedPicker>>(ctx);
}

}  // namespace fulcrum::balancers
