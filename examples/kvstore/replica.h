// Replica: the replication core of the kvstore, with no Thrift in it. One per server; the
// registry decides whether it is the master (fulcrum::RoleState says which).
//
//   fulcrum::RoleState role;
//   kvstore::Replica replica(role, {.self = "127.0.0.1:9000", .min_insync_replicas = 1});
//   KvStatus s = replica.Put("k", "v");   // on the master: logged, replicated, acknowledged
//   // a slave's Follower calls replica.NextFetch / ApplyFetch against the master's Fetch
//
// The master appends each write to its log and applies it, then waits until at least
// min_insync_replicas slaves have fetched past it and its lease is still valid before
// acknowledging. It refuses a write up front (nothing logged) when fewer slaves are in sync
// (fetched recently and caught up). Slaves pull with a long-poll fetch that says where their
// log ends and the epoch of its last entry; when that does not match the master's log (a
// divergent tail, or a position the master has compacted away) the master answers with a
// snapshot, and the slave starts over from it. A slave never takes data from an epoch older
// than its log's last entry (fencing). Reads on the master wait until the value they return
// is acknowledged; reads on a slave return what it has.
//
// Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "fulcrum/clock.h"
#include "fulcrum/role.h"
#include "kv_state.h"
#include "replication_log.h"

namespace kvstore {

enum class KvCode {
  kOk,
  kNotEnoughReplicas,   // refused before anything was logged
  kReplicationTimeout,  // logged, not acknowledged in time: the outcome is unknown
  kNotMaster,           // not the master (or no longer: lease or epoch lost)
  kStaleEpoch,          // a fetch or its answer names an epoch older than the other side's
  kInvalidArgument,
};

struct KvStatus {
  KvCode code = KvCode::kOk;
  std::string message;
  std::string master;  // kNotMaster: the master this replica knows ("" if none)
  bool ok() const { return code == KvCode::kOk; }
};

template <class T>
struct KvResult {
  KvStatus status;
  T value{};
  bool ok() const { return status.ok(); }
};

struct ReplicaOptions {
  std::string self;  // this replica's "host:port": its name in the master's slave table
  int min_insync_replicas = 1;
  // A slave is in sync while it has been caught up with the master's log within this long.
  fulcrum::Duration insync_window = std::chrono::milliseconds(1000);
  // How long a write waits for its slaves (and a master's read for its value's
  // acknowledgement) before failing with kReplicationTimeout.
  fulcrum::Duration replication_timeout = std::chrono::milliseconds(1000);
  size_t log_retention = 100000;  // entries kept for slaves; older ones need a snapshot
  size_t max_fetch_entries = 1000;
  fulcrum::Duration max_fetch_wait = std::chrono::milliseconds(1000);  // long-poll cap
  // The caller admitted each write with RoleState::BeginWrite (the generated server glue
  // does, for every function not annotated fulcrum.read) and holds it until the write
  // returns: the Replica then does not ask RoleState::Writable() again, so a write admitted
  // just before a switchover's stop_writes is finished (the switchover waits for it) instead
  // of failing. The master role and epoch are checked either way, the lease before acking.
  bool writes_admitted_by_caller = false;
};

struct FetchRequest {
  std::string replica;
  int64_t epoch = 0;              // the epoch whose master the caller fetches from
  int64_t from_position = 1;      // the caller's log ends at from_position - 1...
  int64_t prev_entry_epoch = 0;   // ...with an entry of this epoch
  fulcrum::Duration max_wait{0};  // long poll when there is nothing new
};

struct SnapshotData {
  int64_t position = 0;
  int64_t epoch = 0;
  KvPairs data;  // live keys, in no particular order
};

struct FetchResponse {
  int64_t epoch = 0;
  std::vector<Entry> entries;
  std::optional<SnapshotData> snapshot;
};

struct ReplicaInfo {
  fulcrum::InstanceRole role = fulcrum::InstanceRole::kNone;
  int64_t epoch = 0;
  int64_t log_end = 0;
  int64_t last_epoch = 0;
  int64_t commit_position = 0;  // master: acknowledged up to here
  int insync_slaves = 0;
  size_t keys = 0;
};

class Replica {
 public:
  Replica(fulcrum::RoleState& role, ReplicaOptions options,
          const fulcrum::Clock& clock = fulcrum::Clock::Real());
  ~Replica();
  Replica(const Replica&) = delete;
  Replica& operator=(const Replica&) = delete;

