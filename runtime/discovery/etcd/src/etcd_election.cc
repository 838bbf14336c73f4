#include "etcd_election.h"

#include <glog/logging.h>

namespace fulcrum::etcd {

GroupState ReadGroupState(const std::vector<KeyValue>& candidates,
                          const std::vector<KeyValue>& leader) {
  GroupState g;
  for (const KeyValue& kv : candidates) {
    const size_t slash = kv.key.rfind('/');
    const std::string name = slash == std::string::npos ? kv.key : kv.key.substr(slash + 1);
    if (name == kTermKeyName) {
      g.term_revision = kv.mod_revision;
      continue;
    }
    if (name == kSwitchoverKeyName) {
      StatusOr<LeaderValue> target = DecodeLeader(kv.value);
      if (target.ok()) {
        g.switchover_target = target->address;
      } else {
        LOG(WARNING) << "etcd key " << kv.key << ": skipping (" << target.status().message() << ")";
      }
      continue;
    }
    StatusOr<CandidateValue> c = DecodeCandidate(kv.value);
    if (!c.ok()) {
      LOG(WARNING) << "etcd key " << kv.key << ": skipping (" << c.status().message() << ")";
      continue;
    }
    if (name == kCommitKeyName) {
      g.commit = c->position;
    } else {
      g.candidates[name] = *c;
    }
  }
  if (!leader.empty()) {
    const KeyValue& kv = leader.front();
    StatusOr<LeaderValue> l = DecodeLeader(kv.value);
    if (l.ok()) {
      g.leader = std::move(l).value();
      g.epoch = kv.create_revision;
      g.leader_lease = kv.lease;
    } else {
      LOG(WARNING) << "etcd key " << kv.key << ": not a leader (" << l.status().message() << ")";
    }
  }
  return g;
}

namespace {

// Whether candidate a is more up to date than b: higher position, then higher priority, then
// the lower address (so exactly one candidate is ahead of all others).
bool Ahead(const std::string& a_address, const CandidateValue& a, const std::string& b_address,
           const CandidateValue& b) {
  if (a.position != b.position) return a.position > b.position;
  if (a.priority != b.priority) return a.priority > b.priority;
  return a_address < b_address;
}

}  // namespace

bool ShouldCampaign(const GroupState& group, const std::string& self) {
  if (group.leader) return false;
  auto me = group.candidates.find(self);
  if (me == group.candidates.end()) return false;
  if (me->second.position < group.commit) return false;
  if (!group.switchover_target.empty()) {
    if (self != group.switchover_target) return false;
    for (const auto& [address, c] : group.candidates) {
      if (c.position > me->second.position) return false;
    }
    return true;
  }
  for (const auto& [address, c] : group.candidates) {
    if (address != self && Ahead(address, c, self, me->second)) return false;
  }
  return true;
}

bool SwitchoverAsked(const GroupState& group, const std::string& self) {
  return !group.switchover_target.empty() && group.switchover_target != self &&
         group.candidates.count(group.switchover_target) > 0;
}

bool MayResign(const GroupState& group, const std::string& self, int64_t final_position) {
  if (!SwitchoverAsked(group, self)) return false;
  return group.candidates.at(group.switchover_target).position >= final_position;
}

}  // namespace fulcrum::etcd
