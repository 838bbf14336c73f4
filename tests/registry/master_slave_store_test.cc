// The registry's master-slave rules 1-4 and 6 (docs/master-slave.md) on the Store with a
// FakeClock: first election, promotion after the delay with fresh reports only, a returning
// master, a zombie master, durability before visibility, restarts from the admin file, a
// deregistering master. The fixture checks the safety invariants after every call.
#include <gtest/gtest.h>

#include <future>

#include "child_process.h"

#include "master_slave_fixture.h"

namespace fulcrum::registry::ms_test {
namespace {

using std::chrono::milliseconds;

TEST_F(MasterSlaveTest, FirstRegistrationIsElectedAtOnceAndSavedBeforeItIsSeen) {
  persister_.on_save = [&](const AdminState& next) {
    // Inside the save: the new epoch is not visible yet.
    const GroupRecord* r = next.FindGroup(kService, kGroup);
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->epoch, 1);
    EXPECT_EQ(store_->GetGroup(kService, kGroup)->epoch, 0);
  };
  Register(9001);
  persister_.on_save = nullptr;
  EXPECT_EQ(persister_.attempts, 1);
  EXPECT_EQ(Group().epoch, 1);
  EXPECT_EQ(Group().master_address, Addr(9001));
  EXPECT_EQ(*persister_.saved.FindGroup(kService, kGroup), (GroupRecord{1, Addr(9001)}));

  Register(9002, /*priority=*/100);  // a later, higher-priority instance does not take over
  thrift::Directives master = Beat(9001, 7);
  EXPECT_EQ(master.role, thrift::Role::MASTER);
  EXPECT_EQ(master.epoch, 1);
  EXPECT_EQ(master.master_address, Addr(9001));
  EXPECT_EQ(master.master_lease_ms, 600);
  EXPECT_EQ(master.heartbeat_interval_ms, 100);
  EXPECT_FALSE(master.stop_writes);
  thrift::Directives slave = Beat(9002, 5);
  EXPECT_EQ(slave.role, thrift::Role::SLAVE);
  EXPECT_EQ(slave.epoch, 1);
  EXPECT_EQ(slave.master_address, Addr(9001));
  EXPECT_EQ(slave.master_lease_ms, 0);

