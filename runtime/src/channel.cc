#include "fulcrum/channel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>

#include <glog/logging.h>
#include <thrift/TApplicationException.h>
#include <thrift/protocol/TProtocolException.h>

#include "call/async_attempt.h"
#include "call/attempt_loop.h"
#include "call/endpoint_set_events.h"
#include "call/pooled_attempt.h"
#include "call/routes.h"
#include "fulcrum/role.h"
#include "fulcrum/snapshot.h"
#include "metrics/client_metrics.h"
#include "transport/connection_pool.h"
#include "transport/pipeline.h"

namespace fulcrum {

using apache::thrift::TApplicationException;
using apache::thrift::TException;
using apache::thrift::protocol::TProtocolException;
using apache::thrift::transport::TTransportException;
using internal::AttemptOutcome;
using internal::ClientMethodStats;

namespace {

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

std::exception_ptr internal::CancelledError() {
  return std::make_exception_ptr(
      CallError(StatusCode::kCancelled, "fulcrum: call cancelled by the caller", {}));
}

// The endpoint set and what is built from it: the pickers, outlier ejection, slow start, the
// pools, and the housekeeping thread that re-admits and trims. Calls read only the published
// pickers; everything else here is the control side.
struct Channel::Impl {
  class Listener;

  Impl(Channel& channel, ChannelOptions opts, std::unique_ptr<Balancer> balancer,
       std::unique_ptr<Balancer> master_balancer);
  Status Init(std::unique_ptr<Resolver> resolver);
  void Shutdown();
  void UpdateEndpoints(EndpointSet set);
  void RebuildLocked();  // re-filters backends and publishes new pickers; needs mu_
  void OnAttemptFailure(const Backend& backend);
  // Tick without closing idle connections (which disturbs the pools' fast path, so the
  // housekeeping thread does it only every half second).
  void CheckOutliers();
  void Tick();
  void HousekeepingLoop();
  void Invoke(const MethodTraits& method, const CallOptions& options, AttemptFn fn, void* closure);
  // Runs `body` (the call's attempts) and records the call in the method's metrics.
  template <class Body>
  void Measured(const MethodTraits& method, TimePoint start, internal::CallRecord& record,
                Body&& body);
  // Runs the attempt loop on this channel's route for `method`.
  void Loop(const MethodTraits& method, const internal::CallPlan& plan,
            internal::AttemptRunner& runner, internal::CallRecord& record,
            internal::Resumed* resumed);
  class AsyncCall;
  void RunAttempts(const MethodTraits& method, const CallOptions& options, AttemptFn fn,
                   void* closure, TimePoint start, internal::CallRecord& record);

  const ChannelOptions options;
  const Clock& clock;
  Snapshot<Picker> picker;
  RetryBudget budget;
  OutlierDetector outlier;
  std::atomic<uint64_t> budget_exhausted{0};
  internal::EndpointSetEvents events;
  // Master-slave only (null otherwise): the masters and the redirect state.
  std::unique_ptr<internal::MasterRouter> router;
  internal::AttemptLoop loop;

  mutable std::mutex mu;  // guards everything below; never held on the call path
  std::unique_ptr<Balancer> balancer;
  std::unique_ptr<Resolver> resolver;
  std::unique_ptr<Listener> listener;
  BackendList backends;  // the current set, ejected ones included
  std::unordered_map<std::string, BackendPtr> by_address;
  bool panic = false;
  bool closed = false;  // Shutdown() ran: every picker published from now on is empty
  // When the next ejection or slow start ends, in nanoseconds on `clock` (kNever: none).
  // Written under mu, read by the housekeeping thread without it.
  static constexpr int64_t kNever = INT64_MAX;
  std::atomic<int64_t> next_unejection_ns{kNever};
  int64_t next_latency_check_ns = 0;  // on `clock`

  std::mutex housekeeping_mu;  // guards the two below; taken after mu, never before it
  std::condition_variable housekeeping_cv;
  bool shutdown = false;
  bool housekeeping_wake = false;  // an earlier re-admission time was set
  std::thread housekeeping;
  // Null with ChannelOptions::metrics off. Last: destroyed first, so a scrape never reads a
  // channel whose members are being destroyed.
  std::unique_ptr<internal::ChannelMetrics> metrics;
};

class Channel::Impl::Listener final : public ResolverListener {
 public:
  explicit Listener(Impl* impl) : impl_(impl) {}
  void OnUpdate(EndpointSet endpoints) override {
    if (impl_->metrics) impl_->metrics->OnResolverUpdate(impl_->clock.Now());
    impl_->UpdateEndpoints(std::move(endpoints));
  }
  void OnError(const Status& status) override {
    LOG(WARNING) << impl_->options.service_name
                 << ": discovery failed, keeping the last endpoint set: " << status;
    if (impl_->metrics) impl_->metrics->OnResolverError();
    impl_->events.DiscoveryFailed(status.message());
  }

