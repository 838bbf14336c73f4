// The real fulcrum-registry and fulcrumctl binaries on loopback: admin state surviving SIGKILL,
// a corrupt state file refusing to start, bad input on the port, fulcrumctl's output and
// errors, and TLS.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "child_process.h"
#include "fulcrum/discovery/registry_connection.h"
#include "fulcrum/role.h"
#include "fulcrum_registrar.h"
#include "fulcrum_resolver.h"
#include "raw_socket.h"

namespace fulcrum::registry {

using registry_client::ConnectionOptions;
using registry_client::FulcrumRegistrar;
using registry_client::FulcrumRegistrarOptions;
using registry_client::FulcrumResolver;
using registry_client::FulcrumResolverOptions;
using registry_client::RegistryConnection;

namespace {

using registry_test::ChildProcess;
using registry_test::ClosedByPeer;
using registry_test::CommandResult;
using registry_test::ExpectJunkConnectionsClosed;
using registry_test::RawConnect;
using registry_test::ReadFile;
using registry_test::RunCommand;
using registry_test::TempDir;
using registry_test::WriteFile;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kToken[] = "process-test-token";

class RegistryProcessTest : public ::testing::Test {
 protected:
  void SetUp() override { WriteFile(TokenFile(), kToken); }

  std::string TokenFile() const { return dir_.path() + "/token"; }
  std::string DataDir() const { return dir_.path() + "/data"; }
  std::string LogFile() const { return dir_.path() + "/registry.log"; }

  // Starts the registry; returns its port (0 if it did not come up).
  int Start(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {FULCRUM_REGISTRY_BIN, "--port=0", "--data_dir=" + DataDir(),
                                     "--token_file=" + TokenFile()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    registry_ = ChildProcess::Spawn(argv, LogFile());
    const std::string line = registry_->WaitForLine("LISTENING", seconds(20));
    if (line.empty()) return 0;
    port_ = std::stoi(line.substr(line.find(' ') + 1));
    return port_;
  }

  std::unique_ptr<RegistryConnection> Connect() {
    ConnectionOptions c;
    c.port = port_;
    auto conn = RegistryConnection::Open(c);
    EXPECT_TRUE(conn.ok()) << conn.status();
    return conn.ok() ? std::move(conn).value() : nullptr;
  }

  int64_t Register(RegistryConnection& conn, int port, int weight = 1) {
    thrift::Instance i;
    i.service_name = "calc";
    i.host = "127.0.0.1";
    i.port = port;
    i.weight = weight;
    i.zone = "z1";
    thrift::Lease lease;
    conn.client().register_instance(lease, kToken, i);
    return lease.id;
  }

  CommandResult Ctl(std::vector<std::string> args, bool with_token = true) {
    std::vector<std::string> argv = {FULCRUMCTL_BIN,
                                     "--registry=127.0.0.1:" + std::to_string(port_)};
    if (with_token) argv.push_back("--token_file=" + TokenFile());
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, seconds(20));
  }

