#include "fulcrum/retry.h"

#include <algorithm>
#include <cmath>

namespace fulcrum {

namespace {
// Retries the budget can bank beyond its per-second floor: bounds the burst an outage can
// draw after a long healthy stretch.
constexpr int64_t kBankedRetries = 100;
}  // namespace

RetryBudget::RetryBudget(RetryBudgetOptions options, const Clock& clock)
    : options_(options),
      clock_(clock),
      deposit_(static_cast<int64_t>(std::llround(std::max(0.0, options.ratio) * kScale))),
      capacity_(kScale * (kBankedRetries + std::max(0, options.min_per_second))),
      balance_(kScale * std::max(0, options.min_per_second)),
      last_refill_ns_(ToNanos(clock.Now())) {}

void RetryBudget::OnCall() {
  if (deposit_ == 0) return;
  int64_t after = balance_.fetch_add(deposit_, std::memory_order_relaxed) + deposit_;
  if (after > capacity_) {
    // Racy clamp: a concurrent withdrawal in between only makes the balance a bit lower.
    balance_.store(capacity_, std::memory_order_relaxed);
  }
}

void RetryBudget::Refill() {
  if (options_.min_per_second <= 0) return;
  const int64_t now = ToNanos(clock_.Now());
  int64_t last = last_refill_ns_.load(std::memory_order_relaxed);
  const int64_t elapsed = now - last;
  if (elapsed <= 0) return;
  // The floor banks at most one second's worth (below), so a longer quiet stretch counts as
  // one second: that also keeps the product from overflowing however long the client has been
  // healthy (unbounded, it wrapped after ~10.7 days at 10/s).
  constexpr int64_t kSecond = 1'000'000'000;
  const int64_t units = static_cast<int64_t>(static_cast<__int128>(std::min(elapsed, kSecond)) *
                                             options_.min_per_second * kScale / kSecond);
  if (units <= 0) return;
  if (!last_refill_ns_.compare_exchange_strong(last, now, std::memory_order_relaxed)) return;
  // The floor refills at most one second's worth: it guarantees min_per_second, no more.
  const int64_t floor_cap = kScale * options_.min_per_second;
  int64_t cur = balance_.load(std::memory_order_relaxed);
  while (cur < floor_cap) {
    const int64_t want = std::min(floor_cap, cur + units);
    if (balance_.compare_exchange_weak(cur, want, std::memory_order_relaxed)) break;
  }
}

bool RetryBudget::TryWithdraw() {
  for (int pass = 0; pass < 2; ++pass) {
    int64_t cur = balance_.load(std::memory_order_relaxed);
    while (cur >= kScale) {
      if (balance_.compare_exchange_weak(cur, cur - kScale, std::memory_order_relaxed)) {
        return true;
      }
    }
    if (pass == 0) Refill();
  }
  return false;
}

double RetryBudget::Available() const {
  return static_cast<double>(balance_.load(std::memory_order_relaxed)) / kScale;
}

Duration Backoff(const BackoffOptions& options, int retry, Random& rng) {
  double cap = static_cast<double>(options.initial.count()) *
               std::pow(options.multiplier, std::max(0, retry - 1));
  cap = std::min(cap, static_cast<double>(options.max.count()));
  if (cap <= 0) return Duration(0);
  return Duration(static_cast<int64_t>(rng.NextDouble() * cap));
}

}  // namespace fulcrum
