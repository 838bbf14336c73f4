// The admin listener: its pages against real channels and servers, and its behaviour with bad
// and hostile clients (wrong method, unknown path, huge headers, garbage, slow clients, too many
// connections), all over loopback.
#include "fulcrum/admin.h"

#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "fulcrum/channel.h"
#include "fulcrum/service_server.h"
#include "support/echo_calls.h"
#include "support/eventually.h"
#include "support/http_client.h"
#include "support/test_server.h"

namespace fulcrum {
namespace {

using ::testing::HasSubstr;
using testing::HttpExchange;
using testing::HttpGet;
using testing::TestServer;

// True once the peer closed `fd` (read gives 0 or an error) within `timeout`.
bool ClosedByPeer(int fd, std::chrono::milliseconds timeout) {
  pollfd pfd{fd, POLLIN, 0};
  if (::poll(&pfd, 1, static_cast<int>(timeout.count())) <= 0) return false;
  char buf[4096];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) return true;
    if (::poll(&pfd, 1, static_cast<int>(timeout.count())) <= 0) return false;
  }
}

class AdminTest : public ::testing::Test {
 protected:
  void Start(AdminOptions options = {}) {
    Status s = admin_.Start(options);
    ASSERT_TRUE(s.ok()) << s;
    ASSERT_GT(admin_.port(), 0);
  }
  Admin admin_;
};

