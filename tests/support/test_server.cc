#include "support/test_server.h"

namespace fulcrum::testing {
namespace {

// What fulcrum-gen writes for a master-slave service, by hand for the Echo service.
class GuardedEchoProcessor : public fulcrum::test::EchoProcessor {
 public:
  GuardedEchoProcessor(std::shared_ptr<EchoHandler> handler, std::shared_ptr<RoleState> role)
      : EchoProcessor(std::move(handler)), role_(std::move(role)) {}

 protected:
  bool dispatchCall(apache::thrift::protocol::TProtocol* in,
                    apache::thrift::protocol::TProtocol* out, const std::string& fname,
                    int32_t seqid, void* ctx) override {
    return GuardWrites(*role_, kEchoWrites, in, out, fname, seqid,
                       [&] { return EchoProcessor::dispatchCall(in, out, fname, seqid, ctx); });
  }

 private:
  std::shared_ptr<RoleState> role_;
};

}  // namespace

StatusOr<std::unique_ptr<TestServer>> TestServer::Start(TestServerOptions options) {
  std::unique_ptr<TestServer> server(new TestServer);
  server->handler_ = std::make_shared<EchoHandler>(options.id, options.echo_delay);
  ServerOptions server_options;
  server_options.host = "127.0.0.1";
  server_options.port = 0;
  server_options.protocol = options.protocol;
  server_options.type = options.type;
  server_options.batch_reads = options.batch_reads;
  server_options.drain_timeout = options.drain_timeout;
  server_options.max_frame_size = options.max_frame_size;
  std::shared_ptr<apache::thrift::TProcessor> processor;
  if (options.role != nullptr) {
    processor = std::make_shared<GuardedEchoProcessor>(server->handler_, options.role);
  } else {
    processor = std::make_shared<fulcrum::test::EchoProcessor>(server->handler_);
  }
  server->server_ = std::make_unique<Server>(std::move(processor), server_options);
  Status status = server->server_->Start();
  if (!status.ok()) return status;
  return server;
}

TestServer::~TestServer() { server_->Stop(); }

}  // namespace fulcrum::testing
