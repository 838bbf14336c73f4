// The registry's metrics and status page, in-process over loopback: registrations, heartbeats,
// refusals, a parked watch woken by a change, an instance going DOWN, a master-slave group's
// election, all counted; /status?format=json shows every instance and group and no secret.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "child_process.h"
#include "fulcrum/admin.h"
#include "fulcrum/metrics.h"
#include "fulcrum_registrar.h"
#include "server/daemon.h"
#include "server/status_page.h"
#include "support/eventually.h"
#include "support/http_client.h"
#include "support/metrics_query.h"

namespace fulcrum::registry {

using registry_client::FulcrumRegistrar;
using registry_client::FulcrumRegistrarOptions;
using registry_client::RegistryConnection;

namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;
using testing::MetricValue;
using ::testing::Not;

constexpr char kToken[] = "observability-secret-token";

class RegistryObservabilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_test::WriteFile(dir_.path() + "/token", kToken);
    DaemonOptions options;
    options.data_dir = dir_.path() + "/data";
    options.token_file = dir_.path() + "/token";
    options.heartbeat_interval = milliseconds(50);
    options.heartbeat_timeout = milliseconds(300);
    options.ms_heartbeat_interval = milliseconds(50);
    options.master_lease = milliseconds(300);
    options.promotion_delay = milliseconds(400);
    daemon_ = std::make_unique<RegistryDaemon>(options);
    ASSERT_TRUE(daemon_->Start().ok());
    admin_.SetPage("/status", RegistryStatusPage(daemon_->store()));
    ASSERT_TRUE(admin_.Start().ok());
  }
  void TearDown() override {
    admin_.Stop();
    registrars_.clear();
    daemon_->Stop();
  }

  FulcrumRegistrar* Register(const std::string& service, uint16_t port,
                             const std::string& group = "", const std::string& token = kToken) {
    FulcrumRegistrarOptions o;
    o.connection.port = daemon_->port();
    o.token = token;
    o.heartbeat_interval = milliseconds(50);
    o.min_backoff = milliseconds(20);
    o.max_backoff = milliseconds(100);
    auto r = std::make_unique<FulcrumRegistrar>(o);
    ServiceInstance i;
    i.service = service;
    i.host = "127.0.0.1";
    i.port = port;
    i.zone = "z1";
    i.group = group;
    i.metadata["note"] = "metadata-not-shown";
    Status s = r->Register(i, {});
    if (!s.ok()) return nullptr;
    registrars_.push_back(std::move(r));
    return registrars_.back().get();
  }

  static double Value(const std::string& name, const testing::LabelMatch& labels = {}) {
    const double v = MetricValue(Metrics::Global().Collect(), name, labels);
    return std::isnan(v) ? 0 : v;
  }

  registry_test::TempDir dir_;
  std::unique_ptr<RegistryDaemon> daemon_;
  Admin admin_;
  std::vector<std::unique_ptr<FulcrumRegistrar>> registrars_;
};

