// FulcrumRegistrar: fulcrum::Registrar for fulcrum-registry. Created through
// CreateRegistrar("fulcrum://host:port?token_file=...") once RegisterFulcrumDiscovery() ran, or
// directly by tests.
//
//   FulcrumRegistrar registrar({.connection = {.host = "127.0.0.1", .port = 7000}});
//   registrar.Register(instance, {});
//
// Heartbeats (and deregister) go to the registry's heartbeat port when the lease names one
// (Lease.heartbeat_port), on a connection of their own; if that port cannot be reached the
// registrar registers again on the main port and heartbeats there, trying the heartbeat port
// again after heartbeat_port_retry.
//
// Thread-safe as fulcrum::Registrar says.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "fulcrum/discovery/registry_connection.h"
#include "fulcrum/registrar.h"

namespace fulcrum::registry_client {

struct FulcrumRegistrarOptions {
  ConnectionOptions connection;
  std::string token;
  // Used until the registry's lease says otherwise.
  std::chrono::milliseconds heartbeat_interval{500};
  // Reconnect backoff while the registry is unreachable (doubles up to max).
  std::chrono::milliseconds min_backoff{100};
  std::chrono::milliseconds max_backoff{2000};
  // Use the registry's heartbeat port when its lease names one.
  bool use_heartbeat_port = true;
  // After the heartbeat port failed, heartbeat on the main port this long before retrying it.
  std::chrono::milliseconds heartbeat_port_retry{30'000};
};

class FulcrumRegistrar final : public Registrar {
 public:
  explicit FulcrumRegistrar(FulcrumRegistrarOptions options);
  ~FulcrumRegistrar() override;  // stops heartbeating (does not deregister)

  Status Register(const ServiceInstance& instance, RegistrationOptions options) override;
  Status Deregister() override;
  bool registered() const override { return lease_.load() != 0; }

  // How many times we registered again: the registry answered "unknown lease", or its
  // heartbeat port failed (which is how a registry restart usually shows).
  int64_t reregistrations() const { return reregistrations_.load(); }
  // The port the last heartbeat went to if it was the heartbeat port; 0: the main port.
  int heartbeat_port_in_use() const { return heartbeat_port_in_use_.load(); }

 private:
  void Loop();
  Status Connect();
  Status RegisterOnce();
  Status HeartbeatOnce();
  void DropConnection();
  // The heartbeat port to send to now (0: the main port).
  int HeartbeatPortToUse() const;
  Status ConnectHeartbeat(int port);
  void DropHeartbeatConnection();
  // The heartbeat port failed: register again on the main port and heartbeat there for a
  // while. Returns OK (the loop then registers at once).
  Status HeartbeatPortFailed(int port, const std::string& why);
  // Drops the connection after a transport error and says the registry is unreachable.
  Status Unreachable(const apache::thrift::TException& e);
  // Waits `d` or until stopping; false when stopping.
  bool Wait(std::chrono::milliseconds d);
  void StopThread();

  FulcrumRegistrarOptions options_;
  thrift::Instance instance_;
  RegistrationOptions callbacks_;
  std::atomic<int64_t> lease_{0};
  std::atomic<int> interval_ms_;
  std::atomic<int64_t> reregistrations_{0};
  std::atomic<int> heartbeat_port_{0};  // from the last lease
  std::atomic<int> heartbeat_port_in_use_{0};
  // Touched by the heartbeat thread only (and by Deregister once it has stopped).
  int failed_heartbeat_port_ = 0;
  TimePoint retry_heartbeat_port_at_{};

  std::mutex conn_mu_;  // guards replacing conn_ and hb_conn_ against Interrupt()
  std::unique_ptr<RegistryConnection> conn_;
  std::unique_ptr<RegistryConnection> hb_conn_;
  int hb_conn_port_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace fulcrum::registry_client
