// Clock: the runtime's only source of time, injected everywhere so tests can use a FakeClock
// (runtime/testing/fake_clock.h) instead of sleeping.
//
//   const fulcrum::Clock& clock = fulcrum::Clock::Real();
//   fulcrum::TimePoint start = clock.Now();
//
// Implementations must be thread-safe.
#pragma once

#include <chrono>
#include <cstdint>

namespace fulcrum {

using Duration = std::chrono::nanoseconds;
// Nanoseconds on a monotonic clock. Plain integers keep atomics and arithmetic cheap.
using TimePoint = std::chrono::time_point<std::chrono::steady_clock, Duration>;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;

  // The process-wide steady clock.
  static const Clock& Real();
};

inline int64_t ToNanos(TimePoint t) { return t.time_since_epoch().count(); }
inline TimePoint FromNanos(int64_t ns) { return TimePoint(Duration(ns)); }

}  // namespace fulcrum
