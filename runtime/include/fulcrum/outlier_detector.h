// OutlierDetector: passive failure detection. Consecutive failures eject an endpoint for a
// growing time; at most a set share of endpoints is ejected at once; when too few endpoints
// look healthy the channel uses all of them (panic mode) rather than none.
//
//   OutlierDetector detector(options, clock);
//   if (detector.MaybeEject(backend, all)) rebuild();          // after a failed call
//   BackendList usable = detector.Filter(all, &next, &panic);   // when (re)building the picker
//
// Ejection state lives in each backend's EndpointStats, so it survives endpoint-set updates.
// Thread-safe given that the caller serialises MaybeEject and Filter (the channel holds its
// control-plane lock for both).
#pragma once

#include <cstdint>

#include "fulcrum/balancer.h"
#include "fulcrum/clock.h"

namespace fulcrum {

struct OutlierOptions {
  uint32_t consecutive_failures = 5;                 // 0 disables ejection
  Duration base_ejection = std::chrono::seconds(1);  // doubled on every re-ejection
  Duration max_ejection = std::chrono::seconds(30);
  double max_ejected_share = 0.5;  // never eject more than this share of endpoints
  // Panic when the share of healthy endpoints falls below this: balance over all of them.
  double panic_threshold = 0.5;
};

class OutlierDetector {
 public:
  OutlierDetector(OutlierOptions options, const Clock& clock);

  // Called after a failed call on `b`, one of `all`. Ejects `b` when it has failed
  // consecutive_failures times in a row and the cap allows. Returns true when it ejected.
  bool MaybeEject(const Backend& b, const BackendList& all) const;

  // The backends to balance over now: those not ejected, or all of them in panic mode.
  // Re-admits backends whose ejection has expired. `next_change` gets the earliest expiry of
  // a remaining ejection (TimePoint::max() if none).
  BackendList Filter(const BackendList& all, TimePoint* next_change, bool* panic) const;

  bool IsEjected(const Backend& b) const;

 private:
  const OutlierOptions options_;
  const Clock& clock_;
};

}  // namespace fulcrum
