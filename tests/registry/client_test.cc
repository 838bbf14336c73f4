// The registry served in-process over real loopback Thrift, with the fulcrum:// Registrar and
// Resolver as clients: registration, auth, weights and drains reaching resolvers, a registry
// restart (re-registration), and a registry outage (resolvers keep their last set).
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

#include "child_process.h"
#include "fulcrum/role.h"
#include "fulcrum_registrar.h"
#include "fulcrum_resolver.h"
#include "server/daemon.h"

namespace fulcrum::registry {

using registry_client::ConnectionOptions;
using registry_client::FulcrumRegistrar;
using registry_client::FulcrumRegistrarOptions;
using registry_client::FulcrumResolver;
using registry_client::FulcrumResolverOptions;
using registry_client::RegistryConnection;

namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kToken[] = "test-token-123";

class RecordingListener final : public ResolverListener {
 public:
  void OnUpdate(EndpointSet endpoints) override {
    std::lock_guard lock(mu_);
    sets_.push_back(std::move(endpoints));
    cv_.notify_all();
  }
  void OnError(const Status& status) override {
    std::lock_guard lock(mu_);
    errors_.push_back(status);
    cv_.notify_all();
  }
  // Waits (bounded) until the latest set satisfies `pred`.
  bool WaitForSet(const std::function<bool(const EndpointSet&)>& pred,
                  milliseconds timeout = seconds(10)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return !sets_.empty() && pred(sets_.back()); });
  }
  bool WaitForError(milliseconds timeout = seconds(10)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return !errors_.empty(); });
  }
  EndpointSet last() {
    std::lock_guard lock(mu_);
    return sets_.back();
  }
  size_t updates() {
    std::lock_guard lock(mu_);
    return sets_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<EndpointSet> sets_;
  std::vector<Status> errors_;
};

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_test::WriteFile(dir_.path() + "/token", kToken);
    StartDaemon(0);
  }

  void StartDaemon(int port) {
    DaemonOptions options;
    options.port = port;
    options.data_dir = dir_.path() + "/data";
    options.token_file = dir_.path() + "/token";
    options.heartbeat_interval = milliseconds(50);
    options.heartbeat_timeout = milliseconds(300);
    daemon_ = std::make_unique<RegistryDaemon>(options);
    Status s = daemon_->Start();
    ASSERT_TRUE(s.ok()) << s;
  }

  ConnectionOptions Conn() const {
    ConnectionOptions c;
    c.port = daemon_->port();
    return c;
  }

  std::unique_ptr<FulcrumRegistrar> MakeRegistrar(const std::string& token = kToken) {
    FulcrumRegistrarOptions o;
    o.connection = Conn();
    o.token = token;
    o.heartbeat_interval = milliseconds(50);
    o.min_backoff = milliseconds(20);
    o.max_backoff = milliseconds(100);
    return std::make_unique<FulcrumRegistrar>(o);
  }

  std::unique_ptr<FulcrumResolver> MakeResolver(const std::string& service) {
    FulcrumResolverOptions o;
    o.connection = Conn();
    o.service = service;
    o.max_wait = milliseconds(2000);
    o.min_backoff = milliseconds(20);
    o.max_backoff = milliseconds(100);
    return std::make_unique<FulcrumResolver>(o);
  }

  static ServiceInstance Instance(uint16_t port, uint32_t weight = 1) {
    ServiceInstance i;
    i.service = "calc";
    i.host = "127.0.0.1";
    i.port = port;
    i.weight = weight;
    i.zone = "z1";
    return i;
  }

  std::unique_ptr<RegistryConnection> Admin() {
    auto conn = RegistryConnection::Open(Conn());
    EXPECT_TRUE(conn.ok()) << conn.status();
    return std::move(conn).value();
  }

  registry_test::TempDir dir_;
  std::unique_ptr<RegistryDaemon> daemon_;
};

