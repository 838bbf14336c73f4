// The etcd:// discovery library against a real etcd (started by PID on loopback, ports from the
// OS): registration and watch, Deregister, lease expiry of a SIGKILLed server, an etcd restart, a
// resolver started while etcd is down, garbage values, prompt Stop/Deregister with etcd hung, a
// Channel balancing real Echo calls over servers registered through etcd, a three-member
// cluster whose leader is SIGKILLed or with a member down, and etcd with authentication on and
// over TLS.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "child_process.h"
#include "etcd_codec.h"
#include "etcd_http_client.h"
#include "etcd_process.h"
#include "etcd_registrar.h"
#include "etcd_resolver.h"
#include "fulcrum/channel.h"
#include "fulcrum/discovery/etcd.h"
#include "fulcrum/registrar.h"
#include "fulcrum/resolver.h"
#include "support/echo_calls.h"

namespace fulcrum::etcd {
namespace {

using etcd_test::EtcdProcess;
using registry_test::TempDir;
using std::chrono::milliseconds;
using std::chrono::seconds;
using SteadyClock = std::chrono::steady_clock;

class RecordingListener : public ResolverListener {
 public:
  void OnUpdate(EndpointSet set) override {
    std::lock_guard lock(mu_);
    last_ = std::move(set);
    ++updates_;
    cv_.notify_all();
  }
  void OnError(const Status& status) override {
    std::lock_guard lock(mu_);
    errors_.push_back(status);
    cv_.notify_all();
  }

  // The ports of the last set delivered.
  std::set<int> Ports() {
    std::lock_guard lock(mu_);
    return PortsLocked();
  }
  bool WaitForPorts(const std::set<int>& want, milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return updates_ > 0 && PortsLocked() == want; });
  }
  bool WaitForErrors(size_t n, milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return errors_.size() >= n; });
  }
  std::vector<Status> errors() {
    std::lock_guard lock(mu_);
    return errors_;
  }
  int updates() {
    std::lock_guard lock(mu_);
    return updates_;
  }
  EndpointSet last() {
    std::lock_guard lock(mu_);
    return last_;
  }

 private:
  std::set<int> PortsLocked() const {
    std::set<int> ports;
    for (const Endpoint& e : last_.endpoints) ports.insert(e.port);
    return ports;
  }

  std::mutex mu_;
  std::condition_variable cv_;
  EndpointSet last_;
  int updates_ = 0;
  std::vector<Status> errors_;
};

ServiceInstance EchoInstance(int port, const std::string& service = "echo") {
  return ServiceInstance{.service = service,
                         .host = "127.0.0.1",
                         .port = static_cast<uint16_t>(port),
                         .weight = 2,
                         .zone = "z1",
                         .metadata = {{"id", std::to_string(port)}}};
}

class EtcdDiscoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(RegisterEtcdDiscovery().ok());
    Status started = etcd_.Start();
    ASSERT_TRUE(started.ok()) << started << "\n" << registry_test::ReadFile(etcd_.log_path());
  }

  EtcdAddress Etcd() const { return {"127.0.0.1", static_cast<uint16_t>(etcd_.client_port())}; }

  std::unique_ptr<EtcdRegistrar> MakeRegistrar(int ttl_s = 3) {
    return std::make_unique<EtcdRegistrar>(
        EtcdRegistrarOptions{.endpoints = {Etcd()}, .ttl_s = ttl_s});
  }

  std::unique_ptr<EtcdResolver> StartResolver(RecordingListener* listener,
                                              const std::string& service = "echo") {
    auto r = std::make_unique<EtcdResolver>(
        EtcdResolverOptions{.endpoints = {Etcd()}, .service = service});
    EXPECT_TRUE(r->Start(listener).ok());
    return r;
  }

  static ServiceInstance Instance(int port, const std::string& service = "echo") {
    return EchoInstance(port, service);
  }

  TempDir dir_;
  EtcdProcess etcd_{dir_.path()};
};

