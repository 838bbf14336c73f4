// fulcrum-registry's /status page in a real browser (Debian's headless Chromium): after one of
// three registered servers is SIGKILLed and the registry marks it DOWN, the rendered DOM (the
// page's script has fetched the JSON and built the tables) lists all three instances, the killed
// one DOWN. Screenshots, wide and phone-sized, are kept under the build directory
// (tests/observability/artifacts/chromium/) as CI artifacts.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/http_client.h"
#include "support/subprocess.h"

namespace fulcrum::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kChromium[] = "/usr/bin/chromium";

struct Child {
  std::unique_ptr<Subprocess> process;
  int port = 0;
  int admin = 0;
};

Child SpawnChild(const std::vector<std::string>& argv, const std::string& log, bool admin) {
  Child c;
  SpawnOptions options;
  options.stderr_path = log;
  auto p = Subprocess::Spawn(argv, options);
  EXPECT_TRUE(p.ok()) << p.status();
  if (!p.ok()) return c;
  c.process = std::move(p).value();
  auto line = c.process->WaitForLine("LISTENING ", std::chrono::seconds(30));
  EXPECT_TRUE(line.ok()) << line.status() << " (see " << log << ")";
  if (line.ok()) c.port = std::stoi(*line);
  if (admin) {
    auto a = c.process->WaitForLine("ADMIN ", std::chrono::seconds(30));
    EXPECT_TRUE(a.ok()) << a.status() << " (see " << log << ")";
    if (a.ok()) c.admin = std::stoi(*a);
  }
  return c;
}

// Runs headless Chromium on `url` with `mode` (--dump-dom or --screenshot=FILE); returns its
// stdout. Bounded: killed by its PID after 60 s.
std::string RunChromium(const std::string& dir, const std::string& url,
                        const std::vector<std::string>& mode, const std::string& size) {
  static int run = 0;
  std::vector<std::string> argv = {kChromium,
                                   "--headless",
                                   "--no-sandbox",
                                   "--disable-gpu",
                                   "--disable-quic",
                                   "--no-first-run",
                                   "--disable-background-networking",
                                   "--disable-component-update",
                                   "--disable-sync",
                                   "--hide-scrollbars",
                                   "--user-data-dir=" + dir + "/profile-" + std::to_string(run++),
                                   "--window-size=" + size,
                                   "--virtual-time-budget=3000"};
  argv.insert(argv.end(), mode.begin(), mode.end());
  argv.push_back(url);
  SpawnOptions options;
  options.stderr_path = dir + "/chromium.log";
  auto p = Subprocess::Spawn(argv, options);
  EXPECT_TRUE(p.ok()) << p.status();
  if (!p.ok()) return "";
  auto out = (*p)->ReadToEnd(std::chrono::seconds(60));
  EXPECT_TRUE(out.ok()) << out.status() << " (see " << options.stderr_path << ")";
  auto status = (*p)->Wait(std::chrono::seconds(10));
  EXPECT_TRUE(status.ok()) << status.status();
  return out.ok() ? *out : "";
}

// The opening tag of the element carrying `attribute`, or "".
std::string TagWith(const std::string& dom, const std::string& attribute) {
  const size_t at = dom.find(attribute);
  if (at == std::string::npos) return "";
  const size_t open = dom.rfind('<', at);
  const size_t close = dom.find('>', at);
  return dom.substr(open, close - open + 1);
}

