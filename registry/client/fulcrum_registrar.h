// FulcrumRegistrar: fulcrum::Registrar for fulcrum-registry. Created through
// CreateRegistrar("fulcrum://host:port?token_file=...") once RegisterFulcrumBackend() ran, or
// directly by tests.
//
//   FulcrumRegistrar registrar({.connection = {.host = "127.0.0.1", .port = 7000}});
//   registrar.Register(instance, {});
//
// Thread-safe as fulcrum::Registrar says.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "fulcrum/registrar.h"
#include "transport.h"

namespace fulcrum::registry {

struct FulcrumRegistrarOptions {
  ConnectionOptions connection;
  std::string token;
  // Used until the registry's lease says otherwise.
  std::chrono::milliseconds heartbeat_interval{500};
  // Reconnect backoff while the registry is unreachable (doubles up to max).
  std::chrono::milliseconds min_backoff{100};
  std::chrono::milliseconds max_backoff{2000};
};

class FulcrumRegistrar final : public Registrar {
 public:
  explicit FulcrumRegistrar(FulcrumRegistrarOptions options);
  ~FulcrumRegistrar() override;  // stops heartbeating (does not deregister)

  Status Register(const ServiceInstance& instance, RegistrationOptions options) override;
  Status Deregister() override;
  bool registered() const override { return lease_.load() != 0; }

  // How many times the registry answered "unknown lease" and we registered again.
  int64_t reregistrations() const { return reregistrations_.load(); }

 private:
  void Loop();
  Status Connect();
  Status RegisterOnce();
  Status HeartbeatOnce();
  void DropConnection();
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

  std::mutex conn_mu_;  // guards replacing conn_ against Interrupt()
  std::unique_ptr<RegistryConnection> conn_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace fulcrum::registry
