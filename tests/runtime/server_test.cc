#include "fulcrum/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <thrift/transport/TTransportException.h>

#include "support/echo_client.h"
#include "support/echo_handler.h"
#include "support/eventually.h"
#include "support/subprocess.h"
#include "support/test_server.h"

namespace fulcrum {
namespace {

using apache::thrift::transport::TTransportException;
using fulcrum::test::EchoError;
using fulcrum::test::EchoProcessor;
using fulcrum::testing::EchoConnection;
using fulcrum::testing::EchoHandler;
using fulcrum::testing::Eventually;
using fulcrum::testing::TestServer;
using fulcrum::testing::TestServerOptions;
using std::chrono::milliseconds;
using std::chrono::seconds;

// A raw TCP connection for sending bytes that are not Thrift.
class RawSocket {
 public:
  explicit RawSocket(uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~RawSocket() { Close(); }
  bool connected() const { return connected_; }
  void Send(const std::string& bytes) {
    ASSERT_EQ(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
  }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  // True once the server has closed its end (EOF or reset), waiting up to 10 s.
  bool ClosedByPeer() {
    pollfd pfd{fd_, POLLIN, 0};
    if (::poll(&pfd, 1, 10'000) != 1) return false;
    char buf[64];
    return ::recv(fd_, buf, sizeof(buf), 0) <= 0;
  }

 private:
  int fd_;
  bool connected_ = false;
};

std::string FrameHeader(uint32_t size) {
  const uint32_t n = htonl(size);
  return std::string(reinterpret_cast<const char*>(&n), sizeof(n));
}

bool Refuses(uint16_t port) { return !RawSocket(port).connected(); }

struct ServerCase {
  ServerType type;
  Protocol protocol;
  bool batch_reads = true;  // ServerOptions' default
};

std::string CaseName(const ::testing::TestParamInfo<ServerCase>& info) {
  return std::string(info.param.type == ServerType::kThreaded ? "Threaded" : "Nonblocking") +
         (info.param.protocol == Protocol::kBinary ? "Binary" : "Compact") +
         (info.param.batch_reads ? "" : "StockReads");
}

class ServerTest : public ::testing::TestWithParam<ServerCase> {
 protected:
  std::unique_ptr<TestServer> StartServer(Duration drain_timeout = seconds(10)) {
    TestServerOptions options;
    options.id = "server-a";
    options.type = GetParam().type;
    options.protocol = GetParam().protocol;
    options.batch_reads = GetParam().batch_reads;
    options.drain_timeout = drain_timeout;
    auto server = TestServer::Start(options);
    EXPECT_TRUE(server.ok()) << server.status();
    return server.ok() ? std::move(server).value() : nullptr;
  }
  std::unique_ptr<EchoConnection> Connect(uint16_t port) {
    auto conn = EchoConnection::Open(port, GetParam().protocol);
    EXPECT_TRUE(conn.ok()) << conn.status();
    return conn.ok() ? std::move(conn).value() : nullptr;
  }
};

TEST_P(ServerTest, ServesEveryMethod) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  EXPECT_NE(server->port(), 0);
  auto conn = Connect(server->port());
  ASSERT_NE(conn, nullptr);
  auto& client = conn->client();

  std::string out;
  client.echo(out, "hello");
  EXPECT_EQ(out, "hello");
  client.whoami(out);
  EXPECT_EQ(out, "server-a");
  EXPECT_EQ(client.increment(2), 2);
  EXPECT_EQ(client.increment(3), 5);
  client.blob(out, 1000);
  EXPECT_EQ(out, std::string(1000, 'b'));
  EXPECT_EQ(client.upload(std::string(5000, 'u')), 5000);
  try {
    client.fail("boom");
    ADD_FAILURE() << "fail() returned";
  } catch (const EchoError& e) {
    EXPECT_EQ(e.message, "boom");
  }
  client.notify("oneway");
  client.slow(out, 1);  // calls on one connection run in order, so notify() has run
  EXPECT_EQ(out, "server-a");
  EXPECT_EQ(server->handler().notifications(), 1);
  EXPECT_EQ(server->handler().increments(), 2);
  EXPECT_EQ(server->server().calls(), 9u);
  // The reply leaves before the processor returns, so the count drops just after it.
  EXPECT_TRUE(Eventually([&] { return server->server().in_flight() == 0; }));
}

TEST_P(ServerTest, BadBlobSizeIsAnErrorNotACrash) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  auto conn = Connect(server->port());
  ASSERT_NE(conn, nullptr);
  std::string out;
  EXPECT_THROW(conn->client().blob(out, -1), apache::thrift::TApplicationException);
  conn->client().echo(out, "still here");
  EXPECT_EQ(out, "still here");
}

TEST_P(ServerTest, ManyConnectionsAtOnce) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      auto conn = EchoConnection::Open(server->port(), GetParam().protocol);
      if (!conn.ok()) return;
      for (int i = 0; i < 50; ++i) {
        std::string out;
        conn.value()->client().echo(out, std::to_string(t * 100 + i));
        if (out == std::to_string(t * 100 + i)) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 400);
}

// slow() blocks until the test opens the gate, so "in flight" is a state, not a race.
class GatedHandler : public EchoHandler {
 public:
  GatedHandler() : EchoHandler("gated"), gate_(open_.get_future().share()) {}
  void slow(std::string& out, int32_t) override {
    entered_.set_value();
    // Bounded, so a test that fails before opening the gate ends instead of hanging in Stop.
    out = gate_.wait_for(seconds(20)) == std::future_status::ready ? "done" : "gate timed out";
  }
  void WaitEntered() { entered_.get_future().wait(); }
  void Open() { open_.set_value(); }

