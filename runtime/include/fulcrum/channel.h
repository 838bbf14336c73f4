// Channel: the balanced call path. One Channel per target service, shared by every thread.
//
//   fulcrum::ChannelOptions opts;
//   opts.service_name = "calculator";
//   opts.balancer = "p2c_least_loaded";
//   auto channel = fulcrum::Channel::Create("static://127.0.0.1:9001,127.0.0.1:9002",
//   opts).value();
//
//   static constexpr fulcrum::MethodTraits kAdd{.name = "add", .idempotent = true};
//   int32_t sum = channel->Call<CalculatorClient>(kAdd, {}, [&](CalculatorClient& c,
//   fulcrum::CallPhase& p) {
//     c.send_add(1, 2);
//     p.MarkSent();
//     return c.recv_add();
//   });
//
// Every call: pick an endpoint (the balancer), borrow a pooled connection, run the attempt,
// record latency and outcome, and on a failure retry where safe: the request never left, or the
// method is idempotent; never a oneway call; never past the deadline; never beyond the retry
// budget; on an endpoint not yet tried when there is one. Generated clients call exactly this.
// The deadline bounds the whole call, however slowly the server answers: a watchdog thread
// shuts down the connection of a call past its deadline (at most ~5 ms late).
//
// Create returns at once; a watch-based resolver (fulcrum://, etcd://) delivers the first
// endpoint set a little later. A call made before that waits for it within its deadline, then
// fails fast once discovery has answered: "no endpoint available", with the resolver's error
// when it reported one (the registry is unreachable, say).
//
// Errors: exceptions declared in the IDL reach the caller unchanged (and count as successes
// for the endpoint). When the call fails for good, Call throws fulcrum::CallError (a
// TTransportException) naming the service, method, and each endpoint tried with its failure.
//
// Master-slave services (ChannelOptions::master_slave, set by the generated SChannelOptions()):
// calls go to the master of the newest epoch of each group (the balancer chooses among the
// groups' masters); with read_from_slaves, methods annotated fulcrum.read are balanced over
// every instance instead. A NotMaster refusal (role.h) is not a failure of the endpoint and
// spends no retry budget: the call follows the redirect when it names a master at least as new
// as the newest the channel knows or an earlier redirect of the same call named, and otherwise
// waits (within its deadline) for the resolver
// to deliver a newer master, as it does when no master is known at all (docs/master-slave.md).
//
// Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include <thrift/transport/TTransportException.h>

#include "fulcrum/balancer.h"
#include "fulcrum/clock.h"
#include "fulcrum/connection_pool.h"
#include "fulcrum/hash.h"
#include "fulcrum/outlier_detector.h"
#include "fulcrum/resolver.h"
#include "fulcrum/retry.h"
#include "fulcrum/slow_start.h"
#include "fulcrum/snapshot.h"
#include "fulcrum/status.h"

namespace fulcrum {

struct NotMaster;
namespace internal {
class ChannelMetrics;
class ClientMethodStats;
}  // namespace internal

// What the IDL says about a method; compiled into generated code.
struct MethodTraits {
  const char* name = "";
  bool idempotent = false;  // retrying on another endpoint is safe
  bool oneway = false;      // no reply: never retried once sent
  int32_t timeout_ms = 0;   // 0: the channel's default
  bool read = false;        // a slave may serve it (master-slave mode)
};

// Per-call choices; all optional.
struct CallOptions {
  std::optional<Duration> timeout;    // overrides the method's and the channel's
  std::optional<TimePoint> deadline;  // absolute; the earlier of this and timeout wins
  std::optional<uint64_t> hash_key;   // routing key for consistent_hash
  std::optional<bool> idempotent;     // overrides the method's (retry override)
  int max_attempts = 0;               // 0: the channel's

  static CallOptions WithHashKey(std::string_view key) {
    CallOptions o;
    o.hash_key = Hash64(key);
    return o;
  }
};

// Handed to an attempt so it can say when its request has fully left: a failure before
// MarkSent() is always safe to retry; after it only for idempotent methods.
class CallPhase {
 public:
  void MarkSent() { sent_ = true; }
  bool sent() const { return sent_; }

 private:
  bool sent_ = false;
};

// One failed attempt, kept for the error message.
struct AttemptFailure {
  std::string address;
  StatusCode code = StatusCode::kOk;
  std::string detail;
};

// The exception a failed call throws. A TTransportException so that code written for plain
// Thrift clients handles it as it handles any transport error.
class CallError : public apache::thrift::transport::TTransportException {
 public:
  CallError(StatusCode code, std::string message, std::vector<AttemptFailure> attempts);
  StatusCode code() const { return code_; }
  const std::vector<AttemptFailure>& attempts() const { return attempts_; }