  const thrift::ServiceSnapshot snap = store_->Lookup(kService);
  ASSERT_EQ(snap.groups.size(), 1u);
  EXPECT_EQ(snap.groups[0].group, kGroup);
  EXPECT_EQ(snap.groups[0].epoch, 1);
  EXPECT_EQ(snap.groups[0].master_address, Addr(9001));
  EXPECT_EQ(Find(snap, 9001).role, thrift::Role::MASTER);
  EXPECT_EQ(Find(snap, 9001).replication_position, 7);
  EXPECT_EQ(Find(snap, 9002).role, thrift::Role::SLAVE);
  EXPECT_EQ(Find(snap, 9002).group, kGroup);
  EXPECT_EQ(Find(snap, 9002).priority, 100);
  EXPECT_EQ(Find(snap, 9002).epoch, 1);
}

TEST_F(MasterSlaveTest, StatelessInstancesKeepTheirIntervalAndHaveNoRole) {
  thrift::Instance i;
  i.service_name = "calc";
  i.host = "127.0.0.1";
  i.port = 9100;
  StatusOr<thrift::Lease> lease = store_->Register(i);
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ(lease->heartbeat_interval_ms, 500);
  thrift::Directives d = store_->Heartbeat(lease->id, {});
  EXPECT_EQ(d.role, thrift::Role::NONE);
  EXPECT_EQ(d.heartbeat_interval_ms, 500);
  EXPECT_EQ(d.epoch, 0);
  EXPECT_TRUE(store_->Lookup("calc").groups.empty());
  EXPECT_EQ(store_->Lookup("calc").instances[0].role, thrift::Role::NONE);
  EXPECT_EQ(persister_.attempts, 0);

  Register(9001);
  thrift::Instance ms = i;
  ms.service_name = kService;
  ms.port = 9002;
  ms.group = kGroup;
  EXPECT_EQ(store_->Register(ms)->heartbeat_interval_ms, 100);
}

TEST_F(MasterSlaveTest, PromotionWaitsForTheDelayThenPicksPositionPriorityAddress) {
  Register(9001);
  Register(9002, 0);  // position 10, priority 0
  Register(9003, 9);  // position 9, priority 9: behind
  Register(9004, 5);  // position 10, priority 5: ties with 9005, lower address wins
  Register(9005, 5);
  const std::map<int, int64_t> positions = {{9002, 10}, {9003, 9}, {9004, 10}, {9005, 10}};
  auto beat_slaves = [&] {
    for (const auto& [port, pos] : positions) Beat(port, pos);
  };
  Beat(9001, 10);
  beat_slaves();
  const int64_t v0 = store_->Lookup(kService).version;
  // The master falls silent now. Until the promotion delay has passed nothing changes.
  for (int ms = 100; ms <= 800; ms += 100) {
    Step(milliseconds(100));
    beat_slaves();
    ASSERT_EQ(Group().epoch, 1) << "promoted " << ms << " ms after the master's last heartbeat";
  }
  // At exactly the eligibility moment the reports are not fresh yet (received at, not after).
  EXPECT_EQ(store_->Lookup(kService).version, v0);
  clock_.Advance(milliseconds(100));
  beat_slaves();  // fresh reports: the last one completes the set and promotes (no sweep)
  EXPECT_EQ(Group().epoch, 2);
  EXPECT_EQ(Group().master_address, Addr(9004));
  EXPECT_EQ(*persister_.saved.FindGroup(kService, kGroup), (GroupRecord{2, Addr(9004)}));
  const thrift::ServiceSnapshot snap = store_->Lookup(kService);
  EXPECT_GT(snap.version, v0);  // watchers hear of it
  EXPECT_EQ(Find(snap, 9004).role, thrift::Role::MASTER);
  EXPECT_EQ(Find(snap, 9001).role, thrift::Role::SLAVE);
  EXPECT_EQ(Find(snap, 9004).epoch, 2);
  thrift::WatchResult w = store_->Watch(kService, v0, milliseconds(0));
  EXPECT_TRUE(w.changed);

  thrift::Directives d = Beat(9004, 10);
  EXPECT_EQ(d.role, thrift::Role::MASTER);
  EXPECT_EQ(d.epoch, 2);
  EXPECT_EQ(d.master_lease_ms, 600);
  d = Beat(9002, 10);
  EXPECT_EQ(d.role, thrift::Role::SLAVE);
  EXPECT_EQ(d.master_address, Addr(9004));
}

TEST(BestCandidateTest, PositionThenPriorityThenLowestAddress) {
  Member a{.address = "10.0.0.2:1", .position = 5, .priority = 0};
  Member b{.address = "10.0.0.1:1", .position = 4, .priority = 9};
  Member c{.address = "10.0.0.3:1", .position = 5, .priority = 1};
  Member d{.address = "10.0.0.0:1", .position = 5, .priority = 1};
  EXPECT_EQ(BestCandidate({}), nullptr);
  EXPECT_EQ(BestCandidate({&a, &b})->address, a.address);
  EXPECT_EQ(BestCandidate({&a, &b, &c})->address, c.address);
  EXPECT_EQ(BestCandidate({&c, &a, &d, &b})->address, d.address);
  EXPECT_EQ(BestCandidate({&d, &c})->address, d.address);
}

TEST_F(MasterSlaveTest, AStaleSlaveIsNotChosenAndTheWaitIsBounded) {
  Register(9001);
  Register(9002);
  Register(9003);
  Beat(9001, 100);
  Beat(9002, 100);  // the best position, but it stops reporting with the master
  Beat(9003, 60);
  for (int i = 0; i < 12; ++i) {  // to eligibility + 400 ms: only 9003 reports
    Step(milliseconds(100));
    Beat(9003, 60);
  }
  EXPECT_EQ(Group().epoch, 1) << "9002 is UP and not fresh yet: keep waiting";
  Step(milliseconds(99));
  EXPECT_EQ(Group().epoch, 1);
  // Eligibility + one report period (100 ms + 2 x (800 - 600) ms: a live slave's heartbeat
  // may take that long when its request and the reply before it are both slow): stop waiting.
  Step(milliseconds(1));
  EXPECT_EQ(Group().epoch, 2);
  EXPECT_EQ(Group().master_address, Addr(9003));
  // 9002 (UP, never fresh) is told it is a slave of the new master.
  thrift::Directives d = Beat(9002, 100);
  EXPECT_EQ(d.role, thrift::Role::SLAVE);
  EXPECT_EQ(d.master_address, Addr(9003));
}

TEST_F(MasterSlaveTest, NoCandidateMeansNoMasterUntilASlaveReports) {
  Register(9001);
  Register(9002);
  Beat(9001);
  Beat(9002, 3);
  for (int i = 0; i < 20; ++i) Step(milliseconds(100));  // everyone silent for 2 s
  EXPECT_EQ(Group().epoch, 1);
  EXPECT_EQ(Group().master_address, Addr(9001));
  EXPECT_EQ(persister_.attempts, 1);  // only the first election was saved
  Beat(9002, 3);                      // fresh: promoted on this heartbeat
  EXPECT_EQ(Group().epoch, 2);
  EXPECT_EQ(Group().master_address, Addr(9002));
}

TEST_F(MasterSlaveTest, NoSlaveBelowTheMastersCommitPositionIsPromoted) {
  Register(9001);
  Register(9002);
  Register(9003);
  Beat(9001, 100, false, /*commit=*/90);  // acknowledged up to 90
  Beat(9001, 100, false, /*commit=*/70);  // an older figure never lowers the floor
  EXPECT_EQ(Group().commit_floor, 90);
  // The master dies; the slaves that had 90 are gone too: what is left is below it.
  for (int i = 0; i < 20; ++i) {
    Step(milliseconds(100));
    Beat(9002, 80);
    Beat(9003, 85);
  }
  EXPECT_EQ(Group().epoch, 1) << "promoting 9003 would lose the writes from 86 to 90";
  EXPECT_EQ(Group().master_address, Addr(9001));
  EXPECT_NE(Group().stalled.find("below the position 90"), std::string::npos) << Group().stalled;
  EXPECT_EQ(persister_.attempts, 1);
  // A slave that has them reports: it is promoted, and the stall is over.
  Beat(9002, 95);
  EXPECT_EQ(Group().epoch, 2);
  EXPECT_EQ(Group().master_address, Addr(9002));
  EXPECT_EQ(Group().stalled, "");
}

TEST_F(MasterSlaveTest, AnAdministratorEndsAStallBelowTheCommitFloor) {
  Register(9001);
  Register(9002);
  Register(9003);
  Beat(9001, 100, false, 90);
  Beat(9002, 80);
  Beat(9003, 85);
  // While the master is alive, accepting data loss is refused: a switchover loses nothing.
  StatusOr<thrift::GroupState> refused = store_->Promote(kService, Addr(9002), true);
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument) << refused.status();
  for (int i = 0; i < 12; ++i) {
    Step(milliseconds(100));
    Beat(9002, 80);
    Beat(9003, 85);
  }
  ASSERT_EQ(Group().epoch, 1);
  ASSERT_FALSE(Group().stalled.empty());
  // The administrator picks 9002 (not even the best one left) and accepts the loss.
  auto promoted =
      std::async(std::launch::async, [&] { return store_->Promote(kService, Addr(9002), true); });
  for (int i = 0; i < 2000 && promoted.wait_for(milliseconds(1)) != std::future_status::ready;
       ++i) {
    Step(milliseconds(10));
    Beat(9002, 80);
    Beat(9003, 85);
  }
  StatusOr<thrift::GroupState> result = promoted.get();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->epoch, 2);
  EXPECT_EQ(result->master_address, Addr(9002));
  EXPECT_EQ(result->commit_floor, 0) << "the floor starts over with the new master";
  EXPECT_EQ(result->stalled, "");
  // The new master's commits raise it again.
  Beat(9002, 82, false, 81);
  EXPECT_EQ(Group().commit_floor, 81);
}

