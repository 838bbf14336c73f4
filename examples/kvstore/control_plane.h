// The kvstore example's control plane, chosen by its --registry flag: fulcrum-registry
// ("host:port" or "fulcrum://host:port") or etcd ("etcd://h1:p1,h2:p2[?ttl_s=2]"). Both
// discovery libraries are linked; only the URI decides.
//
//   CHECK(kvstore::RegisterDiscovery().ok());
//   KvStoreBalancedClient client(kvstore::ServiceUri(FLAGS_registry, "KvStore"), options);
#pragma once

#include <string>

#include "fulcrum/discovery/etcd.h"
#include "fulcrum/discovery/fulcrum.h"
#include "fulcrum/status.h"

namespace kvstore {

inline fulcrum::Status RegisterDiscovery() {
  for (const fulcrum::Status& s :
       {fulcrum::RegisterFulcrumDiscovery(), fulcrum::RegisterEtcdDiscovery()}) {
    if (!s.ok()) return s;
  }
  return fulcrum::Status::Ok();
}

// The registry's URI (a bare "host:port" is fulcrum-registry's).
inline std::string RegistryUri(std::string registry) {
  if (registry.find("://") == std::string::npos) registry = "fulcrum://" + registry;
  return registry;
}

// The URI a client resolves `service` with: the service's path goes before any query.
inline std::string ServiceUri(const std::string& registry, const std::string& service) {
  std::string uri = RegistryUri(registry);
  const size_t query = uri.find('?');
  return query == std::string::npos ? uri + "/" + service
                                    : uri.substr(0, query) + "/" + service + uri.substr(query);
}

}  // namespace kvstore
