#include "fulcrum/server.h"

#include "thrift_logging.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <future>
#include <unordered_set>

#include <glog/logging.h>
#include <thrift/TOutput.h>
#include <thrift/concurrency/ThreadFactory.h>
#include <thrift/concurrency/ThreadManager.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/protocol/TCompactProtocol.h>
#include <thrift/server/TNonblockingServer.h>
#include <thrift/server/TThreadedServer.h>
#include <thrift/transport/TNonblockingServerSocket.h>
#include <thrift/transport/TServerSocket.h>
#include <thrift/transport/TSocket.h>

#include "fulcrum/framed_transport.h"
#include "fulcrum/server_transport.h"
#include "metrics/server_metrics.h"
#include "transport/batched_reads.h"

namespace fulcrum {

using apache::thrift::TException;
using apache::thrift::TProcessor;
using apache::thrift::concurrency::ThreadFactory;
using apache::thrift::concurrency::ThreadManager;
using apache::thrift::protocol::TProtocol;
using apache::thrift::protocol::TProtocolFactory;
using apache::thrift::server::TNonblockingServer;
using apache::thrift::server::TServerEventHandler;
using apache::thrift::server::TThreadedServer;
using apache::thrift::transport::TServerSocket;
using apache::thrift::transport::TSocket;
using apache::thrift::transport::TTransport;
using apache::thrift::transport::TTransportException;
using apache::thrift::transport::TTransportFactory;

StatusOr<ServerType> ParseServerType(std::string_view name) {
  if (name == "threaded") return ServerType::kThreaded;
  if (name == "nonblocking") return ServerType::kNonblocking;
  return Status::Error(StatusCode::kInvalidArgument, "unknown server type '" + std::string(name) +
                                                         "' (want threaded or nonblocking)");
}

namespace {

std::string PeerOf(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (fd < 0 || ::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return "unknown peer";
  }
  char host[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  if (addr.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    port = ntohs(in->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
    port = ntohs(in6->sin6_port);
  }
  return std::string(host) + ":" + std::to_string(port);
}

}  // namespace

// Per connection: its socket, so a draining server can end the connection and errors can name
// the peer.
struct ConnectionContext {
  int fd = -1;
};

// Knows when the server listens, and every open connection, so Stop() can end idle ones.
class Server::ConnectionTracker : public TServerEventHandler {
 public:
  void preServe() override { listening_.set_value(Status::Ok()); }
  void ServeFailed(const std::string& why) {
    try {
      listening_.set_value(Status::Error(StatusCode::kUnavailable, why));
    } catch (const std::future_error&) {
      // Already listening: serve() failed later; the serve thread logs it.
    }
  }
  std::future<Status> Listening() { return listening_.get_future(); }

  void* createContext(std::shared_ptr<TProtocol>, std::shared_ptr<TProtocol>) override {
    return new ConnectionContext;
  }

  // Called before every call; the first time, remembers the socket.
  void processContext(void* ctx, std::shared_ptr<TTransport> transport) override {
    auto* conn = static_cast<ConnectionContext*>(ctx);
    if (conn->fd >= 0) return;
    auto* socket = dynamic_cast<TSocket*>(transport.get());
    if (socket == nullptr) return;
    std::lock_guard<std::mutex> lock(mu_);
    conn->fd = socket->getSocketFD();
    open_fds_.insert(conn->fd);
    // Accepted just before the listener closed: end it like the others.
    if (draining_) ::shutdown(conn->fd, SHUT_RD);
  }

  // Thrift calls this before it closes the socket, so every fd in open_fds_ is still ours.
  void deleteContext(void* ctx, std::shared_ptr<TProtocol>, std::shared_ptr<TProtocol>) override {
    auto* conn = static_cast<ConnectionContext*>(ctx);
    if (conn->fd >= 0) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        open_fds_.erase(conn->fd);
      }
      NotifyIfDraining();
    }
    delete conn;
  }

  // Half-closes every connection for reading: an idle one sees EOF and ends; a busy one sends
  // its reply, then ends.
  void BeginDrain() {
    std::lock_guard<std::mutex> lock(mu_);
    draining_ = true;
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RD);
  }
  int open_connections() {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<int>(open_fds_.size());
  }
  // Drain took too long: close the connections under the calls still running.
  int CloseAll() {
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
    return static_cast<int>(open_fds_.size());
  }