TEST_F(MasterSlaveTest, AMasterReturningBeforePromotionKeepsItsRole) {
  Register(9001);
  Register(9002);
  Register(9003);
  Beat(9001, 10);
  for (int i = 0; i < 9; ++i) {  // past eligibility; 9003 silent, so the promotion waits
    Step(milliseconds(100));
    Beat(9002, 10);
  }
  thrift::Directives d = Beat(9001, 10);  // back: renews and cancels the pending promotion
  EXPECT_EQ(d.role, thrift::Role::MASTER);
  EXPECT_EQ(d.master_lease_ms, 600);
  for (int i = 0; i < 30; ++i) {
    Step(milliseconds(100));
    Beat(9001, 10);
    Beat(9002, 10);
    Beat(9003, 10);
  }
  EXPECT_EQ(Group().epoch, 1);
  EXPECT_EQ(Group().master_address, Addr(9001));
}

TEST_F(MasterSlaveTest, ANewProcessAtTheMastersAddressIsNotTheMaster) {
  // The master is SIGKILLed and started again on its port before the promotion delay: the new
  // process (an empty log) registers at the master's address. Taking it for the master would
  // renew a role whose data it does not have, and its slaves would resync from its empty log.
  Register(9001, 0, kGroup, /*incarnation=*/11);
  Register(9002, 0, kGroup, 21);
  Register(9003, 0, kGroup, 31);
  Beat(9001, 10);
  Beat(9002, 10);
  Beat(9003, 9);
  EXPECT_EQ(persister_.saved.FindGroup(kService, kGroup)->master_incarnation, 11);
  Step(milliseconds(100));
  Register(9001, 0, kGroup, 12);
  thrift::Directives d = Beat(9001, 0);
  EXPECT_EQ(d.role, thrift::Role::SLAVE);
  EXPECT_EQ(d.master_lease_ms, 0);
  EXPECT_EQ(d.master_address, "") << "no live master until the next promotion";
  EXPECT_EQ(Group().epoch, 1);
  EXPECT_EQ(Group().master_address, "");
  EXPECT_EQ(Find(store_->Lookup(kService), 9001).role, thrift::Role::SLAVE);
  // The old master's lease runs out as if it had just died; then the up-to-date slave wins.
  for (int i = 0; i < 12; ++i) {
    Step(milliseconds(100));
    Beat(9001, 0);
    Beat(9002, 10);
    Beat(9003, 9);
  }
  EXPECT_EQ(Group().epoch, 2);
  EXPECT_EQ(Group().master_address, Addr(9002));
  EXPECT_EQ(Beat(9001, 0).role, thrift::Role::SLAVE);
  EXPECT_EQ(Beat(9002, 10).role, thrift::Role::MASTER);
  EXPECT_EQ(persister_.saved.FindGroup(kService, kGroup)->master_incarnation, 21);
}