TEST_F(EtcdDiscoveryTest, RegisteredInstanceAppearsInAResolverWithItsAttributes) {
  std::atomic<int> directives{0};
  auto registrar = MakeRegistrar();
  ASSERT_TRUE(registrar
                  ->Register(Instance(9101), {.on_directives =
                                                  [&](const RegistrarDirectives& d) {
                                                    EXPECT_FALSE(d.drained);
                                                    ++directives;
                                                  }})
                  .ok());
  EXPECT_TRUE(registrar->registered());
  EXPECT_GE(registrar->granted_ttl_s(), 3);
  RecordingListener listener;
  auto resolver = StartResolver(&listener);
  ASSERT_TRUE(listener.WaitForPorts({9101}, seconds(5)));
  const EndpointSet set = listener.last();
  ASSERT_EQ(set.endpoints.size(), 1u);
  EXPECT_EQ(set.endpoints[0].host, "127.0.0.1");
  EXPECT_EQ(set.endpoints[0].weight, 2u);
  EXPECT_EQ(set.endpoints[0].zone, "z1");
  EXPECT_EQ(set.endpoints[0].tags.at("id"), "9101");
  EXPECT_GT(set.version, 0u);
  // Keepalives every TTL/3 (1 s) call on_directives.
  const auto deadline = SteadyClock::now() + seconds(4);
  while (directives.load() < 2 && SteadyClock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_GE(directives.load(), 2);
  // Other services' keys are not this resolver's.
  auto other = MakeRegistrar();
  ASSERT_TRUE(other->Register(Instance(9199, "other"), {}).ok());
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(listener.Ports(), std::set<int>({9101}));
  EXPECT_TRUE(listener.errors().empty());
}

TEST_F(EtcdDiscoveryTest, TwoInstancesThenDeregisterRemovesOneAtOnce) {
  RecordingListener listener;
  auto resolver = StartResolver(&listener);
  ASSERT_TRUE(listener.WaitForPorts({}, seconds(5)));
  auto a = MakeRegistrar();
  auto b = MakeRegistrar();
  ASSERT_TRUE(a->Register(Instance(9201), {}).ok());
  ASSERT_TRUE(b->Register(Instance(9202), {}).ok());
  ASSERT_TRUE(listener.WaitForPorts({9201, 9202}, seconds(5)));
  const auto before = SteadyClock::now();
  ASSERT_TRUE(a->Deregister().ok());
  EXPECT_FALSE(a->registered());
  ASSERT_TRUE(listener.WaitForPorts({9202}, seconds(2)));
  // At once: well before the 3 s lease could have expired.
  EXPECT_LT(SteadyClock::now() - before, milliseconds(1500));
  EXPECT_TRUE(a->Deregister().ok());  // nothing left to remove
}

TEST_F(EtcdDiscoveryTest, SigkilledServerDisappearsAfterItsLeaseTtl) {
  RecordingListener listener;
  auto resolver = StartResolver(&listener);
  auto server = testing::Subprocess::Spawn({FULCRUM_REGISTERED_ECHO_SERVER, "--id=k",
                                            "--registrar=etcd://" + etcd_.address() + "?ttl_s=1"},
                                           {.stderr_path = dir_.path() + "/server.log"});
  ASSERT_TRUE(server.ok()) << server.status();
  StatusOr<std::string> port = (*server)->WaitForLine("LISTENING ", seconds(10));
  ASSERT_TRUE(port.ok()) << port.status() << registry_test::ReadFile(dir_.path() + "/server.log");
  const int p = std::stoi(*port);
  ASSERT_TRUE(listener.WaitForPorts({p}, seconds(5)));
  // etcd raises ttl_s=1 to its minimum (2 s here) and the server keeps it alive meanwhile.
  std::this_thread::sleep_for(milliseconds(2500));
  EXPECT_EQ(listener.Ports(), std::set<int>({p}));
  ASSERT_TRUE((*server)->Signal(SIGKILL).ok());
  const auto killed = SteadyClock::now();
  ASSERT_TRUE(listener.WaitForPorts({}, seconds(6)))
      << "the killed server's key outlived its lease";
  EXPECT_GT(SteadyClock::now() - killed, milliseconds(500));  // by expiry, not by a goodbye
}

TEST_F(EtcdDiscoveryTest, EtcdRestartReportsErrorKeepsTheSetAndCatchesUp) {
  auto a = MakeRegistrar();
  ASSERT_TRUE(a->Register(Instance(9301), {}).ok());
  RecordingListener listener;
  auto resolver = StartResolver(&listener);
  ASSERT_TRUE(listener.WaitForPorts({9301}, seconds(5)));
  const int updates_before = listener.updates();

  etcd_.Kill();
  ASSERT_TRUE(listener.WaitForErrors(1, seconds(3)));
  const Status error = listener.errors()[0];
  EXPECT_EQ(error.code(), StatusCode::kUnavailable);
  EXPECT_NE(error.message().find(etcd_.address()), std::string::npos) << error;
  // An outage delivers no (empty) set: what was known stays.
  EXPECT_EQ(listener.updates(), updates_before);
  EXPECT_EQ(listener.Ports(), std::set<int>({9301}));

  Status restarted = etcd_.Start();
  ASSERT_TRUE(restarted.ok()) << restarted;
  auto b = MakeRegistrar();
  ASSERT_TRUE(b->Register(Instance(9302), {}).ok());
  ASSERT_TRUE(listener.WaitForPorts({9301, 9302}, seconds(5)));
  ASSERT_TRUE(a->Deregister().ok());
  ASSERT_TRUE(listener.WaitForPorts({9302}, seconds(3)));
  EXPECT_EQ(listener.errors().size(), 1u) << "one OnError per outage";
}

TEST_F(EtcdDiscoveryTest, ResolverAndRegistrarStartedWhileEtcdIsDownWorkOnceItIsUp) {
  etcd_.Kill();
  RecordingListener listener;
  auto resolver = StartResolver(&listener);
  ASSERT_TRUE(listener.WaitForErrors(1, seconds(3)));
  EXPECT_NE(listener.errors()[0].message().find(etcd_.address()), std::string::npos);
  auto registrar = MakeRegistrar();
  ASSERT_TRUE(registrar->Register(Instance(9401), {}).ok()) << "rides out etcd being down";
  EXPECT_FALSE(registrar->registered());
  EXPECT_EQ(listener.updates(), 0);

  Status restarted = etcd_.Start();
  ASSERT_TRUE(restarted.ok()) << restarted;
  ASSERT_TRUE(listener.WaitForPorts({9401}, seconds(5)));
  // The resolver may see the key before the registrar's put has returned to it.
  const auto deadline = SteadyClock::now() + seconds(2);
  while (!registrar->registered() && SteadyClock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_TRUE(registrar->registered());
}

TEST_F(EtcdDiscoveryTest, GarbageValuesUnderThePrefixAreSkipped) {
  const std::string prefix = ServicePrefix("/fulcrum", "echo");
  ASSERT_TRUE(etcd_.PutRaw(prefix + "junk1", "not json at all").ok());
  ASSERT_TRUE(etcd_.PutRaw(prefix + "junk2", R"({"host":"h"})").ok());
  ASSERT_TRUE(etcd_.PutRaw(prefix + "good1", R"({"host":"127.0.0.1","port":9501})").ok());
  RecordingListener listener;
  auto resolver = StartResolver(&listener);
  ASSERT_TRUE(listener.WaitForPorts({9501}, seconds(5)));
  // Through the watch too, and garbage over a good value removes it.
  ASSERT_TRUE(etcd_.PutRaw(prefix + "junk3", "{\"port\":").ok());
  ASSERT_TRUE(etcd_.PutRaw(prefix + "good2", R"({"host":"127.0.0.1","port":9502})").ok());
  ASSERT_TRUE(listener.WaitForPorts({9501, 9502}, seconds(5)));
  ASSERT_TRUE(etcd_.PutRaw(prefix + "good1", "[]").ok());
  ASSERT_TRUE(listener.WaitForPorts({9502}, seconds(5)));
  EXPECT_TRUE(listener.errors().empty());
}

TEST_F(EtcdDiscoveryTest, StopIsPromptDuringABlockedWatchAndNothingIsDeliveredAfter) {
  RecordingListener listener;
  auto resolver = StartResolver(&listener);
  ASSERT_TRUE(listener.WaitForPorts({}, seconds(5)));
  std::this_thread::sleep_for(milliseconds(200));  // now blocked reading the watch
  const auto before = SteadyClock::now();
  resolver->Stop();
  EXPECT_LT(SteadyClock::now() - before, milliseconds(500));
  const int updates = listener.updates();
  auto registrar = MakeRegistrar();
  ASSERT_TRUE(registrar->Register(Instance(9601), {}).ok());
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(listener.updates(), updates);
}

TEST_F(EtcdDiscoveryTest, DeregisterAndStopAreBoundedWhileEtcdIsHung) {
  auto registrar = MakeRegistrar();
  ASSERT_TRUE(registrar->Register(Instance(9701), {}).ok());
  RecordingListener listener;
  auto resolver = StartResolver(&listener);
  ASSERT_TRUE(listener.WaitForPorts({9701}, seconds(5)));
  EXPECT_TRUE(registrar->registered());
  etcd_.Pause();
  // No keepalive is answered now: after one TTL (3 s) the registrar stops claiming the lease.
  const auto paused = SteadyClock::now();
  while (registrar->registered() && SteadyClock::now() - paused < seconds(6)) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_FALSE(registrar->registered());
  EXPECT_GT(SteadyClock::now() - paused, milliseconds(1500));
  auto before = SteadyClock::now();
  Status s = registrar->Deregister();
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s;
  EXPECT_LT(SteadyClock::now() - before, milliseconds(2500));
  before = SteadyClock::now();
  resolver->Stop();
  EXPECT_LT(SteadyClock::now() - before, milliseconds(500));
  etcd_.Resume();
}

// Calls until every id in `want` has answered (bounded).
bool WaitUntilSeen(Channel& channel, const std::set<std::string>& want) {
  std::set<std::string> seen;
  for (int i = 0; i < 2000 && seen != want; ++i) {
    try {
      const std::string who = testing::Whoami(channel);
      if (want.count(who)) seen.insert(who);
    } catch (const std::exception&) {
    }
    if (i % 20 == 19) std::this_thread::sleep_for(milliseconds(5));
  }
  return seen == want;
}

TEST_F(EtcdDiscoveryTest, ChannelBalancesEchoCallsOverServersRegisteredInEtcd) {
  std::map<std::string, std::unique_ptr<testing::Subprocess>> servers;
  for (const char* id : {"a", "b", "c"}) {
    auto s = testing::Subprocess::Spawn({FULCRUM_REGISTERED_ECHO_SERVER, std::string("--id=") + id,
                                         "--registrar=etcd://" + etcd_.address(), "--quiet_ms=100"},
                                        {.stderr_path = dir_.path() + "/server-" + id + ".log"});
    ASSERT_TRUE(s.ok()) << s.status();
    ASSERT_TRUE((*s)->WaitForLine("LISTENING ", seconds(10)).ok())
        << registry_test::ReadFile(dir_.path() + "/server-" + id + ".log");
    servers[id] = std::move(s).value();
  }
  ChannelOptions options;
  options.service_name = "echo";
  options.balancer = "round_robin";
  options.default_timeout = seconds(2);
  auto channel = Channel::Create("etcd://" + etcd_.address() + "/echo", options);
  ASSERT_TRUE(channel.ok()) << channel.status();
  ASSERT_TRUE(WaitUntilSeen(**channel, {"a", "b", "c"}));
  std::map<std::string, int> picks;
  for (int i = 0; i < 300; ++i) ++picks[testing::Whoami(**channel)];
  for (const char* id : {"a", "b", "c"}) EXPECT_GE(picks[id], 50) << id;

  // SIGTERM drains c: it deregisters first, and the channel stops picking it.
  ASSERT_TRUE(servers["c"]->Signal(SIGTERM).ok());
  int streak = 0;
  for (int i = 0; i < 5000 && streak < 100; ++i) {
    try {
      streak = testing::Whoami(**channel) == "c" ? 0 : streak + 1;
    } catch (const std::exception&) {
      streak = 0;
    }
    if (i % 50 == 49) std::this_thread::sleep_for(milliseconds(5));
  }
  EXPECT_GE(streak, 100) << "the channel kept picking the deregistered server";
  StatusOr<int> exited = servers["c"]->Wait(seconds(10));
  ASSERT_TRUE(exited.ok()) << exited.status();
  EXPECT_TRUE(WIFEXITED(*exited) && WEXITSTATUS(*exited) == 0)
      << testing::DescribeWaitStatus(*exited);
  (*channel)->Shutdown();
}

// A three-member etcd cluster. The registrars and the resolver are given every member, the
// leader first, and the leader is SIGKILLed while they talk to it. The instance registered
// before the kill stays (its lease kept alive through another member), one registered after it
// reaches the resolver within 10 s (the time it took is printed), and another member leads.
class EtcdClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(RegisterEtcdDiscovery().ok());
    Status started = cluster_.Start();
    ASSERT_TRUE(started.ok()) << started << "\n" << cluster_.Logs();
  }

  // Every member's address, `first` in front.
  std::vector<EtcdAddress> MembersFrom(int first) {
    std::vector<EtcdAddress> out;
    for (int k = 0; k < cluster_.size(); ++k) {
      const int i = (first + k) % cluster_.size();
      out.push_back({"127.0.0.1", static_cast<uint16_t>(cluster_.member(i).client_port())});
    }
    return out;
  }

  TempDir dir_;
  etcd_test::EtcdCluster cluster_{dir_.path()};
};

