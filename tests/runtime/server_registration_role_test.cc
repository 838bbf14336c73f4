// ServerRegistration with a RoleState (master-slave): heartbeat replies set the role, the load
// report carries the replication position and writes_quiesced, and a drain stops writes before
// it deregisters.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "fulcrum/server_registration.h"
#include "support/test_server.h"

namespace fulcrum {
namespace {

class RecordingRegistrar final : public Registrar {
 public:
  // `role` is looked at when Deregister is called, to check the drain's order.
  RecordingRegistrar(std::vector<std::string>* events, const RoleState* role)
      : events_(events), role_(role) {}
  Status Register(const ServiceInstance& instance, RegistrationOptions options) override {
    instance_ = instance;
    options_ = std::move(options);
    events_->push_back("register");
    return Status::Ok();
  }
  Status Deregister() override {
    events_->push_back(role_->Writable() ? "deregister while writable" : "deregister");
    return Status::Ok();
  }
  bool registered() const override { return true; }

  ServiceInstance instance_;
  RegistrationOptions options_;

 private:
  std::vector<std::string>* events_;
  const RoleState* role_;
};

RegistrarDirectives MasterReply(int64_t epoch) {
  RegistrarDirectives d;
  d.role = InstanceRole::kMaster;
  d.epoch = epoch;
  d.master_address = "127.0.0.1:1";
  d.master_lease = std::chrono::seconds(60);
  d.sent_at = Clock::Real().Now();
  return d;
}

TEST(ServerRegistrationRoleTest, HeartbeatsDriveTheRoleAndReportReplication) {
  auto role = std::make_shared<RoleState>();
  auto server = testing::TestServer::Start({.role = role});
  ASSERT_TRUE(server.ok()) << server.status();
  std::vector<std::string> events;
  auto registrar = std::make_unique<RecordingRegistrar>(&events, role.get());
  RecordingRegistrar* r = registrar.get();
  ServiceInstance instance{.service = "echo", .host = "127.0.0.1", .group = "g1", .priority = 3};
  auto reg = ServerRegistration::Start(&(*server)->server(), std::move(registrar), instance, role,
                                       DrainOptions{.quiet_period = std::chrono::milliseconds(0)});
  ASSERT_TRUE(reg.ok()) << reg.status();
  EXPECT_EQ(r->instance_.group, "g1");
  EXPECT_EQ(r->instance_.priority, 3);
  ASSERT_TRUE(r->options_.on_directives);
  ASSERT_TRUE(r->options_.load);

  EXPECT_FALSE(role->is_master());
  r->options_.on_directives(MasterReply(4));
  EXPECT_TRUE(role->is_master());
  EXPECT_EQ(role->epoch(), 4);
  EXPECT_TRUE(role->Writable());

  role->set_replication_position(42);
  LoadReport load = r->options_.load();
  EXPECT_EQ(load.replication_position, 42);
  EXPECT_FALSE(load.writes_quiesced);

  // A switchover asks the master to stop writes; with nothing in flight it reports quiesced.
  RegistrarDirectives stop = MasterReply(4);
  stop.stop_writes = true;
  r->options_.on_directives(stop);
  EXPECT_FALSE(role->Writable());
  EXPECT_TRUE(r->options_.load().writes_quiesced);

  // Resumed (switchover abandoned), then drained: writes stop before deregistering.
  r->options_.on_directives(MasterReply(4));
  EXPECT_TRUE(role->Writable());
  EXPECT_TRUE((*reg)->Drain().ok());
  EXPECT_EQ(events, (std::vector<std::string>{"register", "deregister"}));
  EXPECT_FALSE(role->Writable());
}

TEST(ServerRegistrationRoleTest, StatelessRegistrationReportsNoReplication) {
  auto server = testing::TestServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  std::vector<std::string> events;
  RoleState unused;
  auto registrar = std::make_unique<RecordingRegistrar>(&events, &unused);
  RecordingRegistrar* r = registrar.get();
  auto reg = ServerRegistration::Start(&(*server)->server(), std::move(registrar),
                                       ServiceInstance{.service = "echo", .host = "127.0.0.1"});
  ASSERT_TRUE(reg.ok()) << reg.status();
  r->options_.on_directives(MasterReply(1));  // ignored: no RoleState
  const LoadReport load = r->options_.load();
  EXPECT_EQ(load.replication_position, 0);
  EXPECT_FALSE(load.writes_quiesced);
  EXPECT_FALSE(unused.is_master());
}

}  // namespace
}  // namespace fulcrum