TEST_F(MasterSlaveTest, ANewProcessAtTheMastersAddressIsToldApartAfterARegistryRestart) {
  Register(9001, 0, kGroup, 11);
  Register(9002, 0, kGroup, 21);
  Beat(9001, 10);
  Beat(9002, 10);
  Restart(persister_.saved);  // the incarnation is durable with the epoch
  Register(9001, 0, kGroup, 12);
  Register(9002, 0, kGroup, 21);
  EXPECT_EQ(Beat(9001, 0).role, thrift::Role::SLAVE);
  for (int i = 0; i < 12; ++i) {
    Step(milliseconds(100));
    Beat(9001, 0);
    Beat(9002, 10);
  }
  EXPECT_EQ(Group().epoch, 2);
  EXPECT_EQ(Group().master_address, Addr(9002));
}

TEST_F(MasterSlaveTest, TheMasterRegisteringAgainAsItselfKeepsItsRole) {
  // Its own incarnation (a lost lease, a registry restart), or none known: the same master.
  Register(9001, 0, kGroup, 11);
  Register(9002, 0, kGroup, 21);
  Beat(9001, 10);
  Register(9001, 0, kGroup, 11);
  EXPECT_EQ(Beat(9001, 10).role, thrift::Role::MASTER);
  Restart(persister_.saved);
  Register(9001, 0, kGroup, 11);
  Register(9002, 0, kGroup, 21);
  EXPECT_EQ(Beat(9001, 10).role, thrift::Role::MASTER);
  for (int i = 0; i < 12; ++i) {
    Step(milliseconds(100));
    Beat(9001, 10);
    Beat(9002, 10);
  }
  EXPECT_EQ(Group().epoch, 1);
  EXPECT_EQ(Group().master_address, Addr(9001));
}