TEST_F(ClientTest, RegistrationNeedsTheTokenAndRefusalsSayWhy) {
  auto conn = Admin();
  thrift::Instance instance;
  instance.service_name = "calc";
  instance.host = "127.0.0.1";
  instance.port = 9001;
  thrift::Lease lease;
  try {
    conn->client().register_instance(lease, "wrong", instance);
    FAIL() << "registered with a wrong token";
  } catch (const thrift::RegistryError& e) {
    EXPECT_EQ(e.code, thrift::ErrorCode::UNAUTHENTICATED);
    EXPECT_EQ(e.message,
              "register_instance needs the registry's token (the one sent does not match)");
  }
  try {
    conn->client().drain("", "calc", "127.0.0.1:9001");
    FAIL() << "drained without a token";
  } catch (const thrift::RegistryError& e) {
    EXPECT_EQ(e.code, thrift::ErrorCode::UNAUTHENTICATED);
  }
  instance.port = 0;
  try {
    conn->client().register_instance(lease, kToken, instance);
    FAIL() << "registered port 0";
  } catch (const thrift::RegistryError& e) {
    EXPECT_EQ(e.code, thrift::ErrorCode::INVALID_ARGUMENT);
    EXPECT_EQ(e.message, "port 0 is not in 1..65535");
  }
  // Lookups and watches are open.
  thrift::ServiceSnapshot snap;
  conn->client().lookup(snap, "calc");
  EXPECT_EQ(snap.version, 0);
  thrift::WatchResult r;
  try {
    conn->client().watch(r, "calc", 0, -5);
    FAIL() << "negative max wait accepted";
  } catch (const thrift::RegistryError& e) {
    EXPECT_EQ(e.code, thrift::ErrorCode::INVALID_ARGUMENT);
  }
}

TEST_F(ClientTest, RegistrarWithWrongTokenIsRefusedUpFront) {
  auto registrar = MakeRegistrar("nope");
  Status s = registrar->Register(Instance(9001), {});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("needs the registry's token"), std::string::npos) << s;
  EXPECT_FALSE(registrar->registered());
}

