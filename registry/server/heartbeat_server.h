// HeartbeatServer: the registry's second port, for register/heartbeat/deregister only.
//
//   HeartbeatServer hb(handler, {.host = "127.0.0.1", .port = 0});
//   CHECK(hb.Start().ok());
//   LOG(INFO) << hb.port();   // advertised in every Lease (Lease.heartbeat_port)
//   hb.Stop();
//
// A heartbeat is a few microseconds of work under the Store's lock; on the main port
// (TThreadedServer) each one also costs two context switches between per-connection threads,
// which at 20,000 heartbeats/s on 2 cores is most of the registry's CPU. Here Thrift's
// TNonblockingServer runs the handler inline on its I/O thread(s): one epoll wake-up serves
// every connection that is ready. Nothing may block on this port, so watches (long polls) and
// the admin calls are refused with a RegistryError naming the main port's job.
//
// Bad input: an oversized frame (Thrift logs "frame size too large ... from client <peer>")
// or a frame that is not a Thrift call (logged here with the peer) closes that connection;
// the others carry on. There is no idle timeout on this port (Thrift 0.17's nonblocking
// server has none): an idle or half-open connection costs its buffers, not a thread, and
// --max_connections bounds them.
//
// Thread-safe: Start once, Stop from any thread.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "fulcrum/idl/Registry.h"
#include "fulcrum/status.h"

namespace apache::thrift::server {
class TNonblockingServer;
}

namespace fulcrum::registry {

class RegistryHandler;

struct HeartbeatServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: the OS picks one (read it back with port())
  uint32_t max_frame_bytes = 1u << 20;
  int64_t max_connections = 20'000;
  // Each I/O thread runs the handler inline; one keeps the Store's lock uncontended.
  int io_threads = 1;
  // Run the I/O thread(s) SCHED_FIFO (Thrift's "high-priority I/O threads"), so a burst of
  // busy watcher threads cannot starve heartbeats of CPU for longer than the timeout. Needs
  // CAP_SYS_NICE; without it Thrift logs the refusal and the threads stay SCHED_OTHER.
  bool realtime_io = false;
};

// The heartbeat port's face: register/heartbeat/deregister go to `inner` (the same handler,
// auth and Store as the main port); everything else is refused with INVALID_ARGUMENT.
// Thread-safe (RegistryHandler is).
class HeartbeatPortHandler final : public thrift::RegistryIf {
 public:
  explicit HeartbeatPortHandler(std::shared_ptr<RegistryHandler> inner)
      : inner_(std::move(inner)) {}

  void register_instance(thrift::Lease& out, const std::string& token,
                         const thrift::Instance& instance) override;
  void heartbeat(thrift::Directives& out, const std::string& token, int64_t lease,
                 const thrift::LoadReport& load) override;
  void deregister(const std::string& token, int64_t lease) override;
  void lookup(thrift::ServiceSnapshot&, const std::string&) override;
  void watch(thrift::WatchResult&, const std::string&, int64_t, int32_t) override;
  void list_services(std::vector<thrift::ServiceSummary>&) override;
  void set_weight(const std::string&, const std::string&, const std::string&, int32_t) override;
  void drain(const std::string&, const std::string&, const std::string&) override;
  void undrain(const std::string&, const std::string&, const std::string&) override;
  void remove_instance(const std::string&, const std::string&, const std::string&) override;
  void promote(thrift::GroupState&, const std::string&, const std::string&, const std::string&,
               bool) override;

 private:
  std::shared_ptr<RegistryHandler> inner_;
};

class HeartbeatServer {
 public:
  HeartbeatServer(std::shared_ptr<RegistryHandler> handler, HeartbeatServerOptions options);
  ~HeartbeatServer();

  // kUnavailable when the port cannot be bound; kInvalidArgument for io_threads < 1.
  Status Start();
  void Stop();
  int port() const { return port_.load(); }

 private:
  class EventHandler;

  std::shared_ptr<RegistryHandler> handler_;
  HeartbeatServerOptions options_;
  std::shared_ptr<apache::thrift::server::TNonblockingServer> server_;
  std::thread serve_thread_;
  std::atomic<int> port_{0};
  std::mutex stop_mu_;
  bool started_ = false;
  std::atomic<bool> stopped_{false};  // written under stop_mu_; the socket reads it
};

}  // namespace fulcrum::registry
