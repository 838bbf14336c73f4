// The balanced call path against real in-process Thrift servers on 127.0.0.1.
#include "fulcrum/channel.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/bad_server.h"
#include "support/echo_calls.h"
#include "support/eventually.h"
#include "support/master_slave_helpers.h"
#include "support/test_server.h"
#include "testing/fake_clock.h"

namespace fulcrum {
namespace {

using std::chrono::milliseconds;
using testing::BadServer;
using testing::DeadPort;
using testing::EchoClient;
using ::testing::HasSubstr;
using testing::TestServer;

std::string Target(const std::vector<uint16_t>& ports) {
  std::string t = "static://";
  for (size_t i = 0; i < ports.size(); ++i) {
    t += (i ? "," : "") + std::string("127.0.0.1:") + std::to_string(ports[i]);
  }
  return t;
}

std::shared_ptr<Channel> MakeChannel(const std::vector<uint16_t>& ports, ChannelOptions opts = {}) {
  if (opts.service_name == "service") opts.service_name = "echo";
  auto ch = Channel::Create(Target(ports), opts);
  EXPECT_TRUE(ch.ok()) << ch.status();
  return ch.ok() ? *ch : nullptr;
}

class ChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* id : {"a", "b", "c"}) {
      auto s = TestServer::Start({.id = id});
      ASSERT_TRUE(s.ok()) << s.status();
      servers_.push_back(std::move(s).value());
    }
  }
  std::vector<uint16_t> Ports() const {
    std::vector<uint16_t> p;
    for (const auto& s : servers_) p.push_back(s->port());
    return p;
  }
  std::vector<std::unique_ptr<TestServer>> servers_;
};

TEST_F(ChannelTest, RoundRobinSpreadsCallsEvenly) {
  auto ch = MakeChannel(Ports(), {.balancer = "round_robin"});
  std::map<std::string, int> hits;
  for (int i = 0; i < 300; ++i) ++hits[testing::Whoami(*ch)];
  EXPECT_EQ(hits, (std::map<std::string, int>{{"a", 100}, {"b", 100}, {"c", 100}}));
  for (const EndpointReport& r : ch->Endpoints()) {
    EXPECT_EQ(r.calls, 100u) << r.address;
    EXPECT_EQ(r.failures, 0u);
    EXPECT_EQ(r.open_connections, 1) << "one thread reuses one pooled connection";
  }
}

TEST_F(ChannelTest, EveryBuiltinBalancerServesCalls) {
  // The built-ins by name: BalancerNames() also lists what other tests registered.
  for (const char* name :
       {"random", "weighted_random", "round_robin", "weighted_round_robin", "least_response_time",
        "p2c_least_loaded", "peak_ewma", "consistent_hash"}) {
    auto ch = MakeChannel(Ports(), {.balancer = name});
    for (int i = 0; i < 30; ++i) {
      EXPECT_EQ(testing::Echo(*ch, "x" + std::to_string(i)), "x" + std::to_string(i)) << name;
    }
  }
}

TEST_F(ChannelTest, DeclaredExceptionReachesCallerAndCountsAsSuccess) {
  auto ch = MakeChannel({servers_[0]->port()});
  try {
    testing::Fail(*ch, "boom");
    FAIL() << "expected EchoError";
  } catch (const fulcrum::test::EchoError& e) {
    EXPECT_EQ(e.message, "boom");
  }
  auto reports = ch->Endpoints();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].calls, 1u);
  EXPECT_EQ(reports[0].failures, 0u);
  EXPECT_EQ(servers_[0]->handler().calls(), 1) << "an application error is never retried";
}

TEST_F(ChannelTest, ConnectRefusedIsRetriedElsewhereEvenWhenNotIdempotent) {
  const uint16_t dead = DeadPort();
  auto ch = MakeChannel({dead, servers_[0]->port()}, {.balancer = "round_robin"});
  for (int i = 0; i < 20; ++i) EXPECT_EQ(testing::Increment(*ch, 1), i + 1);
  EXPECT_EQ(servers_[0]->handler().increments(), 20);
}

