#include "fulcrum/slow_start.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <utility>
#include <vector>

namespace fulcrum {
namespace {

// Ids a re-pick excludes (the call's own exclusions, then the ramping endpoints). On the
// stack: a pick never allocates. Ramping endpoints past this many are not excluded, which only
// makes their ramp less strict.
constexpr size_t kMaxExcluded = 16;

struct Ramp {
  EndpointId id;
  int64_t since_ns;
};

class SlowStartPicker final : public Picker {
 public:
  SlowStartPicker(std::shared_ptr<const Picker> child, std::vector<Ramp> ramps,
                  const SlowStartOptions& options, const BalancerContext& ctx)
      : child_(std::move(child)), ramps_(std::move(ramps)), options_(options), ctx_(ctx) {}

  PickResult Pick(const PickArgs& args) const override {
    const PickResult first = child_->Pick(args);
    if (first.backend == nullptr) return first;
    const EndpointId id = IdOf(*first.backend);
    const Ramp* ramp = nullptr;
    for (const Ramp& r : ramps_) {
      if (r.id == id) ramp = &r;
    }
    if (ramp == nullptr) return first;
    const Duration elapsed(ToNanos(ctx_.clock->Now()) - ramp->since_ns);
    const double keep = SlowStartFactor(options_, elapsed);
    if (keep >= 1.0 || ctx_.rng().NextDouble() < keep) return first;
    std::array<EndpointId, kMaxExcluded> ids;
    size_t n = 0;
    for (const EndpointId e : args.excluded) {
      if (n < ids.size()) ids[n++] = e;
    }
    for (const Ramp& r : ramps_) {
      if (n < ids.size()) ids[n++] = r.id;
    }
    PickArgs again = args;
    again.excluded = std::span<const EndpointId>(ids.data(), n);
    const PickResult second = child_->Pick(again);
    // Everything else is excluded (the child then falls back to an excluded one): the ramping
    // endpoint is better than one this call already tried.
    if (second.backend == nullptr || args.IsExcluded(second.backend)) return first;
    return second;
  }

 private:
  const std::shared_ptr<const Picker> child_;
  const std::vector<Ramp> ramps_;
  const SlowStartOptions options_;
  const BalancerContext ctx_;
};

}  // namespace

double SlowStartFactor(const SlowStartOptions& options, Duration elapsed) {
  if (options.window <= Duration::zero() || elapsed >= options.window) return 1.0;
  const double t = std::max(
      0.0, static_cast<double>(elapsed.count()) / static_cast<double>(options.window.count()));
  const double aggression = options.aggression > 0 ? options.aggression : 1.0;
  const double share = aggression == 1.0 ? t : std::pow(t, 1.0 / aggression);
  return std::clamp(std::max(share, options.min_weight), 0.0, 1.0);
}

std::shared_ptr<const Picker> WithSlowStart(std::shared_ptr<const Picker> child,
                                            const BackendList& backends,
                                            const SlowStartOptions& options,
                                            const BalancerContext& ctx, TimePoint* ramp_end) {
  *ramp_end = TimePoint::max();
  if (options.window <= Duration::zero()) return child;
  const int64_t now = ToNanos(ctx.clock->Now());
  const int64_t window = options.window.count();
  std::vector<Ramp> ramps;
  int64_t end = INT64_MAX;
  for (const BackendPtr& b : backends) {
    if (b == nullptr) continue;
    const int64_t since = b->stats->serving_since_ns.load(std::memory_order_relaxed);
    if (since == 0 || now - since >= window) continue;
    ramps.push_back({IdOf(*b), since});
    end = std::min(end, since + window);
  }
  if (ramps.empty() || ramps.size() == backends.size()) return child;
  *ramp_end = FromNanos(end);
  return std::make_shared<const SlowStartPicker>(std::move(child), std::move(ramps), options, ctx);
}

}  // namespace fulcrum
