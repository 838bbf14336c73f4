#include "fulcrum/channel.h"

#include <algorithm>
#include <sstream>
#include <unordered_map>
#include <utility>

#include <glog/logging.h>
#include <thrift/TApplicationException.h>
#include <thrift/protocol/TProtocolException.h>

#include "fulcrum/role.h"
#include "metrics/client_metrics.h"

namespace fulcrum {

using apache::thrift::TApplicationException;
using apache::thrift::TException;
using apache::thrift::protocol::TProtocolException;
using apache::thrift::transport::TTransportException;
using internal::ClientMethodStats;

namespace {

// Tried backends are remembered in a fixed array: retries beyond this many are rare enough to
// not deserve an allocation, and a longer exclusion list buys nothing.
constexpr size_t kMaxTracked = 8;

TTransportException::TTransportExceptionType TransportType(StatusCode code) {
  switch (code) {
    case StatusCode::kDeadlineExceeded:
      return TTransportException::TIMED_OUT;
    case StatusCode::kUnavailable:
      return TTransportException::NOT_OPEN;
    default:
      return TTransportException::UNKNOWN;
  }
}

std::string DescribeFailures(const std::vector<AttemptFailure>& failures) {
  if (failures.empty()) return "no endpoint was tried";
  std::ostringstream out;
  out << "tried ";
  for (size_t i = 0; i < failures.size(); ++i) {
    if (i > 0) out << "; ";
    out << failures[i].address << " (" << StatusCodeName(failures[i].code) << ": "
        << failures[i].detail << ")";
  }
  return out.str();
}

// A redirect that is not followed at once (stale, or naming an unknown endpoint) and a call
// that finds no master wait this long at most before picking again, unless a newer endpoint
// set arrives first: short enough to pick up a master a heartbeat reply has just told, long
// enough not to hammer an instance that still refuses.
constexpr Duration kRouteRetry = std::chrono::milliseconds(5);
// NotMaster redirects followed by one call. Two instances naming each other (a registry
// split) would otherwise bounce a call until its deadline.
constexpr int kMaxRedirects = 16;

// The next attempt of a redirected call: the named master, whatever the balancer would say.
class FixedPicker final : public Picker {
 public:
  explicit FixedPicker(BackendPtr backend) : backend_(std::move(backend)) {}
  PickResult Pick(const PickArgs&) const override { return {backend_.get(), nullptr}; }

 private:
  BackendPtr backend_;
};

// How metrics name a failed attempt. `connected`: a connection was leased (the request may
// have left).
ClientMethodStats::AttemptFailure AttemptFailureKind(StatusCode code, bool connected,
                                                     bool refused) {
  if (refused) return ClientMethodStats::kNotMaster;
  switch (code) {
    case StatusCode::kTransport:
      return connected ? ClientMethodStats::kTransport : ClientMethodStats::kConnect;
    case StatusCode::kDeadlineExceeded:
      return ClientMethodStats::kTimeout;
    case StatusCode::kProtocol:
      return ClientMethodStats::kProtocol;
    case StatusCode::kApplication:
      return ClientMethodStats::kApplication;
    default:
      return ClientMethodStats::kLocal;
  }
}

// How metrics name the error a call ended with.
ClientMethodStats::CallError CallErrorKind(StatusCode code) {
  switch (code) {
    case StatusCode::kDeadlineExceeded:
      return ClientMethodStats::kErrTimeout;
    case StatusCode::kResourceExhausted:
      return ClientMethodStats::kErrRetryBudget;
    case StatusCode::kUnavailable:
      return ClientMethodStats::kErrUnavailable;
    default:
      return ClientMethodStats::kErrOther;
  }
}

}  // namespace

CallError::CallError(StatusCode code, std::string message, std::vector<AttemptFailure> attempts)
    : TTransportException(TransportType(code), std::move(message)),
      code_(code),
      attempts_(std::move(attempts)) {}

struct Channel::MasterView {
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

class Channel::Listener final : public ResolverListener {
 public:
  explicit Listener(Channel* channel) : channel_(channel) {}
  void OnUpdate(EndpointSet endpoints) override {
    if (channel_->metrics_) channel_->metrics_->OnResolverUpdate(channel_->clock_.Now());
    channel_->UpdateEndpoints(std::move(endpoints));
  }
  void OnError(const Status& status) override {
    LOG(WARNING) << channel_->options_.service_name
                 << ": discovery failed, keeping the last endpoint set: " << status;
    if (channel_->metrics_) channel_->metrics_->OnResolverError();
    channel_->OnDiscoveryError(status);
  }

