// fulcrum-registry's /status page: every service, its instances (address, health, weight,
// zone, drained, last heartbeat, load, role) and master-slave groups (epoch, master, members'
// replication positions, switchover), as JSON (/status?format=json) and as one HTML page
// whose script polls that JSON every second, laid out for a phone as for a wide screen.
//
//   fulcrum::Admin::Global().SetPage("/status", RegistryStatusPage(daemon.store()));
//
// Read-only: changes stay in fulcrumctl. Shows nothing secret: no token, no token file, no
// instance metadata (which could hold anything).
//
// Thread-safe (the Store is).
#pragma once

#include <nlohmann/json.hpp>

#include "fulcrum/admin.h"

namespace fulcrum::registry {

class Store;

nlohmann::json RegistryStatus(const Store& store);
// `store` must outlive the page.
AdminPage RegistryStatusPage(const Store* store);

}  // namespace fulcrum::registry