  TempDir dir_;
  std::optional<ChildProcess> registry_;
  int port_ = 0;
};

TEST_F(RegistryProcessTest, AdminStateSurvivesSigkillAndRestart) {
  ASSERT_GT(Start(), 0) << ReadFile(LogFile());
  {
    auto conn = Connect();
    ASSERT_NE(conn, nullptr);
    Register(*conn, 9001);
    Register(*conn, 9002);
  }
  ASSERT_EQ(Ctl({"set-weight", "calc", "127.0.0.1:9001", "5"}).exit_code, 0);
  ASSERT_EQ(Ctl({"drain", "calc", "127.0.0.1:9002"}).exit_code, 0);

  registry_->Signal(SIGKILL);  // acknowledged admin calls must already be on disk
  ASSERT_TRUE(registry_->Wait(seconds(10)).has_value());
  ASSERT_GT(Start(), 0) << ReadFile(LogFile());

  // Liveness is soft state (gone until servers re-register); admin state is not.
  CommandResult list = Ctl({"list", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(nlohmann::json::parse(list.out)[0]["service"], "calc");

  auto conn = Connect();
  ASSERT_NE(conn, nullptr);
  Register(*conn, 9001);
  Register(*conn, 9002);
  thrift::ServiceSnapshot snap;
  conn->client().lookup(snap, "calc");
  ASSERT_EQ(snap.instances.size(), 2u);
  EXPECT_EQ(snap.instances[0].effective_weight, 5);
  EXPECT_FALSE(snap.instances[0].drained);
  EXPECT_TRUE(snap.instances[1].drained);
}

TEST_F(RegistryProcessTest, CorruptStateFileIsReportedAndTheRegistryRefusesToStart) {
  ASSERT_GT(Start(), 0);
  {
    auto conn = Connect();
    ASSERT_NE(conn, nullptr);
    Register(*conn, 9001);
  }
  ASSERT_EQ(Ctl({"set-weight", "calc", "127.0.0.1:9001", "5"}).exit_code, 0);
  registry_->Signal(SIGKILL);
  ASSERT_TRUE(registry_->Wait(seconds(10)).has_value());

  const std::string state = DataDir() + "/admin_state";
  const std::string whole = ReadFile(state);
  ASSERT_FALSE(whole.empty());
  WriteFile(state, whole.substr(0, whole.size() - 10));  // truncated
  EXPECT_EQ(Start(), 0);
  auto status = registry_->Wait(seconds(10));
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1);
  const std::string log = ReadFile(LogFile());
  EXPECT_NE(
      log.find("fulcrum-registry cannot start: INTERNAL: " + state + ": admin state is corrupt"),
      std::string::npos)
      << log;
}

TEST_F(RegistryProcessTest, RefusesAPromotionDelayNotAboveTheLease) {
  EXPECT_EQ(Start({"--master_lease_ms=800", "--promotion_delay_ms=800"}), 0);
  auto status = registry_->Wait(seconds(10));
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 2) << *status;
  const std::string log = ReadFile(LogFile());
  EXPECT_NE(log.find("--promotion_delay_ms (800) must be greater than --master_lease_ms (800)"),
            std::string::npos)
      << log;
}

// A master-slave server as far as the registry can tell: a registrar whose directives drive a
// RoleState, which reports its position and writes_quiesced.
struct FakeKvServer {
  FakeKvServer(int registry_port, uint16_t port, int64_t position) {
    role.set_replication_position(position);
    FulcrumRegistrarOptions o;
    o.connection.port = registry_port;
    o.token = kToken;
    registrar = std::make_unique<FulcrumRegistrar>(o);
    ServiceInstance i;
    i.service = "kv";
    i.host = "127.0.0.1";
    i.port = port;
    i.group = "g1";
    RegistrationOptions r;
    r.load = [this] {
      LoadReport l;
      // Quiesced first: a position read after it is final (no write can land in between).
      l.writes_quiesced = role.writes_quiesced();
      l.replication_position = role.replication_position();
      return l;
    };
    r.on_directives = [this](const RegistrarDirectives& d) { role.Apply(d); };
    EXPECT_TRUE(registrar->Register(i, r).ok());
  }
  RoleState role;
  std::unique_ptr<FulcrumRegistrar> registrar;
};

TEST_F(RegistryProcessTest, FulcrumctlShowsRolesAndPromotesAndTheEpochSurvivesSigkill) {
  ASSERT_GT(Start(), 0) << ReadFile(LogFile());
  FakeKvServer a(port_, 9001, 5);
  for (int i = 0; i < 1000 && !a.role.is_master(); ++i)
    std::this_thread::sleep_for(milliseconds(5));
  ASSERT_TRUE(a.role.is_master());
  FakeKvServer b(port_, 9002, 5);  // caught up already
  for (int i = 0; i < 1000 && b.role.epoch() == 0; ++i)
    std::this_thread::sleep_for(milliseconds(5));

  CommandResult show = Ctl({"show", "kv"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("GROUP  ROLE    EPOCH  POSITION"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("g1     MASTER  1      5"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("g1     SLAVE   1      5"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("g1     1      127.0.0.1:9001  -"), std::string::npos) << show.out;

  CommandResult usage = Ctl({"promote", "kv"});
  EXPECT_EQ(usage.exit_code, 2);
  CommandResult unknown = Ctl({"promote", "kv", "127.0.0.1:1"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_EQ(unknown.err,
            "fulcrumctl: the registry refused promote: service 'kv' has no instance 127.0.0.1:1\n");

  CommandResult promoted = Ctl({"promote", "kv", "127.0.0.1:9002"});
  ASSERT_EQ(promoted.exit_code, 0) << promoted.err << ReadFile(LogFile());
  EXPECT_EQ(promoted.out, "promoted kv/127.0.0.1:9002: master of group g1, epoch 2\n");
  const std::string log = ReadFile(LogFile());
  EXPECT_NE(log.find("asked to promote kv/127.0.0.1:9002"), std::string::npos) << log;

  // SIGKILL: epoch 2 and its master come back from the admin file.
  a.registrar.reset();
  b.registrar.reset();
  registry_->Signal(SIGKILL);
  ASSERT_TRUE(registry_->Wait(seconds(10)).has_value());
  ASSERT_GT(Start(), 0) << ReadFile(LogFile());
  {
    auto conn = Connect();
    ASSERT_NE(conn, nullptr);
    thrift::Instance i;
    i.service_name = "kv";
    i.host = "127.0.0.1";
    i.port = 9001;
    i.group = "g1";
    thrift::Lease lease;
    conn->client().register_instance(lease, kToken, i);
    thrift::Directives d;
    conn->client().heartbeat(d, kToken, lease.id, {});
    EXPECT_EQ(d.role, thrift::Role::SLAVE);
    EXPECT_EQ(d.epoch, 2);
    EXPECT_EQ(d.master_address, "127.0.0.1:9002");
  }
  CommandResult json = Ctl({"show", "kv", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const nlohmann::json j = nlohmann::json::parse(json.out);
  ASSERT_EQ(j["groups"].size(), 1u);
  EXPECT_EQ(j["groups"][0]["epoch"], 2);
  EXPECT_EQ(j["groups"][0]["master"], "127.0.0.1:9002");
  EXPECT_EQ(j["instances"][0]["role"], "SLAVE");
}

TEST_F(RegistryProcessTest, BadInputClosesThatConnectionAndOthersAreServed) {
  ASSERT_GT(Start({"--idle_timeout_ms=3000", "--max_frame_bytes=65536"}), 0);

  // Half-open / slow: two bytes of a frame header, then nothing. Held open throughout.
  const int slow = RawConnect(port_);
  ASSERT_GE(slow, 0);
  ASSERT_EQ(::write(slow, "\x00\x00", 2), 2);

  ExpectJunkConnectionsClosed(port_);

  // Meanwhile, with the slow connection still stalled, others are served.
  auto conn = Connect();
  ASSERT_NE(conn, nullptr);
  Register(*conn, 9001);
  thrift::ServiceSnapshot snap;
  conn->client().lookup(snap, "calc");
  EXPECT_EQ(snap.instances.size(), 1u);

  // The stalled connection is closed by the idle timeout.
  EXPECT_TRUE(ClosedByPeer(slow, seconds(10)));
  ::close(slow);

  // Still serving (a new connection: the idle timeout may have closed the first one too).
  conn = Connect();
  ASSERT_NE(conn, nullptr);
  conn->client().lookup(snap, "calc");
  EXPECT_EQ(snap.instances.size(), 1u);
  EXPECT_FALSE(registry_->Wait(milliseconds(0)).has_value()) << "the registry exited";

  const std::string log = ReadFile(LogFile());
  EXPECT_NE(log.find("closing connection from 127.0.0.1"), std::string::npos) << log;
  EXPECT_NE(log.find("oversized"), std::string::npos) << log;
}

TEST_F(RegistryProcessTest, FulcrumctlTablesJsonAndErrors) {
  ASSERT_GT(Start(), 0);
  {
    auto conn = Connect();
    ASSERT_NE(conn, nullptr);
    Register(*conn, 9001, 2);
    Register(*conn, 9002);
    thrift::Directives d;
  }
  CommandResult list = Ctl({"list"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(list.out,
            "SERVICE  INSTANCES  UP  DRAINED\n"
            "calc     2          2   0\n");

  ASSERT_EQ(Ctl({"drain", "calc", "127.0.0.1:9002"}).out, "drained calc/127.0.0.1:9002\n");
  CommandResult show = Ctl({"show", "calc"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("ADDRESS         HEALTH  WEIGHT  ZONE  DRAINED  LAST-HB"),
            std::string::npos)
      << show.out;
  EXPECT_NE(show.out.find("127.0.0.1:9002  UP      1       z1    yes"), std::string::npos)
      << show.out;

  CommandResult json = Ctl({"show", "calc", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const nlohmann::json j = nlohmann::json::parse(json.out);
  ASSERT_EQ(j["instances"].size(), 2u);
  EXPECT_EQ(j["instances"][0]["weight"], 2);
  EXPECT_EQ(j["instances"][1]["drained"], true);

  CommandResult all = Ctl({"show", "--json"});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_EQ(nlohmann::json::parse(all.out)[0]["instances"].size(), 2u);

  CommandResult unknown_instance = Ctl({"drain", "calc", "127.0.0.1:1"});
  EXPECT_EQ(unknown_instance.exit_code, 1);
  EXPECT_EQ(unknown_instance.err,
            "fulcrumctl: the registry refused drain: service 'calc' has no instance "
            "127.0.0.1:1\n");

  CommandResult unknown_service = Ctl({"show", "nope"});
  EXPECT_EQ(unknown_service.exit_code, 1);
  EXPECT_EQ(unknown_service.err, "fulcrumctl: unknown service 'nope' (no instance registered)\n");

  CommandResult no_token = Ctl({"set-weight", "calc", "127.0.0.1:9001", "3"}, false);
  EXPECT_EQ(no_token.exit_code, 1);
  EXPECT_NE(no_token.err.find("needs the registry's token"), std::string::npos) << no_token.err;
  EXPECT_NE(no_token.err.find("--token_file"), std::string::npos) << no_token.err;

  CommandResult bad_weight = Ctl({"set-weight", "calc", "127.0.0.1:9001", "heavy"});
  EXPECT_EQ(bad_weight.exit_code, 2);
  EXPECT_NE(bad_weight.err.find("weight 'heavy' is not an integer"), std::string::npos);
  // "clear" (or -1, after "--" so gflags does not read it as a flag) drops the admin weight.
  CommandResult cleared = Ctl({"set-weight", "calc", "127.0.0.1:9001", "clear"});
  EXPECT_EQ(cleared.exit_code, 0) << cleared.err;
  CommandResult cleared_again = Ctl({"--", "set-weight", "calc", "127.0.0.1:9001", "-1"});
  EXPECT_EQ(cleared_again.exit_code, 0) << cleared_again.err;

  CommandResult removed = Ctl({"remove", "calc", "127.0.0.1:9001"});
  EXPECT_EQ(removed.exit_code, 0) << removed.err;
  EXPECT_EQ(nlohmann::json::parse(Ctl({"show", "calc", "--json"}).out)["instances"].size(), 1u);

  registry_->Signal(SIGTERM);
  auto status = registry_->Wait(seconds(20));
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << ReadFile(LogFile());
  CommandResult unreachable = Ctl({"list"});
  EXPECT_EQ(unreachable.exit_code, 3);
  EXPECT_NE(unreachable.err.find("cannot reach registry at 127.0.0.1:" + std::to_string(port_)),
            std::string::npos)
      << unreachable.err;
}

TEST_F(RegistryProcessTest, ServesTlsWithThrowawayCertificates) {
  const std::string key = dir_.path() + "/key.pem";
  const std::string cert = dir_.path() + "/cert.pem";
  CommandResult gen = RunCommand(
      {"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out",
       cert, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"},
      seconds(60));
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  ASSERT_GT(Start({"--tls_cert_file=" + cert, "--tls_key_file=" + key}), 0) << ReadFile(LogFile());

  CommandResult tls = Ctl({"list", "--tls_ca_file=" + cert});
  EXPECT_EQ(tls.exit_code, 0) << tls.err;
  EXPECT_EQ(tls.out, "no services registered\n");

  CommandResult plain = Ctl({"list", "--timeout_ms=1000"});
  EXPECT_NE(plain.exit_code, 0) << "plain TCP talked to a TLS registry";

  // The fulcrum:// registrar and resolver over TLS.
  ConnectionOptions tls_conn;
  tls_conn.port = port_;
  tls_conn.tls_ca_file = cert;
  FulcrumRegistrarOptions registrar_options;
  registrar_options.connection = tls_conn;
  registrar_options.token = kToken;
  FulcrumRegistrar registrar(registrar_options);
  ServiceInstance instance;
  instance.service = "calc";
  instance.host = "127.0.0.1";
  instance.port = 9001;
  ASSERT_TRUE(registrar.Register(instance, {}).ok());
  EXPECT_TRUE(registrar.registered());

  FulcrumResolverOptions resolver_options;
  resolver_options.connection = tls_conn;
  resolver_options.service = "calc";
  FulcrumResolver resolver(resolver_options);
  struct Listener : ResolverListener {
    std::mutex mu;
    std::condition_variable cv;
    size_t endpoints = 0;
    void OnUpdate(EndpointSet set) override {
      std::lock_guard lock(mu);
      endpoints = set.endpoints.size();
      cv.notify_all();
    }
    void OnError(const Status&) override {}
  } listener;
  ASSERT_TRUE(resolver.Start(&listener).ok());
  {
    std::unique_lock lock(listener.mu);
    EXPECT_TRUE(listener.cv.wait_for(lock, seconds(10), [&] { return listener.endpoints == 1; }));
  }
  resolver.Stop();
  EXPECT_TRUE(registrar.Deregister().ok());
}

}  // namespace
}  // namespace fulcrum::registry
