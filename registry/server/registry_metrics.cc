#include "server/registry_metrics.h"

#include <chrono>
#include <optional>

#include <prometheus/metric_family.h>

#include "server/store.h"

namespace fulcrum::registry {

namespace {

prometheus::Counter& Counter(prometheus::Registry& r, const char* name, const char* help,
                             const prometheus::Labels& labels = {}) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r).Add(labels);
}

prometheus::ClientMetric Gauge(double value, prometheus::ClientMetric::Label a,
                               std::optional<prometheus::ClientMetric::Label> b = {}) {
  prometheus::ClientMetric m;
  m.label.push_back(std::move(a));
  if (b) m.label.push_back(std::move(*b));
  m.gauge.value = value;
  return m;
}

prometheus::MetricFamily GaugeFamily(const char* name, const char* help) {
  prometheus::MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = prometheus::MetricType::Gauge;
  return f;
}

class StoreGaugesCollectable final : public prometheus::Collectable {
 public:
  explicit StoreGaugesCollectable(const Store* store) : store_(store) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    auto instances = GaugeFamily("fulcrum_registry_instances",
                                 "Registered instances by service and health (DOWN ones are "
                                 "listed until --down_ttl_ms)");
    auto drained = GaugeFamily("fulcrum_registry_drained_instances",
                               "Instances an administrator drained, by service");
    auto epoch = GaugeFamily("fulcrum_registry_group_epoch",
                             "A master-slave group's epoch (grows with every promotion)");
    auto has_master = GaugeFamily("fulcrum_registry_group_has_master",
                                  "1 while a master-slave group has a master");
    auto switching = GaugeFamily("fulcrum_registry_group_switchover",
                                 "1 while a planned switchover of the group is under way");
    for (const thrift::ServiceSummary& s : store_->ListServices()) {
      const prometheus::ClientMetric::Label service{"service", s.service_name};
      instances.metric.push_back(Gauge(s.up, service, {{"health", "up"}}));
      instances.metric.push_back(Gauge(s.instances - s.up, service, {{"health", "down"}}));
      drained.metric.push_back(Gauge(s.drained, service));
      for (const thrift::GroupState& g : store_->Lookup(s.service_name).groups) {
        const prometheus::ClientMetric::Label group{"group", g.group};
        epoch.metric.push_back(Gauge(static_cast<double>(g.epoch), service, group));
        has_master.metric.push_back(Gauge(g.master_address.empty() ? 0 : 1, service, group));
        switching.metric.push_back(Gauge(g.switchover_target.empty() ? 0 : 1, service, group));
      }
    }
    auto services = GaugeFamily("fulcrum_registry_services", "Services with instances");
    prometheus::ClientMetric n;
    n.gauge.value = static_cast<double>(drained.metric.size());  // one per service
    services.metric.push_back(n);
    auto watchers = GaugeFamily("fulcrum_registry_watchers", "Watches parked right now");
    prometheus::ClientMetric w;
    w.gauge.value = static_cast<double>(store_->watchers());
    watchers.metric.push_back(w);
    return {instances, drained, epoch, has_master, switching, services, watchers};
  }

 private:
  const Store* store_;
};

}  // namespace

RegistryMetrics::RegistryMetrics(prometheus::Registry& r)
    : registrations_(Counter(r, "fulcrum_registry_registrations_total",
                             "Instances registered (re-registrations included)")),
      heartbeats_(Counter(r, "fulcrum_registry_heartbeats_total", "Heartbeats received")),
      deregistrations_(
          Counter(r, "fulcrum_registry_deregistrations_total", "Instances deregistered (drains)")),
      watch_wakeups_(Counter(r, "fulcrum_registry_watch_returns_total",
                             "Watches returned: changed (a wake-up) or not (max wait)",
                             {{"changed", "true"}})),
      watch_timeouts_(Counter(r, "fulcrum_registry_watch_returns_total",
                              "Watches returned: changed (a wake-up) or not (max wait)",
                              {{"changed", "false"}})),
      refused_(prometheus::BuildCounter()
                   .Name("fulcrum_registry_refused_total")
                   .Help("Calls refused for a missing or wrong token, by call")
                   .Register(r)),
      downs_(prometheus::BuildCounter()
                 .Name("fulcrum_registry_down_total")
                 .Help("Instances marked DOWN after missing their heartbeats, by service")
                 .Register(r)),
      elections_(prometheus::BuildCounter()
                     .Name("fulcrum_registry_elections_total")
                     .Help("Masters given a new epoch: kind=election (first master or "
                           "failover) or switchover (planned)")
                     .Register(r)),
      delivery_(prometheus::BuildHistogram()
                    .Name("fulcrum_registry_watch_delivery_seconds")
                    .Help("From a change to a parked watch returning it")
                    .Register(r)
                    .Add({}, prometheus::Histogram::BucketBoundaries{
                                 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                 0.1, 0.25, 0.5, 1, 2.5, 5, 10})) {}

void RegistryMetrics::OnDown(const std::string& service) {
  downs_.Add({{"service", service}}).Increment();
}

void RegistryMetrics::OnPromotion(const std::string& service, bool planned) {
  elections_.Add({{"service", service}, {"kind", planned ? "switchover" : "election"}}).Increment();
}

void RegistryMetrics::OnWatchDelivered(Duration since_change) {
  delivery_.Observe(std::chrono::duration<double>(since_change).count());
}

std::shared_ptr<prometheus::Collectable> RegistryMetrics::StoreGauges(const Store* store) {
  return std::make_shared<StoreGaugesCollectable>(store);
}

}  // namespace fulcrum::registry
