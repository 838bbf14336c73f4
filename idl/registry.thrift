// The fulcrum-registry API. The registry dogfoods Thrift: this file is served by the
// `fulcrum-registry` daemon and called by fulcrum::Server (registration and heartbeats), by the
// fulcrum:// resolver (lookup and watch) and by `fulcrumctl` (admin).
//
// Authentication: calls that change state (register, heartbeat, deregister and every admin
// call) carry a bearer token in their `token` argument; the registry compares it in constant
// time with the one in its --token_file. lookup, watch, list_services and describe are open.
//
// Versions: every service has a version that changes whenever anything a client could route
// on changes (instances added, removed, up/down, weight, drained). Versions keep increasing
// across registry restarts (they start from the wall clock), and a watcher treats any version
// different from the one it knows as news.

namespace cpp fulcrum.registry.thrift

// ---- Shared types -------------------------------------------------------------------------

enum ErrorCode {
  INVALID_ARGUMENT = 1,   // empty service name, port 0, negative weight, bad max wait...
  NOT_FOUND = 2,          // unknown service or instance
  UNAUTHENTICATED = 3,    // missing or wrong token
  UNAVAILABLE = 4,        // the registry cannot serve the call now (shutting down)
  INTERNAL = 5,           // e.g. the admin state could not be written to disk; nothing changed
}

// Every refused call says why: `code` for programs, `message` for people.
exception RegistryError {
  1: ErrorCode code,
  2: string message,
}

// One server instance. Its identity is (service, host, port).
struct Instance {
  1: string service_name,
  2: string host,
  3: i32 port,
  // Relative share of traffic. An administrator's weight (set_weight) overrides it.
  4: i32 weight = 1,
  5: string zone,
  6: map<string, string> metadata,
  // Master-slave: the group this instance belongs to; empty for a stateless instance. The
  // registry keeps exactly one master per (service, group).
  7: string group,
  // Master-slave: breaks ties between slaves with the same replication position when one is
  // promoted (higher wins; then the lower address).
  8: i32 priority,
  // Chosen at random by the server process when it starts (never 0), kept across its own
  // re-registrations: a process restarted at the same address is a new incarnation, with none
  // of its predecessor's data or health record. 0: not known (an older server).
  9: i64 incarnation,
}

// What a server reports with each heartbeat.
struct LoadReport {
  1: i64 in_flight,          // calls being served now
  2: double calls_per_second, // over the last reporting interval
  // Master-slave: how far this instance's copy of the data goes (its replication log
  // position). The registry promotes the slave with the highest one.
  3: i64 replication_position,
  // Master-slave: this master was asked to stop taking writes (a planned switchover) and has
  // no write in flight any more; replication_position is then its final position.
  4: bool writes_quiesced,
  // Master-slave, master only: the position up to which its writes were acknowledged (in
  // replication_position's encoding; 0 when unknown). The registry never promotes a slave
  // whose position is below the last one its master reported: that would lose those writes.
  5: i64 commit_position,
}

// Master-slave roles. Stateless instances (no group) are NONE.
enum Role {
  NONE = 0,
  MASTER = 1,
  SLAVE = 2,
}

// The registry's answer to a heartbeat.
struct Directives {
  // The registry does not know this lease (it restarted, or the instance was removed or
  // timed out): register again.
  1: bool reregister,
  // An administrator drained this instance: clients are told to stop sending it calls.
  2: bool drained,
  // Master-slave: this instance's role, the group's epoch, and the master's "host:port".
  3: Role role = Role.NONE,
  4: i64 epoch,
  5: string master_address,
  // The heartbeat interval the registry expects, in milliseconds.
  6: i32 heartbeat_interval_ms,
  // Master only: the instance may accept writes until this many milliseconds after it SENT
  // the heartbeat this answers. Always shorter than the registry's promotion delay, so a
  // master that cannot renew stops writing before anyone else can be promoted.
  7: i32 master_lease_ms,
  // Master only: a planned switchover is under way: stop admitting writes now, and report
  // writes_quiesced once none is in flight.
  8: bool stop_writes,
}

struct Lease {
  1: i64 id,
  2: i32 heartbeat_interval_ms,
  3: i32 heartbeat_timeout_ms,
  // A second port on the registry's host that serves register_instance, heartbeat and
  // deregister only (nonblocking, cheaper per call); 0: send them to the main port. A client
  // that cannot reach it heartbeats on the main port instead.
  4: i32 heartbeat_port,
}

