// A user-defined balancer in one class (plus its picker) and one registration call.
//
// "zone_first" prefers endpoints in the caller's own zone and spreads calls over them at
// random; it falls back to every endpoint when none is local. Once registered, any channel
// selects it by name:
//
//   fulcrum::ChannelOptions options;
//   options.balancer = "zone_first";
//
// Run: build/examples/custom_balancer/custom_balancer_example
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "fulcrum/balancer.h"

namespace {

// The picker is immutable: Update builds a new one whenever the endpoint list changes, and
// Pick (the only per-call code) reads it from many threads without a lock.
class ZoneFirstPicker final : public fulcrum::Picker {
 public:
  ZoneFirstPicker(fulcrum::BackendList candidates, const fulcrum::BalancerContext& ctx)
      : candidates_(std::move(candidates)), ctx_(ctx) {}

  fulcrum::PickResult Pick(const fulcrum::PickArgs& args) const override {
    if (candidates_.empty()) return {};
    const size_t n = candidates_.size();
    const size_t start = ctx_.rng().Uniform(n);
    // Honour the backends this call already tried, unless nothing else is left.
    for (size_t k = 0; k < n; ++k) {
      const fulcrum::Backend* b = candidates_[(start + k) % n].get();
      if (!args.IsExcluded(b)) return {b};
    }
    return {candidates_[start].get()};
  }

 private:
  const fulcrum::BackendList candidates_;  // holding them keeps them valid for in-flight calls
  const fulcrum::BalancerContext ctx_;
};

class ZoneFirstBalancer final : public fulcrum::Balancer {
 public:
  ZoneFirstBalancer(std::string zone, const fulcrum::BalancerContext& ctx)
      : zone_(std::move(zone)), ctx_(ctx) {}

  std::shared_ptr<const fulcrum::Picker> Update(const fulcrum::BackendList& backends) override {
    fulcrum::BackendList local;
    for (const fulcrum::BackendPtr& b : backends) {
      if (b->endpoint.zone == zone_) local.push_back(b);
    }
    return std::make_shared<ZoneFirstPicker>(local.empty() ? backends : local, ctx_);
  }

 private:
  const std::string zone_;
  const fulcrum::BalancerContext ctx_;
};

}  // namespace

int main() {
  fulcrum::Status registered =
      fulcrum::RegisterBalancer("zone_first", [](const fulcrum::BalancerContext& ctx) {
        return std::make_unique<ZoneFirstBalancer>("eu-west-1a", ctx);
      });
  if (!registered.ok()) {
    std::cerr << registered << "\n";
    return 1;
  }

  auto balancer = fulcrum::CreateBalancer("zone_first");
  if (!balancer.ok()) {
    std::cerr << balancer.status() << "\n";
    return 1;
  }

  const fulcrum::BackendList backends = {
      fulcrum::MakeBackend({"10.0.0.1", 9090, 1, "eu-west-1a", {}}),
      fulcrum::MakeBackend({"10.0.0.2", 9090, 1, "eu-west-1a", {}}),
      fulcrum::MakeBackend({"10.0.1.1", 9090, 1, "eu-west-1b", {}}),
  };
  std::shared_ptr<const fulcrum::Picker> picker = balancer.value()->Update(backends);

  std::map<std::string, int> picks;
  for (int i = 0; i < 1000; ++i) ++picks[picker->Pick({}).backend->address];
  std::cout << "1000 picks with zone_first (local zone eu-west-1a):\n";
  for (const auto& [address, count] : picks) std::cout << "  " << address << ": " << count << "\n";

  // A retry excludes what it already tried.
  const fulcrum::EndpointId tried[] = {fulcrum::IdOf(*backends[0])};
  fulcrum::PickArgs retry;
  retry.excluded = tried;
  std::cout << "retry after " << backends[0]->address
            << " failed: " << picker->Pick(retry).backend->address << "\n";
  return 0;
}
