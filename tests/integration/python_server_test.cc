// Fulcrum's asynchronous client against stock Apache Thrift Python servers (Debian's
// python3-thrift, the stock generated code, TThreadedServer; tests/support/echo_server.py):
// many requests pipelined on each connection, every one answered with its own reply, and calls
// on a server SIGKILLed mid-call answered by the others.
#include <signal.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "support/echo_calls.h"
#include "support/subprocess.h"

namespace fulcrum {
namespace {

using std::chrono::seconds;
using testing::Subprocess;

struct PythonServer {
  std::unique_ptr<Subprocess> process;
  uint16_t port = 0;
};

PythonServer StartPythonServer(const std::string& id, const std::string& protocol = "binary") {
  PythonServer s;
  auto p = Subprocess::Spawn({FULCRUM_PYTHON3, FULCRUM_ECHO_SERVER_PY,
                              std::string("--gen-py=") + FULCRUM_ECHO_PY_DIR, "--id=" + id,
                              "--protocol=" + protocol});
  EXPECT_TRUE(p.ok()) << p.status();
  if (!p.ok()) return s;
  auto port = (*p)->WaitForLine("LISTENING ", seconds(30));
  EXPECT_TRUE(port.ok()) << port.status()
                         << " (the stock Python server needs /usr/bin/python3 with Debian's "
                            "python3-thrift: scripts/setup.sh installs it)";
  if (!port.ok()) return s;
  s.port = static_cast<uint16_t>(std::stoi(*port));
  s.process = std::move(p).value();
  return s;
}

std::shared_ptr<Channel> ChannelTo(const std::vector<PythonServer>& servers,
                                   ChannelOptions opts = {}) {
  std::string target = "static://";
  for (size_t i = 0; i < servers.size(); ++i) {
    target += (i ? "," : "") + std::string("127.0.0.1:") + std::to_string(servers[i].port);
  }
  opts.service_name = "python_echo";
  opts.default_timeout = seconds(10);
  opts.pool.pipelined_connections = 1;  // every request in flight to a server on one connection
  auto ch = Channel::Create(target, opts);
  EXPECT_TRUE(ch.ok()) << ch.status();
  return ch.ok() ? *ch : nullptr;
}

TEST(PythonServerTest, PipelinedCallsAreEachAnsweredWithTheirOwnReply) {
  std::vector<PythonServer> servers;
  for (const char* id : {"a", "b", "c"}) servers.push_back(StartPythonServer(id));
  for (const auto& s : servers) ASSERT_NE(s.port, 0);
  auto ch = ChannelTo(servers);
  ASSERT_NE(ch, nullptr);

  // Two threads, each keeping 64 calls in flight: ~40 at a time on each server's connection.
  constexpr int kCallsPerThread = 1500;
  constexpr int kWindow = 64;
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::pair<std::string, Future<std::string>>> window;
      for (int i = 0; i < kCallsPerThread; ++i) {
        std::string message = std::to_string(t) + ":" + std::to_string(i);
        window.emplace_back(message, testing::EchoAsync(*ch, message));
        if (window.size() == kWindow || i + 1 == kCallsPerThread) {
          for (auto& [sent, reply] : window) {
            if (reply.get() != sent) wrong.fetch_add(1);
          }
          window.clear();
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  for (const EndpointReport& r : ch->Endpoints()) {
    EXPECT_GT(r.calls, 0u) << r.address;
    EXPECT_EQ(r.failures, 0u) << r.address;
    EXPECT_LE(r.open_connections, 1) << r.address;
  }

  // Declared exceptions and other result shapes, pipelined too.
  std::vector<Future<void>> fails;
  std::vector<Future<int64_t>> increments;
  for (int i = 0; i < 30; ++i) {
    fails.push_back(testing::FailAsync(*ch, "f" + std::to_string(i)));
    increments.push_back(testing::IncrementAsync(*ch, 1));
  }
  for (int i = 0; i < 30; ++i) {
    try {
      fails[i].get();
      ADD_FAILURE() << "expected EchoError";
    } catch (const test::EchoError& e) {
      EXPECT_EQ(e.message, "f" + std::to_string(i));
    }
    EXPECT_GE(increments[i].get(), 1);
  }
}

TEST(PythonServerTest, CompactProtocol) {
  std::vector<PythonServer> servers;
  servers.push_back(StartPythonServer("c", "compact"));
  ASSERT_NE(servers[0].port, 0);
  ChannelOptions opts;
  opts.pool.protocol = Protocol::kCompact;
  auto ch = ChannelTo(servers, opts);
  ASSERT_NE(ch, nullptr);
  std::vector<Future<std::string>> replies;
  // Past seqid 127 the compact header's varint grows.
  for (int i = 0; i < 400; ++i) replies.push_back(testing::EchoAsync(*ch, std::to_string(i)));
  for (int i = 0; i < 400; ++i) EXPECT_EQ(replies[i].get(), std::to_string(i));
}

TEST(PythonServerTest, CallsInFlightOnAServerKilledMidCallAreAnsweredByTheOthers) {
  std::vector<PythonServer> servers;
  for (const char* id : {"a", "b", "c"}) servers.push_back(StartPythonServer(id));
  for (const auto& s : servers) ASSERT_NE(s.port, 0);
  ChannelOptions opts;
  opts.balancer = "round_robin";
  auto ch = ChannelTo(servers, opts);
  ASSERT_NE(ch, nullptr);

  // slow(300) is idempotent: those in flight on the killed server are retried elsewhere.
  std::vector<Future<std::string>> replies;
  for (int i = 0; i < 30; ++i) replies.push_back(testing::SlowAsync(*ch, 300));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the calls are in flight
  ASSERT_TRUE(servers[0].process->Signal(SIGKILL).ok());
  int by_a = 0;
  for (auto& r : replies) {
    const std::string who = r.get();  // none fails
    by_a += who == "a" ? 1 : 0;
  }
  EXPECT_EQ(by_a, 0);  // a's calls were cut mid-call and answered by b or c
}

}  // namespace
}  // namespace fulcrum