 private:
  Channel* channel_;
};

StatusOr<std::shared_ptr<Channel>> Channel::Create(std::string_view target,
                                                   ChannelOptions options) {
  StatusOr<std::unique_ptr<Resolver>> resolver = CreateResolver(target);
  if (!resolver.ok()) return resolver.status();
  return Create(std::move(resolver).value(), std::move(options));
}

StatusOr<std::shared_ptr<Channel>> Channel::Create(std::unique_ptr<Resolver> resolver,
                                                   ChannelOptions options) {
  if (options.max_attempts < 1) {
    return Status::Error(StatusCode::kInvalidArgument, "max_attempts must be at least 1");
  }
  if (options.default_timeout <= Duration::zero()) {
    return Status::Error(StatusCode::kInvalidArgument, "default_timeout must be positive");
  }
  if (options.clock == nullptr) options.clock = &Clock::Real();
  options.balancer_context.clock = options.clock;
  if (options.outlier.latency_factor > 0 && options.outlier.latency_interval <= Duration::zero()) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "outlier.latency_interval must be positive when latency_factor is set");
  }
  if (options.read_from_slaves && !options.master_slave) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "read_from_slaves needs master_slave (it says where reads may go)");
  }
  StatusOr<std::unique_ptr<Balancer>> balancer =
      CreateBalancer(options.balancer, options.balancer_context);
  if (!balancer.ok()) return balancer.status();
  std::unique_ptr<Balancer> master_balancer;
  if (options.master_slave) {
    // Its own instance: a balancer may keep state between updates (round robin's position,
    // consistent hash's ring), and the masters are a different list from everyone.
    StatusOr<std::unique_ptr<Balancer>> b =
        CreateBalancer(options.balancer, options.balancer_context);
    if (!b.ok()) return b.status();
    master_balancer = std::move(b).value();
  }
  std::shared_ptr<Channel> channel(
      new Channel(std::move(options), std::move(balancer).value(), std::move(master_balancer)));
  Status s = channel->Init(std::move(resolver));
  if (!s.ok()) return s;
  return channel;
}

Channel::Channel(ChannelOptions options, std::unique_ptr<Balancer> balancer,
                 std::unique_ptr<Balancer> master_balancer)
    : options_(std::move(options)),
      clock_(*options_.clock),
      picker_(EmptyPicker()),
      budget_(options_.retry_budget, clock_),
      outlier_(options_.outlier, clock_),
      balancer_(std::move(balancer)),
      master_balancer_(std::move(master_balancer)) {
  if (options_.metrics) {
    metrics_ =
        std::make_unique<internal::ChannelMetrics>(*this, options_.service_name, options_.balancer);
  }
}

Status Channel::Init(std::unique_ptr<Resolver> resolver) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    RebuildLocked();
  }
  listener_ = std::make_unique<Listener>(this);
  Status s = resolver->Start(listener_.get());
  if (!s.ok()) return s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    resolver_ = std::move(resolver);
  }
  housekeeping_ = std::thread([this] { HousekeepingLoop(); });
  if (metrics_) metrics_->Attach();
  return Status::Ok();
}

Channel::~Channel() { Shutdown(); }

void Channel::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(route_mu_);
    // Calls waiting for a master or a first endpoint set fail now rather than at their
    // deadline, and say why.
    route_shutdown_ = true;
  }
  route_cv_.notify_all();
  std::unique_ptr<Resolver> resolver;
  {
    std::lock_guard<std::mutex> lock(mu_);
    resolver = std::move(resolver_);
  }
  if (resolver) resolver->Stop();
  {
    // Close the connections now: pickers held by calls in flight may keep the pools alive for
    // a while, and those calls close their connections as they finish. From here on nothing
    // publishes a picker again (RebuildLocked, UpdateEndpoints): a failing call in flight or a
    // Tick re-admitting an endpoint would otherwise publish one over the shut-down pools.
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    RebuildLocked();  // the empty pickers, first, as in UpdateEndpoints
    for (const BackendPtr& b : backends_) b->pool->Shutdown();
  }
  {
    std::lock_guard<std::mutex> lock(housekeeping_mu_);
    shutdown_ = true;
  }
  housekeeping_cv_.notify_all();
  if (housekeeping_.joinable() && housekeeping_.get_id() != std::this_thread::get_id()) {
    housekeeping_.join();
  }
}

