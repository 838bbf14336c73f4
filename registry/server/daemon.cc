#include "server/daemon.h"

#include <glog/logging.h>
#include <sys/stat.h>
#include <thrift/TOutput.h>
#include <thrift/concurrency/ThreadFactory.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/server/TThreadedServer.h>
#include <thrift/transport/TSSLServerSocket.h>
#include <thrift/transport/TSSLSocket.h>
#include <thrift/transport/TServerSocket.h>
#include <thrift/transport/TSocket.h>

#include "fulcrum/framed_transport.h"
#include "fulcrum/metrics.h"
#include "fulcrum/server_transport.h"
#include "server/handler.h"

namespace fulcrum::registry {

using apache::thrift::TException;
using apache::thrift::TProcessor;
using apache::thrift::protocol::TProtocol;
using apache::thrift::transport::TTransport;
using apache::thrift::transport::TTransportException;

namespace {

void ThriftToGlog(const char* message) { LOG(WARNING) << "thrift: " << message; }

struct ConnectionContext {
  std::string peer;
};

// Sets the current peer for the handler's logs and logs why a connection is dropped for bad
// input (garbage, an oversized frame, a peer that stalls mid-frame), with its address.
class PeerTrackingProcessor final : public TProcessor {
 public:
  explicit PeerTrackingProcessor(std::shared_ptr<TProcessor> inner) : inner_(std::move(inner)) {}

  bool process(std::shared_ptr<TProtocol> in, std::shared_ptr<TProtocol> out,
               void* connection_context) override {
    const auto* ctx = static_cast<const ConnectionContext*>(connection_context);
    SetCurrentPeer(ctx != nullptr ? ctx->peer : "?");
    try {
      return inner_->process(in, out, connection_context);
    } catch (const TTransportException& e) {
      if (e.getType() != TTransportException::END_OF_FILE) {
        LOG(WARNING) << "closing connection from " << CurrentPeer() << ": " << e.what();
      }
      throw;
    } catch (const TException& e) {
      LOG(WARNING) << "closing connection from " << CurrentPeer() << ": " << e.what();
      throw;
    }
  }

 private:
  std::shared_ptr<TProcessor> inner_;
};

}  // namespace

void RouteThriftLogsToGlog() { apache::thrift::GlobalOutput.setOutputFunction(&ThriftToGlog); }

class RegistryDaemon::EventHandler final : public apache::thrift::server::TServerEventHandler {
 public:
  explicit EventHandler(RegistryDaemon* daemon) : daemon_(daemon) {}

  void preServe() override {
    std::lock_guard lock(daemon_->mu_);
    daemon_->listening_ = true;
    daemon_->cv_.notify_all();
  }
  void* createContext(std::shared_ptr<TProtocol> input, std::shared_ptr<TProtocol>) override {
    auto* ctx = new ConnectionContext();
    // Numeric address: getOrigin() would do a reverse DNS lookup per connection.
    ctx->peer = "?";
    auto framed = std::dynamic_pointer_cast<apache::thrift::transport::TFramedTransport>(
        input->getTransport());
    auto socket = std::dynamic_pointer_cast<apache::thrift::transport::TSocket>(
        framed ? framed->getUnderlyingTransport() : input->getTransport());
    if (socket) {
      try {
        ctx->peer = Store::Address(socket->getPeerAddress(), socket->getPeerPort());
      } catch (const TException&) {
        // Peer already gone: keep "?".
      }
    }
    VLOG(1) << "connection from " << ctx->peer;
    return ctx;
  }
  void deleteContext(void* ctx, std::shared_ptr<TProtocol>, std::shared_ptr<TProtocol>) override {
    delete static_cast<ConnectionContext*>(ctx);
  }

