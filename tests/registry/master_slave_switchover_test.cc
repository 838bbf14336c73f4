// Rule 5, planned switchover (Store::Promote): stop_writes, the master's quiesced final
// position, the target catching up, the timeout, and the refusals.
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "master_slave_fixture.h"

namespace fulcrum::registry::ms_test {
namespace {

using std::chrono::milliseconds;

TEST_F(MasterSlaveTest, SwitchoverStopsWritesWaitsForCatchUpThenPromotes) {
  Register(9001);
  Register(9002);
  Register(9003);
  Beat(9001, 50);
  Beat(9002, 40);
  Beat(9003, 45);
  auto promoted =
      std::async(std::launch::async, [&] { return store_->Promote(kService, Addr(9002)); });
  // Promote publishes the target before it waits.
  for (int i = 0; i < 10000 && Group().switchover_target.empty(); ++i) std::this_thread::yield();
  ASSERT_EQ(Group().switchover_target, Addr(9002));

  thrift::Directives d = Beat(9001, 50);
  EXPECT_EQ(d.role, thrift::Role::MASTER);
  EXPECT_TRUE(d.stop_writes);
  EXPECT_GT(d.master_lease_ms, 0);  // stop_writes travels with a lease (RoleState needs one)
  Step(milliseconds(100));
  Beat(9001, 52, /*quiesced=*/true);  // final position 52
  Beat(9002, 51);                     // not caught up
  Beat(9003, 52);                     // caught up, but not the target
  EXPECT_EQ(Group().epoch, 1);
  Step(milliseconds(100));
  Beat(9002, 52);  // caught up: promoted on this heartbeat
  StatusOr<thrift::GroupState> result = promoted.get();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->epoch, 2);
  EXPECT_EQ(result->master_address, Addr(9002));
  EXPECT_TRUE(result->switchover_target.empty());
  EXPECT_EQ(persister_.saved.FindGroup(kService, kGroup)->epoch, 2);
  d = Beat(9001, 52);
  EXPECT_EQ(d.role, thrift::Role::SLAVE);
  EXPECT_EQ(d.master_address, Addr(9002));
  EXPECT_FALSE(d.stop_writes);
  d = Beat(9002, 52);
  EXPECT_EQ(d.role, thrift::Role::MASTER);
  EXPECT_FALSE(d.stop_writes);
}

TEST_F(MasterSlaveTest, SwitchoverTimesOutAndTheMasterResumes) {
  Register(9001);
  Register(9002);
  Beat(9001, 50);
  Beat(9002, 40);
  auto promoted =
      std::async(std::launch::async, [&] { return store_->Promote(kService, Addr(9002)); });
  for (int i = 0; i < 10000 && Group().switchover_target.empty(); ++i) std::this_thread::yield();
  ASSERT_EQ(Group().switchover_target, Addr(9002));
  for (int i = 0; i < 49; ++i) {
    Step(milliseconds(100));
    EXPECT_TRUE(Beat(9001, 50, /*quiesced=*/true).stop_writes);
    Beat(9002, 40);  // never catches up (replication is broken)
  }
  EXPECT_EQ(promoted.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
  Step(milliseconds(100));  // 5 s: abandoned
  StatusOr<thrift::GroupState> result = promoted.get();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(result.status().message().find("abandoned"), std::string::npos) << result.status();
  EXPECT_NE(result.status().message().find("final position is 50"), std::string::npos)
      << result.status();
  thrift::Directives d = Beat(9001, 50);
  EXPECT_EQ(d.role, thrift::Role::MASTER);
  EXPECT_FALSE(d.stop_writes);
  EXPECT_EQ(d.epoch, 1);
  EXPECT_TRUE(Group().switchover_target.empty());
}

TEST_F(MasterSlaveTest, PromoteRefusesWithClearErrors) {
  EXPECT_EQ(store_->Promote("nope", Addr(9001)).status().message(), "unknown service 'nope'");
  Register(9001);
  Register(9002);
  Beat(9001);
  Beat(9002);
  EXPECT_EQ(store_->Promote(kService, Addr(9999)).status().code(), StatusCode::kNotFound);
  Status s = store_->Promote(kService, Addr(9001)).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), Addr(9001) + " is already the master of kv/g1 (epoch 1)");
  thrift::Instance stateless;
  stateless.service_name = kService;
  stateless.host = "127.0.0.1";
  stateless.port = 9100;
  ASSERT_TRUE(store_->Register(stateless).ok());
  EXPECT_EQ(store_->Promote(kService, Addr(9100)).status().code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(store_->SetDrained(kService, Addr(9002), true).ok());
  EXPECT_EQ(store_->Promote(kService, Addr(9002)).status().message(), Addr(9002) + " is drained");
  ASSERT_TRUE(store_->SetDrained(kService, Addr(9002), false).ok());
  Step(milliseconds(700));  // the master has been silent longer than its lease
  Beat(9002);
  s = store_->Promote(kService, Addr(9002)).status();
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("no live master"), std::string::npos) << s;
  EXPECT_EQ(Group().epoch, 1);
}

}  // namespace
}  // namespace fulcrum::registry::ms_test
