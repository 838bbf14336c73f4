// Master election for master-slave groups on etcd: the rule each instance applies to what it
// read of its group (etcd_codec.h has the keys). Pure functions, so the unit tests cover every
// branch without an etcd; EtcdRegistrar does the I/O.
//
// Every tick a group instance (1) publishes its replication position under a key bound to
// its own lease, (2) reads the group's candidates, its commit position and the leader key in
// the same transaction, and (3) when there is no leader and ShouldCampaign() says it is the
// most up-to-date live instance, puts the leader key with its lease if it still does not
// exist and no one has won since the read (a transaction on the leader key's create_revision
// == 0 and the term key's mod_revision unchanged: what it read of the candidates still
// describes the group). The leader key's create_revision is the
// group's epoch: global, increasing, durable. A master admits writes until the send time of
// its last keepalive that etcd answered + TTL - a margin (RoleState), never on etcd's word
// that the lease expired: etcd deletes the key no earlier than TTL after it received that
// keepalive, so the old master has stopped before anyone can win. docs/master-slave.md.
//
//   GroupState g = ReadGroupState(candidate_kvs, leader_kvs);
//   if (!g.leader && ShouldCampaign(g, "127.0.0.1:9001")) { /* txn: create the leader key */ }
//
// Thread-safe (stateless).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "etcd_codec.h"

namespace fulcrum::etcd {

struct GroupState {
  std::optional<LeaderValue> leader;
  int64_t epoch = 0;         // the leader key's create_revision
  int64_t leader_lease = 0;  // the lease the leader key is bound to
  // Live instances (their keys go with their leases), by "host:port".
  std::map<std::string, CandidateValue> candidates;
  int64_t commit = 0;  // the highest acknowledged position a master published
  // The term key's mod_revision (0: no election won yet): a campaign requires it unchanged.
  int64_t term_revision = 0;
  // A planned switchover's target ("host:port"; empty: none asked).
  std::string switchover_target;
};

// From the two ranges of one read: every key under CandidatesPrefix (the candidates and the
// commit key) and the leader key (zero or one kv). Values that do not decode are skipped
// with a warning (they cannot campaign; a bad leader value reads as no leader, and the
// create_revision == 0 comparison then keeps anyone from winning until it is gone).
GroupState ReadGroupState(const std::vector<KeyValue>& candidates,
                          const std::vector<KeyValue>& leader);

// True when `self` should try to become master: there is no leader, `self` is a listed
// candidate, its position is at least the commit position (promoting it would lose no
// acknowledged write), and no other live candidate is more up to date (higher position,
// then higher priority, then the lower address): Patroni's _is_healthiest_node rule.
// During a planned switchover only its target campaigns, and only while no live candidate
// has a higher position (else nobody does until the switchover's key expires).
bool ShouldCampaign(const GroupState& group, const std::string& self);

// The master's side of a planned switchover: whether it should stop admitting writes (a
// switchover to another live candidate was asked) and, once its writes are quiesced at
// `final_position`, whether it may hand over (the target has published at least that).
bool SwitchoverAsked(const GroupState& group, const std::string& self);
bool MayResign(const GroupState& group, const std::string& self, int64_t final_position);

}  // namespace fulcrum::etcd
