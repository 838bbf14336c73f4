// What fulcrumctl shows of services on etcd (the etcd:// control plane), read from etcd's keys
// into the Thrift structures fulcrum-registry answers with, so the same formats print them
// (ctl_format.h). On etcd there is no registry to hold administrators' state (weights,
// drains); a planned switchover is the one change, made through the group's keys.
//
//   auto uri = fulcrum::etcd::ParseEtcdUri("127.0.0.1:2379", EtcdUriKind::kRegistrar);
//   fulcrum::etcd::EtcdHttpClient http(uri->endpoints, timeout, uri->credentials, uri->tls);
//   auto snapshot = EtcdLookup(http, uri->prefix, "KvStore");
//
// Thread-compatible (the HTTP client is).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "etcd_codec.h"
#include "etcd_http_client.h"
#include "fulcrum/idl/Registry.h"
#include "fulcrum/status.h"

namespace fulcrum::registry {

// One service from its keys: `instances` under <prefix>/services/<service>/ (instances and
// leader keys) and `groups` under <prefix>/groups/<service>/ (positions, commit, term). Every
// listed instance is UP (its key lives only as long as its lease); roles, epochs and masters
// as the etcd:// resolver derives them; positions and priorities from the group keys.
thrift::ServiceSnapshot SnapshotFromEtcd(const std::string& service, int64_t revision,
                                         const std::vector<etcd::KeyValue>& instances,
                                         const std::vector<etcd::KeyValue>& groups);

// Reads one service (kUnavailable when etcd cannot be asked).
StatusOr<thrift::ServiceSnapshot> EtcdLookup(etcd::EtcdHttpClient& http, const std::string& prefix,
                                             const std::string& service);
// Every service with an instance registered.
StatusOr<std::vector<thrift::ServiceSnapshot>> EtcdLookupAll(etcd::EtcdHttpClient& http,
                                                             const std::string& prefix);
// A planned switchover (`fulcrumctl promote`): puts the group's switchover key naming
// `address` under a lease of `timeout` (the master then stops writes, the target catches up,
// the master hands over and the target wins the election: docs/master-slave.md "On etcd"),
// waits until the leader key names `address`, and revokes the lease, which removes the key
// whatever happened. kInvalidArgument: an unknown instance, one in no group, already master, or
// a group without a master; kDeadlineExceeded: not done within `timeout`.
StatusOr<thrift::GroupState> EtcdPromote(etcd::EtcdHttpClient& http, const std::string& prefix,
                                         const std::string& service, const std::string& address,
                                         std::chrono::milliseconds timeout);

// The summaries `list` prints.
std::vector<thrift::ServiceSummary> Summaries(const std::vector<thrift::ServiceSnapshot>& all);

}  // namespace fulcrum::registry
