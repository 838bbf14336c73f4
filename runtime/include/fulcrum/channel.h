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

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <thrift/transport/TTransportException.h>

#include "fulcrum/balancer.h"
#include "fulcrum/clock.h"
#include "fulcrum/connection.h"
#include "fulcrum/future.h"
#include "fulcrum/hash.h"
#include "fulcrum/outlier_detector.h"
#include "fulcrum/resolver.h"
#include "fulcrum/retry.h"
#include "fulcrum/slow_start.h"
#include "fulcrum/status.h"

namespace fulcrum {

// What the IDL says about a method; compiled into generated code.
struct MethodTraits {
  const char* name = "";
  bool idempotent = false;  // retrying on another endpoint is safe
  bool oneway = false;      // no reply: never retried once sent
  int32_t timeout_ms = 0;   // 0: the channel's default
  bool read = false;        // a slave may serve it (master-slave mode)
  // Idempotent two-way methods: when no reply has come this long after the request left, a
  // second attempt (a hedge) goes to another endpoint and the first answer wins. 0: the
  // channel's ChannelOptions::hedge_delay.
  int32_t hedge_ms = 0;
};

// Per-call choices; all optional.
struct CallOptions {
  std::optional<Duration> timeout;    // overrides the method's and the channel's
  std::optional<TimePoint> deadline;  // absolute; the earlier of this and timeout wins
  std::optional<uint64_t> hash_key;   // routing key for consistent_hash
  std::optional<bool> idempotent;     // overrides the method's (retry override)
  int max_attempts = 0;               // 0: the channel's
  // Overrides the method's and the channel's hedge delay; zero: no hedge for this call.
  std::optional<Duration> hedge_delay;

  static CallOptions WithHashKey(std::string_view key) {
    CallOptions o;
    o.hash_key = Hash64(key);
    return o;
  }
};

namespace internal {
// Told when an attempt's request has left (the channel's hedging, call/pooled_attempt.h). May
// throw to end the attempt, with an exception no attempt code catches.
class SentHook {
 public:
  virtual void OnSent() = 0;

 protected:
  ~SentHook() = default;
};
// An asynchronous call's typed end (Channel::CallAsync): reads its reply, completes its future.
class AsyncReceiver {
 public:
  virtual ~AsyncReceiver() = default;
  // Reads one reply (throws what the stock client's recv_x throws) and keeps what it returns.
  virtual void Read(apache::thrift::protocol::TProtocol& in) = 0;
  // The call ended: with the result kept by the last Read (error null), or with `error`.
  virtual void Finish(std::exception_ptr error) = 0;
  // What the future's Cancel() does to the call.
  virtual void OnCancel(std::function<void()> cancel) = 0;
};

template <class Client, class Recv, class R>
class TypedReceiver final : public AsyncReceiver {
 public:
  explicit TypedReceiver(Recv recv) : recv_(std::move(recv)) {}
  Future<R> future() const { return promise_.future(); }

  void Read(apache::thrift::protocol::TProtocol& in) override {
    // The stock client wants a shared_ptr; this one owns nothing (no allocation).
    Client client(
        std::shared_ptr<apache::thrift::protocol::TProtocol>(std::shared_ptr<void>(), &in));
    if constexpr (std::is_void_v<R>) {
      recv_(client);
      value_.emplace();
    } else {
      value_.emplace(recv_(client));
    }
  }
  void Finish(std::exception_ptr error) override {
    if (error) {
      promise_.SetError(std::move(error));
    } else {
      promise_.SetValue(std::move(*value_));
    }
  }
  void OnCancel(std::function<void()> cancel) override { promise_.OnCancel(std::move(cancel)); }

 private:
  Recv recv_;
  Promise<R> promise_;
  std::optional<Stored<R>> value_;
};

// This thread's buffer for an asynchronous call's request, reset, and the bytes written to it.
std::shared_ptr<apache::thrift::protocol::TProtocol> RequestProtocol(Protocol protocol);
std::string TakeRequest();
}  // namespace internal

// Handed to an attempt so it can say when its request has fully left: a failure before
// MarkSent() is always safe to retry; after it only for idempotent methods. With hedging on,
// MarkSent() is also where the attempt waits for the reply to come or for a hedge to win: an
// attempt must not catch what MarkSent() throws (`catch (...)` around it breaks hedging).
class CallPhase {
 public:
  CallPhase() = default;
  explicit CallPhase(internal::SentHook* hook) : hook_(hook) {}

