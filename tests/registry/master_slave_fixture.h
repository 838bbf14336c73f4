// The test fixture of the registry's master-slave tests: a Store on a FakeClock with a
// recording persister, and heartbeat/step helpers that check the safety invariants after
// every call: never two instances able to write at once (rule 1 as RoleState applies it),
// never two masters of a group in a snapshot, the epoch never going back.
//
//   TEST_F(MasterSlaveTest, X) { Register(9001); Beat(9001, 10); Step(milliseconds(100)); }
//
// Not thread-safe (one test thread drives it).
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "server/store.h"
#include "testing/fake_clock.h"

namespace fulcrum::registry::ms_test {

inline constexpr char kService[] = "kv";
inline constexpr char kGroup[] = "g1";

inline std::string Addr(int port) { return "127.0.0.1:" + std::to_string(port); }

// Saves into memory; can be told to fail, and runs a hook inside Save (while the store holds
// admin_mu_ but not its main mutex) so tests can look at what is visible during the save.
class RecordingPersister final : public AdminPersister {
 public:
  Status Save(const AdminState& state) override {
    ++attempts;
    if (on_save) on_save(state);
    if (fail) return Status::Error(StatusCode::kInternal, "disk full");
    saved = state;
    return Status::Ok();
  }
  bool fail = false;
  int attempts = 0;
  AdminState saved;
  std::function<void(const AdminState&)> on_save;
};

class MasterSlaveTest : public ::testing::Test {
 protected:
  MasterSlaveTest() { Restart(AdminState()); }

  // A new store (a registry restart) starting from `admin`, at the clock's current time.
  void Restart(AdminState admin) {
    store_.reset();
    leases_.clear();
    writable_until_.clear();
    store_ = std::make_unique<Store>(clock_, options_, std::move(admin), &persister_);
  }

  // `incarnation` 0: not known (as from a server that sends none).
  int64_t Register(int port, int32_t priority = 0, const std::string& group = kGroup,
                   int64_t incarnation = 0) {
    thrift::Instance i;
    i.service_name = kService;
    i.host = "127.0.0.1";
    i.port = port;
    i.group = group;
    i.priority = priority;
    i.incarnation = incarnation;
    StatusOr<thrift::Lease> lease = store_->Register(i);
    EXPECT_TRUE(lease.ok()) << lease.status();
    if (!lease.ok()) return 0;
    leases_[port] = lease->id;
    CheckInvariants();
    return lease->id;
  }

  // A heartbeat from `port` reporting `position` (and, from a master, the position up to
  // which its writes are acknowledged); checks the write-safety invariant.
  thrift::Directives Beat(int port, int64_t position = 0, bool quiesced = false,
                          int64_t commit = 0) {
    thrift::LoadReport load;
    load.replication_position = position;
    load.writes_quiesced = quiesced;
    load.commit_position = commit;
    thrift::Directives d = store_->Heartbeat(leases_.at(port), load);
    const TimePoint now = clock_.Now();
    // Rule 1 as the server applies it (RoleState): a master may write until sent_at + lease
    // unless told to stop writes; in the fake world sent_at is now.
    if (d.role == thrift::Role::MASTER && d.master_lease_ms > 0 && !d.stop_writes) {
      for (const auto& [other, until] : writable_until_) {
        if (other != port) {
          EXPECT_LE(until, now) << Addr(port) << " got a lease while " << Addr(other)
                                << " may still write (epoch " << d.epoch << ")";
        }
      }
      writable_until_[port] = now + std::chrono::milliseconds(d.master_lease_ms);
    } else {
      writable_until_[port] = now;  // a reply without a usable lease ends the old one
    }
    EXPECT_GE(d.epoch, max_epoch_seen_) << "epoch went back";
    max_epoch_seen_ = std::max(max_epoch_seen_, d.epoch);
    CheckInvariants();
    return d;
  }

  void Step(Duration d) {
    clock_.Advance(d);
    store_->Sweep();
    CheckInvariants();
  }

  void CheckInvariants() {
    const thrift::ServiceSnapshot snap = store_->Lookup(kService);
    std::map<std::string, int> masters;
    for (const auto& s : snap.instances) {
      if (s.role == thrift::Role::MASTER) ++masters[s.group];
    }
    for (const auto& [group, n] : masters) EXPECT_LE(n, 1) << "two masters in " << group;
    for (const auto& g : snap.groups) {
      EXPECT_GE(g.epoch, max_epoch_seen_) << "epoch went back";
      max_epoch_seen_ = std::max(max_epoch_seen_, g.epoch);
    }
  }

  thrift::GroupState Group() {
    StatusOr<thrift::GroupState> g = store_->GetGroup(kService, kGroup);
    EXPECT_TRUE(g.ok()) << g.status();
    return g.ok() ? g.value() : thrift::GroupState();
  }

  const thrift::InstanceState& Find(const thrift::ServiceSnapshot& snap, int port) {
    for (const auto& s : snap.instances) {
      if (s.instance.port == port) return s;
    }
    ADD_FAILURE() << "no instance " << port;
    static const thrift::InstanceState none;
    return none;
  }

  testing::FakeClock clock_;
  StoreOptions options_;  // defaults: 100 ms interval, 600 ms lease, 800 ms delay, 5 s switchover
  RecordingPersister persister_;
  std::unique_ptr<Store> store_;
  std::map<int, int64_t> leases_;
  std::map<int, TimePoint> writable_until_;
  int64_t max_epoch_seen_ = 0;
};

}  // namespace fulcrum::registry::ms_test