TEST_F(ChannelTest, NonIdempotentCallFailingAfterSendIsReportedNotRetried) {
  for (BadServer::Mode mode : {BadServer::Mode::kGarbageFrame, BadServer::Mode::kGarbageBytes,
                               BadServer::Mode::kHalfFrame}) {
    BadServer bad(mode);
    ASSERT_TRUE(bad.Start().ok());
    auto ch = MakeChannel({bad.port(), servers_[0]->port()}, {.balancer = "round_robin"});
    const int64_t good_before = servers_[0]->handler().increments();
    int failed = 0;
    for (int i = 0; i < 10; ++i) {
      try {
        testing::Increment(*ch, 1);
      } catch (const CallError& e) {
        ++failed;
        EXPECT_THAT(e.what(), HasSubstr("echo.increment"));
        EXPECT_THAT(e.what(), HasSubstr("not idempotent, not retried"));
        EXPECT_THAT(e.what(), HasSubstr("127.0.0.1:" + std::to_string(bad.port())));
        ASSERT_EQ(e.attempts().size(), 1u);
      }
    }
    EXPECT_EQ(failed, 5) << "round robin sends every other call to the bad server";
    EXPECT_EQ(bad.requests(), 5);
    EXPECT_EQ(servers_[0]->handler().increments() - good_before, 5);
  }
}

TEST_F(ChannelTest, IdempotentCallsSurviveMisbehavingEndpoints) {
  for (BadServer::Mode mode : {BadServer::Mode::kGarbageFrame, BadServer::Mode::kGarbageBytes,
                               BadServer::Mode::kHalfFrame, BadServer::Mode::kCloseOnAccept}) {
    BadServer bad(mode);
    ASSERT_TRUE(bad.Start().ok());
    auto ch = MakeChannel({bad.port(), servers_[0]->port()}, {.balancer = "round_robin"});
    for (int i = 0; i < 20; ++i) EXPECT_EQ(testing::Whoami(*ch), "a");
    EXPECT_GT(bad.accepted(), 0);
    const auto reports = ch->Endpoints();
    EXPECT_GT(reports[0].failures, 0u) << "the bad endpoint counts failures";
    EXPECT_EQ(reports[1].failures, 0u);
  }
}

// Makes a call with a 200 ms timeout that must fail with kDeadlineExceeded, on time: after the
// deadline, and within it plus the watchdog's tick and scheduling slack (not a performance
// figure).
void ExpectDeadlineHolds(Channel& ch) {
  const auto start = std::chrono::steady_clock::now();
  CallOptions o;
  o.timeout = milliseconds(200);
  try {
    testing::Whoami(ch, o);
    FAIL() << "expected a deadline error";
  } catch (const CallError& e) {
    EXPECT_EQ(e.code(), StatusCode::kDeadlineExceeded) << e.what();
    EXPECT_EQ(e.getType(), apache::thrift::transport::TTransportException::TIMED_OUT);
    EXPECT_THAT(e.what(), HasSubstr("deadline exceeded"));
  }
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_LT(elapsed, milliseconds(200 + 800));
  EXPECT_GE(elapsed, milliseconds(190));
}

TEST_F(ChannelTest, DeadlineHoldsWhenEveryEndpointHangs) {
  std::vector<std::unique_ptr<BadServer>> hung;
  std::vector<uint16_t> ports;
  for (int i = 0; i < 3; ++i) {
    hung.push_back(std::make_unique<BadServer>(BadServer::Mode::kHang));
    ASSERT_TRUE(hung.back()->Start().ok());
    ports.push_back(hung.back()->port());
  }
  ExpectDeadlineHolds(*MakeChannel(ports));
}

TEST_F(ChannelTest, DeadlineHoldsWhenTheServerTricklesItsReply) {
  // One byte every 20 ms: a socket timeout per read would never fire and the reply would take
  // 80 s. The deadline covers the whole call.
  BadServer trickle(BadServer::Mode::kTrickle);
  ASSERT_TRUE(trickle.Start().ok());
  auto ch = MakeChannel({trickle.port()});
  ExpectDeadlineHolds(*ch);
  EXPECT_EQ(ch->Endpoints()[0].open_connections, 0) << "the cut connection was closed";
}