void Channel::UpdateEndpoints(EndpointSet set) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return;
  BackendList next;
  std::unordered_map<std::string, BackendPtr> next_by_address;
  next.reserve(set.endpoints.size());
  for (Endpoint& e : set.endpoints) {
    std::string address = e.Address();
    if (next_by_address.count(address) != 0) continue;  // a duplicate entry: first one wins
    BackendPtr backend;
    auto it = by_address_.find(address);
    if (it != by_address_.end() && it->second->endpoint.incarnation != e.incarnation) {
      // Another process at the same address: what was learned about its predecessor (and the
      // connections to it) does not apply. The old entry leaves the set below.
      LOG(INFO) << options_.service_name << ": " << address << " restarted (incarnation "
                << it->second->endpoint.incarnation << " -> " << e.incarnation << ")";
      it = by_address_.end();
    }
    if (it != by_address_.end() && it->second->endpoint == e) {
      backend = it->second;
    } else if (it != by_address_.end()) {
      // Same server, new weight or tags: keep what was learned and the open connections.
      auto b = std::make_shared<Backend>(*it->second);
      b->endpoint = std::move(e);
      backend = std::move(b);
    } else {
      auto b = std::make_shared<Backend>();
      b->address = address;
      b->stats = std::make_shared<EndpointStats>();
      // Joining endpoints that serve alongside others ramp up (slow start); the first set's
      // have nobody to take traffic from.
      if (!backends_.empty()) b->stats->serving_since_ns.store(ToNanos(clock_.Now()));
      b->pool = std::make_shared<ConnectionPool>(e, options_.pool, clock_);
      b->endpoint = std::move(e);
      backend = std::move(b);
    }
    next_by_address.emplace(std::move(address), backend);
    next.push_back(std::move(backend));
  }
  std::vector<BackendPtr> left;
  for (const auto& [address, backend] : by_address_) {
    auto next = next_by_address.find(address);
    if (next == next_by_address.end() || next->second->stats != backend->stats) {
      left.push_back(backend);
    }
  }
  backends_ = std::move(next);
  by_address_ = std::move(next_by_address);
  RebuildLocked();
  {
    std::lock_guard<std::mutex> lock(route_mu_);
    resolved_ = true;
    discovery_error_.clear();
  }
  route_cv_.notify_all();  // calls waiting for the first set
  // Only after the new picker is published: a call that finds a pool shut down can then rely
  // on a newer picker being there to pick from again. Calls in flight keep their lease; the
  // pool closes each connection as it comes back.
  for (const BackendPtr& backend : left) {
    backend->pool->Shutdown();
    LOG(INFO) << options_.service_name << ": endpoint " << backend->address << " left";
  }
}

void Channel::RebuildLocked() {
  if (closed_) {
    picker_.Publish(EmptyPicker());
    if (master_balancer_ != nullptr) {
      auto empty = std::make_shared<MasterView>();
      empty->picker = EmptyPicker();
      masters_.Publish(std::move(empty));
    }
    next_unejection_ns_.store(kNever, std::memory_order_relaxed);
    return;
  }
  bool panic = false;
  TimePoint next_change;
  BackendList usable = outlier_.Filter(backends_, &next_change, &panic);
  if (panic && !panic_) {
    LOG(WARNING) << options_.service_name << ": too few healthy endpoints, balancing over all "
                 << backends_.size() << " (panic mode)";
  }
  panic_ = panic;
  TimePoint ramp_end;
  picker_.Publish(WithSlowStart(balancer_->Update(usable), usable, options_.slow_start,
                                options_.balancer_context, &ramp_end));
  next_change = std::min(next_change, ramp_end);
  if (master_balancer_ != nullptr) PublishMastersLocked();
  const int64_t next_ns = next_change == TimePoint::max() ? kNever : ToNanos(next_change);
  const int64_t before = next_unejection_ns_.exchange(next_ns, std::memory_order_relaxed);
  if (next_ns < before) {
    // Wake the housekeeping thread so it re-admits on time. The flag is set under its mutex:
    // a notify between its look at next_unejection_ns_ and its wait would otherwise be lost.
    {
      std::lock_guard<std::mutex> lock(housekeeping_mu_);
      housekeeping_wake_ = true;
    }
    housekeeping_cv_.notify_all();
  }
}

