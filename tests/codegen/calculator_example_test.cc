// The calculator example as a user runs it: two calculator_server processes, the generated
// balanced client, and a graceful stop on SIGTERM; then the same through fulcrum-registry
// (--registrar: the servers register, the client finds them, SIGTERM deregisters).
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "calculator_fulcrum.h"
#include "fulcrum/discovery/fulcrum.h"
#include "support/ports.h"
#include "support/subprocess.h"

namespace fulcrum::testing {
namespace {

TEST(CalculatorExample, BalancedClientOverTwoServerProcesses) {
  std::vector<std::unique_ptr<Subprocess>> servers;
  std::string target = "static://";
  for (const char* id : {"--id=one", "--id=two"}) {
    auto server = Subprocess::Spawn({FULCRUM_CALCULATOR_SERVER, "--port=0", id});
    ASSERT_TRUE(server.ok()) << server.status();
    StatusOr<std::string> port =
        server.value()->WaitForLine("LISTENING ", std::chrono::seconds(30));
    ASSERT_TRUE(port.ok()) << port.status();
    target += (servers.empty() ? "" : ",") + std::string("127.0.0.1:") + port.value();
    servers.push_back(std::move(server).value());
  }

  ChannelOptions options = calc::fulcrum_gen::CalculatorChannelOptions();
  EXPECT_EQ(options.balancer, "p2c_least_loaded");  // from the IDL
  options.balancer = "round_robin";                 // deterministic: both must answer
  calc::fulcrum_gen::CalculatorBalancedClient client(target, options);
  std::set<std::string> seen;
  for (int i = 0; i < 10; ++i) EXPECT_EQ(client.add(i, 2 * i), 3 * i);
  // Consecutive calls alternate under round_robin, so whoami alone sees both servers.
  for (int i = 0; i < 4; ++i) {
    std::string id;
    client.whoami(id);
    seen.insert(id);
  }
  EXPECT_EQ(seen, (std::set<std::string>{"one", "two"}));
  EXPECT_EQ(client.divide(7, 2), 3);
  EXPECT_THROW(client.divide(1, 0), calc::DivideByZero);
  EXPECT_EQ(client.sum("user-1", {1, 2, 3, 4}), 10);
  client.note("from the example test");

  for (auto& server : servers) {
    ASSERT_TRUE(server->Signal(SIGTERM).ok());
    StatusOr<int> status = server->Wait(std::chrono::seconds(30));
    ASSERT_TRUE(status.ok()) << status.status();
    EXPECT_TRUE(WIFEXITED(status.value()) && WEXITSTATUS(status.value()) == 0);
  }
}

TEST(CalculatorExample, FanOutToThreeShardsWithAsynchronousCalls) {
  // Three shards, one calculator_server each; calculator_fanout sums 1..1000 across them, all
  // shards in flight at once, and checks the total.
  std::vector<std::unique_ptr<Subprocess>> servers;
  std::string shards;
  for (const char* id : {"--id=s0", "--id=s1", "--id=s2"}) {
    auto server = Subprocess::Spawn({FULCRUM_CALCULATOR_SERVER, "--port=0", id});
    ASSERT_TRUE(server.ok()) << server.status();
    StatusOr<std::string> port =
        server.value()->WaitForLine("LISTENING ", std::chrono::seconds(30));
    ASSERT_TRUE(port.ok()) << port.status();
    shards += (servers.empty() ? "" : ";") + std::string("static://127.0.0.1:") + port.value();
    servers.push_back(std::move(server).value());
  }
  auto fanout = Subprocess::Spawn(
      {FULCRUM_CALCULATOR_FANOUT, "--shards=" + shards, "--values=1000", "--minloglevel=2"});
  ASSERT_TRUE(fanout.ok()) << fanout.status();
  StatusOr<std::string> total = fanout.value()->WaitForLine("total = ", std::chrono::seconds(30));
  ASSERT_TRUE(total.ok()) << total.status();
  EXPECT_EQ(total->substr(0, total->find(" from")), "500500 (expected 500500)");
  StatusOr<int> status = fanout.value()->Wait(std::chrono::seconds(30));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(status.value()) && WEXITSTATUS(status.value()) == 0);