TEST_F(ChannelTest, NoEndpointsIsAClearError) {
  auto ch = MakeChannel(Ports());
  ch->UpdateEndpoints({});
  try {
    testing::Echo(*ch, "x");
    FAIL();
  } catch (const CallError& e) {
    EXPECT_EQ(e.code(), StatusCode::kUnavailable);
    EXPECT_THAT(e.what(), HasSubstr("echo.echo: no endpoint available"));
  }
}

// A resolver the test drives: it delivers (or fails) only when told, like a registry watch
// that has not answered yet.
class ManualResolver final : public Resolver {
 public:
  explicit ManualResolver(ResolverListener** listener) : listener_(listener) {}
  Status Start(ResolverListener* listener) override {
    *listener_ = listener;
    return Status::Ok();
  }
  void Stop() override {}

 private:
  ResolverListener** listener_;
};

TEST_F(ChannelTest, AFirstCallWaitsForTheResolversFirstEndpointSet) {
  ResolverListener* listener = nullptr;
  auto ch = Channel::Create(std::make_unique<ManualResolver>(&listener), {});
  ASSERT_TRUE(ch.ok()) << ch.status();
  ASSERT_NE(listener, nullptr);
  std::thread deliver([&] {
    std::this_thread::sleep_for(milliseconds(100));
    listener->OnUpdate({{servers_[0]->endpoint()}});
  });
  EXPECT_EQ(testing::Whoami(**ch, {.timeout = std::chrono::seconds(10)}), "a");
  deliver.join();
}

TEST_F(ChannelTest, NoFirstEndpointSetFailsAtTheDeadlineSayingSo) {
  ResolverListener* listener = nullptr;
  auto ch = Channel::Create(std::make_unique<ManualResolver>(&listener), {});
  ASSERT_TRUE(ch.ok()) << ch.status();
  try {
    testing::Whoami(**ch, {.timeout = milliseconds(50)});
    FAIL() << "nothing was ever delivered";
  } catch (const CallError& e) {
    EXPECT_EQ(e.code(), StatusCode::kUnavailable);
    EXPECT_THAT(e.what(), HasSubstr("discovery delivered none before the deadline"));
  }
}

TEST_F(ChannelTest, ADiscoveryErrorBeforeAnyEndpointFailsWaitingCallsWithIt) {
  ResolverListener* listener = nullptr;
  auto ch = Channel::Create(std::make_unique<ManualResolver>(&listener), {});
  ASSERT_TRUE(ch.ok()) << ch.status();
  std::thread fail([&] {
    std::this_thread::sleep_for(milliseconds(50));
    listener->OnError(Status::Error(StatusCode::kUnavailable, "registry at 127.0.0.1:1 down"));
  });
  const auto start = std::chrono::steady_clock::now();
  try {
    testing::Whoami(**ch, {.timeout = std::chrono::seconds(30)});
    FAIL() << "discovery failed";
  } catch (const CallError& e) {
    EXPECT_EQ(e.code(), StatusCode::kUnavailable);
    EXPECT_THAT(e.what(), HasSubstr("discovery failed: registry at 127.0.0.1:1 down"));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20))
      << "woken by the error, not the deadline";
  fail.join();
  // Once a set arrives, calls go through and the error is forgotten.
  listener->OnUpdate({{servers_[1]->endpoint()}});
  EXPECT_EQ(testing::Whoami(**ch), "b");
  listener->OnUpdate({});
  try {
    testing::Whoami(**ch);
    FAIL();
  } catch (const CallError& e) {
    EXPECT_THAT(e.what(), HasSubstr("no endpoint available"));
    EXPECT_THAT(e.what(), ::testing::Not(HasSubstr("discovery failed")));
  }
}

TEST(ChannelCreateTest, BadBalancerOrTargetOrOptionsAreClearErrors) {
  auto a = Channel::Create("static://127.0.0.1:1", {.balancer = "fastest_please"});
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(a.status().message(), HasSubstr("round_robin"));
  EXPECT_FALSE(Channel::Create("static://127.0.0.1:1;weight=-2", {}).ok());
  EXPECT_FALSE(Channel::Create("nope", {}).ok());
  EXPECT_FALSE(Channel::Create("static://127.0.0.1:1", {.max_attempts = 0}).ok());
}

