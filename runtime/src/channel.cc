#include "fulcrum/channel.h"

#include <algorithm>
#include <sstream>

#include <glog/logging.h>
#include <thrift/TApplicationException.h>
#include <thrift/protocol/TProtocolException.h>

namespace fulcrum {

using apache::thrift::TApplicationException;
using apache::thrift::TException;
using apache::thrift::protocol::TProtocolException;
using apache::thrift::transport::TTransportException;

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

int CeilMillis(Duration d) {
  const int64_t ms = (d.count() + 999'999) / 1'000'000;
  return static_cast<int>(std::clamp<int64_t>(ms, 1, INT32_MAX));
}

}  // namespace

CallError::CallError(StatusCode code, std::string message, std::vector<AttemptFailure> attempts)
    : TTransportException(TransportType(code), std::move(message)),
      code_(code),
      attempts_(std::move(attempts)) {}

class Channel::Listener final : public ResolverListener {
 public:
  explicit Listener(Channel* channel) : channel_(channel) {}
  void OnUpdate(EndpointSet endpoints) override { channel_->UpdateEndpoints(std::move(endpoints)); }
  void OnError(const Status& status) override {
    LOG(WARNING) << channel_->options_.service_name
                 << ": discovery failed, keeping the last endpoint set: " << status;
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
  StatusOr<std::unique_ptr<Balancer>> balancer =
      CreateBalancer(options.balancer, options.balancer_context);
  if (!balancer.ok()) return balancer.status();
  std::shared_ptr<Channel> channel(new Channel(std::move(options), std::move(balancer).value()));
  Status s = channel->Init(std::move(resolver));
  if (!s.ok()) return s;
  return channel;
}

Channel::Channel(ChannelOptions options, std::unique_ptr<Balancer> balancer)
    : options_(std::move(options)),
      clock_(*options_.clock),
      picker_(EmptyPicker()),
      budget_(options_.retry_budget, clock_),
      outlier_(options_.outlier, clock_),
      balancer_(std::move(balancer)) {}

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
  return Status::Ok();
}

Channel::~Channel() { Shutdown(); }

void Channel::Shutdown() {
  std::unique_ptr<Resolver> resolver;
  {
    std::lock_guard<std::mutex> lock(mu_);
    resolver = std::move(resolver_);
  }
  if (resolver) resolver->Stop();
  {
    // Close the connections now: pickers cached by other threads may keep the pools alive
    // for a while, and calls still in flight close theirs as they finish.
    std::lock_guard<std::mutex> lock(mu_);
    picker_.Publish(EmptyPicker());  // first, as in UpdateEndpoints
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
  BackendList next;
  std::unordered_map<std::string, BackendPtr> next_by_address;
  next.reserve(set.endpoints.size());
  for (Endpoint& e : set.endpoints) {
    std::string address = e.Address();
    if (next_by_address.count(address) != 0) continue;  // a duplicate entry: first one wins
    BackendPtr backend;
    auto it = by_address_.find(address);
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
      b->pool = std::make_shared<ConnectionPool>(e, options_.pool, clock_);
      b->endpoint = std::move(e);
      backend = std::move(b);
    }
    next_by_address.emplace(std::move(address), backend);
    next.push_back(std::move(backend));
  }
  std::vector<BackendPtr> left;
  for (const auto& [address, backend] : by_address_) {
    if (next_by_address.count(address) == 0) left.push_back(backend);
  }
  backends_ = std::move(next);
  by_address_ = std::move(next_by_address);
  RebuildLocked();
  // Only after the new picker is published: a call that finds a pool shut down can then rely
  // on a newer picker being there to pick from again. Calls in flight keep their lease; the
  // pool closes each connection as it comes back.
  for (const BackendPtr& backend : left) {
    backend->pool->Shutdown();
    LOG(INFO) << options_.service_name << ": endpoint " << backend->address << " left";
  }
}

void Channel::RebuildLocked() {
  bool panic = false;
  TimePoint next_change;
  BackendList usable = outlier_.Filter(backends_, &next_change, &panic);
  if (panic && !panic_) {
    LOG(WARNING) << options_.service_name << ": too few healthy endpoints, balancing over all "
                 << backends_.size() << " (panic mode)";
  }
  panic_ = panic;
  picker_.Publish(balancer_->Update(usable));
  bool wake = false;
  if (next_change < next_unejection_) wake = true;
  next_unejection_ = next_change;
  if (wake) housekeeping_cv_.notify_all();
}

void Channel::OnAttemptFailure(const Backend& backend) {
  if (options_.outlier.consecutive_failures == 0 ||
      backend.stats->consecutive_failures() < options_.outlier.consecutive_failures) {
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (by_address_.count(backend.address) == 0) return;  // already gone from the set
  if (outlier_.MaybeEject(backend, backends_)) RebuildLocked();
}

void Channel::Tick() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (clock_.Now() >= next_unejection_) RebuildLocked();
  }
  BackendList backends;
  {
    std::lock_guard<std::mutex> lock(mu_);
    backends = backends_;
  }
  for (const BackendPtr& b : backends) b->pool->CloseIdle();
}

