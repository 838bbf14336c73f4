// Metrics: the lock-free pieces (method table, sharded histogram), and what channels and
// servers report through fulcrum::Metrics after real calls on loopback.
#include "fulcrum/metrics.h"

#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/counter.h>

#include "fulcrum/channel.h"
#include "fulcrum/server_registration.h"
#include "metrics/hot_metrics.h"
#include "support/echo_calls.h"
#include "support/eventually.h"
#include "support/metrics_query.h"
#include "support/ports.h"
#include "support/test_server.h"

namespace fulcrum {
namespace {

using ::testing::HasSubstr;
using testing::MetricValue;
using testing::TestServer;

struct Stats {
  std::atomic<int> n{0};
};

TEST(MethodTableTest, SameNameFromDifferentStringsFindsTheSameStats) {
  internal::MethodTable<Stats> table;
  const std::string a = "echo";
  const std::string b = std::string("ec") + "ho";
  EXPECT_EQ(&table.Find(a), &table.Find(b));
  EXPECT_NE(&table.Find("echo"), &table.Find("whoami"));
  std::vector<std::string> names;
  table.ForEach([&](std::string_view name, const Stats&) { names.emplace_back(name); });
  EXPECT_THAT(names, ::testing::ElementsAre("echo", "whoami"));
}

TEST(MethodTableTest, NamesBeyondTheLimitShareOneEntry) {
  internal::MethodTable<Stats> table;
  const size_t limit = internal::MethodTable<Stats>::kMaxMethods;
  for (size_t i = 0; i < limit; ++i) table.Find("m" + std::to_string(i)).n++;
  Stats& over1 = table.Find("over1");
  Stats& over2 = table.Find("over2");
  EXPECT_EQ(&over1, &over2);
  // Far beyond the table's slots: still answers, still bounded.
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(&table.Find("x" + std::to_string(i)), &over1);
  size_t entries = 0;
  bool other = false;
  table.ForEach([&](std::string_view name, const Stats&) {
    ++entries;
    other |= name == "other";
  });
  EXPECT_EQ(entries, limit + 1);
  EXPECT_TRUE(other);
}

TEST(MethodTableTest, ConcurrentFindsAgree) {
  internal::MethodTable<Stats> table;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) table.Find("m" + std::to_string(i % 10)).n++;
    });
  }
  for (auto& t : threads) t.join();
  int total = 0;
  table.ForEach([&](std::string_view, const Stats& s) { total += s.n.load(); });
  EXPECT_EQ(total, 8000);
}

