// Master-slave failovers under load: callers write through one master-slave channel while
// another thread keeps promoting a different server (the servers' RoleStates and the channel's
// endpoint set learn of it in either order, as heartbeat replies and the watch race in real
// life). Every write must succeed and run exactly once: refusals never run, so nothing is lost
// or doubled. Run under ThreadSanitizer by scripts/test.sh.
#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "support/echo_calls.h"
#include "support/test_server.h"

namespace fulcrum {
namespace {

RegistrarDirectives Reply(InstanceRole role, int64_t epoch, const std::string& master) {
  RegistrarDirectives d;
  d.role = role;
  d.epoch = epoch;
  d.master_address = master;
  if (role == InstanceRole::kMaster) {
    d.master_lease = std::chrono::seconds(60);
    d.sent_at = Clock::Real().Now();
  }
  return d;
}

TEST(ChannelMasterSlaveStressTest, WritesRunExactlyOnceAcrossFailovers) {
  constexpr int kServers = 3;
  std::vector<std::unique_ptr<testing::TestServer>> servers;
  std::vector<std::shared_ptr<RoleState>> roles;
  for (int i = 0; i < kServers; ++i) {
    roles.push_back(std::make_shared<RoleState>());
    auto s = testing::TestServer::Start({.id = "s" + std::to_string(i), .role = roles.back()});
    ASSERT_TRUE(s.ok()) << s.status();
    servers.push_back(std::move(s).value());
  }
  auto address = [&](int i) { return servers[i]->endpoint().Address(); };
  auto set_for = [&](int master, int64_t epoch) {
    EndpointSet set;
    for (int i = 0; i < kServers; ++i) {
      Endpoint e = servers[i]->endpoint();
      e.group = "g";
      e.role = i == master ? InstanceRole::kMaster : InstanceRole::kSlave;
      e.epoch = epoch;
      set.endpoints.push_back(e);
    }
    return set;
  };
  auto tell_servers = [&](int master, int64_t epoch) {
    for (int i = 0; i < kServers; ++i) {
      roles[i]->Apply(Reply(i == master ? InstanceRole::kMaster : InstanceRole::kSlave, epoch,
                            address(master)));
    }
  };

  ChannelOptions opts;
  opts.service_name = "echo";
  opts.balancer = "round_robin";
  opts.master_slave = true;
  opts.read_from_slaves = true;
  // Races are the point here, not latency: sanitizers on a loaded 2-core machine are slow.
  opts.default_timeout = std::chrono::seconds(20);
  auto ch = Channel::Create("static://" + address(0), opts);
  ASSERT_TRUE(ch.ok()) << ch.status();
  Channel& channel = **ch;
  tell_servers(0, 1);
  channel.UpdateEndpoints(set_for(0, 1));

  std::atomic<bool> stop{false};
  std::atomic<int64_t> writes{0}, failed{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&, t] {
      while (!stop.load()) {
        try {
          if (t % 2 == 0) {
            testing::Increment(channel, 1);  // not idempotent: must run exactly once
            writes.fetch_add(1);
          } else {
            static constexpr MethodTraits kRead{.name = "whoami", .idempotent = true, .read = true};
            channel.Call<testing::EchoClient>(kRead, {}, [](testing::EchoClient& c) {
              std::string out;
              c.whoami(out);
              return out;
            });
          }
        } catch (const std::exception& e) {
          if (failed.fetch_add(1) == 0) ADD_FAILURE() << e.what();
        }
      }
    });
  }
  for (int64_t epoch = 2; epoch < 60; ++epoch) {
    const int master = static_cast<int>(epoch % kServers);
    // Odd epochs: the servers hear first (clients get redirected); even: the watch does
    // (clients wait for the new master to learn it is one).
    if (epoch % 2 == 1) {
      tell_servers(master, epoch);
      channel.UpdateEndpoints(set_for(master, epoch));
    } else {
      channel.UpdateEndpoints(set_for(master, epoch));
      tell_servers(master, epoch);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
  }
  stop.store(true);
  for (std::thread& t : callers) t.join();

  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(writes.load(), 0);
  int64_t executed = 0;
  for (const auto& s : servers) executed += s->handler().increments();
  EXPECT_EQ(executed, writes.load()) << "each acknowledged write ran once, refused ones never";
  EXPECT_GT(channel.redirects() + channel.master_waits(), 0u) << "failovers were seen";
}

}  // namespace
}  // namespace fulcrum
