// Where a call's attempts go: the route the attempt loop (attempt_loop.h) asks for a picker,
// and what it does when there is nothing to pick or an instance refuses.
//
//   StatelessRoute route(picker_snapshot, events);          // every endpoint, one balancer
//   MasterSlaveRoute route(master_router, method);          // the masters (or all, for reads)
//
// A route object lives for one call. The stateless route is a picker snapshot and the wait for
// the resolver's first answer; everything about masters, epochs and NotMaster redirects is in
// MasterRouter (one per master-slave channel) and MasterSlaveRoute (the call's redirect
// state), which a stateless channel never builds.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "call/endpoint_set_events.h"
#include "fulcrum/balancer.h"
#include "fulcrum/snapshot.h"
#include "fulcrum/status.h"

namespace fulcrum {
struct MethodTraits;
struct NotMaster;
}  // namespace fulcrum

namespace fulcrum::internal {

// What a route says next: a picker to pick from, or (picker null) why the call fails.
struct RouteStep {
  std::shared_ptr<const Picker> picker;
  StatusCode code = StatusCode::kOk;
  std::string why;
  // Set when the call waited for a route: what to say if the deadline passes before the next
  // attempt starts (the wait is why the time ran out).
  const char* deadline_message = nullptr;

  static RouteStep Fail(StatusCode code, std::string why) {
    return {nullptr, code, std::move(why), nullptr};
  }
};

class StatelessRoute {
 public:
  static constexpr bool kMasterSlave = false;

  StatelessRoute(const Snapshot<Picker>& everyone, EndpointSetEvents& events)
      : everyone_(everyone), events_(events) {}

  std::shared_ptr<const Picker> Current() const { return everyone_.Read(); }
  // The picker had no endpoint. A call made before the resolver's first answer waits for it
  // (within its deadline) and picks again; otherwise the call fails, saying why.
  RouteStep OnNoEndpoint(int attempt, TimePoint deadline);

 private:
  const Snapshot<Picker>& everyone_;
  EndpointSetEvents& events_;
};

// A master-slave channel's routing state: the masters of the newest epoch of each group, and
// what a redirect needs to follow (every endpoint, each group's newest epoch).
class MasterRouter {
 public:
  MasterRouter(std::unique_ptr<Balancer> balancer, bool read_from_slaves,
               const Snapshot<Picker>& everyone, EndpointSetEvents& events);
  ~MasterRouter();

  // Publishes the masters among `all` and wakes waiting calls. Needs the channel's lock (the
  // balancer is not thread-safe).
  void Publish(const BackendList& all);
  // After shutdown: no master anywhere.
  void PublishEmpty();

  // Whether a call of `method` goes to the masters (writes; reads unless read_from_slaves).
  bool ToMaster(const MethodTraits& method) const;
  std::shared_ptr<const Picker> PickerFor(bool to_master) const;
  // Where a NotMaster refusal from `from` sends the call next, or null when the call should
  // wait for a newer endpoint set instead. `told_epoch`: the newest epoch an earlier redirect
  // of the same call named (0 if none); an older one is stale.
  BackendPtr RedirectTarget(const Backend& from, const NotMaster& redirect,
                            int64_t told_epoch) const;
  // The picker after waiting for a route: `told` (the master the newest redirect followed
  // named, of `told_epoch`) while the endpoint set has not caught up with it, else
  // PickerFor(to_master).
  std::shared_ptr<const Picker> PickerAfterWait(bool to_master, const BackendPtr& told,
                                                int64_t told_epoch) const;
  // Waits until a newer endpoint set is published, a few milliseconds, or the deadline,
  // whichever comes first. False when the deadline has passed or the channel is shut down.
  bool WaitForRoute(TimePoint deadline);
  bool shut_down() const { return events_.shut_down(); }

  void CountRedirect() { redirects_.fetch_add(1, std::memory_order_relaxed); }
  // Times a call waited for a (newer) master, and redirects followed; for metrics and tests.
  uint64_t waits() const { return waits_.load(std::memory_order_relaxed); }
  uint64_t redirects() const { return redirects_.load(std::memory_order_relaxed); }

 private:
  struct View;

  std::unique_ptr<Balancer> balancer_;  // its own instance: the masters are a list of their own
  const bool read_from_slaves_;
  const Snapshot<Picker>& everyone_;
  EndpointSetEvents& events_;
  Snapshot<View> view_;
  std::atomic<uint64_t> waits_{0};
  std::atomic<uint64_t> redirects_{0};
};

// One master-slave call's route: which picker it uses, and the redirects it has followed.
class MasterSlaveRoute {
 public:
  static constexpr bool kMasterSlave = true;

  MasterSlaveRoute(MasterRouter& router, const MethodTraits& method);

  std::shared_ptr<const Picker> Current() const { return router_.PickerFor(to_master_); }
  // No master known (a failover in progress): waits for the resolver to deliver one.
  RouteStep OnNoEndpoint(int attempt, TimePoint deadline);
  // `from` refused with a NotMaster redirect: the named master if it is new enough and known,
  // else the picker after a short wait for a newer endpoint set.
  RouteStep OnRefusal(const Backend& from, const NotMaster& redirect, TimePoint deadline);
  // Whether a failure of `code` on `backend` means the call should wait for the registry's
  // verdict (a newer master) instead of trying elsewhere: the master is unreachable, and there
  // is no other place a write may go.
  bool WaitsForNewMaster(const Backend& backend, StatusCode code) const;
  RouteStep AfterMasterLost(TimePoint deadline);

 private:
  MasterRouter& router_;
  const bool to_master_;
  int hops_ = 0;  // redirects followed
  // The master named by the newest redirect this call followed, and its epoch. During a
  // switchover the instances hear of the new epoch one heartbeat apart: the new master may
  // still name the old one after the old one already names it. The call then waits for the
  // new master rather than bouncing between them.
  BackendPtr told_master_;
  int64_t told_epoch_ = 0;
};

}  // namespace fulcrum::internal
