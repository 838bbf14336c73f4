// The calculator example as a user runs it: two calculator_server processes, the generated
// balanced client, and a graceful stop on SIGTERM.
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "calculator_fulcrum.h"
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

}  // namespace
}  // namespace fulcrum::testing
