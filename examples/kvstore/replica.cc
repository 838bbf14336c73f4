#include "replica.h"

#include <glog/logging.h>

#include <algorithm>
#include <functional>

namespace kvstore {
namespace {

using fulcrum::InstanceRole;

KvStatus Error(KvCode code, std::string message) { return {code, std::move(message), {}}; }

}  // namespace

Replica::Replica(fulcrum::RoleState& role, ReplicaOptions options, const fulcrum::Clock& clock)
    : role_(role), options_(std::move(options)), clock_(clock), hook_(std::make_shared<Hook>()) {
  hook_->replica = this;
  role_.OnChange([hook = hook_](const fulcrum::RoleInfo& info) {
    std::lock_guard lock(hook->mu);
    if (hook->replica != nullptr) hook->replica->OnRoleChange(info);
  });
  std::lock_guard lock(mu_);
  ReportPositionLocked();
}

Replica::~Replica() {
  Shutdown();
  std::lock_guard lock(hook_->mu);
  hook_->replica = nullptr;
}

void Replica::Shutdown() {
  std::lock_guard lock(mu_);
  shutdown_ = true;
  appended_cv_.notify_all();
  matched_cv_.notify_all();
}

void Replica::SetSelf(std::string self) {
  std::lock_guard lock(mu_);
  options_.self = std::move(self);
}

void Replica::OnRoleChange(const fulcrum::RoleInfo& info) {
  std::lock_guard lock(mu_);
  if (info.role == InstanceRole::kMaster) {
    int64_t epoch = 0;
    CheckMasterLocked(&epoch);  // takes over now, so the grace for slaves starts now
  } else {
    // Writers waiting for acknowledgements and long polls of the old epoch give up.
    master_epoch_ = 0;
    slaves_.clear();
  }
  appended_cv_.notify_all();
  matched_cv_.notify_all();
}

KvStatus Replica::NotMasterLocked(const std::string& why) const {
  const fulcrum::RoleInfo info = role_.info();
  KvStatus s = Error(KvCode::kNotMaster, why);
  if (info.role != InstanceRole::kMaster) s.master = info.master_address;
  return s;
}

KvStatus Replica::CheckMasterLocked(int64_t* epoch) {
  if (shutdown_) return NotMasterLocked("shutting down");
  const fulcrum::RoleInfo info = role_.info();
  if (info.role != InstanceRole::kMaster) {
    return NotMasterLocked("not the master (epoch " + std::to_string(info.epoch) + ")");
  }
  if (info.epoch != master_epoch_) {
    LOG(INFO) << options_.self << ": master of epoch " << info.epoch << " from log end "
              << log_.end() << " (last entry of epoch " << log_.last_epoch() << ")";
    master_epoch_ = info.epoch;
    master_since_ = clock_.Now();
    slaves_.clear();
  }
  *epoch = info.epoch;
  return {};
}

KvStatus Replica::AdmitWriteLocked(std::unique_lock<std::mutex>& lock, int64_t* epoch) {
  KvStatus s = CheckMasterLocked(epoch);
  if (!s.ok()) return s;
  if (!options_.writes_admitted_by_caller && !role_.Writable()) {
    return NotMasterLocked("not admitting writes (lease or switchover)");
  }
  const auto give_up = std::chrono::steady_clock::now() + options_.insync_window;
  while (InSyncLocked() < options_.min_insync_replicas && !shutdown_ && master_epoch_ == *epoch &&
         clock_.Now() - master_since_ < options_.insync_window &&
         std::chrono::steady_clock::now() < give_up) {
    matched_cv_.wait_for(lock, std::chrono::milliseconds(5));
  }
  if (master_epoch_ != *epoch) return NotMasterLocked("lost the master role");
  const int insync = InSyncLocked();
  if (insync < options_.min_insync_replicas) {
    return Error(KvCode::kNotEnoughReplicas,
                 std::to_string(insync) + " slave(s) in sync, " +
                     std::to_string(options_.min_insync_replicas) +
                     " required (--min_insync_replicas): write refused, nothing was written");
  }
  return {};
}

int Replica::InSyncLocked() const {
  const fulcrum::TimePoint now = clock_.Now();
  int n = 0;
  for (const auto& [name, s] : slaves_) {
    if (s.match < 0) continue;
    if (s.parked > 0 || now - s.caught_up_at <= options_.insync_window) ++n;
  }
  return n;
}

int64_t Replica::CommitLocked() const {
  const size_t k = static_cast<size_t>(std::max(0, options_.min_insync_replicas));
  if (k == 0) return log_.end();
  std::vector<int64_t> matches;
  for (const auto& [name, s] : slaves_) matches.push_back(s.match);
  if (matches.size() < k) return 0;
  std::nth_element(matches.begin(), matches.begin() + static_cast<ptrdiff_t>(k - 1), matches.end(),
                   std::greater<>());
  return std::min(matches[k - 1], log_.end());
}

void Replica::ReportPositionLocked() {
  role_.set_replication_position(EncodePosition(log_.last_epoch(), log_.end()));
  ReportCommitLocked();
}

void Replica::ReportCommitLocked() {
  // With no slave required a write is acknowledged on the master alone: a failover loses it
  // by the configuration's choice, and the registry must not wait for it.
  if (master_epoch_ == 0 || options_.min_insync_replicas <= 0) return;
  const int64_t commit = CommitLocked();
  const std::optional<int64_t> epoch = log_.EpochAt(commit);
  if (commit > 0 && epoch) role_.set_commit_position(EncodePosition(*epoch, commit));
}

int64_t Replica::AppendLocked(OpType op, const std::string& key, const std::string& value,
                              int64_t epoch) {
  Entry e{log_.end() + 1, epoch, op, key, value};
  state_.Apply(e);
  const int64_t position = e.position;
  CHECK(log_.Append(std::move(e)));
  if (log_.size() > options_.log_retention) {
    log_.Compact(options_.log_retention);
    state_.ForgetTombstonesUpTo(std::min(log_.base_position(), CommitLocked()));
  }
  ReportPositionLocked();
  appended_cv_.notify_all();
  return position;
}

KvStatus Replica::WaitAcknowledgedLocked(std::unique_lock<std::mutex>& lock, int64_t position,
                                         int64_t epoch) {
  const auto deadline = std::chrono::steady_clock::now() + options_.replication_timeout;
  while (CommitLocked() < position) {
    if (shutdown_ || master_epoch_ != epoch) {
      return NotMasterLocked("lost the master role before position " + std::to_string(position) +
                             " was acknowledged (outcome unknown)");
    }
    if (matched_cv_.wait_until(lock, deadline) == std::cv_status::timeout &&
        CommitLocked() < position) {
      return Error(KvCode::kReplicationTimeout, "position " + std::to_string(position) +
                                                    " not acknowledged by " +
                                                    std::to_string(options_.min_insync_replicas) +
                                                    " slave(s) in time (outcome unknown)");
    }
  }
  // The write is on enough slaves; acknowledging it is safe only while no one else can have
  // been promoted, i.e. while our lease runs (docs/master-slave.md rule 1).
  if (master_epoch_ != epoch || !role_.LeaseValid() || role_.epoch() != epoch) {
    return NotMasterLocked("lease lost before position " + std::to_string(position) +
                           " was acknowledged (outcome unknown)");
  }
  return {};
}

KvResult<std::optional<std::string>> Replica::Get(const std::string& key) {
  std::unique_lock lock(mu_);
  KvResult<std::optional<std::string>> out;
  if (shutdown_) {
    out.status = NotMasterLocked("shutting down");
    return out;
  }
  const Value* v = state_.Find(key);
  if (v != nullptr && v->present) out.value = v->value;
  if (role_.info().role != InstanceRole::kMaster) return out;  // a slave answers what it has
  // The master only reveals a value once it is acknowledged, so a read never returns a write
  // that a failover could still lose.
  int64_t epoch = 0;
  out.status = CheckMasterLocked(&epoch);
  if (out.status.ok()) out.status = WaitAcknowledgedLocked(lock, v ? v->position : 0, epoch);
  return out;
}

KvStatus Replica::Put(const std::string& key, const std::string& value) {
  std::unique_lock lock(mu_);
  int64_t epoch = 0;
  KvStatus s = AdmitWriteLocked(lock, &epoch);
  if (!s.ok()) return s;
  return WaitAcknowledgedLocked(lock, AppendLocked(OpType::kPut, key, value, epoch), epoch);
}

KvResult<bool> Replica::Remove(const std::string& key) {
  std::unique_lock lock(mu_);
  KvResult<bool> out;
  int64_t epoch = 0;
  out.status = AdmitWriteLocked(lock, &epoch);
  if (!out.status.ok()) return out;
  const Value* v = state_.Find(key);
  if (v == nullptr || !v->present) {
    // Nothing to remove; answer once the absence itself is acknowledged.
    out.status = WaitAcknowledgedLocked(lock, v ? v->position : 0, epoch);
    return out;
  }
  out.value = true;
  out.status = WaitAcknowledgedLocked(lock, AppendLocked(OpType::kRemove, key, "", epoch), epoch);
  return out;
}

KvResult<bool> Replica::CompareAndSet(const std::string& key,
                                      const std::optional<std::string>& expected,
                                      const std::string& value) {
  std::unique_lock lock(mu_);
  KvResult<bool> out;
  int64_t epoch = 0;
  out.status = AdmitWriteLocked(lock, &epoch);
  if (!out.status.ok()) return out;
  const Value* v = state_.Find(key);
  const bool present = v != nullptr && v->present;
  const bool matches = expected ? (present && v->value == *expected) : !present;
  if (!matches) {
    out.status = WaitAcknowledgedLocked(lock, v ? v->position : 0, epoch);
    return out;
  }
  out.value = true;
  out.status = WaitAcknowledgedLocked(lock, AppendLocked(OpType::kPut, key, value, epoch), epoch);
  return out;
}

KvResult<FetchResponse> Replica::Fetch(const FetchRequest& r) {
  KvResult<FetchResponse> out;
  if (r.replica.empty() || r.from_position < 1 || r.prev_entry_epoch < 0) {
    out.status = Error(KvCode::kInvalidArgument,
                       "fetch needs a replica name, from_position >= 1 and prev_entry_epoch >= 0");
    return out;
  }
  std::unique_lock lock(mu_);
  int64_t epoch = 0;
  out.status = CheckMasterLocked(&epoch);
  if (!out.status.ok()) return out;
  if (r.epoch < epoch) {
    out.status =
        Error(KvCode::kStaleEpoch, "fetch for epoch " + std::to_string(r.epoch) +
                                       " from the master of epoch " + std::to_string(epoch));
    return out;
  }
  if (r.epoch > epoch) {
    out.status = NotMasterLocked("fetch for epoch " + std::to_string(r.epoch) +
                                 ", newer than this master's " + std::to_string(epoch));
    return out;
  }
  out.value.epoch = epoch;
  const fulcrum::TimePoint now = clock_.Now();
  const int64_t prev = r.from_position - 1;
  const std::optional<int64_t> prev_epoch = log_.EpochAt(prev);
  if (!prev_epoch || *prev_epoch != r.prev_entry_epoch) {
    // A divergent tail, a log longer than ours, or a position compacted away: start over.
    SlaveProgress& s = slaves_[r.replica];
    s.match = -1;
    LOG(INFO) << options_.self << ": " << r.replica << " ends at " << prev << " (epoch "
              << r.prev_entry_epoch << "), which does not match this log (" << log_.base_position()
              << ".." << log_.end() << "): sending a snapshot at " << log_.end();
    out.value.snapshot = SnapshotData{log_.end(), log_.last_epoch(), state_.Snapshot()};
    return out;
  }
  {
    SlaveProgress& s = slaves_[r.replica];
    s.match = prev;
    ReportCommitLocked();
    // Caught up now, or caught up with the log as it was when we last answered it.
    if (prev >= log_.end()) {
      s.caught_up_at = now;
    } else if (prev >= s.end_at_last_reply && s.last_reply_at > s.caught_up_at) {
      s.caught_up_at = s.last_reply_at;
    }
  }
  matched_cv_.notify_all();
  if (prev >= log_.end()) {
    const fulcrum::Duration wait = std::min(r.max_wait, options_.max_fetch_wait);
    slaves_[r.replica].parked++;
    appended_cv_.wait_for(lock, wait,
                          [&] { return log_.end() > prev || shutdown_ || master_epoch_ != epoch; });
    if (master_epoch_ != epoch) {
      out.status = NotMasterLocked("lost the master role during the fetch");
      return out;
    }
    SlaveProgress& s = slaves_[r.replica];  // the table may have been rebuilt
    if (s.parked > 0) s.parked--;
    if (log_.end() == prev) s.caught_up_at = clock_.Now();
  }
  out.value.entries = log_.Read(prev + 1, options_.max_fetch_entries);
  SlaveProgress& s = slaves_[r.replica];
  s.end_at_last_reply = log_.end();
  s.last_reply_at = clock_.Now();
  return out;
}

FetchRequest Replica::NextFetch(int64_t epoch, fulcrum::Duration max_wait) const {
  std::lock_guard lock(mu_);
  return FetchRequest{options_.self, epoch, log_.end() + 1, log_.last_epoch(), max_wait};
}

KvStatus Replica::ApplyFetch(const FetchRequest& sent, FetchResponse r) {
  std::lock_guard lock(mu_);
  if (shutdown_) return Error(KvCode::kNotMaster, "shutting down");
  const fulcrum::RoleInfo info = role_.info();
  if (info.role == InstanceRole::kMaster) {
    return Error(KvCode::kStaleEpoch, "became the master meanwhile: answer dropped");
  }
  // Fencing: nothing from an epoch older than what this replica already holds or knows.
  const int64_t known = std::max(log_.last_epoch(), info.epoch);
  if (r.epoch != sent.epoch || r.epoch < known) {
    return Error(KvCode::kStaleEpoch, "answer from epoch " + std::to_string(r.epoch) +
                                          " refused: epoch " + std::to_string(known) + " is known");
  }
  int64_t end = log_.end();
  int64_t last_epoch = log_.last_epoch();
  if (r.snapshot) {
    if (r.snapshot->epoch > r.epoch || r.snapshot->position < 0) {
      return Error(KvCode::kInvalidArgument, "malformed snapshot");
    }
    end = r.snapshot->position;
    last_epoch = r.snapshot->epoch;
  } else if (sent.from_position != end + 1) {
    return Error(KvCode::kStaleEpoch, "the log changed since the fetch was sent");
  }
  // Check every entry before applying any, so that a bad answer changes nothing.
  for (const Entry& e : r.entries) {
    if (e.position != end + 1 || e.epoch < last_epoch || e.epoch > r.epoch) {
      return Error(KvCode::kInvalidArgument, "entry at " + std::to_string(e.position) + " (epoch " +
                                                 std::to_string(e.epoch) + ") does not follow " +
                                                 std::to_string(end));
    }
    end = e.position;
    last_epoch = e.epoch;
  }
  if (r.snapshot) {
    LOG(INFO) << options_.self << ": resyncing from the master's snapshot at "
              << r.snapshot->position << " (" << r.snapshot->data.size() << " keys), epoch "
              << r.epoch;
    state_.Load(std::move(r.snapshot->data), r.snapshot->position);
    log_.Reset(r.snapshot->position, r.snapshot->epoch);
  }
  for (const Entry& e : r.entries) {
    state_.Apply(e);
    log_.Append(e);
  }
  if (log_.size() > options_.log_retention) {
    log_.Compact(options_.log_retention);
    state_.ForgetTombstonesUpTo(log_.base_position());
  }
  ReportPositionLocked();
  return {};
}

int64_t Replica::position() const {
  std::lock_guard lock(mu_);
  return EncodePosition(log_.last_epoch(), log_.end());
}

ReplicaInfo Replica::Info() const {
  std::lock_guard lock(mu_);
  const fulcrum::RoleInfo role = role_.info();
  ReplicaInfo out;
  out.role = role.role;
  out.epoch = role.epoch;
  out.log_end = log_.end();
  out.last_epoch = log_.last_epoch();
  out.commit_position = master_epoch_ != 0 ? CommitLocked() : 0;
  out.insync_slaves = master_epoch_ != 0 ? InSyncLocked() : 0;
  out.keys = state_.live_keys();
  return out;
}

}  // namespace kvstore
