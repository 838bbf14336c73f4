// The server fulcrum-gen writes for a master-slave service (idl/ms_store.thrift), end to end:
// it refuses writes with NotMaster unless role() says it is a writable master, serves reads
// either way, drops refused oneway calls, registers through ServeOptions and drains; and the
// generated client, routed by role-tagged endpoints, follows its redirects and, with
// read_from_slaves, balances fulcrum.read functions over every instance.
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <thrift/TApplicationException.h>

#include "fulcrum/role.h"
#include "ms_store_fulcrum.h"
#include "support/master_slave_helpers.h"

namespace fulcrum {
namespace {

using mstest::fulcrum_gen::StoreBalancedClient;
using mstest::fulcrum_gen::StoreServer;
using testing::MasterReply;
using testing::SlaveReply;

class StoreHandler : public mstest::StoreIf {
 public:
  void get(std::string& out, const std::string& key) override {
    ++gets_;
    out = "value-of-" + key;
  }
  int64_t put(const std::string&, const std::string&) override { return ++writes_; }
  void log(const std::string&) override { ++writes_; }
  int64_t writes() override { return writes_.load(); }
  int64_t gets() const { return gets_.load(); }

 private:
  std::atomic<int64_t> writes_{0};
  std::atomic<int64_t> gets_{0};
};

// The channel's endpoints come from the test.
class NullResolver final : public Resolver {
 public:
  Status Start(ResolverListener*) override { return Status::Ok(); }
  void Stop() override {}
};

std::string Address(const StoreServer& s) { return "127.0.0.1:" + std::to_string(s.port()); }

// A client straight to one server, no master-slave routing: refusals reach the caller.
std::unique_ptr<StoreBalancedClient> DirectClient(const StoreServer& s) {
  ChannelOptions options = mstest::fulcrum_gen::StoreChannelOptions();
  options.master_slave = false;
  return std::make_unique<StoreBalancedClient>("static://" + Address(s), options);
}

TEST(MasterSlaveCodegen, ChannelOptionsAskForMasterSlaveRouting) {
  EXPECT_TRUE(mstest::fulcrum_gen::StoreChannelOptions().master_slave);
  EXPECT_FALSE(mstest::fulcrum_gen::StoreChannelOptions().read_from_slaves);
  EXPECT_TRUE(StoreServer::kMasterSlave);
  EXPECT_TRUE(mstest::fulcrum_gen::StoreMethods::get.read);
  EXPECT_FALSE(mstest::fulcrum_gen::StoreMethods::put.read);
}

TEST(MasterSlaveCodegen, RefusesWritesUnlessMasterAndServesReads) {
  auto handler = std::make_shared<StoreHandler>();
  auto server = StoreServer::Serve(handler, {.port = 0});
  ASSERT_TRUE(server.ok()) << server.status();
  StoreServer& s = *server.value();
  auto client = DirectClient(s);

  // Not master yet (no heartbeat reply): reads are served, writes refused without running.
  std::string value;
  client->get(value, "k");
  EXPECT_EQ(value, "value-of-k");
  try {
    client->put("k", "v");
    FAIL() << "a slave must refuse the write";
  } catch (const apache::thrift::TApplicationException& e) {
    EXPECT_EQ(e.getType(), kNotMasterExceptionType);
    std::optional<NotMaster> redirect = ParseNotMaster(e.what());
    ASSERT_TRUE(redirect.has_value()) << e.what();
    EXPECT_EQ(redirect->master_address, "");
    EXPECT_EQ(redirect->epoch, 0);
  }
  client->log("dropped");  // a refused oneway call is dropped, and the connection stays usable
  EXPECT_EQ(client->writes(), 0);

  // A slave of epoch 3 names its master.
  std::vector<RoleInfo> changes;
  std::mutex mu;
  s.role().OnChange([&](const RoleInfo& r) {
    std::lock_guard<std::mutex> lock(mu);
    changes.push_back(r);
  });
  s.role().Apply(SlaveReply(3, "127.0.0.1:1"));
  try {
    client->put("k", "v");
    FAIL() << "a slave must refuse the write";
  } catch (const apache::thrift::TApplicationException& e) {
    std::optional<NotMaster> redirect = ParseNotMaster(e.what());
    ASSERT_TRUE(redirect.has_value()) << e.what();
    EXPECT_EQ(redirect->master_address, "127.0.0.1:1");
    EXPECT_EQ(redirect->epoch, 3);
  }

  // Promoted: writes run.
  s.role().Apply(MasterReply(4, Address(s)));
  EXPECT_TRUE(s.role().is_master());
  EXPECT_EQ(client->put("k", "v"), 1);
  client->log("kept");
  EXPECT_EQ(client->writes(), 2);
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(changes.size(), 2u);
    EXPECT_EQ(changes[0].role, InstanceRole::kSlave);
    EXPECT_EQ(changes[1].role, InstanceRole::kMaster);
    EXPECT_EQ(changes[1].epoch, 4);
  }

