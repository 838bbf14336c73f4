#include "support/test_server.h"

namespace fulcrum::testing {

StatusOr<std::unique_ptr<TestServer>> TestServer::Start(TestServerOptions options) {
  std::unique_ptr<TestServer> server(new TestServer);
  server->handler_ = std::make_shared<EchoHandler>(options.id);
  ServerOptions server_options;
  server_options.host = "127.0.0.1";
  server_options.port = 0;
  server_options.protocol = options.protocol;
  server_options.type = options.type;
  server_options.drain_timeout = options.drain_timeout;
  server_options.max_frame_size = options.max_frame_size;
  server->server_ = std::make_unique<Server>(
      std::make_shared<fulcrum::test::EchoProcessor>(server->handler_), server_options);
  Status status = server->server_->Start();
  if (!status.ok()) return status;
  return server;
}

TestServer::~TestServer() { server_->Stop(); }

}  // namespace fulcrum::testing
