// The balancer registry: name -> factory. Built-ins are added by RegisterBuiltins() on first
// use (std::call_once) rather than by static initialisers, so linking order and static
// libraries cannot drop them.
#include <algorithm>
#include <map>
#include <mutex>

#include "balancers/builtin.h"
#include "fulcrum/balancer.h"

namespace fulcrum {
namespace {

class EmptyPickerImpl final : public Picker {
 public:
  PickResult Pick(const PickArgs&) const override { return {}; }
};

struct Registry {
  std::mutex mu;
  std::map<std::string, BalancerFactory, std::less<>> factories;  // sorted: names list sorted
};

Registry& TheRegistry() {
  static Registry* registry = new Registry();  // never destroyed: safe during exit
  return *registry;
}

void RegisterBuiltins(Registry& r) {
  std::lock_guard<std::mutex> lock(r.mu);
  r.factories.emplace("random", balancers::NewRandomBalancer);
  r.factories.emplace("weighted_random", balancers::NewWeightedRandomBalancer);
  r.factories.emplace("round_robin", balancers::NewRoundRobinBalancer);
  r.factories.emplace("weighted_round_robin", balancers::NewWeightedRoundRobinBalancer);
  r.factories.emplace("least_response_time", balancers::NewLeastResponseTimeBalancer);
  r.factories.emplace("p2c_least_loaded", balancers::NewP2CLeastLoadedBalancer);
  r.factories.emplace("peak_ewma", balancers::NewPeakEwmaBalancer);
  r.factories.emplace("consistent_hash", balancers::NewConsistentHashBalancer);
}

Registry& InitializedRegistry() {
  static std::once_flag once;
  Registry& r = TheRegistry();
  std::call_once(once, [&r] { RegisterBuiltins(r); });
  return r;
}

std::string JoinNames(const std::map<std::string, BalancerFactory, std::less<>>& factories) {
  std::string out;
  for (const auto& [name, factory] : factories) {
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
  if (name.empty()) {
    return Status::Error(StatusCode::kInvalidArgument, "balancer name must not be empty");
  }
  if (!factory) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "balancer '" + name + "' registered without a factory");
  }
  Registry& r = InitializedRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  if (r.factories.contains(name)) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "balancer '" + name + "' is already registered");
  }
  r.factories.emplace(std::move(name), std::move(factory));
  return Status::Ok();
}

StatusOr<std::unique_ptr<Balancer>> CreateBalancer(std::string_view name,
                                                   const BalancerContext& ctx) {
  Registry& r = InitializedRegistry();
  BalancerFactory factory;
  {
    std::lock_guard<std::mutex> lock(r.mu);
    auto it = r.factories.find(name);
    if (it == r.factories.end()) {
      return Status::Error(StatusCode::kNotFound, "unknown balancer '" + std::string(name) +
                                                      "'; registered: " + JoinNames(r.factories));
    }
    factory = it->second;
  }
  // Run the factory outside the lock: a user factory may itself call into the registry.
  std::unique_ptr<Balancer> balancer = factory(ctx);
  if (balancer == nullptr) {
    return Status::Error(StatusCode::kInternal,
                         "the factory of balancer '" + std::string(name) + "' returned null");
  }
  return balancer;
}

std::vector<std::string> BalancerNames() {
  Registry& r = InitializedRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::vector<std::string> names;
  names.reserve(r.factories.size());
  for (const auto& [name, factory] : r.factories) names.push_back(name);
  return names;  // std::map keeps them sorted
}

}  // namespace fulcrum