void Channel::PublishMastersLocked() {
  auto view = std::make_shared<MasterView>();
  for (const BackendPtr& b : backends_) {
    int64_t& newest = view->newest_epoch[b->endpoint.group];
    newest = std::max(newest, b->endpoint.epoch);
  }
  // Masters come from the whole set, outlier ejection ignored: a group has one master, so
  // ejecting it would leave nowhere to send its writes, not a better place.
  BackendList masters;
  for (const BackendPtr& b : backends_) {
    if (b->endpoint.role == InstanceRole::kMaster &&
        b->endpoint.epoch == view->newest_epoch[b->endpoint.group]) {
      masters.push_back(b);
    }
  }
  view->picker = master_balancer_->Update(masters);
  view->backends = backends_;
  masters_.Publish(std::move(view));
  {
    std::lock_guard<std::mutex> lock(route_mu_);
    ++route_generation_;
  }
  route_cv_.notify_all();
}

std::shared_ptr<const Picker> Channel::RoutePicker(bool to_master) const {
  return to_master ? masters_.Read()->picker : picker_.Read();
}

BackendPtr Channel::RedirectTarget(const Backend& from, const NotMaster& redirect,
                                   int64_t told_epoch) const {
  // Naming itself: a master whose lease ran out or that was asked to stop writes.
  if (redirect.master_address.empty() || redirect.master_address == from.address) return nullptr;
  const std::shared_ptr<const MasterView> view = masters_.Read();
  // An instance that has not yet heard of a newer epoch (from the watch, or from an earlier
  // redirect of this call) names an old master: not followed.
  if (redirect.epoch < std::max(view->NewestEpoch(from.endpoint.group), told_epoch)) {
    return nullptr;
  }
  return view->Find(redirect.master_address);
}

std::shared_ptr<const Picker> Channel::PickerAfterWait(bool to_master, const BackendPtr& told,
                                                       int64_t told_epoch) const {
  std::shared_ptr<const MasterView> view = masters_.Read();
  if (told != nullptr && view->NewestEpoch(told->endpoint.group) < told_epoch) {
    // A redirect named a newer master than the watch has delivered: that one, again.
    return std::make_shared<FixedPicker>(told);
  }
  return to_master ? view->picker : picker_.Read();
}

bool Channel::WaitForRoute(TimePoint deadline) {
  const TimePoint now = clock_.Now();
  if (now >= deadline) return false;
  master_waits_.fetch_add(1, std::memory_order_relaxed);
  std::unique_lock<std::mutex> lock(route_mu_);
  const uint64_t seen = route_generation_;
  route_cv_.wait_for(lock, std::min<Duration>(kRouteRetry, deadline - now),
                     [&] { return route_generation_ != seen || route_shutdown_; });
  return !route_shutdown_ && clock_.Now() < deadline;
}

bool Channel::WaitForFirstEndpoints(TimePoint deadline) {
  std::unique_lock<std::mutex> lock(route_mu_);
  if (resolved_ || route_shutdown_) return false;
  const TimePoint now = clock_.Now();
  if (now >= deadline) return false;
  route_cv_.wait_for(lock, deadline - now, [&] { return resolved_ || route_shutdown_; });
  return resolved_ && !route_shutdown_ && discovery_error_.empty();
}

void Channel::OnDiscoveryError(const Status& status) {
  {
    std::lock_guard<std::mutex> lock(route_mu_);
    discovery_error_ = status.message();
    resolved_ = true;  // a call waiting for the first set fails now, with this error
  }
  route_cv_.notify_all();
}

std::string Channel::NoEndpointReason() {
  std::lock_guard<std::mutex> lock(route_mu_);
  if (route_shutdown_) return "no endpoint available (channel shut down)";
  if (!resolved_) return "no endpoint available: discovery delivered none before the deadline";
  if (!discovery_error_.empty()) {
    return "no endpoint available (discovery failed: " + discovery_error_ + ")";
  }
  return "no endpoint available";
}

bool Channel::RouteShutDown() {
  std::lock_guard<std::mutex> lock(route_mu_);
  return route_shutdown_;
}

