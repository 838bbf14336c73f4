// TestServer: an in-process fulcrum::Server with an EchoHandler on 127.0.0.1, port chosen by
// the OS, in one call.
//
//   auto server = fulcrum::testing::TestServer::Start({.id = "a"});
//   ASSERT_TRUE(server.ok()) << server.status();
//   fulcrum::Endpoint e = server.value()->endpoint();
//   ... server.value()->handler().increments() ...
//   // stops when the unique_ptr goes away
//
// Thread-safe as fulcrum::Server is.
#pragma once

#include <memory>
#include <string>

#include "fulcrum/endpoint.h"
#include "fulcrum/role.h"
#include "fulcrum/server.h"
#include "fulcrum/status.h"
#include "fulcrum/write_gate.h"
#include "support/echo_handler.h"

namespace fulcrum::testing {

struct TestServerOptions {
  std::string id = "echo";
  Protocol protocol = Protocol::kBinary;
  ServerType type = ServerType::kThreaded;
  bool batch_reads = true;  // ServerOptions::batch_reads
  Duration drain_timeout = std::chrono::seconds(10);
  uint32_t max_frame_size = 64u << 20;
  // Every echo() sleeps this long first: a slow node.
  std::chrono::microseconds echo_delay{0};
  // Master-slave: when set, calls to the Echo functions that write (increment, upload,
  // notify) are admitted by this RoleState's write gate and refused with NotMaster otherwise,
  // as a generated master-slave server does.
  std::shared_ptr<RoleState> role;
};

// The Echo functions that write; the others are what an IDL would annotate fulcrum.read.
inline constexpr WriteFunction kEchoWrites[] = {
    {"increment", false}, {"upload", false}, {"notify", true}};

class TestServer {
 public:
  static StatusOr<std::unique_ptr<TestServer>> Start(TestServerOptions options = {});
  ~TestServer();

  void Stop() { server_->Stop(); }
  uint16_t port() const { return server_->port(); }
  Endpoint endpoint() const {
    Endpoint e;
    e.host = "127.0.0.1";
    e.port = port();
    return e;
  }
  EchoHandler& handler() { return *handler_; }
  Server& server() { return *server_; }

 private:
  TestServer() = default;
  std::shared_ptr<EchoHandler> handler_;
  std::unique_ptr<Server> server_;
};

}  // namespace fulcrum::testing
