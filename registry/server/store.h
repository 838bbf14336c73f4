// Store: the registry's state. Services -> instances with a version per service; liveness as
// soft state driven by heartbeats; the failure detector; long-poll watches; the durable
// admin state (weights, drains), persisted before an admin call returns; and master-slave
// groups (docs/master-slave.md): one master per (service, group) under a lease, promotion
// when it is lost, planned switchover. The rules are in groups.h; this class applies them.
//
//   fulcrum::registry::Store store(clock, {.heartbeat_timeout = 1500ms}, &admin_file);
//   StatusOr<thrift::Lease> lease = store.Register(instance);
//   store.Heartbeat(lease->id, load);
//   store.Sweep();                                   // the daemon calls this every few ms
//   thrift::WatchResult r = store.Watch("calc", known_version, 30s);
//
// Failure detection is a fixed timeout: an instance whose last heartbeat is older than
// heartbeat_timeout is DOWN at the next Sweep (the daemon sweeps every 20 ms, so watchers hear
// within ~20 ms of the timeout). We chose not to add a phi-accrual detector: the issue's
// contract is a hard bound ("down after the timeout, watchers within 100 ms"), which phi
// cannot promise because it adapts its threshold to observed jitter; clients already have
// per-call passive detection (outlier ejection) for the gray failures phi would catch.
// DOWN instances stay listed (so `fulcrumctl` shows them) until down_ttl, then disappear.
//
// Liveness uses the injected Clock (tests use FakeClock). A watch's max wait is a real-time
// condition-variable wait: it bounds how long a caller's thread is held, not liveness.
//
// Master-slave durability: a new epoch and its master are saved (fsync) before anything can
// see them. The save runs under admin_mu_ but not mu_, with the group marked `saving`: its
// old master is answered without a lease meanwhile, and every other heartbeat, lookup and
// watch goes on (they see the old epoch until the save returned). Promotions are evaluated
// by Sweep (blocking on admin_mu_) and by heartbeats (only when admin_mu_ is free at once, so
// a heartbeat never queues behind someone else's fsync).
//
// Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "fulcrum/clock.h"
#include "fulcrum/idl/Registry.h"
#include "fulcrum/random.h"
#include "fulcrum/status.h"
#include "server/admin_state.h"
#include "server/groups.h"
#include "server/store_observer.h"

namespace fulcrum::registry {

namespace thrift = ::fulcrum::registry::thrift;

struct StoreOptions {
  Duration heartbeat_interval = std::chrono::milliseconds(500);
  Duration heartbeat_timeout = std::chrono::milliseconds(1500);
  // How long a DOWN instance stays listed before it is forgotten.
  Duration down_ttl = std::chrono::minutes(5);
  // Versions start here; the daemon passes the wall clock in microseconds so that versions
  // keep increasing across restarts.
  int64_t version_base = 0;
  // Limits on what one registration may carry (bad input gets a clear error).
  size_t max_name_bytes = 256;
  size_t max_metadata_entries = 64;
  size_t max_metadata_bytes = 4096;
  // Master-slave groups: their heartbeat interval, lease, promotion delay, switchover timeout.
  GroupOptions master_slave;
  // Told of DOWN detections, promotions and watch deliveries (metrics); may be null.
  StoreObserver* observer = nullptr;
};

// Where admin state goes; AdminStateFile in the daemon, nothing (memory only) in some tests.
class AdminPersister {
 public:
  virtual ~AdminPersister() = default;
  virtual Status Save(const AdminState& state) = 0;
};

class FileAdminPersister final : public AdminPersister {
 public:
  explicit FileAdminPersister(AdminStateFile file) : file_(std::move(file)) {}
  Status Save(const AdminState& state) override { return file_.Save(state); }

 private:
  AdminStateFile file_;
};

class Store {
 public:
  // `persister` may be null (admin state kept in memory only) and must outlive the store.
  Store(const Clock& clock, StoreOptions options, AdminState initial_admin = {},
        AdminPersister* persister = nullptr);
  ~Store();

  // kInvalidArgument naming the field for a bad instance.
  StatusOr<thrift::Lease> Register(const thrift::Instance& instance);
  // Unknown lease: directives.reregister = true.
  thrift::Directives Heartbeat(int64_t lease, const thrift::LoadReport& load);
  // Unknown lease: OK (deregistering twice is harmless).
  void Deregister(int64_t lease);

  thrift::ServiceSnapshot Lookup(const std::string& service) const;
  // Returns once the service's version differs from `known_version`, or after `max_wait`
  // (changed = false, and the snapshot holds only name and version), or at Shutdown().
  thrift::WatchResult Watch(const std::string& service, int64_t known_version,
                            std::chrono::milliseconds max_wait);
  std::vector<thrift::ServiceSummary> ListServices() const;

  // Admin. kNotFound for an instance that is neither registered nor has admin state;
  // kInternal when the state cannot be persisted (then nothing changed).
  Status SetWeight(const std::string& service, const std::string& address, int32_t weight);
  Status SetDrained(const std::string& service, const std::string& address, bool drained);
  Status Remove(const std::string& service, const std::string& address);

  // Planned switchover to `address` (rule 5): blocks until it is master of a new epoch
  // (returns the group), or until the switchover timeout (kUnavailable; the master resumes
  // writes). kNotFound for an unknown service/instance, kInvalidArgument for a stateless
  // instance or the master itself, kUnavailable when the target is DOWN or drained, the group
  // has no live master, or another switchover is under way.
  // accept_data_loss: the group's master is lost and no slave has its commit position
  // (GroupState.stalled): promote `address` anyway once the old lease has run out.
  StatusOr<thrift::GroupState> Promote(const std::string& service, const std::string& address,
                                       bool accept_data_loss = false);
  // The group as Lookup shows it; kNotFound if unknown.
  StatusOr<thrift::GroupState> GetGroup(const std::string& service, const std::string& group) const;

