// Hedged requests against real in-process Thrift servers on 127.0.0.1: a hedge answers for an
// endpoint that stalls, the first answer wins, and the loser's late reply never reaches a
// later call.
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fulcrum/channel.h"
#include "fulcrum/metrics.h"
#include "support/bad_server.h"
#include "support/echo_calls.h"
#include "support/eventually.h"
#include "support/metrics_query.h"
#include "support/ports.h"
#include "support/test_server.h"

namespace fulcrum {
namespace {

using std::chrono::milliseconds;
using testing::TestServer;

std::unique_ptr<TestServer> Serve(const std::string& id, std::chrono::microseconds delay) {
  auto s = TestServer::Start({.id = id, .echo_delay = delay});
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? std::move(s).value() : nullptr;
}

std::shared_ptr<Channel> MakeChannel(const std::string& service, const std::vector<uint16_t>& ports,
                                     ChannelOptions opts) {
  std::string target = "static://";
  for (size_t i = 0; i < ports.size(); ++i) {
    target += (i ? "," : "") + std::string("127.0.0.1:") + std::to_string(ports[i]);
  }
  opts.service_name = service;
  opts.balancer = "round_robin";    // every other call's first attempt goes to each endpoint
  opts.outlier.latency_factor = 0;  // keep the slow endpoint in rotation: hedging is under test
  opts.outlier.consecutive_failures = 0;
  auto ch = Channel::Create(target, opts);
  EXPECT_TRUE(ch.ok()) << ch.status();
  return ch.ok() ? *ch : nullptr;
}

double Hedges(const std::string& service, const char* name) {
  return testing::MetricValue(Metrics::Global().Collect(), name, {{"service", service}});
}

TEST(HedgingTest, AHedgeAnswersForAnEndpointThatStalls) {
  // One endpoint takes 1.5 s per echo, longer than the calls' 1 s deadline: a call whose first
  // attempt goes there succeeds only because its hedge went to the other endpoint.
  auto stuck = Serve("stuck", std::chrono::microseconds(1'500'000));
  auto fast = Serve("fast", std::chrono::microseconds(0));
  ASSERT_TRUE(stuck && fast);
  ChannelOptions opts;
  opts.default_timeout = std::chrono::seconds(1);
  opts.hedge_delay = milliseconds(20);
  auto ch = MakeChannel("hedge_stall", {stuck->port(), fast->port()}, opts);
  ASSERT_NE(ch, nullptr);

  for (int i = 0; i < 6; ++i) {
    const std::string message = "m" + std::to_string(i);
    EXPECT_EQ(testing::Echo(*ch, message), message);
  }
  // Every call that went to the stalled endpoint first was hedged, and the hedge won. (Round
  // robin's next pick is the hedge's, so the first attempts may all land on the stalled one.)
  const double hedges = Hedges("hedge_stall", "fulcrum_client_hedges_total");
  EXPECT_GE(hedges, 1);
  EXPECT_EQ(Hedges("hedge_stall", "fulcrum_client_hedges_won_total"), hedges);
  EXPECT_EQ(fast->handler().calls(), 6);
  for (const EndpointReport& r : ch->Endpoints()) {
    EXPECT_EQ(r.in_flight, 0) << r.address;
    EXPECT_EQ(r.failures, 0u) << r.address;  // an abandoned attempt is not a failure
  }

  // The same calls without a hedge: the one whose first attempt goes to the stalled endpoint
  // runs out of time there.
  CallOptions unhedged;
  unhedged.hedge_delay = Duration::zero();
  int deadline_errors = 0;
  for (int i = 0; i < 2; ++i) {
    try {
      testing::Echo(*ch, "plain", unhedged);
    } catch (const CallError& e) {
      EXPECT_EQ(e.code(), StatusCode::kDeadlineExceeded) << e.what();
      ++deadline_errors;
    }
  }
  EXPECT_EQ(deadline_errors, 1);
}

TEST(HedgingTest, TheFirstAnswerWinsAndALateReplyNeverReachesALaterCall) {
  // Two endpoints at 15 ms and a hedge at 12 ms: most calls race, and either side may win.
  // Thrift's synchronous clients do not check sequence ids, so a loser's reply read by a later
  // call on the same connection would be returned as that call's answer; every call checks it
  // got its own message back.
  auto a = Serve("a", std::chrono::microseconds(15'000));
  auto b = Serve("b", std::chrono::microseconds(15'000));
  ASSERT_TRUE(a && b);
  ChannelOptions opts;
  opts.hedge_delay = milliseconds(12);
  opts.retry_budget.min_per_second = 1000;  // hedge every call this test makes
  auto ch = MakeChannel("hedge_race", {a->port(), b->port()}, opts);
  ASSERT_NE(ch, nullptr);

  constexpr int kThreads = 4;
  constexpr int kCalls = 25;
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        const std::string message = std::to_string(t) + ":" + std::to_string(i);
        try {
          if (testing::Echo(*ch, message) != message) ++wrong;
        } catch (const CallError& e) {
          ADD_FAILURE() << e.what();
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  const double hedges = Hedges("hedge_race", "fulcrum_client_hedges_total");
  const double won = Hedges("hedge_race", "fulcrum_client_hedges_won_total");
  EXPECT_GT(hedges, 0);
  // The servers saw each call once and each hedge once (a loser's handler may still be
  // finishing).
  EXPECT_TRUE(testing::Eventually([&] {
    return a->handler().calls() + b->handler().calls() == kThreads * kCalls + hedges;
  })) << a->handler().calls() + b->handler().calls()
      << " calls served for " << hedges << " hedges";
  RecordProperty("hedges", static_cast<int>(hedges));
  RecordProperty("hedges_won", static_cast<int>(won));
  for (const EndpointReport& r : ch->Endpoints()) EXPECT_EQ(r.in_flight, 0) << r.address;
}

TEST(HedgingTest, AHedgeThatCannotConnectLeavesTheCallToTheFirstAttempt) {
  auto slow = Serve("slow", std::chrono::microseconds(30'000));
  ASSERT_TRUE(slow);
  const uint16_t dead = testing::DeadPort();
  ChannelOptions opts;
  opts.hedge_delay = milliseconds(5);
  auto ch = MakeChannel("hedge_dead", {slow->port(), dead}, opts);
  ASSERT_NE(ch, nullptr);
  for (int i = 0; i < 4; ++i) {
    const std::string message = "m" + std::to_string(i);
    EXPECT_EQ(testing::Echo(*ch, message), message);
  }
  EXPECT_EQ(slow->handler().calls(), 4);
  for (const EndpointReport& r : ch->Endpoints()) EXPECT_EQ(r.in_flight, 0) << r.address;
}

TEST(HedgingTest, ADeclaredExceptionFromTheHedgeReachesTheCaller) {
  // The first endpoint reads requests and never answers; the hedge's answer is fail()'s
  // declared exception, which the caller gets as it would from a single attempt.
  auto fast = Serve("fast", std::chrono::microseconds(0));
  ASSERT_TRUE(fast);
  testing::BadServer silent(testing::BadServer::Mode::kHang);
  ASSERT_TRUE(silent.Start().ok());
  ChannelOptions opts;
  opts.hedge_delay = milliseconds(10);
  opts.default_timeout = std::chrono::seconds(1);
  auto ch = MakeChannel("hedge_declared", {silent.port(), fast->port()}, opts);
  ASSERT_NE(ch, nullptr);
  for (int i = 0; i < 2; ++i) {
    try {
      testing::Fail(*ch, "boom");
      ADD_FAILURE() << "fail() must throw";
    } catch (const test::EchoError& e) {
      EXPECT_EQ(e.message, "boom");
    }
  }
  EXPECT_GE(silent.requests(), 1);  // a first attempt went there
  EXPECT_EQ(Hedges("hedge_declared", "fulcrum_client_hedges_won_total"), silent.requests());
}

}  // namespace
}  // namespace fulcrum
