// What a Channel records for /metrics and /status: per method, calls, errors by kind, attempts
// and retries and a latency histogram (hot_metrics.h: no lock, no allocation per call); per
// channel, ejections and resolver updates. Gauges (endpoints by state, calls in flight, pooled
// connections, the endpoint set's age) are read from the channel at scrape time.
//
//   ChannelMetrics metrics(channel, "echo", "p2c_least_loaded");
//   metrics.Attach();                                  // once the channel is constructed
//   metrics.Method("echo").OnCall(latency_ns, /*attempts=*/1);
//   CollectClientMetrics(families);                    // every live channel's, at scrape time
//
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "fulcrum/clock.h"
#include "metrics/family_set.h"
#include "metrics/hot_metrics.h"

namespace fulcrum {
class Channel;
}

namespace fulcrum::internal {

class ClientMethodStats {
 public:
  // Why one attempt failed. kLocal: this client's pool was exhausted or closed (not the
  // endpoint's fault).
  enum AttemptFailure : size_t {
    kConnect,
    kTransport,
    kTimeout,
    kProtocol,
    kApplication,
    kNotMaster,
    kLocal,
    kNumAttemptFailures
  };
  // Why a call ended with an error for its caller. kDeclared: an exception declared in the IDL
  // (the endpoint did its job); kApplication: a TApplicationException (unknown method, handler
  // crash); kNested: a Fulcrum call made inside the attempt failed.
  enum CallError : size_t {
    kErrTimeout,
    kErrUnavailable,
    kErrRetryBudget,
    kErrApplication,
    kErrDeclared,
    kErrNested,
    kErrOther,
    kNumCallErrors
  };
  static const char* Name(AttemptFailure kind);
  static const char* Name(CallError kind);

  // A finished call (whatever its outcome): its latency and the attempts it made.
  void OnCall(int64_t latency_ns, int attempts) {
    const size_t shard = ThisShard();
    hot_.Add(shard, kCalls, 1);
    if (attempts != 1) {
      if (attempts == 0) hot_.Add(shard, kNoAttempt, 1);
      if (attempts > 1) hot_.Add(shard, kRetries, static_cast<uint64_t>(attempts - 1));
    }
    hot_.Observe(shard, latency_ns);
  }
  void OnAttemptFailure(AttemptFailure kind) {
    attempt_failures_[kind].fetch_add(1, std::memory_order_relaxed);
  }
  void OnCallError(CallError kind) { call_errors_[kind].fetch_add(1, std::memory_order_relaxed); }
  // A hedge was started (counted among the call's attempts); `won`: it answered first.
  void OnHedge(bool won) {
    hedges_.fetch_add(1, std::memory_order_relaxed);
    if (won) hedges_won_.fetch_add(1, std::memory_order_relaxed);
  }

  uint64_t calls() const { return hot_.Sum(kCalls); }
  uint64_t retries() const { return hot_.Sum(kRetries); }
  uint64_t attempts() const { return calls() - hot_.Sum(kNoAttempt) + retries(); }
  uint64_t attempt_failures(AttemptFailure kind) const {
    return attempt_failures_[kind].load(std::memory_order_relaxed);
  }
  uint64_t call_errors(CallError kind) const {
    return call_errors_[kind].load(std::memory_order_relaxed);
  }
  uint64_t hedges() const { return hedges_.load(std::memory_order_relaxed); }
  uint64_t hedges_won() const { return hedges_won_.load(std::memory_order_relaxed); }
  uint64_t errors() const;
  HistogramData latency() const { return hot_.Latency(); }

 private:
  enum Hot : size_t { kCalls, kRetries, kNoAttempt, kNumHot };
  ShardedStats<kNumHot> hot_;
  std::array<std::atomic<uint64_t>, kNumAttemptFailures> attempt_failures_{};
  std::array<std::atomic<uint64_t>, kNumCallErrors> call_errors_{};
  std::atomic<uint64_t> hedges_{0};
  std::atomic<uint64_t> hedges_won_{0};
};

class ChannelMetrics {
 public:
  ChannelMetrics(const Channel& channel, std::string service, std::string balancer);
  ~ChannelMetrics();  // leaves LiveChannels()
  ChannelMetrics(const ChannelMetrics&) = delete;
  ChannelMetrics& operator=(const ChannelMetrics&) = delete;

  // Joins LiveChannels(): from now on scrapes read the channel.
  void Attach();

  ClientMethodStats& Method(std::string_view name) { return methods_.Find(name); }
  void OnEjection() { ejections_.fetch_add(1, std::memory_order_relaxed); }
  void OnResolverUpdate(TimePoint now);
  void OnResolverError() { resolver_errors_.fetch_add(1, std::memory_order_relaxed); }

  const Channel& channel() const { return channel_; }
  const std::string& service() const { return service_; }
  const std::string& balancer() const { return balancer_; }
  const MethodTable<ClientMethodStats>& methods() const { return methods_; }
  uint64_t ejections() const { return ejections_.load(std::memory_order_relaxed); }
  uint64_t resolver_updates() const { return resolver_updates_.load(std::memory_order_relaxed); }
  uint64_t resolver_errors() const { return resolver_errors_.load(std::memory_order_relaxed); }
  // Seconds since the resolver last delivered an endpoint set; negative before the first.
  double EndpointSetAgeSeconds() const;

 private:
  const Channel& channel_;
  const std::string service_;
  const std::string balancer_;
  bool attached_ = false;
  MethodTable<ClientMethodStats> methods_;
  std::atomic<uint64_t> ejections_{0};
  std::atomic<uint64_t> resolver_updates_{0};
  std::atomic<uint64_t> resolver_errors_{0};
  std::atomic<int64_t> last_update_ns_{INT64_MIN};  // on the channel's clock
};

// Adds every live channel's families to `out`.
void CollectClientMetrics(FamilySet& out);

}  // namespace fulcrum::internal
