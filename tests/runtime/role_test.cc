#include "fulcrum/role.h"

#include <gtest/gtest.h>

#include "testing/fake_clock.h"

namespace fulcrum {
namespace {

using std::chrono::milliseconds;
using testing::FakeClock;

RegistrarDirectives Master(const FakeClock& clock, int64_t epoch, bool stop_writes = false) {
  RegistrarDirectives d;
  d.role = InstanceRole::kMaster;
  d.epoch = epoch;
  d.master_address = "127.0.0.1:1";
  d.master_lease = milliseconds(600);
  d.sent_at = clock.Now();
  d.stop_writes = stop_writes;
  return d;
}

TEST(RoleStateTest, WritableOnlyWithinTheLeaseLessTheMargin) {
  FakeClock clock;
  RoleState role(clock, milliseconds(100));
  EXPECT_FALSE(role.Writable());
  role.Apply(Master(clock, 1));
  EXPECT_TRUE(role.Writable());
  clock.Advance(milliseconds(499));
  EXPECT_TRUE(role.Writable());
  clock.Advance(milliseconds(2));  // 501 ms: under 100 ms of lease left
  EXPECT_FALSE(role.Writable());
  EXPECT_TRUE(role.LeaseValid());
  clock.Advance(milliseconds(100));
  EXPECT_FALSE(role.LeaseValid());
  EXPECT_TRUE(role.is_master());  // the registry's word stands; only the lease ran out
}

TEST(RoleStateTest, DemotionEndsTheLeaseAndOlderEpochsAreIgnored) {
  FakeClock clock;
  RoleState role(clock);
  std::vector<RoleInfo> seen;
  role.OnChange([&](const RoleInfo& r) { seen.push_back(r); });
  role.Apply(Master(clock, 3));
  RegistrarDirectives slave;
  slave.role = InstanceRole::kSlave;
  slave.epoch = 4;
  slave.master_address = "127.0.0.1:2";
  role.Apply(slave);
  EXPECT_FALSE(role.Writable());
  role.Apply(Master(clock, 3));  // a stale reply
  EXPECT_FALSE(role.Writable());
  EXPECT_EQ(role.epoch(), 4);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].role, InstanceRole::kMaster);
  EXPECT_EQ(seen[1].master_address, "127.0.0.1:2");
}

TEST(RoleStateTest, StopWritesQuiescesOnceAdmittedWritesEnd) {
  FakeClock clock;
  RoleState role(clock);
  role.Apply(Master(clock, 1));
  ASSERT_TRUE(role.BeginWrite());
  role.Apply(Master(clock, 1, /*stop_writes=*/true));
  EXPECT_FALSE(role.BeginWrite());
  EXPECT_FALSE(role.writes_quiesced());  // one admitted write still runs
  role.EndWrite();
  EXPECT_TRUE(role.writes_quiesced());
  role.Apply(Master(clock, 1));  // switchover aborted: writes resume
  EXPECT_TRUE(role.BeginWrite());
  role.EndWrite();
  role.StopWrites();
  EXPECT_FALSE(role.BeginWrite());
}

TEST(NotMasterTest, RoundTripsAndRejectsOtherMessages) {
  const auto parsed = ParseNotMaster(FormatNotMaster({"[::1]:9000", 7}));
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->master_address, "[::1]:9000");
  EXPECT_EQ(parsed->epoch, 7);
  const auto none = ParseNotMaster(FormatNotMaster({"", 2}));
  ASSERT_TRUE(none.has_value());
  EXPECT_EQ(none->master_address, "");
  EXPECT_FALSE(ParseNotMaster("Internal error").has_value());
  EXPECT_FALSE(ParseNotMaster("fulcrum: not master; master=a:1; epoch=x").has_value());
  EXPECT_FALSE(ParseNotMaster("fulcrum: not master; master=a:1").has_value());
}

}  // namespace
}  // namespace fulcrum
