// RegistryDaemon: everything `fulcrum-registry` runs, as a class so tests can run it
// in-process too: loads the admin state (refusing to start on a corrupt file), serves the
// Registry API, and sweeps for silent instances.
//
//   RegistryDaemon daemon(options);
//   CHECK(daemon.Start().ok());   // returns once the port accepts
//   LOG(INFO) << daemon.port();
//   daemon.Stop();
//
// Serving: TThreadedServer (a thread per connection) rather than TNonblockingServer, plus,
// when heartbeat_port >= 0, a nonblocking port for register/heartbeat/deregister only
// (heartbeat_server.h; registry/README.md says when it pays). A watch is a long poll that parks its
// caller until the list changes; Thrift 0.17's C++ TNonblockingServer has no asynchronous handlers,
// so there every parked watch would hold a worker thread anyway, and a pool smaller than the number
// of watchers would stall everyone else behind them. With a thread per connection a slow, half-open
// or parked connection holds only its own thread; the accept loop and other clients carry on.
// Receive/send timeouts close connections that stall mid-frame or stop reading, frames are capped
// (--max_frame_bytes), and --max_connections bounds the threads. 1,000 watchers cost 1,000
// mostly-sleeping threads; the price is a context switch per call (registry/bench/registry_bench.cc
// measures it). fulcrum::Server is not used: the registry needs per-connection receive timeouts, a
// connection limit, TLS and the peer's address for its logs, which ServerOptions lacks.
//
// Thread-safe: Start once, Stop from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "fulcrum/clock.h"
#include "fulcrum/status.h"
#include "server/auth.h"
#include "server/heartbeat_server.h"
#include "server/registry_metrics.h"
#include "server/store.h"

namespace apache::thrift::server {
class TServer;
}

namespace fulcrum::registry {

struct DaemonOptions {
  std::string host = "127.0.0.1";
  int port = 0;
  // Where the admin state lives. Empty: memory only (tests); the daemon's flag requires one.
  std::string data_dir;
  std::chrono::milliseconds heartbeat_interval{500};
  std::chrono::milliseconds heartbeat_timeout{1500};
  std::chrono::milliseconds down_ttl{300'000};
  std::chrono::milliseconds sweep_interval{20};
  std::chrono::milliseconds max_watch_wait{30'000};
  // Master-slave groups (docs/master-slave.md). Start() refuses promotion_delay <= master_lease.
  std::chrono::milliseconds ms_heartbeat_interval{100};
  std::chrono::milliseconds master_lease{600};
  std::chrono::milliseconds promotion_delay{800};
  std::chrono::milliseconds switchover_timeout{5000};
  // A connection idle (or stalled mid-frame) for this long is closed. Longer than the
  // longest watch so a parked watcher's connection survives between polls.
  int idle_timeout_ms = 60'000;
  int send_timeout_ms = 10'000;
  uint32_t max_frame_bytes = 1u << 20;
  int64_t max_connections = 20'000;
  std::string token_file;
  // The heartbeat port (heartbeat_server.h): register/heartbeat/deregister on a nonblocking
  // port, named in every Lease. 0: the OS picks it; -1: off (everything on `port`). Off when
  // TLS is on. Off by default: it measured better only with heartbeat_realtime (README).
  int heartbeat_port = -1;
  // The heartbeat port clients are told (port forwarding, NAT); 0: the one listened on.
  int heartbeat_port_advertised = 0;
  int heartbeat_io_threads = 1;
  bool heartbeat_realtime = false;  // HeartbeatServerOptions::realtime_io
  // TLS (Thrift's TSSLSocket over OpenSSL) when both are set.
  std::string tls_cert_file;
  std::string tls_key_file;
};

class RegistryDaemon {
 public:
  explicit RegistryDaemon(DaemonOptions options, const Clock& clock = Clock::Real());
  ~RegistryDaemon();

  // kInternal naming the file for a corrupt admin state; kInvalidArgument for a bad token
  // file, TLS file or master-slave timing; kUnavailable when the port cannot be bound.
  Status Start();
  void Stop();

  int port() const { return port_.load(); }
  // The heartbeat port listened on; 0 when off.
  int heartbeat_port() const;
  Store* store() { return store_.get(); }

 private:
  class EventHandler;
  void SweepLoop();

  DaemonOptions options_;
  const Clock& clock_;
  TokenAuth auth_;
  std::unique_ptr<AdminPersister> persister_;
  std::unique_ptr<RegistryMetrics> metrics_;
  std::unique_ptr<Store> store_;
  // The store's gauges for /metrics (fulcrum::Metrics holds it weakly); before store_ goes.
  std::shared_ptr<prometheus::Collectable> store_gauges_;
  std::shared_ptr<apache::thrift::server::TServer> server_;
  std::unique_ptr<HeartbeatServer> heartbeat_server_;
  std::thread serve_thread_;
  std::thread sweep_thread_;
  std::atomic<int> port_{0};

  std::mutex mu_;
  std::condition_variable cv_;
  bool listening_ = false;
  bool serve_failed_ = false;
  std::string serve_error_;
  bool stopping_ = false;
  bool started_ = false;
};

// Routes Thrift's own log lines (dropped connections, bad frames) to glog.
void RouteThriftLogsToGlog();

}  // namespace fulcrum::registry
