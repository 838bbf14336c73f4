#include "server/heartbeat_server.h"

#include <glog/logging.h>
#include <sys/socket.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/server/TNonblockingServer.h>
#include <thrift/transport/TNonblockingServerSocket.h>
#include <thrift/transport/TSocket.h>

#include <future>

#include "fulcrum/server_transport.h"
#include "server/handler.h"

namespace fulcrum::registry {

using apache::thrift::TException;
using apache::thrift::TProcessor;
using apache::thrift::protocol::TProtocol;
using apache::thrift::transport::TTransport;

namespace {

struct HeartbeatConnection {
  std::string peer;  // numeric "host:port", learned before the first call
};

[[noreturn]] void Refuse(const char* call) {
  LOG(WARNING) << "refused " << call << " from " << CurrentPeer()
               << " on the heartbeat port (register/heartbeat/deregister only)";
  thrift::RegistryError err;
  err.code = thrift::ErrorCode::INVALID_ARGUMENT;
  err.message = std::string(call) +
                " is not served on the registry's heartbeat port, which takes only "
                "register_instance, heartbeat and deregister: call the main port";
  throw err;
}

// Sets the current peer for the handler's logs and logs, with the peer, why a connection is
// closed for bad input (the nonblocking server closes it when process() throws).
class HeartbeatProcessor final : public TProcessor {
 public:
  explicit HeartbeatProcessor(std::shared_ptr<TProcessor> inner) : inner_(std::move(inner)) {}

  bool process(std::shared_ptr<TProtocol> in, std::shared_ptr<TProtocol> out,
               void* connection_context) override {
    const auto* ctx = static_cast<const HeartbeatConnection*>(connection_context);
    SetCurrentPeer(ctx != nullptr && !ctx->peer.empty() ? ctx->peer : "?");
    try {
      return inner_->process(in, out, connection_context);
    } catch (const TException& e) {
      LOG(WARNING) << "closing heartbeat-port connection from " << CurrentPeer() << ": "
                   << e.what();
      throw;
    }
  }

 private:
  std::shared_ptr<TProcessor> inner_;
};

}  // namespace

void HeartbeatPortHandler::register_instance(thrift::Lease& out, const std::string& token,
                                             const thrift::Instance& instance) {
  inner_->register_instance(out, token, instance);
}
void HeartbeatPortHandler::heartbeat(thrift::Directives& out, const std::string& token,
                                     int64_t lease, const thrift::LoadReport& load) {
  inner_->heartbeat(out, token, lease, load);
}
void HeartbeatPortHandler::deregister(const std::string& token, int64_t lease) {
  inner_->deregister(token, lease);
}
void HeartbeatPortHandler::lookup(thrift::ServiceSnapshot&, const std::string&) {
  Refuse("lookup");
}
void HeartbeatPortHandler::watch(thrift::WatchResult&, const std::string&, int64_t, int32_t) {
  Refuse("watch");
}
void HeartbeatPortHandler::list_services(std::vector<thrift::ServiceSummary>&) {
  Refuse("list_services");
}
void HeartbeatPortHandler::set_weight(const std::string&, const std::string&, const std::string&,
                                      int32_t) {
  Refuse("set_weight");
}
void HeartbeatPortHandler::drain(const std::string&, const std::string&, const std::string&) {
  Refuse("drain");
}
void HeartbeatPortHandler::undrain(const std::string&, const std::string&, const std::string&) {
  Refuse("undrain");
}
void HeartbeatPortHandler::remove_instance(const std::string&, const std::string&,
                                           const std::string&) {
  Refuse("remove_instance");
}
void HeartbeatPortHandler::promote(thrift::GroupState&, const std::string&, const std::string&,
                                   const std::string&, bool) {
  Refuse("promote");
}

class HeartbeatServer::EventHandler final : public apache::thrift::server::TServerEventHandler {
 public:
  void preServe() override { listening_.set_value(Status::Ok()); }
  void ServeFailed(const std::string& why) {
    try {
      listening_.set_value(Status::Error(StatusCode::kUnavailable, why));
    } catch (const std::future_error&) {
      LOG(ERROR) << "heartbeat port failed: " << why;  // after it had started
    }
  }
  std::future<Status> Listening() { return listening_.get_future(); }

