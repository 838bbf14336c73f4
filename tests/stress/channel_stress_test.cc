// Many threads call through one channel while another thread keeps replacing its endpoint set
// (servers leaving and coming back, weights changing), and while the deadline watchdog cuts
// calls that run out of time. Run under ThreadSanitizer by scripts/test.sh; also plain
// correctness checks: no call fails while a server is listed, and every call cut is one whose
// deadline passed.
#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "support/echo_calls.h"
#include "support/test_server.h"

namespace fulcrum {
namespace {

TEST(ChannelStressTest, CallsWhileTheEndpointSetChanges) {
  std::vector<std::unique_ptr<testing::TestServer>> servers;
  for (int i = 0; i < 3; ++i) {
    auto s = testing::TestServer::Start({.id = "s" + std::to_string(i)});
    ASSERT_TRUE(s.ok()) << s.status();
    servers.push_back(std::move(s).value());
  }
  for (const char* balancer : {"round_robin", "p2c_least_loaded", "consistent_hash"}) {
    ChannelOptions opts;
    opts.service_name = "echo";
    opts.balancer = balancer;
    // Races are the point here, not latency: sanitizers on a loaded 2-core machine are slow.
    opts.default_timeout = std::chrono::seconds(20);
    auto ch = Channel::Create("static://127.0.0.1:" + std::to_string(servers[0]->port()), opts);
    ASSERT_TRUE(ch.ok()) << ch.status();
    Channel& channel = **ch;

    std::atomic<bool> stop{false};
    std::atomic<int64_t> ok{0}, failed{0};
    std::vector<std::thread> callers;
    for (int t = 0; t < 4; ++t) {
      callers.emplace_back([&, t] {
        uint64_t key = static_cast<uint64_t>(t);
        while (!stop.load()) {
          CallOptions o;
          o.hash_key = key++;
          try {
            testing::Whoami(channel, o);
            ok.fetch_add(1);
          } catch (const std::exception& e) {
            if (failed.fetch_add(1) == 0) ADD_FAILURE() << balancer << ": " << e.what();
          }
        }
      });
    }
    // Every set keeps server 0, so a call always has somewhere to go. At least 120 sets, and
    // on until calls have flowed meanwhile (a sanitizer build on a loaded machine is slow),
    // for at most a minute.
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    for (int round = 0;
         round < 120 || (ok.load() <= 200 && std::chrono::steady_clock::now() < give_up); ++round) {
      EndpointSet set;
      set.endpoints.push_back(servers[0]->endpoint());
      for (int i = 1; i < 3; ++i) {
        if ((round >> (i - 1)) & 1) {
          Endpoint e = servers[i]->endpoint();
          e.weight = static_cast<uint32_t>(1 + round % 4);
          set.endpoints.push_back(e);
        }
      }
      channel.UpdateEndpoints(set);
      if (round % 16 == 0) channel.Endpoints();
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    stop = true;
    for (auto& t : callers) t.join();
    EXPECT_GT(ok.load(), 100) << balancer;
    EXPECT_EQ(failed.load(), 0) << balancer;
  }
}

// Deadlines cut calls while replies arrive: the watchdog's cut races the call's end, the
// connection's return to the pool and its reuse by the next call. Every call either returns
// the right answer or fails with kDeadlineExceeded, and a cut never hits a later call.
TEST(ChannelStressTest, DeadlinesRaceWithReplies) {
  auto server = testing::TestServer::Start({.id = "s"});
  ASSERT_TRUE(server.ok()) << server.status();
  ChannelOptions opts;
  opts.service_name = "echo";
  auto ch = Channel::Create("static://127.0.0.1:" + std::to_string((*server)->port()), opts);
  ASSERT_TRUE(ch.ok()) << ch.status();
  Channel& channel = **ch;

  std::atomic<int64_t> raced_ok{0}, raced_cut{0}, wrong{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&, t] {
      for (int k = 0; k < 120; ++k) {
        const int kind = (k + t) % 3;
        CallOptions o;
        try {
          if (kind == 0) {  // plenty of time: must succeed, on whatever connection it gets
            o.timeout = std::chrono::seconds(20);
            if (testing::Slow(channel, 0, o) != "s") wrong.fetch_add(1);
          } else if (kind == 1) {  // far too little time: must be cut
            o.timeout = std::chrono::milliseconds(5);
            testing::Slow(channel, 200, o);
            if (wrong.fetch_add(1) == 0) ADD_FAILURE() << "a 200 ms call beat a 5 ms deadline";
          } else {  // about as long as the deadline: either outcome, nothing else
            o.timeout = std::chrono::milliseconds(1 + k % 4);
            if (testing::Slow(channel, k % 4, o) != "s") wrong.fetch_add(1);
            raced_ok.fetch_add(1);
          }
        } catch (const CallError& e) {
          if (kind == 2 && e.code() == StatusCode::kDeadlineExceeded) {
            raced_cut.fetch_add(1);
          } else if (kind != 1 || e.code() != StatusCode::kDeadlineExceeded) {
            if (wrong.fetch_add(1) == 0) ADD_FAILURE() << "kind " << kind << ": " << e.what();
          }
        }
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(raced_ok.load() + raced_cut.load(), 4 * 40);
  CallOptions o;
  o.timeout = std::chrono::seconds(20);
  EXPECT_EQ(testing::Whoami(channel, o), "s");
}

}  // namespace
}  // namespace fulcrum
