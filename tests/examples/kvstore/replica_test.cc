// The kvstore's replication core in one process: acknowledgement waits for slaves, refusal
// when too few are in sync, the lease re-check, fencing, resync from a snapshot, divergent logs.
#include "replica.h"

#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "follower.h"
#include "support/eventually.h"
#include "testing/fake_clock.h"

namespace kvstore {
namespace {

using fulcrum::InstanceRole;
using fulcrum::RegistrarDirectives;
using fulcrum::testing::Eventually;
using fulcrum::testing::FakeClock;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kMasterAddress[] = "127.0.0.1:1";

RegistrarDirectives MasterOf(const FakeClock& clock, int64_t epoch) {
  RegistrarDirectives d;
  d.role = InstanceRole::kMaster;
  d.epoch = epoch;
  d.master_address = kMasterAddress;
  d.master_lease = seconds(10);
  d.sent_at = clock.Now();
  return d;
}

RegistrarDirectives SlaveOf(int64_t epoch, std::string master = kMasterAddress) {
  RegistrarDirectives d;
  d.role = InstanceRole::kSlave;
  d.epoch = epoch;
  d.master_address = std::move(master);
  return d;
}

// One replica with its own RoleState.
struct Node {
  Node(const FakeClock& clock, std::string self, ReplicaOptions options = {})
      : role(clock, milliseconds(100)), replica(role, WithSelf(std::move(self), options), clock) {}
  static ReplicaOptions WithSelf(std::string self, ReplicaOptions o) {
    o.self = std::move(self);
    return o;
  }
  fulcrum::RoleState role;
  Replica replica;
};

// One fetch round by hand: the slave asks, the master answers (no long poll), the slave applies.
KvStatus FetchOnce(Node& slave, Node& master, int64_t epoch) {
  const FetchRequest r = slave.replica.NextFetch(epoch, milliseconds(0));
  KvResult<FetchResponse> response = master.replica.Fetch(r);
  if (!response.ok()) return response.status;
  return slave.replica.ApplyFetch(r, response.value);
}

class ReplicaTest : public ::testing::Test {
 protected:
  ReplicaTest() {
    master_.role.Apply(MasterOf(clock_, 1));
    slave_.role.Apply(SlaveOf(1));
  }
  FakeClock clock_;
  Node master_{clock_, kMasterAddress};
  Node slave_{clock_, "127.0.0.1:2"};
};

TEST_F(ReplicaTest, WriteIsAcknowledgedOnlyOnceASlaveFetchedPastIt) {
  ASSERT_TRUE(FetchOnce(slave_, master_, 1).ok());  // in sync, nothing to copy
  auto put = std::async(std::launch::async, [&] { return master_.replica.Put("k", "v"); });
  ASSERT_TRUE(Eventually([&] { return master_.replica.Info().log_end == 1; }));
  EXPECT_EQ(put.wait_for(milliseconds(0)), std::future_status::timeout);
  // The slave copies the entry: the master does not know yet that it has it.
  ASSERT_TRUE(FetchOnce(slave_, master_, 1).ok());
  EXPECT_EQ(slave_.replica.Info().log_end, 1);
  EXPECT_EQ(put.wait_for(milliseconds(0)), std::future_status::timeout);
  EXPECT_EQ(master_.replica.Info().commit_position, 0);
  EXPECT_EQ(master_.role.commit_position(), 0);
  // Its next fetch starts after the entry: acknowledged.
  ASSERT_TRUE(FetchOnce(slave_, master_, 1).ok());
  ASSERT_EQ(put.wait_for(seconds(10)), std::future_status::ready);
  EXPECT_TRUE(put.get().ok());
  EXPECT_EQ(master_.replica.Info().commit_position, 1);
  // ...and reported to the registry, which then never promotes a slave below it.
  EXPECT_EQ(master_.role.commit_position(), EncodePosition(1, 1));
  EXPECT_EQ(slave_.role.commit_position(), 0);
  EXPECT_EQ(slave_.replica.Get("k").value, std::optional<std::string>("v"));
  EXPECT_EQ(slave_.role.replication_position(), EncodePosition(1, 1));
  EXPECT_EQ(master_.role.replication_position(), EncodePosition(1, 1));
}

TEST_F(ReplicaTest, NewMasterWaitsForItsSlavesBeforeRefusing) {
  auto put = std::async(std::launch::async, [&] { return master_.replica.Put("k", "v"); });
  EXPECT_EQ(put.wait_for(milliseconds(20)), std::future_status::timeout);
  ASSERT_TRUE(FetchOnce(slave_, master_, 1).ok());  // the slave connects: the write goes on
  ASSERT_TRUE(Eventually([&] { return master_.replica.Info().log_end == 1; }));
  ASSERT_TRUE(FetchOnce(slave_, master_, 1).ok());
  ASSERT_TRUE(FetchOnce(slave_, master_, 1).ok());
  EXPECT_TRUE(put.get().ok());
}

TEST_F(ReplicaTest, RefusesWritesUpFrontWhenTooFewSlavesAreInSync) {
  clock_.Advance(milliseconds(1000));  // past the grace for its slaves to connect
  KvStatus s = master_.replica.Put("k", "v");
  EXPECT_EQ(s.code, KvCode::kNotEnoughReplicas) << s.message;
  EXPECT_NE(s.message.find("0 slave(s) in sync, 1 required"), std::string::npos) << s.message;
  EXPECT_EQ(master_.replica.Info().log_end, 0);  // nothing was written

  ASSERT_TRUE(FetchOnce(slave_, master_, 1).ok());
  EXPECT_EQ(master_.replica.Info().insync_slaves, 1);
  // The slave stops fetching: once the in-sync window has passed, writes are refused again.
  clock_.Advance(milliseconds(1001));
  EXPECT_EQ(master_.replica.Info().insync_slaves, 0);
  EXPECT_EQ(master_.replica.Put("k", "v").code, KvCode::kNotEnoughReplicas);
  EXPECT_EQ(master_.replica.CompareAndSet("k", std::nullopt, "v").status.code,
            KvCode::kNotEnoughReplicas);
  EXPECT_EQ(master_.replica.Info().log_end, 0);
}

TEST_F(ReplicaTest, SlavesAndExpiredMastersRefuseWrites) {
  KvStatus s = slave_.replica.Put("k", "v");
  EXPECT_EQ(s.code, KvCode::kNotMaster);
  EXPECT_EQ(s.master, kMasterAddress);
  ASSERT_TRUE(FetchOnce(slave_, master_, 1).ok());
  clock_.Advance(seconds(10));  // the lease ran out
  EXPECT_EQ(master_.replica.Put("k", "v").code, KvCode::kNotMaster);
  EXPECT_EQ(master_.replica.Info().log_end, 0);
}

TEST_F(ReplicaTest, LeaseIsCheckedAgainBeforeAcknowledging) {
  ASSERT_TRUE(FetchOnce(slave_, master_, 1).ok());
  auto put = std::async(std::launch::async, [&] { return master_.replica.Put("k", "v"); });
  ASSERT_TRUE(Eventually([&] { return master_.replica.Info().log_end == 1; }));
  clock_.Advance(seconds(11));  // the lease runs out while the write waits for its slave
  ASSERT_TRUE(FetchOnce(slave_, master_, 1).ok());
  ASSERT_TRUE(FetchOnce(slave_, master_, 1).ok());
  ASSERT_EQ(put.wait_for(seconds(10)), std::future_status::ready);
  KvStatus s = put.get();
  EXPECT_EQ(s.code, KvCode::kNotMaster);
  EXPECT_NE(s.message.find("lease lost"), std::string::npos) << s.message;
}

TEST_F(ReplicaTest, WriteTimesOutWhenTheSlaveStopsFetching) {
  Node master(clock_, "127.0.0.1:3", {.replication_timeout = milliseconds(50)});
  master.role.Apply(MasterOf(clock_, 1));
  ASSERT_TRUE(FetchOnce(slave_, master, 1).ok());
  KvStatus s = master.replica.Put("k", "v");
  EXPECT_EQ(s.code, KvCode::kReplicationTimeout) << s.message;
  EXPECT_NE(s.message.find("outcome unknown"), std::string::npos);
}

TEST_F(ReplicaTest, NoSlavesNeededWithMinInsyncZero) {
  Node master(clock_, "127.0.0.1:3", {.min_insync_replicas = 0});
  master.role.Apply(MasterOf(clock_, 1));
  EXPECT_TRUE(master.replica.Put("a", "1").ok());
  EXPECT_EQ(master.replica.CompareAndSet("a", std::string("1"), "2").value, true);
  EXPECT_EQ(master.replica.CompareAndSet("a", std::string("1"), "3").value, false);
  EXPECT_EQ(master.replica.CompareAndSet("b", std::nullopt, "x").value, true);
  EXPECT_EQ(master.replica.Remove("a").value, true);
  EXPECT_EQ(master.replica.Remove("a").value, false);
  EXPECT_EQ(master.replica.Get("a").value, std::nullopt);
  EXPECT_EQ(master.replica.Get("b").value, std::optional<std::string>("x"));
  // A failed CAS and removing an absent key write nothing.
  EXPECT_EQ(master.replica.Info().log_end, 4);
  // Acknowledged on the master alone by choice: the registry is given no floor to wait for.
  EXPECT_EQ(master.role.commit_position(), 0);
}

TEST_F(ReplicaTest, MasterReadWaitsUntilTheValueIsAcknowledged) {
  ASSERT_TRUE(FetchOnce(slave_, master_, 1).ok());
  auto put = std::async(std::launch::async, [&] { return master_.replica.Put("k", "v"); });
  ASSERT_TRUE(Eventually([&] { return master_.replica.Info().log_end == 1; }));
  auto get = std::async(std::launch::async, [&] { return master_.replica.Get("k"); });
  EXPECT_EQ(get.wait_for(milliseconds(0)), std::future_status::timeout);
  ASSERT_TRUE(FetchOnce(slave_, master_, 1).ok());
  ASSERT_TRUE(FetchOnce(slave_, master_, 1).ok());
  ASSERT_EQ(get.wait_for(seconds(10)), std::future_status::ready);
  auto r = get.get();
  EXPECT_TRUE(r.ok()) << r.status.message;
  EXPECT_EQ(r.value, std::optional<std::string>("v"));
  EXPECT_TRUE(put.get().ok());
}

TEST_F(ReplicaTest, FencingSlaveRefusesDataFromAnOlderEpoch) {
  // The slave holds epoch-3 data; an answer from epoch 2 (a deposed master) changes nothing.
  Node slave(clock_, "127.0.0.1:4");
  slave.role.Apply(SlaveOf(3));
  FetchRequest sent = slave.replica.NextFetch(3, milliseconds(0));
  FetchResponse from3{3, {{1, 3, OpType::kPut, "k", "new"}}, std::nullopt};
  ASSERT_TRUE(slave.replica.ApplyFetch(sent, from3).ok());
  sent = slave.replica.NextFetch(2, milliseconds(0));
  FetchResponse from2{2, {{2, 2, OpType::kPut, "k", "old"}}, std::nullopt};
  KvStatus s = slave.replica.ApplyFetch(sent, from2);
  EXPECT_EQ(s.code, KvCode::kStaleEpoch) << s.message;
  // A snapshot from the old epoch is refused too.
  FetchResponse snap2{2, {}, SnapshotData{5, 2, {{"k", "old"}}}};
  EXPECT_EQ(slave.replica.ApplyFetch(sent, snap2).code, KvCode::kStaleEpoch);
  EXPECT_EQ(slave.replica.Get("k").value, std::optional<std::string>("new"));
  EXPECT_EQ(slave.replica.Info().log_end, 1);
}

TEST_F(ReplicaTest, FencingMasterRefusesFetchesOfAnotherEpoch) {
  KvResult<FetchResponse> old = master_.replica.Fetch({"127.0.0.1:2", 0, 1, 0, milliseconds(0)});
  EXPECT_EQ(old.status.code, KvCode::kStaleEpoch);
  KvResult<FetchResponse> newer = master_.replica.Fetch({"127.0.0.1:2", 2, 1, 0, milliseconds(0)});
  EXPECT_EQ(newer.status.code, KvCode::kNotMaster);
  KvResult<FetchResponse> bad = master_.replica.Fetch({"", 1, 0, 0, milliseconds(0)});
  EXPECT_EQ(bad.status.code, KvCode::kInvalidArgument);
  EXPECT_EQ(FetchOnce(master_, slave_, 1).code, KvCode::kNotMaster);  // a slave serves no log
}

TEST_F(ReplicaTest, MalformedAnswerChangesNothing) {
  FetchRequest sent = slave_.replica.NextFetch(1, milliseconds(0));
  FetchResponse gap{1, {{1, 1, OpType::kPut, "a", "1"}, {3, 1, OpType::kPut, "b", "2"}}, {}};
  EXPECT_EQ(slave_.replica.ApplyFetch(sent, gap).code, KvCode::kInvalidArgument);
  FetchResponse future_epoch{1, {{1, 2, OpType::kPut, "a", "1"}}, {}};
  EXPECT_EQ(slave_.replica.ApplyFetch(sent, future_epoch).code, KvCode::kInvalidArgument);
  EXPECT_EQ(slave_.replica.Info().log_end, 0);
  EXPECT_EQ(slave_.replica.Get("a").value, std::nullopt);
}

TEST_F(ReplicaTest, SlaveTooFarBehindATruncatedLogResyncsFromASnapshot) {
  Node master(clock_, "127.0.0.1:3", {.min_insync_replicas = 0, .log_retention = 2});
  master.role.Apply(MasterOf(clock_, 1));
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(master.replica.Put("k" + std::to_string(i), std::to_string(i)).ok());
  }
  ASSERT_TRUE(master.replica.Remove("k0").value);
  // The log now holds only positions 5 and 6; the slave needs 1.
  FetchRequest r = slave_.replica.NextFetch(1, milliseconds(0));
  KvResult<FetchResponse> response = master.replica.Fetch(r);
  ASSERT_TRUE(response.ok());
  ASSERT_TRUE(response.value.snapshot.has_value());
  EXPECT_EQ(response.value.snapshot->position, 6);
  EXPECT_EQ(master.replica.Info().insync_slaves, 0);  // not in sync until it matched
  ASSERT_TRUE(slave_.replica.ApplyFetch(r, response.value).ok());
  EXPECT_EQ(slave_.replica.Info().log_end, 6);
  EXPECT_EQ(slave_.replica.Get("k0").value, std::nullopt);
  EXPECT_EQ(slave_.replica.Get("k4").value, std::optional<std::string>("4"));
  // Then the log as usual, and the slave counts as in sync.
  ASSERT_TRUE(master.replica.Put("k5", "5").ok());
  ASSERT_TRUE(FetchOnce(slave_, master, 1).ok());
  EXPECT_EQ(slave_.replica.Get("k5").value, std::optional<std::string>("5"));
  ASSERT_TRUE(FetchOnce(slave_, master, 1).ok());
  EXPECT_EQ(master.replica.Info().insync_slaves, 1);
}

TEST_F(ReplicaTest, DivergentTailIsReplacedByTheNewMastersLog) {
  // Epoch 1: A appends a, b, c; the slave copies all three, B only a.
  Node a(clock_, "127.0.0.1:10", {.min_insync_replicas = 0});
  Node b(clock_, "127.0.0.1:11", {.min_insync_replicas = 0});
  a.role.Apply(MasterOf(clock_, 1));
  b.role.Apply(SlaveOf(1));
  ASSERT_TRUE(a.replica.Put("a", "1").ok());
  ASSERT_TRUE(FetchOnce(b, a, 1).ok());
  ASSERT_TRUE(a.replica.Put("b", "2").ok());
  ASSERT_TRUE(a.replica.Put("c", "3").ok());
  ASSERT_TRUE(FetchOnce(slave_, a, 1).ok());
  EXPECT_EQ(slave_.replica.Info().log_end, 3);
  // Epoch 2: B is master (say the slave was not fresh) and writes x at position 2.
  b.role.Apply(MasterOf(clock_, 2));
  slave_.role.Apply(SlaveOf(2, "127.0.0.1:11"));
  ASSERT_TRUE(b.replica.Put("x", "9").ok());
  // Reported positions: B's epoch-2 log outranks the slave's longer epoch-1 log.
  EXPECT_GT(b.role.replication_position(), slave_.role.replication_position());
  // The slave's log does not match B's (it ends at 3, B's at 2): it resyncs.
  FetchRequest r = slave_.replica.NextFetch(2, milliseconds(0));
  EXPECT_EQ(r.from_position, 4);
  KvResult<FetchResponse> response = b.replica.Fetch(r);
  ASSERT_TRUE(response.ok());
  ASSERT_TRUE(response.value.snapshot.has_value());
  ASSERT_TRUE(slave_.replica.ApplyFetch(r, response.value).ok());
  EXPECT_EQ(slave_.replica.Get("b").value, std::nullopt);
  EXPECT_EQ(slave_.replica.Get("c").value, std::nullopt);
  EXPECT_EQ(slave_.replica.Get("x").value, std::optional<std::string>("9"));
  EXPECT_EQ(slave_.role.replication_position(), b.role.replication_position());
}

TEST_F(ReplicaTest, SameLengthDifferentEpochIsAMismatchToo) {
  Node a(clock_, "127.0.0.1:10", {.min_insync_replicas = 0});
  a.role.Apply(MasterOf(clock_, 1));
  ASSERT_TRUE(a.replica.Put("a", "1").ok());
  ASSERT_TRUE(FetchOnce(slave_, a, 1).ok());  // the slave holds (1, epoch 1)
  Node b(clock_, "127.0.0.1:11", {.min_insync_replicas = 0});
  b.role.Apply(MasterOf(clock_, 2));
  ASSERT_TRUE(b.replica.Put("z", "2").ok());  // B holds (1, epoch 2)
  slave_.role.Apply(SlaveOf(2, "127.0.0.1:11"));
  FetchRequest r = slave_.replica.NextFetch(2, milliseconds(0));
  KvResult<FetchResponse> response = b.replica.Fetch(r);
  ASSERT_TRUE(response.ok());
  EXPECT_TRUE(response.value.snapshot.has_value());  // prev_entry_epoch 1 != 2 at position 1
  ASSERT_TRUE(slave_.replica.ApplyFetch(r, response.value).ok());
  EXPECT_EQ(slave_.replica.Get("a").value, std::nullopt);
  EXPECT_EQ(slave_.replica.Get("z").value, std::optional<std::string>("2"));
}

TEST(PositionTest, EpochOfTheLastEntryComesFirst) {
  EXPECT_GT(EncodePosition(2, 1), EncodePosition(1, 1000000));
  EXPECT_GT(EncodePosition(2, 5), EncodePosition(2, 4));
  EXPECT_EQ(EncodePosition(0, 0), 0);
}

TEST(FollowerTest, SlavesFollowTheMasterAndEveryAcknowledgedWriteIsOnThem) {
  FakeClock clock;
  Node master(clock, kMasterAddress, {.min_insync_replicas = 2});
  Node s1(clock, "127.0.0.1:2");
  Node s2(clock, "127.0.0.1:3");
  master.role.Apply(MasterOf(clock, 1));
  s1.role.Apply(SlaveOf(1));
  s2.role.Apply(SlaveOf(1));
  FetchFn fetch = [&](const std::string& address, const FetchRequest& r) {
    EXPECT_EQ(address, kMasterAddress);
    return master.replica.Fetch(r);
  };
  Follower f1(s1.replica, s1.role, fetch, {.max_wait = milliseconds(200)});
  Follower f2(s2.replica, s2.role, fetch, {.max_wait = milliseconds(200)});
  f1.Start();
  f2.Start();
  ASSERT_TRUE(Eventually([&] { return master.replica.Info().insync_slaves == 2; }));
  std::vector<std::thread> writers;
  std::atomic<int> failed{0};
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        if (!master.replica.Put(std::to_string(t) + "/" + std::to_string(i), "v").ok()) failed++;
      }
    });
  }
  for (auto& w : writers) w.join();
  EXPECT_EQ(failed.load(), 0);
  // Acknowledged means on both slaves already (min_insync_replicas = 2).
  for (int t = 0; t < 4; ++t) {
    for (int i = 0; i < 50; ++i) {
      const std::string key = std::to_string(t) + "/" + std::to_string(i);
      EXPECT_EQ(s1.replica.Get(key).value, std::optional<std::string>("v")) << key;
      EXPECT_EQ(s2.replica.Get(key).value, std::optional<std::string>("v")) << key;
    }
  }
  // A demotion ends the master's long polls and the followers stop pulling from it.
  master.role.Apply(SlaveOf(2, "127.0.0.1:9"));
  f1.Stop();
  f2.Stop();
  EXPECT_GT(f1.fetches(), 0u);
}

}  // namespace
}  // namespace kvstore