void Channel::OnAttemptFailure(const Backend& backend) {
  if (options_.outlier.consecutive_failures == 0 ||
      backend.stats->consecutive_failures() < options_.outlier.consecutive_failures) {
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_address_.find(backend.address);
  // Gone from the set, or replaced by another incarnation at the same address.
  if (closed_ || it == by_address_.end() || it->second->stats != backend.stats) return;
  if (outlier_.MaybeEject(backend, backends_)) {
    if (metrics_) metrics_->OnEjection();
    RebuildLocked();
  }
}

void Channel::CheckOutliers() {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = ToNanos(clock_.Now());
  bool rebuild = now >= next_unejection_ns_.load(std::memory_order_relaxed);
  if (options_.outlier.latency_factor > 0 && now >= next_latency_check_ns_ && !closed_) {
    next_latency_check_ns_ = now + options_.outlier.latency_interval.count();
    const size_t ejected = outlier_.EjectSlow(backends_);
    for (size_t i = 0; metrics_ && i < ejected; ++i) metrics_->OnEjection();
    rebuild = rebuild || ejected > 0;
  }
  if (rebuild) RebuildLocked();
}

void Channel::Tick() {
  CheckOutliers();
  BackendList backends;
  {
    std::lock_guard<std::mutex> lock(mu_);
    backends = backends_;
  }
  for (const BackendPtr& b : backends) b->pool->CloseIdle();
}

void Channel::HousekeepingLoop() {
  constexpr auto kPeriod = std::chrono::milliseconds(500);
  const Duration period = options_.outlier.latency_factor > 0
                              ? std::min<Duration>(kPeriod, options_.outlier.latency_interval)
                              : Duration(kPeriod);
  TimePoint next_close_idle = clock_.Now() + kPeriod;
  std::unique_lock<std::mutex> lock(housekeeping_mu_);
  while (!shutdown_) {
    Duration wait = period;
    // Read under housekeeping_mu_ (RebuildLocked stores it before taking that mutex to set
    // housekeeping_wake_), so an earlier re-admission set meanwhile is never missed.
    const int64_t next = next_unejection_ns_.load(std::memory_order_relaxed);
    if (next != kNever) {
      wait = std::clamp<Duration>(FromNanos(next) - clock_.Now(), Duration(0), period);
    }
    housekeeping_cv_.wait_for(lock, wait, [&] { return shutdown_ || housekeeping_wake_; });
    housekeeping_wake_ = false;
    if (shutdown_) break;
    lock.unlock();
    if (clock_.Now() >= next_close_idle) {
      next_close_idle = clock_.Now() + kPeriod;
      Tick();
    } else {
      CheckOutliers();
    }
    lock.lock();
  }
}

std::vector<EndpointReport> Channel::Endpoints() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<EndpointReport> out;
  out.reserve(backends_.size());
  for (const BackendPtr& b : backends_) {
    EndpointReport r;
    r.address = b->address;
    r.weight = b->endpoint.weight;
    r.in_flight = b->stats->in_flight();
    r.calls = b->stats->calls();
    r.failures = b->stats->failures();
    r.ewma_ms = b->stats->ewma_ns() / 1e6;
    r.ejected = outlier_.IsEjected(*b);
    r.ejections = b->stats->ejections.load(std::memory_order_relaxed);
    r.open_connections = b->pool->open_connections();
    r.idle_connections = b->pool->idle_connections();
    out.push_back(std::move(r));
  }
  return out;
}

bool Channel::panic() const {
  std::lock_guard<std::mutex> lock(mu_);
  return panic_;
}

void Channel::Fail(const MethodTraits& method, StatusCode code, std::string_view what,
                   std::vector<AttemptFailure> failures, int attempts) const {
  std::ostringstream msg;
  msg << "fulcrum: " << options_.service_name << "." << method.name << ": " << what << " after "
      << attempts << (attempts == 1 ? " attempt" : " attempts") << "; "
      << DescribeFailures(failures);
  throw CallError(code, msg.str(), std::move(failures));
}