 private:
  Impl* impl_;
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
  std::shared_ptr<Channel> channel(new Channel(nullptr));
  channel->impl_ = std::make_unique<Impl>(*channel, std::move(options), std::move(balancer).value(),
                                          std::move(master_balancer));
  Status s = channel->impl_->Init(std::move(resolver));
  if (!s.ok()) return s;
  return channel;
}

Channel::Channel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Channel::~Channel() { Shutdown(); }

namespace {

internal::AttemptLoop::Env LoopEnv(const ChannelOptions& options, RetryBudget& budget,
                                   std::atomic<uint64_t>& budget_exhausted,
                                   std::function<void(const Backend&)> on_failure) {
  internal::AttemptLoop::Env env;
  env.clock = options.clock;
  env.budget = &budget;
  env.backoff = options.backoff;
  env.balancer_context = &options.balancer_context;
  env.service_name = options.service_name;
  env.on_failure = std::move(on_failure);
  env.budget_exhausted = &budget_exhausted;
  return env;
}

}  // namespace

Channel::Impl::Impl(Channel& channel, ChannelOptions opts, std::unique_ptr<Balancer> everyone,
                    std::unique_ptr<Balancer> masters)
    : options(std::move(opts)),
      clock(*options.clock),
      picker(EmptyPicker()),
      budget(options.retry_budget, clock),
      outlier(options.outlier, clock),
      events(clock),
      loop(LoopEnv(options, budget, budget_exhausted,
                   [this](const Backend& b) { OnAttemptFailure(b); })),
      balancer(std::move(everyone)) {
  if (masters != nullptr) {
    router = std::make_unique<internal::MasterRouter>(std::move(masters), options.read_from_slaves,
                                                      picker, events);
  }
  if (options.metrics) {
    metrics =
        std::make_unique<internal::ChannelMetrics>(channel, options.service_name, options.balancer);
  }
}

Status Channel::Impl::Init(std::unique_ptr<Resolver> r) {
  {
    std::lock_guard<std::mutex> lock(mu);
    RebuildLocked();
  }
  listener = std::make_unique<Listener>(this);
  Status s = r->Start(listener.get());
  if (!s.ok()) return s;
  {
    std::lock_guard<std::mutex> lock(mu);
    resolver = std::move(r);
  }
  housekeeping = std::thread([this] { HousekeepingLoop(); });
  if (metrics) metrics->Attach();
  return Status::Ok();
}

void Channel::Shutdown() {
  if (impl_) impl_->Shutdown();
}

void Channel::Impl::Shutdown() {
  // Calls waiting for a master or a first endpoint set fail now rather than at their deadline,
  // and say why.
  events.Shutdown();
  std::unique_ptr<Resolver> r;
  {
    std::lock_guard<std::mutex> lock(mu);
    r = std::move(resolver);
  }
  if (r) r->Stop();
  {
    // Close the connections now: pickers held by calls in flight may keep the pools alive for
    // a while, and those calls close their connections as they finish. From here on nothing
    // publishes a picker again (RebuildLocked, UpdateEndpoints): a failing call in flight or a
    // Tick re-admitting an endpoint would otherwise publish one over the shut-down pools.
    std::lock_guard<std::mutex> lock(mu);
    closed = true;
    RebuildLocked();  // the empty pickers, first, as in UpdateEndpoints
    for (const BackendPtr& b : backends) b->pool->Shutdown();
  }
  {
    std::lock_guard<std::mutex> lock(housekeeping_mu);
    shutdown = true;
  }
  housekeeping_cv.notify_all();
  if (housekeeping.joinable() && housekeeping.get_id() != std::this_thread::get_id()) {
    housekeeping.join();
  }
}

void Channel::UpdateEndpoints(EndpointSet endpoints) {
  impl_->UpdateEndpoints(std::move(endpoints));
}

void Channel::Impl::UpdateEndpoints(EndpointSet set) {
  std::lock_guard<std::mutex> lock(mu);
  if (closed) return;
  BackendList next;
  std::unordered_map<std::string, BackendPtr> next_by_address;
  next.reserve(set.endpoints.size());
  for (Endpoint& e : set.endpoints) {
    std::string address = e.Address();
    if (next_by_address.count(address) != 0) continue;  // a duplicate entry: first one wins
    BackendPtr backend;
    auto it = by_address.find(address);
    if (it != by_address.end() && it->second->endpoint.incarnation != e.incarnation) {
      // Another process at the same address: what was learned about its predecessor (and the
      // connections to it) does not apply. The old entry leaves the set below.
      LOG(INFO) << options.service_name << ": " << address << " restarted (incarnation "
                << it->second->endpoint.incarnation << " -> " << e.incarnation << ")";
      it = by_address.end();
    }
    if (it != by_address.end() && it->second->endpoint == e) {
      backend = it->second;
    } else if (it != by_address.end()) {
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
      if (!backends.empty()) b->stats->serving_since_ns.store(ToNanos(clock.Now()));
      b->pool = std::make_shared<internal::ConnectionPool>(e, options.pool, clock);
      b->endpoint = std::move(e);
      backend = std::move(b);
    }
    next_by_address.emplace(std::move(address), backend);
    next.push_back(std::move(backend));
  }
  std::vector<BackendPtr> left;
  for (const auto& [address, backend] : by_address) {
    auto next = next_by_address.find(address);
    if (next == next_by_address.end() || next->second->stats != backend->stats) {
      left.push_back(backend);
    }
  }
  backends = std::move(next);
  by_address = std::move(next_by_address);
  RebuildLocked();
  events.Resolved();  // calls waiting for the first set
  // Only after the new picker is published: a call that finds a pool shut down can then rely
  // on a newer picker being there to pick from again. Calls in flight keep their lease; the
  // pool closes each connection as it comes back.
  for (const BackendPtr& backend : left) {
    backend->pool->Shutdown();
    LOG(INFO) << options.service_name << ": endpoint " << backend->address << " left";
  }
}

void Channel::Impl::RebuildLocked() {
  if (closed) {
    picker.Publish(EmptyPicker());
    if (router != nullptr) router->PublishEmpty();
    next_unejection_ns.store(kNever, std::memory_order_relaxed);
    return;
  }
  bool now_panic = false;
  TimePoint next_change;
  BackendList usable = outlier.Filter(backends, &next_change, &now_panic);
  if (now_panic && !panic) {
    LOG(WARNING) << options.service_name << ": too few healthy endpoints, balancing over all "
                 << backends.size() << " (panic mode)";
  }
  panic = now_panic;
  TimePoint ramp_end;
  picker.Publish(WithSlowStart(balancer->Update(usable), usable, options.slow_start,
                               options.balancer_context, &ramp_end));
  next_change = std::min(next_change, ramp_end);
  if (router != nullptr) router->Publish(backends);
  const int64_t next_ns = next_change == TimePoint::max() ? kNever : ToNanos(next_change);
  const int64_t before = next_unejection_ns.exchange(next_ns, std::memory_order_relaxed);
  if (next_ns < before) {
    // Wake the housekeeping thread so it re-admits on time. The flag is set under its mutex:
    // a notify between its look at next_unejection_ns and its wait would otherwise be lost.
    {
      std::lock_guard<std::mutex> lock(housekeeping_mu);
      housekeeping_wake = true;
    }
    housekeeping_cv.notify_all();
  }
}

void Channel::Impl::OnAttemptFailure(const Backend& backend) {
  if (options.outlier.consecutive_failures == 0 ||
      backend.stats->consecutive_failures() < options.outlier.consecutive_failures) {
    return;
  }
  std::lock_guard<std::mutex> lock(mu);
  auto it = by_address.find(backend.address);
  // Gone from the set, or replaced by another incarnation at the same address.
  if (closed || it == by_address.end() || it->second->stats != backend.stats) return;
  if (outlier.MaybeEject(backend, backends)) {
    if (metrics) metrics->OnEjection();
    RebuildLocked();
  }
}

void Channel::Impl::CheckOutliers() {
  std::lock_guard<std::mutex> lock(mu);
  const int64_t now = ToNanos(clock.Now());
  bool rebuild = now >= next_unejection_ns.load(std::memory_order_relaxed);
  if (options.outlier.latency_factor > 0 && now >= next_latency_check_ns && !closed) {
    next_latency_check_ns = now + options.outlier.latency_interval.count();
    const size_t ejected = outlier.EjectSlow(backends);
    for (size_t i = 0; metrics && i < ejected; ++i) metrics->OnEjection();
    rebuild = rebuild || ejected > 0;
  }
  if (rebuild) RebuildLocked();
}

void Channel::Tick() { impl_->Tick(); }

void Channel::Impl::Tick() {
  CheckOutliers();
  BackendList current;
  {
    std::lock_guard<std::mutex> lock(mu);
    current = backends;
  }
  for (const BackendPtr& b : current) b->pool->CloseIdle();
}

void Channel::Impl::HousekeepingLoop() {
  constexpr auto kPeriod = std::chrono::milliseconds(500);
  const Duration period = options.outlier.latency_factor > 0
                              ? std::min<Duration>(kPeriod, options.outlier.latency_interval)
                              : Duration(kPeriod);
  TimePoint next_close_idle = clock.Now() + kPeriod;
  std::unique_lock<std::mutex> lock(housekeeping_mu);
  while (!shutdown) {
    Duration wait = period;
    // Read under housekeeping_mu (RebuildLocked stores it before taking that mutex to set
    // housekeeping_wake), so an earlier re-admission set meanwhile is never missed.
    const int64_t next = next_unejection_ns.load(std::memory_order_relaxed);
    if (next != kNever) {
      wait = std::clamp<Duration>(FromNanos(next) - clock.Now(), Duration(0), period);
    }
    housekeeping_cv.wait_for(lock, wait, [&] { return shutdown || housekeeping_wake; });
    housekeeping_wake = false;
    if (shutdown) break;
    lock.unlock();
    if (clock.Now() >= next_close_idle) {
      next_close_idle = clock.Now() + kPeriod;
      Tick();
    } else {
      CheckOutliers();
    }
    lock.lock();
  }
}

std::vector<EndpointReport> Channel::Endpoints() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<EndpointReport> out;
  out.reserve(impl_->backends.size());
  for (const BackendPtr& b : impl_->backends) {
    EndpointReport r;
    r.address = b->address;
    r.weight = b->endpoint.weight;
    r.in_flight = b->stats->in_flight();
    r.calls = b->stats->calls();
    r.failures = b->stats->failures();
    r.ewma_ms = b->stats->ewma_ns() / 1e6;
    r.ejected = impl_->outlier.IsEjected(*b);
    r.ejections = b->stats->ejections.load(std::memory_order_relaxed);
    r.open_connections = b->pool->open_connections() + b->pool->pipelined_connections();
    r.idle_connections = b->pool->idle_connections();
    out.push_back(std::move(r));
  }
  return out;
}

bool Channel::panic() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->panic;
}