TEST_F(ClientTest, ResolverFollowsRegistrationsWeightsDrainsAndDeregistration) {
  RecordingListener listener;
  auto resolver = MakeResolver("calc");
  ASSERT_TRUE(resolver->Start(&listener).ok());
  ASSERT_TRUE(listener.WaitForSet([](const EndpointSet& s) { return s.endpoints.empty(); }));

  std::atomic<int> load_calls{0};
  auto a = MakeRegistrar();
  auto b = MakeRegistrar();
  RegistrationOptions with_load;
  with_load.load = [&] {
    load_calls.fetch_add(1);
    return LoadReport{4, 99.5};
  };
  ASSERT_TRUE(a->Register(Instance(9001), with_load).ok());
  ASSERT_TRUE(b->Register(Instance(9002, 3), {}).ok());
  ASSERT_TRUE(listener.WaitForSet([](const EndpointSet& s) { return s.endpoints.size() == 2; }));
  EXPECT_EQ(listener.last().endpoints[1].weight, 3u);

  // The administrator's weight reaches the resolver.
  auto admin = Admin();
  admin->client().set_weight(kToken, "calc", "127.0.0.1:9001", 7);
  ASSERT_TRUE(listener.WaitForSet(
      [](const EndpointSet& s) { return s.endpoints.size() == 2 && s.endpoints[0].weight == 7; }));

  // Heartbeats carry the load report.
  while (load_calls.load() < 2) std::this_thread::sleep_for(milliseconds(10));
  thrift::ServiceSnapshot snap;
  for (int i = 0; i < 500 && (snap.instances.empty() || snap.instances[0].load.in_flight != 4);
       ++i) {
    admin->client().lookup(snap, "calc");
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_EQ(snap.instances.at(0).load.in_flight, 4);
  EXPECT_DOUBLE_EQ(snap.instances.at(0).load.calls_per_second, 99.5);

  // A drained instance leaves the set; undrained it returns.
  admin->client().drain(kToken, "calc", "127.0.0.1:9002");
  ASSERT_TRUE(listener.WaitForSet(
      [](const EndpointSet& s) { return s.endpoints.size() == 1 && s.endpoints[0].port == 9001; }));
  admin->client().undrain(kToken, "calc", "127.0.0.1:9002");
  ASSERT_TRUE(listener.WaitForSet([](const EndpointSet& s) { return s.endpoints.size() == 2; }));

  // Deregistration removes it at once.
  EXPECT_TRUE(b->Deregister().ok());
  ASSERT_TRUE(listener.WaitForSet(
      [](const EndpointSet& s) { return s.endpoints.size() == 1 && s.endpoints[0].port == 9001; }));

  // An instance whose heartbeats stop goes DOWN and leaves the set.
  a.reset();  // stops heartbeating without deregistering (like a SIGKILL'd server)
  ASSERT_TRUE(listener.WaitForSet([](const EndpointSet& s) { return s.endpoints.empty(); }));
  resolver->Stop();
}

TEST_F(ClientTest, RegistrarReregistersAfterRegistryRestartAndAdminStateSurvives) {
  auto registrar = MakeRegistrar();
  ASSERT_TRUE(registrar->Register(Instance(9001), {}).ok());
  auto admin = Admin();
  admin->client().set_weight(kToken, "calc", "127.0.0.1:9001", 9);
  admin.reset();

  const int port = daemon_->port();
  daemon_->Stop();
  daemon_.reset();
  StartDaemon(port);  // same port, same data dir: a restarted registry

  RecordingListener listener;
  auto resolver = MakeResolver("calc");
  ASSERT_TRUE(resolver->Start(&listener).ok());
  // The registrar notices the unknown lease (or the dropped connection) and registers again;
  // the weight set before the restart still applies.
  ASSERT_TRUE(listener.WaitForSet(
      [](const EndpointSet& s) { return s.endpoints.size() == 1 && s.endpoints[0].weight == 9; }));
  // The registry may publish the registration before the registrar has stored its lease.
  for (int i = 0; i < 1000 && !registrar->registered(); ++i) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  EXPECT_TRUE(registrar->registered());
  EXPECT_GE(registrar->reregistrations(), 1);  // the new registry said "unknown lease"
  resolver->Stop();
  EXPECT_TRUE(registrar->Deregister().ok());
}

TEST_F(ClientTest, ResolverKeepsItsLastSetWhileTheRegistryIsDownAndCatchesUp) {
  auto registrar = MakeRegistrar();
  ASSERT_TRUE(registrar->Register(Instance(9001), {}).ok());
  RecordingListener listener;
  auto resolver = MakeResolver("calc");
  ASSERT_TRUE(resolver->Start(&listener).ok());
  ASSERT_TRUE(listener.WaitForSet([](const EndpointSet& s) { return s.endpoints.size() == 1; }));
  const size_t updates_before = listener.updates();

  const int port = daemon_->port();
  daemon_->Stop();
  daemon_.reset();
  ASSERT_TRUE(listener.WaitForError());
  // No update replaced the last set with an empty one.
  EXPECT_EQ(listener.updates(), updates_before);
  EXPECT_EQ(listener.last().endpoints.size(), 1u);

  StartDaemon(port);
  auto second = MakeRegistrar();
  ASSERT_TRUE(second->Register(Instance(9002), {}).ok());
  ASSERT_TRUE(listener.WaitForSet([](const EndpointSet& s) { return s.endpoints.size() == 2; }));
  resolver->Stop();
  registrar->Deregister();
  second->Deregister();
}

TEST_F(ClientTest, RegistrarStartsWhileTheRegistryIsDown) {
  const int port = daemon_->port();
  daemon_->Stop();
  daemon_.reset();
  FulcrumRegistrarOptions o;
  o.connection.port = port;
  o.token = kToken;
  o.min_backoff = milliseconds(20);
  o.max_backoff = milliseconds(50);
  FulcrumRegistrar registrar(o);
  ASSERT_TRUE(registrar.Register(Instance(9001), {}).ok());
  EXPECT_FALSE(registrar.registered());
  StartDaemon(port);
  for (int i = 0; i < 1000 && !registrar.registered(); ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_TRUE(registrar.registered());
  EXPECT_EQ(daemon_->store()->Lookup("calc").instances.size(), 1u);
}

// Records what a master-slave server learns from its heartbeats, and drives a RoleState with
// it as ServerRegistration does, so writes_quiesced is the real thing.
class MasterSlaveServer {
 public:
  explicit MasterSlaveServer(int64_t position) { role_.set_replication_position(position); }

  RegistrationOptions Options() {
    RegistrationOptions o;
    o.load = [this] {
      LoadReport r;
      // Quiesced first: a position read after it is final (no write can land in between).
      r.writes_quiesced = role_.writes_quiesced();
      r.replication_position = role_.replication_position();
      return r;
    };
    o.on_directives = [this](const RegistrarDirectives& d) {
      role_.Apply(d);
      std::lock_guard lock(mu_);
      seen_.push_back(d);
      cv_.notify_all();
    };
    return o;
  }
  // Waits (bounded) for directives satisfying `pred` and returns them.
  std::optional<RegistrarDirectives> WaitFor(
      const std::function<bool(const RegistrarDirectives&)>& pred) {
    std::unique_lock lock(mu_);
    std::optional<RegistrarDirectives> found;
    cv_.wait_for(lock, seconds(10), [&] {
      for (const auto& d : seen_) {
        if (pred(d)) found = d;
      }
      return found.has_value();
    });
    return found;
  }
  RoleState& role() { return role_; }

 private:
  RoleState role_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<RegistrarDirectives> seen_;
};

ServiceInstance KvInstance(uint16_t port) {
  ServiceInstance i;
  i.service = "kv";
  i.host = "127.0.0.1";
  i.port = port;
  i.group = "g1";
  return i;
}

TEST_F(ClientTest, RegistrarDeliversRoleLeaseAndSentAtAndReportsPositions) {
  MasterSlaveServer a(11);
  MasterSlaveServer b(11);
  const TimePoint before = Clock::Real().Now();
  auto ra = MakeRegistrar();
  ASSERT_TRUE(ra->Register(KvInstance(9001), a.Options()).ok());
  std::optional<RegistrarDirectives> d =
      a.WaitFor([](const RegistrarDirectives& d) { return d.role == InstanceRole::kMaster; });
  ASSERT_TRUE(d.has_value()) << "the first instance of a group was not made master";
  const TimePoint after = Clock::Real().Now();
  EXPECT_EQ(d->epoch, 1);
  EXPECT_EQ(d->master_address, "127.0.0.1:9001");
  EXPECT_EQ(d->master_lease, milliseconds(600));  // the daemon's default
  EXPECT_GE(d->sent_at, before);
  EXPECT_LE(d->sent_at, after);
  EXPECT_FALSE(d->stop_writes);
  EXPECT_TRUE(a.role().Writable());

  auto rb = MakeRegistrar();
  ASSERT_TRUE(rb->Register(KvInstance(9002), b.Options()).ok());
  d = b.WaitFor([](const RegistrarDirectives& d) { return d.role == InstanceRole::kSlave; });
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->master_address, "127.0.0.1:9001");
  EXPECT_EQ(d->master_lease, Duration::zero());
  EXPECT_FALSE(b.role().Writable());

  // Positions travel with the heartbeats; roles reach resolvers.
  b.role().set_replication_position(17);
  thrift::ServiceSnapshot snap;
  auto admin = Admin();
  for (int i = 0; i < 500; ++i) {
    admin->client().lookup(snap, "kv");
    if (snap.instances.size() == 2 && snap.instances[1].replication_position == 17) break;
    std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_EQ(snap.instances.size(), 2u);
  EXPECT_EQ(snap.instances[1].replication_position, 17);
  EXPECT_EQ(snap.instances[0].role, thrift::Role::MASTER);
  ASSERT_EQ(snap.groups.size(), 1u);
  EXPECT_EQ(snap.groups[0].master_address, "127.0.0.1:9001");
  RecordingListener listener;
  auto resolver = MakeResolver("kv");
  ASSERT_TRUE(resolver->Start(&listener).ok());
  ASSERT_TRUE(listener.WaitForSet([](const EndpointSet& s) {
    return s.endpoints.size() == 2 && s.endpoints[0].role == InstanceRole::kMaster &&
           s.endpoints[0].epoch == 1 && s.endpoints[0].group == "g1" &&
           s.endpoints[1].role == InstanceRole::kSlave;
  }));

  // The master stops heartbeating (SIGKILL): the slave takes over with epoch 2.
  ra.reset();
  d = b.WaitFor(
      [](const RegistrarDirectives& d) { return d.role == InstanceRole::kMaster && d.epoch == 2; });
  ASSERT_TRUE(d.has_value()) << "no failover";
  EXPECT_EQ(d->master_lease, milliseconds(600));
  ASSERT_TRUE(listener.WaitForSet([](const EndpointSet& s) {
    for (const auto& e : s.endpoints) {
      if (e.port == 9002) return e.role == InstanceRole::kMaster && e.epoch == 2;
    }
    return false;
  }));
  resolver->Stop();
  rb->Deregister();
}

TEST_F(ClientTest, PromoteSwitchesOverThroughStopWritesAndQuiescedReports) {
  MasterSlaveServer a(30);
  MasterSlaveServer b(29);
  auto ra = MakeRegistrar();
  auto rb = MakeRegistrar();
  ASSERT_TRUE(ra->Register(KvInstance(9001), a.Options()).ok());
  ASSERT_TRUE(
      a.WaitFor([](const RegistrarDirectives& d) { return d.role == InstanceRole::kMaster; }));
  ASSERT_TRUE(rb->Register(KvInstance(9002), b.Options()).ok());
  ASSERT_TRUE(
      b.WaitFor([](const RegistrarDirectives& d) { return d.role == InstanceRole::kSlave; }));

  auto admin = Admin();
  thrift::GroupState group;
  try {
    admin->client().promote(group, "", "kv", "127.0.0.1:9002", false);
    FAIL() << "promote without a token";
  } catch (const thrift::RegistryError& e) {
    EXPECT_EQ(e.code, thrift::ErrorCode::UNAUTHENTICATED);
  }
  std::thread replicate([&] {
    // The slave catches up once the master has stopped writing.
    a.WaitFor([](const RegistrarDirectives& d) { return d.stop_writes; });
    b.role().set_replication_position(30);
  });
  admin->client().promote(group, kToken, "kv", "127.0.0.1:9002", false);
  replicate.join();
  EXPECT_EQ(group.epoch, 2);
  EXPECT_EQ(group.master_address, "127.0.0.1:9002");
  EXPECT_EQ(group.group, "g1");
  EXPECT_TRUE(b.WaitFor([](const RegistrarDirectives& d) {
                 return d.role == InstanceRole::kMaster && d.epoch == 2;
               }).has_value());
  EXPECT_TRUE(a.WaitFor([](const RegistrarDirectives& d) {
                 return d.role == InstanceRole::kSlave && d.epoch == 2;
               }).has_value());
  EXPECT_FALSE(a.role().Writable());

  // The new master is not a target; a stateless-looking address is unknown.
  try {
    admin->client().promote(group, kToken, "kv", "127.0.0.1:9002", false);
    FAIL() << "promoted the master";
  } catch (const thrift::RegistryError& e) {
    EXPECT_EQ(e.code, thrift::ErrorCode::INVALID_ARGUMENT);
    EXPECT_EQ(e.message, "127.0.0.1:9002 is already the master of kv/g1 (epoch 2)");
  }
  try {
    admin->client().promote(group, kToken, "kv", "127.0.0.1:1", false);
    FAIL() << "promoted an unknown instance";
  } catch (const thrift::RegistryError& e) {
    EXPECT_EQ(e.code, thrift::ErrorCode::NOT_FOUND);
  }
  ra->Deregister();
  rb->Deregister();
}

TEST(ResolverTest, NeedsAService) {
  FulcrumResolver resolver({});
  RecordingListener listener;
  EXPECT_EQ(resolver.Start(&listener).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fulcrum::registry
