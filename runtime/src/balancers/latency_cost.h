// The cost the latency-aware balancers (least_response_time, peak_ewma) minimise: the expected
// time a new call would wait, latency * (in_flight + 1). Multiplying by the queue keeps the
// fastest endpoint from being herded: as calls pile onto it, its cost rises.
//
// An endpoint without a latency sample yet costs 0 while it is idle, so it is tried at once
// (never starved), and a huge penalty while its first call is outstanding, so it is not sent a
// burst before anyone knows how fast it is (Finagle's peak EWMA does the same). The pickers
// also probe idle endpoints now and then (PickTwoChoices, probe_idle), so an endpoint that was
// slow is measured again and wins its traffic back once it recovers.
//
// Thread-safety: pure functions of atomics.
#pragma once

#include "balancers/backend_table.h"

namespace fulcrum::balancers {

inline constexpr double kUnprobedPenalty = 1e18;  // ns: above any real latency * queue

inline double LatencyCost(const EndpointStats& s, double latency_ns) {
  const int32_t in_flight = s.in_flight();
  if (!s.has_latency()) return in_flight <= 0 ? 0.0 : kUnprobedPenalty;
  return latency_ns * static_cast<double>((in_flight > 0 ? in_flight : 0) + 1);
}

}  // namespace fulcrum::balancers