TEST_F(MasterSlaveTest, AZombieMasterIsToldItIsASlaveOfTheNewEpoch) {
  Register(9001);
  Register(9002);
  Beat(9001, 10);
  Beat(9002, 10);
  for (int i = 0; i < 9; ++i) {
    Step(milliseconds(100));
    Beat(9002, 10);
  }
  ASSERT_EQ(Group().epoch, 2);
  ASSERT_EQ(Group().master_address, Addr(9002));
  thrift::Directives d = Beat(9001, 10);  // the old master wakes up (a long GC pause)
  EXPECT_EQ(d.role, thrift::Role::SLAVE);
  EXPECT_EQ(d.epoch, 2);
  EXPECT_EQ(d.master_address, Addr(9002));
  EXPECT_EQ(d.master_lease_ms, 0);
  EXPECT_EQ(Group().master_address, Addr(9002));
  d = Beat(9002, 10);
  EXPECT_EQ(d.role, thrift::Role::MASTER);
}

TEST_F(MasterSlaveTest, DuringTheSaveTheOldStateShowsAndTheOldMasterGetsNoLease) {
  Register(9001);
  Register(9002);
  thrift::Instance stateless;
  stateless.service_name = "calc";
  stateless.host = "127.0.0.1";
  stateless.port = 9100;
  const int64_t other = store_->Register(stateless)->id;
  Beat(9001, 10);
  Beat(9002, 10);
  const int64_t v0 = store_->Lookup(kService).version;
  bool checked = false;
  persister_.on_save = [&](const AdminState& next) {
    EXPECT_EQ(next.FindGroup(kService, kGroup)->epoch, 2);
    // Not visible yet: lookups, the slave and the (late) old master see epoch 1.
    EXPECT_EQ(store_->Lookup(kService).version, v0);
    EXPECT_EQ(store_->GetGroup(kService, kGroup)->master_address, Addr(9001));
    thrift::Directives old_master = Beat(9001, 10);
    EXPECT_EQ(old_master.role, thrift::Role::MASTER);
    EXPECT_EQ(old_master.epoch, 1);
    EXPECT_EQ(old_master.master_lease_ms, 0) << "a lease now would overlap the new master's";
    EXPECT_EQ(Beat(9002, 10).epoch, 1);
    // Unrelated heartbeats are served during the save (this runs inside it).
    EXPECT_FALSE(store_->Heartbeat(other, {}).reregister);
    checked = true;
  };
  for (int i = 0; i < 9; ++i) {
    Step(milliseconds(100));
    Beat(9002, 10);
  }
  EXPECT_TRUE(checked);
  EXPECT_EQ(Group().epoch, 2);
  EXPECT_EQ(Group().master_address, Addr(9002));
  EXPECT_EQ(Beat(9001, 10).role, thrift::Role::SLAVE);
}

TEST_F(MasterSlaveTest, AFailedSaveShowsNoPromotionAndIsRetried) {
  Register(9001);
  Register(9002);
  Beat(9001, 10);
  Beat(9002, 10);
  persister_.fail = true;
  const int before = persister_.attempts;
  for (int i = 0; i < 12; ++i) {
    Step(milliseconds(100));
    Beat(9002, 10);
    ASSERT_EQ(Group().epoch, 1);
    ASSERT_EQ(Group().master_address, Addr(9001));
    EXPECT_EQ(Beat(9002, 10).epoch, 1);
  }
  EXPECT_GT(persister_.attempts, before + 1) << "retried on later heartbeats and sweeps";
  EXPECT_EQ(persister_.saved.FindGroup(kService, kGroup)->epoch, 1);
  persister_.fail = false;
  Step(milliseconds(20));
  EXPECT_EQ(Group().epoch, 2);
  EXPECT_EQ(Group().master_address, Addr(9002));
  EXPECT_EQ(persister_.saved.FindGroup(kService, kGroup)->epoch, 2);
}