TEST_F(EtcdClusterTest, PreferLeaderMovesCallsToTheLeaderAndFollowsALeaderChange) {
  StatusOr<int> leader = cluster_.Leader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  const int follower = (*leader + 1) % cluster_.size();
  EtcdHttpClient http(MembersFrom(follower), std::chrono::milliseconds(1000));
  EXPECT_EQ(http.current_address(), cluster_.member(follower).address());
  ASSERT_TRUE(http.PreferLeader().ok());
  EXPECT_EQ(http.current_address(), cluster_.member(*leader).address());
  ASSERT_TRUE(http.PreferLeader().ok());  // already there
  EXPECT_EQ(http.current_address(), cluster_.member(*leader).address());
  // The leader dies: calls fail over to a member that answers, and the next check finds the
  // new leader.
  cluster_.member(*leader).Kill();
  StatusOr<int> next = Status::Error(StatusCode::kUnavailable, "no leader yet");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    next = cluster_.Leader();
    if (next.ok() && *next != *leader) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(next.ok()) << next.status();
  Status moved = http.PreferLeader();
  ASSERT_TRUE(moved.ok()) << moved;
  EXPECT_EQ(http.current_address(), cluster_.member(*next).address());
  // A leader outside the endpoints given is reported, and the current endpoint kept.
  const int third = 3 - *leader - *next;  // the member neither leader was
  EtcdHttpClient others(
      {{"127.0.0.1", static_cast<uint16_t>(cluster_.member(third).client_port())},
       {"127.0.0.1", static_cast<uint16_t>(cluster_.member(*leader).client_port())}},
      std::chrono::milliseconds(1000));
  Status outside = others.PreferLeader();
  EXPECT_EQ(outside.code(), StatusCode::kNotFound) << outside;
  EXPECT_EQ(others.current_address(), cluster_.member(third).address());
}

