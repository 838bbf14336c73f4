// EndpointStats: what the client has learned about one endpoint (in-flight calls, latency EWMA,
// failures, ejection). It lives outside the endpoint-set snapshots, keyed by address, so that a
// new endpoint list keeps what was learned about the endpoints that stay.
//
//   stats.OnStart();
//   ... call ...
//   stats.OnFinish(clock.Now(), latency, /*success=*/true);
//
// Thread-safe: every field is an atomic. Updates from concurrent calls may lose a sample of
// the EWMA (relaxed load/store); counters are exact.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>

#include "fulcrum/clock.h"

namespace fulcrum {

class EndpointStats {
 public:
  // decay: the EWMA time constant. A sample `decay` old weighs 1/e of a fresh one.
  explicit EndpointStats(Duration decay = std::chrono::seconds(1))
      : id_(NextId()), decay_ns_(static_cast<double>(decay.count())) {}

  // Unique in the process, never reused: what identifies an endpoint across endpoint-set
  // updates (a weight, role or epoch change copies its Backend but keeps its statistics; a new
  // server at a reused address gets new ones).
  uint64_t id() const { return id_; }

  void OnStart() { in_flight_.fetch_add(1, std::memory_order_relaxed); }

  // Records the end of a call started with OnStart(). `success` is false for transport errors,
  // timeouts and framework errors; declared IDL exceptions are successes.
  void OnFinish(TimePoint now, Duration latency, bool success) {
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
    calls_.fetch_add(1, std::memory_order_relaxed);
    if (success) {
      if (consecutive_failures_.load(std::memory_order_relaxed) != 0) {
        consecutive_failures_.store(0, std::memory_order_relaxed);
      }
      RecordLatency(now, latency);
    } else {
      failures_.fetch_add(1, std::memory_order_relaxed);
      consecutive_failures_.fetch_add(1, std::memory_order_relaxed);
    }
  }

  // Ends a call abandoned after `at_least` because another endpoint answered it first (a
  // hedge won). Its latency is unknown but no less: a sample only when that says the endpoint
  // is slower than its EWMA shows (a lower bound never pulls the figure down); not a failure.
  void OnOutrun(TimePoint now, Duration at_least) {
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
    calls_.fetch_add(1, std::memory_order_relaxed);
    if (!has_latency() || static_cast<double>(at_least.count()) > ewma_ns()) {
      RecordLatency(now, at_least);
    }
  }

  // Ends a call started with OnStart() that never reached the endpoint for reasons that are not
  // its fault (the local pool was exhausted or closed): no sample, no failure.
  void OnAbandon() { in_flight_.fetch_sub(1, std::memory_order_relaxed); }

  int32_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }
  uint32_t consecutive_failures() const {
    return consecutive_failures_.load(std::memory_order_relaxed);
  }
  uint64_t calls() const { return calls_.load(std::memory_order_relaxed); }
  uint64_t failures() const { return failures_.load(std::memory_order_relaxed); }

  // Latency EWMA in nanoseconds; 0 until the first successful call.
  double ewma_ns() const { return ewma_ns_.load(std::memory_order_relaxed); }
  // Peak-sensitive EWMA (Finagle's peak EWMA): jumps up to a slower sample at once, decays
  // down with the time constant. 0 until the first successful call.
  double peak_ewma_ns() const { return peak_ewma_ns_.load(std::memory_order_relaxed); }
  bool has_latency() const { return last_sample_ns_.load(std::memory_order_relaxed) != 0; }

  // Successful calls since construction or the last RestartLatency(): what the latency figures
  // stand on.
  uint64_t latency_samples() const {
    const uint64_t ok = calls() - failures();
    const uint64_t base = latency_base_.load(std::memory_order_relaxed);
    return ok > base ? ok - base : 0;
  }

  // Forgets the latency learned so far: the next successful call starts both EWMAs afresh, and
  // latency_samples() counts from 0. An endpoint back from ejection is judged on what it does
  // now, not on the EWMA that got it ejected (which would take seconds to decay). A call
  // finishing meanwhile may blend into the old value; the next ones correct it.
  void RestartLatency() {
    last_sample_ns_.store(0, std::memory_order_relaxed);
    ewma_ns_.store(0, std::memory_order_relaxed);
    peak_ewma_ns_.store(0, std::memory_order_relaxed);
    latency_base_.store(calls() - failures(), std::memory_order_relaxed);
  }

  // Ejection state, owned by the outlier detector (runtime/src/outlier_detector.cc).
  std::atomic<int64_t> ejected_until_ns{0};  // 0: not ejected
  std::atomic<uint32_t> ejections{0};        // times ejected; drives the backoff
  // When the endpoint joined the set or came back from ejection, in nanoseconds on the
  // channel's clock; 0: serving from the start. Slow start ramps its traffic from here.
  std::atomic<int64_t> serving_since_ns{0};
  std::atomic<uint32_t> latency_strikes{0};  // latency checks in a row it stood out at

  // For tests: forget consecutive failures, as a success would.
  void ResetFailures() { consecutive_failures_.store(0, std::memory_order_relaxed); }

 private:
  void RecordLatency(TimePoint now, Duration latency) {
    const int64_t now_ns = ToNanos(now);
    const double rtt = static_cast<double>(latency.count());
    const int64_t last =
        last_sample_ns_.exchange(now_ns == 0 ? 1 : now_ns, std::memory_order_relaxed);
    if (last == 0) {
      ewma_ns_.store(rtt, std::memory_order_relaxed);
      peak_ewma_ns_.store(rtt, std::memory_order_relaxed);
      return;
    }
    const double dt = static_cast<double>(now_ns > last ? now_ns - last : 0);
    // The weight of the old value: by time, but never more than a plain mean of the samples so
    // far would give it. Otherwise the first sample (a connection set-up included) held the
    // EWMA for seconds when calls come every few microseconds: each then weighs dt / decay.
    const uint64_t n = latency_samples();
    double w = std::exp(-dt / decay_ns_);
    if (n >= 2) w = std::min(w, static_cast<double>(n - 1) / static_cast<double>(n));
    const double old = ewma_ns_.load(std::memory_order_relaxed);
    ewma_ns_.store(old * w + rtt * (1.0 - w), std::memory_order_relaxed);
    const double peak = peak_ewma_ns_.load(std::memory_order_relaxed);
    peak_ewma_ns_.store(rtt > peak ? rtt : peak * w + rtt * (1.0 - w), std::memory_order_relaxed);
  }

  static uint64_t NextId() {
    static std::atomic<uint64_t> next{1};
    return next.fetch_add(1, std::memory_order_relaxed);
  }

  const uint64_t id_;
  const double decay_ns_;
  std::atomic<int32_t> in_flight_{0};
  std::atomic<uint32_t> consecutive_failures_{0};
  std::atomic<uint64_t> calls_{0};
  std::atomic<uint64_t> failures_{0};
  std::atomic<double> ewma_ns_{0};
  std::atomic<double> peak_ewma_ns_{0};
  std::atomic<int64_t> last_sample_ns_{0};
  std::atomic<uint64_t> latency_base_{0};  // successful calls at the last RestartLatency()
};

}  // namespace fulcrum
