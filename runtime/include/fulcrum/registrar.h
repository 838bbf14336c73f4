// Registrar: how a server announces itself to a discovery service and keeps its entry alive.
// The service is chosen by URI scheme (fulcrum:// is fulcrum-registry, etcd:// is etcd), so
// nothing outside its discovery library knows which one is in use.
//
//   fulcrum::RegisterFulcrumDiscovery();   // once, at startup (fulcrum/discovery/fulcrum.h)
//   auto registrar = fulcrum::CreateRegistrar("fulcrum://127.0.0.1:7000?token_file=/etc/tok");
//   fulcrum::ServiceInstance self{.service = "calc", .host = "127.0.0.1", .port = 9090};
//   CHECK((*registrar)->Register(self, {.load = [&] { return LoadReport{...}; }}).ok());
//   ...
//   (*registrar)->Deregister();   // first step of a drain on SIGTERM
//
// Thread-safety: Register and Deregister may be called from any thread, once each, in that
// order. Callbacks run on the registrar's own thread, never two at once.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "fulcrum/clock.h"
#include "fulcrum/endpoint.h"
#include "fulcrum/status.h"

namespace fulcrum {

struct ServiceInstance {
  std::string service;
  std::string host;
  uint16_t port = 0;
  uint32_t weight = 1;
  std::string zone;
  std::map<std::string, std::string> metadata;
  // Master-slave: the group (empty: a stateless instance) and the promotion tie-breaker
  // (higher wins among slaves with the same replication position).
  std::string group;
  int32_t priority = 0;
};

// What a server reports with each heartbeat.
struct LoadReport {
  int64_t in_flight = 0;
  double calls_per_second = 0;
  // Master-slave: the instance's replication log position, and (a master asked to stop
  // writes) whether no write is in flight any more. Read writes_quiesced BEFORE the position:
  // then the position is final (the registry promotes a target that has reached it).
  int64_t replication_position = 0;
  bool writes_quiesced = false;
  // Master only: acknowledged up to here (replication_position's encoding; 0: unknown).
  int64_t commit_position = 0;
};

// What the discovery service tells a registered server after each heartbeat.
struct RegistrarDirectives {
  bool drained = false;
  // Master-slave: role, the group's epoch and its master ("host:port").
  InstanceRole role = InstanceRole::kNone;
  int64_t epoch = 0;
  std::string master_address;
  // Master only: writes may be accepted until sent_at + master_lease, where sent_at is when
  // the answered heartbeat was sent (the registrar's clock, taken before sending).
  Duration master_lease{0};
  TimePoint sent_at;
  // Master only: a planned switchover asks this master to stop admitting writes.
  bool stop_writes = false;
};

struct RegistrationOptions {
  // Called before every heartbeat; empty: report zeros.
  std::function<LoadReport()> load;
  // Called after every heartbeat the discovery service answered.
  std::function<void(const RegistrarDirectives&)> on_directives;
};

class Registrar {
 public:
  virtual ~Registrar() = default;

  // Registers and keeps the registration alive from a background thread until Deregister:
  // heartbeats with the load report, registers again when the discovery service has forgotten
  // the instance (it restarted), and rides out the service being down (logging it). Returns OK
  // once registered or when the service is unreachable (it keeps trying); an error when the
  // service refuses (invalid instance, bad credentials), and then nothing runs.
  virtual Status Register(const ServiceInstance& instance, RegistrationOptions options) = 0;

  // Stops heartbeating and removes the instance from the discovery service at once, so
  // clients stop choosing it. OK if there was nothing to remove; kUnavailable if the service
  // could not be told (the entry then expires by itself after the heartbeat timeout).
  virtual Status Deregister() = 0;

  // True while the discovery service holds a live registration for this instance.
  virtual bool registered() const = 0;
};

using RegistrarFactory =
    std::function<StatusOr<std::unique_ptr<Registrar>>(std::string_view rest_of_uri)>;

// Registers a scheme ("fulcrum", "etcd"). Thread-safe. kInvalidArgument if already taken.
Status RegisterRegistrarScheme(std::string scheme, RegistrarFactory factory);

// "scheme://rest" -> the scheme's registrar. kInvalidArgument with the reason for a malformed
// URI or an unknown scheme (for fulcrum:// and etcd://, the message names the library to link
// and the registration call to make).
StatusOr<std::unique_ptr<Registrar>> CreateRegistrar(std::string_view uri);

}  // namespace fulcrum