TEST_F(ChannelTest, RetryBudgetStopsRetryStorms) {
  ChannelOptions opts;
  opts.retry_budget = {.ratio = 0.0, .min_per_second = 0};
  opts.outlier.consecutive_failures = 0;
  auto ch = MakeChannel({DeadPort(), DeadPort()}, opts);
  try {
    testing::Echo(*ch, "x");
    FAIL();
  } catch (const CallError& e) {
    EXPECT_EQ(e.code(), StatusCode::kResourceExhausted);
    EXPECT_THAT(e.what(), HasSubstr("retry budget exhausted"));
    EXPECT_THAT(e.what(), HasSubstr("TRANSPORT"));
  }
  EXPECT_EQ(ch->budget_exhausted(), 1u);
}

TEST_F(ChannelTest, AllAttemptsFailedNamesEveryEndpointTried) {
  const uint16_t d1 = DeadPort(), d2 = DeadPort();
  auto ch = MakeChannel({d1, d2}, {.max_attempts = 2});
  try {
    testing::Echo(*ch, "x");
    FAIL();
  } catch (const CallError& e) {
    EXPECT_EQ(e.code(), StatusCode::kUnavailable);
    EXPECT_THAT(e.what(), HasSubstr("after 2 attempts"));
    EXPECT_THAT(e.what(), HasSubstr("127.0.0.1:" + std::to_string(d1)));
    EXPECT_THAT(e.what(), HasSubstr("127.0.0.1:" + std::to_string(d2)));
  }
}

TEST_F(ChannelTest, EndpointRemovedWhileACallIsInFlight) {
  auto ch = MakeChannel({servers_[0]->port()});
  std::string slow_result;
  std::thread caller([&] { slow_result = testing::Slow(*ch, 300); });
  while (servers_[0]->handler().slow_in_progress() == 0) std::this_thread::yield();
  ch->UpdateEndpoints(ParseStaticEndpoints(Target({servers_[1]->port()}).substr(9)).value());
  EXPECT_EQ(testing::Whoami(*ch), "b");
  caller.join();
  EXPECT_EQ(slow_result, "a") << "the call in flight finished on the endpoint that left";
  auto reports = ch->Endpoints();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].address, "127.0.0.1:" + std::to_string(servers_[1]->port()));
}

TEST_F(ChannelTest, EndpointRemovedDuringAFailingAttemptIsFreedOnlyAfterItsLease) {
  // The attempt holds a lease on a pooled connection of an endpoint that leaves the set; the
  // attempt then fails and the call picks again from the new picker. The old picker was the
  // last owner of that endpoint (and its pool): the lease must go back before they are freed
  // (the AddressSanitizer run of this test catches the other order).
  BadServer hung(BadServer::Mode::kHang);
  ASSERT_TRUE(hung.Start().ok());
  auto ch = MakeChannel({hung.port()});
  std::string result;
  std::thread caller(
      [&] { result = testing::Echo(*ch, "x", {.timeout = std::chrono::seconds(10)}); });
  while (hung.requests() == 0) std::this_thread::sleep_for(milliseconds(1));
  ch->UpdateEndpoints(ParseStaticEndpoints(Target({servers_[1]->port()}).substr(9)).value());
  hung.Stop();  // the attempt in flight fails (EOF after send); echo is idempotent: retried
  caller.join();
  EXPECT_EQ(result, "x");
  ASSERT_EQ(ch->Endpoints().size(), 1u);
}

TEST_F(ChannelTest, WeightChangeKeepsStatistics) {
  auto ch = MakeChannel({servers_[0]->port()});
  for (int i = 0; i < 5; ++i) testing::Echo(*ch, "x");
  EndpointSet set;
  set.endpoints.push_back(servers_[0]->endpoint());
  set.endpoints[0].weight = 7;
  ch->UpdateEndpoints(set);
  auto reports = ch->Endpoints();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].weight, 7u);
  EXPECT_EQ(reports[0].calls, 5u);
}