  void* createContext(std::shared_ptr<TProtocol>, std::shared_ptr<TProtocol>) override {
    return new HeartbeatConnection;
  }
  // Runs on the I/O thread before every call; the socket is only reachable here.
  void processContext(void* ctx, std::shared_ptr<TTransport> transport) override {
    auto* conn = static_cast<HeartbeatConnection*>(ctx);
    if (!conn->peer.empty()) return;
    // push_back, not `= "?"`: GCC 12 at -O3 reports a false -Wrestrict inside that
    // assignment's memcpy here (GCC bug 105651).
    conn->peer.push_back('?');
    auto* socket = dynamic_cast<apache::thrift::transport::TSocket*>(transport.get());
    if (socket == nullptr) return;
    try {
      // Numeric: the accepted socket caches its peer's address, so no DNS lookup.
      conn->peer = Store::Address(socket->getPeerAddress(), socket->getPeerPort());
    } catch (const TException&) {
      // Peer already gone: keep "?".
    }
  }
  void deleteContext(void* ctx, std::shared_ptr<TProtocol>, std::shared_ptr<TProtocol>) override {
    delete static_cast<HeartbeatConnection*>(ctx);
  }

 private:
  std::promise<Status> listening_;
};

HeartbeatServer::HeartbeatServer(std::shared_ptr<RegistryHandler> handler,
                                 HeartbeatServerOptions options)
    : handler_(std::move(handler)), options_(std::move(options)) {}

HeartbeatServer::~HeartbeatServer() { Stop(); }

Status HeartbeatServer::Start() {
  std::lock_guard lock(stop_mu_);
  if (started_ || stopped_) {
    return Status::Error(StatusCode::kInternal, "HeartbeatServer::Start called twice");
  }
  if (options_.io_threads < 1) {
    return Status::Error(StatusCode::kInvalidArgument, "the heartbeat port needs io_threads >= 1");
  }
  auto processor = std::make_shared<HeartbeatProcessor>(std::make_shared<thrift::RegistryProcessor>(
      std::make_shared<HeartbeatPortHandler>(handler_)));
  // The same wire rules and accept guard as fulcrum::Server's nonblocking mode.
  auto socket =
      std::make_shared<GuardedNonblockingServerSocket>(options_.host, options_.port, &stopped_);
  auto protocol = ServerProtocolFactory(Protocol::kBinary, options_.max_frame_bytes);
  // No thread manager: calls run inline on the I/O thread(s).
  auto server =
      std::make_shared<apache::thrift::server::TNonblockingServer>(processor, protocol, socket);
  server->setNumIOThreads(static_cast<size_t>(options_.io_threads));
  server->setUseHighPriorityIOThreads(options_.realtime_io);
  server->setMaxFrameSize(options_.max_frame_bytes);
  server->setMaxConnections(static_cast<size_t>(options_.max_connections));
  server->setOverloadAction(apache::thrift::server::T_OVERLOAD_CLOSE_ON_ACCEPT);
  auto events = std::make_shared<EventHandler>();
  server->setServerEventHandler(events);
  server_ = server;

  std::future<Status> listening = events->Listening();
  serve_thread_ = std::thread([this, events] {
    try {
      server_->serve();
    } catch (const std::exception& e) {
      events->ServeFailed(e.what());
    }
  });
  Status status = listening.get();
  if (!status.ok()) {
    serve_thread_.join();
    server_.reset();
    stopped_ = true;
    return Status::Error(StatusCode::kUnavailable, "cannot listen on " + options_.host + ":" +
                                                       std::to_string(options_.port) +
                                                       " (heartbeat port): " + status.message());
  }
  port_ = socket->getListenPort();
  started_ = true;
  return Status::Ok();
}

void HeartbeatServer::Stop() {
  std::lock_guard lock(stop_mu_);
  if (!started_ || stopped_) return;
  stopped_ = true;
  server_->stop();  // leaves the event loops; in-flight calls are inline and finish first
  serve_thread_.join();
  server_.reset();  // closes the remaining connections
}

}  // namespace fulcrum::registry
