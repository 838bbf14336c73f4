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

#include <chrono>
#include <string>

#include "Registry.h"
#include "auth.h"
#include "store.h"

namespace fulcrum::registry {

struct HandlerOptions {
  // A watch's max wait is capped here so a connection's thread is never held longer.
  std::chrono::milliseconds max_watch_wait{30'000};
  // Put in every Lease (Lease.heartbeat_port); 0: no heartbeat port.
  int heartbeat_port = 0;
};

// The address of the peer whose call the current thread is serving ("?" outside a call).
// Set by PeerTrackingProcessor (daemon.h).
const std::string& CurrentPeer();
void SetCurrentPeer(std::string peer);

class RegistryHandler : public thrift::RegistryIf {
 public:
  RegistryHandler(Store* store, const TokenAuth* auth, HandlerOptions options)
      : store_(store), auth_(auth), options_(options) {}

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
               const std::string& address) override;

 private:
  void Authorize(const std::string& token, const char* call) const;

  Store* store_;
  const TokenAuth* auth_;
  HandlerOptions options_;
};

// Throws the RegistryError matching `status` (which must not be OK).
[[noreturn]] void ThrowRegistryError(const Status& status);

}  // namespace fulcrum::registry