 private:
  std::promise<void> entered_;
  std::promise<void> open_;
  std::shared_future<void> gate_;
};

std::unique_ptr<Server> StartGated(const std::shared_ptr<GatedHandler>& handler, ServerCase c,
                                   Duration drain_timeout) {
  ServerOptions options;
  options.type = c.type;
  options.protocol = c.protocol;
  options.batch_reads = c.batch_reads;
  options.drain_timeout = drain_timeout;
  auto server = std::make_unique<Server>(std::make_shared<EchoProcessor>(handler), options);
  EXPECT_TRUE(server->Start().ok());
  return server;
}

TEST_P(ServerTest, StopWaitsForTheCallInFlightAndRefusesNewConnections) {
  auto handler = std::make_shared<GatedHandler>();
  auto server = StartGated(handler, GetParam(), seconds(30));
  const uint16_t port = server->port();
  auto busy = Connect(port);
  auto idle = Connect(port);
  ASSERT_TRUE(busy && idle);
  std::string idle_out;
  idle->client().echo(idle_out, "warm");

  auto call = std::async(std::launch::async, [&] {
    std::string out;
    busy->client().slow(out, 0);
    return out;
  });
  handler->WaitEntered();
  EXPECT_EQ(server->in_flight(), 1);

  auto stopped = std::async(std::launch::async, [&] { server->Stop(); });
  EXPECT_TRUE(Eventually([&] { return Refuses(port); }));
  // The server closes the idle connection (peek() sees EOF); not the busy one: Stop waits.
  EXPECT_FALSE(idle->socket().peek());
  EXPECT_EQ(stopped.wait_for(milliseconds(0)), std::future_status::timeout);
  EXPECT_EQ(server->in_flight(), 1);

  handler->Open();
  EXPECT_EQ(call.get(), "done");
  stopped.get();
  EXPECT_EQ(server->in_flight(), 0);
}

// Clients connecting while the server stops: the nonblocking server's listener may already
// have been told of a connection when Stop takes the listening socket away, and the accept()
// that follows fails. That failure must not end the event loop that also carries the calls in
// flight (it did: the call below then never got its reply and Stop ran into the drain timeout).
TEST_P(ServerTest, ConnectsRacingStopLeaveTheCallInFlightItsReply) {
  for (int round = 0; round < 30 && !HasFailure(); ++round) {
    auto handler = std::make_shared<GatedHandler>();
    auto server = StartGated(handler, GetParam(), seconds(5));
    ASSERT_NE(server, nullptr);
    const uint16_t port = server->port();
    auto busy = Connect(port);
    ASSERT_NE(busy, nullptr);
    auto call = std::async(std::launch::async, [&] {
      std::string out;
      try {
        busy->client().slow(out, 0);
      } catch (const TTransportException& e) {
        out = std::string("transport error: ") + e.what();
      }
      return out;
    });
    handler->WaitEntered();
    std::atomic<bool> stop_connecting{false};
    std::thread connector([&] {
      while (!stop_connecting.load()) RawSocket knock(port);
    });
    std::this_thread::sleep_for(milliseconds(round % 3));
    auto stopped = std::async(std::launch::async, [&] { server->Stop(); });
    EXPECT_TRUE(Eventually([&] { return Refuses(port); }));
    stop_connecting.store(true);
    connector.join();
    handler->Open();
    EXPECT_EQ(call.get(), "done") << "round " << round;
    stopped.get();
  }
}

TEST_P(ServerTest, StopClosesConnectionsUnderCallsThatOutlastTheDrainTimeout) {
  auto handler = std::make_shared<GatedHandler>();
  auto server = StartGated(handler, GetParam(), milliseconds(50));
  auto busy = Connect(server->port());
  ASSERT_NE(busy, nullptr);
  auto call = std::async(std::launch::async, [&] {
    std::string out;
    busy->client().slow(out, 0);
    return out;
  });
  handler->WaitEntered();
  auto stopped = std::async(std::launch::async, [&] { server->Stop(); });
  // The client learns at once that its call will not be answered...
  EXPECT_THROW(call.get(), TTransportException);
  // ...and Stop returns once the handler does (a handler cannot be cancelled).
  handler->Open();
  stopped.get();
}

TEST_P(ServerTest, JunkOnOneConnectionLeavesTheOthersServed) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  const uint16_t port = server->port();
  auto good = Connect(port);
  ASSERT_NE(good, nullptr);
  std::string out;

