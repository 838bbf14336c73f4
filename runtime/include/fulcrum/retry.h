// Retry policy pieces: a budget that caps retries as a share of calls, and jittered backoff.
//
//   RetryBudget budget({.ratio = 0.2, .min_per_second = 10});
//   budget.OnCall();                       // every call deposits
//   if (budget.TryWithdraw()) { retry(); } // every retry withdraws
//
// Thread-safe (lock-free).
#pragma once

#include <atomic>
#include <cstdint>

#include "fulcrum/clock.h"
#include "fulcrum/random.h"

namespace fulcrum {

struct RetryBudgetOptions {
  // Retries allowed as a share of calls: 0.2 lets an outage add at most 20% load, not 200%.
  double ratio = 0.2;
  // Retries always allowed per second however few calls there are, so a quiet client still
  // retries its rare failures.
  int min_per_second = 10;
};

class RetryBudget {
 public:
  explicit RetryBudget(RetryBudgetOptions options, const Clock& clock = Clock::Real());

  void OnCall();
  // Takes one retry's worth; false when the budget is spent.
  bool TryWithdraw();
  // Retries currently available (approximate; for metrics and tests).
  double Available() const;

 private:
  static constexpr int64_t kScale = 1000;  // one retry = kScale units
  void Refill();

  const RetryBudgetOptions options_;
  const Clock& clock_;
  const int64_t deposit_;   // units per call
  const int64_t capacity_;  // units
  std::atomic<int64_t> balance_;
  std::atomic<int64_t> last_refill_ns_;
};

struct BackoffOptions {
  Duration initial = std::chrono::milliseconds(2);
  Duration max = std::chrono::milliseconds(100);
  double multiplier = 2.0;
};

// Full-jitter exponential backoff before retry number `retry` (1-based): uniform in
// [0, min(max, initial * multiplier^(retry-1))].
Duration Backoff(const BackoffOptions& options, int retry, Random& rng);

}  // namespace fulcrum
