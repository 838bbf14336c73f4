#include "ctl/etcd_view.h"

#include <algorithm>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "etcd_election.h"
#include "etcd_resolver.h"

namespace fulcrum::registry {
namespace {

thrift::Role::type ToThrift(InstanceRole role) {
  switch (role) {
    case InstanceRole::kMaster:
      return thrift::Role::MASTER;
    case InstanceRole::kSlave:
      return thrift::Role::SLAVE;
    case InstanceRole::kNone:
      break;
  }
  return thrift::Role::NONE;
}

StatusOr<std::vector<etcd::KeyValue>> RangePrefix(etcd::EtcdHttpClient& http,
                                                  const std::string& key, int64_t* revision) {
  const nlohmann::json request = {{"key", etcd::Base64Encode(key)},
                                  {"range_end", etcd::Base64Encode(etcd::PrefixRangeEnd(key))}};
  StatusOr<std::string> body = http.Post("/v3/kv/range", request.dump());
  if (!body.ok()) return body.status();
  StatusOr<etcd::RangeResult> range = etcd::ParseRangeResponse(*body);
  if (!range.ok()) return range.status();
  if (revision != nullptr) *revision = range->revision;
  return std::move(range->kvs);
}

}  // namespace

thrift::ServiceSnapshot SnapshotFromEtcd(const std::string& service, int64_t revision,
                                         const std::vector<etcd::KeyValue>& instances,
                                         const std::vector<etcd::KeyValue>& groups) {
  etcd::InstanceTable table;
  for (const etcd::KeyValue& kv : instances) table.Put(kv.key, kv.value, kv.create_revision);
  // The group keys by group: <prefix>/groups/<service>/<group>/<name>.
  std::map<std::string, std::vector<etcd::KeyValue>> by_group;
  for (const etcd::KeyValue& kv : groups) {
    const size_t last = kv.key.rfind('/');
    const size_t before = last == std::string::npos ? last : kv.key.rfind('/', last - 1);
    if (before == std::string::npos) continue;
    by_group[kv.key.substr(before + 1, last - before - 1)].push_back(kv);
  }
  std::map<std::string, etcd::GroupState> states;
  for (const auto& [group, kvs] : by_group) states[group] = etcd::ReadGroupState(kvs, {});

  thrift::ServiceSnapshot s;
  s.service_name = service;
  s.version = revision;
  std::map<std::string, thrift::GroupState> group_states;
  for (const Endpoint& e : table.Snapshot(revision).endpoints) {
    thrift::InstanceState i;
    i.instance.service_name = service;
    i.instance.host = e.host;
    i.instance.port = e.port;
    i.instance.weight = static_cast<int32_t>(e.weight);
    i.instance.zone = e.zone;
    i.instance.metadata = e.tags;
    i.instance.group = e.group;
    i.instance.incarnation = static_cast<int64_t>(e.incarnation);
    i.health = thrift::Health::UP;  // the key lives as long as the instance's lease
    i.effective_weight = i.instance.weight;
    i.last_heartbeat_age_ms = -1;  // etcd does not say when the last keepalive came
    i.role = ToThrift(e.role);
    i.epoch = e.epoch;
    i.group = e.group;
    if (!e.group.empty()) {
      const etcd::GroupState& g = states[e.group];
      if (auto c = g.candidates.find(e.Address()); c != g.candidates.end()) {
        i.replication_position = c->second.position;
        i.load.replication_position = c->second.position;
        i.priority = c->second.priority;
        i.instance.priority = c->second.priority;
      }
      thrift::GroupState& gs = group_states[e.group];
      gs.service_name = service;
      gs.group = e.group;
      gs.commit_floor = g.commit;
      if (e.role == InstanceRole::kMaster) {
        gs.epoch = e.epoch;
        gs.master_address = e.Address();
      }
    }
    s.instances.push_back(std::move(i));
  }
  for (auto& [name, g] : group_states) s.groups.push_back(std::move(g));
  return s;
}

StatusOr<thrift::ServiceSnapshot> EtcdLookup(etcd::EtcdHttpClient& http, const std::string& prefix,
                                             const std::string& service) {
  int64_t revision = 0;
  StatusOr<std::vector<etcd::KeyValue>> instances =
      RangePrefix(http, etcd::ServicePrefix(prefix, service), &revision);
  if (!instances.ok()) return instances.status();
  StatusOr<std::vector<etcd::KeyValue>> groups =
      RangePrefix(http, prefix + "/groups/" + service + "/", nullptr);
  if (!groups.ok()) return groups.status();
  return SnapshotFromEtcd(service, revision, *instances, *groups);
}

StatusOr<std::vector<thrift::ServiceSnapshot>> EtcdLookupAll(etcd::EtcdHttpClient& http,
                                                             const std::string& prefix) {
  const std::string services = prefix + "/services/";
  StatusOr<std::vector<etcd::KeyValue>> all = RangePrefix(http, services, nullptr);
  if (!all.ok()) return all.status();
  std::vector<std::string> names;
  for (const etcd::KeyValue& kv : *all) {
    const std::string rest = kv.key.substr(services.size());
    const std::string name = rest.substr(0, rest.find('/'));
    if (!name.empty() && (names.empty() || names.back() != name)) names.push_back(name);
  }
  std::vector<thrift::ServiceSnapshot> out;
  for (const std::string& name : names) {
    StatusOr<thrift::ServiceSnapshot> s = EtcdLookup(http, prefix, name);
    if (!s.ok()) return s.status();
    if (!s->instances.empty()) out.push_back(std::move(s).value());
  }
  return out;
}

StatusOr<thrift::GroupState> EtcdPromote(etcd::EtcdHttpClient& http, const std::string& prefix,
                                         const std::string& service, const std::string& address,
                                         std::chrono::milliseconds timeout) {
  const auto invalid = [](const std::string& why) {
    return Status::Error(StatusCode::kInvalidArgument, why);
  };
  StatusOr<thrift::ServiceSnapshot> snapshot = EtcdLookup(http, prefix, service);
  if (!snapshot.ok()) return snapshot.status();
  std::string group;
  bool found = false;
  for (const thrift::InstanceState& i : snapshot->instances) {
    if (i.instance.host + ":" + std::to_string(i.instance.port) != address) continue;
    found = true;
    group = i.group;
    if (i.role == thrift::Role::MASTER) return invalid(address + " is already master");
  }
  if (!found) return invalid("unknown instance " + service + "/" + address);
  if (group.empty()) return invalid(service + "/" + address + " is in no master-slave group");
  const thrift::GroupState* state = nullptr;
  for (const thrift::GroupState& g : snapshot->groups) {
    if (g.group == group && !g.master_address.empty()) state = &g;
  }
  if (state == nullptr) {
    return invalid("group " + group +
                   " has no master to hand over (after a master's loss the "
                   "most up-to-date slave is elected by itself)");
  }
  // The switchover's key lives as long as this lease: at most `timeout`, and no longer than
  // this command if it dies (then the master resumes writes within a TTL of the lease).
  const int64_t ttl_s = std::max<int64_t>(2, (timeout.count() + 999) / 1000);
  StatusOr<std::string> granted =
      http.Post("/v3/lease/grant", nlohmann::json{{"TTL", ttl_s}}.dump());
  if (!granted.ok()) return granted.status();
  StatusOr<etcd::LeaseResult> lease = etcd::ParseLeaseResponse(*granted);
  if (!lease.ok()) return lease.status();
  const std::string key = etcd::CandidatesPrefix(prefix, service, group) + etcd::kSwitchoverKeyName;
  const nlohmann::json put = {{"key", etcd::Base64Encode(key)},
                              {"value", etcd::Base64Encode(etcd::EncodeLeader({address, 0}))},
                              {"lease", std::to_string(lease->id)}};
  Status outcome = Status::Ok();
  thrift::GroupState done;
  if (StatusOr<std::string> r = http.Post("/v3/kv/put", put.dump()); !r.ok()) {
    outcome = r.status();
  } else {
    const std::string leader_key = etcd::LeaderKey(prefix, service, group);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    outcome = Status::Error(StatusCode::kDeadlineExceeded,
                            "the switchover to " + address + " did not complete within " +
                                std::to_string(timeout.count()) +
                                " ms (the target did not catch up, or the master did not stop "
                                "its writes); the master resumes writes");
    while (std::chrono::steady_clock::now() < deadline) {
      StatusOr<std::string> body =
          http.Post("/v3/kv/range", nlohmann::json{{"key", etcd::Base64Encode(leader_key)}}.dump());
      if (body.ok()) {
        StatusOr<etcd::RangeResult> range = etcd::ParseRangeResponse(*body);
        if (range.ok() && !range->kvs.empty()) {
          StatusOr<etcd::LeaderValue> leader = etcd::DecodeLeader(range->kvs.front().value);
          if (leader.ok() && leader->address == address) {
            done.service_name = service;
            done.group = group;
            done.epoch = range->kvs.front().create_revision;
            done.master_address = address;
            outcome = Status::Ok();
            break;
          }
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  // The key goes with the lease, done or not.
  (void)http.Post("/v3/lease/revoke", nlohmann::json{{"ID", std::to_string(lease->id)}}.dump());
  if (!outcome.ok()) return outcome;
  return done;
}

std::vector<thrift::ServiceSummary> Summaries(const std::vector<thrift::ServiceSnapshot>& all) {
  std::vector<thrift::ServiceSummary> out;
  for (const thrift::ServiceSnapshot& s : all) {
    thrift::ServiceSummary summary;
    summary.service_name = s.service_name;
    summary.version = s.version;
    summary.instances = static_cast<int32_t>(s.instances.size());
    summary.up = summary.instances;
    out.push_back(std::move(summary));
  }
  return out;
}

}  // namespace fulcrum::registry