  // Drained without a registry: writes stop, then the server.
  EXPECT_TRUE(s.Drain().ok());
  EXPECT_FALSE(s.role().Writable());
}

TEST(MasterSlaveCodegen, GeneratedClientFollowsTheServersRedirect) {
  auto serve = [] {
    auto server = StoreServer::Serve(std::make_shared<StoreHandler>(), {.port = 0});
    EXPECT_TRUE(server.ok()) << server.status();
    return std::move(server).value();
  };
  std::unique_ptr<StoreServer> a = serve();
  std::unique_ptr<StoreServer> b = serve();
  ASSERT_TRUE(a && b);
  a->role().Apply(MasterReply(2, Address(*a)));
  b->role().Apply(SlaveReply(2, Address(*a)));

  auto channel =
      Channel::Create(std::make_unique<NullResolver>(), mstest::fulcrum_gen::StoreChannelOptions());
  ASSERT_TRUE(channel.ok()) << channel.status();
  // The client still believes b is master (epoch 1).
  auto tagged = [](const StoreServer& s, InstanceRole role) {
    Endpoint e{"127.0.0.1", s.port()};
    e.group = "g1";
    e.role = role;
    e.epoch = 1;
    return e;
  };
  (*channel)->UpdateEndpoints(
      {{tagged(*a, InstanceRole::kSlave), tagged(*b, InstanceRole::kMaster)}});
  StoreBalancedClient client(*channel);
  EXPECT_EQ(client.put("k", "v"), 1);  // refused by b, redirected to a, run once
  EXPECT_EQ(DirectClient(*a)->writes(), 1);
  EXPECT_EQ(DirectClient(*b)->writes(), 0);
  EXPECT_EQ((*channel)->redirects(), 1u);
}

TEST(MasterSlaveCodegen, ReadFromSlavesSpreadsReadsAndKeepsWritesOnTheMaster) {
  auto ha = std::make_shared<StoreHandler>();
  auto hb = std::make_shared<StoreHandler>();
  auto a = StoreServer::Serve(ha, {.port = 0});
  auto b = StoreServer::Serve(hb, {.port = 0});
  ASSERT_TRUE(a.ok() && b.ok());
  (*a)->role().Apply(MasterReply(2, Address(**a)));
  (*b)->role().Apply(SlaveReply(2, Address(**a)));
  auto tagged = [](const StoreServer& s, InstanceRole role) {
    Endpoint e{"127.0.0.1", s.port()};
    e.group = "g1";
    e.role = role;
    e.epoch = 2;
    return e;
  };
  for (bool from_slaves : {false, true}) {
    ChannelOptions options = mstest::fulcrum_gen::StoreChannelOptions();
    options.read_from_slaves = from_slaves;
    options.balancer = "round_robin";
    auto channel = Channel::Create(std::make_unique<NullResolver>(), options);
    ASSERT_TRUE(channel.ok()) << channel.status();
    (*channel)->UpdateEndpoints(
        {{tagged(**a, InstanceRole::kMaster), tagged(**b, InstanceRole::kSlave)}});
    StoreBalancedClient client(*channel);
    const int64_t gets_a = ha->gets();
    const int64_t gets_b = hb->gets();
    const int64_t writes_a = ha->writes();
    std::string value;
    for (int i = 0; i < 20; ++i) client.get(value, "k");
    for (int i = 0; i < 5; ++i) client.put("k", "v");
    // Reads: balanced over both instances, or all on the master.
    EXPECT_EQ(ha->gets() - gets_a, from_slaves ? 10 : 20) << "from_slaves " << from_slaves;
    EXPECT_EQ(hb->gets() - gets_b, from_slaves ? 10 : 0) << "from_slaves " << from_slaves;
    // Writes: on the master either way, never refused by the slave.
    EXPECT_EQ(ha->writes() - writes_a, 5);
    EXPECT_EQ(hb->writes(), 0);
    EXPECT_EQ((*channel)->redirects(), 0u);
  }
}

// A registrar scheme the test owns, to see what the generated Serve registers.
struct FakeRegistry {
  std::mutex mu;
  ServiceInstance instance;
  RegistrationOptions options;
  std::vector<std::string> events;
};
FakeRegistry& Registry() {
  static FakeRegistry r;
  return r;
}

class FakeRegistrar final : public Registrar {
 public:
  Status Register(const ServiceInstance& instance, RegistrationOptions options) override {
    std::lock_guard<std::mutex> lock(Registry().mu);
    Registry().instance = instance;
    Registry().options = std::move(options);
    Registry().events.push_back("register");
    return Status::Ok();
  }
  Status Deregister() override {
    std::lock_guard<std::mutex> lock(Registry().mu);
    Registry().events.push_back("deregister");
    return Status::Ok();
  }
  bool registered() const override { return true; }
};

TEST(MasterSlaveCodegen, ServeRegistersHeartbeatsDriveTheRoleAndDrainDeregisters) {
  ASSERT_TRUE(RegisterRegistrarScheme("fake-ms", [](std::string_view) {
                return StatusOr<std::unique_ptr<Registrar>>(std::make_unique<FakeRegistrar>());
              }).ok());
  auto handler = std::make_shared<StoreHandler>();

  // A master-slave instance without a group is refused before it serves.
  auto no_group = StoreServer::Serve(
      handler, ServeOptions{.registrar = "fake-ms://x", .instance = {.host = "127.0.0.1"}});
  ASSERT_FALSE(no_group.ok());
  EXPECT_EQ(no_group.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(no_group.status().message().find("group"), std::string::npos);

  auto server = StoreServer::Serve(
      handler, ServeOptions{.registrar = "fake-ms://x",
                            .instance = {.host = "127.0.0.1", .group = "g1", .priority = 2},
                            .drain = {.quiet_period = std::chrono::milliseconds(0)}});
  ASSERT_TRUE(server.ok()) << server.status();
  StoreServer& s = *server.value();
  ASSERT_NE(s.registration(), nullptr);
  RegistrationOptions options;
  {
    std::lock_guard<std::mutex> lock(Registry().mu);
    EXPECT_EQ(Registry().instance.service, "Store");  // the IDL's name
    EXPECT_EQ(Registry().instance.port, s.port());
    EXPECT_EQ(Registry().instance.group, "g1");
    EXPECT_EQ(Registry().instance.priority, 2);
    options = Registry().options;
  }
  ASSERT_TRUE(options.on_directives && options.load);

  // A heartbeat reply makes it master; its load report carries the replication position.
  options.on_directives(MasterReply(1, Address(s)));
  EXPECT_TRUE(s.role().Writable());
  EXPECT_EQ(DirectClient(s)->put("k", "v"), 1);
  s.role().set_replication_position(17);
  EXPECT_EQ(options.load().replication_position, 17);

  EXPECT_TRUE(s.Drain().ok());
  EXPECT_FALSE(s.role().Writable());
  std::lock_guard<std::mutex> lock(Registry().mu);
  EXPECT_EQ(Registry().events, (std::vector<std::string>{"register", "deregister"}));
}

}  // namespace
}  // namespace fulcrum
