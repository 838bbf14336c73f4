// EchoConnection: one plain Thrift Echo client on its own connection, without a pool, for
// tests and measurements that need a raw client (or many of them).
//
//   auto conn = fulcrum::testing::EchoConnection::Open(port, fulcrum::Protocol::kBinary);
//   ASSERT_TRUE(conn.ok()) << conn.status();
//   std::string out;
//   conn.value()->client().echo(out, "hi");
//
// Thread-compatible: one thread uses a connection at a time.
#pragma once

#include <memory>
#include <string>

#include <thrift/transport/TSocket.h>

#include "Echo.h"
#include "fulcrum/protocol.h"
#include "fulcrum/status.h"

namespace fulcrum::testing {

class EchoConnection {
 public:
  // Connects to 127.0.0.1:port with a FramedTransport; timeout_ms bounds connect, send and
  // receive (0: no bound).
  static StatusOr<std::unique_ptr<EchoConnection>> Open(uint16_t port, Protocol protocol,
                                                        int timeout_ms = 10'000);
  ~EchoConnection();

  fulcrum::test::EchoClient& client() { return *client_; }
  apache::thrift::transport::TSocket& socket() { return *socket_; }

 private:
  EchoConnection() = default;
  std::shared_ptr<apache::thrift::transport::TSocket> socket_;
  std::unique_ptr<fulcrum::test::EchoClient> client_;
};

}  // namespace fulcrum::testing
