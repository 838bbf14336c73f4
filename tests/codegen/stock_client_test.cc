// Wire compatibility: a stock Thrift client (from `thrift --gen cpp` alone, no Fulcrum code)
// calls a Fulcrum server (generated server glue) running as its own process.
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TSocket.h>

#include "support/subprocess.h"
#include "thrifttest_checks.h"

namespace fulcrum::testing {
namespace {

TEST(WireCompatibility, StockClientCallsFulcrumServer) {
  auto server = Subprocess::Spawn({FULCRUM_THRIFTTEST_SERVER, "--port=0"});
  ASSERT_TRUE(server.ok()) << server.status();
  StatusOr<std::string> port = server.value()->WaitForLine("LISTENING ", std::chrono::seconds(30));
  ASSERT_TRUE(port.ok()) << port.status();
  using namespace apache::thrift;  // NOLINT
  auto socket = std::make_shared<transport::TSocket>("127.0.0.1", std::stoi(port.value()));
  socket->setRecvTimeout(10000);
  auto framed = std::make_shared<transport::TFramedTransport>(socket);
  thrift::test::ThriftTestClient client(std::make_shared<protocol::TBinaryProtocol>(framed));
  framed->open();
  ExerciseThriftTest(client);
  framed->close();
  ASSERT_TRUE(server.value()->Signal(SIGTERM).ok());
  StatusOr<int> status = server.value()->Wait(std::chrono::seconds(30));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(status.value()) && WEXITSTATUS(status.value()) == 0);
}

}  // namespace
}  // namespace fulcrum::testing
