// End to end with real processes: fulcrum-registry, Echo servers that register through
// fulcrum::ServerRegistration, and a fulcrum::Channel resolving fulcrum://host:port/echo.
// Administrators' weights and drains reach the client's balancer; SIGTERM drains a server
// without failing a call; SIGKILL of a server is noticed; with the registry down, clients keep
// working and catch up when it returns.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "child_process.h"
#include "fulcrum/discovery/fulcrum.h"
#include "fulcrum/discovery/registry_connection.h"
#include "support/echo_calls.h"

namespace fulcrum::registry {
namespace {

using registry_test::ChildProcess;
using registry_test::CommandResult;
using registry_test::ReadFile;
using registry_test::RunCommand;
using registry_test::TempDir;
using registry_test::WriteFile;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kToken[] = "e2e-token";

struct Server {
  std::string id;
  int port = 0;
  std::optional<ChildProcess> process;
};

class EndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(RegisterFulcrumDiscovery().ok());
    WriteFile(dir_.path() + "/token", kToken);
    StartRegistry(0);
    ASSERT_GT(registry_port_, 0);
    for (const char* id : {"a", "b", "c"}) StartServer(id);
    ChannelOptions opts;
    opts.service_name = "echo";
    opts.default_timeout = seconds(2);
    auto ch =
        Channel::Create("fulcrum://127.0.0.1:" + std::to_string(registry_port_) + "/echo", opts);
    ASSERT_TRUE(ch.ok()) << ch.status();
    channel_ = *ch;
    ASSERT_TRUE(WaitUntilSeen({"a", "b", "c"})) << "the channel never reached every server";
  }

  void TearDown() override {
    if (channel_) channel_->Shutdown();
  }

  void StartRegistry(int port) {
    registry_ = ChildProcess::Spawn(
        {FULCRUM_REGISTRY_BIN, "--port=" + std::to_string(port),
         "--data_dir=" + dir_.path() + "/data", "--token_file=" + dir_.path() + "/token",
         "--heartbeat_interval_ms=100", "--heartbeat_timeout_ms=400"},
        dir_.path() + "/registry.log");
    const std::string line = registry_->WaitForLine("LISTENING", seconds(20));
    ASSERT_FALSE(line.empty()) << ReadFile(dir_.path() + "/registry.log");
    registry_port_ = std::stoi(line.substr(line.find(' ') + 1));
  }

  Server& StartServer(const std::string& id) {
    Server& s = servers_[id];
    s.id = id;
    s.process =
        ChildProcess::Spawn({FULCRUM_REGISTERED_ECHO_SERVER, "--id=" + id,
                             "--registrar=fulcrum://127.0.0.1:" + std::to_string(registry_port_) +
                                 "?token_file=" + dir_.path() + "/token"},
                            dir_.path() + "/server-" + id + ".log");
    const std::string line = s.process->WaitForLine("LISTENING", seconds(20));
    EXPECT_FALSE(line.empty()) << ReadFile(dir_.path() + "/server-" + id + ".log");
    if (!line.empty()) s.port = std::stoi(line.substr(line.find(' ') + 1));
    return s;
  }

  std::string Address(const std::string& id) {
    return "127.0.0.1:" + std::to_string(servers_[id].port);
  }

  // Calls until every id in `want` has answered (bounded).
  bool WaitUntilSeen(const std::set<std::string>& want) {
    std::set<std::string> seen;
    for (int i = 0; i < 2000 && seen != want; ++i) {
      try {
        const std::string who = testing::Whoami(*channel_);
        if (want.count(who)) seen.insert(who);
      } catch (const std::exception&) {
      }
      if (i % 20 == 19) std::this_thread::sleep_for(milliseconds(5));
    }
    return seen == want;
  }

  // Calls until `n` consecutive calls avoided `id` (bounded).
  bool WaitUntilAvoided(const std::string& id, int n = 100) {
    int streak = 0;
    for (int i = 0; i < 5000 && streak < n; ++i) {
      try {
        streak = testing::Whoami(*channel_) == id ? 0 : streak + 1;
      } catch (const std::exception&) {
        streak = 0;
      }
      if (i % 50 == 49) std::this_thread::sleep_for(milliseconds(5));
    }
    return streak >= n;
  }

