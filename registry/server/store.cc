#include "server/store.h"

#include <glog/logging.h>

#include <algorithm>

namespace fulcrum::registry {
namespace {

int32_t ToMillis(Duration d) {
  return static_cast<int32_t>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

Status Invalid(std::string message) {
  return Status::Error(StatusCode::kInvalidArgument, std::move(message));
}

}  // namespace

Store::Store(const Clock& clock, StoreOptions options, AdminState initial_admin,
             AdminPersister* persister)
    : clock_(clock),
      options_(options),
      persister_(persister),
      admin_(std::move(initial_admin)),
      last_version_(options.version_base) {
  // Rule 3: a durable master keeps its role if it heartbeats within the promotion delay of
  // this moment; otherwise rule 2 applies, counted from here.
  const TimePoint now = clock_.Now();
  for (const auto& [service, by_group] : admin_.groups()) {
    for (const auto& [name, record] : by_group) {
      Group& g = groups_[GroupKey{service, name}];
      g.epoch = record.epoch;
      g.master = record.master;
      g.master_incarnation = record.master_incarnation;
      g.master_seen = now;
    }
  }
}

Store::~Store() { Shutdown(); }

std::string Store::Address(const std::string& host, int32_t port) {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Store::ServiceEntry& Store::EntryLocked(const std::string& service) {
  auto& slot = services_[service];
  if (!slot) slot = std::make_unique<ServiceEntry>();
  return *slot;
}

void Store::BumpLocked(ServiceEntry& entry) {
  entry.version = ++last_version_;
  entry.changed_at = clock_.Now();
  entry.watch_snapshot.reset();
  entry.changed.notify_all();
}

void Store::MaybeEraseLocked(const std::string& service) {
  auto it = services_.find(service);
  if (it != services_.end() && it->second->instances.empty() && it->second->waiters == 0) {
    services_.erase(it);
  }
}

StatusOr<thrift::Lease> Store::Register(const thrift::Instance& in) {
  if (in.service_name.empty()) return Invalid("service name is empty");
  if (in.service_name.size() > options_.max_name_bytes) {
    return Invalid("service name is longer than " + std::to_string(options_.max_name_bytes) +
                   " bytes");
  }
  if (in.host.empty()) return Invalid("host is empty");
  if (in.host.size() > options_.max_name_bytes) return Invalid("host name is too long");
  if (in.port <= 0 || in.port > 65535) {
    return Invalid("port " + std::to_string(in.port) + " is not in 1..65535");
  }
  if (in.weight < 0) return Invalid("weight " + std::to_string(in.weight) + " is negative");
  if (in.zone.size() > options_.max_name_bytes) return Invalid("zone is too long");
  size_t metadata_bytes = 0;
  for (const auto& [k, v] : in.metadata) metadata_bytes += k.size() + v.size();
  if (in.metadata.size() > options_.max_metadata_entries ||
      metadata_bytes > options_.max_metadata_bytes) {
    return Invalid("metadata is larger than " + std::to_string(options_.max_metadata_entries) +
                   " entries / " + std::to_string(options_.max_metadata_bytes) + " bytes");
  }

  if (in.group.size() > options_.max_name_bytes) return Invalid("group name is too long");

  const std::string address = Address(in.host, in.port);
  std::unique_lock lock(mu_);
  int64_t id = 0;
  do {
    id = static_cast<int64_t>(Random::ThreadLocal().Next() >> 1);
  } while (id == 0 || leases_.count(id) != 0);

  ServiceEntry& entry = EntryLocked(in.service_name);
  auto [slot, added] = entry.instances.try_emplace(address);
  Record& record = slot->second;
  if (added) {
    record.service = in.service_name;
    record.address = address;
    record.age = up_by_age_.insert(up_by_age_.end(), &record);
  }
  if (record.lease != 0) leases_.erase(record.lease);  // the server restarted: new lease wins
  if (!in.group.empty()) NoteIncarnationLocked(GroupKey{in.service_name, in.group}, address, in);
  record.instance = in;
  record.lease = id;
  TouchLocked(record, clock_.Now());
  record.load = thrift::LoadReport();
  record.reported = false;
  leases_[id] = LeaseKey{in.service_name, address};
  BumpLocked(entry);

  thrift::Lease lease;
  lease.id = id;
  lease.heartbeat_interval_ms = ToMillis(
      in.group.empty() ? options_.heartbeat_interval : options_.master_slave.heartbeat_interval);
  lease.heartbeat_timeout_ms = ToMillis(options_.heartbeat_timeout);
  if (!in.group.empty() && NoteGroupMemberLocked(leases_[id], record, /*heartbeat=*/false)) {
    lock.unlock();
    CommitPromotion(GroupKey{in.service_name, in.group}, /*wait=*/true);  // a first master
  }
  return lease;
}

thrift::Directives Store::Heartbeat(int64_t lease, const thrift::LoadReport& load) {
  std::unique_lock lock(mu_);
  auto it = leases_.find(lease);
  if (it == leases_.end()) {
    thrift::Directives d;
    d.heartbeat_interval_ms = ToMillis(options_.heartbeat_interval);
    d.reregister = true;
    return d;
  }
  ServiceEntry& entry = *services_.at(it->second.service);
  Record& record = entry.instances.at(it->second.address);
  const TimePoint now = clock_.Now();
  const bool was_down = !record.up;
  TouchLocked(record, now);
  record.load = load;
  record.reported = true;
  record.last_report = now;
  if (was_down) BumpLocked(entry);
  if (record.instance.group.empty() || !NoteGroupMemberLocked(it->second, record, true)) {
    return DirectivesLocked(it->second, record);
  }
  // A slave's fresh report (or the switchover target catching up) may complete a promotion:
  // do it now rather than at the next sweep, and answer with its outcome.
  const GroupKey group{it->second.service, record.instance.group};
  lock.unlock();
  CommitPromotion(group, /*wait=*/false);
  lock.lock();
  it = leases_.find(lease);
  if (it == leases_.end()) {  // deregistered or removed meanwhile
    thrift::Directives d;
    d.heartbeat_interval_ms = ToMillis(options_.heartbeat_interval);
    d.reregister = true;
    return d;
  }
  return DirectivesLocked(it->second,
                          services_.at(it->second.service)->instances.at(it->second.address));
}

void Store::Deregister(int64_t lease) {
  std::lock_guard lock(mu_);
  auto it = leases_.find(lease);
  if (it == leases_.end()) return;
  const LeaseKey key = it->second;
  leases_.erase(it);
  ServiceEntry& entry = *services_.at(key.service);
  auto rec = entry.instances.find(key.address);
  if (!rec->second.instance.group.empty()) {
    auto g = groups_.find(GroupKey{key.service, rec->second.instance.group});
    if (g != groups_.end() && HoldsMaster(g->second, key.address)) {
      // Rule 6: promotion follows rule 2, counted from its last heartbeat.
      LOG(INFO) << key.service << "/" << g->first.second << ": master " << key.address
                << " deregistered (epoch " << g->second.epoch << ")";
    }
  }
  UnlinkLocked(rec->second);
  entry.instances.erase(rec);
  BumpLocked(entry);
  MaybeEraseLocked(key.service);
}

void Store::TouchLocked(Record& record, TimePoint now) {
  record.last_heartbeat = now;
  AgeList& from = record.up ? up_by_age_ : down_by_age_;
  up_by_age_.splice(up_by_age_.end(), from, record.age);
  record.up = true;
}

void Store::UnlinkLocked(Record& record) {
  (record.up ? up_by_age_ : down_by_age_).erase(record.age);
}

thrift::ServiceSnapshot Store::SnapshotLocked(const std::string& service,
                                              const ServiceEntry* entry) const {
  thrift::ServiceSnapshot snap;
  snap.service_name = service;
  if (entry == nullptr) return snap;
  snap.version = entry->version;
  snap.instances.reserve(entry->instances.size());
  const TimePoint now = clock_.Now();
  for (const auto& [address, record] : entry->instances) {
    thrift::InstanceState s;
    s.instance = record.instance;
    s.health = record.up ? thrift::Health::UP : thrift::Health::DOWN;
    s.effective_weight = record.instance.weight;
    if (const AdminEntry* admin = admin_.Find(service, address)) {
      s.drained = admin->drained;
      if (admin->weight) {
        s.effective_weight = *admin->weight;
        s.admin_weight_set = true;
      }
    }
    s.last_heartbeat_age_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now - record.last_heartbeat).count();
    s.load = record.load;
    FillRoleLocked(service, address, record, s);
    snap.instances.push_back(std::move(s));
  }
  snap.groups = GroupStatesLocked(service);
  return snap;
}

thrift::ServiceSnapshot Store::Lookup(const std::string& service) const {
  std::lock_guard lock(mu_);
  auto it = services_.find(service);
  return SnapshotLocked(service, it == services_.end() ? nullptr : it->second.get());
}

thrift::WatchResult Store::Watch(const std::string& service, int64_t known_version,
                                 std::chrono::milliseconds max_wait) {
  thrift::WatchResult result;
  const auto deadline = std::chrono::steady_clock::now() + max_wait;
  std::unique_lock lock(mu_);
  ServiceEntry& entry = EntryLocked(service);
  ++entry.waiters;
  const bool parked = entry.version == known_version;  // else it returns at once
  watchers_.fetch_add(1);
  // One condition variable per service: a change wakes only that service's watchers.
  entry.changed.wait_until(lock, deadline,
                           [&] { return shutdown_ || entry.version != known_version; });
  watchers_.fetch_sub(1);
  --entry.waiters;
  result.changed = entry.version != known_version;
  std::shared_ptr<const thrift::ServiceSnapshot> snapshot;
  if (result.changed) {
    if (parked && options_.observer != nullptr) {
      options_.observer->OnWatchDelivered(clock_.Now() - entry.changed_at);
    }
    // Ages and loads in it are as of the first watcher's wake-up; resolvers use neither.
    if (entry.watch_snapshot == nullptr) {
      entry.watch_snapshot =
          std::make_shared<const thrift::ServiceSnapshot>(SnapshotLocked(service, &entry));
    }
    snapshot = entry.watch_snapshot;
  } else {
    // The caller already has this version: send only the name and version, not the list
    // again (most watches of a quiet service end this way).
    result.snapshot.service_name = service;
    result.snapshot.version = entry.version;
  }
  MaybeEraseLocked(service);
  lock.unlock();
  if (snapshot != nullptr) result.snapshot = *snapshot;  // the copy, outside the lock
  return result;
}

std::vector<thrift::ServiceSummary> Store::ListServices() const {
  std::lock_guard lock(mu_);
  std::vector<thrift::ServiceSummary> out;
  // Services that exist only in admin state (their instances have not re-registered since a
  // restart) are listed too, so an administrator sees them.
  std::map<std::string, thrift::ServiceSummary> by_name;
  for (const auto& [name, entry] : services_) {
    if (entry->instances.empty()) continue;
    thrift::ServiceSummary& s = by_name[name];
    s.service_name = name;
    s.version = entry->version;
    for (const auto& [address, record] : entry->instances) {
      ++s.instances;
      if (record.up) ++s.up;
      const AdminEntry* admin = admin_.Find(name, address);
      if (admin != nullptr && admin->drained) ++s.drained;
    }
  }
  for (const auto& [name, instances] : admin_.entries()) {
    if (by_name.count(name) == 0) by_name[name].service_name = name;
  }
  for (const auto& [name, groups] : admin_.groups()) {
    if (by_name.count(name) == 0) by_name[name].service_name = name;
  }
  for (auto& [name, s] : by_name) out.push_back(std::move(s));
  return out;
}

bool Store::KnownLocked(const std::string& service, const std::string& address) const {
  if (admin_.Find(service, address) != nullptr) return true;
  auto it = services_.find(service);
  return it != services_.end() && it->second->instances.count(address) != 0;
}

Status Store::UpdateAdmin(const std::string& service, const std::string& address,
                          const std::function<void(AdminEntry&)>& change, bool must_exist) {
  std::lock_guard admin_lock(admin_mu_);
  AdminState next;
  {
    std::lock_guard lock(mu_);
    if (must_exist && !KnownLocked(service, address)) {
      const bool service_known =
          services_.count(service) != 0 || admin_.entries().count(service) != 0;
      return Status::Error(StatusCode::kNotFound,
                           service_known ? "service '" + service + "' has no instance " + address
                                         : "unknown service '" + service + "'");
    }
    next = admin_;
  }
  AdminEntry entry;
  if (const AdminEntry* old = next.Find(service, address)) entry = *old;
  change(entry);
  next.Set(service, address, entry);
  // Durable before it is visible: a crash after this point loses nothing we acknowledged.
  if (persister_ != nullptr) {
    Status s = persister_->Save(next);
    if (!s.ok()) {
      LOG(ERROR) << "admin change to " << service << "/" << address << " not applied: " << s;
      return s;
    }
  }
  std::lock_guard lock(mu_);
  admin_ = std::move(next);
  auto it = services_.find(service);
  if (it != services_.end()) BumpLocked(*it->second);
  return Status::Ok();
}

Status Store::SetWeight(const std::string& service, const std::string& address, int32_t weight) {
  if (weight < -1) {
    return Invalid("weight " + std::to_string(weight) +
                   " is negative (use -1 to clear the administrator's weight)");
  }
  return UpdateAdmin(
      service, address,
      [weight](AdminEntry& e) {
        if (weight == -1) {
          e.weight.reset();
        } else {
          e.weight = weight;
        }
      },
      /*must_exist=*/true);
}

Status Store::SetDrained(const std::string& service, const std::string& address, bool drained) {
  return UpdateAdmin(
      service, address, [drained](AdminEntry& e) { e.drained = drained; }, /*must_exist=*/true);
}

Status Store::Remove(const std::string& service, const std::string& address) {
  Status s = UpdateAdmin(
      service, address, [](AdminEntry& e) { e = AdminEntry(); }, /*must_exist=*/true);
  if (!s.ok()) return s;
  std::lock_guard lock(mu_);
  auto it = services_.find(service);
  if (it == services_.end()) return Status::Ok();
  auto rec = it->second->instances.find(address);
  if (rec != it->second->instances.end()) {
    leases_.erase(rec->second.lease);
    UnlinkLocked(rec->second);
    it->second->instances.erase(rec);
    BumpLocked(*it->second);
  }
  MaybeEraseLocked(service);
  return Status::Ok();
}

int Store::Sweep() {
  const TimePoint now = clock_.Now();
  int changed = 0;
  std::unique_lock lock(mu_);
  std::vector<ServiceEntry*> bumped;
  auto bump = [&](ServiceEntry* entry) {
    if (std::find(bumped.begin(), bumped.end(), entry) == bumped.end()) bumped.push_back(entry);
  };
  // Oldest first: stop at the first record that is still within its time.
  while (!up_by_age_.empty()) {
    Record& r = *up_by_age_.front();
    const Duration silent = now - r.last_heartbeat;
    if (silent <= options_.heartbeat_timeout) break;
    LOG(INFO) << r.service << "/" << r.address << " is DOWN: no heartbeat for "
              << std::chrono::duration_cast<std::chrono::milliseconds>(silent).count() << " ms";
    r.up = false;
    if (options_.observer != nullptr) options_.observer->OnDown(r.service);
    down_by_age_.splice(down_by_age_.end(), up_by_age_, r.age);
    bump(services_.at(r.service).get());
    ++changed;
  }
  std::vector<std::string> emptied;
  while (!down_by_age_.empty()) {
    Record& r = *down_by_age_.front();
    const Duration silent = now - r.last_heartbeat;
    if (silent <= options_.down_ttl) break;
    LOG(INFO) << r.service << "/" << r.address << " forgotten (down for "
              << std::chrono::duration_cast<std::chrono::seconds>(silent).count() << " s)";
    ServiceEntry* entry = services_.at(r.service).get();
    const std::string service = r.service;
    const std::string address = r.address;
    leases_.erase(r.lease);
    down_by_age_.pop_front();
    entry->instances.erase(address);  // destroys r
    bump(entry);
    emptied.push_back(service);
    ++changed;
  }
  for (ServiceEntry* entry : bumped) BumpLocked(*entry);
  for (const std::string& service : emptied) MaybeEraseLocked(service);
  const std::vector<GroupKey> due = SweepGroupsLocked(now);
  lock.unlock();
  for (const GroupKey& key : due) CommitPromotion(key, /*wait=*/true);
  return changed;
}

void Store::Shutdown() {
  std::lock_guard lock(mu_);
  shutdown_ = true;
  for (auto& [name, entry] : services_) entry->changed.notify_all();
  switchover_cv_.notify_all();
}

AdminState Store::admin_state() const {
  std::lock_guard lock(mu_);
  return admin_;
}

size_t Store::instance_count() const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& [name, entry] : services_) n += entry->instances.size();
  return n;
}

}  // namespace fulcrum::registry
