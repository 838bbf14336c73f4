#include "server/groups.h"

#include <tuple>

namespace fulcrum::registry {

Status ValidateGroupOptions(const GroupOptions& o) {
  const auto ms = [](Duration d) {
    return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
  };
  if (o.heartbeat_interval <= Duration::zero() || o.master_lease <= Duration::zero() ||
      o.promotion_delay <= Duration::zero() || o.switchover_timeout <= Duration::zero()) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "--ms_heartbeat_interval_ms, --master_lease_ms, --promotion_delay_ms and "
                         "--switchover_timeout_ms must all be positive");
  }
  if (o.promotion_delay <= o.master_lease) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "--promotion_delay_ms (" + ms(o.promotion_delay) +
                             ") must be greater than --master_lease_ms (" + ms(o.master_lease) +
                             "): otherwise a slave could be promoted while the old master's "
                             "lease still lets it write");
  }
  if (o.master_lease <= o.heartbeat_interval) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "--master_lease_ms (" + ms(o.master_lease) +
                             ") must be greater than --ms_heartbeat_interval_ms (" +
                             ms(o.heartbeat_interval) + "): the master could never keep its lease");
  }
  return Status::Ok();
}

const Member* BestCandidate(const std::vector<const Member*>& candidates) {
  const Member* best = nullptr;
  for (const Member* m : candidates) {
    // Higher position, then higher priority, then the lower address wins.
    if (best == nullptr || std::make_tuple(m->position, m->priority, best->address) >
                               std::make_tuple(best->position, best->priority, m->address)) {
      best = m;
    }
  }
  return best;
}

bool MayNeedPromotion(const Group& group, TimePoint now, const GroupOptions& options) {
  if (group.saving) return false;
  if (group.epoch == 0) return true;
  if (group.switchover && group.switchover->final_position) return true;
  return now >= group.master_seen + options.promotion_delay;
}

Decision DecidePromotion(const Group& group, const std::vector<Member>& members, TimePoint now,
                         const GroupOptions& options) {
  Decision d;
  if (group.saving) return d;

  // Rule 5: the target holds everything the quiesced master wrote.
  if (group.switchover && group.switchover->outcome == Switchover::Outcome::kRunning &&
      group.switchover->final_position) {
    for (const Member& m : members) {
      if (m.address != group.switchover->target || HoldsMaster(group, m.address)) continue;
      if (m.up && !m.drained && m.reported && m.position >= *group.switchover->final_position) {
        d.kind = Decision::Kind::kPromote;
        d.target = m.address;
        d.reason = "planned switchover; caught up with the master's final position " +
                   std::to_string(*group.switchover->final_position);
        return d;
      }
    }
  }

  // Rule 3: never had a master, so nobody can be writing: elect at once.
  if (group.epoch == 0) {
    std::vector<const Member*> candidates;
    for (const Member& m : members) {
      if (m.up && !m.drained) candidates.push_back(&m);
    }
    const Member* best = BestCandidate(candidates);
    if (best == nullptr) {
      d.kind = Decision::Kind::kNoCandidate;
      d.reason = "no UP, undrained instance for a first master";
      return d;
    }
    d.kind = Decision::Kind::kPromote;
    d.target = best->address;
    d.reason = "first master of the group";
    return d;
  }

  // Rule 2: the master has been silent for the promotion delay, so its lease has run out.
  const TimePoint eligible = group.master_seen + options.promotion_delay;
  if (now < eligible) return d;
  std::vector<const Member*> candidates;
  std::vector<const Member*> fresh;
  for (const Member& m : members) {
    if (HoldsMaster(group, m.address) || !m.up || m.drained) continue;
    candidates.push_back(&m);
    // A report received after eligibility was taken after the old master stopped
    // acknowledging writes, so its position counts everything that master acknowledged.
    if (m.reported && m.last_report > eligible) fresh.push_back(&m);
  }
  // How long a live slave may take to report: an interval, plus its request and the reply
  // before it each spending up to the transit rule 1 allows (promotion delay - lease). A
  // shorter wait can promote a fresh slave without a write that only a slower one holds
  // (found by the model: tests/model/check.sh registry -DREQUEST_TRANSIT -DMAXDELAY=1).
  const Duration report_period =
      options.heartbeat_interval + 2 * (options.promotion_delay - options.master_lease);
  if (fresh.size() < candidates.size() && now < eligible + report_period) {
    d.kind = Decision::Kind::kWait;
    return d;
  }
  if (!group.forced_target.empty()) {
    for (const Member* m : candidates) {
      if (m->address != group.forced_target) continue;
      d.kind = Decision::Kind::kPromote;
      d.target = m->address;
      d.reason = "forced by an administrator at position " + std::to_string(m->position) +
                 " (commit floor " + std::to_string(group.commit_floor) +
                 "): acknowledged writes past it are lost";
      return d;
    }
  }
  const Member* best = BestCandidate(fresh);
  if (best != nullptr && best->position < group.commit_floor) {
    d.kind = Decision::Kind::kNoCandidate;
    d.reason = "the most up-to-date of " + std::to_string(fresh.size()) + " fresh slave(s), " +
               best->address + " at position " + std::to_string(best->position) +
               ", is below the position " + std::to_string(group.commit_floor) +
               " up to which the master had acknowledged writes: promoting it would lose "
               "them. Waiting for the master (or a slave that has them) to come back; "
               "`fulcrumctl promote --accept_data_loss` promotes a slave anyway";
    return d;
  }
  if (best == nullptr) {
    d.kind = Decision::Kind::kNoCandidate;
    d.reason = candidates.empty() ? "no UP, undrained slave"
                                  : std::to_string(candidates.size()) +
                                        " UP slave(s) but none reported since the master was lost";
    return d;
  }
  d.kind = Decision::Kind::kPromote;
  d.target = best->address;
  d.reason = "master " + (group.master.empty() ? std::string("(none)") : group.master) +
             " lost; highest position " + std::to_string(best->position) + " of " +
             std::to_string(fresh.size()) + " fresh slave(s)";
  return d;
}

}  // namespace fulcrum::registry
