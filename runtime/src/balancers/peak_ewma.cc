// peak_ewma: Finagle's and Linkerd's balancer. Power of two choices on
// peak_ewma_ns * (in_flight + 1): the peak EWMA jumps to a slow sample at once and decays
// back with the EWMA time constant, so a endpoint that starts stalling is avoided after one
// slow call, and the in-flight factor keeps a fast endpoint from being herded.
#include "balancers/backend_table.h"
#include "balancers/builtin.h"
#include "balancers/latency_cost.h"

namespace fulcrum::balancers {
namespace {

class PeakEwmaPicker final : public Picker {
 public:
  PeakEwmaPicker(BackendTable table, const BalancerContext& ctx)
      : table_(std::move(table)), ctx_(ctx) {}

  PickResult Pick(const PickArgs& args) const override {
    return {PickTwoChoices(
        table_, args, ctx_.rng(),
        [](const Entry& e) { return LatencyCost(*e.stats, e.stats->peak_ewma_ns()); },
        /*probe_idle=*/true)};
  }

 private:
  const BackendTable table_;
  const BalancerContext ctx_;
};

}  // namespace

std::unique_ptr<Balancer> NewPeakEwmaBalancer(const BalancerContext& ctx) {
  return std::make_unique<StatelessBalancer<PeakEwmaPicker>>(ctx);
}

}  // namespace fulcrum::balancers
