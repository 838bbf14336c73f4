// Metrics: the process-wide collection of metrics behind the admin page /metrics.
//
//   // An application's own metric, next to Fulcrum's:
//   auto& family = prometheus::BuildCounter().Name("app_orders_total").Help("Orders taken")
//                      .Register(fulcrum::Metrics::Global().prometheus_registry());
//   prometheus::Counter& orders = family.Add({});
//   orders.Increment();
//
//   std::string text = fulcrum::Metrics::Global().TextFormat();   // what /metrics serves
//
// Fulcrum's own metrics (docs/observability.md lists them) are gathered at scrape time from
// the channels and servers alive in the process: every Channel and Server records its calls
// unless ChannelOptions::metrics / ServerOptions::metrics is false, and that recording costs a
// few uncontended atomic additions per call, with no lock and no allocation. Families are
// merged by name, so two sources may contribute series to the same family.
//
// Thread-safe.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

namespace fulcrum {

class Metrics {
 public:
  // The process's instance (never destroyed).
  static Metrics& Global();

  Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // prometheus-cpp's registry for metrics updated as things happen (the application's, and
  // fulcrum-registry's).
  prometheus::Registry& prometheus_registry() { return *prometheus_registry_; }

  // Adds a source read at every scrape, for as long as it lives (gauges computed from live
  // objects). Expired sources are dropped.
  void AddCollectable(std::weak_ptr<prometheus::Collectable> source);

  // Every family: prometheus_registry()'s, the sources', Fulcrum's channels' and servers', merged
  // by name and sorted by name.
  std::vector<prometheus::MetricFamily> Collect() const;
  // The same in Prometheus' text exposition format (prometheus-cpp's serializer).
  std::string TextFormat() const;

 private:
  std::shared_ptr<prometheus::Registry> prometheus_registry_;
  mutable std::mutex mu_;
  mutable std::vector<std::weak_ptr<prometheus::Collectable>> sources_;  // guarded by mu_
};

}  // namespace fulcrum
