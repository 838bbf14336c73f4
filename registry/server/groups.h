// Master-slave groups: what the registry keeps per (service, group), and the promotion rules
// of docs/master-slave.md (2: a lost master, 3: the first master, 5: a planned switchover) as
// one pure function of that state, so the rules are tested without locks or threads. The
// Store (store.h) owns the locking, the durable save before a new epoch is visible, and the
// waiting of `promote`.
//
//   Decision d = DecidePromotion(group, members, clock.Now(), options);
//   if (d.kind == Decision::Kind::kPromote) { /* save epoch + 1 and d.target, then apply */ }
//
// Values and pure functions: thread-compatible.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fulcrum/clock.h"
#include "fulcrum/status.h"

namespace fulcrum::registry {

struct GroupOptions {
  // The heartbeat interval master-slave instances are asked for (Lease and Directives).
  Duration heartbeat_interval = std::chrono::milliseconds(100);
  // How long after SENDING a heartbeat the master may admit writes.
  Duration master_lease = std::chrono::milliseconds(600);
  // A master is lost once no heartbeat was RECEIVED for this long; must exceed the lease.
  Duration promotion_delay = std::chrono::milliseconds(800);
  // A planned switchover not done by then is abandoned and the master resumes writes.
  Duration switchover_timeout = std::chrono::seconds(5);
};

// kInvalidArgument naming the flags unless every duration is positive and promotion delay >
// master lease (the lease must surely have run out when the registry may promote).
Status ValidateGroupOptions(const GroupOptions& options);

// A planned switchover under way, shared with the `promote` call that waits for it.
struct Switchover {
  enum class Outcome { kRunning, kDone, kAborted };
  std::string target;
  TimePoint deadline;
  // The master's final position, once it reported writes_quiesced.
  std::optional<int64_t> final_position;
  Outcome outcome = Outcome::kRunning;
  std::string why;  // kAborted: why, for the caller
};

struct Group {
  // Durable (admin state file): the epoch (0: never had a master), its master, and the
  // master's incarnation (Instance.incarnation; 0 when not known).
  int64_t epoch = 0;
  std::string master;
  int64_t master_incarnation = 0;
  // Another process (a different incarnation) registered at the master's address: the master
  // that held the lease is gone, whatever its address now answers. Nothing renews it, the
  // newcomer is a slave and a candidate like any other, and rule 2 promotes someone once the
  // old master's lease has surely run out. Cleared by the next promotion.
  bool master_gone = false;
  // When the registry last heard from the master (a heartbeat or a registration), or when it
  // started (a master loaded from disk), or when the master was promoted.
  TimePoint master_seen;
  // epoch + 1 is being saved: nothing may renew the old master's lease meanwhile.
  bool saving = false;
  std::shared_ptr<Switchover> switchover;
  // The highest commit_position the master reported (LoadReport; replication_position's
  // encoding), over the group's life: no slave below it is promoted by the rules, since it
  // lacks writes that were acknowledged. Not durable: 0 after a registry restart until the
  // master reports again.
  int64_t commit_floor = 0;
  // An administrator's `promote --accept_data_loss` target: promoted by rule 2 whatever its
  // position, once the old master is lost. Cleared by the next promotion.
  std::string forced_target;
  // Why the master is lost and nobody is promoted (logged once per distinct reason, shown in
  // GroupState.stalled); empty otherwise. Failed saves are logged at the 1st, 2nd, 4th, 8th...
  // attempt.
  std::string stalled;
  int64_t failed_saves = 0;
};

// True when `address` is the group's master and the process that holds the role.
inline bool HoldsMaster(const Group& group, const std::string& address) {
  return group.epoch > 0 && group.master == address && !group.master_gone;
}

// One registered instance of a group, as the rules need it.
struct Member {
  std::string address;
  bool up = false;
  bool drained = false;
  // A heartbeat (which carries the position) was received since the instance registered.
  bool reported = false;
  TimePoint last_report;
  int64_t position = 0;
  int32_t priority = 0;
};

struct Decision {
  enum class Kind {
    kNothing,      // the master is fine (or a save is in progress)
    kWait,         // the master is lost; waiting for slaves' fresh reports
    kPromote,      // promote `target` now
    kNoCandidate,  // the master is lost and nobody can take over
  };
  Kind kind = Kind::kNothing;
  std::string target;
  std::string reason;  // for the log
};

// Highest position, then highest priority, then lowest address; nullptr when empty.
const Member* BestCandidate(const std::vector<const Member*>& candidates);

// What to do for `group` now. Rule 5 first (the switchover target caught up with the
// quiesced master's final position), then rule 3 (epoch 0: elect at once among the UP, not
// drained members), then rule 2 (eligible at master_seen + promotion delay; candidates are
// the UP, not drained slaves whose last report was received after that moment; wait until
// every such slave is fresh or one report period past eligibility: an interval plus twice
// (promotion delay - lease), the longest a live slave's report may take; never promote one
// below the commit floor, unless an administrator forced that target).
Decision DecidePromotion(const Group& group, const std::vector<Member>& members, TimePoint now,
                         const GroupOptions& options);

// True when the rules might want something now; false is cheap and certain (a master heard
// from within the promotion delay and no switchover ready). Lets callers skip gathering
// members for healthy groups.
bool MayNeedPromotion(const Group& group, TimePoint now, const GroupOptions& options);

}  // namespace fulcrum::registry