TEST_F(ChannelTest, ARestartedServerAtTheSameAddressStartsWithACleanRecord) {
  // Discovery reports a new incarnation at an address: another process, which has earned none
  // of its predecessor's ejection, failures or connections.
  const uint16_t dead = DeadPort();
  ChannelOptions opts;
  opts.balancer = "round_robin";
  opts.outlier.consecutive_failures = 1;
  auto ch = MakeChannel({servers_[0]->port()}, opts);
  Endpoint restarting{"127.0.0.1", dead};
  restarting.incarnation = 1;
  Endpoint live = servers_[0]->endpoint();
  live.incarnation = 7;
  ch->UpdateEndpoints({{restarting, live}, 1});
  for (int i = 0; i < 4; ++i) EXPECT_EQ(testing::Echo(*ch, "x"), "x");
  auto report = [&](uint16_t port) {
    for (const EndpointReport& r : ch->Endpoints()) {
      if (r.address == "127.0.0.1:" + std::to_string(port)) return r;
    }
    ADD_FAILURE() << "no endpoint " << port;
    return EndpointReport{};
  };
  ASSERT_TRUE(report(dead).ejected);
  ASSERT_GE(report(dead).failures, 1u);
  const uint64_t live_calls = report(servers_[0]->port()).calls;
  restarting.incarnation = 2;
  ch->UpdateEndpoints({{restarting, live}, 2});
  EXPECT_FALSE(report(dead).ejected);
  EXPECT_EQ(report(dead).failures, 0u);
  EXPECT_EQ(report(dead).calls, 0u);
  EXPECT_EQ(report(servers_[0]->port()).calls, live_calls)
      << "an unchanged endpoint keeps its record";
  EXPECT_EQ(report(servers_[0]->port()).open_connections, 1);
}

TEST_F(ChannelTest, DeadEndpointIsEjectedAndCallsKeepSucceeding) {
  const uint16_t dead = DeadPort();
  auto ch =
      MakeChannel({dead, servers_[0]->port(), servers_[1]->port()}, {.balancer = "round_robin"});
  for (int i = 0; i < 60; ++i) testing::Echo(*ch, "x");
  bool ejected = false;
  for (const EndpointReport& r : ch->Endpoints()) {
    if (r.address == "127.0.0.1:" + std::to_string(dead)) {
      ejected = r.ejected;
      EXPECT_EQ(r.failures, 5u) << "ejected after 5 consecutive failures, then left alone";
    }
  }
  EXPECT_TRUE(ejected);
}

TEST_F(ChannelTest, OnewayIsDeliveredAndRetriedOnlyBeforeSending) {
  auto ch = MakeChannel({DeadPort(), servers_[0]->port()}, {.balancer = "round_robin"});
  for (int i = 0; i < 10; ++i) testing::Notify(*ch, "n");
  // Oneway calls are not acknowledged, and nothing orders them before a later call: pool
  // housekeeping may hold the thread's connection for a moment, so the next call can take a new
  // one. Wait (bounded) for all ten to reach the handler, then check no eleventh arrives.
  EXPECT_TRUE(testing::Eventually([&] { return servers_[0]->handler().notifications() >= 10; }));
  testing::Whoami(*ch);
  EXPECT_EQ(servers_[0]->handler().notifications(), 10);
}

TEST_F(ChannelTest, ConsistentHashKeepsAKeyOnOneEndpoint) {
  auto ch = MakeChannel(Ports(), {.balancer = "consistent_hash"});
  std::map<std::string, std::set<std::string>> owners;
  for (int round = 0; round < 3; ++round) {
    for (int k = 0; k < 50; ++k) {
      const std::string key = "user-" + std::to_string(k);
      owners[key].insert(testing::Whoami(*ch, CallOptions::WithHashKey(key)));
    }
  }
  std::set<std::string> used;
  for (const auto& [key, who] : owners) {
    EXPECT_EQ(who.size(), 1u) << key;
    used.insert(*who.begin());
  }
  EXPECT_EQ(used.size(), 3u) << "50 keys spread over all 3 endpoints";
}