TEST(HotMetricsTest, BucketsAreLessOrEqual) {
  EXPECT_EQ(internal::LatencyBucket(0), 0u);
  EXPECT_EQ(internal::LatencyBucket(10'000), 0u);
  EXPECT_EQ(internal::LatencyBucket(10'001), 1u);
  EXPECT_EQ(internal::LatencyBucket(10'000'000'000), internal::kLatencyBoundsNs.size() - 1);
  EXPECT_EQ(internal::LatencyBucket(10'000'000'001), internal::kLatencyBoundsNs.size());
}

TEST(HotMetricsTest, ShardsAddUpAndQuantilesInterpolate) {
  internal::ShardedStats<1> stats;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        stats.Add(internal::ThisShard(), 0, 1);
        stats.Observe(internal::ThisShard(), 55'000);  // in (50 us, 60 us]
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(stats.Sum(0), 8000u);
  const internal::HistogramData h = stats.Latency();
  EXPECT_EQ(h.count(), 8000u);
  EXPECT_EQ(h.sum_ns, 8000u * 55'000);
  EXPECT_GT(h.QuantileSeconds(0.5), 50e-6);
  EXPECT_LE(h.QuantileSeconds(0.99), 60e-6);
  for (size_t i = 0; i < internal::kLatencyBoundsNs.size(); ++i) {
    EXPECT_NEAR(internal::kLatencyBoundsSeconds[i] * 1e9, internal::kLatencyBoundsNs[i], 1e-3);
  }
  EXPECT_EQ(internal::HistogramData{}.QuantileSeconds(0.5), 0);
}

TEST(MetricsTest, ChannelAndServerCountEveryCall) {
  auto server = TestServer::Start({.id = "m1"});
  ASSERT_TRUE(server.ok()) << server.status();
  ChannelOptions opts;
  opts.service_name = "metrics_count";
  auto channel = Channel::Create("static://127.0.0.1:" + std::to_string((*server)->port()), opts);
  ASSERT_TRUE(channel.ok()) << channel.status();
  for (int i = 0; i < 25; ++i) testing::Echo(**channel, "x");
  for (int i = 0; i < 3; ++i) {
    EXPECT_THROW(testing::Fail(**channel, "boom"), fulcrum::test::EchoError);
  }
  const auto families = Metrics::Global().Collect();
  const testing::LabelMatch echo = {{"service", "metrics_count"}, {"method", "echo"}};
  const testing::LabelMatch fail = {{"service", "metrics_count"}, {"method", "fail"}};
  EXPECT_EQ(MetricValue(families, "fulcrum_client_calls_total", echo), 25);
  EXPECT_EQ(MetricValue(families, "fulcrum_client_attempts_total", echo), 25);
  EXPECT_EQ(MetricValue(families, "fulcrum_client_retries_total", echo), 0);
  EXPECT_EQ(MetricValue(families, "fulcrum_client_call_duration_seconds", echo), 25);
  EXPECT_EQ(MetricValue(families, "fulcrum_client_calls_total", fail), 3);
  EXPECT_EQ(MetricValue(families, "fulcrum_client_call_errors_total",
                        {{"service", "metrics_count"}, {"method", "fail"}, {"kind", "declared"}}),
            3);
  const std::string endpoint = "127.0.0.1:" + std::to_string((*server)->port());
  EXPECT_EQ(MetricValue(families, "fulcrum_client_endpoint_calls_total",
                        {{"service", "metrics_count"}, {"endpoint", endpoint}}),
            28);
  EXPECT_EQ(MetricValue(families, "fulcrum_client_endpoints",
                        {{"service", "metrics_count"}, {"state", "serving"}}),
            1);
  EXPECT_GE(MetricValue(families, "fulcrum_client_resolver_updates_total",
                        {{"service", "metrics_count"}}),
            1);
  // The server's side, labelled with its address.
  EXPECT_EQ(MetricValue(families, "fulcrum_server_requests_total", {{"server", endpoint}}), 28);
  EXPECT_GE(MetricValue(families, "fulcrum_server_connections", {{"server", endpoint}}), 1);
  EXPECT_EQ(MetricValue(families, "fulcrum_server_serving", {{"server", endpoint}}), 1);
  // Echo.echo and Echo.fail: declared exceptions are not server failures. A server records
  // a call once its reply is written, so the last one may lag the client a little.
  EXPECT_TRUE(testing::Eventually([&] {
    return MetricValue(Metrics::Global().Collect(), "fulcrum_server_calls_total",
                       {{"service", "Echo"}, {"method", "fail"}}) >= 3;
  }));
}

TEST(MetricsTest, FailedAttemptsAreCountedByKind) {
  auto server = TestServer::Start({.id = "m2"});
  ASSERT_TRUE(server.ok()) << server.status();
  const uint16_t dead = testing::DeadPort();
  ChannelOptions opts;
  opts.service_name = "metrics_failures";
  opts.balancer = "round_robin";
  opts.outlier.consecutive_failures = 2;
  auto channel = Channel::Create("static://127.0.0.1:" + std::to_string(dead) +
                                     ",127.0.0.1:" + std::to_string((*server)->port()),
                                 opts);
  ASSERT_TRUE(channel.ok()) << channel.status();
  for (int i = 0; i < 10; ++i) testing::Echo(**channel, "x");  // retried on the live one
  const auto families = Metrics::Global().Collect();
  const testing::LabelMatch service = {{"service", "metrics_failures"}};
  const testing::LabelMatch echo = {{"service", "metrics_failures"}, {"method", "echo"}};
  EXPECT_EQ(MetricValue(families, "fulcrum_client_calls_total", echo), 10);
  const double connect = MetricValue(families, "fulcrum_client_attempt_failures_total",
                                     {{"service", "metrics_failures"}, {"kind", "connect"}});
  EXPECT_GE(connect, 2);  // until the dead one was ejected
  EXPECT_EQ(MetricValue(families, "fulcrum_client_retries_total", echo), connect);
  EXPECT_EQ(MetricValue(families, "fulcrum_client_attempts_total", echo), 10 + connect);
  EXPECT_EQ(MetricValue(families, "fulcrum_client_ejections_total", service), 1);
  EXPECT_EQ(MetricValue(families, "fulcrum_client_endpoint_ejected",
                        {{"service", "metrics_failures"},
                         {"endpoint", "127.0.0.1:" + std::to_string(dead)}}),
            1);
  EXPECT_EQ(MetricValue(families, "fulcrum_client_endpoints",
                        {{"service", "metrics_failures"}, {"state", "ejected"}}),
            1);
  EXPECT_EQ(MetricValue(families, "fulcrum_client_call_errors_total", echo), 0);
}

TEST(MetricsTest, OffMeansNoSeries) {
  ServerOptions server_options;
  server_options.metrics = false;
  auto handler = std::make_shared<testing::EchoHandler>("quiet");
  Server server(std::make_shared<fulcrum::test::EchoProcessor>(handler), server_options);
  ASSERT_TRUE(server.Start().ok());
  ChannelOptions opts;
  opts.service_name = "metrics_off";
  opts.metrics = false;
  auto channel = Channel::Create("static://127.0.0.1:" + std::to_string(server.port()), opts);
  ASSERT_TRUE(channel.ok()) << channel.status();
  testing::Echo(**channel, "x");
  const auto families = Metrics::Global().Collect();
  EXPECT_TRUE(std::isnan(
      MetricValue(families, "fulcrum_client_calls_total", {{"service", "metrics_off"}})));
  EXPECT_TRUE(std::isnan(MetricValue(families, "fulcrum_server_requests_total",
                                     {{"server", "127.0.0.1:" + std::to_string(server.port())}})));
}

TEST(MetricsTest, TextFormatMergesTheApplicationsMetrics) {
  auto& family = prometheus::BuildCounter()
                     .Name("app_test_orders_total")
                     .Help("Orders")
                     .Register(Metrics::Global().prometheus_registry());
  prometheus::Counter& orders = family.Add({{"shop", "a"}});
  orders.Increment(3);  // the Prometheus registry is the process's: --gtest_repeat adds up
  auto server = TestServer::Start({.id = "m3"});
  ASSERT_TRUE(server.ok()) << server.status();
  ChannelOptions opts;
  opts.service_name = "metrics_text";
  auto channel = Channel::Create("static://127.0.0.1:" + std::to_string((*server)->port()), opts);
  ASSERT_TRUE(channel.ok()) << channel.status();
  testing::Echo(**channel, "x");
  const std::string text = Metrics::Global().TextFormat();
  EXPECT_THAT(text, HasSubstr("app_test_orders_total{shop=\"a\"} " +
                              std::to_string(static_cast<int>(orders.Value())) + "\n"));
  EXPECT_THAT(text,
              HasSubstr("fulcrum_client_calls_total{service=\"metrics_text\",method=\"echo\"} 1"));
  EXPECT_THAT(text,
              HasSubstr("fulcrum_client_call_duration_seconds_bucket{service=\"metrics_text\","
                        "method=\"echo\",le=\"6e-05\"}"));
  EXPECT_THAT(text,
              HasSubstr("fulcrum_client_call_duration_seconds_bucket{service=\"metrics_text\","
                        "method=\"echo\",le=\"+Inf\"} 1"));
  // One TYPE line per family, however many channels and servers contribute.
  size_t types = 0;
  for (size_t at = 0;
       (at = text.find("# TYPE fulcrum_client_calls_total ", at)) != std::string::npos; ++at) {
    ++types;
  }
  EXPECT_EQ(types, 1u);
}

}  // namespace
}  // namespace fulcrum
