// ServerRegistration: keeps a running fulcrum::Server registered with a discovery service
// (whichever the URI names) while it serves, reports its load with each heartbeat, and drains
// it on shutdown: deregister first, wait until clients have stopped sending new calls, then
// stop the server (which finishes the calls in flight).
//
//   fulcrum::Server server(processor, {.port = 0});
//   CHECK(server.Start().ok());
//   auto registration = fulcrum::ServerRegistration::Start(
//       &server, "fulcrum://127.0.0.1:7000?token_file=/etc/fulcrum/token",
//       {.service = "calc", .host = "127.0.0.1"});   // port 0: the server's
//   ...on SIGTERM:
//   (*registration)->Drain();   // returns once the server has stopped
//
// Master-slave servers pass their RoleState: heartbeat replies then set its role, epoch and
// lease, every heartbeat reports its replication position and writes_quiesced, and Drain stops
// writes before deregistering (docs/master-slave.md, rule 6).
//
// Thread-safe: Drain may be called from any thread, once.
#pragma once

#include <atomic>
#include <memory>
#include <string_view>

#include "fulcrum/clock.h"
#include "fulcrum/registrar.h"
#include "fulcrum/role.h"
#include "fulcrum/server.h"
#include "fulcrum/status.h"

namespace fulcrum {

namespace internal {
struct RegistrationMetrics;
}

struct DrainOptions {
  // Clients are taken to have stopped once no new call has arrived for this long (they learn
  // of the deregistration through their resolver's watch, usually within milliseconds).
  Duration quiet_period = std::chrono::milliseconds(500);
  // Whatever happens, the server is stopped after this long.
  Duration max_wait = std::chrono::seconds(30);
};

class ServerRegistration {
 public:
  // Registers `server` (which must be started and must outlive this object) through the
  // registrar `registrar_uri` names. `instance.port` 0 means the server's port. Errors: a bad
  // URI, or the discovery service refusing the instance; an unreachable one is not an error
  // (the registrar keeps trying).
  static StatusOr<std::unique_ptr<ServerRegistration>> Start(Server* server,
                                                             std::string_view registrar_uri,
                                                             ServiceInstance instance,
                                                             DrainOptions drain = {},
                                                             const Clock& clock = Clock::Real());
  // The same with a registrar the caller made (tests, or one not created by scheme).
  static StatusOr<std::unique_ptr<ServerRegistration>> Start(Server* server,
                                                             std::unique_ptr<Registrar> registrar,
                                                             ServiceInstance instance,
                                                             DrainOptions drain = {},
                                                             const Clock& clock = Clock::Real());
  // Master-slave: the same, feeding `role` (null: a stateless server).
  static StatusOr<std::unique_ptr<ServerRegistration>> Start(
      Server* server, std::string_view registrar_uri, ServiceInstance instance,
      std::shared_ptr<RoleState> role, DrainOptions drain = {}, const Clock& clock = Clock::Real());
  static StatusOr<std::unique_ptr<ServerRegistration>> Start(
      Server* server, std::unique_ptr<Registrar> registrar, ServiceInstance instance,
      std::shared_ptr<RoleState> role, DrainOptions drain = {}, const Clock& clock = Clock::Real());
  ~ServerRegistration();  // stops heartbeating; does not stop the server

  // Stops writes (master-slave), deregisters, waits for clients to stop sending (quiet_period,
  // bounded by max_wait), then stops the server. Returns the deregistration's status (the
  // server is stopped either way).
  Status Drain();

  // True once the discovery service said an administrator drained this instance.
  bool drained_by_admin() const { return drained_by_admin_.load(); }
  Registrar& registrar() { return *registrar_; }

 private:
  ServerRegistration(Server* server, std::unique_ptr<Registrar> registrar,
                     std::shared_ptr<RoleState> role, DrainOptions drain, const Clock& clock);
  LoadReport Load();

  Server* server_;
  std::unique_ptr<Registrar> registrar_;
  const std::shared_ptr<RoleState> role_;  // null: stateless
  DrainOptions drain_;
  const Clock& clock_;
  std::atomic<bool> drained_by_admin_{false};
  // For calls/s between two heartbeats (only the registrar's thread calls Load).
  uint64_t last_calls_ = 0;
  TimePoint last_time_;
  // For /metrics and /readyz: what is registered, and whether it drains.
  std::unique_ptr<internal::RegistrationMetrics> metrics_;
};

}  // namespace fulcrum
