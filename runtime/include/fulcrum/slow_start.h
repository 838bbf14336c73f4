// Slow start: an endpoint that just joined the set, or came back from ejection, gets a share of
// traffic that grows over a window instead of its whole share at once (Envoy's
// slow_start_config). A cold server warms up, and one ejected for being slow proves itself on a
// little traffic before it gets a full share again.
//
//   fulcrum::ChannelOptions opts;
//   opts.slow_start.window = std::chrono::seconds(30);
//
// While an endpoint ramps, a pick of it stands with probability
//   max(min_weight, (time serving / window) ^ (1 / aggression))
// and otherwise the balancer picks again without the ramping endpoints. The endpoints of the
// first set a channel sees do not ramp (there is nobody to shift their traffic to), and when
// every usable endpoint ramps none does.
//
// Thread-safety: WithSlowStart is a pure function; the picker it returns is immutable and
// thread-safe like any other.
#pragma once

#include <memory>

#include "fulcrum/balancer.h"
#include "fulcrum/clock.h"

namespace fulcrum {

struct SlowStartOptions {
  Duration window = std::chrono::seconds(10);  // zero disables slow start
  double min_weight = 0.1;  // the share of its picks a ramping endpoint keeps at first
  double aggression = 1.0;  // > 1: the share grows faster early in the window
};

// The share of its picks an endpoint that has been serving for `elapsed` keeps: in
// [min_weight, 1], 1 from the end of the window on.
double SlowStartFactor(const SlowStartOptions& options, Duration elapsed);

// What a channel publishes: `child` itself when no endpoint of `backends` ramps at
// `ctx.clock->Now()`, else a picker that thins out the ramping endpoints' picks. `ramp_end`
// gets the earliest end of a ramp (TimePoint::max() if none): the picker should be rebuilt then.
// An endpoint ramps when its EndpointStats::serving_since_ns is set and less than a window ago.
std::shared_ptr<const Picker> WithSlowStart(std::shared_ptr<const Picker> child,
                                            const BackendList& backends,
                                            const SlowStartOptions& options,
                                            const BalancerContext& ctx, TimePoint* ramp_end);

}  // namespace fulcrum
