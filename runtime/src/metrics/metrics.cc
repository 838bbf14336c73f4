#include "fulcrum/metrics.h"

#include <algorithm>
#include <map>
#include <sstream>

#include <prometheus/text_serializer.h>

#include "metrics/client_metrics.h"
#include "metrics/family_set.h"
#include "metrics/live_set.h"
#include "metrics/server_metrics.h"

namespace fulcrum {

namespace internal {

LiveSet<ChannelMetrics>& LiveChannels() {
  static auto* set = new LiveSet<ChannelMetrics>;  // never destroyed: used during teardown
  return *set;
}
LiveSet<ServerMetrics>& LiveServers() {
  static auto* set = new LiveSet<ServerMetrics>;
  return *set;
}
LiveSet<RegistrationMetrics>& LiveRegistrations() {
  static auto* set = new LiveSet<RegistrationMetrics>;
  return *set;
}

double HistogramData::QuantileSeconds(double q) const {
  const uint64_t n = count();
  if (n == 0) return 0;
  const double rank = q * static_cast<double>(n);
  uint64_t below = 0;
  for (size_t i = 0; i < kLatencyBuckets; ++i) {
    if (buckets[i] == 0 || static_cast<double>(below + buckets[i]) < rank) {
      below += buckets[i];
      continue;
    }
    const double lo = i == 0 ? 0 : static_cast<double>(kLatencyBoundsNs[i - 1]);
    if (i == kLatencyBoundsNs.size()) return lo / 1e9;  // +Inf: say the last finite bound
    const double hi = static_cast<double>(kLatencyBoundsNs[i]);
    const double within = (rank - static_cast<double>(below)) / static_cast<double>(buckets[i]);
    return (lo + (hi - lo) * std::clamp(within, 0.0, 1.0)) / 1e9;
  }
  return static_cast<double>(kLatencyBoundsNs.back()) / 1e9;
}

}  // namespace internal

Metrics& Metrics::Global() {
  static auto* metrics = new Metrics;  // never destroyed: servers may scrape during exit
  return *metrics;
}

Metrics::Metrics() : prometheus_registry_(std::make_shared<prometheus::Registry>()) {}

void Metrics::AddCollectable(std::weak_ptr<prometheus::Collectable> source) {
  std::lock_guard<std::mutex> lock(mu_);
  sources_.push_back(std::move(source));
}

std::vector<prometheus::MetricFamily> Metrics::Collect() const {
  internal::FamilySet builtin;
  internal::CollectClientMetrics(builtin);
  internal::CollectServerMetrics(builtin);
  std::vector<prometheus::MetricFamily> all = builtin.Take();
  std::vector<prometheus::MetricFamily> more = prometheus_registry_->Collect();
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::erase_if(sources_, [](const auto& s) { return s.expired(); });
    for (const auto& weak : sources_) {
      if (auto source = weak.lock()) {
        std::vector<prometheus::MetricFamily> f = source->Collect();
        std::move(f.begin(), f.end(), std::back_inserter(more));
      }
    }
  }
  // One family per name: the text format allows a name's HELP and TYPE lines only once.
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < all.size(); ++i) index[all[i].name] = i;
  for (prometheus::MetricFamily& f : more) {
    auto it = index.find(f.name);
    if (it == index.end()) {
      index[f.name] = all.size();
      all.push_back(std::move(f));
    } else if (all[it->second].type == f.type) {
      auto& into = all[it->second].metric;
      std::move(f.metric.begin(), f.metric.end(), std::back_inserter(into));
    }  // else: the same name with another type; the first one wins
  }
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return all;
}

std::string Metrics::TextFormat() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, Collect());
  return out.str();
}

}  // namespace fulcrum
