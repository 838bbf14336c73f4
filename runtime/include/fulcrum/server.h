// Server: serves a Thrift processor on a port, and stops gracefully.
//
//   auto handler = std::make_shared<CalculatorHandler>();
//   fulcrum::Server server(std::make_shared<CalculatorProcessor>(handler), {.port = 0});
//   CHECK(server.Start().ok());
//   LOG(INFO) << "listening on " << server.port();   // the port the OS picked
//   ...
//   server.Stop();   // stop accepting, let in-flight calls finish, close
//
// Thread-safe: Start once; Stop and the accessors from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <thrift/TProcessor.h>

#include "fulcrum/clock.h"
#include "fulcrum/protocol.h"
#include "fulcrum/status.h"

namespace apache::thrift::server {
class TServer;
}
namespace apache::thrift::concurrency {
class ThreadManager;
}

namespace fulcrum {

namespace internal {
class ServerMetrics;
}

enum class ServerType {
  // A thread per connection (TThreadedServer). Fastest for a few busy connections: the
  // request is handled on the thread that read it, no hand-off.
  kThreaded,
  // libevent I/O threads plus a worker pool (TNonblockingServer). Holds thousands of mostly
  // idle connections without a thread each.
  kNonblocking,
};

StatusOr<ServerType> ParseServerType(std::string_view name);  // "threaded" | "nonblocking"

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0: the OS picks one; read it back with port()
  Protocol protocol = Protocol::kBinary;
  ServerType type = ServerType::kThreaded;
  int io_threads = 1;  // kNonblocking only
  int workers = 4;     // kNonblocking only
  uint32_t max_frame_size = 64u << 20;
  // kThreaded only: read as much as has arrived in one recv() (64 KiB buffer per connection)
  // and serve the requests in it one after another: a pipelining client's requests cost one
  // recv() per batch, a lone request one recv() instead of a peek and two. false reads as the
  // stock Thrift server does (docs/benchmarks.md has both).
  bool batch_reads = true;
  // How long Stop() waits for calls in flight before closing connections under them.
  Duration drain_timeout = std::chrono::seconds(10);
  // Record calls per method for /metrics and the admin pages (fulcrum/metrics.h), through the
  // processor's Thrift event handler (left alone if the processor already has one).
  bool metrics = true;
};

class Server {
 public:
  Server(std::shared_ptr<apache::thrift::TProcessor> processor, ServerOptions options);
  virtual ~Server();  // Stop()s if running

  // Binds and starts serving on background threads; returns once the port accepts.
  Status Start();
  // Graceful: stops accepting, waits up to drain_timeout for calls in flight, then closes.
  void Stop();
  // Blocks until the server has stopped.
  void Wait();

  uint16_t port() const { return port_.load(); }
  int64_t in_flight() const;
  uint64_t calls() const;
  // Open client connections (0 before Start).
  int connections() const;
  // Started and not (being) stopped.
  bool serving() const { return port_.load() != 0 && !stopped_.load(); }

 private:
  class CountingProcessor;
  class ConnectionTracker;

  std::shared_ptr<apache::thrift::TProcessor> processor_;
  ServerOptions options_;
  std::shared_ptr<CountingProcessor> counting_;
  std::shared_ptr<ConnectionTracker> tracker_;
  std::shared_ptr<apache::thrift::concurrency::ThreadManager> workers_;  // kNonblocking
  std::shared_ptr<apache::thrift::server::TServer> server_;
  std::function<void()> stop_accepting_;
  std::thread thread_;
  std::atomic<uint16_t> port_{0};
  std::atomic<bool> stopped_{false};
  std::mutex stop_mu_;  // serialises Start and Stop
  std::mutex done_mu_;
  std::condition_variable done_cv_;
  bool serve_done_ = true;                            // not serving; guarded by done_mu_
  std::shared_ptr<internal::ServerMetrics> metrics_;  // null with ServerOptions::metrics off
};

}  // namespace fulcrum