TEST_F(ChannelTest, ShutdownClosesConnectionsAndLaterCallsFail) {
  auto ch = MakeChannel({servers_[0]->port()});
  testing::Echo(*ch, "x");
  ASSERT_EQ(ch->Endpoints()[0].open_connections, 1);
  ch->Shutdown();
  EXPECT_EQ(ch->Endpoints()[0].open_connections, 0);
  try {
    testing::Echo(*ch, "x");
    FAIL() << "a shut-down channel must not call";
  } catch (const CallError& e) {
    EXPECT_EQ(e.code(), StatusCode::kUnavailable) << e.what();
  }
}

TEST_F(ChannelTest, AFailedNestedCallLeavesNoReplyForTheNextCall) {
  // An attempt sends its request, then makes a call on another channel that fails. The reply
  // to the first request is then on its way; the connection must not serve the next call,
  // which would read that reply as its own (Thrift's sync clients do not check sequence ids).
  auto ch = MakeChannel({servers_[0]->port()});
  auto downstream = MakeChannel({DeadPort()}, {.max_attempts = 1});
  for (int round = 0; round < 3; ++round) {
    try {
      ch->Call<EchoClient>(testing::kEchoMethod, {}, [&](EchoClient& c, CallPhase& p) {
        c.send_echo("first");
        p.MarkSent();
        testing::Echo(*downstream, "nested");  // throws CallError
        std::string out;
        c.recv_echo(out);
        return out;
      });
      FAIL() << "the nested call's failure must reach the caller";
    } catch (const CallError& e) {
      EXPECT_THAT(e.what(), HasSubstr("echo.echo: all attempts failed"));
    }
    EXPECT_EQ(testing::Echo(*ch, "second"), "second") << "round " << round;
  }
  const auto reports = ch->Endpoints();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].in_flight, 0) << "every started attempt is accounted for";
  EXPECT_EQ(reports[0].failures, 0u) << "the nested failure is not this endpoint's";
}

TEST_F(ChannelTest, ARetryAvoidsAnEndpointWhoseEntryChangedDuringTheAttempt) {
  // A tag change during the attempt replaces the endpoint's entry (same server, same
  // statistics); the retry must still count it as tried and go elsewhere.
  BadServer hung(BadServer::Mode::kHang);
  ASSERT_TRUE(hung.Start().ok());
  Endpoint bad{"127.0.0.1", hung.port()};
  const Endpoint good = servers_[1]->endpoint();
  // A key consistent_hash sends to the hung server (the ring depends on addresses and weights).
  auto ring = CreateBalancer("consistent_hash").value();
  auto probe = ring->Update({MakeBackend(bad), MakeBackend(good)});
  uint64_t key = 0;
  for (int i = 0;; ++i) {
    ASSERT_LT(i, 1000);
    key = Hash64("key-" + std::to_string(i));
    if (probe->Pick({.has_hash = true, .hash = key}).backend->address == bad.Address()) break;
  }
  auto ch =
      MakeChannel({hung.port(), good.port}, {.balancer = "consistent_hash", .max_attempts = 2});
  std::string result;
  std::thread caller([&] {
    try {
      CallOptions o;
      o.timeout = std::chrono::seconds(10);
      o.hash_key = key;
      result = testing::Echo(*ch, "x", o);
    } catch (const CallError& e) {
      result = e.what();
    }
  });
  ASSERT_TRUE(testing::Eventually([&] { return hung.requests() == 1; }));
  EndpointSet changed;
  changed.endpoints = {bad, good};
  changed.endpoints[0].zone = "elsewhere";
  ch->UpdateEndpoints(changed);
  hung.Stop();  // the attempt fails after sending; echo is idempotent: retried
  caller.join();
  EXPECT_EQ(result, "x");
  EXPECT_EQ(servers_[1]->handler().calls(), 1);
}