  {  // a frame whose body is not Thrift
    RawSocket junk(port);
    ASSERT_TRUE(junk.connected());
    junk.Send(FrameHeader(16) + std::string(16, 'x'));
    EXPECT_TRUE(junk.ClosedByPeer());
  }
  {  // not even a frame: an HTTP request reads as a 1.2 GB frame size
    RawSocket http(port);
    http.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_TRUE(http.ClosedByPeer());
  }
  {  // a frame over max_frame_size
    RawSocket big(port);
    big.Send(FrameHeader(100u << 20) + std::string(1024, 'x'));
    EXPECT_TRUE(big.ClosedByPeer());
  }
  {  // the client goes away in the middle of a frame
    RawSocket half(port);
    half.Send(FrameHeader(1000) + std::string(10, 'x'));
    half.Close();
  }
  good->client().echo(out, "still served");
  EXPECT_EQ(out, "still served");
  auto fresh = Connect(port);
  ASSERT_NE(fresh, nullptr);
  fresh->client().whoami(out);
  EXPECT_EQ(out, "server-a");
  EXPECT_TRUE(Eventually([&] { return server->server().in_flight() == 0; }));
}

INSTANTIATE_TEST_SUITE_P(AllServers, ServerTest,
                         ::testing::Values(ServerCase{ServerType::kThreaded, Protocol::kBinary},
                                           ServerCase{ServerType::kThreaded, Protocol::kCompact},
                                           ServerCase{ServerType::kThreaded, Protocol::kBinary,
                                                      /*batch_reads=*/false},
                                           ServerCase{ServerType::kNonblocking, Protocol::kBinary},
                                           ServerCase{ServerType::kNonblocking,
                                                      Protocol::kCompact}),
                         CaseName);

TEST(ServerStartTest, PortInUseIsAClearError) {
  auto first = TestServer::Start();
  ASSERT_TRUE(first.ok()) << first.status();
  ServerOptions options;
  options.port = first.value()->port();
  Server second(std::make_shared<EchoProcessor>(std::make_shared<EchoHandler>()), options);
  Status status = second.Start();
  EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status;
  EXPECT_NE(status.message().find(std::to_string(options.port)), std::string::npos) << status;
}

TEST(ServerStartTest, StartTwiceFails) {
  Server server(std::make_shared<EchoProcessor>(std::make_shared<EchoHandler>()), {});
  ASSERT_TRUE(server.Start().ok());
  EXPECT_FALSE(server.Start().ok());
  server.Stop();
  server.Wait();  // returns: the server has stopped
}

TEST(ServerStartTest, ParsesServerTypes) {
  EXPECT_EQ(ParseServerType("threaded").value(), ServerType::kThreaded);
  EXPECT_EQ(ParseServerType("nonblocking").value(), ServerType::kNonblocking);
  EXPECT_EQ(ParseServerType("pool").status().code(), StatusCode::kInvalidArgument);
}

// The standalone echo server, driven the way integration tests drive it: by PID. (The
// drain itself is tested in-process above, where a call can be held in flight.)
using fulcrum::testing::DescribeWaitStatus;
using fulcrum::testing::Subprocess;

std::unique_ptr<Subprocess> SpawnEchoServer(std::vector<std::string> flags, uint16_t* port) {
  flags.insert(flags.begin(), FULCRUM_ECHO_SERVER);
  auto child = Subprocess::Spawn(flags);
  EXPECT_TRUE(child.ok()) << child.status();
  if (!child.ok()) return nullptr;
  auto line = child.value()->WaitForLine("LISTENING ", seconds(30));
  EXPECT_TRUE(line.ok()) << line.status();
  *port = line.ok() ? static_cast<uint16_t>(std::stoi(line.value())) : 0;
  return std::move(child).value();
}

TEST(EchoServerProcessTest, ServesAndStopsGracefullyOnSigterm) {
  uint16_t port = 0;
  auto child =
      SpawnEchoServer({"--id=proc", "--protocol=compact", "--server_type=nonblocking"}, &port);
  ASSERT_NE(child, nullptr);
  auto conn = EchoConnection::Open(port, Protocol::kCompact);
  ASSERT_TRUE(conn.ok()) << conn.status();
  std::string out;
  conn.value()->client().whoami(out);
  EXPECT_EQ(out, "proc");
  ASSERT_TRUE(child->Signal(SIGTERM).ok());
  auto status = child->Wait(seconds(30));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(status.value()) && WEXITSTATUS(status.value()) == 0)
      << DescribeWaitStatus(status.value());
  EXPECT_TRUE(Refuses(port));
}

TEST(EchoServerProcessTest, StopContinueAndKillByPid) {
  uint16_t port = 0;
  auto child = SpawnEchoServer({}, &port);
  ASSERT_NE(child, nullptr);
  ASSERT_TRUE(child->Signal(SIGSTOP).ok());
  auto conn = EchoConnection::Open(port, Protocol::kBinary, /*timeout_ms=*/100);
  ASSERT_TRUE(conn.ok());  // the kernel still accepts for a stopped process
  std::string out;
  EXPECT_THROW(conn.value()->client().echo(out, "x"), TTransportException);  // times out
  ASSERT_TRUE(child->Signal(SIGCONT).ok());
  auto fresh = EchoConnection::Open(port, Protocol::kBinary);
  ASSERT_TRUE(fresh.ok());
  fresh.value()->client().echo(out, "back");
  EXPECT_EQ(out, "back");
  ASSERT_TRUE(child->Signal(SIGKILL).ok());
  auto status = child->Wait(seconds(30));
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(WIFSIGNALED(status.value()) && WTERMSIG(status.value()) == SIGKILL)
      << DescribeWaitStatus(status.value());
  EXPECT_FALSE(child->Signal(SIGTERM).ok());  // reaped: never signal a recycled PID
}

TEST(EchoServerProcessTest, BadFlagsExitNonZeroWithAMessage) {
  for (const char* flag : {"--protocol=json", "--server_type=pool", "--port=70000"}) {
    auto child = Subprocess::Spawn({FULCRUM_ECHO_SERVER, flag});
    ASSERT_TRUE(child.ok()) << child.status();
    auto status = child.value()->Wait(seconds(30));
    ASSERT_TRUE(status.ok()) << status.status();
    EXPECT_TRUE(WIFEXITED(status.value()) && WEXITSTATUS(status.value()) == 2)
        << flag << ": " << DescribeWaitStatus(status.value());
  }
}

TEST(EchoServerProcessTest, SpawningAMissingProgramIsAnError) {
  auto child = Subprocess::Spawn({"/nonexistent/fulcrum_binary"});
  ASSERT_FALSE(child.ok());
  EXPECT_NE(child.status().message().find("/nonexistent/fulcrum_binary"), std::string::npos);
}

}  // namespace
}  // namespace fulcrum