TEST_F(EtcdClusterTest, RegistrarsAndAResolverRideOutTheLeadersSigkill) {
  StatusOr<int> leader = cluster_.Leader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  const std::vector<EtcdAddress> members = MembersFrom(*leader);
  EtcdRegistrar before_kill(EtcdRegistrarOptions{.endpoints = members, .ttl_s = 3});
  ASSERT_TRUE(before_kill.Register(EchoInstance(9801), {}).ok());
  RecordingListener listener;
  EtcdResolver resolver(EtcdResolverOptions{.endpoints = members, .service = "echo"});
  ASSERT_TRUE(resolver.Start(&listener).ok());
  ASSERT_TRUE(listener.WaitForPorts({9801}, seconds(5)));

  const auto killed = SteadyClock::now();
  cluster_.member(*leader).Kill();
  EtcdRegistrar after_kill(EtcdRegistrarOptions{.endpoints = members, .ttl_s = 3});
  ASSERT_TRUE(after_kill.Register(EchoInstance(9802), {}).ok());
  ASSERT_TRUE(listener.WaitForPorts({9801, 9802}, seconds(10))) << cluster_.Logs();
  const auto seen_ms =
      std::chrono::duration_cast<milliseconds>(SteadyClock::now() - killed).count();
  std::printf("leader SIGKILLed: an instance registered after it reached the resolver in %lld ms\n",
              static_cast<long long>(seen_ms));
  RecordProperty("new_instance_seen_after_kill_ms", std::to_string(seen_ms));

  // Two lease TTLs later both are there: their keepalives reach a live member.
  std::this_thread::sleep_for(seconds(6));
  EXPECT_EQ(listener.Ports(), std::set<int>({9801, 9802}));
  EXPECT_TRUE(before_kill.registered());
  EXPECT_TRUE(after_kill.registered());
  StatusOr<int> next = cluster_.Leader();
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_NE(*next, *leader);
  resolver.Stop();
}