void Channel::Invoke(const MethodTraits& method, const CallOptions& options, AttemptFn fn,
                     void* closure) {
  const TimePoint start = clock_.Now();
  CallRecord record;
  if (metrics_ == nullptr) return InvokeAttempts(method, options, fn, closure, start, record);
  // Metrics: a lock-free lookup of the method's counters, then only atomic additions. The
  // try costs nothing until something throws.
  ClientMethodStats& stats = metrics_->Method(method.name != nullptr ? method.name : "");
  record.stats = &stats;
  const auto finish = [&] {
    const TimePoint end = record.end != TimePoint() ? record.end : clock_.Now();
    stats.OnCall((end - start).count(), record.attempts);
  };
  try {
    InvokeAttempts(method, options, fn, closure, start, record);
  } catch (const CallError& e) {
    finish();
    stats.OnCallError(record.nested_failure ? ClientMethodStats::kErrNested
                                            : CallErrorKind(e.code()));
    throw;
  } catch (const TApplicationException&) {
    finish();
    stats.OnCallError(ClientMethodStats::kErrApplication);
    throw;
  } catch (const TException&) {
    finish();
    stats.OnCallError(ClientMethodStats::kErrDeclared);  // declared in the IDL
    throw;
  } catch (...) {
    finish();
    stats.OnCallError(ClientMethodStats::kErrOther);  // the caller's own code threw
    throw;
  }
  finish();
}

