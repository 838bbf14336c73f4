// Wire compatibility: a stock Thrift client (from `thrift --gen cpp` alone, no Fulcrum code)
// calls a Fulcrum server (generated server glue) running as its own process.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TSocket.h>

#include "thrifttest_checks.h"

namespace fulcrum::testing {
namespace {

// Runs codegen_thrifttest_server and reads the port it prints; stops it by PID.
class ServerProcess {
 public:
  ServerProcess() {
    int out[2];
    if (pipe(out) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      close(out[1]);
      execl(FULCRUM_THRIFTTEST_SERVER, FULCRUM_THRIFTTEST_SERVER, "--port=0",
            static_cast<char*>(nullptr));
      _exit(127);
    }
    close(out[1]);
    FILE* f = fdopen(out[0], "r");
    unsigned port = 0;
    // Blocks until the line arrives or the child exits (EOF): bounded by the child's startup.
    if (f != nullptr && std::fscanf(f, "LISTENING %u", &port) == 1) port_ = port;
    if (f != nullptr) std::fclose(f);
  }
  ~ServerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
  }
  uint16_t port() const { return port_; }

 private:
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

TEST(WireCompatibility, StockClientCallsFulcrumServer) {
  ServerProcess server;
  ASSERT_NE(server.port(), 0) << "the server did not print LISTENING <port>";
  using namespace apache::thrift;  // NOLINT
  auto socket = std::make_shared<transport::TSocket>("127.0.0.1", server.port());
  socket->setRecvTimeout(10000);
  auto framed = std::make_shared<transport::TFramedTransport>(socket);
  thrift::test::ThriftTestClient client(std::make_shared<protocol::TBinaryProtocol>(framed));
  framed->open();
  ExerciseThriftTest(client);
  framed->close();
}

}  // namespace
}  // namespace fulcrum::testing