TEST_F(EtcdClusterTest, WithAMemberDownRegistrationExpiryAndWatchResumeStillWork) {
  // Member 0 is SIGKILLed before anything starts and comes first in every URI: clients move
  // past it. The stateless suite's cases then run on the two members left (a quorum).
  cluster_.member(0).Kill();
  std::string members;
  for (int i = 0; i < cluster_.size(); ++i) {
    members += (i ? "," : "") + cluster_.member(i).address();
  }
  StatusOr<std::unique_ptr<Registrar>> registrar = CreateRegistrar("etcd://" + members);
  ASSERT_TRUE(registrar.ok()) << registrar.status();
  ASSERT_TRUE((*registrar)->Register(EchoInstance(9851), {}).ok());
  RecordingListener listener;
  StatusOr<std::unique_ptr<Resolver>> resolver = CreateResolver("etcd://" + members + "/echo");
  ASSERT_TRUE(resolver.ok()) << resolver.status();
  ASSERT_TRUE((*resolver)->Start(&listener).ok());
  ASSERT_TRUE(listener.WaitForPorts({9851}, seconds(5))) << cluster_.Logs();

  // A registered server that is SIGKILLed goes when its lease expires.
  auto server = testing::Subprocess::Spawn(
      {FULCRUM_REGISTERED_ECHO_SERVER, "--id=k", "--registrar=etcd://" + members + "?ttl_s=1"},
      {.stderr_path = dir_.path() + "/server.log"});
  ASSERT_TRUE(server.ok()) << server.status();
  StatusOr<std::string> port = (*server)->WaitForLine("LISTENING ", seconds(10));
  ASSERT_TRUE(port.ok()) << port.status() << registry_test::ReadFile(dir_.path() + "/server.log");
  const int p = std::stoi(*port);
  ASSERT_TRUE(listener.WaitForPorts({9851, p}, seconds(5)));
  ASSERT_TRUE((*server)->Signal(SIGKILL).ok());
  const auto killed = SteadyClock::now();
  ASSERT_TRUE(listener.WaitForPorts({9851}, seconds(6))) << "the killed server outlived its lease";
  EXPECT_GT(SteadyClock::now() - killed, milliseconds(500));  // by expiry, not by a goodbye

  // Member 0 comes back; then member 1, the first live one in the list and so the one the
  // resolver watches through, is SIGKILLed. The watch resumes on another member from the last
  // revision it saw: an instance registered meanwhile is delivered.
  Status back = cluster_.member(0).Start();
  ASSERT_TRUE(back.ok()) << back << cluster_.Logs();
  cluster_.member(1).Kill();
  StatusOr<std::unique_ptr<Registrar>> during = CreateRegistrar("etcd://" + members);
  ASSERT_TRUE(during.ok()) << during.status();
  ASSERT_TRUE((*during)->Register(EchoInstance(9852), {}).ok());
  ASSERT_TRUE(listener.WaitForPorts({9851, 9852}, seconds(10))) << cluster_.Logs();
  // Two lease TTLs later both registrations are still kept alive.
  std::this_thread::sleep_for(seconds(6));
  EXPECT_EQ(listener.Ports(), std::set<int>({9851, 9852}));
  EXPECT_TRUE((*registrar)->registered());
  (*resolver)->Stop();
}

