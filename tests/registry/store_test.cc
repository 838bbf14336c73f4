#include "server/store.h"

#include <gtest/gtest.h>

#include "testing/fake_clock.h"

namespace fulcrum::registry {
namespace {

using std::chrono::milliseconds;

thrift::Instance MakeInstance(const std::string& service, int port, int weight = 1) {
  thrift::Instance i;
  i.service_name = service;
  i.host = "127.0.0.1";
  i.port = port;
  i.weight = weight;
  i.zone = "z1";
  return i;
}

class FailingPersister final : public AdminPersister {
 public:
  Status Save(const AdminState&) override {
    return Status::Error(StatusCode::kInternal, "disk full");
  }
};

class StoreTest : public ::testing::Test {
 protected:
  testing::FakeClock clock_;
  Store store_{clock_, StoreOptions{}};
};

TEST_F(StoreTest, RejectsInvalidRegistrationsWithClearErrors) {
  auto empty = store_.Register(MakeInstance("", 9000));
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(empty.status().message(), "service name is empty");

  auto port0 = store_.Register(MakeInstance("calc", 0));
  EXPECT_EQ(port0.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(port0.status().message(), "port 0 is not in 1..65535");

  auto big_port = store_.Register(MakeInstance("calc", 70000));
  EXPECT_EQ(big_port.status().code(), StatusCode::kInvalidArgument);

  auto negative = store_.Register(MakeInstance("calc", 9000, -2));
  EXPECT_EQ(negative.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(negative.status().message(), "weight -2 is negative");

  thrift::Instance no_host = MakeInstance("calc", 9000);
  no_host.host = "";
  EXPECT_EQ(store_.Register(no_host).status().message(), "host is empty");

  thrift::Instance fat = MakeInstance("calc", 9000);
  for (int i = 0; i < 100; ++i) fat.metadata["k" + std::to_string(i)] = "v";
  EXPECT_EQ(store_.Register(fat).status().code(), StatusCode::kInvalidArgument);

  EXPECT_EQ(store_.instance_count(), 0u);
}

TEST_F(StoreTest, RegisterLookupAndVersions) {
  EXPECT_EQ(store_.Lookup("calc").version, 0);
  auto a = store_.Register(MakeInstance("calc", 9001, 2));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_NE(a->id, 0);
  EXPECT_EQ(a->heartbeat_interval_ms, 500);
  EXPECT_EQ(a->heartbeat_timeout_ms, 1500);
  const int64_t v1 = store_.Lookup("calc").version;
  ASSERT_TRUE(store_.Register(MakeInstance("calc", 9002)).ok());
  thrift::ServiceSnapshot snap = store_.Lookup("calc");
  EXPECT_GT(snap.version, v1);
  ASSERT_EQ(snap.instances.size(), 2u);
  EXPECT_EQ(snap.instances[0].instance.port, 9001);
  EXPECT_EQ(snap.instances[0].effective_weight, 2);
  EXPECT_EQ(snap.instances[0].health, thrift::Health::UP);
  EXPECT_EQ(snap.instances[1].instance.port, 9002);

  // Heartbeats carry load but are not news for watchers: the version stays.
  thrift::LoadReport load;
  load.in_flight = 7;
  load.calls_per_second = 12.5;
  thrift::Directives d = store_.Heartbeat(a->id, load);
  EXPECT_FALSE(d.reregister);
  EXPECT_EQ(store_.Lookup("calc").version, snap.version);
  EXPECT_EQ(store_.Lookup("calc").instances[0].load.in_flight, 7);

  store_.Deregister(a->id);
  snap = store_.Lookup("calc");
  ASSERT_EQ(snap.instances.size(), 1u);
  EXPECT_EQ(snap.instances[0].instance.port, 9002);
  store_.Deregister(a->id);  // twice is harmless
}

TEST_F(StoreTest, VersionsStartAtTheBaseSoTheyGrowAcrossRestarts) {
  Store later(clock_, StoreOptions{.version_base = 1'000'000});
  ASSERT_TRUE(later.Register(MakeInstance("calc", 9001)).ok());
  EXPECT_GT(later.Lookup("calc").version, 1'000'000);
}

TEST_F(StoreTest, UnknownLeaseAsksToReregister) {
  thrift::Directives d = store_.Heartbeat(12345, {});
  EXPECT_TRUE(d.reregister);
  EXPECT_EQ(d.heartbeat_interval_ms, 500);
}

TEST_F(StoreTest, ReregisteringAnAddressReplacesTheOldLease) {
  auto first = store_.Register(MakeInstance("calc", 9001));
  auto second = store_.Register(MakeInstance("calc", 9001, 5));
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_NE(first->id, second->id);
  EXPECT_TRUE(store_.Heartbeat(first->id, {}).reregister);
  EXPECT_FALSE(store_.Heartbeat(second->id, {}).reregister);
  ASSERT_EQ(store_.Lookup("calc").instances.size(), 1u);
  EXPECT_EQ(store_.Lookup("calc").instances[0].effective_weight, 5);
}

TEST_F(StoreTest, FailureDetectorMarksSilentInstancesDownAfterTheTimeout) {
  auto a = store_.Register(MakeInstance("calc", 9001));
  auto b = store_.Register(MakeInstance("calc", 9002));
  ASSERT_TRUE(a.ok() && b.ok());
  const int64_t v0 = store_.Lookup("calc").version;

  // b keeps heartbeating; a goes silent.
  for (int i = 0; i < 3; ++i) {
    clock_.Advance(milliseconds(500));
    store_.Heartbeat(b->id, {});
    EXPECT_EQ(store_.Sweep(), 0) << "at " << (i + 1) * 500 << " ms";
  }
  // 1500 ms exactly is not yet past the timeout.
  EXPECT_EQ(store_.Lookup("calc").instances[0].health, thrift::Health::UP);
  clock_.Advance(milliseconds(1));
  EXPECT_EQ(store_.Sweep(), 1);
  thrift::ServiceSnapshot snap = store_.Lookup("calc");
  EXPECT_EQ(snap.instances[0].health, thrift::Health::DOWN);
  EXPECT_EQ(snap.instances[0].last_heartbeat_age_ms, 1501);
  EXPECT_EQ(snap.instances[1].health, thrift::Health::UP);
  EXPECT_GT(snap.version, v0);
  EXPECT_EQ(store_.Sweep(), 0);  // already down: no second change

  // A heartbeat brings it back, and that is news too.
  const int64_t v_down = snap.version;
  EXPECT_FALSE(store_.Heartbeat(a->id, {}).reregister);
  snap = store_.Lookup("calc");
  EXPECT_EQ(snap.instances[0].health, thrift::Health::UP);
  EXPECT_GT(snap.version, v_down);
}

TEST_F(StoreTest, DownInstancesAreForgottenAfterTheTtl) {
  Store store(clock_, StoreOptions{.down_ttl = std::chrono::seconds(10)});
  auto a = store.Register(MakeInstance("calc", 9001));
  ASSERT_TRUE(a.ok());
  clock_.Advance(std::chrono::seconds(2));
  EXPECT_EQ(store.Sweep(), 1);
  EXPECT_EQ(store.instance_count(), 1u);
  clock_.Advance(std::chrono::seconds(9));
  EXPECT_EQ(store.Sweep(), 1);
  EXPECT_EQ(store.instance_count(), 0u);
  EXPECT_TRUE(store.Heartbeat(a->id, {}).reregister);
  EXPECT_TRUE(store.ListServices().empty());
}

TEST_F(StoreTest, AdminWeightOverridesAndClears) {
  ASSERT_TRUE(store_.Register(MakeInstance("calc", 9001, 3)).ok());
  const int64_t v0 = store_.Lookup("calc").version;
  ASSERT_TRUE(store_.SetWeight("calc", "127.0.0.1:9001", 10).ok());
  thrift::ServiceSnapshot snap = store_.Lookup("calc");
  EXPECT_GT(snap.version, v0);
  EXPECT_EQ(snap.instances[0].effective_weight, 10);
  EXPECT_TRUE(snap.instances[0].admin_weight_set);
  EXPECT_EQ(snap.instances[0].instance.weight, 3);

  ASSERT_TRUE(store_.SetWeight("calc", "127.0.0.1:9001", -1).ok());
  snap = store_.Lookup("calc");
  EXPECT_EQ(snap.instances[0].effective_weight, 3);
  EXPECT_FALSE(snap.instances[0].admin_weight_set);
  EXPECT_EQ(store_.admin_state().size(), 0u);

  Status bad = store_.SetWeight("calc", "127.0.0.1:9001", -5);
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
}

TEST_F(StoreTest, DrainIsAdminStateAndReachesHeartbeats) {
  auto a = store_.Register(MakeInstance("calc", 9001));
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(store_.SetDrained("calc", "127.0.0.1:9001", true).ok());
  EXPECT_TRUE(store_.Lookup("calc").instances[0].drained);
  EXPECT_TRUE(store_.Heartbeat(a->id, {}).drained);
  EXPECT_EQ(store_.ListServices().at(0).drained, 1);
  ASSERT_TRUE(store_.SetDrained("calc", "127.0.0.1:9001", false).ok());
  EXPECT_FALSE(store_.Lookup("calc").instances[0].drained);
  EXPECT_FALSE(store_.Heartbeat(a->id, {}).drained);
}

TEST_F(StoreTest, AdminCallsOnUnknownServiceOrInstanceSayWhich) {
  ASSERT_TRUE(store_.Register(MakeInstance("calc", 9001)).ok());
  Status s = store_.SetDrained("nope", "127.0.0.1:9001", true);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "unknown service 'nope'");
  s = store_.SetWeight("calc", "127.0.0.1:9999", 1);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "service 'calc' has no instance 127.0.0.1:9999");
  EXPECT_EQ(store_.Remove("calc", "10.0.0.1:1").code(), StatusCode::kNotFound);
}

TEST_F(StoreTest, RemoveForgetsInstanceAndItsAdminState) {
  auto a = store_.Register(MakeInstance("calc", 9001));
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(store_.SetWeight("calc", "127.0.0.1:9001", 4).ok());
  ASSERT_TRUE(store_.Remove("calc", "127.0.0.1:9001").ok());
  EXPECT_EQ(store_.instance_count(), 0u);
  EXPECT_EQ(store_.admin_state().size(), 0u);
  EXPECT_TRUE(store_.Heartbeat(a->id, {}).reregister);
}

TEST_F(StoreTest, AdminStateAppliesToInstancesThatRegisterLater) {
  // After a registry restart the admin state is loaded before instances re-register.
  AdminState admin;
  admin.Set("calc", "127.0.0.1:9001", {7, true});
  Store store(clock_, StoreOptions{}, admin);
  EXPECT_EQ(store.ListServices().size(), 1u);  // listed from admin state alone
  ASSERT_TRUE(store.SetDrained("calc", "127.0.0.1:9001", false).ok());  // known via admin state
  ASSERT_TRUE(store.Register(MakeInstance("calc", 9001, 1)).ok());
  thrift::ServiceSnapshot snap = store.Lookup("calc");
  EXPECT_EQ(snap.instances[0].effective_weight, 7);
  EXPECT_FALSE(snap.instances[0].drained);
}

TEST_F(StoreTest, AFailedPersistChangesNothing) {
  FailingPersister failing;
  Store store(clock_, StoreOptions{}, AdminState(), &failing);
  ASSERT_TRUE(store.Register(MakeInstance("calc", 9001)).ok());
  const int64_t v0 = store.Lookup("calc").version;
  Status s = store.SetWeight("calc", "127.0.0.1:9001", 9);
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_EQ(s.message(), "disk full");
  EXPECT_EQ(store.Lookup("calc").instances[0].effective_weight, 1);
  EXPECT_EQ(store.Lookup("calc").version, v0);
  EXPECT_EQ(store.admin_state().size(), 0u);
}

TEST_F(StoreTest, Ipv6AddressesAreBracketed) {
  EXPECT_EQ(Store::Address("::1", 80), "[::1]:80");
  EXPECT_EQ(Store::Address("10.0.0.1", 80), "10.0.0.1:80");
}

}  // namespace
}  // namespace fulcrum::registry
