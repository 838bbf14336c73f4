// Asynchronous calls (Channel::CallAsync) against real in-process Thrift servers on 127.0.0.1:
// many calls in flight on a few pipelined connections, each answered with its own reply, and
// the synchronous call's rules (retries where safe, deadlines, declared exceptions) kept.
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fulcrum/channel.h"
#include "support/bad_server.h"
#include "support/echo_calls.h"
#include "support/eventually.h"
#include "support/fault_proxy.h"
#include "support/ports.h"
#include "support/test_server.h"

namespace fulcrum {
namespace {

using std::chrono::milliseconds;
using testing::TestServer;
using testing::TestServerOptions;

std::unique_ptr<TestServer> Serve(const std::string& id, TestServerOptions options = {}) {
  options.id = id;
  auto s = TestServer::Start(options);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? std::move(s).value() : nullptr;
}

std::shared_ptr<Channel> MakeChannel(const std::vector<uint16_t>& ports, ChannelOptions opts = {}) {
  std::string target = "static://";
  for (size_t i = 0; i < ports.size(); ++i) {
    target += (i ? "," : "") + std::string("127.0.0.1:") + std::to_string(ports[i]);
  }
  opts.service_name = "async";
  auto ch = Channel::Create(target, opts);
  EXPECT_TRUE(ch.ok()) << ch.status();
  return ch.ok() ? *ch : nullptr;
}

void ExpectNothingInFlight(Channel& ch) {
  EXPECT_TRUE(testing::Eventually([&] {
    for (const EndpointReport& r : ch.Endpoints()) {
      if (r.in_flight != 0) return false;
    }
    return true;
  })) << "an endpoint's in-flight count never came back to 0";
}

TEST(AsyncCallTest, ManyCallsInFlightFromOneThreadEachGetTheirOwnReply) {
  auto a = Serve("a");
  auto b = Serve("b");
  auto c = Serve("c");
  ASSERT_TRUE(a && b && c);
  auto ch = MakeChannel({a->port(), b->port(), c->port()});
  ASSERT_NE(ch, nullptr);

  constexpr int kCalls = 3000;
  std::vector<Future<std::string>> futures;
  futures.reserve(kCalls);
  for (int i = 0; i < kCalls; ++i) {
    futures.push_back(testing::EchoAsync(*ch, "message " + std::to_string(i)));
  }
  for (int i = 0; i < kCalls; ++i) {
    EXPECT_EQ(futures[i].get(), "message " + std::to_string(i));
  }
  // Every server took part, on a few connections each.
  EXPECT_GT(a->handler().calls(), 0);
  EXPECT_GT(b->handler().calls(), 0);
  EXPECT_GT(c->handler().calls(), 0);
  EXPECT_EQ(a->handler().calls() + b->handler().calls() + c->handler().calls(), kCalls);
  for (const EndpointReport& r : ch->Endpoints()) {
    EXPECT_LE(r.open_connections, ch->options().pool.pipelined_connections) << r.address;
    EXPECT_EQ(r.failures, 0u) << r.address;
  }
  ExpectNothingInFlight(*ch);
}

TEST(AsyncCallTest, CompactProtocolAndTheNonblockingServer) {
  auto a = Serve("a", {.protocol = Protocol::kCompact, .type = ServerType::kNonblocking});
  ASSERT_TRUE(a);
  ChannelOptions opts;
  opts.pool.protocol = Protocol::kCompact;
  auto ch = MakeChannel({a->port()}, opts);
  ASSERT_NE(ch, nullptr);
  std::vector<Future<std::string>> futures;
  // Past 127 the compact protocol's varint seqid takes more bytes than the stock client's 0.
  for (int i = 0; i < 500; ++i) futures.push_back(testing::EchoAsync(*ch, std::to_string(i)));
  for (int i = 0; i < 500; ++i) EXPECT_EQ(futures[i].get(), std::to_string(i));
}

TEST(AsyncCallTest, AServerThatBatchesReadsServesPipelinedCallsSmallAndLarge) {
  // ServerOptions::batch_reads: several requests per recv(), frames larger than its buffer
  // read straight through; every call gets its own reply.
  auto a = Serve("a", {.batch_reads = true});
  ASSERT_TRUE(a);
  auto ch = MakeChannel({a->port()});
  ASSERT_NE(ch, nullptr);
  std::vector<std::string> sent;
  std::vector<Future<std::string>> replies;
  for (int i = 0; i < 2000; ++i) {
    // Every 100th message is 200 KB: larger than the server's 64 KiB read buffer.
    sent.push_back(i % 100 == 0 ? std::string(200 * 1024, static_cast<char>('a' + i % 26))
                                : std::to_string(i));
    replies.push_back(testing::EchoAsync(*ch, sent.back()));
  }
  for (int i = 0; i < 2000; ++i) EXPECT_EQ(replies[i].get(), sent[i]) << i;
}

TEST(AsyncCallTest, DeclaredExceptionsReachTheCallerAndAreNotEndpointFailures) {
  auto a = Serve("a");
  ASSERT_TRUE(a);
  auto ch = MakeChannel({a->port()});
  ASSERT_NE(ch, nullptr);
  Future<void> f = testing::FailAsync(*ch, "no such thing");
  try {
    f.get();
    FAIL() << "expected EchoError";
  } catch (const test::EchoError& e) {
    EXPECT_EQ(e.message, "no such thing");
  }
  EXPECT_EQ(ch->Endpoints()[0].failures, 0u);
  EXPECT_EQ(a->handler().calls(), 1);  // not retried
}

TEST(AsyncCallTest, ThenAndOnReadyRunWithTheResult) {
  auto a = Serve("a");
  ASSERT_TRUE(a);
  auto ch = MakeChannel({a->port()});
  ASSERT_NE(ch, nullptr);

  Future<size_t> length =
      testing::EchoAsync(*ch, "hello").then([](std::string s) { return s.size(); });
  EXPECT_EQ(length.get(), 5u);

  // An error skips the continuation and reaches the chained future.
  std::atomic<bool> ran{false};
  Future<int> skipped = testing::FailAsync(*ch, "x").then([&] {
    ran = true;
    return 1;
  });
  EXPECT_THROW(skipped.get(), test::EchoError);
  EXPECT_FALSE(ran.load());

  // What the continuation throws becomes the future's error.
  Future<int> thrown = testing::EchoAsync(*ch, "y").then(
      [](std::string) -> int { throw std::runtime_error("from the continuation"); });
  EXPECT_THROW(thrown.get(), std::runtime_error);

  Promise<std::string> seen;
  testing::EchoAsync(*ch, "callback").OnReady([&](Future<std::string> done) {
    seen.SetValue(done.get());
  });
  Future<std::string> seen_future = seen.future();
  ASSERT_TRUE(seen_future.wait_for(std::chrono::seconds(5)));
  EXPECT_EQ(seen_future.get(), "callback");
}

TEST(AsyncCallTest, AnIdempotentCallIsRetriedOnAnotherEndpointWhenItsEndpointIsDown) {
  auto a = Serve("a");
  ASSERT_TRUE(a);
  const uint16_t dead = testing::DeadPort();
  ChannelOptions opts;
  opts.balancer = "round_robin";
  opts.outlier.consecutive_failures = 0;  // keep the dead endpoint in rotation
  auto ch = MakeChannel({dead, a->port()}, opts);
  ASSERT_NE(ch, nullptr);
  std::vector<Future<std::string>> echoes;
  std::vector<Future<int64_t>> increments;
  // Few enough that the retry budget (10 a second at least) pays for every retry.
  for (int i = 0; i < 4; ++i) {
    echoes.push_back(testing::EchoAsync(*ch, std::to_string(i)));
    // Not idempotent, but a failed connect means the request never left: retried too.
    increments.push_back(testing::IncrementAsync(*ch, 1));
  }
  for (int i = 0; i < 4; ++i) EXPECT_EQ(echoes[i].get(), std::to_string(i));
  for (auto& f : increments) EXPECT_GE(f.get(), 1);
  EXPECT_EQ(a->handler().increments(), 4);
  ExpectNothingInFlight(*ch);
}

TEST(AsyncCallTest, ACutConnectionRetriesIdempotentCallsAndFailsSentWrites) {
  // Calls in flight on a connection that is reset: the idempotent ones are answered by the
  // other endpoint; a write that had left is not sent again (it may have run).
  auto a = Serve("a");
  auto b = Serve("b");
  ASSERT_TRUE(a && b);
  testing::FaultProxy proxy("127.0.0.1", a->port());
  ASSERT_TRUE(proxy.Start().ok());
  ChannelOptions opts;
  opts.balancer = "round_robin";
  opts.outlier.consecutive_failures = 0;
  // The retried slow calls queue behind b's own on its connection (served in order).
  opts.default_timeout = std::chrono::seconds(10);
  auto ch = MakeChannel({proxy.port(), b->port()}, opts);
  ASSERT_NE(ch, nullptr);

  // Round robin: a slow call to each endpoint, then a write to each, behind it on the same
  // connection. With one request on the wire a request leaves at once (with two it would wait
  // for the event thread, and a reset before it left would make it safe to retry).
  std::vector<Future<std::string>> slow;
  for (int i = 0; i < 2; ++i) slow.push_back(testing::SlowAsync(*ch, 300));
  std::vector<Future<int64_t>> writes;
  for (int i = 0; i < 2; ++i) writes.push_back(testing::IncrementAsync(*ch, 1));
  ASSERT_TRUE(testing::Eventually([&] { return a->handler().slow_in_progress() > 0; }));
  proxy.ResetAll();

  for (auto& f : slow) EXPECT_EQ(f.get().empty(), false);  // answered (by b when retried)
  int failed_writes = 0;
  for (auto& f : writes) {
    try {
      f.get();
    } catch (const CallError& e) {
      ++failed_writes;
      EXPECT_THAT(e.what(), ::testing::HasSubstr("not idempotent"));
    }
  }
  // The writes routed to the proxied endpoint were on the cut connections: they failed, and
  // each ran at most once in all.
  EXPECT_EQ(failed_writes, 1);  // the one sent to the proxied endpoint
  EXPECT_LE(a->handler().increments() + b->handler().increments(), 2);
  ExpectNothingInFlight(*ch);
}

TEST(AsyncCallTest, DeadlinesHoldAndTheConnectionServesAgainAfterALateReply) {
  auto a = Serve("a");
  ASSERT_TRUE(a);
  auto ch = MakeChannel({a->port()});
  ASSERT_NE(ch, nullptr);
  CallOptions quick;
  quick.timeout = milliseconds(50);
  quick.max_attempts = 1;
  Future<std::string> late = testing::SlowAsync(*ch, 120, quick);
  try {
    late.get();
    FAIL() << "expected a deadline";
  } catch (const CallError& e) {
    EXPECT_EQ(e.code(), StatusCode::kDeadlineExceeded);
  }
  // The late reply arrives (within the stall grace) and is dropped: the next call reads its own.
  EXPECT_EQ(testing::EchoAsync(*ch, "after").get(), "after");
  ExpectNothingInFlight(*ch);
}

TEST(AsyncCallTest, AServerStuckOnARequestHasItsConnectionClosed) {
  // A reply later than its deadline plus the stall grace: the connection is closed (everything
  // queued behind it would wait as long) and the calls behind it are retried on a new one.
  auto a = Serve("a");
  ASSERT_TRUE(a);
  ChannelOptions opts;
  opts.pool.pipelined_connections = 1;
  auto ch = MakeChannel({a->port()}, opts);
  ASSERT_NE(ch, nullptr);
  CallOptions quick;
  quick.timeout = milliseconds(50);
  quick.max_attempts = 1;
  Future<std::string> stuck = testing::SlowAsync(*ch, 3000, quick);
  Future<std::string> behind = testing::EchoAsync(*ch, "behind");  // queued behind it
  EXPECT_THROW(stuck.get(), CallError);
  EXPECT_EQ(behind.get(), "behind");  // retried on a new connection once the old one closed
  EXPECT_EQ(testing::EchoAsync(*ch, "next").get(), "next");
  ExpectNothingInFlight(*ch);
}

TEST(AsyncCallTest, CancelEndsTheFutureAtOnceAndTheConnectionServesAgain) {
  auto a = Serve("a");
  ASSERT_TRUE(a);
  ChannelOptions opts;
  opts.pool.pipelined_connections = 1;
  auto ch = MakeChannel({a->port()}, opts);
  ASSERT_NE(ch, nullptr);
  Future<std::string> slow = testing::SlowAsync(*ch, 200);
  Future<size_t> chained = slow.then([](std::string s) { return s.size(); });
  chained.Cancel();  // cancels the call behind it too
  try {
    slow.get();
    FAIL() << "expected a cancellation";
  } catch (const CallError& e) {
    EXPECT_EQ(e.code(), StatusCode::kCancelled);
  }
  EXPECT_THROW(chained.get(), CallError);
  // The cancelled call's reply is read and dropped; the next call on the connection gets its own.
  EXPECT_EQ(testing::EchoAsync(*ch, "mine").get(), "mine");
  ExpectNothingInFlight(*ch);
  // Dropped futures: the calls still run to their end.
  for (int i = 0; i < 10; ++i) testing::IncrementAsync(*ch, 1);
  EXPECT_TRUE(testing::Eventually([&] { return a->handler().increments() == 10; }));
  ExpectNothingInFlight(*ch);
}

TEST(AsyncCallTest, AReplyThatIsNotTheExpectedOneClosesTheConnectionAndFailsOnlyItsCalls) {
  testing::BadServer junk(testing::BadServer::Mode::kGarbageFrame);
  ASSERT_TRUE(junk.Start().ok());
  auto good = Serve("good");
  ASSERT_TRUE(good);
  ChannelOptions opts;
  opts.balancer = "round_robin";
  opts.outlier.consecutive_failures = 0;
  auto ch = MakeChannel({junk.port(), good->port()}, opts);
  ASSERT_NE(ch, nullptr);
  std::vector<Future<std::string>> echoes;
  for (int i = 0; i < 20; ++i) echoes.push_back(testing::EchoAsync(*ch, std::to_string(i)));
  // Idempotent: the ones sent to the junk server are retried on the good one.
  for (int i = 0; i < 20; ++i) EXPECT_EQ(echoes[i].get(), std::to_string(i));
  EXPECT_GE(junk.requests(), 1);
  bool junk_failed = false;
  for (const EndpointReport& r : ch->Endpoints()) {
    if (r.address.ends_with(":" + std::to_string(junk.port()))) junk_failed = r.failures > 0;
  }
  EXPECT_TRUE(junk_failed);
}

TEST(AsyncCallTest, TenThousandCallsInFlightFromOneThread) {
  auto a = Serve("a");
  auto b = Serve("b");
  auto c = Serve("c");
  ASSERT_TRUE(a && b && c);
  ChannelOptions opts;
  opts.default_timeout = std::chrono::seconds(20);
  opts.retry_budget.min_per_second = 0;  // no retry hides a lost reply
  opts.retry_budget.ratio = 0;
  auto ch = MakeChannel({a->port(), b->port(), c->port()}, opts);
  ASSERT_NE(ch, nullptr);
  constexpr int kCalls = 10000;
  std::atomic<int> answered{0};
  std::atomic<int> wrong{0};
  for (int i = 0; i < kCalls; ++i) {
    const std::string message = std::to_string(i);
    testing::EchoAsync(*ch, message).OnReady([&, message](Future<std::string> done) {
      try {
        if (done.get() != message) wrong.fetch_add(1);
      } catch (...) {
        wrong.fetch_add(1);
      }
      answered.fetch_add(1);
    });
  }
  ASSERT_TRUE(
      testing::Eventually([&] { return answered.load() == kCalls; }, std::chrono::seconds(60)));
  EXPECT_EQ(wrong.load(), 0);
  ExpectNothingInFlight(*ch);
}

// A resolver that delivers nothing: the test hands the channel its endpoints.
class SilentResolver final : public Resolver {
 public:
  Status Start(ResolverListener*) override { return Status::Ok(); }
  void Stop() override {}
};

TEST(AsyncCallTest, ACallBeforeDiscoveryAnswersWaitsForIt) {
  auto a = Serve("a");
  ASSERT_TRUE(a);
  auto created = Channel::Create(std::make_unique<SilentResolver>(), ChannelOptions{});
  ASSERT_TRUE(created.ok()) << created.status();
  std::shared_ptr<Channel> ch = *created;
  CallOptions brief;
  brief.timeout = milliseconds(300);
  // Nothing delivered within the deadline: the call fails, saying so.
  EXPECT_THROW(testing::EchoAsync(*ch, "nowhere", brief).get(), CallError);
  // A call made now waits (on the retry lane) for the set delivered meanwhile.
  Future<std::string> waiting = testing::EchoAsync(*ch, "somewhere");
  EndpointSet set;
  set.endpoints.push_back(a->endpoint());
  ch->UpdateEndpoints(set);
  EXPECT_EQ(waiting.get(), "somewhere");
}

TEST(AsyncCallTest, ShutdownLetsCallsInFlightFinishAndFailsNewOnes) {
  auto a = Serve("a");
  ASSERT_TRUE(a);
  auto ch = MakeChannel({a->port()});
  ASSERT_NE(ch, nullptr);
  Future<std::string> in_flight = testing::SlowAsync(*ch, 100);
  ASSERT_TRUE(testing::Eventually([&] { return a->handler().slow_in_progress() > 0; }));
  ch->Shutdown();
  EXPECT_EQ(in_flight.get(), "a");
  EXPECT_THROW(testing::EchoAsync(*ch, "late").get(), CallError);
}

}  // namespace
}  // namespace fulcrum
