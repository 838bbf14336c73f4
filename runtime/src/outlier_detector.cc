#include "fulcrum/outlier_detector.h"

#include <algorithm>
#include <cmath>

#include <glog/logging.h>

namespace fulcrum {

OutlierDetector::OutlierDetector(OutlierOptions options, const Clock& clock)
    : options_(options), clock_(clock) {}

bool OutlierDetector::IsEjected(const Backend& b) const {
  const int64_t until = b.stats->ejected_until_ns.load(std::memory_order_relaxed);
  return until != 0 && until > ToNanos(clock_.Now());
}

bool OutlierDetector::MaybeEject(const Backend& b, const BackendList& all) const {
  if (options_.consecutive_failures == 0) return false;
  if (b.stats->consecutive_failures() < options_.consecutive_failures) return false;
  if (IsEjected(b)) return false;
  size_t ejected = 0;
  for (const BackendPtr& other : all) ejected += IsEjected(*other) ? 1 : 0;
  const auto cap = static_cast<size_t>(std::floor(options_.max_ejected_share * all.size()));
  if (ejected + 1 > cap) return false;

  // Forgiveness: an endpoint whose last ejection ended more than max_ejection ago has been
  // back in rotation for that long, so this is a new episode, not a relapse. Decided here, where
  // the length is chosen: a quiet channel has no rebuild that could forget it earlier.
  const int64_t now = ToNanos(clock_.Now());
  const int64_t last_until = b.stats->ejected_until_ns.load(std::memory_order_relaxed);
  if (last_until != 0 && now - last_until > options_.max_ejection.count()) {
    b.stats->ejections.store(0, std::memory_order_relaxed);
  }
  const uint32_t times = b.stats->ejections.fetch_add(1, std::memory_order_relaxed);
  const double scale = std::pow(2.0, std::min<uint32_t>(times, 20));
  const auto length = std::min<Duration>(
      options_.max_ejection,
      Duration(static_cast<int64_t>(static_cast<double>(options_.base_ejection.count()) * scale)));
  b.stats->ejected_until_ns.store(now + length.count(), std::memory_order_relaxed);
  LOG(WARNING) << "ejecting " << b.address << " for "
               << std::chrono::duration_cast<std::chrono::milliseconds>(length).count()
               << " ms after " << b.stats->consecutive_failures() << " consecutive failures";
  return true;
}

BackendList OutlierDetector::Filter(const BackendList& all, TimePoint* next_change,
                                    bool* panic) const {
  const int64_t now = ToNanos(clock_.Now());
  int64_t next = INT64_MAX;
  BackendList healthy;
  healthy.reserve(all.size());
  for (const BackendPtr& b : all) {
    const int64_t until = b->stats->ejected_until_ns.load(std::memory_order_relaxed);
    if (until != 0 && until > now) {
      next = std::min(next, until);
      continue;
    }
    if (until != 0 && b->stats->consecutive_failures() >= options_.consecutive_failures) {
      // Back from ejection: a fresh start for the failure count, so one more failure does not
      // eject again at once. The ejection count stays, so a relapse is ejected for longer
      // (MaybeEject forgives it after a stretch of max_ejection back in rotation).
      b->stats->ResetFailures();
      LOG(INFO) << "re-admitting " << b->address;
    }
    healthy.push_back(b);
  }
  *next_change = next == INT64_MAX ? TimePoint::max() : FromNanos(next);
  *panic =
      !all.empty() && static_cast<double>(healthy.size()) < options_.panic_threshold * all.size();
  return *panic ? all : healthy;
}

}  // namespace fulcrum