 private:
  StatusCode code_;
  std::vector<AttemptFailure> attempts_;
};

struct ChannelOptions {
  std::string service_name = "service";  // for errors, logs and metrics
  std::string balancer = "p2c_least_loaded";
  BalancerContext balancer_context;
  PoolOptions pool;
  Duration default_timeout = std::chrono::seconds(1);
  int max_attempts = 3;
  RetryBudgetOptions retry_budget;
  BackoffOptions backoff;
  OutlierOptions outlier;
  // Endpoints that join a non-empty set or come back from ejection get a growing share of
  // traffic over slow_start.window (fulcrum/slow_start.h).
  SlowStartOptions slow_start;
  const Clock* clock = &Clock::Real();
  // Master-slave routing: writes (and reads, unless read_from_slaves) go to the master of the
  // newest epoch of each group; see the top of this file.
  bool master_slave = false;
  // Master-slave only: methods with MethodTraits::read are balanced over every instance.
  bool read_from_slaves = false;
  // Record calls for /metrics and the admin pages (fulcrum/metrics.h, fulcrum/admin.h): a few
  // atomic additions per call, no lock, no allocation.
  bool metrics = true;
};

// A point-in-time view of one endpoint, for tools, the demo and tests.
struct EndpointReport {
  std::string address;
  uint32_t weight = 0;
  int32_t in_flight = 0;
  uint64_t calls = 0;
  uint64_t failures = 0;
  double ewma_ms = 0;
  bool ejected = false;
  uint32_t ejections = 0;    // times ejected (reset after a long stretch back in rotation)
  int open_connections = 0;  // idle ones included
  int idle_connections = 0;
};

class Channel {
 public:
  // Creates a channel whose endpoints come from `target` (a resolver URI).
  static StatusOr<std::shared_ptr<Channel>> Create(std::string_view target, ChannelOptions options);
  static StatusOr<std::shared_ptr<Channel>> Create(std::unique_ptr<Resolver> resolver,
                                                   ChannelOptions options);
  ~Channel();

  // Runs `attempt(Client&, CallPhase&)` (or `attempt(Client&)`, taken as sent from the start)
  // on a balanced, pooled connection, retrying where safe. Returns what the attempt returns.
  template <class Client, class Fn>
  auto Call(const MethodTraits& method, const CallOptions& options, Fn&& attempt);

  // Replaces the endpoint set (resolvers call this through the listener; tests may directly).
  void UpdateEndpoints(EndpointSet endpoints);

  std::vector<EndpointReport> Endpoints() const;
  // True while too few endpoints are healthy and the channel balances over all of them.
  bool panic() const;
  const ChannelOptions& options() const { return options_; }
  // Retries refused by the budget, and calls that ran out of endpoints; for metrics.
  uint64_t budget_exhausted() const { return budget_exhausted_.load(std::memory_order_relaxed); }
  // Master-slave: times a call waited for the resolver to deliver a (newer) master, and
  // NotMaster redirects followed; for metrics and tests.
  uint64_t master_waits() const { return master_waits_.load(std::memory_order_relaxed); }
  uint64_t redirects() const { return redirects_.load(std::memory_order_relaxed); }

  // Re-admits ejected endpoints whose time is up, ejects endpoints much slower than their
  // peers (when OutlierOptions::latency_interval has passed since the last look), ends slow
  // starts, and closes idle connections. The channel's own housekeeping thread calls it; tests
  // driving a FakeClock may call it directly.
  void Tick();

  // Stops the resolver and the housekeeping thread and closes idle connections; later calls
  // fail. Calls in flight finish.
  void Shutdown();

 private:
  class Listener;
  struct MasterView;
  using AttemptFn = void (*)(void* closure, Connection& conn, CallPhase& phase);

  Channel(ChannelOptions options, std::unique_ptr<Balancer> balancer,
          std::unique_ptr<Balancer> master_balancer);
  Status Init(std::unique_ptr<Resolver> resolver);

  // The non-template engine behind Call. Throws CallError, or rethrows an application
  // exception raised by the attempt.
  void Invoke(const MethodTraits& method, const CallOptions& options, AttemptFn fn, void* closure);
  // What InvokeAttempts tells Invoke for the call's metrics.
  struct CallRecord {
    internal::ClientMethodStats* stats = nullptr;  // null: metrics off
    int attempts = 0;                              // attempts made on an endpoint
    bool nested_failure = false;                   // a Fulcrum call made inside the attempt failed
    TimePoint end{};  // when the successful attempt ended (the epoch if none did)
  };
  // Invoke's engine: picks, attempts and retries. `start`: when the call began.
  void InvokeAttempts(const MethodTraits& method, const CallOptions& options, AttemptFn fn,
                      void* closure, TimePoint start, CallRecord& record);
  void RebuildLocked();         // re-filters backends and publishes a new picker; needs mu_
  void PublishMastersLocked();  // master-slave: publishes masters_ and wakes waiting calls
  // Master-slave: the picker a call of `method` picks from (the masters' or everyone's).
  std::shared_ptr<const Picker> RoutePicker(bool to_master) const;
  // Master-slave: where a NotMaster refusal from `from` sends the call next, or null when the
  // call should wait for a newer endpoint set instead. `told_epoch`: the newest epoch an
  // earlier redirect of the same call named (0 if none); an older one is stale.
  BackendPtr RedirectTarget(const Backend& from, const NotMaster& redirect,
                            int64_t told_epoch) const;
  // Master-slave: the picker after waiting for a route: `told` (the master the newest
  // redirect followed named, of `told_epoch`) while the endpoint set has not caught up with
  // it, else RoutePicker(to_master).
  std::shared_ptr<const Picker> PickerAfterWait(bool to_master, const BackendPtr& told,
                                                int64_t told_epoch) const;
  // Master-slave: waits until a newer endpoint set is published, a few milliseconds, or the
  // deadline, whichever comes first. False when the deadline has passed or the channel is
  // shut down.
  bool WaitForRoute(TimePoint deadline);
  // Before the resolver's first endpoint set: waits for it (or a discovery error, shutdown,
  // the deadline). True when a set arrived, so picking again may find an endpoint.
  bool WaitForFirstEndpoints(TimePoint deadline);
  void OnDiscoveryError(const Status& status);
  // "no endpoint available", and why when discovery knows.
  std::string NoEndpointReason();
  bool RouteShutDown();
  void OnAttemptFailure(const Backend& backend);
  // Tick without closing idle connections (which disturbs the pools' fast path, so the
  // housekeeping thread does it only every half second).
  void CheckOutliers();
  void HousekeepingLoop();
  [[noreturn]] void Fail(const MethodTraits& method, StatusCode code, std::string_view what,
                         std::vector<AttemptFailure> failures, int attempts) const;

