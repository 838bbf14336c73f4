// Reading figures back from fulcrum::Metrics in tests.
//
//   auto families = fulcrum::Metrics::Global().Collect();
//   double calls = MetricValue(families, "fulcrum_client_calls_total", {{"service", "echo"}});
//
// Thread-compatible (pure functions).
#pragma once

#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <prometheus/metric_family.h>

namespace fulcrum::testing {

using LabelMatch = std::vector<std::pair<std::string, std::string>>;

// The sum over every series of `name` whose labels include all of `match` (a histogram counts
// its samples); NaN when no series matches.
inline double MetricValue(const std::vector<prometheus::MetricFamily>& families,
                          const std::string& name, const LabelMatch& match) {
  double sum = 0;
  bool found = false;
  for (const prometheus::MetricFamily& f : families) {
    if (f.name != name) continue;
    for (const prometheus::ClientMetric& m : f.metric) {
      bool all = true;
      for (const auto& [k, v] : match) {
        bool has = false;
        for (const auto& l : m.label) has |= l.name == k && l.value == v;
        all &= has;
      }
      if (!all) continue;
      found = true;
      switch (f.type) {
        case prometheus::MetricType::Counter:
          sum += m.counter.value;
          break;
        case prometheus::MetricType::Gauge:
          sum += m.gauge.value;
          break;
        case prometheus::MetricType::Histogram:
          sum += static_cast<double>(m.histogram.sample_count);
          break;
        default:
          sum += m.untyped.value;
          break;
      }
    }
  }
  return found ? sum : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace fulcrum::testing