void Channel::InvokeAttempts(const MethodTraits& method, const CallOptions& options, AttemptFn fn,
                             void* closure, const TimePoint start, CallRecord& record) {
  Duration timeout = options_.default_timeout;
  if (options.timeout) {
    timeout = *options.timeout;
  } else if (method.timeout_ms > 0) {
    timeout = std::chrono::milliseconds(method.timeout_ms);
  }
  TimePoint deadline = start + timeout;
  if (options.deadline && *options.deadline < deadline) deadline = *options.deadline;
  const bool idempotent = options.idempotent.value_or(method.idempotent) && !method.oneway;
  const int max_attempts = options.max_attempts > 0 ? options.max_attempts : options_.max_attempts;

  budget_.OnCall();
  // Master-slave: writes (and reads, unless read_from_slaves) pick from the masters. The one
  // test a stateless call pays.
  const bool master_slave = options_.master_slave;
  const bool to_master = master_slave && !(method.read && options_.read_from_slaves);
  std::shared_ptr<const Picker> picker = master_slave ? RoutePicker(to_master) : picker_.Read();
  int refusals = 0;  // NotMaster refusals: not counted against max_attempts, no budget spent
  int hops = 0;      // redirects followed
  std::optional<NotMaster> redirect;  // the last refusal's, set only when `refused`
  // The master named by the newest redirect this call followed, and its epoch. During a
  // switchover the instances hear of the new epoch one heartbeat apart: the new master may
  // still name the old one after the old one already names it. The call then waits for the
  // new master rather than bouncing between them.
  BackendPtr told_master;
  int64_t told_epoch = 0;
  std::array<EndpointId, kMaxTracked> tried{};
  size_t n_tried = 0;
  std::vector<AttemptFailure> failures;  // allocated only when something fails
  bool first_pick = true;
  PickArgs args;
  if (options.hash_key) {
    args.has_hash = true;
    args.hash = *options.hash_key;
  }

  for (int attempt = 1;; ++attempt) {
    // `pick.backend` is valid only while a picker holding it lives, and this attempt's lease
    // (declared below, so destroyed before this) returns its connection into that backend's
    // pool. A picker replaced during the attempt is parked here until then: an endpoint that
    // left the set meanwhile is freed only after its lease is back.
    std::shared_ptr<const Picker> retired;
    args.excluded = std::span<const EndpointId>(tried.data(), n_tried);
    const PickResult pick = picker->Pick(args);
    if (pick.backend == nullptr) {
      if (master_slave) {
        // A failover in progress: the resolver delivers the new master shortly.
        if (WaitForRoute(deadline)) {
          picker = RoutePicker(to_master);
          --attempt;
          continue;
        }
        Fail(method, StatusCode::kUnavailable,
             RouteShutDown() ? "channel shut down while waiting for a master"
             : to_master     ? "no master known (waited until the deadline)"
                             : "no endpoint available (waited until the deadline)",
             std::move(failures), attempt - 1);
      }
      // A channel just created: its resolver (a registry watch) has not answered yet.
      if (attempt == 1 && WaitForFirstEndpoints(deadline)) {
        picker = picker_.Read();
        --attempt;
        continue;
      }
      Fail(method, StatusCode::kUnavailable, NoEndpointReason(), std::move(failures), attempt - 1);
    }
    const Backend& backend = *pick.backend;
    TimePoint now = first_pick ? start : clock_.Now();  // one clock read saved per call
    first_pick = false;
    if (attempt > 1 && args.IsExcluded(&backend)) {
      // Nothing untried is left: back off before hitting the same endpoint again.
      const Duration pause =
          Backoff(options_.backoff, attempt - 1, options_.balancer_context.rng());
      if (now + pause >= deadline) {
        Fail(method, StatusCode::kDeadlineExceeded, "deadline exceeded", std::move(failures),
             attempt - 1);
      }
      std::this_thread::sleep_for(pause);
      now = clock_.Now();
    }
    if (now >= deadline) {
      Fail(method, StatusCode::kDeadlineExceeded, "deadline exceeded", std::move(failures),
           attempt - 1);
    }

    bool sent = false;
    StatusCode code = StatusCode::kOk;
    std::string detail;
    backend.stats->OnStart();
    StatusOr<ConnectionPool::Lease> lease = backend.pool->Acquire(deadline);
    if (!lease.ok() && lease.status().code() == StatusCode::kResourceExhausted) {
      // The endpoint left the set after this call read its picker: pick again from the
      // current one. Not an attempt (nothing was tried) and not a retry (no budget spent).
      // Pools are shut down only after a newer picker is published, so there is one.
      std::shared_ptr<const Picker> fresh = master_slave ? RoutePicker(to_master) : picker_.Read();
      if (fresh != picker) {
        backend.stats->OnAbandon();
        picker = std::move(fresh);
        --attempt;
        continue;
      }
    }
    ++record.attempts;
    if (!lease.ok()) {
      // Nothing left this client: safe to retry anywhere. Only a failed connect is the
      // endpoint's fault; an exhausted or closed local pool is not.
      code = lease.status().code();
      detail = lease.status().message();
      if (record.stats) record.stats->OnAttemptFailure(AttemptFailureKind(code, false, false));
      if (code == StatusCode::kTransport) {
        const TimePoint end = clock_.Now();
        backend.stats->OnFinish(end, end - now, /*success=*/false);
      } else {
        backend.stats->OnAbandon();
      }
    } else {
      Connection& conn = lease->connection();
      // The deadline is enforced by the watchdog thread, not a socket timeout (see
      // deadline_watchdog.h for why).
      conn.BeginCall(deadline, clock_);
      CallPhase phase;
      std::exception_ptr rethrow;
      bool refused = false;  // a NotMaster refusal (master-slave): the call never ran
      try {
        fn(closure, conn, phase);
      } catch (const CallError&) {
        // A Fulcrum call made inside this attempt failed: the whole call ends here, and it is
        // not this endpoint's fault. This attempt's own request may be on the wire with its
        // reply unread, so the connection is not reused (the pool would also refuse it: it
        // counts replies owed), and the endpoint's in-flight count is given back.
        conn.MarkBroken();
        conn.EndCall();
        backend.stats->OnAbandon();
        record.nested_failure = true;
        throw;
      } catch (const TTransportException& e) {
        conn.MarkBroken();
        code = e.getType() == TTransportException::TIMED_OUT ? StatusCode::kDeadlineExceeded
                                                             : StatusCode::kTransport;
        detail = e.what();
      } catch (const TProtocolException& e) {
        conn.MarkBroken();
        code = StatusCode::kProtocol;
        detail = e.what();
      } catch (const TApplicationException& e) {
        // The server answered, but with a framework error (unknown method, handler crash),
        // or (master-slave) a NotMaster refusal.
        code = StatusCode::kApplication;
        detail = e.what();
        if (master_slave && e.getType() == kNotMasterExceptionType) {
          redirect = ParseNotMaster(detail);
          refused = redirect.has_value();
        }
        if (!refused) rethrow = std::current_exception();
      } catch (const TException&) {
        rethrow = std::current_exception();  // declared in the IDL: the endpoint did its job
      } catch (...) {
        conn.MarkBroken();  // the caller's own code threw mid-call; the wire state is unknown
        rethrow = std::current_exception();
      }
      if (conn.EndCall() && (code == StatusCode::kTransport || code == StatusCode::kProtocol)) {
        // The watchdog shut the socket down at the deadline: that is why the read failed.
        code = StatusCode::kDeadlineExceeded;
        detail = "deadline exceeded during the call (connection cut)";
      }
      sent = phase.sent();
      const TimePoint end = clock_.Now();
      const bool success = code == StatusCode::kOk;
      // A refusal is the endpoint working as it should.
      backend.stats->OnFinish(end, end - now, success || refused);
      if (pick.tracker != nullptr) pick.tracker->OnFinish(backend, end - now, success || refused);
      if (!success && record.stats) {
        record.stats->OnAttemptFailure(AttemptFailureKind(code, true, refused));
      }
      if (success) {
        record.end = end;  // spares the metrics a clock read
        if (rethrow) std::rethrow_exception(rethrow);
        return;
      }
      if (refused) {
        // The endpoint is healthy and the call never ran there: whatever the method, send it
        // again, to the master named if it is new enough and known, else after a wait.
        ++refusals;
        // An instance that keeps refusing while the call waits is listed once.
        if (failures.empty() || failures.back().address != backend.address ||
            failures.back().detail != detail) {
          failures.push_back({backend.address, StatusCode::kUnavailable, std::move(detail)});
        }
        if (BackendPtr target = RedirectTarget(backend, *redirect, told_epoch)) {
          if (++hops > kMaxRedirects) {
            Fail(method, StatusCode::kUnavailable,
                 "too many NotMaster redirects (instances disagree on the master)",
                 std::move(failures), attempt);
          }
          redirects_.fetch_add(1, std::memory_order_relaxed);
          told_master = target;
          told_epoch = redirect->epoch;
          retired = std::exchange(picker, std::make_shared<FixedPicker>(std::move(target)));
          continue;
        }
        if (!WaitForRoute(deadline)) {
          if (RouteShutDown()) {
            Fail(method, StatusCode::kUnavailable, "channel shut down while waiting for a master",
                 std::move(failures), attempt);
          }
          Fail(method, StatusCode::kDeadlineExceeded, "deadline exceeded waiting for a master",
               std::move(failures), attempt);
        }
        retired = std::exchange(picker, PickerAfterWait(to_master, told_master, told_epoch));
        continue;
      }
      if (code == StatusCode::kApplication) {
        OnAttemptFailure(backend);
        std::rethrow_exception(rethrow);  // Thrift's own error reaches the caller unchanged
      }
    }

    if (code != StatusCode::kResourceExhausted) OnAttemptFailure(backend);
    if (sent && !idempotent) {
      failures.push_back({backend.address, code, std::move(detail)});
      Fail(method, code == StatusCode::kDeadlineExceeded ? code : StatusCode::kUnavailable,
           method.oneway ? "failed after the oneway request was sent (not retried)"
                         : "failed after the request was sent; not idempotent, not retried",
           std::move(failures), attempt);
    }
    if (to_master && code == StatusCode::kTransport &&
        backend.endpoint.role == InstanceRole::kMaster) {
      // The master is unreachable (killed, restarting): a failover is probably under way, and
      // there is no other place a write may go. Wait for the registry's verdict (a newer
      // master through the watch) within the deadline instead of spending attempts and budget
      // on a dead address. Safe: the request never left, or the method is idempotent.
      ++refusals;
      if (failures.empty() || failures.back().address != backend.address ||
          failures.back().detail != detail) {
        failures.push_back({backend.address, code, std::move(detail)});
      }
      if (!WaitForRoute(deadline)) {
        Fail(method, StatusCode::kDeadlineExceeded,
             "deadline exceeded waiting for a reachable master", std::move(failures), attempt);
      }
      retired = std::exchange(picker, RoutePicker(to_master));
      continue;
    }
    failures.push_back({backend.address, code, std::move(detail)});
    if (n_tried < kMaxTracked && !args.IsExcluded(&backend)) tried[n_tried++] = IdOf(backend);

    if (clock_.Now() >= deadline) {
      Fail(method, StatusCode::kDeadlineExceeded, "deadline exceeded", std::move(failures),
           attempt);
    }
    if (attempt - refusals >= max_attempts) {
      Fail(method, StatusCode::kUnavailable, "all attempts failed", std::move(failures), attempt);
    }
    if (!budget_.TryWithdraw()) {
      budget_exhausted_.fetch_add(1, std::memory_order_relaxed);
      Fail(method, StatusCode::kResourceExhausted, "retry budget exhausted", std::move(failures),
           attempt);
    }
    // An ejection may have published a new one.
    retired = std::exchange(picker, master_slave ? RoutePicker(to_master) : picker_.Read());
  }
}

}  // namespace fulcrum
