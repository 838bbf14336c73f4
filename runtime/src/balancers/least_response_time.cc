// least_response_time: power of two choices on the latency EWMA (scaled by the calls in
// flight; see latency_cost.h). P2C rather than the global minimum, so that the fastest
// endpoint is not herded; the EWMA reacts smoothly, where peak_ewma reacts at once to spikes.
#include "balancers/backend_table.h"
#include "balancers/builtin.h"
#include "balancers/latency_cost.h"

namespace fulcrum::balancers {
namespace {

class LeastResponseTimePicker final : public Picker {
 public:
  LeastResponseTimePicker(BackendTable table, const BalancerContext& ctx)
      : table_(std::move(table)), ctx_(ctx) {}

  PickResult Pick(const PickArgs& args) const override {
    return {PickTwoChoices(
        table_, args, ctx_.rng(),
        [](const Entry& e) { return LatencyCost(*e.stats, e.stats->ewma_ns()); },
        /*probe_idle=*/true)};
  }

 private:
  const BackendTable table_;
  const BalancerContext ctx_;
};

}  // namespace

std::unique_ptr<Balancer> NewLeastResponseTimeBalancer(const BalancerContext& ctx) {
  return std::make_unique<StatelessBalancer<LeastResponseTimePicker>>(ctx);
}

}  // namespace fulcrum::balancers
