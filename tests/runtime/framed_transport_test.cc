#include "fulcrum/framed_transport.h"

#include <sys/socket.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/server/TThreadedServer.h>
#include <thrift/transport/TServerSocket.h>
#include <thrift/transport/TTransportException.h>

#include "Echo.h"
#include "transport/connection_pool.h"
#include "support/echo_client.h"
#include "support/echo_handler.h"
#include "support/test_server.h"

namespace fulcrum {
namespace {

using apache::thrift::transport::TTransportException;
using fulcrum::test::EchoClient;
using fulcrum::testing::EchoConnection;
using fulcrum::testing::EchoHandler;
using fulcrum::testing::TestServer;
using std::chrono::seconds;

constexpr int kChunk = 4 << 20;  // 4 MiB per call
constexpr int kCalls = 30;       // 120 MiB each way, over Thrift 0.17's 100 MiB budget

TEST(FramedTransportTest, MoreThan100MiBEachWayThroughOnePooledConnection) {
  for (Protocol protocol : {Protocol::kBinary, Protocol::kCompact}) {
    SCOPED_TRACE(ProtocolName(protocol));
    auto server = TestServer::Start({.id = "big", .protocol = protocol});
    ASSERT_TRUE(server.ok()) << server.status();
    PoolOptions options;
    options.protocol = protocol;
    options.max_connections = 1;  // every call below goes over the same connection
    internal::ConnectionPool pool(server.value()->endpoint(), options);
    const std::string chunk(kChunk, 'u');
    for (int i = 0; i < kCalls; ++i) {
      auto lease = pool.Acquire(Clock::Real().Now() + seconds(30));
      ASSERT_TRUE(lease.ok()) << lease.status();
      auto& client = lease->connection().As<EchoClient>();
      ASSERT_EQ(client.upload(chunk), kChunk) << "upload " << i;
      std::string blob;
      client.blob(blob, kChunk);
      ASSERT_EQ(blob.size(), static_cast<size_t>(kChunk)) << "blob " << i;
    }
    EXPECT_EQ(pool.open_connections(), 1);
    EXPECT_EQ(server.value()->server().calls(), 2u * kCalls);
  }
}

TEST(FramedTransportTest, FactorySetsTheMaxFrameSize) {
  auto inner = std::make_shared<apache::thrift::transport::TMemoryBuffer>();
  auto transport = FramedTransportFactory(1234).getTransport(inner);
  auto* framed = dynamic_cast<FramedTransport*>(transport.get());
  ASSERT_NE(framed, nullptr);
  EXPECT_EQ(framed->getMaxFrameSize(), 1234u);
  EXPECT_EQ(dynamic_cast<FramedTransport*>(FramedTransportFactory().getTransport(inner).get())
                ->getMaxFrameSize(),
            FramedTransportFactory::kDefaultMaxFrameSize);
}

// A server built the stock way (TFramedTransportFactory): the same traffic kills its
// connection once 100 MiB have been read, which is why FramedTransport exists.
class StockServer : public apache::thrift::server::TServerEventHandler {
 public:
  StockServer() {
    socket_ = std::make_shared<apache::thrift::transport::TServerSocket>("127.0.0.1", 0);
    server_ = std::make_shared<apache::thrift::server::TThreadedServer>(
        std::make_shared<fulcrum::test::EchoProcessor>(std::make_shared<EchoHandler>()), socket_,
        std::make_shared<apache::thrift::transport::TFramedTransportFactory>(),
        std::make_shared<apache::thrift::protocol::TBinaryProtocolFactory>());
    server_->setServerEventHandler(std::shared_ptr<TServerEventHandler>(this, [](auto*) {}));
    thread_ = std::thread([this] { server_->serve(); });
    listening_.get_future().wait();
  }
  ~StockServer() override {
    server_->stop();
    thread_.join();
  }
  void preServe() override { listening_.set_value(); }
  uint16_t port() const {
    sockaddr_in addr{};
    socklen_t len = sizeof(addr);
    ::getsockname(socket_->getSocketFD(), reinterpret_cast<sockaddr*>(&addr), &len);
    return ntohs(addr.sin_port);
  }

 private:
  std::shared_ptr<apache::thrift::transport::TServerSocket> socket_;
  std::shared_ptr<apache::thrift::server::TThreadedServer> server_;
  std::promise<void> listening_;
  std::thread thread_;
};

TEST(FramedTransportTest, StockFramedTransportOnTheServerDropsTheConnectionAfter100MiB) {
  StockServer server;
  auto conn = EchoConnection::Open(server.port(), Protocol::kBinary);
  ASSERT_TRUE(conn.ok()) << conn.status();
  const std::string chunk(kChunk, 'u');
  int succeeded = 0;
  try {
    for (; succeeded < kCalls; ++succeeded) conn.value()->client().upload(chunk);
  } catch (const TTransportException& e) {
    SUCCEED() << "failed after " << succeeded << " uploads: " << e.what();
  }
  // 100 MiB / 4 MiB = 25: the 25th upload no longer fits in what is left of the budget.
  EXPECT_EQ(succeeded, 24);
}

}  // namespace
}  // namespace fulcrum
