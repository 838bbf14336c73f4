// The balancer table: name -> factory. Built-ins are added on first use (a function-local
// static) rather than by static initialisers, so linking order and static libraries cannot
// drop them.
#include <glog/logging.h>

#include <optional>
#include <utility>

#include "balancers/builtin.h"
#include "factory_table.h"
#include "fulcrum/balancer.h"

namespace fulcrum {
namespace {

class EmptyPickerImpl final : public Picker {
 public:
  PickResult Pick(const PickArgs&) const override { return {}; }
};

using BalancerTable = internal::FactoryTable<BalancerFactory>;

BalancerTable& Balancers() {
  static BalancerTable* table = [] {
    auto* t = new BalancerTable();  // never destroyed: safe during exit
    const std::pair<const char*, BalancerFactory> builtins[] = {
        {"random", balancers::NewRandomBalancer},
        {"weighted_random", balancers::NewWeightedRandomBalancer},
        {"round_robin", balancers::NewRoundRobinBalancer},
        {"weighted_round_robin", balancers::NewWeightedRoundRobinBalancer},
        {"least_response_time", balancers::NewLeastResponseTimeBalancer},
        {"p2c_least_loaded", balancers::NewP2CLeastLoadedBalancer},
        {"peak_ewma", balancers::NewPeakEwmaBalancer},
        {"consistent_hash", balancers::NewConsistentHashBalancer},
    };
    for (const auto& [name, factory] : builtins) {
      Status added = t->Add(name, factory, "balancer");
      CHECK(added.ok()) << added;
    }
    return t;
  }();
  return *table;
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

}  // namespace

BackendPtr MakeBackend(Endpoint endpoint) {
  auto b = std::make_shared<Backend>();
  b->address = endpoint.Address();
  b->endpoint = std::move(endpoint);
  b->stats = std::make_shared<EndpointStats>();
  return b;
}

std::shared_ptr<const Picker> EmptyPicker() {
  static const std::shared_ptr<const Picker>* picker =
      new std::shared_ptr<const Picker>(std::make_shared<EmptyPickerImpl>());
  return *picker;
}

Status RegisterBalancer(std::string name, BalancerFactory factory) {
  return Balancers().Add(std::move(name), std::move(factory), "balancer");
}

StatusOr<std::unique_ptr<Balancer>> CreateBalancer(std::string_view name,
                                                   const BalancerContext& ctx) {
  std::optional<BalancerFactory> factory = Balancers().Find(name);
  if (!factory) {
    return Status::Error(StatusCode::kNotFound, "unknown balancer '" + std::string(name) +
                                                    "'; registered: " + JoinNames(BalancerNames()));
  }
  // The factory runs outside the table's lock: a user factory may itself use the table.
  std::unique_ptr<Balancer> balancer = (*factory)(ctx);
  if (balancer == nullptr) {
    return Status::Error(StatusCode::kInternal,
                         "the factory of balancer '" + std::string(name) + "' returned null");
  }
  return balancer;
}

std::vector<std::string> BalancerNames() { return Balancers().Names(); }  // sorted

}  // namespace fulcrum
