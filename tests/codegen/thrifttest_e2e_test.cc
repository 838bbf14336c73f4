// ThriftTest end to end: the generated balanced client over three Fulcrum servers (generated
// server glue), and over stock Thrift servers, exercising every ThriftTest function.
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/server/TThreadedServer.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TServerSocket.h>

#include "ThriftTest_fulcrum.h"
#include "thrifttest_checks.h"
#include "thrifttest_handler.h"

namespace fulcrum::testing {
namespace {

using thrift::test::fulcrum_gen::ThriftTestBalancedClient;
using thrift::test::fulcrum_gen::ThriftTestServer;

std::string StaticTarget(const std::vector<uint16_t>& ports) {
  std::string target = "static://";
  for (size_t i = 0; i < ports.size(); ++i) {
    target += (i ? "," : "") + std::string("127.0.0.1:") + std::to_string(ports[i]);
  }
  return target;
}

TEST(ThriftTestEndToEnd, BalancedClientOverThreeFulcrumServers) {
  auto handler = std::make_shared<ThriftTestHandler>();
  std::vector<std::unique_ptr<ThriftTestServer>> servers;
  std::vector<uint16_t> ports;
  for (int i = 0; i < 3; ++i) {
    auto server = ThriftTestServer::Serve(handler, {.port = 0});
    ASSERT_TRUE(server.ok()) << server.status();
    ports.push_back(server.value()->port());
    servers.push_back(std::move(server).value());
  }
  ChannelOptions options = thrift::test::fulcrum_gen::ThriftTestChannelOptions();
  EXPECT_EQ(options.service_name, "ThriftTest");
  options.balancer = "round_robin";  // deterministic spread: every server must answer some
  ThriftTestBalancedClient client(StaticTarget(ports), options);

  ExerciseThriftTest(client);
  EXPECT_EQ(handler->WaitForOneways(1, std::chrono::seconds(10)), 1);
  EXPECT_EQ(handler->last_oneway(), 0);
  for (const auto& server : servers) EXPECT_GT(server->calls(), 0u);

  // Per-call options ride along without changing results.
  CallOptions per_call;
  per_call.timeout = std::chrono::seconds(5);
  per_call.hash_key = 42;
  per_call.idempotent = true;
  EXPECT_EQ(client.testI32(7, per_call), 7);

  // One client shared by many threads.
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        if (client.testI64(t * 1000 + i) != t * 1000 + i) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  for (auto& server : servers) server->Stop();
}

// A stock TThreadedServer (framed, binary): what a Fulcrum client must interoperate with.
class StockServer {
 public:
  explicit StockServer(std::shared_ptr<thrift::test::ThriftTestIf> handler) {
    using namespace apache::thrift;  // NOLINT
    auto socket = std::make_shared<transport::TServerSocket>("127.0.0.1", 0);
    socket_ = socket;
    server_ = std::make_shared<server::TThreadedServer>(
        std::make_shared<thrift::test::ThriftTestProcessor>(std::move(handler)), socket,
        std::make_shared<transport::TFramedTransportFactory>(),
        std::make_shared<protocol::TBinaryProtocolFactory>());
    auto ready = std::make_shared<std::promise<void>>();
    std::future<void> listening = ready->get_future();
    class OnServe : public server::TServerEventHandler {
     public:
      explicit OnServe(std::shared_ptr<std::promise<void>> p) : p_(std::move(p)) {}
      void preServe() override { p_->set_value(); }

     private:
      std::shared_ptr<std::promise<void>> p_;
    };
    server_->setServerEventHandler(std::make_shared<OnServe>(ready));
    thread_ = std::thread([this] { server_->serve(); });
    if (listening.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
      ADD_FAILURE() << "stock server did not start";
    }
  }
  ~StockServer() {
    server_->stop();
    thread_.join();
  }
  uint16_t port() const { return static_cast<uint16_t>(socket_->getPort()); }

 private:
  std::shared_ptr<apache::thrift::transport::TServerSocket> socket_;
  std::shared_ptr<apache::thrift::server::TThreadedServer> server_;
  std::thread thread_;
};

TEST(ThriftTestEndToEnd, BalancedClientCallsStockThriftServers) {
  auto handler = std::make_shared<ThriftTestHandler>();
  StockServer a(handler);
  StockServer b(handler);
  ASSERT_NE(a.port(), 0);
  ASSERT_NE(b.port(), 0);
  ThriftTestBalancedClient client(StaticTarget({a.port(), b.port()}));
  ExerciseThriftTest(client);
  EXPECT_EQ(handler->WaitForOneways(1, std::chrono::seconds(10)), 1);
}

TEST(ThriftTestEndToEnd, BadTargetThrowsInvalidArgument) {
  EXPECT_THROW(ThriftTestBalancedClient("nonsense://x"), std::invalid_argument);
}

}  // namespace
}  // namespace fulcrum::testing
