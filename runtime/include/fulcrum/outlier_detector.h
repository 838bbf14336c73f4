// OutlierDetector: passive failure and latency detection. Consecutive failures eject an endpoint
// for a growing time, and so does a latency much worse than its peers'; at most a set share of
// endpoints is ejected at once; when too few endpoints look healthy the channel uses all of them
// (panic mode) rather than none.
//
//   OutlierDetector detector(options, clock);
//   if (detector.MaybeEject(backend, all)) rebuild();          // after a failed call
//   if (detector.EjectSlow(all) > 0) rebuild();                 // every latency_interval
//   BackendList usable = detector.Filter(all, &next, &panic);   // when (re)building the picker
//
// Ejection state lives in each backend's EndpointStats, so it survives endpoint-set updates.
// Thread-safe given that the caller serialises MaybeEject, EjectSlow and Filter (the channel
// holds its control-plane lock for all three).
#pragma once

#include <cstdint>

#include "fulcrum/balancer.h"
#include "fulcrum/clock.h"

namespace fulcrum {

struct OutlierOptions {
  uint32_t consecutive_failures = 5;                 // 0 disables ejection on failures
  Duration base_ejection = std::chrono::seconds(1);  // doubled on every re-ejection
  Duration max_ejection = std::chrono::seconds(30);
  double max_ejected_share = 0.5;  // never eject more than this share of endpoints
  // Panic when the share of healthy endpoints falls below this: balance over all of them.
  double panic_threshold = 0.5;

  // Latency ejection: an endpoint whose latency EWMA (EndpointStats::ewma_ns) is more than
  // latency_factor times the median of its peers' and at least latency_min_gap above it is
  // ejected, under the same cap, panic rule and growing ejection times as for failures. Only
  // endpoints with latency_min_samples successful calls since they joined or came back are
  // judged or compared, so an endpoint back from ejection (its EWMA forgotten) is judged on
  // what it does now. Checked every latency_interval by the channel's housekeeping thread; an
  // endpoint must stand out at latency_checks checks in a row (a blip, such as its first calls
  // opening connections, does not eject it).
  double latency_factor = 2.0;  // 0 disables latency ejection
  Duration latency_min_gap = std::chrono::microseconds(500);
  uint32_t latency_min_samples = 50;
  Duration latency_interval = std::chrono::milliseconds(50);
  uint32_t latency_checks = 2;
};

class OutlierDetector {
 public:
  OutlierDetector(OutlierOptions options, const Clock& clock);

  // Called after a failed call on `b`, one of `all`. Ejects `b` when it has failed
  // consecutive_failures times in a row and the cap allows. Returns true when it ejected.
  bool MaybeEject(const Backend& b, const BackendList& all) const;

  // One latency check: ejects the endpoints of `all` whose latency has stood out from their
  // peers' (see OutlierOptions) at latency_checks checks in a row, the slowest first, while the
  // cap allows. Returns how many it ejected.
  size_t EjectSlow(const BackendList& all) const;

  // The backends to balance over now: those not ejected, or all of them in panic mode.
  // Re-admits backends whose ejection has expired: their failure count and latency EWMA start
  // afresh and EndpointStats::serving_since_ns is set (slow start ramps from there).
  // `next_change` gets the earliest expiry of a remaining ejection (TimePoint::max() if none).
  BackendList Filter(const BackendList& all, TimePoint* next_change, bool* panic) const;

  bool IsEjected(const Backend& b) const;

 private:
  // Ejects `b` for its next backoff length if the cap allows; `why` goes to the log.
  bool Eject(const Backend& b, const BackendList& all, const std::string& why) const;

  const OutlierOptions options_;
  const Clock& clock_;
};

}  // namespace fulcrum