const ChannelOptions& Channel::options() const { return impl_->options; }

uint64_t Channel::budget_exhausted() const {
  return impl_->budget_exhausted.load(std::memory_order_relaxed);
}

uint64_t Channel::master_waits() const { return impl_->router ? impl_->router->waits() : 0; }

uint64_t Channel::redirects() const { return impl_->router ? impl_->router->redirects() : 0; }

void Channel::Invoke(const MethodTraits& method, const CallOptions& options, AttemptFn fn,
                     void* closure) {
  impl_->Invoke(method, options, fn, closure);
}

void Channel::Impl::Invoke(const MethodTraits& method, const CallOptions& call_options,
                           AttemptFn fn, void* closure) {
  const TimePoint start = clock.Now();
  internal::CallRecord record;
  if (metrics == nullptr) return RunAttempts(method, call_options, fn, closure, start, record);
  Measured(method, start, record,
           [&] { RunAttempts(method, call_options, fn, closure, start, record); });
}

template <class Body>
void Channel::Impl::Measured(const MethodTraits& method, TimePoint start,
                             internal::CallRecord& record, Body&& body) {
  if (metrics == nullptr) return body();
  // Metrics: a lock-free lookup of the method's counters, then only atomic additions. The
  // try costs nothing until something throws.
  ClientMethodStats& stats = metrics->Method(method.name != nullptr ? method.name : "");
  record.stats = &stats;
  const auto finish = [&] {
    const TimePoint end = record.end != TimePoint() ? record.end : clock.Now();
    stats.OnCall((end - start).count(), record.attempts);
  };
  try {
    body();
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

void Channel::Impl::RunAttempts(const MethodTraits& method, const CallOptions& call_options,
                                AttemptFn fn, void* closure, TimePoint start,
                                internal::CallRecord& record) {
  const internal::CallPlan plan = internal::PlanCall(method, call_options, options, start);
  internal::PooledAttempt runner(fn, closure, clock, router != nullptr);
  Loop(method, plan, runner, record, nullptr);
}

void Channel::Impl::Loop(const MethodTraits& method, const internal::CallPlan& plan,
                         internal::AttemptRunner& runner, internal::CallRecord& record,
                         internal::Resumed* resumed) {
  if (router == nullptr) {
    internal::StatelessRoute route(picker, events);
    loop.Run(plan, route, runner, record, resumed);
  } else {
    internal::MasterSlaveRoute route(*router, method);
    loop.Run(plan, route, runner, record, resumed);
  }
}

// One asynchronous call (Channel::CallAsync; call/async_attempt.h). Its first attempt is sent
// from the caller's thread and answered on the event thread; a success ends the call there
// (the loop only does its bookkeeping), anything else continues on the retry lane.
class Channel::Impl::AsyncCall final : public internal::PipelineRequest {
 public:
  AsyncCall(std::shared_ptr<Channel> channel, const MethodTraits& method,
            const CallOptions& call_options, std::string request,
            std::shared_ptr<internal::AsyncReceiver> receiver)
      : channel_(std::move(channel)),
        impl_(*channel_->impl_),
        method_(method),
        plan_(internal::PlanCall(method, call_options, impl_.options, impl_.clock.Now())),
        request_(std::move(request)),
        receiver_(std::move(receiver)) {
    plan_.hedge_delay = Duration::zero();  // not for asynchronous calls (yet)
  }

  static void Start(std::shared_ptr<AsyncCall> call);
  void OnReply(internal::PipelineResult& result) override;

 private:
  // Runs the attempt loop from the first attempt's outcome (null: from the start), then
  // completes the future.
  void Finish(internal::Resumed* resumed);
  internal::PipelinedAttempt Runner() const {
    return internal::PipelinedAttempt(request_, *receiver_, impl_.options.pool.protocol,
                                      impl_.router != nullptr, cancelled_);
  }

  const std::shared_ptr<Channel> channel_;  // the channel lives while its calls do
  Impl& impl_;
  const MethodTraits& method_;
  internal::CallPlan plan_;
  const std::string request_;
  const std::shared_ptr<internal::AsyncReceiver> receiver_;
  internal::CallRecord record_;
  std::shared_ptr<const Picker> picker_;
  PickResult pick_;
  std::atomic<bool> cancelled_{false};
  std::shared_ptr<AsyncCall> self_;  // while the first attempt is in the pipeline
};

void Channel::Impl::AsyncCall::Start(std::shared_ptr<AsyncCall> call) {
  AsyncCall& c = *call;
  c.receiver_->OnCancel([weak = std::weak_ptr<AsyncCall>(call)] {
    if (auto alive = weak.lock()) alive->cancelled_.store(true, std::memory_order_release);
  });
  Impl& impl = c.impl_;
  c.picker_ = impl.router == nullptr ? impl.picker.Read()
                                     : impl.router->PickerFor(impl.router->ToMaster(c.method_));
  c.pick_ = c.picker_->Pick(c.plan_.args);
  if (c.pick_.backend == nullptr) {
    // No endpoint yet (discovery has not answered, no master known): the loop waits for one.
    internal::RetryLane::Instance().Post([call] { call->Finish(nullptr); });
    return;
  }
  impl.budget.OnCall();
  c.pick_.backend->stats->OnStart();
  c.self_ = call;
  call.reset();
  // May answer at once, on this thread (the endpoint left the set, a connect failed).
  c.pick_.backend->pool->pipeline().Send(c.request_, c.plan_.deadline, &c);
}

void Channel::Impl::AsyncCall::OnReply(internal::PipelineResult& result) {
  const std::shared_ptr<AsyncCall> self = std::move(self_);
  internal::Resumed resumed{std::move(picker_), pick_,
                            internal::OutcomeOf(result, *receiver_, impl_.options.pool.protocol,
                                                impl_.router != nullptr)};
  if (resumed.outcome.code == StatusCode::kOk) {
    Finish(&resumed);  // bookkeeping only: the loop returns (or rethrows a declared exception)
    return;
  }
  internal::RetryLane::Instance().Post(
      [self, resumed = std::move(resumed)]() mutable { self->Finish(&resumed); });
}

void Channel::Impl::AsyncCall::Finish(internal::Resumed* resumed) {
  if (cancelled_.load(std::memory_order_acquire)) plan_.max_attempts = 1;  // no retry
  internal::PipelinedAttempt runner = Runner();
  std::exception_ptr error;
  try {
    impl_.Measured(method_, plan_.start, record_,
                   [&] { impl_.Loop(method_, plan_, runner, record_, resumed); });
  } catch (...) {
    error = std::current_exception();
  }
  receiver_->Finish(std::move(error));
}

void Channel::InvokeAsync(const MethodTraits& method, const CallOptions& options,
                          std::string request, std::shared_ptr<internal::AsyncReceiver> receiver) {
  Impl::AsyncCall::Start(std::make_shared<Impl::AsyncCall>(
      shared_from_this(), method, options, std::move(request), std::move(receiver)));
}

}  // namespace fulcrum
