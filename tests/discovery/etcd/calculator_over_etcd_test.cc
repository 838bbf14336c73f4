// The calculator example as a user runs it over etcd: two calculator_server processes register
// with --registrar=etcd://..., calculator_client finds them with --target=etcd://.../Calculator,
// and SIGTERM drains each server (deregistered, then exit 0).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "child_process.h"
#include "etcd_codec.h"
#include "etcd_process.h"
#include "support/subprocess.h"

namespace fulcrum::etcd {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(CalculatorOverEtcd, ServersRegisterInEtcdAndTheClientFindsThem) {
  registry_test::TempDir dir;
  etcd_test::EtcdProcess etcd(dir.path());
  Status started = etcd.Start();
  ASSERT_TRUE(started.ok()) << started << "\n" << registry_test::ReadFile(etcd.log_path());

  std::vector<std::unique_ptr<testing::Subprocess>> servers;
  for (const char* id : {"one", "two"}) {
    const std::string log = dir.path() + "/calculator-" + id + ".log";
    auto server = testing::Subprocess::Spawn(
        {FULCRUM_CALCULATOR_SERVER, "--port=0", std::string("--id=") + id, "--quiet_ms=100",
         "--registrar=etcd://" + etcd.address()},
        {.stderr_path = log});
    ASSERT_TRUE(server.ok()) << server.status();
    ASSERT_TRUE((*server)->WaitForLine("LISTENING ", seconds(10)).ok())
        << registry_test::ReadFile(log);
    servers.push_back(std::move(server).value());
  }

  // The client's resolver lists the service once at start: wait until both are registered.
  registry_test::CommandResult r;
  for (int i = 0; i < 100; ++i) {
    r = registry_test::RunCommand(
        {FULCRUM_CALCULATOR_CLIENT, "--target=etcd://" + etcd.address() + "/Calculator",
         "--calls=40"},
        milliseconds(20'000));
    if (r.exit_code == 0) break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("add(39, 39) = 78 (whoami: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("sum = 6"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("divide(1, 0) threw DivideByZero"), std::string::npos) << r.out;

  // A wrong service name is an error the user can read, not a hang: no endpoint, then exit 1.
  registry_test::CommandResult missing = registry_test::RunCommand(
      {FULCRUM_CALCULATOR_CLIENT, "--target=etcd://" + etcd.address() + "/NoSuchService",
       "--calls=1"},
      milliseconds(20'000));
  EXPECT_EQ(missing.exit_code, 1) << missing.out << missing.err;
  EXPECT_NE(missing.err.find("calculator_client:"), std::string::npos) << missing.err;

  for (auto& server : servers) {
    ASSERT_TRUE(server->Signal(SIGTERM).ok());
    StatusOr<int> status = server->Wait(seconds(30));
    ASSERT_TRUE(status.ok()) << status.status();
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << testing::DescribeWaitStatus(*status);
  }
  // Both deregistered on the way out: nothing left under the service's prefix.
  const std::string prefix = ServicePrefix("/fulcrum", "Calculator");
  const nlohmann::json range = {{"key", Base64Encode(prefix)},
                                {"range_end", Base64Encode(PrefixRangeEnd(prefix))}};
  StatusOr<std::string> left = etcd.Post("/v3/kv/range", range.dump());
  ASSERT_TRUE(left.ok()) << left.status();
  StatusOr<RangeResult> parsed = ParseRangeResponse(*left);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(parsed->kvs.empty()) << *left;
}

}  // namespace
}  // namespace fulcrum::etcd
