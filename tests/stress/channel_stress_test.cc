// Many threads call through one channel while another thread keeps replacing its endpoint set
// (servers leaving and coming back, weights changing). Run under ThreadSanitizer by
// scripts/test.sh; also a plain correctness check: no call fails while a server is listed.
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
    // Every set keeps server 0, so a call always has somewhere to go.
    for (int round = 0; round < 120; ++round) {
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

}  // namespace
}  // namespace fulcrum