TEST_F(MasterSlaveTest, ADeregisteringMasterIsReplacedAfterTheDelayFromItsLastHeartbeat) {
  Register(9001);
  Register(9002);
  Beat(9001, 10);
  Beat(9002, 10);
  Step(milliseconds(300));
  Beat(9002, 10);
  store_->Deregister(leases_.at(9001));  // drained: it stopped writes before this
  EXPECT_EQ(Group().master_address, Addr(9001));
  for (int ms = 400; ms <= 800; ms += 100) {
    Step(milliseconds(100));
    Beat(9002, 10);
    ASSERT_EQ(Group().epoch, 1) << ms;
  }
  Step(milliseconds(100));
  Beat(9002, 10);
  EXPECT_EQ(Group().epoch, 2);
  EXPECT_EQ(Group().master_address, Addr(9002));
}

TEST_F(MasterSlaveTest, RestartKeepsEpochAndMasterAndTheMasterKeepsItsRole) {
  registry_test::TempDir dir;
  AdminStateFile file(dir.path());
  FileAdminPersister disk(file);
  store_ = std::make_unique<Store>(clock_, options_, AdminState(), &disk);
  Register(9001);
  Register(9002);
  Beat(9001, 10);
  Beat(9002, 10);
  for (int i = 0; i < 9; ++i) {  // 9001 lost: 9002 becomes master of epoch 2
    Step(milliseconds(100));
    Beat(9002, 10);
  }
  ASSERT_EQ(Group().epoch, 2);

  // The registry restarts (SIGKILL: nothing but the file survives).
  clock_.Advance(milliseconds(50));
  store_.reset();
  StatusOr<AdminState> loaded = file.Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  store_ = std::make_unique<Store>(clock_, options_, loaded.value(), &disk);
  EXPECT_EQ(Group().epoch, 2);
  EXPECT_EQ(Group().master_address, Addr(9002));
  // Old leases are unknown: both register again; the durable master keeps its role.
  EXPECT_TRUE(store_->Heartbeat(leases_.at(9002), {}).reregister);
  Step(milliseconds(500));
  Register(9001);
  Register(9002);
  EXPECT_EQ(Beat(9001, 10).role, thrift::Role::SLAVE);
  thrift::Directives d = Beat(9002, 10);
  EXPECT_EQ(d.role, thrift::Role::MASTER);
  EXPECT_EQ(d.epoch, 2);
  for (int i = 0; i < 20; ++i) {
    Step(milliseconds(100));
    Beat(9001, 10);
    Beat(9002, 10);
  }
  EXPECT_EQ(Group().epoch, 2);
  EXPECT_EQ(file.Load()->FindGroup(kService, kGroup)->epoch, 2);
  store_.reset();  // before `disk` goes
}

TEST_F(MasterSlaveTest, AfterARestartWithoutTheMasterPromotionWaitsTheDelayFromTheRestart) {
  AdminState admin;
  admin.SetGroup(kService, kGroup, {7, Addr(9001)});
  Restart(admin);
  Register(9002);
  Register(9003);
  for (int ms = 100; ms <= 800; ms += 100) {
    Step(milliseconds(100));
    Beat(9002, 40);
    Beat(9003, 50);
    ASSERT_EQ(Group().epoch, 7) << ms << " ms after the restart";
    ASSERT_EQ(Group().master_address, Addr(9001));
  }
  Step(milliseconds(100));
  Beat(9002, 40);
  Beat(9003, 50);
  EXPECT_EQ(Group().epoch, 8);  // the epoch continues from the file, never restarts at 1
  EXPECT_EQ(Group().master_address, Addr(9003));
  // The old master re-registering now is a slave of epoch 8.
  Register(9001);
  thrift::Directives d = Beat(9001, 60);
  EXPECT_EQ(d.role, thrift::Role::SLAVE);
  EXPECT_EQ(d.epoch, 8);
}

}  // namespace
}  // namespace fulcrum::registry::ms_test