// etcd with authentication on: a user allowed only the keys under /fulcrum, credentials read
// from a file named in the URI.
class EtcdAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(RegisterEtcdDiscovery().ok());
    Status started = etcd_.Start();
    ASSERT_TRUE(started.ok()) << started << "\n" << registry_test::ReadFile(etcd_.log_path());
    Status auth = etcd_.EnableAuth("svc", "s3cret", "/fulcrum");
    ASSERT_TRUE(auth.ok()) << auth;
    WriteFile("good.pw", "s3cret\n");
    WriteFile("bad.pw", "guess");
  }
  void WriteFile(const std::string& name, const std::string& text) {
    std::ofstream(dir_.path() + "/" + name) << text;
  }
  std::string Credentials(const std::string& password_file) {
    return "user=svc&password_file=" + dir_.path() + "/" + password_file;
  }
  std::unique_ptr<Resolver> StartResolver(const std::string& query, RecordingListener* listener) {
    StatusOr<std::unique_ptr<Resolver>> r =
        CreateResolver("etcd://" + etcd_.address() + "/echo" + query);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return nullptr;
    EXPECT_TRUE((*r)->Start(listener).ok());
    return std::move(r).value();
  }

  TempDir dir_;
  EtcdProcess etcd_{dir_.path()};
};