  // ---- Clients (writes on the master only). ----
  KvResult<std::optional<std::string>> Get(const std::string& key);
  KvStatus Put(const std::string& key, const std::string& value);
  KvResult<bool> Remove(const std::string& key);  // whether the key existed
  // Sets key to value if its value is `expected` (nullopt: if it has none).
  KvResult<bool> CompareAndSet(const std::string& key, const std::optional<std::string>& expected,
                               const std::string& value);

  // ---- Master side of replication. Blocks up to min(r.max_wait, max_fetch_wait). ----
  KvResult<FetchResponse> Fetch(const FetchRequest& r);

  // ---- Slave side (the Follower drives these). ----
  FetchRequest NextFetch(int64_t epoch, fulcrum::Duration max_wait) const;
  // Applies the master's answer to `sent`; refuses (changing nothing) data from an epoch
  // older than the log's, an answer that no longer fits the log, or malformed entries.
  // Takes `r` by value: a snapshot is moved into the state, not copied.
  KvStatus ApplyFetch(const FetchRequest& sent, FetchResponse r);

  // EncodePosition(last epoch, log end): what the registry is told.
  int64_t position() const;
  ReplicaInfo Info() const;
  // Wakes every waiter; later calls fail with kNotMaster.
  void Shutdown();
  // This replica's "host:port" once known (a server on port 0 learns it after binding).
  void SetSelf(std::string self);

 private:
  struct SlaveProgress {
    int64_t match = -1;  // its log matches ours up to here; -1: unknown (resyncing)
    fulcrum::TimePoint caught_up_at{};
    int parked = 0;                 // fetches waiting for new entries: caught up meanwhile
    int64_t end_at_last_reply = 0;  // our log end when we last answered it...
    fulcrum::TimePoint last_reply_at{};
  };

  // Under mu_. Admits a write (master, writable, enough slaves in sync): its epoch in *epoch.
  // A master that took over less than insync_window ago first gives its slaves that long to
  // connect (they learn of it from the registry at the same time as clients do).
  KvStatus AdmitWriteLocked(std::unique_lock<std::mutex>& lock, int64_t* epoch);
  // Under mu_: the master of `epoch` now, or an error. Resets the slave table on a new epoch.
  KvStatus CheckMasterLocked(int64_t* epoch);
  int64_t AppendLocked(OpType op, const std::string& key, const std::string& value, int64_t epoch);
  // Waits until `position` is acknowledged by enough slaves, then checks the lease.
  KvStatus WaitAcknowledgedLocked(std::unique_lock<std::mutex>& lock, int64_t position,
                                  int64_t epoch);
  int InSyncLocked() const;
  int64_t CommitLocked() const;
  void ReportPositionLocked();
  // Master: tells RoleState the commit position (for the registry's promotion floor).
  void ReportCommitLocked();
  void OnRoleChange(const fulcrum::RoleInfo& info);
  KvStatus NotMasterLocked(const std::string& why) const;

  // Lets the RoleState listener (which cannot be unregistered) outlive this object.
  struct Hook {
    std::mutex mu;
    Replica* replica = nullptr;
  };

  fulcrum::RoleState& role_;
  ReplicaOptions options_;  // self is set once, under mu_
  const fulcrum::Clock& clock_;

  mutable std::mutex mu_;
  std::condition_variable appended_cv_;  // the log grew, or the role changed
  std::condition_variable matched_cv_;   // a slave's match moved, or the role changed
  ReplicationLog log_;
  KvState state_;
  int64_t master_epoch_ = 0;  // 0: not acting as master
  fulcrum::TimePoint master_since_{};
  std::unordered_map<std::string, SlaveProgress> slaves_;
  bool shutdown_ = false;
  std::shared_ptr<Hook> hook_;
};

}  // namespace kvstore