  CommandResult Ctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {FULCRUMCTL_BIN,
                                     "--registry=127.0.0.1:" + std::to_string(registry_port_),
                                     "--token_file=" + dir_.path() + "/token"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, seconds(20));
  }

  nlohmann::json Show() {
    CommandResult r = Ctl({"show", "echo", "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json();
  }

  TempDir dir_;
  std::optional<ChildProcess> registry_;
  int registry_port_ = 0;
  std::map<std::string, Server> servers_;
  std::shared_ptr<Channel> channel_;
};

TEST_F(EndToEndTest, AdminWeightsAndDrainsReachTheClientsBalancer) {
  ASSERT_EQ(Ctl({"set-weight", "echo", Address("a"), "5"}).exit_code, 0);
  bool weighted = false;
  for (int i = 0; i < 1000 && !weighted; ++i) {
    for (const EndpointReport& e : channel_->Endpoints()) {
      if (e.address == Address("a") && e.weight == 5) weighted = true;
    }
    if (!weighted) std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_TRUE(weighted) << "the administrator's weight never reached the channel";

  ASSERT_EQ(Ctl({"drain", "echo", Address("b")}).exit_code, 0);
  EXPECT_TRUE(WaitUntilAvoided("b"));
  ASSERT_EQ(Ctl({"undrain", "echo", Address("b")}).exit_code, 0);
  EXPECT_TRUE(WaitUntilSeen({"a", "b", "c"}));

  // Every server is still UP (heartbeating) after the admin changes.
  nlohmann::json shown = Show();
  ASSERT_EQ(shown["instances"].size(), 3u);
  for (const auto& i : shown["instances"]) EXPECT_EQ(i["health"], "UP");
}

TEST_F(EndToEndTest, SigtermDrainsWithoutFailingACall) {
  std::atomic<bool> stop{false};
  std::atomic<int64_t> ok{0};
  std::atomic<int64_t> failed{0};
  std::mutex mu;
  std::vector<std::string> errors;
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&] {
      while (!stop.load()) {
        try {
          testing::Whoami(*channel_);
          ok.fetch_add(1);
        } catch (const std::exception& e) {
          failed.fetch_add(1);
          std::lock_guard lock(mu);
          errors.push_back(e.what());
        }
      }
    });
  }
  while (ok.load() < 200) std::this_thread::sleep_for(milliseconds(5));
  servers_["b"].process->Signal(SIGTERM);
  auto status = servers_["b"].process->Wait(seconds(30));
  const int64_t ok_at_exit = ok.load();
  while (ok.load() < ok_at_exit + 200) std::this_thread::sleep_for(milliseconds(5));
  stop = true;
  for (auto& t : callers) t.join();

  ASSERT_TRUE(status.has_value()) << "b did not exit after SIGTERM";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
  EXPECT_EQ(failed.load(), 0) << (errors.empty() ? "" : errors.front());
  const std::string log = ReadFile(dir_.path() + "/server-b.log");
  EXPECT_NE(log.find("no new calls for 300 ms"), std::string::npos) << log;
  EXPECT_EQ(Show()["instances"].size(), 2u);  // deregistered, not merely timed out
  EXPECT_TRUE(WaitUntilAvoided("b"));
}

TEST_F(EndToEndTest, SigkilledServerIsMarkedDownAndAvoided) {
  servers_["c"].process->Signal(SIGKILL);
  ASSERT_TRUE(servers_["c"].process->Wait(seconds(10)).has_value());
  bool down = false;
  for (int i = 0; i < 500 && !down; ++i) {
    const nlohmann::json shown = Show();  // named: a temporary would die before the loop
    for (const auto& inst : shown["instances"]) {
      if (inst["address"] == Address("c") && inst["health"] == "DOWN") down = true;
    }
    if (!down) std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_TRUE(down) << "c never marked DOWN: " << Show().dump();
  EXPECT_TRUE(WaitUntilAvoided("c"));
}

TEST_F(EndToEndTest, ClientsKeepWorkingWhileTheRegistryIsDownAndCatchUp) {
  registry_->Signal(SIGKILL);
  ASSERT_TRUE(registry_->Wait(seconds(10)).has_value());
  // Statically stable: the last endpoint set keeps serving, all of it. At least 300 calls,
  // and on until every server has answered: p2c keeps one thread on one endpoint for up to 64
  // calls in a row, so 300 calls alone missed a server in about a third of runs.
  int calls = 0;
  std::set<std::string> seen;
  for (; calls < 300 || (seen.size() < 3 && calls < 3000); ++calls) {
    try {
      seen.insert(testing::Whoami(*channel_));
    } catch (const std::exception& e) {
      ADD_FAILURE() << "call " << calls << " failed with the registry down: " << e.what();
      break;
    }
  }
  EXPECT_EQ(seen, (std::set<std::string>{"a", "b", "c"})) << "after " << calls << " calls";
  EXPECT_EQ(channel_->Endpoints().size(), 3u);

  // Back on the same port and data dir: the servers re-register, a new server is found.
  StartRegistry(registry_port_);
  StartServer("d");
  EXPECT_TRUE(WaitUntilSeen({"a", "b", "c", "d"}));
  bool all_back = false;
  for (int i = 0; i < 500 && !all_back; ++i) {
    all_back = Show()["instances"].size() == 4u;
    if (!all_back) std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_TRUE(all_back) << "servers did not re-register after the registry restart";
  const std::string log = ReadFile(dir_.path() + "/server-a.log");
  EXPECT_NE(log.find("registering again"), std::string::npos) << log;
}

}  // namespace
}  // namespace fulcrum::registry
