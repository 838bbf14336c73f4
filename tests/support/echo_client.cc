#include "support/echo_client.h"

#include <thrift/transport/TTransportException.h>

#include "fulcrum/framed_transport.h"

namespace fulcrum::testing {

StatusOr<std::unique_ptr<EchoConnection>> EchoConnection::Open(uint16_t port, Protocol protocol,
                                                               int timeout_ms) {
  std::unique_ptr<EchoConnection> conn(new EchoConnection);
  conn->socket_ = std::make_shared<apache::thrift::transport::TSocket>("127.0.0.1", port);
  conn->socket_->setConnTimeout(timeout_ms);
  conn->socket_->setRecvTimeout(timeout_ms);
  conn->socket_->setSendTimeout(timeout_ms);
  auto transport = FramedTransportFactory().getTransport(conn->socket_);
  try {
    transport->open();
  } catch (const apache::thrift::transport::TTransportException& e) {
    return Status::Error(StatusCode::kTransport,
                         "connect to 127.0.0.1:" + std::to_string(port) + ": " + e.what());
  }
  conn->client_ =
      std::make_unique<fulcrum::test::EchoClient>(MakeProtocol(protocol, std::move(transport)));
  return conn;
}

EchoConnection::~EchoConnection() {
  try {
    socket_->close();
  } catch (const apache::thrift::transport::TTransportException&) {
    // Closing a dead socket; nothing to do.
  }
}

}  // namespace fulcrum::testing
