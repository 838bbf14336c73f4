// RegistryMetrics: what fulcrum-registry reports at /metrics. Counters for what the handler
// and the store see happen (heartbeats, registrations, deregistrations, watch returns, refused
// calls, DOWN detections, elections and switchovers, change-to-delivery time), and gauges read
// from the store at scrape time (instances by service and health, watchers, groups).
//
//   RegistryMetrics metrics(fulcrum::Metrics::Global().prometheus_registry());
//   store_options.observer = &metrics;                 // DOWN, promotions, watch deliveries
//   handler_options.metrics = &metrics;                // heartbeats, registrations, refusals
//   auto gauges = metrics.StoreGauges(store);          // keep it alive while the store lives
//   fulcrum::Metrics::Global().AddCollectable(gauges);
//
// Thread-safe.
#pragma once

#include <memory>
#include <string>

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "server/store_observer.h"

namespace fulcrum::registry {

class Store;

class RegistryMetrics final : public StoreObserver {
 public:
  explicit RegistryMetrics(prometheus::Registry& registry);

  void OnRegister() { registrations_.Increment(); }
  void OnHeartbeat() { heartbeats_.Increment(); }
  void OnDeregister() { deregistrations_.Increment(); }
  void OnWatchReturned(bool changed) { (changed ? watch_wakeups_ : watch_timeouts_).Increment(); }
  void OnRefused(const std::string& call) { refused_.Add({{"call", call}}).Increment(); }

  // StoreObserver.
  void OnDown(const std::string& service) override;
  void OnPromotion(const std::string& service, bool planned) override;
  void OnWatchDelivered(Duration since_change) override;

  // Gauges read from `store` at every scrape; `store` must outlive the returned object.
  static std::shared_ptr<prometheus::Collectable> StoreGauges(const Store* store);

 private:
  prometheus::Counter& registrations_;
  prometheus::Counter& heartbeats_;
  prometheus::Counter& deregistrations_;
  prometheus::Counter& watch_wakeups_;
  prometheus::Counter& watch_timeouts_;
  prometheus::Family<prometheus::Counter>& refused_;
  prometheus::Family<prometheus::Counter>& downs_;
  prometheus::Family<prometheus::Counter>& elections_;
  prometheus::Histogram& delivery_;
};

}  // namespace fulcrum::registry
