#include "metrics/family_set.h"

#include <limits>

namespace fulcrum::internal {

FamilySet::Series& FamilySet::At(const std::string& name, const char* help,
                                 prometheus::MetricType type, const Labels& labels) {
  Family& f = families_[name];
  if (f.help.empty()) {
    f.help = help;
    f.type = type;
  }
  return f.series[labels];
}

void FamilySet::Counter(const std::string& name, const char* help, const Labels& labels,
                        double value) {
  At(name, help, prometheus::MetricType::Counter, labels).value += value;
}

void FamilySet::Gauge(const std::string& name, const char* help, const Labels& labels,
                      double value) {
  At(name, help, prometheus::MetricType::Gauge, labels).value += value;
}

void FamilySet::GaugeMax(const std::string& name, const char* help, const Labels& labels,
                         double value) {
  Series& s = At(name, help, prometheus::MetricType::Gauge, labels);
  if (!s.set || value > s.value) s.value = value;
  s.set = true;
}

void FamilySet::Histogram(const std::string& name, const char* help, const Labels& labels,
                          const HistogramData& data) {
  At(name, help, prometheus::MetricType::Histogram, labels).histogram += data;
}

prometheus::ClientMetric::Histogram ToPrometheus(const HistogramData& data) {
  prometheus::ClientMetric::Histogram h;
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kLatencyBuckets; ++i) {
    cumulative += data.buckets[i];
    prometheus::ClientMetric::Bucket b;
    b.cumulative_count = cumulative;
    b.upper_bound = i < kLatencyBoundsSeconds.size() ? kLatencyBoundsSeconds[i]
                                                     : std::numeric_limits<double>::infinity();
    h.bucket.push_back(b);
  }
  h.sample_count = cumulative;
  h.sample_sum = static_cast<double>(data.sum_ns) / 1e9;
  return h;
}

std::vector<prometheus::MetricFamily> FamilySet::Take() {
  std::vector<prometheus::MetricFamily> out;
  out.reserve(families_.size());
  for (auto& [name, f] : families_) {
    prometheus::MetricFamily family;
    family.name = name;
    family.help = f.help;
    family.type = f.type;
    for (auto& [labels, s] : f.series) {
      prometheus::ClientMetric m;
      for (const auto& [k, v] : labels) m.label.push_back({k, v});
      switch (f.type) {
        case prometheus::MetricType::Counter:
          m.counter.value = s.value;
          break;
        case prometheus::MetricType::Histogram:
          m.histogram = ToPrometheus(s.histogram);
          break;
        default:
          m.gauge.value = s.value;
          break;
      }
      family.metric.push_back(std::move(m));
    }
    out.push_back(std::move(family));
  }
  families_.clear();
  return out;
}

}  // namespace fulcrum::internal
