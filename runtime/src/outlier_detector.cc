#include "fulcrum/outlier_detector.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <vector>

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
  return Eject(
      b, all, "after " + std::to_string(b.stats->consecutive_failures()) + " consecutive failures");
}

bool OutlierDetector::Eject(const Backend& b, const BackendList& all,
                            const std::string& why) const {
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
               << std::chrono::duration_cast<std::chrono::milliseconds>(length).count() << " ms "
               << why;
  return true;
}

size_t OutlierDetector::EjectSlow(const BackendList& all) const {
  if (options_.latency_factor <= 0) return 0;
  // The judged: serving endpoints with enough samples since they (re)joined.
  struct Judged {
    const Backend* backend;
    double ewma_ns;
  };
  std::vector<Judged> judged;
  for (const BackendPtr& b : all) {
    if (IsEjected(*b) || !b->stats->has_latency() ||
        b->stats->latency_samples() < options_.latency_min_samples) {
      b->stats->latency_strikes.store(0, std::memory_order_relaxed);
      continue;
    }
    judged.push_back({b.get(), b->stats->ewma_ns()});
  }
  if (judged.size() < 2) {
    for (const Judged& j : judged) j.backend->stats->latency_strikes.store(0);
    return 0;
  }
  std::sort(judged.begin(), judged.end(),
            [](const Judged& x, const Judged& y) { return x.ewma_ns > y.ewma_ns; });
  const double gap_ns = static_cast<double>(options_.latency_min_gap.count());
  size_t ejected = 0;
  bool capped = false;
  std::vector<double> peers(judged.size() - 1);
  for (size_t i = 0; i < judged.size(); ++i) {
    EndpointStats& stats = *judged[i].backend->stats;
    size_t k = 0;
    for (size_t j = 0; j < judged.size(); ++j) {
      if (j != i) peers[k++] = judged[j].ewma_ns;
    }
    std::sort(peers.begin(), peers.end());
    const size_t m = peers.size();
    const double median = m % 2 == 1 ? peers[m / 2] : (peers[m / 2 - 1] + peers[m / 2]) / 2;
    const double mine = judged[i].ewma_ns;
    if (mine <= options_.latency_factor * median || mine - median < gap_ns) {
      stats.latency_strikes.store(0, std::memory_order_relaxed);
      continue;
    }
    const uint32_t strikes = stats.latency_strikes.fetch_add(1, std::memory_order_relaxed) + 1;
    if (capped || strikes < options_.latency_checks) continue;
    std::ostringstream why;
    why.precision(3);
    why << "for latency: " << mine / 1e6 << " ms against a median of " << median / 1e6
        << " ms for its peers";
    if (!Eject(*judged[i].backend, all, why.str())) {
      capped = true;  // slower ones went first; the rest wait for room
      continue;
    }
    stats.latency_strikes.store(0, std::memory_order_relaxed);
    ++ejected;
  }
  return ejected;
}

BackendList OutlierDetector::Filter(const BackendList& all, TimePoint* next_change,
                                    bool* panic) const {
  const int64_t now = ToNanos(clock_.Now());
  int64_t next = INT64_MAX;
  BackendList healthy;
  healthy.reserve(all.size());
  for (const BackendPtr& b : all) {
    EndpointStats& stats = *b->stats;
    const int64_t until = stats.ejected_until_ns.load(std::memory_order_relaxed);
    if (until != 0 && until > now) {
      next = std::min(next, until);
      continue;
    }
    if (until != 0 && stats.serving_since_ns.load(std::memory_order_relaxed) < until) {
      // Back from ejection: a fresh start for the failure count, so one more failure does not
      // eject again at once, and for the latency, so that it is judged on what it does now.
      // The ejection count stays, so a relapse is ejected for longer (Eject forgives it after a
      // stretch of max_ejection back in rotation). Slow start ramps its traffic from now.
      stats.ResetFailures();
      stats.RestartLatency();
      stats.serving_since_ns.store(now, std::memory_order_relaxed);
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