TEST_F(RegistryObservabilityTest, CountsWhatHappensAndShowsItOnStatus) {
  const double registrations = Value("fulcrum_registry_registrations_total");
  const double refused = Value("fulcrum_registry_refused_total", {{"call", "register_instance"}});
  const double wakeups = Value("fulcrum_registry_watch_returns_total", {{"changed", "true"}});
  const double deliveries = Value("fulcrum_registry_watch_delivery_seconds");
  // Counters live in the process's registry: compare with where they started.
  const double downs = Value("fulcrum_registry_down_total", {{"service", "obs"}});
  const double elections =
      Value("fulcrum_registry_elections_total", {{"service", "obs_ms"}, {"kind", "election"}});

  // A watch parked on the service, woken by the first registration.
  auto conn = RegistryConnection::Open({.port = daemon_->port()});
  ASSERT_TRUE(conn.ok()) << conn.status();
  thrift::ServiceSnapshot first;
  (*conn)->client().lookup(first, "obs");
  std::thread watcher([&] {
    auto c = RegistryConnection::Open({.port = daemon_->port()});
    ASSERT_TRUE(c.ok());
    thrift::WatchResult r;
    (*c)->client().watch(r, "obs", first.version, 3000);
    EXPECT_TRUE(r.changed);
  });
  ASSERT_TRUE(testing::Eventually([&] { return daemon_->store()->watchers() >= 1; }));
  ASSERT_NE(Register("obs", 9101), nullptr);
  watcher.join();
  ASSERT_NE(Register("obs", 9102), nullptr);
  EXPECT_EQ(Register("obs", 9103, "", "wrong-token"), nullptr);

  EXPECT_EQ(Value("fulcrum_registry_registrations_total") - registrations, 2);
  EXPECT_EQ(Value("fulcrum_registry_refused_total", {{"call", "register_instance"}}) - refused, 1);
  EXPECT_GE(Value("fulcrum_registry_watch_returns_total", {{"changed", "true"}}) - wakeups, 1);
  EXPECT_GE(Value("fulcrum_registry_watch_delivery_seconds") - deliveries, 1);
  EXPECT_TRUE(testing::Eventually([&] { return Value("fulcrum_registry_heartbeats_total") >= 4; }));
  EXPECT_EQ(Value("fulcrum_registry_instances", {{"service", "obs"}, {"health", "up"}}), 2);

  // One instance stops heartbeating: DOWN after the timeout, counted once.
  registrars_.front().reset();  // stops heartbeats, no deregistration
  ASSERT_TRUE(testing::Eventually([&] {
    return Value("fulcrum_registry_down_total", {{"service", "obs"}}) == downs + 1;
  }));
  EXPECT_EQ(Value("fulcrum_registry_instances", {{"service", "obs"}, {"health", "down"}}), 1);
  EXPECT_EQ(Value("fulcrum_registry_instances", {{"service", "obs"}, {"health", "up"}}), 1);

  // A master-slave group elects its first master.
  ASSERT_NE(Register("obs_ms", 9201, "g1"), nullptr);
  ASSERT_TRUE(testing::Eventually([&] {
    return Value("fulcrum_registry_elections_total",
                 {{"service", "obs_ms"}, {"kind", "election"}}) == elections + 1;
  }));
  EXPECT_EQ(Value("fulcrum_registry_group_has_master", {{"service", "obs_ms"}, {"group", "g1"}}),
            1);

  // The status page: JSON with every instance, the DOWN one, the group; never the token.
  auto json = testing::HttpGet(admin_.port(), "/status?format=json");
  ASSERT_EQ(json.status, 200);
  EXPECT_THAT(json.body, Not(HasSubstr(kToken)));
  EXPECT_THAT(json.body, Not(HasSubstr("metadata-not-shown")));
  const auto status = nlohmann::json::parse(json.body);
  std::map<std::string, std::string> health;
  for (const auto& svc : status.at("services")) {
    for (const auto& i : svc.at("instances")) health[i.at("address")] = i.at("health");
    if (svc.at("name") == "obs_ms") {
      ASSERT_EQ(svc.at("groups").size(), 1u);
      EXPECT_EQ(svc.at("groups")[0].at("master"), "127.0.0.1:9201");
      EXPECT_GE(svc.at("groups")[0].at("epoch"), 1);
    }
  }
  EXPECT_EQ(health["127.0.0.1:9101"], "DOWN");
  EXPECT_EQ(health["127.0.0.1:9102"], "UP");
  EXPECT_EQ(health["127.0.0.1:9201"], "UP");
  EXPECT_EQ(status.at("registry").at("instances_down"), 1);

  auto html = testing::HttpGet(admin_.port(), "/status");
  EXPECT_EQ(html.status, 200);
  EXPECT_THAT(html.body, HasSubstr("name=\"viewport\""));
  EXPECT_THAT(html.body, HasSubstr("/status?format=json"));
  EXPECT_THAT(html.body, Not(HasSubstr(kToken)));
  auto metrics = testing::HttpGet(admin_.port(), "/metrics");
  EXPECT_THAT(metrics.body, HasSubstr("fulcrum_registry_down_total{service=\"obs\"} " +
                                      std::to_string(static_cast<int>(downs + 1)) + "\n"));
  // Read-only: nothing but GET and HEAD.
  EXPECT_EQ(testing::HttpExchange(admin_.port(),
                                  "POST /status HTTP/1.1\r\nHost: x\r\n"
                                  "Content-Length: 0\r\nConnection: close\r\n\r\n")
                .status,
            405);
}

}  // namespace
}  // namespace fulcrum::registry
