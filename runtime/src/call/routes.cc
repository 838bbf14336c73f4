#include "call/routes.h"

#include <algorithm>
#include <string_view>
#include <utility>

#include "fulcrum/channel.h"
#include "fulcrum/role.h"

namespace fulcrum::internal {

namespace {

// A redirect that is not followed at once (stale, or naming an unknown endpoint) and a call
// that finds no master wait this long at most before picking again, unless a newer endpoint
// set arrives first: short enough to pick up a master a heartbeat reply has just told, long
// enough not to hammer an instance that still refuses.
constexpr Duration kRouteRetry = std::chrono::milliseconds(5);
// NotMaster redirects followed by one call. Two instances naming each other (a registry
// split) would otherwise bounce a call until its deadline.
constexpr int kMaxRedirects = 16;

constexpr const char* kWaitingForAMaster = "deadline exceeded waiting for a master";
constexpr const char* kWaitingForAReachableMaster =
    "deadline exceeded waiting for a reachable master";

// The next attempt of a redirected call: the named master, whatever the balancer would say.
class FixedPicker final : public Picker {
 public:
  explicit FixedPicker(BackendPtr backend) : backend_(std::move(backend)) {}
  PickResult Pick(const PickArgs&) const override { return {backend_.get(), nullptr}; }

 private:
  BackendPtr backend_;
};

}  // namespace

RouteStep StatelessRoute::OnNoEndpoint(int attempt, TimePoint deadline) {
  // A channel just created: its resolver (a registry watch) has not answered yet.
  if (attempt == 1 && events_.WaitForFirst(deadline)) return {Current()};
  return RouteStep::Fail(StatusCode::kUnavailable, events_.NoEndpointReason());
}

struct MasterRouter::View {
  std::shared_ptr<const Picker> picker;  // over the masters of each group's newest epoch
  BackendList backends;                  // every endpoint, to find a redirect's target
  std::unordered_map<std::string, int64_t> newest_epoch;  // by group