 private:
  RegistryDaemon* daemon_;
};

RegistryDaemon::RegistryDaemon(DaemonOptions options, const Clock& clock)
    : options_(std::move(options)), clock_(clock) {}

RegistryDaemon::~RegistryDaemon() { Stop(); }

Status RegistryDaemon::Start() {
  RouteThriftLogsToGlog();
  GroupOptions groups;
  groups.heartbeat_interval = options_.ms_heartbeat_interval;
  groups.master_lease = options_.master_lease;
  groups.promotion_delay = options_.promotion_delay;
  groups.switchover_timeout = options_.switchover_timeout;
  if (Status s = ValidateGroupOptions(groups); !s.ok()) return s;

  StatusOr<TokenAuth> auth = TokenAuth::FromFile(options_.token_file);
  if (!auth.ok()) return auth.status();
  auth_ = auth.value();
  if (!auth_.enabled()) {
    LOG(WARNING) << "no --token_file: registration and admin calls are open to anyone";
  }

  AdminState admin;
  if (!options_.data_dir.empty()) {
    ::mkdir(options_.data_dir.c_str(), 0755);
    AdminStateFile file(options_.data_dir);
    StatusOr<AdminState> loaded = file.Load();
    if (!loaded.ok()) return loaded.status();
    admin = loaded.value();
    size_t groups_loaded = 0;
    for (const auto& [service, by_group] : admin.groups()) groups_loaded += by_group.size();
    LOG(INFO) << "loaded admin state for " << admin.size() << " instances and " << groups_loaded
              << " master-slave groups from " << file.path();
    persister_ = std::make_unique<FileAdminPersister>(file);
  } else {
    LOG(WARNING) << "no data directory: admin state is kept in memory only";
  }

  StoreOptions store_options;
  store_options.heartbeat_interval = options_.heartbeat_interval;
  store_options.heartbeat_timeout = options_.heartbeat_timeout;
  store_options.down_ttl = options_.down_ttl;
  store_options.master_slave = groups;
  store_options.version_base = std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count();
  metrics_ = std::make_unique<RegistryMetrics>(Metrics::Global().prometheus_registry());
  store_options.observer = metrics_.get();
  store_ = std::make_unique<Store>(clock_, store_options, std::move(admin), persister_.get());
  store_gauges_ = RegistryMetrics::StoreGauges(store_.get());
  Metrics::Global().AddCollectable(store_gauges_);

  // One handler for both ports: a lease handed out on either names the heartbeat port.
  auto handler = std::make_shared<RegistryHandler>(
      store_.get(), &auth_,
      HandlerOptions{.max_watch_wait = options_.max_watch_wait, .metrics = metrics_.get()});
  const bool tls = !options_.tls_cert_file.empty() || !options_.tls_key_file.empty();
  if (options_.heartbeat_port >= 0 && tls) {
    // Thrift 0.17's TSSLSocket closes (SSL_shutdown) with a blocking poll, which on the
    // nonblocking server would stall its I/O thread behind one slow peer: not used.
    LOG(WARNING) << "TLS is on: no heartbeat port; heartbeats go to the main port";
  } else if (options_.heartbeat_port >= 0) {
    // First, so that every lease the main port hands out can name it.
    heartbeat_server_ = std::make_unique<HeartbeatServer>(
        handler, HeartbeatServerOptions{.host = options_.host,
                                        .port = options_.heartbeat_port,
                                        .max_frame_bytes = options_.max_frame_bytes,
                                        .max_connections = options_.max_connections,
                                        .io_threads = options_.heartbeat_io_threads,
                                        .realtime_io = options_.heartbeat_realtime});
    if (Status s = heartbeat_server_->Start(); !s.ok()) {
      heartbeat_server_.reset();
      return s;
    }
    handler->set_heartbeat_port(options_.heartbeat_port_advertised > 0
                                    ? options_.heartbeat_port_advertised
                                    : heartbeat_server_->port());
    LOG(INFO) << "heartbeat port " << options_.host << ":" << heartbeat_server_->port()
              << " (register/heartbeat/deregister only; advertised as "
              << (options_.heartbeat_port_advertised > 0 ? options_.heartbeat_port_advertised
                                                         : heartbeat_server_->port())
              << ")";
  }
  auto processor =
      std::make_shared<PeerTrackingProcessor>(std::make_shared<thrift::RegistryProcessor>(handler));

  std::shared_ptr<apache::thrift::transport::TServerSocket> socket;
  try {
    if (!options_.tls_cert_file.empty() || !options_.tls_key_file.empty()) {
      if (options_.tls_cert_file.empty() || options_.tls_key_file.empty()) {
        return Status::Error(StatusCode::kInvalidArgument,
                             "TLS needs both --tls_cert_file and --tls_key_file");
      }
      auto factory = std::make_shared<apache::thrift::transport::TSSLSocketFactory>();
      factory->server(true);
      factory->loadCertificate(options_.tls_cert_file.c_str());
      factory->loadPrivateKey(options_.tls_key_file.c_str());
      factory->authenticate(false);
      socket = std::make_shared<apache::thrift::transport::TSSLServerSocket>(
          options_.host, options_.port, factory);
    } else {
      socket =
          std::make_shared<apache::thrift::transport::TServerSocket>(options_.host, options_.port);
    }
  } catch (const TException& e) {
    return Status::Error(StatusCode::kInvalidArgument, std::string("TLS setup: ") + e.what());
  }
  socket->setRecvTimeout(options_.idle_timeout_ms);
  socket->setSendTimeout(options_.send_timeout_ms);
  socket->setInterruptableChildren(true);  // Stop() must not wait for idle connections

  auto server = std::make_shared<apache::thrift::server::TThreadedServer>(
      processor, socket, std::make_shared<FramedTransportFactory>(options_.max_frame_bytes),
      ServerProtocolFactory(Protocol::kBinary, options_.max_frame_bytes));
  server->setConcurrentClientLimit(options_.max_connections);
  server->setServerEventHandler(std::make_shared<EventHandler>(this));
  server_ = server;

  serve_thread_ = std::thread([this] {
    try {
      server_->serve();
    } catch (const TException& e) {
      std::lock_guard lock(mu_);
      serve_failed_ = true;
      serve_error_ = e.what();
      cv_.notify_all();
    }
  });
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return listening_ || serve_failed_; });
    if (serve_failed_) {
      lock.unlock();
      serve_thread_.join();
      if (heartbeat_server_) heartbeat_server_->Stop();
      return Status::Error(StatusCode::kUnavailable, "cannot listen on " + options_.host + ":" +
                                                         std::to_string(options_.port) + ": " +
                                                         serve_error_);
    }
    started_ = true;
  }
  port_ = socket->getPort();
  sweep_thread_ = std::thread([this] { SweepLoop(); });
  return Status::Ok();
}

void RegistryDaemon::SweepLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, options_.sweep_interval, [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    store_->Sweep();
    lock.lock();
  }
}

void RegistryDaemon::Stop() {
  {
    std::lock_guard lock(mu_);
    if (!started_ || stopping_) return;
    stopping_ = true;
    cv_.notify_all();
  }
  sweep_thread_.join();
  store_->Shutdown();  // parked watchers return at once
  if (heartbeat_server_) heartbeat_server_->Stop();
  server_->stop();
  serve_thread_.join();
}

int RegistryDaemon::heartbeat_port() const {
  return heartbeat_server_ ? heartbeat_server_->port() : 0;
}

}  // namespace fulcrum::registry