  void MarkSent() {
    sent_ = true;
    if (hook_ != nullptr) hook_->OnSent();
  }
  bool sent() const { return sent_; }

 private:
  friend class Channel;
  // An attempt that does not take a CallPhase is taken as sent from its start: nothing to
  // hedge on (the request and the reply are one call).
  void AssumeSent() {
    sent_ = true;
    hook_ = nullptr;
  }

  bool sent_ = false;
  internal::SentHook* hook_ = nullptr;
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
  // Hedged requests for idempotent two-way methods without their own (MethodTraits::hedge_ms):
  // when no reply has come this long after the request left, a second attempt goes to another
  // endpoint, and the first answer wins; the other attempt's connection serves again only once
  // its late reply has come and been dropped (else it is closed). A hedge is an attempt: it
  // needs max_attempts >= 2 and a token from the retry budget. Stateless channels only. Zero:
  // no hedging.
  Duration hedge_delay = Duration::zero();
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

class Channel : public std::enable_shared_from_this<Channel> {
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

  // Asynchronous: `send(Client&)` writes the request now, on this thread (the stock client's
  // send_x), and `recv(Client&)` reads the reply later (its recv_x), on the runtime's event
  // thread. Returns at once with the future of what `recv` returns. Balancing, deadlines,
  // retries where safe, the retry budget, ejection, master-slave routing and declared
  // exceptions are those of Call; many calls share a few pipelined connections per endpoint
  // (PoolOptions::pipelined_connections). No hedging. `method` must outlive the call (the
  // generated MethodTraits are static).
  //
  //   Future<int32_t> sum = channel->CallAsync<CalculatorClient>(
  //       kAdd, {}, [](CalculatorClient& c) { c.send_add(1, 2); },
  //       [](CalculatorClient& c) { return c.recv_add(); });
  template <class Client, class Send, class Recv>
  auto CallAsync(const MethodTraits& method, const CallOptions& options, Send&& send, Recv&& recv);

  // Replaces the endpoint set (resolvers call this through the listener; tests may directly).
  void UpdateEndpoints(EndpointSet endpoints);

  std::vector<EndpointReport> Endpoints() const;
  // True while too few endpoints are healthy and the channel balances over all of them.
  bool panic() const;
  const ChannelOptions& options() const;
  // Retries refused by the budget, and calls that ran out of endpoints; for metrics.
  uint64_t budget_exhausted() const;
  // Master-slave: times a call waited for the resolver to deliver a (newer) master, and
  // NotMaster redirects followed; for metrics and tests.
  uint64_t master_waits() const;
  uint64_t redirects() const;

  // Re-admits ejected endpoints whose time is up, ejects endpoints much slower than their
  // peers (when OutlierOptions::latency_interval has passed since the last look), ends slow
  // starts, and closes idle connections. The channel's own housekeeping thread calls it; tests
  // driving a FakeClock may call it directly.
  void Tick();

  // Stops the resolver and the housekeeping thread and closes idle connections; later calls
  // fail. Calls in flight finish.
  void Shutdown();

 private:
  struct Impl;
  using AttemptFn = void (*)(void* closure, Connection& conn, CallPhase& phase);

  explicit Channel(std::unique_ptr<Impl> impl);

  // The non-template engine behind Call. Throws CallError, or rethrows an application
  // exception raised by the attempt.
  void Invoke(const MethodTraits& method, const CallOptions& options, AttemptFn fn, void* closure);

  // The non-template engine behind CallAsync; completes `receiver`.
  void InvokeAsync(const MethodTraits& method, const CallOptions& options, std::string request,
                   std::shared_ptr<internal::AsyncReceiver> receiver);

  std::unique_ptr<Impl> impl_;
};

template <class Client, class Send, class Recv>
auto Channel::CallAsync(const MethodTraits& method, const CallOptions& options, Send&& send,
                        Recv&& recv) {
  using R = std::invoke_result_t<Recv&, Client&>;
  auto receiver = std::make_shared<internal::TypedReceiver<Client, std::decay_t<Recv>, R>>(
      std::forward<Recv>(recv));
  Future<R> future = receiver->future();
  std::string request;
  try {
    Client client(internal::RequestProtocol(this->options().pool.protocol));
    send(client);
    request = internal::TakeRequest();
  } catch (...) {
    internal::TakeRequest();  // drops what was written
    receiver->Finish(std::current_exception());
    return future;
  }
  InvokeAsync(method, options, std::move(request), std::move(receiver));
  return future;
}

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
    if constexpr (!kTakesPhase) phase.AssumeSent();
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