TEST_F(EtcdAuthTest, ClientsAuthenticateAgainWhenTheirTokensAreRevoked) {
  // A password change (here to the same password) revokes every token etcd gave the user; so
  // does a simple token's TTL (--auth-token-ttl, 300 s of disuse by default). Calls made with
  // a revoked token must authenticate again and go through.
  auto revoke = [&] {
    StatusOr<std::string> r =
        etcd_.Post("/v3/auth/user/changepw", R"({"name":"svc","password":"s3cret"})");
    ASSERT_TRUE(r.ok()) << r.status();
  };
  EtcdHttpClient http({{"127.0.0.1", static_cast<uint16_t>(etcd_.client_port())}}, seconds(1),
                      EtcdCredentials{"svc", "s3cret"});
  const std::string range = nlohmann::json{{"key", Base64Encode("/fulcrum/x")}}.dump();
  ASSERT_TRUE(http.Post("/v3/kv/range", range).ok());
  revoke();
  StatusOr<std::string> again = http.Post("/v3/kv/range", range);
  EXPECT_TRUE(again.ok()) << again.status();

  StatusOr<std::unique_ptr<Registrar>> first =
      CreateRegistrar("etcd://" + etcd_.address() + "?ttl_s=3&" + Credentials("good.pw"));
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE((*first)->Register(EchoInstance(9901), {}).ok());
  RecordingListener listener;
  auto resolver = StartResolver("?" + Credentials("good.pw"), &listener);
  ASSERT_NE(resolver, nullptr);
  ASSERT_TRUE(listener.WaitForPorts({9901}, seconds(5)))
      << registry_test::ReadFile(etcd_.log_path());
  // Revoke the tokens of the registrar and the resolver, then restart etcd so that the
  // resolver's watch must be opened again (with its revoked token, unless it authenticates
  // again) and the registrar's keepalives reconnect.
  revoke();
  etcd_.Kill();
  Status restarted = etcd_.Start();
  ASSERT_TRUE(restarted.ok()) << restarted << registry_test::ReadFile(etcd_.log_path());
  StatusOr<std::unique_ptr<Registrar>> second =
      CreateRegistrar("etcd://" + etcd_.address() + "?ttl_s=3&" + Credentials("good.pw"));
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_TRUE((*second)->Register(EchoInstance(9902), {}).ok());
  ASSERT_TRUE(listener.WaitForPorts({9901, 9902}, seconds(10)))
      << registry_test::ReadFile(etcd_.log_path());
  // Two TTLs later the first lease is still kept alive.
  std::this_thread::sleep_for(seconds(6));
  EXPECT_EQ(listener.Ports(), std::set<int>({9901, 9902}));
  EXPECT_TRUE((*first)->registered());
  for (const Status& e : listener.errors()) {
    // The restart itself is reported; a refusal of the revoked token is not.
    EXPECT_EQ(e.message().find("auth"), std::string::npos) << e;
  }
  resolver->Stop();
}

TEST_F(EtcdAuthTest, BadOrMissingCredentialsAndForbiddenKeysAreClearErrors) {
  struct Case {
    std::string query;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"?" + Credentials("bad.pw"), "refused the credentials of user 'svc'"},
      {"", "user name is empty"},
      {"?prefix=/elsewhere&" + Credentials("good.pw"), "permission denied"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.query);
    RecordingListener listener;
    auto resolver = StartResolver(c.query, &listener);
    ASSERT_NE(resolver, nullptr);
    ASSERT_TRUE(listener.WaitForErrors(1, seconds(5)));
    EXPECT_NE(listener.errors().front().message().find(c.says), std::string::npos)
        << listener.errors().front();
    EXPECT_EQ(listener.updates(), 0);
    resolver->Stop();
  }
  // A password file that cannot be read is the URI's error, before anything is sent.
  StatusOr<std::unique_ptr<Resolver>> missing =
      CreateResolver("etcd://" + etcd_.address() + "/echo?" + Credentials("absent.pw"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("cannot open password_file"), std::string::npos)
      << missing.status();
}

