// Fulcrum's metrics as a real Prometheus (Debian's 2.42) sees them: it scrapes fulcrum-registry,
// three registered echo servers and a client process on loopback; the client makes a known
// number of calls, one server is SIGKILLed, the client makes more; then Prometheus' HTTP API
// must show calls counted equal to calls made (client and servers), the killed endpoint's
// failures and ejection, and the registry's DOWN.
#include <signal.h>

#include <cmath>
#include <filesystem>
#include <sstream>

#include <gtest/gtest.h>

#include "prometheus.h"
#include "support/subprocess.h"

namespace fulcrum::testing {
namespace {

constexpr int kPhase1 = 1500;
constexpr int kPhase2 = 1500;

struct Child {
  std::unique_ptr<Subprocess> process;
  int port = 0;
  int admin = 0;
};

std::string Artifacts(const std::string& name) {
  const std::string dir = std::string(FULCRUM_OBSERVABILITY_ARTIFACTS) + "/" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// Spawns `argv`, then reads "<first> <port>" and, if `admin`, "ADMIN <port>".
Child SpawnChild(const std::vector<std::string>& argv, const std::string& log, bool listens,
                 bool admin) {
  Child c;
  SpawnOptions options;
  options.stderr_path = log;
  auto p = Subprocess::Spawn(argv, options);
  EXPECT_TRUE(p.ok()) << p.status();
  if (!p.ok()) return c;
  c.process = std::move(p).value();
  if (listens) {
    auto line = c.process->WaitForLine("LISTENING ", std::chrono::seconds(30));
    EXPECT_TRUE(line.ok()) << line.status() << " (see " << log << ")";
    if (line.ok()) c.port = std::stoi(*line);
  }
  if (admin) {
    auto line = c.process->WaitForLine("ADMIN ", std::chrono::seconds(30));
    EXPECT_TRUE(line.ok()) << line.status() << " (see " << log << ")";
    if (line.ok()) c.admin = std::stoi(*line);
  }
  return c;
}

// "PHASEn <calls> <errors>" -> errors.
int PhaseErrors(Subprocess& client, const std::string& phase) {
  auto line = client.WaitForLine(phase + " ", std::chrono::seconds(60));
  EXPECT_TRUE(line.ok()) << line.status();
  if (!line.ok()) return -1;
  std::istringstream in(*line);
  int calls = 0, errors = -1;
  in >> calls >> errors;
  return errors;
}

std::string Target(int port) { return "127.0.0.1:" + std::to_string(port); }

TEST(PrometheusTest, CountsCallsFailuresEjectionAndDown) {
  const std::string dir = Artifacts("prometheus");
  Child registry = SpawnChild(
      {FULCRUM_REGISTRY_BIN, "--port=0", "--admin_port=0", "--data_dir=" + dir + "/registry",
       "--heartbeat_interval_ms=200", "--heartbeat_timeout_ms=2000"},
      dir + "/registry.log", true, true);
  ASSERT_GT(registry.admin, 0);
  std::vector<Child> servers;
  for (int i = 0; i < 3; ++i) {
    servers.push_back(
        SpawnChild({FULCRUM_REGISTERED_ECHO_SERVER, "--id=s" + std::to_string(i), "--admin_port=0",
                    "--registrar=fulcrum://127.0.0.1:" + std::to_string(registry.port)},
                   dir + "/server" + std::to_string(i) + ".log", true, true));
    ASSERT_GT(servers.back().admin, 0);
  }
  Child client =
      SpawnChild({FULCRUM_OBSERVABILITY_CLIENT, "--admin_port=0", "--expect_endpoints=3",
                  "--phase1=" + std::to_string(kPhase1), "--phase2=" + std::to_string(kPhase2),
                  "--target=fulcrum://127.0.0.1:" + std::to_string(registry.port) + "/echo"},
                 dir + "/client.log", false, true);
  ASSERT_GT(client.admin, 0);

  std::vector<std::string> server_targets;
  for (const Child& s : servers) server_targets.push_back(Target(s.admin));
  auto prom = PrometheusProcess::Start(dir, {{"registry", {Target(registry.admin)}},
                                             {"servers", server_targets},
                                             {"client", {Target(client.admin)}}});
  ASSERT_TRUE(prom.ok()) << prom.status();
  const PrometheusProcess& p = **prom;
  auto equals = [](double want) { return [want](double v) { return v == want; }; };
  auto at_least = [](double want) { return [want](double v) { return v >= want; }; };
  EXPECT_TRUE(p.WaitFor("count(up == 1)", equals(5)));

  ASSERT_TRUE(client.process->WaitForLine("READY", std::chrono::seconds(30)).ok());
  EXPECT_EQ(PhaseErrors(*client.process, "PHASE1"), 0);
  const std::string client_calls =
      "sum(fulcrum_client_calls_total{job=\"client\",service=\"echo\",method=\"echo\"})";
  const std::string server_calls =
      "sum(fulcrum_server_calls_total{job=\"servers\",service=\"Echo\",method=\"echo\"})";
  // Both sides counted every call of the first phase, and Prometheus has scraped it, before
  // the kill: the killed server's last count is then complete.
  EXPECT_TRUE(p.WaitFor(client_calls, equals(kPhase1)));
  EXPECT_TRUE(p.WaitFor(server_calls, equals(kPhase1)));

  Child& victim = servers[0];
  ASSERT_TRUE(victim.process->Signal(SIGKILL).ok());
  ASSERT_TRUE(victim.process->Wait(std::chrono::seconds(10)).ok());
  ASSERT_TRUE(client.process->Signal(SIGUSR1).ok());
  EXPECT_EQ(PhaseErrors(*client.process, "PHASE2"), 0);  // failed attempts were retried

  // Calls counted equal calls made, on the client and (summed over the servers, the killed
  // one's last scrape included) on the servers.
  EXPECT_TRUE(p.WaitFor(client_calls, equals(kPhase1 + kPhase2)));
  EXPECT_TRUE(
      p.WaitFor("sum(max_over_time(fulcrum_server_calls_total{job=\"servers\","
                "service=\"Echo\",method=\"echo\"}[5m]))",
                equals(kPhase1 + kPhase2)));
  EXPECT_TRUE(p.WaitFor("sum(fulcrum_client_call_errors_total{job=\"client\"})", equals(0)));
  // The killed endpoint's failures and its ejection.
  const std::string killed = Target(victim.port);
  EXPECT_TRUE(
      p.WaitFor("max_over_time(fulcrum_client_endpoint_failures_total{job=\"client\","
                "endpoint=\"" +
                    killed + "\"}[5m])",
                at_least(1)));
  EXPECT_TRUE(
      p.WaitFor("fulcrum_client_ejections_total{job=\"client\",service=\"echo\"}", at_least(1)));
  EXPECT_TRUE(
      p.WaitFor("sum(fulcrum_client_attempt_failures_total{job=\"client\","
                "kind=~\"connect|transport\"})",
                at_least(1)));
  EXPECT_TRUE(p.WaitFor("sum(fulcrum_client_retries_total{job=\"client\"})", at_least(1)));
  // The registry counted the DOWN, and the client's endpoint set shrank to the two left.
  EXPECT_TRUE(
      p.WaitFor("fulcrum_registry_down_total{job=\"registry\",service=\"echo\"}", equals(1)));
  EXPECT_TRUE(
      p.WaitFor("fulcrum_registry_instances{job=\"registry\",service=\"echo\","
                "health=\"down\"}",
                equals(1)));
  EXPECT_TRUE(
      p.WaitFor("sum(fulcrum_client_endpoints{job=\"client\",service=\"echo\"})", equals(2)));
  EXPECT_TRUE(p.WaitFor("sum(up{job=\"servers\"})", equals(2)));

  // Everything started here is stopped by its PID: the client and servers gracefully.
  ASSERT_TRUE(client.process->Signal(SIGTERM).ok());
  EXPECT_TRUE(client.process->Wait(std::chrono::seconds(10)).ok());
  for (size_t i = 1; i < servers.size(); ++i) {
    ASSERT_TRUE(servers[i].process->Signal(SIGTERM).ok());
    EXPECT_TRUE(servers[i].process->Wait(std::chrono::seconds(30)).ok());
  }
  ASSERT_TRUE(registry.process->Signal(SIGTERM).ok());
  EXPECT_TRUE(registry.process->Wait(std::chrono::seconds(10)).ok());
}

}  // namespace
}  // namespace fulcrum::testing