TEST(ChromiumTest, RegistryStatusPageShowsInstancesAndTheDownOne) {
  const std::string dir = std::string(FULCRUM_OBSERVABILITY_ARTIFACTS) + "/chromium";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  Child registry = SpawnChild(
      {FULCRUM_REGISTRY_BIN, "--port=0", "--admin_port=0", "--data_dir=" + dir + "/registry",
       "--heartbeat_interval_ms=200", "--heartbeat_timeout_ms=1000"},
      dir + "/registry.log", true);
  ASSERT_GT(registry.admin, 0);
  std::vector<Child> servers;
  for (int i = 0; i < 3; ++i) {
    servers.push_back(
        SpawnChild({FULCRUM_REGISTERED_ECHO_SERVER, "--id=s" + std::to_string(i),
                    "--weight=" + std::to_string(i + 1),
                    "--registrar=fulcrum://127.0.0.1:" + std::to_string(registry.port)},
                   dir + "/server" + std::to_string(i) + ".log", false));
    ASSERT_GT(servers.back().port, 0);
  }
  auto health = [&](int port) {
    const HttpReply r = HttpGet(registry.admin, "/status?format=json");
    if (r.status != 200) return std::string();
    const nlohmann::json status = nlohmann::json::parse(r.body);
    for (const auto& svc : status.at("services")) {
      for (const auto& i : svc.at("instances")) {
        if (i.at("address") == "127.0.0.1:" + std::to_string(port)) return i.value("health", "");
      }
    }
    return std::string();
  };
  auto wait_health = [&](int port, const std::string& want) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (health(port) != want) {
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "127.0.0.1:" << port << " never " << want << ": "
                      << HttpGet(registry.admin, "/status?format=json").body;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return true;
  };
  // Two instances of a master-slave group, for the page's group table.
  std::vector<Child> group;
  for (int i = 0; i < 2; ++i) {
    group.push_back(SpawnChild(
        {FULCRUM_REGISTERED_ECHO_SERVER, "--id=kv" + std::to_string(i), "--service=kvstore",
         "--group=g1", "--registrar=fulcrum://127.0.0.1:" + std::to_string(registry.port)},
        dir + "/kv" + std::to_string(i) + ".log", false));
    ASSERT_GT(group.back().port, 0);
  }
  for (const Child& s : servers) ASSERT_TRUE(wait_health(s.port, "UP"));
  auto has_master = [&] {
    const HttpReply r = HttpGet(registry.admin, "/status?format=json");
    if (r.status != 200) return false;
    const nlohmann::json status = nlohmann::json::parse(r.body);
    for (const auto& svc : status.at("services")) {
      for (const auto& g : svc.at("groups")) {
        if (!g.at("master").get<std::string>().empty()) return true;
      }
    }
    return false;
  };
  const auto elect_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (!has_master() && std::chrono::steady_clock::now() < elect_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(has_master());
  Child& victim = servers[1];
  ASSERT_TRUE(victim.process->Signal(SIGKILL).ok());
  ASSERT_TRUE(victim.process->Wait(std::chrono::seconds(10)).ok());
  ASSERT_TRUE(wait_health(victim.port, "DOWN"));

  const std::string url = "http://127.0.0.1:" + std::to_string(registry.admin) + "/status";
  const std::string dom = RunChromium(dir, url, {"--dump-dom"}, "1280,900");
  std::ofstream(dir + "/registry_status.dom.html") << dom;
  // The script ran: the tables are built from the JSON, not sent by the server.
  EXPECT_THAT(dom, HasSubstr("data-service=\"echo\""));
  for (const Child& s : servers) {
    const std::string address = "127.0.0.1:" + std::to_string(s.port);
    const std::string tag = TagWith(dom, "data-address=\"" + address + "\"");
    ASSERT_FALSE(tag.empty()) << address << " missing from the DOM: " << dom;
    EXPECT_THAT(tag, HasSubstr(&s == &victim ? "data-health=\"DOWN\"" : "data-health=\"UP\""))
        << tag;
  }
  EXPECT_THAT(dom, HasSubstr("instances down"));
  EXPECT_THAT(dom, HasSubstr("<span id=\"error\"></span>"));  // every poll reached it
  // The master-slave group, with its elected master.
  EXPECT_THAT(TagWith(dom, "data-group=\"g1\""), HasSubstr("class=\"group\""));
  EXPECT_THAT(dom, HasSubstr("class=\"master\">127.0.0.1:"));

  for (const auto& [name, size] : {std::pair<std::string, std::string>{"wide", "1280,900"},
                                   std::pair<std::string, std::string>{"phone", "390,844"}}) {
    const std::string png = dir + "/registry_status_" + name + ".png";
    RunChromium(dir, url, {"--screenshot=" + png}, size);
    ASSERT_TRUE(std::filesystem::exists(png)) << png;
    EXPECT_GT(std::filesystem::file_size(png), 5000u) << png;
    std::ifstream in(png, std::ios::binary);
    char magic[4] = {};
    in.read(magic, 4);
    EXPECT_EQ(std::string(magic + 1, 3), "PNG");
  }

  for (Child* s : {&servers[0], &servers[2], &group[0], &group[1]}) {
    ASSERT_TRUE(s->process->Signal(SIGTERM).ok());
    EXPECT_TRUE(s->process->Wait(std::chrono::seconds(30)).ok());
  }
  ASSERT_TRUE(registry.process->Signal(SIGTERM).ok());
  EXPECT_TRUE(registry.process->Wait(std::chrono::seconds(10)).ok());
}

}  // namespace
}  // namespace fulcrum::testing