  // A shard that is down fails the request (exit 1) within its deadline.
  auto broken =
      Subprocess::Spawn({FULCRUM_CALCULATOR_FANOUT,
                         "--shards=" + shards + ";static://127.0.0.1:" + std::to_string(DeadPort()),
                         "--timeout_ms=500", "--minloglevel=2"});
  ASSERT_TRUE(broken.ok()) << broken.status();
  status = broken.value()->Wait(std::chrono::seconds(30));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(status.value()) && WEXITSTATUS(status.value()) == 1);
  for (auto& server : servers) ASSERT_TRUE(server->Signal(SIGTERM).ok());
}

TEST(CalculatorExample, ServersRegisterWithTheRegistryAndDeregisterOnSigterm) {
  char scratch_template[] = "/tmp/fulcrum-calc-test-XXXXXX";
  const char* scratch = mkdtemp(scratch_template);
  ASSERT_NE(scratch, nullptr);
  const std::string token_file = std::string(scratch) + "/token";
  std::ofstream(token_file) << "calc-test-" << getpid() << "\n";
  auto registry =
      Subprocess::Spawn({FULCRUM_REGISTRY, "--port=0", "--data_dir=" + std::string(scratch),
                         "--token_file=" + token_file, "--minloglevel=2"});
  ASSERT_TRUE(registry.ok()) << registry.status();
  StatusOr<std::string> registry_port =
      registry.value()->WaitForLine("LISTENING ", std::chrono::seconds(30));
  ASSERT_TRUE(registry_port.ok()) << registry_port.status();
  const std::string registry_address = "127.0.0.1:" + registry_port.value();

  std::vector<std::unique_ptr<Subprocess>> servers;
  for (const char* id : {"--id=one", "--id=two"}) {
    auto server = Subprocess::Spawn(
        {FULCRUM_CALCULATOR_SERVER, "--port=0", id, "--quiet_ms=100",
         "--registrar=fulcrum://" + registry_address + "?token_file=" + token_file});
    ASSERT_TRUE(server.ok()) << server.status();
    ASSERT_TRUE(server.value()->WaitForLine("LISTENING ", std::chrono::seconds(30)).ok());
    servers.push_back(std::move(server).value());
  }

  ASSERT_TRUE(RegisterFulcrumDiscovery().ok());
  ChannelOptions options = calc::fulcrum_gen::CalculatorChannelOptions();
  options.balancer = "round_robin";
  calc::fulcrum_gen::CalculatorBalancedClient client(
      "fulcrum://" + registry_address + "/Calculator", options);
  auto endpoints = [&] { return client.channel()->Endpoints().size(); };
  // Registered under the IDL's service name; the client's watch delivers both.
  for (int i = 0; i < 3000 && endpoints() != 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(endpoints(), 2u);
  std::set<std::string> seen;
  for (int i = 0; i < 4; ++i) {
    std::string id;
    client.whoami(id);
    seen.insert(id);
  }
  EXPECT_EQ(seen, (std::set<std::string>{"one", "two"}));

  // SIGTERM drains: deregistered (the watch drops it), then exits 0.
  ASSERT_TRUE(servers[0]->Signal(SIGTERM).ok());
  for (int i = 0; i < 3000 && endpoints() != 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(endpoints(), 1u);
  StatusOr<int> status = servers[0]->Wait(std::chrono::seconds(30));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(status.value()) && WEXITSTATUS(status.value()) == 0);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(client.add(i, 1), i + 1);  // the other one answers

  ASSERT_TRUE(servers[1]->Signal(SIGTERM).ok());
  ASSERT_TRUE(servers[1]->Wait(std::chrono::seconds(30)).ok());
  ASSERT_TRUE(registry.value()->Signal(SIGTERM).ok());
  ASSERT_TRUE(registry.value()->Wait(std::chrono::seconds(30)).ok());
  std::filesystem::remove_all(scratch);
}

}  // namespace
}  // namespace fulcrum::testing
