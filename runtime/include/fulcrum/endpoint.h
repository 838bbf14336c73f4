// Endpoint: one server instance a client may call, and EndpointSet, the whole list a resolver
// delivers at once.
//
//   fulcrum::Endpoint e{"127.0.0.1", 9090, /*weight=*/2};
//   e.Address();  // "127.0.0.1:9090"
//
// Plain values; thread-compatible (const access from many threads is safe).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace fulcrum {

// Master-slave roles; stateless instances are kNone.
enum class InstanceRole { kNone, kMaster, kSlave };

struct Endpoint {
  std::string host;
  uint16_t port = 0;
  // Relative share of traffic for weighted balancers. 0 means "send nothing unless nothing else
  // is left" (balancers treat an all-zero set as all-equal rather than failing every call).
  uint32_t weight = 1;
  std::string zone;
  std::map<std::string, std::string> tags;
  // Master-slave services only (from the registry): the instance's group, its role in it, and
  // the group's epoch. A client sends writes to the master of the newest epoch it knows.
  std::string group;
  InstanceRole role = InstanceRole::kNone;
  int64_t epoch = 0;
  // Which process serves the address, when discovery knows (fulcrum-registry does; 0: not
  // known). A server restarted at the same address is a new incarnation: the channel gives it
  // a clean record (statistics, ejection, connections) instead of its predecessor's.
  uint64_t incarnation = 0;

  // "host:port" ("[::1]:port" for IPv6 literals). The identity of an endpoint: two endpoints
  // with the same address are the same server, whatever their weight or tags.
  std::string Address() const;

  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

// An immutable list of endpoints plus the version it was read at. Resolvers deliver whole
// sets; the channel diffs them against what it has.
struct EndpointSet {
  std::vector<Endpoint> endpoints;
  uint64_t version = 0;
};

using EndpointSetPtr = std::shared_ptr<const EndpointSet>;

}  // namespace fulcrum