void Channel::HousekeepingLoop() {
  constexpr auto kPeriod = std::chrono::milliseconds(500);
  std::unique_lock<std::mutex> lock(housekeeping_mu_);
  while (!shutdown_) {
    Duration wait = kPeriod;
    {
      std::lock_guard<std::mutex> state(mu_);
      if (next_unejection_ != TimePoint::max()) {
        wait = std::clamp<Duration>(next_unejection_ - clock_.Now(), Duration(0), kPeriod);
      }
    }
    housekeeping_cv_.wait_for(lock, wait);
    if (shutdown_) break;
    lock.unlock();
    Tick();
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
    r.open_connections = b->pool->open_connections();
    out.push_back(std::move(r));
  }
  return out;
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
  std::shared_ptr<const Picker> picker = picker_.Read();
  std::array<const Backend*, kMaxTracked> tried{};
  size_t n_tried = 0;
  std::vector<AttemptFailure> failures;  // allocated only when something fails
  bool first_pick = true;
  PickArgs args;
  if (options.hash_key) {
    args.has_hash = true;
    args.hash = *options.hash_key;
  }

  for (int attempt = 1;; ++attempt) {
    args.excluded = std::span<const Backend* const>(tried.data(), n_tried);
    const PickResult pick = picker->Pick(args);
    if (pick.backend == nullptr) {
      Fail(method, StatusCode::kUnavailable, "no endpoint available", std::move(failures),
           attempt - 1);
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
      std::shared_ptr<const Picker> fresh = picker_.Read();
      if (fresh != picker) {
        backend.stats->OnAbandon();
        picker = std::move(fresh);
        --attempt;
        continue;
      }
    }
    if (!lease.ok()) {
      // Nothing left this client: safe to retry anywhere. Only a failed connect is the
      // endpoint's fault; an exhausted or closed local pool is not.
      code = lease.status().code();
      detail = lease.status().message();
      if (code == StatusCode::kTransport) {
        const TimePoint end = clock_.Now();
        backend.stats->OnFinish(end, end - now, /*success=*/false);
      } else {
        backend.stats->OnAbandon();
      }
    } else {
      Connection& conn = lease->connection();
      conn.SetTimeout(CeilMillis(deadline - now));
      CallPhase phase;
      std::exception_ptr rethrow;
      try {
        fn(closure, conn, phase);
      } catch (const CallError&) {
        throw;  // a nested channel call inside the attempt failed: not this endpoint's fault
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
        // The server answered, but with a framework error (unknown method, handler crash).
        code = StatusCode::kApplication;
        detail = e.what();
        rethrow = std::current_exception();
      } catch (const TException&) {
        rethrow = std::current_exception();  // declared in the IDL: the endpoint did its job
      } catch (...) {
        conn.MarkBroken();  // the caller's own code threw mid-call; the wire state is unknown
        rethrow = std::current_exception();
      }
      sent = phase.sent();
      const TimePoint end = clock_.Now();
      const bool success = code == StatusCode::kOk;
      backend.stats->OnFinish(end, end - now, success);
      if (pick.tracker != nullptr) pick.tracker->OnFinish(backend, end - now, success);
      if (success) {
        if (rethrow) std::rethrow_exception(rethrow);
        return;
      }
      if (code == StatusCode::kApplication) {
        OnAttemptFailure(backend);
        std::rethrow_exception(rethrow);  // Thrift's own error reaches the caller unchanged
      }
    }

    if (code != StatusCode::kResourceExhausted) OnAttemptFailure(backend);
    failures.push_back({backend.address, code, std::move(detail)});
    if (n_tried < kMaxTracked && !args.IsExcluded(&backend)) tried[n_tried++] = &backend;

    if (sent && !idempotent) {
      Fail(method, code == StatusCode::kDeadlineExceeded ? code : StatusCode::kUnavailable,
           method.oneway ? "failed after the oneway request was sent (not retried)"
                         : "failed after the request was sent; not idempotent, not retried",
           std::move(failures), attempt);
    }
    if (clock_.Now() >= deadline) {
      Fail(method, StatusCode::kDeadlineExceeded, "deadline exceeded", std::move(failures),
           attempt);
    }
    if (attempt >= max_attempts) {
      Fail(method, StatusCode::kUnavailable, "all attempts failed", std::move(failures), attempt);
    }
    if (!budget_.TryWithdraw()) {
      budget_exhausted_.fetch_add(1, std::memory_order_relaxed);
      Fail(method, StatusCode::kResourceExhausted, "retry budget exhausted", std::move(failures),
           attempt);
    }
    picker = picker_.Read();  // an ejection may have published a new one
  }
}

}  // namespace fulcrum