// etcd serving https and demanding client certificates: throwaway self-signed certificates
// (openssl), one for etcd (its SAN the loopback IP the clients dial) and one for the clients.
class EtcdTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(RegisterEtcdDiscovery().ok());
    ASSERT_NO_FATAL_FAILURE(MakeCertificate("server", "/CN=127.0.0.1", "IP:127.0.0.1"));
    ASSERT_NO_FATAL_FAILURE(MakeCertificate("client", "/CN=svc", "DNS:svc"));
    // The clients' CA bundle holds etcd's certificate too: etcd 3.4's HTTP gateway dials its
    // own gRPC port with it and gets 503s ("use of closed network connection") otherwise.
    std::ofstream(Path("clients.pem")) << registry_test::ReadFile(Path("client.pem"))
                                       << registry_test::ReadFile(Path("server.pem"));
    etcd_.ServeTls(Path("server.pem"), Path("server.key"), Path("clients.pem"),
                   EtcdTls{Path("server.pem"), Path("client.pem"), Path("client.key")});
    Status started = etcd_.Start();
    ASSERT_TRUE(started.ok()) << started << "\n" << registry_test::ReadFile(etcd_.log_path());
  }
  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }
  void MakeCertificate(const std::string& name, const std::string& subject,
                       const std::string& san) {
    registry_test::CommandResult gen = registry_test::RunCommand(
        {"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
         Path(name + ".key"), "-out", Path(name + ".pem"), "-days", "1", "-subj", subject,
         "-addext", "subjectAltName=" + san},
        seconds(60));
    ASSERT_EQ(gen.exit_code, 0) << gen.err;
  }
  std::string Tls(bool client_certificate = true, const std::string& ca = "server.pem") {
    std::string q = "tls_ca_file=" + Path(ca);
    if (client_certificate) {
      q += "&tls_cert_file=" + Path("client.pem") + "&tls_key_file=" + Path("client.key");
    }
    return q;
  }

  TempDir dir_;
  EtcdProcess etcd_{dir_.path()};
};

TEST_F(EtcdTlsTest, RegistrarAndResolverOverHttpsWithClientCertificates) {
  StatusOr<std::unique_ptr<Registrar>> registrar =
      CreateRegistrar("etcd://" + etcd_.address() + "?" + Tls());
  ASSERT_TRUE(registrar.ok()) << registrar.status();
  ASSERT_TRUE((*registrar)->Register(EchoInstance(9911), {}).ok());
  RecordingListener listener;
  StatusOr<std::unique_ptr<Resolver>> resolver =
      CreateResolver("etcd://" + etcd_.address() + "/echo?" + Tls());
  ASSERT_TRUE(resolver.ok()) << resolver.status();
  ASSERT_TRUE((*resolver)->Start(&listener).ok());
  ASSERT_TRUE(listener.WaitForPorts({9911}, seconds(5)))
      << registry_test::ReadFile(etcd_.log_path());
  // The registration is kept alive over https (3 s TTL), and a deregistration reaches etcd.
  std::this_thread::sleep_for(seconds(4));
  EXPECT_TRUE((*registrar)->registered());
  ASSERT_TRUE((*registrar)->Deregister().ok());
  EXPECT_TRUE(listener.WaitForPorts({}, seconds(2)));
  EXPECT_TRUE(listener.errors().empty()) << listener.errors().front();
  (*resolver)->Stop();
}

TEST_F(EtcdTlsTest, AWrongCaNoClientCertificateOrPlainHttpAreClearErrors) {
  std::ofstream(Path("junk.pem")) << "not a certificate\n";
  struct Case {
    std::string query;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"?" + Tls(true, "client.pem"), "certificate verify failed"},  // etcd's cert not signed by it
      // etcd demands a client certificate (with TLS 1.3 its refusal comes as the first read's
      // alert, after the handshake).
      {"?" + Tls(false), "bad certificate"},
      {"", "etcd unreachable"},  // plain http to an https port
      {"?" + Tls(true, "junk.pem"), "etcd TLS: cannot load " + Path("junk.pem")},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.query);
    RecordingListener listener;
    StatusOr<std::unique_ptr<Resolver>> r =
        CreateResolver("etcd://" + etcd_.address() + "/echo" + c.query);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_TRUE((*r)->Start(&listener).ok());
    ASSERT_TRUE(listener.WaitForErrors(1, seconds(5)));
    EXPECT_NE(listener.errors().front().message().find(c.says), std::string::npos)
        << listener.errors().front();
    EXPECT_EQ(listener.updates(), 0);
    (*r)->Stop();
  }
}

}  // namespace
}  // namespace fulcrum::etcd