  BackendPtr Find(std::string_view address) const {
    for (const BackendPtr& b : backends) {
      if (b->address == address) return b;
    }
    return nullptr;
  }
  int64_t NewestEpoch(const std::string& group) const {
    auto it = newest_epoch.find(group);
    return it == newest_epoch.end() ? 0 : it->second;
  }
};

MasterRouter::MasterRouter(std::unique_ptr<Balancer> balancer, bool read_from_slaves,
                           const Snapshot<Picker>& everyone, EndpointSetEvents& events)
    : balancer_(std::move(balancer)),
      read_from_slaves_(read_from_slaves),
      everyone_(everyone),
      events_(events) {
  PublishEmpty();
}

MasterRouter::~MasterRouter() = default;

void MasterRouter::Publish(const BackendList& all) {
  auto view = std::make_shared<View>();
  for (const BackendPtr& b : all) {
    int64_t& newest = view->newest_epoch[b->endpoint.group];
    newest = std::max(newest, b->endpoint.epoch);
  }
  // Masters come from the whole set, outlier ejection ignored: a group has one master, so
  // ejecting it would leave nowhere to send its writes, not a better place.
  BackendList masters;
  for (const BackendPtr& b : all) {
    if (b->endpoint.role == InstanceRole::kMaster &&
        b->endpoint.epoch == view->newest_epoch[b->endpoint.group]) {
      masters.push_back(b);
    }
  }
  view->picker = balancer_->Update(masters);
  view->backends = all;
  view_.Publish(std::move(view));
  events_.Published();
}

void MasterRouter::PublishEmpty() {
  auto empty = std::make_shared<View>();
  empty->picker = EmptyPicker();
  view_.Publish(std::move(empty));
}

bool MasterRouter::ToMaster(const MethodTraits& method) const {
  return !(method.read && read_from_slaves_);
}

std::shared_ptr<const Picker> MasterRouter::PickerFor(bool to_master) const {
  return to_master ? view_.Read()->picker : everyone_.Read();
}

BackendPtr MasterRouter::RedirectTarget(const Backend& from, const NotMaster& redirect,
                                        int64_t told_epoch) const {
  // Naming itself: a master whose lease ran out or that was asked to stop writes.
  if (redirect.master_address.empty() || redirect.master_address == from.address) return nullptr;
  const std::shared_ptr<const View> view = view_.Read();
  // An instance that has not yet heard of a newer epoch (from the watch, or from an earlier
  // redirect of this call) names an old master: not followed.
  if (redirect.epoch < std::max(view->NewestEpoch(from.endpoint.group), told_epoch)) {
    return nullptr;
  }
  return view->Find(redirect.master_address);
}

std::shared_ptr<const Picker> MasterRouter::PickerAfterWait(bool to_master, const BackendPtr& told,
                                                            int64_t told_epoch) const {
  std::shared_ptr<const View> view = view_.Read();
  if (told != nullptr && view->NewestEpoch(told->endpoint.group) < told_epoch) {
    // A redirect named a newer master than the watch has delivered: that one, again.
    return std::make_shared<FixedPicker>(told);
  }
  return to_master ? view->picker : everyone_.Read();
}

bool MasterRouter::WaitForRoute(TimePoint deadline) {
  if (events_.clock().Now() >= deadline) return false;
  waits_.fetch_add(1, std::memory_order_relaxed);
  return events_.WaitForNewer(deadline, kRouteRetry);
}

MasterSlaveRoute::MasterSlaveRoute(MasterRouter& router, const MethodTraits& method)
    : router_(router), to_master_(router.ToMaster(method)) {}

RouteStep MasterSlaveRoute::OnNoEndpoint(int, TimePoint deadline) {
  // A failover in progress: the resolver delivers the new master shortly.
  if (router_.WaitForRoute(deadline)) return {Current()};
  return RouteStep::Fail(StatusCode::kUnavailable,
                         router_.shut_down() ? "channel shut down while waiting for a master"
                         : to_master_        ? "no master known (waited until the deadline)"
                                             : "no endpoint available (waited until the deadline)");
}

RouteStep MasterSlaveRoute::OnRefusal(const Backend& from, const NotMaster& redirect,
                                      TimePoint deadline) {
  if (BackendPtr target = router_.RedirectTarget(from, redirect, told_epoch_)) {
    if (++hops_ > kMaxRedirects) {
      return RouteStep::Fail(StatusCode::kUnavailable,
                             "too many NotMaster redirects (instances disagree on the master)");
    }
    router_.CountRedirect();
    told_master_ = target;
    told_epoch_ = redirect.epoch;
    return {std::make_shared<FixedPicker>(std::move(target))};
  }
  if (!router_.WaitForRoute(deadline)) {
    if (router_.shut_down()) {
      return RouteStep::Fail(StatusCode::kUnavailable,
                             "channel shut down while waiting for a master");
    }
    return RouteStep::Fail(StatusCode::kDeadlineExceeded, kWaitingForAMaster);
  }
  return {router_.PickerAfterWait(to_master_, told_master_, told_epoch_),
          StatusCode::kOk,
          {},
          kWaitingForAMaster};
}

bool MasterSlaveRoute::WaitsForNewMaster(const Backend& backend, StatusCode code) const {
  return to_master_ && code == StatusCode::kTransport &&
         backend.endpoint.role == InstanceRole::kMaster;
}

RouteStep MasterSlaveRoute::AfterMasterLost(TimePoint deadline) {
  if (!router_.WaitForRoute(deadline)) {
    return RouteStep::Fail(StatusCode::kDeadlineExceeded, kWaitingForAReachableMaster);
  }
  return {Current(), StatusCode::kOk, {}, kWaitingForAReachableMaster};
}

}  // namespace fulcrum::internal