  // Waits until `idle()` holds and every connection that has made a call has ended, or
  // `timeout` passes. A drained connection ends only after its last reply has been written
  // (the nonblocking server writes replies on its I/O thread, after the handler returns).
  template <class Pred>
  bool WaitDrained(Duration timeout, Pred idle) {
    std::unique_lock<std::mutex> lock(drain_mu_);
    return drained_.wait_for(lock, timeout, [&] { return idle() && NoOpenConnections(); });
  }
  void NotifyIfDraining() {
    if (!draining_.load(std::memory_order_acquire)) return;
    std::lock_guard<std::mutex> lock(drain_mu_);
    drained_.notify_all();
  }

 private:
  bool NoOpenConnections() {
    std::lock_guard<std::mutex> lock(mu_);
    return open_fds_.empty();
  }

  std::promise<Status> listening_;
  std::mutex mu_;
  std::unordered_set<int> open_fds_;  // guarded by mu_
  std::atomic<bool> draining_{false};
  std::mutex drain_mu_;
  std::condition_variable drained_;
};

// Counts calls in flight and in total, and closes (with a log line naming the peer) any
// connection that sends something that is not a Thrift call.
class Server::CountingProcessor : public TProcessor {
 public:
  CountingProcessor(std::shared_ptr<TProcessor> inner, ConnectionTracker* tracker)
      : inner_(std::move(inner)), tracker_(tracker) {}

  bool process(std::shared_ptr<TProtocol> in, std::shared_ptr<TProtocol> out, void* ctx) override {
    // The threaded server calls process() to wait for the next request: wait here, so that a
    // connection waiting for a request is not a call in flight. False: the client closed.
    if (!in->getTransport()->peek()) return false;
    in_flight_.fetch_add(1, std::memory_order_relaxed);
    calls_.fetch_add(1, std::memory_order_relaxed);
    bool keep_open = false;
    try {
      keep_open = inner_->process(in, out, ctx);
    } catch (const TException& e) {
      // Thrift would close the connection too; say which one and why. A client that closed
      // its connection before reading the reply is routine (its deadline cut the call, or a
      // hedge elsewhere answered first): not worth a warning.
      const int fd = ctx ? static_cast<ConnectionContext*>(ctx)->fd : -1;
      const bool client_left = std::strstr(e.what(), "Broken pipe") != nullptr ||
                               std::strstr(e.what(), "Connection reset by peer") != nullptr;
      if (client_left) {
        VLOG(1) << "closing connection from " << PeerOf(fd) << ": " << e.what();
      } else {
        LOG(WARNING) << "closing connection from " << PeerOf(fd) << ": " << e.what();
      }
      // The nonblocking server would keep reading after junk: end the connection for it.
      if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
      keep_open = false;
    }
    if (in_flight_.fetch_sub(1, std::memory_order_acq_rel) == 1) tracker_->NotifyIfDraining();
    return keep_open;
  }

  int64_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }
  uint64_t calls() const { return calls_.load(std::memory_order_relaxed); }

 private:
  const std::shared_ptr<TProcessor> inner_;
  ConnectionTracker* const tracker_;
  std::atomic<int64_t> in_flight_{0};
  std::atomic<uint64_t> calls_{0};
};

Server::Server(std::shared_ptr<TProcessor> processor, ServerOptions options)
    : processor_(std::move(processor)), options_(std::move(options)) {
  internal::RouteThriftOutputToGlog();
}

Server::~Server() {
  if (metrics_) metrics_->Detach();  // before anything a scrape reads goes away
  Stop();
}