  // Marks instances whose heartbeats stopped DOWN and forgets those down for longer than
  // down_ttl; wakes the watchers of every service that changed; abandons timed-out
  // switchovers and promotes where the rules say so. Returns how many instances changed state.
  int Sweep();

  // Wakes every watcher (they return changed = false) and makes new watches return at once.
  void Shutdown();

  AdminState admin_state() const;
  int64_t watchers() const { return watchers_.load(); }
  size_t instance_count() const;
  const StoreOptions& options() const { return options_; }

  static std::string Address(const std::string& host, int32_t port);

 private:
  struct Record;
  // Records in order of last heartbeat, oldest first: one list of the UP ones and one of the
  // DOWN ones. A heartbeat moves its record to the back, so Sweep looks only at the front and
  // costs O(changes), not O(instances) (with 10,000 instances, walking every record 50 times a
  // second cost more CPU than the heartbeats themselves).
  using AgeList = std::list<Record*>;
  struct Record {
    thrift::Instance instance;
    int64_t lease = 0;
    TimePoint last_heartbeat;
    bool up = true;
    thrift::LoadReport load;
    // A heartbeat was received since registration (the load, and so the position, is real).
    bool reported = false;
    TimePoint last_report;
    std::string service;  // for Sweep, which walks the age lists, not the services
    std::string address;
    AgeList::iterator age;  // in up_by_age_ or down_by_age_, per `up`
  };
  struct ServiceEntry {
    int64_t version = 0;
    std::map<std::string, Record> instances;  // by address
    std::condition_variable changed;
    int waiters = 0;
    // The snapshot of `version`, built by the first watcher that needs it and shared by the
    // rest: a change wakes every watcher of the service at once, and building the list once
    // instead of once each keeps them from queueing behind each other on mu_.
    std::shared_ptr<const thrift::ServiceSnapshot> watch_snapshot;
    TimePoint changed_at;  // when `version` last changed (StoreObserver::OnWatchDelivered)
  };
  struct LeaseKey {
    std::string service;
    std::string address;
  };
  using GroupKey = std::pair<std::string, std::string>;  // (service, group)

  ServiceEntry& EntryLocked(const std::string& service);
  void BumpLocked(ServiceEntry& entry);
  void MaybeEraseLocked(const std::string& service);
  thrift::ServiceSnapshot SnapshotLocked(const std::string& service,
                                         const ServiceEntry* entry) const;
  bool KnownLocked(const std::string& service, const std::string& address) const;
  // Age-list upkeep; each needs mu_.
  void TouchLocked(Record& record, TimePoint now);  // heartbeat: to the back of the UP list
  void UnlinkLocked(Record& record);                // before erasing the record
  Status UpdateAdmin(const std::string& service, const std::string& address,
                     const std::function<void(AdminEntry&)>& change, bool must_exist);

  // Master-slave (store_groups.cc).
  void BumpServiceLocked(const std::string& service);
  StatusOr<thrift::GroupState> ForcePromoteLocked(std::unique_lock<std::mutex>& lock,
                                                  const GroupKey& key, const std::string& address);
  thrift::Directives DirectivesLocked(const LeaseKey& key, const Record& record) const;
  void FillRoleLocked(const std::string& service, const std::string& address, const Record& record,
                      thrift::InstanceState& state) const;
  std::vector<thrift::GroupState> GroupStatesLocked(const std::string& service) const;
  thrift::GroupState GroupStateLocked(const GroupKey& key, const Group& group) const;
  std::vector<Member> MembersLocked(const GroupKey& key) const;
  Decision DecideLocked(const GroupKey& key, Group& group, TimePoint now);
  // Heard from `address` (registration or heartbeat); true if a promotion may be due now.
  bool NoteGroupMemberLocked(const LeaseKey& key, const Record& record, bool heartbeat);
  // Register at a group member's address: a different incarnation at the master's address
  // means the master is gone (Group::master_gone). Needs mu_; before the record is replaced.
  void NoteIncarnationLocked(const GroupKey& key, const std::string& address,
                             const thrift::Instance& in);
  // The incarnation registered at `address`, 0 if none. Needs mu_.
  int64_t IncarnationLocked(const std::string& service, const std::string& address) const;
  // Saves epoch + 1 and applies it if the rules still say promote. `wait`: block for
  // admin_mu_; otherwise give up at once when someone else holds it (the sweep retries).
  void CommitPromotion(const GroupKey& key, bool wait);
  void EndSwitchoverLocked(const GroupKey& key, Group& group, Switchover::Outcome outcome,
                           std::string why);
  std::vector<GroupKey> SweepGroupsLocked(TimePoint now);

  const Clock& clock_;
  const StoreOptions options_;
  AdminPersister* const persister_;

  // Serialises admin changes so the file always holds the latest state, without holding
  // mu_ (and stalling heartbeats) during fsync.
  std::mutex admin_mu_;

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<ServiceEntry>> services_;
  std::unordered_map<int64_t, LeaseKey> leases_;
  AgeList up_by_age_;
  AgeList down_by_age_;
  AdminState admin_;
  int64_t last_version_;
  bool shutdown_ = false;
  std::atomic<int64_t> watchers_{0};
  // Never erased: an epoch, once given, is kept (and is in admin_ too).
  std::map<GroupKey, Group> groups_;
  std::condition_variable switchover_cv_;
};

}  // namespace fulcrum::registry