TEST_F(AdminTest, ServesMetricsStatusHealthAndFlags) {
  Start();
  auto server = TestServer::Start({.id = "admin"});
  ASSERT_TRUE(server.ok()) << server.status();
  ChannelOptions opts;
  opts.service_name = "admin_pages";
  const std::string address = "127.0.0.1:" + std::to_string((*server)->port());
  auto channel = Channel::Create("static://" + address, opts);
  ASSERT_TRUE(channel.ok()) << channel.status();
  for (int i = 0; i < 5; ++i) testing::Echo(**channel, "x");

  auto metrics = HttpGet(admin_.port(), "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_THAT(metrics.headers, HasSubstr("text/plain; version=0.0.4"));
  EXPECT_THAT(metrics.body,
              HasSubstr("fulcrum_client_calls_total{service=\"admin_pages\",method=\"echo\"} 5"));

  EXPECT_EQ(HttpGet(admin_.port(), "/healthz").body, "ok\n");
  auto ready = HttpGet(admin_.port(), "/readyz");
  EXPECT_EQ(ready.status, 200) << ready.body;

  auto json = HttpGet(admin_.port(), "/status?format=json");
  ASSERT_EQ(json.status, 200);
  EXPECT_THAT(json.headers, HasSubstr("application/json"));
  const nlohmann::json status = nlohmann::json::parse(json.body);
  bool found = false;
  for (const auto& c : status.at("channels")) {
    if (c.at("service") != "admin_pages") continue;
    found = true;
    ASSERT_EQ(c.at("endpoints").size(), 1u);
    EXPECT_EQ(c.at("endpoints")[0].at("address"), address);
    EXPECT_EQ(c.at("endpoints")[0].at("state"), "serving");
    EXPECT_EQ(c.at("endpoints")[0].at("calls"), 5);
    EXPECT_EQ(c.at("methods")[0].at("method"), "echo");
    EXPECT_EQ(c.at("methods")[0].at("calls"), 5);
  }
  EXPECT_TRUE(found) << json.body;
  bool server_found = false;
  for (const auto& s : status.at("servers")) server_found |= s.at("address") == address;
  EXPECT_TRUE(server_found) << json.body;

  auto html = HttpGet(admin_.port(), "/status");
  EXPECT_EQ(html.status, 200);
  EXPECT_THAT(html.headers, HasSubstr("text/html"));
  EXPECT_THAT(html.body, HasSubstr("<table>"));
  EXPECT_THAT(html.body, HasSubstr(address));
  EXPECT_THAT(html.body, HasSubstr("name=\"viewport\""));

  auto flags = HttpGet(admin_.port(), "/flags");
  EXPECT_EQ(flags.status, 200);
  EXPECT_THAT(flags.body, HasSubstr("--v="));

  auto head =
      HttpExchange(admin_.port(), "HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(head.status, 200);
  EXPECT_THAT(head.headers, HasSubstr("Content-Length: "));
  EXPECT_EQ(head.body, "");
}

TEST_F(AdminTest, ReadyzIsFalseWhileAServerIsStopped) {
  Start();
  auto server = TestServer::Start({.id = "stopping"});
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ(HttpGet(admin_.port(), "/readyz").status, 200);
  (*server)->Stop();
  auto ready = HttpGet(admin_.port(), "/readyz");
  EXPECT_EQ(ready.status, 503);
  EXPECT_THAT(ready.body, HasSubstr("is not serving"));
  server->reset();
  EXPECT_EQ(HttpGet(admin_.port(), "/readyz").status, 200);
}

TEST_F(AdminTest, PagesCanBeAddedAndReplaced) {
  Start();
  admin_.SetPage("/hello", [](const AdminRequest& r) {
    AdminResponse out;
    out.body = "hello " + r.Param("name");
    return out;
  });
  EXPECT_EQ(HttpGet(admin_.port(), "/hello?x=1&name=bob").body, "hello bob");
  admin_.SetPage("/status", [](const AdminRequest&) { return AdminResponse{.body = "mine"}; });
  EXPECT_EQ(HttpGet(admin_.port(), "/status").body, "mine");
}

TEST_F(AdminTest, BadRequestsGetA4xx) {
  Start();
  auto missing = HttpGet(admin_.port(), "/nope");
  EXPECT_EQ(missing.status, 404);
  for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS"}) {
    auto r = HttpExchange(admin_.port(), std::string(method) +
                                             " /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: "
                                             "0\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(r.status, 405) << method;
    EXPECT_THAT(r.headers, HasSubstr("Allow: GET, HEAD")) << method;
  }
  auto huge = HttpExchange(admin_.port(), "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " +
                                              std::string(64 * 1024, 'a') + "\r\n\r\n");
  EXPECT_EQ(huge.status, 431);
  auto body = HttpExchange(admin_.port(),
                           "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" +
                               std::string(100000, 'b'));
  EXPECT_EQ(body.status, 413);
  auto garbage = HttpExchange(admin_.port(), "GET /metrics HTTP/9.9x\r\n\r\n");
  EXPECT_EQ(garbage.status, 400);
  auto binary = HttpExchange(admin_.port(), std::string("\x16\x03\x01\x02\x00\x01\r\n\r\n", 10));
  EXPECT_EQ(binary.status, 400);
  // And it still serves.
  EXPECT_EQ(HttpGet(admin_.port(), "/healthz").status, 200);
}

TEST_F(AdminTest, SlowClientsAreCutOffWithoutBlockingOthers) {
  Start({.request_timeout = std::chrono::milliseconds(300)});
  // Half a request, then nothing (a slowloris).
  const int slow = testing::ConnectLoopback(admin_.port());
  ASSERT_GE(slow, 0);
  const std::string part = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ";
  ASSERT_EQ(::send(slow, part.data(), part.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(part.size()));
  // An idle connection that never sends anything.
  const int idle = testing::ConnectLoopback(admin_.port());
  ASSERT_GE(idle, 0);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(HttpGet(admin_.port(), "/healthz").status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(250));
  EXPECT_TRUE(ClosedByPeer(slow, std::chrono::seconds(5)));
  EXPECT_TRUE(ClosedByPeer(idle, std::chrono::seconds(5)));
  ::close(slow);
  ::close(idle);
}

TEST_F(AdminTest, ConnectionsBeyondTheLimitGet503) {
  Start({.max_connections = 2, .request_timeout = std::chrono::seconds(30)});
  const int a = testing::ConnectLoopback(admin_.port());
  const int b = testing::ConnectLoopback(admin_.port());
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  // The listener counts a connection once it has accepted it.
  EXPECT_TRUE(
      testing::Eventually([&] { return HttpGet(admin_.port(), "/healthz").status == 503; }));
  ::close(a);
  ::close(b);
  EXPECT_TRUE(
      testing::Eventually([&] { return HttpGet(admin_.port(), "/healthz").status == 200; }));
}

TEST(AdminServeOptionsTest, AdminPortStartsTheProcessWideListenerOnce) {
  ASSERT_EQ(Admin::Global().port(), 0);
  auto handler = std::make_shared<testing::EchoHandler>("served");
  ServiceServer a(std::make_shared<fulcrum::test::EchoProcessor>(handler), ServerOptions{});
  ServiceServer b(std::make_shared<fulcrum::test::EchoProcessor>(handler), ServerOptions{});
  ServeOptions options;
  options.admin_port = 0;
  ASSERT_TRUE(a.StartAndRegister("Echo", options).ok());
  const int port = Admin::Global().port();
  ASSERT_GT(port, 0);
  ASSERT_TRUE(b.StartAndRegister("Echo", options).ok());  // finds it running
  EXPECT_EQ(Admin::Global().port(), port);
  const auto status = nlohmann::json::parse(HttpGet(port, "/status?format=json").body);
  EXPECT_GE(status.at("servers").size(), 2u);
  EXPECT_EQ(HttpGet(port, "/readyz").status, 200);
  ASSERT_TRUE(b.Drain().ok());
  EXPECT_EQ(HttpGet(port, "/readyz").status, 503);  // b is stopped but still exists
  Admin::Global().Stop();
}

TEST_F(AdminTest, StartTwiceFailsAndStopReleasesThePort) {
  Start();
  EXPECT_EQ(admin_.Start({}).code(), StatusCode::kInvalidArgument);
  const int port = admin_.port();
  admin_.Stop();
  EXPECT_EQ(admin_.port(), 0);
  EXPECT_EQ(HttpGet(port, "/healthz", std::chrono::milliseconds(500)).status, 0);
  Status bad = admin_.Start({.host = "not-an-address"});
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument) << bad;
}

}  // namespace
}  // namespace fulcrum