enum Health {
  UP = 1,
  DOWN = 2,     // heartbeats stopped for longer than the timeout
}

// An instance as the registry sees it.
struct InstanceState {
  1: Instance instance,
  2: Health health,
  // The weight clients should use: the administrator's if one is set, else the registered one.
  3: i32 effective_weight,
  4: bool drained,
  // Milliseconds since the last heartbeat (or registration).
  5: i64 last_heartbeat_age_ms,
  6: LoadReport load,
  7: bool admin_weight_set,
  8: Role role = Role.NONE,
  9: i64 epoch,
  10: string group,
  11: i64 replication_position,
  12: i32 priority,
}

// A master-slave group as the registry sees it.
struct GroupState {
  1: string service_name,
  2: string group,
  // Grows by one with every promotion; durable across registry restarts; never goes back.
  3: i64 epoch,
  // The master of `epoch` ("host:port"); empty while there is none (a failover in progress).
  4: string master_address,
  // A planned switchover's target while one is under way; else empty.
  5: string switchover_target,
  // The highest commit position the master of `epoch` reported (0: none since the registry
  // started). No slave below it is promoted automatically.
  6: i64 commit_floor,
  // Why the group has no master, while a failover cannot complete; else empty.
  7: string stalled,
}

// A whole, versioned instance list of one service (every instance, up or down, drained or
// not: a resolver keeps the UP, not drained ones).
struct ServiceSnapshot {
  1: string service_name,
  2: i64 version,
  3: list<InstanceState> instances,
  // The service's master-slave groups (empty for a stateless service).
  4: list<GroupState> groups,
}

struct WatchResult {
  // false: max_wait_ms passed with no change; `snapshot` then carries only the service name
  // and the (unchanged) version, not the list the caller already has.
  1: bool changed,
  2: ServiceSnapshot snapshot,
}

struct ServiceSummary {
  1: string service_name,
  2: i64 version,
  3: i32 instances,
  4: i32 up,
  5: i32 drained,
}

// ---- The service -------------------------------------------------------------------------

service Registry {
  // Registers (or re-registers) an instance and returns its lease. Registering an address
  // that is already registered replaces the old lease (the server restarted).
  Lease register_instance(1: string token, 2: Instance instance) throws (1: RegistryError err),

  // Keeps a lease alive. An unknown lease is not an error: the directives say reregister.
  Directives heartbeat(1: string token, 2: i64 lease, 3: LoadReport load)
      throws (1: RegistryError err),

  // Removes the instance holding `lease` at once (a server draining on SIGTERM).
  void deregister(1: string token, 2: i64 lease) throws (1: RegistryError err),

  // The current list of `service`. An unknown service has version 0 and no instances.
  ServiceSnapshot lookup(1: string service_name) throws (1: RegistryError err),

  // Long poll: returns as soon as the service's version differs from `known_version`, or
  // after max_wait_ms (capped by the registry) with changed = false.
  WatchResult watch(1: string service_name, 2: i64 known_version, 3: i32 max_wait_ms)
      throws (1: RegistryError err),

  // ---- Admin (token required). Changes are on disk (fsync) before the call returns. ----

  list<ServiceSummary> list_services() throws (1: RegistryError err),

  // Sets the weight clients use for one instance (address = "host:port"), overriding the
  // registered weight until cleared with weight = -1.
  void set_weight(1: string token, 2: string service_name, 3: string address, 4: i32 weight)
      throws (1: RegistryError err),

  void drain(1: string token, 2: string service_name, 3: string address)
      throws (1: RegistryError err),
  void undrain(1: string token, 2: string service_name, 3: string address)
      throws (1: RegistryError err),

  // Forgets an instance and its admin state. A live instance will re-register on its next
  // heartbeat; remove is for instances that are gone.
  void remove_instance(1: string token, 2: string service_name, 3: string address)
      throws (1: RegistryError err),

  // Planned switchover to `address`, a healthy slave: its group's master stops taking writes,
  // `address` catches up to the master's final position, then becomes master with a new
  // epoch. Returns the group once the switch is done; UNAVAILABLE (and the old master carries
  // on) when it cannot complete within the registry's switchover timeout.
  //
  // accept_data_loss: for a group whose master is gone and whose live slaves are all below the
  // commit position it reported (GroupState.stalled says so): makes `address` master anyway,
  // losing the acknowledged writes it lacks. The only way out of that state but bringing the
  // lost data back.
  GroupState promote(1: string token, 2: string service_name, 3: string address,
                     4: bool accept_data_loss)
      throws (1: RegistryError err),
}