  const ChannelOptions options_;
  const Clock& clock_;
  Snapshot<Picker> picker_;
  RetryBudget budget_;
  OutlierDetector outlier_;
  std::atomic<uint64_t> budget_exhausted_{0};
  std::atomic<uint64_t> master_waits_{0};
  std::atomic<uint64_t> redirects_{0};
  // Master-slave only: the masters of the newest epoch of each group, and what a redirect
  // needs to follow (every endpoint, each group's newest epoch).
  Snapshot<MasterView> masters_;
  std::mutex route_mu_;  // guards the four below; waiting calls sleep on route_cv_
  std::condition_variable route_cv_;
  uint64_t route_generation_ = 0;
  bool route_shutdown_ = false;
  // The resolver has delivered an endpoint set (or reported an error) at least once. Until
  // then a call that finds no endpoint waits for the first set instead of failing.
  bool resolved_ = false;
  std::string discovery_error_;  // the resolver's last error, cleared by the next set

  mutable std::mutex mu_;  // guards everything below; never held on the call path
  std::unique_ptr<Balancer> balancer_;
  std::unique_ptr<Balancer> master_balancer_;  // master-slave only: a second instance
  std::unique_ptr<Resolver> resolver_;
  std::unique_ptr<Listener> listener_;
  BackendList backends_;  // the current set, ejected ones included
  std::unordered_map<std::string, BackendPtr> by_address_;
  bool panic_ = false;
  bool closed_ = false;  // Shutdown() ran: every picker published from now on is empty
  // When the next ejection or slow start ends, in nanoseconds on clock_ (kNever: none). Written
  // under mu_, read by the housekeeping thread without it.
  static constexpr int64_t kNever = INT64_MAX;
  std::atomic<int64_t> next_unejection_ns_{kNever};
  int64_t next_latency_check_ns_ = 0;  // on clock_

  std::mutex housekeeping_mu_;  // guards the two below; taken after mu_, never before it
  std::condition_variable housekeeping_cv_;
  bool shutdown_ = false;
  bool housekeeping_wake_ = false;  // an earlier re-admission time was set
  std::thread housekeeping_;
  // Null with ChannelOptions::metrics off. Last: destroyed first, so a scrape never reads a
  // channel whose members are being destroyed.
  std::unique_ptr<internal::ChannelMetrics> metrics_;
};

template <class Client, class Fn>
auto Channel::Call(const MethodTraits& method, const CallOptions& options, Fn&& attempt) {
  constexpr bool kTakesPhase = std::is_invocable_v<Fn&, Client&, CallPhase&>;
  using Result = std::conditional_t<kTakesPhase, std::invoke_result<Fn&, Client&, CallPhase&>,
                                    std::invoke_result<Fn&, Client&>>::type;
  struct Closure {
    Fn* fn;
    std::conditional_t<std::is_void_v<Result>, bool, std::optional<Result>> result;
  } closure{&attempt, {}};
  AttemptFn trampoline = [](void* c, Connection& conn, CallPhase& phase) {
    auto* self = static_cast<Closure*>(c);
    Client& client = conn.As<Client>();
    if constexpr (!kTakesPhase) phase.MarkSent();
    auto run = [&]() -> decltype(auto) {
      if constexpr (kTakesPhase) {
        return (*self->fn)(client, phase);
      } else {
        return (*self->fn)(client);
      }
    };
    if constexpr (std::is_void_v<Result>) {
      run();
    } else {
      self->result.emplace(run());
    }
  };
  Invoke(method, options, trampoline, &closure);
  if constexpr (!std::is_void_v<Result>) return std::move(*closure.result);
}

}  // namespace fulcrum
