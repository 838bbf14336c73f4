// Store's master-slave half (docs/master-slave.md): roles in heartbeat replies and snapshots,
// promotions saved before they are visible, and planned switchovers. The rules themselves are
// in groups.cc.
#include <glog/logging.h>

#include "server/store.h"

namespace fulcrum::registry {
namespace {

int32_t ToMillis(Duration d) {
  return static_cast<int32_t>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

std::string Ms(Duration d) { return std::to_string(ToMillis(d)) + " ms"; }

Status Error(StatusCode code, std::string message) {
  return Status::Error(code, std::move(message));
}

}  // namespace

void Store::BumpServiceLocked(const std::string& service) {
  auto it = services_.find(service);
  if (it != services_.end()) BumpLocked(*it->second);
}

thrift::Directives Store::DirectivesLocked(const LeaseKey& key, const Record& record) const {
  thrift::Directives d;
  const std::string& group = record.instance.group;
  d.heartbeat_interval_ms = ToMillis(group.empty() ? options_.heartbeat_interval
                                                   : options_.master_slave.heartbeat_interval);
  const AdminEntry* admin = admin_.Find(key.service, key.address);
  d.drained = admin != nullptr && admin->drained;
  if (group.empty()) return d;
  auto it = groups_.find(GroupKey{key.service, group});
  if (it == groups_.end()) return d;
  const Group& g = it->second;
  d.epoch = g.epoch;
  d.master_address = g.master_gone ? std::string() : g.master;
  if (HoldsMaster(g, key.address)) {
    d.role = thrift::Role::MASTER;
    // While epoch + 1 is being saved the old master gets no new lease: the save may make
    // someone else master the moment it returns.
    d.master_lease_ms = g.saving ? 0 : ToMillis(options_.master_slave.master_lease);
    d.stop_writes = g.switchover != nullptr;
  } else {
    d.role = thrift::Role::SLAVE;
  }
  return d;
}

void Store::FillRoleLocked(const std::string& service, const std::string& address,
                           const Record& record, thrift::InstanceState& s) const {
  s.group = record.instance.group;
  s.priority = record.instance.priority;
  s.replication_position = record.load.replication_position;
  if (s.group.empty()) return;
  auto it = groups_.find(GroupKey{service, s.group});
  if (it == groups_.end()) return;
  s.epoch = it->second.epoch;
  s.role = HoldsMaster(it->second, address) ? thrift::Role::MASTER : thrift::Role::SLAVE;
}

thrift::GroupState Store::GroupStateLocked(const GroupKey& key, const Group& g) const {
  thrift::GroupState out;
  out.service_name = key.first;
  out.group = key.second;
  out.epoch = g.epoch;
  out.master_address = g.master_gone ? std::string() : g.master;
  if (g.switchover) out.switchover_target = g.switchover->target;
  out.commit_floor = g.commit_floor;
  out.stalled = g.stalled;
  return out;
}

std::vector<thrift::GroupState> Store::GroupStatesLocked(const std::string& service) const {
  std::vector<thrift::GroupState> out;
  for (auto it = groups_.lower_bound(GroupKey{service, ""});
       it != groups_.end() && it->first.first == service; ++it) {
    out.push_back(GroupStateLocked(it->first, it->second));
  }
  return out;
}

StatusOr<thrift::GroupState> Store::GetGroup(const std::string& service,
                                             const std::string& group) const {
  std::lock_guard lock(mu_);
  auto it = groups_.find(GroupKey{service, group});
  if (it == groups_.end()) {
    return Error(StatusCode::kNotFound, "unknown group " + service + "/" + group);
  }
  return GroupStateLocked(it->first, it->second);
}

std::vector<Member> Store::MembersLocked(const GroupKey& key) const {
  std::vector<Member> out;
  auto it = services_.find(key.first);
  if (it == services_.end()) return out;
  for (const auto& [address, record] : it->second->instances) {
    if (record.instance.group != key.second) continue;
    Member m;
    m.address = address;
    m.up = record.up;
    const AdminEntry* admin = admin_.Find(key.first, address);
    m.drained = admin != nullptr && admin->drained;
    m.reported = record.reported;
    m.last_report = record.last_report;
    m.position = record.load.replication_position;
    m.priority = record.instance.priority;
    out.push_back(std::move(m));
  }
  return out;
}

Decision Store::DecideLocked(const GroupKey& key, Group& group, TimePoint now) {
  if (!MayNeedPromotion(group, now, options_.master_slave)) return {};
  return DecidePromotion(group, MembersLocked(key), now, options_.master_slave);
}

int64_t Store::IncarnationLocked(const std::string& service, const std::string& address) const {
  auto sit = services_.find(service);
  if (sit == services_.end()) return 0;
  auto rit = sit->second->instances.find(address);
  return rit == sit->second->instances.end() ? 0 : rit->second.instance.incarnation;
}

void Store::NoteIncarnationLocked(const GroupKey& key, const std::string& address,
                                  const thrift::Instance& in) {
  auto it = groups_.find(key);
  if (it == groups_.end()) return;
  Group& g = it->second;
  if (!HoldsMaster(g, address)) return;
  if (g.master_incarnation == 0 || in.incarnation == 0) {
    // Not known (a master promoted before incarnations, or a server that sends none): taken
    // to be the master registering again, as after a registry restart.
    if (g.master_incarnation == 0) g.master_incarnation = in.incarnation;
    return;
  }
  if (in.incarnation == g.master_incarnation) return;  // the master itself, registering again
  g.master_gone = true;
  const Duration left = g.master_seen + options_.master_slave.promotion_delay - clock_.Now();
  LOG(WARNING) << key.first << "/" << key.second << ": a new process (incarnation "
               << in.incarnation << ") registered at the master's address " << address
               << "; the master of epoch " << g.epoch << " (incarnation " << g.master_incarnation
               << ") is gone: a slave is promoted once its lease has run out, in "
               << std::max<int64_t>(0, ToMillis(left)) << " ms";
}

bool Store::NoteGroupMemberLocked(const LeaseKey& key, const Record& record, bool heartbeat) {
  const GroupKey gk{key.service, record.instance.group};
  Group& g = groups_[gk];  // a new group: epoch 0, elects at once
  const TimePoint now = clock_.Now();
  if (HoldsMaster(g, key.address)) {
    // Rule 4: hearing from the master renews it and cancels a pending promotion.
    g.master_seen = now;
    g.stalled.clear();
    g.commit_floor = std::max(g.commit_floor, record.load.commit_position);
    if (heartbeat && record.load.writes_quiesced && g.switchover) {
      if (!g.switchover->final_position) {
        LOG(INFO) << gk.first << "/" << gk.second << ": master " << key.address
                  << " quiesced at position " << record.load.replication_position;
      }
      g.switchover->final_position = record.load.replication_position;
    }
  }
  return DecideLocked(gk, g, now).kind == Decision::Kind::kPromote;
}

void Store::CommitPromotion(const GroupKey& key, bool wait) {
  std::unique_lock admin_lock(admin_mu_, std::defer_lock);
  if (wait) {
    admin_lock.lock();
  } else if (!admin_lock.try_lock()) {
    return;  // someone is saving; the sweep (every few ms) will try again
  }
  AdminState next;
  Decision decision;
  GroupRecord record;
  {
    std::lock_guard lock(mu_);
    auto it = groups_.find(key);
    if (it == groups_.end()) return;
    Group& g = it->second;
    // Decided again: things may have changed since the caller looked (the master came back).
    decision = DecideLocked(key, g, clock_.Now());
    if (decision.kind != Decision::Kind::kPromote) return;
    g.saving = true;
    record =
        GroupRecord{g.epoch + 1, decision.target, IncarnationLocked(key.first, decision.target)};
    // admin_ cannot change under us: every writer holds admin_mu_.
    next = admin_;
  }
  next.SetGroup(key.first, key.second, record);
  // Durable before visible: no reply or watch may name epoch + 1 before it is on disk, or a
  // crash could hand the same epoch to two masters.
  const Status saved = persister_ != nullptr ? persister_->Save(next) : Status::Ok();

  std::lock_guard lock(mu_);
  Group& g = groups_.at(key);
  g.saving = false;
  if (!saved.ok()) {
    ++g.failed_saves;
    if ((g.failed_saves & (g.failed_saves - 1)) == 0) {
      LOG(ERROR) << key.first << "/" << key.second << ": cannot save epoch " << record.epoch
                 << " (master " << record.master << "), promotion not done, retrying (attempt "
                 << g.failed_saves << "): " << saved;
    }
    return;
  }
  admin_ = std::move(next);
  LOG(INFO) << key.first << "/" << key.second << ": " << record.master << " is master of epoch "
            << record.epoch << " (was " << (g.master.empty() ? "none" : g.master) << ", epoch "
            << g.epoch << "): " << decision.reason;
  g.epoch = record.epoch;
  g.master = record.master;
  g.master_incarnation = record.master_incarnation;
  // The process promoted may have been replaced by a new one at its address while the epoch
  // was being saved: then the role is already gone.
  g.master_gone = record.master_incarnation != 0 &&
                  IncarnationLocked(key.first, record.master) != record.master_incarnation;
  g.master_seen = clock_.Now();  // the new master's promotion delay starts now
  g.stalled.clear();
  if (g.forced_target == record.master) {
    // The administrator accepted the loss: the floor starts over at what the target has.
    g.commit_floor = 0;
  }
  g.forced_target.clear();
  g.failed_saves = 0;
  if (options_.observer != nullptr) {
    options_.observer->OnPromotion(key.first,
                                   g.switchover && g.switchover->target == record.master);
  }
  if (g.switchover) {
    const bool done = g.switchover->target == record.master;
    EndSwitchoverLocked(
        key, g, done ? Switchover::Outcome::kDone : Switchover::Outcome::kAborted,
        done ? "" : record.master + " was promoted instead (" + decision.reason + ")");
  }
  BumpServiceLocked(key.first);
}

void Store::EndSwitchoverLocked(const GroupKey& key, Group& g, Switchover::Outcome outcome,
                                std::string why) {
  std::shared_ptr<Switchover> sw = std::move(g.switchover);
  g.switchover.reset();
  if (!sw) return;
  sw->outcome = outcome;
  if (outcome == Switchover::Outcome::kAborted) {
    sw->why = "switchover of " + key.first + "/" + key.second + " to " + sw->target +
              " abandoned: " + why;
    LOG(WARNING) << sw->why;
  }
  BumpServiceLocked(key.first);
  switchover_cv_.notify_all();
}

std::vector<Store::GroupKey> Store::SweepGroupsLocked(TimePoint now) {
  std::vector<GroupKey> due;
  for (auto& [key, g] : groups_) {
    if (g.switchover && !g.saving && now >= g.switchover->deadline) {
      std::string progress = "the master had not reported writes_quiesced";
      if (g.switchover->final_position) {
        progress = "the master's final position is " +
                   std::to_string(*g.switchover->final_position) +
                   ", the target has not reached it";
      }
      EndSwitchoverLocked(key, g, Switchover::Outcome::kAborted,
                          "not done within " + Ms(options_.master_slave.switchover_timeout) + " (" +
                              progress + "); master " + g.master + " resumes writes");
    }
    const Decision d = DecideLocked(key, g, now);
    if (d.kind == Decision::Kind::kPromote) {
      due.push_back(key);
    } else if (d.kind == Decision::Kind::kNoCandidate && g.stalled != d.reason) {
      g.stalled = d.reason;
      BumpServiceLocked(key.first);
      LOG(WARNING) << key.first << "/" << key.second << ": no master for epoch " << g.epoch + 1
                   << " (" << d.reason << "); retrying on every sweep";
    }
  }
  return due;
}

StatusOr<thrift::GroupState> Store::Promote(const std::string& service, const std::string& address,
                                            bool accept_data_loss) {
  std::unique_lock lock(mu_);
  if (shutdown_) return Error(StatusCode::kUnavailable, "the registry is shutting down");
  auto sit = services_.find(service);
  if (sit == services_.end() || sit->second->instances.empty()) {
    return Error(StatusCode::kNotFound, "unknown service '" + service + "'");
  }
  auto rit = sit->second->instances.find(address);
  if (rit == sit->second->instances.end()) {
    return Error(StatusCode::kNotFound, "service '" + service + "' has no instance " + address);
  }
  const Record& target = rit->second;
  if (target.instance.group.empty()) {
    return Error(StatusCode::kInvalidArgument,
                 service + "/" + address + " is stateless (registered without a group)");
  }
  const GroupKey key{service, target.instance.group};
  const std::string where = service + "/" + key.second;
  Group& g = groups_.at(key);
  if (HoldsMaster(g, address)) {
    return Error(StatusCode::kInvalidArgument, address + " is already the master of " + where +
                                                   " (epoch " + std::to_string(g.epoch) + ")");
  }
  if (!target.up) return Error(StatusCode::kUnavailable, address + " is DOWN");
  const AdminEntry* admin = admin_.Find(service, address);
  if (admin != nullptr && admin->drained) {
    return Error(StatusCode::kUnavailable, address + " is drained");
  }
  const TimePoint now = clock_.Now();
  auto master = sit->second->instances.find(g.master);
  const bool master_lost = g.epoch == 0 || g.master_gone ||
                           master == sit->second->instances.end() || !master->second.up ||
                           now - g.master_seen > options_.master_slave.master_lease;
  if (accept_data_loss) {
    if (!master_lost) {
      return Error(StatusCode::kInvalidArgument,
                   where + " has a live master (" + g.master +
                       "): a planned switchover loses nothing; promote without accepting "
                       "data loss");
    }
    return ForcePromoteLocked(lock, key, address);
  }
  if (master_lost) {
    return Error(StatusCode::kUnavailable,
                 where + " has no live master to hand over from" +
                     (g.master.empty()
                          ? std::string()
                          : " (" + g.master + " last heard " + Ms(now - g.master_seen) + " ago)") +
                     "; a failover chooses the next master");
  }
  if (g.saving) {
    return Error(StatusCode::kUnavailable, "a promotion in " + where + " is being saved");
  }
  if (g.switchover) {
    return Error(StatusCode::kUnavailable,
                 "a switchover of " + where + " to " + g.switchover->target + " is under way");
  }
  auto sw = std::make_shared<Switchover>();
  sw->target = address;
  sw->deadline = now + options_.master_slave.switchover_timeout;
  g.switchover = sw;
  BumpServiceLocked(service);
  LOG(INFO) << where << ": switchover from " << g.master << " to " << address << " (epoch "
            << g.epoch << "): master asked to stop writes";

  // The deadline is on the injected clock and enforced by Sweep; this real-time backstop only
  // bounds the caller's wait if nothing sweeps.
  const auto backstop = std::chrono::steady_clock::now() +
                        options_.master_slave.switchover_timeout + std::chrono::seconds(5);
  while (sw->outcome == Switchover::Outcome::kRunning) {
    Group& current = groups_.at(key);
    const bool expired = shutdown_ || std::chrono::steady_clock::now() >= backstop;
    if (expired && !current.saving && current.switchover == sw) {
      EndSwitchoverLocked(
          key, current, Switchover::Outcome::kAborted,
          shutdown_ ? "the registry is shutting down" : "not done within the switchover timeout");
      break;
    }
    // A save in progress ends with a notify on success; poll briefly for the failure case.
    switchover_cv_.wait_until(
        lock,
        expired ? std::chrono::steady_clock::now() + std::chrono::milliseconds(10) : backstop);
  }
  if (sw->outcome != Switchover::Outcome::kDone) return Error(StatusCode::kUnavailable, sw->why);
  return GroupStateLocked(key, groups_.at(key));
}

StatusOr<thrift::GroupState> Store::ForcePromoteLocked(std::unique_lock<std::mutex>& lock,
                                                       const GroupKey& key,
                                                       const std::string& address) {
  const std::string where = key.first + "/" + key.second;
  Group& g = groups_.at(key);
  const int64_t epoch = g.epoch;
  LOG(WARNING) << where << ": an administrator forces " << address
               << " to become master, accepting the loss of acknowledged writes it lacks "
               << "(commit floor " << g.commit_floor << ", "
               << (g.stalled.empty() ? "not stalled" : g.stalled) << ")";
  g.forced_target = address;
  BumpServiceLocked(key.first);
  // Rule 2 promotes it on a sweep once the old master's lease has surely run out.
  const auto backstop = std::chrono::steady_clock::now() + options_.master_slave.promotion_delay +
                        options_.master_slave.switchover_timeout;
  while (!shutdown_ && groups_.at(key).epoch == epoch &&
         std::chrono::steady_clock::now() < backstop) {
    switchover_cv_.wait_for(lock, std::chrono::milliseconds(10));
  }
  Group& now = groups_.at(key);
  if (now.epoch == epoch) {
    if (now.forced_target == address) now.forced_target.clear();
    return Error(StatusCode::kUnavailable,
                 where + ": " + address + " was not promoted in time" +
                     (now.stalled.empty() ? std::string() : " (" + now.stalled + ")"));
  }
  if (now.master != address) {
    return Error(StatusCode::kUnavailable, where + ": " + now.master +
                                               " was promoted instead (epoch " +
                                               std::to_string(now.epoch) + ")");
  }
  return GroupStateLocked(key, now);
}

}  // namespace fulcrum::registry
