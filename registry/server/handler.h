// RegistryHandler: the Thrift face of the Store. Checks credentials (registration and admin
// calls need the token; lookup, watch and list_services are open), turns Status errors into
// declared RegistryError exceptions with clear messages, and logs refused calls with the
// caller's address.
//
//   auto handler = std::make_shared<RegistryHandler>(&store, &auth, HandlerOptions{});
//   auto processor = std::make_shared<thrift::RegistryProcessor>(handler);
//
// Thread-safe (the Store is; the handler keeps no state of its own).
#pragma once

#include <atomic>
#include <chrono>
#include <string>

#include "fulcrum/idl/Registry.h"
#include "server/auth.h"
#include "server/registry_metrics.h"
#include "server/store.h"

namespace fulcrum::registry {

struct HandlerOptions {
  // A watch's max wait is capped here so a connection's thread is never held longer.
  std::chrono::milliseconds max_watch_wait{30'000};
  // Counts heartbeats, registrations, deregistrations, watch returns and refusals; may be null.
  RegistryMetrics* metrics = nullptr;
};

// The address of the peer whose call the current thread is serving ("?" outside a call).
// Set by PeerTrackingProcessor (daemon.h).
const std::string& CurrentPeer();
void SetCurrentPeer(std::string peer);

class RegistryHandler : public thrift::RegistryIf {
 public:
  RegistryHandler(Store* store, const TokenAuth* auth, HandlerOptions options)
      : store_(store), auth_(auth), options_(options) {}

  // The port every Lease names as the heartbeat port (Lease.heartbeat_port); 0: none. Set
  // once that port listens, before the main port serves.
  void set_heartbeat_port(int port) { heartbeat_port_.store(port, std::memory_order_relaxed); }

  void register_instance(thrift::Lease& out, const std::string& token,
                         const thrift::Instance& instance) override;
  void heartbeat(thrift::Directives& out, const std::string& token, int64_t lease,
                 const thrift::LoadReport& load) override;
  void deregister(const std::string& token, int64_t lease) override;
  void lookup(thrift::ServiceSnapshot& out, const std::string& service_name) override;
  void watch(thrift::WatchResult& out, const std::string& service_name, int64_t known_version,
             int32_t max_wait_ms) override;
  void list_services(std::vector<thrift::ServiceSummary>& out) override;
  void set_weight(const std::string& token, const std::string& service_name,
                  const std::string& address, int32_t weight) override;
  void drain(const std::string& token, const std::string& service_name,
             const std::string& address) override;
  void undrain(const std::string& token, const std::string& service_name,
               const std::string& address) override;
  void remove_instance(const std::string& token, const std::string& service_name,
                       const std::string& address) override;
  void promote(thrift::GroupState& out, const std::string& token, const std::string& service_name,
               const std::string& address, bool accept_data_loss) override;

 private:
  void Authorize(const std::string& token, const char* call) const;

  Store* store_;
  const TokenAuth* auth_;
  HandlerOptions options_;
  std::atomic<int> heartbeat_port_{0};
};

// Throws the RegistryError matching `status` (which must not be OK).
[[noreturn]] void ThrowRegistryError(const Status& status);

}  // namespace fulcrum::registry
