// FamilySet: builds Prometheus metric families at scrape time, adding up series that two
// sources report under the same labels (two channels of one service, two servers of one
// service in a process).
//
//   FamilySet out;
//   out.Counter("fulcrum_client_calls_total", "Calls made", {{"service", "echo"}}, 12);
//   out.Histogram("fulcrum_client_call_duration_seconds", "...", labels, histogram_data);
//   std::vector<prometheus::MetricFamily> families = out.Take();
//
// Thread-compatible.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <prometheus/metric_family.h>

#include "metrics/hot_metrics.h"

namespace fulcrum::internal {

using Labels = std::vector<std::pair<std::string, std::string>>;

class FamilySet {
 public:
  void Counter(const std::string& name, const char* help, const Labels& labels, double value);
  void Gauge(const std::string& name, const char* help, const Labels& labels, double value);
  // A gauge two sources cannot add up (an age): the largest value wins.
  void GaugeMax(const std::string& name, const char* help, const Labels& labels, double value);
  void Histogram(const std::string& name, const char* help, const Labels& labels,
                 const HistogramData& data);
  // Families in name order, series in label order.
  std::vector<prometheus::MetricFamily> Take();

 private:
  struct Series {
    double value = 0;
    bool set = false;
    HistogramData histogram;
  };
  struct Family {
    std::string help;
    prometheus::MetricType type = prometheus::MetricType::Untyped;
    std::map<Labels, Series> series;
  };
  Series& At(const std::string& name, const char* help, prometheus::MetricType type,
             const Labels& labels);

  std::map<std::string, Family> families_;
};

// Prometheus' view of a histogram: cumulative buckets in seconds, +Inf last.
prometheus::ClientMetric::Histogram ToPrometheus(const HistogramData& data);

}  // namespace fulcrum::internal