TEST_F(ChannelTest, AShutDownChannelNeverPublishesAPickerAgain) {
  // After Shutdown, a re-admission (Tick) or a late endpoint set must not bring back a picker
  // over the shut-down pools: calls keep failing with "shut down", not after spending retries.
  testing::FakeClock clock;
  ChannelOptions opts;
  opts.clock = &clock;
  opts.balancer = "round_robin";
  opts.outlier.consecutive_failures = 1;
  const uint16_t dead = DeadPort();
  auto ch = MakeChannel({dead, servers_[0]->port()}, opts);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(testing::Echo(*ch, "x"), "x");
  int ejected = 0;
  for (const EndpointReport& r : ch->Endpoints()) ejected += r.ejected ? 1 : 0;
  ASSERT_EQ(ejected, 1);
  ch->Shutdown();
  clock.Advance(std::chrono::minutes(1));
  ch->Tick();  // the dead endpoint's ejection is over
  ch->UpdateEndpoints(ParseStaticEndpoints(Target({servers_[1]->port()}).substr(9)).value());
  for (int i = 0; i < 3; ++i) {
    try {
      testing::Echo(*ch, "x");
      FAIL() << "a shut-down channel must not call";
    } catch (const CallError& e) {
      EXPECT_EQ(e.code(), StatusCode::kUnavailable) << e.what();
      EXPECT_THAT(e.what(), HasSubstr("shut down"));
      EXPECT_THAT(e.what(), HasSubstr("after 0 attempts"));
    }
  }
  EXPECT_EQ(servers_[1]->handler().calls(), 0);
}

TEST(ChannelLatencyTest, AMuchSlowerEndpointIsEjectedAndTheOthersServe) {
  std::vector<std::unique_ptr<TestServer>> servers;
  for (const char* id : {"a", "b", "slow"}) {
    auto s = TestServer::Start(
        {.id = id, .echo_delay = std::chrono::microseconds(id[0] == 's' ? 20000 : 0)});
    ASSERT_TRUE(s.ok()) << s.status();
    servers.push_back(std::move(s).value());
  }
  ChannelOptions opts;
  opts.balancer = "round_robin";
  opts.outlier.latency_min_samples = 5;
  auto ch = MakeChannel({servers[0]->port(), servers[1]->port(), servers[2]->port()}, opts);
  for (int i = 0; i < 30; ++i) EXPECT_EQ(testing::Echo(*ch, "x"), "x");
  const std::string slow = "127.0.0.1:" + std::to_string(servers[2]->port());
  auto ejected = [&] {
    ch->Tick();
    for (const EndpointReport& r : ch->Endpoints()) {
      if (r.address == slow) return r.ejected;
    }
    return false;
  };
  ASSERT_TRUE(testing::Eventually(ejected));
  const int64_t before = servers[2]->handler().calls();
  for (int i = 0; i < 30; ++i) EXPECT_EQ(testing::Echo(*ch, "x"), "x");
  EXPECT_EQ(servers[2]->handler().calls(), before);
}

TEST_F(ChannelTest, AJoiningEndpointRampsUpOverTheSlowStartWindow) {
  testing::FakeClock clock;
  ChannelOptions opts;
  opts.clock = &clock;
  opts.balancer = "round_robin";
  opts.slow_start = {.window = std::chrono::seconds(10), .min_weight = 0.1};
  auto ch = MakeChannel({servers_[0]->port()}, opts);
  ch->UpdateEndpoints(
      ParseStaticEndpoints(Target({servers_[0]->port(), servers_[1]->port()}).substr(9)).value());
  for (int i = 0; i < 1000; ++i) testing::Echo(*ch, "x");
  // Round robin picks it every other call; it keeps 10% of those at first: ~50.
  EXPECT_LT(servers_[1]->handler().calls(), 150);
  EXPECT_GT(servers_[1]->handler().calls(), 0);
  clock.Advance(std::chrono::seconds(10));
  ch->Tick();  // the ramp is over
  const int64_t before = servers_[1]->handler().calls();
  for (int i = 0; i < 1000; ++i) testing::Echo(*ch, "x");
  EXPECT_EQ(servers_[1]->handler().calls() - before, 500);
}

TEST_F(ChannelTest, CompactProtocolEndToEnd) {
  auto s = TestServer::Start({.id = "compact", .protocol = Protocol::kCompact});
  ASSERT_TRUE(s.ok());
  ChannelOptions opts;
  opts.pool.protocol = Protocol::kCompact;
  auto ch = MakeChannel({(*s)->port()}, opts);
  EXPECT_EQ(testing::Whoami(*ch), "compact");
}

}  // namespace
}  // namespace fulcrum
