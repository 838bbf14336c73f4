// Balancers: the control plane (Balancer) turns an endpoint list into an immutable Picker; the
// Picker is the only thing on the per-call path.
//
//   auto balancer = fulcrum::CreateBalancer("round_robin", ctx).value();
//   std::shared_ptr<const Picker> picker = balancer->Update(backends);   // on every list change
//   PickResult r = picker->Pick(PickArgs{});                               // on every call
//
// Adding a balancer: write a Balancer and a Picker, then call
//   fulcrum::RegisterBalancer("mine", [](const BalancerContext& ctx) { return
//   std::make_unique<Mine>(ctx); });
// examples/custom_balancer shows a whole one.
//
// Thread-safety: Picker::Pick is thread-safe (pickers are immutable apart from atomics).
// Balancer::Update is not: the channel calls it from one thread at a time.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fulcrum/clock.h"
#include "fulcrum/endpoint.h"
#include "fulcrum/endpoint_stats.h"
#include "fulcrum/random.h"
#include "fulcrum/status.h"

namespace fulcrum {

namespace internal {
class ConnectionPool;
}  // namespace internal

// One endpoint as a balancer sees it: the endpoint, its address, and the statistics that
// outlive endpoint-set updates. `pool` is the channel's transport to the endpoint, opaque to
// balancers (null in balancer unit tests).
struct Backend {
  Endpoint endpoint;
  std::string address;
  std::shared_ptr<EndpointStats> stats;
  std::shared_ptr<internal::ConnectionPool> pool;
};

// What identifies an endpoint across endpoint-set updates; see EndpointStats::id().
using EndpointId = uint64_t;
inline EndpointId IdOf(const Backend& b) { return b.stats->id(); }

using BackendPtr = std::shared_ptr<const Backend>;
using BackendList = std::vector<BackendPtr>;

// Makes a Backend with fresh stats and no pool; for tests and custom resolvers.
BackendPtr MakeBackend(Endpoint endpoint);

struct PickArgs {
  // Routing key for hashing balancers (consistent_hash); others ignore it.
  bool has_hash = false;
  uint64_t hash = 0;
  // Endpoints this call already tried; pick another one when any other exists. By identity,
  // not by Backend object: an update during the call may have replaced the object.
  std::span<const EndpointId> excluded;

  bool IsExcluded(const Backend* b) const {
    const EndpointId id = IdOf(*b);
    for (const EndpointId e : excluded) {
      if (e == id) return true;
    }
    return false;
  }
};

// Optional per-call hook for balancers that track calls themselves. Most don't: EndpointStats
// is updated by the channel on every call and every balancer can read it.
class CallTracker {
 public:
  virtual ~CallTracker() = default;
  virtual void OnFinish(const Backend& backend, Duration latency, bool success) const = 0;
};

struct PickResult {
  const Backend* backend = nullptr;  // null when there is nothing to pick
  const CallTracker* tracker = nullptr;
};

class Picker {
 public:
  virtual ~Picker() = default;
  // Thread-safe. The returned backend stays valid while the caller holds this picker.
  virtual PickResult Pick(const PickArgs& args) const = 0;
};

// A picker that never picks (no endpoints).
std::shared_ptr<const Picker> EmptyPicker();

struct BalancerContext {
  const Clock* clock = &Clock::Real();
  // Null: each picking thread uses Random::ThreadLocal(). Tests pass a SeededRandom and pick
  // from one thread.
  Random* random = nullptr;

  Random& rng() const { return random != nullptr ? *random : Random::ThreadLocal(); }
};

class Balancer {
 public:
  virtual ~Balancer() = default;
  // Builds the picker for a new backend list (possibly empty). Called again on every change;
  // the balancer may reuse work from the previous list.
  virtual std::shared_ptr<const Picker> Update(const BackendList& backends) = 0;
};

using BalancerFactory = std::function<std::unique_ptr<Balancer>(const BalancerContext&)>;

// Registers a balancer under `name`. Fails with kInvalidArgument if the name is empty or taken.
// Thread-safe.
Status RegisterBalancer(std::string name, BalancerFactory factory);

// Creates a registered balancer. Fails with kNotFound, naming the registered ones, for an
// unknown name. Thread-safe. Built-ins: random, weighted_random, round_robin,
// weighted_round_robin, least_response_time, p2c_least_loaded, peak_ewma, consistent_hash.
StatusOr<std::unique_ptr<Balancer>> CreateBalancer(std::string_view name,
                                                   const BalancerContext& ctx = {});

std::vector<std::string> BalancerNames();

}  // namespace fulcrum
