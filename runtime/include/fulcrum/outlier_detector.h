// OutlierDetector: passive failure detection. Consecutive failures eject an endpoint for a
// growing time; at most a set share of endpoints is ejected at once; when too few endpoints
// look healthy the channel uses all of them (panic mode) rather than none.
//
//   OutlierDetector detector(options, clock);
//   bool changed = detector.OnFailure(backend);   // after a failed call
//   BackendList usable = detector.Filter(all);     // when (re)building the picker
//
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>

#include "fulcrum/balancer.h"
#include "fulcrum/clock.h"

namespace fulcrum {

struct OutlierOptions {
  uint32_t consecutive_failures = 5;  // 0 disables ejection
  Duration base_ejection = std::chrono::seconds(1);  // doubled on every re-ejection
  Duration max_ejection = std::chrono::seconds(30);
  double max_ejected_share = 0.5;  // never eject more than this share of endpoints
  // Panic when the share of healthy endpoints falls below this: use all of them.
  double panic_threshold = 0.5;
};

class OutlierDetector {
 public:
  OutlierDetector(OutlierOptions options, const Clock& clock);

  // Called after a failed call on `b`. Returns true when `b` was just ejected (the caller
  // should rebuild its picker).
  bool OnFailure(const Backend& b, size_t total_backends);
  // The backends to balance over now: those not ejected, or all of them in panic mode.
  // Also returns, through `next_change`, when an ejection expires (0 if none pending).
  BackendList Filter(const BackendList& all, TimePoint* next_change, bool* panic) const;
  int ejected() const { return ejected_.load(std::memory_order_relaxed); }

 private:
  const OutlierOptions options_;
  const Clock& clock_;
  std::atomic<int> ejected_{0};
};

}  // namespace fulcrum