Status Server::Start() {
  std::lock_guard<std::mutex> lock(stop_mu_);
  if (server_ != nullptr || stopped_) {
    return Status::Error(StatusCode::kInternal, "Server::Start called twice");
  }
  if (processor_ == nullptr) {
    return Status::Error(StatusCode::kInvalidArgument, "Server needs a processor");
  }
  const std::string address = options_.host + ":" + std::to_string(options_.port);
  tracker_ = std::make_shared<ConnectionTracker>();
  counting_ = std::make_shared<CountingProcessor>(processor_, tracker_.get());
  if (options_.metrics && processor_->getEventHandler() == nullptr) {
    metrics_ = std::make_shared<internal::ServerMetrics>(*this);
    processor_->setEventHandler(metrics_);
  }
  auto protocol = ServerProtocolFactory(options_.protocol, options_.max_frame_size);
  std::function<int()> listen_fd;

  if (options_.type == ServerType::kThreaded) {
    auto socket = std::make_shared<TServerSocket>(options_.host, options_.port);
    // Our drain ends idle connections itself (BeginDrain); without Thrift's interrupt pipe a
    // read is one recv() instead of poll() + recv().
    socket->setInterruptableChildren(false);
    auto framed = std::make_shared<FramedTransportFactory>(options_.max_frame_size);
    std::shared_ptr<TTransportFactory> in = framed;
    if (options_.batch_reads) {
      in = std::make_shared<internal::BatchedReadsFramedTransportFactory>(options_.max_frame_size);
    }
    server_ = std::make_shared<TThreadedServer>(counting_, socket, in, framed, protocol, protocol);
    stop_accepting_ = [socket] { socket->interrupt(); };
    listen_fd = [socket] { return socket->getSocketFD(); };
  } else {
    if (options_.io_threads < 1 || options_.workers < 1) {
      return Status::Error(StatusCode::kInvalidArgument,
                           "nonblocking server needs io_threads >= 1 and workers >= 1");
    }
    auto socket =
        std::make_shared<GuardedNonblockingServerSocket>(options_.host, options_.port, &stopped_);
    workers_ = ThreadManager::newSimpleThreadManager(options_.workers);
    workers_->threadFactory(std::make_shared<ThreadFactory>(/*detached=*/false));
    workers_->start();
    // The nonblocking server reads whole frames itself and hands the processor a memory
    // buffer (which resets its message budget per message), so no framed transport here.
    auto server = std::make_shared<TNonblockingServer>(counting_, protocol, socket, workers_);
    server->setNumIOThreads(options_.io_threads);
    server->setMaxFrameSize(options_.max_frame_size);
    server_ = server;
    // libevent owns the listening socket's event, so it cannot be closed under it. Replace
    // the socket behind the descriptor instead: the kernel drops the listener (new connects
    // are refused) and epoll forgets it.
    stop_accepting_ = [socket] {
      const int fd = socket->getSocketFD();
      const int placeholder = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd >= 0 && placeholder >= 0) ::dup2(placeholder, fd);
      if (placeholder >= 0) ::close(placeholder);
    };
    listen_fd = [socket] { return socket->getSocketFD(); };
  }
  server_->setServerEventHandler(tracker_);

  std::future<Status> listening = tracker_->Listening();
  {
    std::lock_guard<std::mutex> done_lock(done_mu_);
    serve_done_ = false;
  }
  thread_ = std::thread([this] {
    try {
      server_->serve();
    } catch (const std::exception& e) {
      LOG(ERROR) << "server on " << options_.host << ":" << port_.load() << " failed: " << e.what();
      tracker_->ServeFailed(e.what());
    }
    std::lock_guard<std::mutex> lock(done_mu_);
    serve_done_ = true;
    done_cv_.notify_all();
  });

  Status status = listening.get();
  if (!status.ok()) {
    thread_.join();
    server_.reset();
    if (workers_) workers_->stop();
    stopped_ = true;
    return Status::Error(StatusCode::kUnavailable,
                         "cannot serve on " + address + ": " + status.message());
  }
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (::getsockname(listen_fd(), reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port_ =
        ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port
                                         : reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
  }
  if (metrics_) metrics_->Attach(options_.host + ":" + std::to_string(port_.load()));
  LOG(INFO) << "serving " << ProtocolName(options_.protocol) << " Thrift on " << options_.host
            << ":" << port_.load() << " ("
            << (options_.type == ServerType::kThreaded ? "threaded" : "nonblocking") << ")";
  return Status::Ok();
}

void Server::Stop() {
  std::lock_guard<std::mutex> lock(stop_mu_);
  if (stopped_.exchange(true) || server_ == nullptr) return;

  stop_accepting_();
  tracker_->BeginDrain();
  if (!tracker_->WaitDrained(options_.drain_timeout,
                             [this] { return counting_->in_flight() == 0; })) {
    const int closed = tracker_->CloseAll();
    LOG(WARNING) << "server on port " << port_.load() << ": " << counting_->in_flight()
                 << " call(s) still running after the drain timeout; closed " << closed
                 << " connection(s) under them";
  }
  // The threaded server returns from serve() once every connection has ended; the
  // nonblocking one must be told to leave its event loops.
  if (options_.type == ServerType::kNonblocking) server_->stop();
  thread_.join();
  if (workers_) workers_->stop();  // waits for handlers still running
  server_.reset();
  LOG(INFO) << "server on port " << port_.load() << " stopped after " << calls() << " call(s)";
}

void Server::Wait() {
  std::unique_lock<std::mutex> lock(done_mu_);
  done_cv_.wait(lock, [this] { return serve_done_; });
}

int64_t Server::in_flight() const { return counting_ ? counting_->in_flight() : 0; }
uint64_t Server::calls() const { return counting_ ? counting_->calls() : 0; }
int Server::connections() const { return tracker_ ? tracker_->open_connections() : 0; }

}  // namespace fulcrum
