// FakeClock: a Clock that moves only when a test advances it.
//
//   fulcrum::testing::FakeClock clock;
//   clock.Advance(std::chrono::milliseconds(5));
//
// Thread-safe.
#pragma once

#include <atomic>

#include "fulcrum/clock.h"

namespace fulcrum::testing {

class FakeClock final : public Clock {
 public:
  // Starts at 1 s rather than 0 so that "0 means unset" fields are never confused with now.
  explicit FakeClock(TimePoint start = FromNanos(1'000'000'000)) : now_ns_(ToNanos(start)) {}
  TimePoint Now() const override { return FromNanos(now_ns_.load(std::memory_order_acquire)); }
  void Advance(Duration d) { now_ns_.fetch_add(d.count(), std::memory_order_acq_rel); }
  void Set(TimePoint t) { now_ns_.store(ToNanos(t), std::memory_order_release); }

 private:
  std::atomic<int64_t> now_ns_;
};

}  // namespace fulcrum::testing
