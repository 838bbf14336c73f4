// The registry's heartbeat port (a nonblocking second port for register/heartbeat/deregister):
// heartbeats there keep an instance UP, other calls are refused with a clear error, bad input
// closes only that connection, the registrar uses the port and falls back to the main port
// when it is unreachable, and heartbeat_port = -1 keeps everything on the main port.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <thread>

#include "child_process.h"
#include "fulcrum/discovery/registry_connection.h"
#include "fulcrum_registrar.h"
#include "raw_socket.h"
#include "server/daemon.h"
#include "support/master_slave_helpers.h"
#include "testing/fake_clock.h"

namespace fulcrum::registry {

using registry_client::ConnectionOptions;
using registry_client::FulcrumRegistrar;
using registry_client::FulcrumRegistrarOptions;
using registry_client::RegistryConnection;

namespace {

using registry_test::ChildProcess;
using registry_test::ClosedByPeer;
using registry_test::ExpectJunkConnectionsClosed;
using registry_test::RawConnect;
using registry_test::ReadFile;
using registry_test::TempDir;
using registry_test::WriteFile;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kToken[] = "hb-port-token";

std::unique_ptr<RegistryConnection> Open(int port) {
  ConnectionOptions c;
  c.port = port;
  auto conn = RegistryConnection::Open(c);
  EXPECT_TRUE(conn.ok()) << conn.status();
  return conn.ok() ? std::move(conn).value() : nullptr;
}

thrift::Instance Calc(int port) {
  thrift::Instance i;
  i.service_name = "calc";
  i.host = "127.0.0.1";
  i.port = port;
  return i;
}

class HeartbeatPortTest : public ::testing::Test {
 protected:
  void SetUp() override { WriteFile(dir_.path() + "/token", kToken); }

  void StartDaemon(const Clock& clock, int heartbeat_port = 0, int advertised = 0) {
    DaemonOptions options;
    options.token_file = dir_.path() + "/token";
    options.heartbeat_interval = milliseconds(50);
    options.heartbeat_timeout = milliseconds(300);
    options.heartbeat_port = heartbeat_port;
    options.heartbeat_port_advertised = advertised;
    daemon_ = std::make_unique<RegistryDaemon>(options, clock);
    Status s = daemon_->Start();
    ASSERT_TRUE(s.ok()) << s;
  }

  thrift::InstanceState Only(const std::string& service = "calc") {
    const thrift::ServiceSnapshot snap = daemon_->store()->Lookup(service);
    EXPECT_EQ(snap.instances.size(), 1u);
    return snap.instances.empty() ? thrift::InstanceState() : snap.instances[0];
  }

  FulcrumRegistrarOptions RegistrarOptions() const {
    FulcrumRegistrarOptions o;
    o.connection.port = daemon_->port();
    o.token = kToken;
    o.heartbeat_interval = milliseconds(50);
    o.min_backoff = milliseconds(20);
    o.max_backoff = milliseconds(100);
    return o;
  }

  // Waits (bounded) until the registry has a heartbeat's load report from the instance.
  bool WaitForReportedLoad(int64_t in_flight) {
    const auto deadline = std::chrono::steady_clock::now() + seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      const thrift::ServiceSnapshot snap = daemon_->store()->Lookup("calc");
      if (snap.instances.size() == 1 && snap.instances[0].load.in_flight == in_flight) return true;
      std::this_thread::sleep_for(milliseconds(10));
    }
    return false;
  }

  // Waits (bounded) until the registrar's last heartbeat went to `port` (0: the main port);
  // the registry may show a heartbeat's load before the registrar has the reply.
  static bool WaitForPortInUse(const FulcrumRegistrar& registrar, int port) {
    const auto deadline = std::chrono::steady_clock::now() + seconds(10);
    while (registrar.heartbeat_port_in_use() != port) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(milliseconds(5));
    }
    return true;
  }

  TempDir dir_;
  std::unique_ptr<RegistryDaemon> daemon_;
};

TEST_F(HeartbeatPortTest, HeartbeatsOnTheHeartbeatPortKeepAnInstanceUp) {
  testing::FakeClock clock;
  StartDaemon(clock);
  ASSERT_GT(daemon_->heartbeat_port(), 0);
  ASSERT_NE(daemon_->heartbeat_port(), daemon_->port());

  auto main = Open(daemon_->port());
  ASSERT_NE(main, nullptr);
  thrift::Lease lease;
  main->client().register_instance(lease, kToken, Calc(9001));
  EXPECT_EQ(lease.heartbeat_port, daemon_->heartbeat_port());

  auto hb = Open(lease.heartbeat_port);
  ASSERT_NE(hb, nullptr);
  thrift::LoadReport load;
  load.in_flight = 3;
  // 250 ms steps against a 300 ms timeout: only the heartbeats keep it UP.
  for (int i = 0; i < 4; ++i) {
    clock.Advance(milliseconds(250));
    thrift::Directives d;
    hb->client().heartbeat(d, kToken, lease.id, load);
    EXPECT_FALSE(d.reregister);
    EXPECT_EQ(d.heartbeat_interval_ms, 50);
    daemon_->store()->Sweep();
    EXPECT_EQ(Only().health, thrift::Health::UP) << "after " << (i + 1) * 250 << " ms";
  }
  EXPECT_EQ(Only().load.in_flight, 3);

  // Without them it goes DOWN.
  clock.Advance(milliseconds(400));
  daemon_->store()->Sweep();
  EXPECT_EQ(Only().health, thrift::Health::DOWN);

  // An unknown lease is told to re-register; deregister there removes the instance.
  thrift::Directives d;
  hb->client().heartbeat(d, kToken, lease.id + 1, load);
  EXPECT_TRUE(d.reregister);
  thrift::Lease again;
  hb->client().register_instance(again, kToken, Calc(9001));
  EXPECT_EQ(again.heartbeat_port, daemon_->heartbeat_port());
  hb->client().deregister(kToken, again.id);
  EXPECT_TRUE(daemon_->store()->Lookup("calc").instances.empty());
}

TEST_F(HeartbeatPortTest, RefusesWatchLookupAndAdminCallsAndWrongTokens) {
  StartDaemon(Clock::Real());
  auto hb = Open(daemon_->heartbeat_port());
  ASSERT_NE(hb, nullptr);

  auto expect_refused = [](const char* call, const std::function<void()>& fn) {
    try {
      fn();
      ADD_FAILURE() << call << " was served on the heartbeat port";
    } catch (const thrift::RegistryError& e) {
      EXPECT_EQ(e.code, thrift::ErrorCode::INVALID_ARGUMENT) << call;
      EXPECT_NE(e.message.find("heartbeat port"), std::string::npos) << e.message;
      EXPECT_NE(e.message.find(call), std::string::npos) << e.message;
    }
  };
  expect_refused("watch", [&] {
    thrift::WatchResult r;
    hb->client().watch(r, "calc", 0, 1000);
  });
  expect_refused("lookup", [&] {
    thrift::ServiceSnapshot s;
    hb->client().lookup(s, "calc");
  });
  expect_refused("list_services", [&] {
    std::vector<thrift::ServiceSummary> s;
    hb->client().list_services(s);
  });
  expect_refused("set_weight", [&] { hb->client().set_weight(kToken, "calc", "a:1", 2); });
  expect_refused("drain", [&] { hb->client().drain(kToken, "calc", "a:1"); });
  expect_refused("undrain", [&] { hb->client().undrain(kToken, "calc", "a:1"); });
  expect_refused("remove_instance", [&] { hb->client().remove_instance(kToken, "calc", "a:1"); });
  expect_refused("promote", [&] {
    thrift::GroupState g;
    hb->client().promote(g, kToken, "calc", "a:1", false);
  });

  // Same auth as the main port.
  try {
    thrift::Lease lease;
    hb->client().register_instance(lease, "wrong", Calc(9001));
    ADD_FAILURE() << "a wrong token registered";
  } catch (const thrift::RegistryError& e) {
    EXPECT_EQ(e.code, thrift::ErrorCode::UNAUTHENTICATED);
  }
  try {
    thrift::Directives d;
    hb->client().heartbeat(d, "", 1, {});
    ADD_FAILURE() << "a heartbeat without a token was served";
  } catch (const thrift::RegistryError& e) {
    EXPECT_EQ(e.code, thrift::ErrorCode::UNAUTHENTICATED);
  }

  // Refusals do not close the connection.
  thrift::Lease lease;
  hb->client().register_instance(lease, kToken, Calc(9001));
  thrift::Directives d;
  hb->client().heartbeat(d, kToken, lease.id, {});
  EXPECT_FALSE(d.reregister);
}

TEST_F(HeartbeatPortTest, RegistrarHeartbeatsOnTheHeartbeatPortAndDeregistersThere) {
  StartDaemon(Clock::Real());
  FulcrumRegistrar registrar(RegistrarOptions());
  ServiceInstance instance;
  instance.service = "calc";
  instance.host = "127.0.0.1";
  instance.port = 9001;
  RegistrationOptions callbacks;
  callbacks.load = [] { return LoadReport{.in_flight = 7}; };
  ASSERT_TRUE(registrar.Register(instance, callbacks).ok());
  ASSERT_TRUE(WaitForReportedLoad(7));
  EXPECT_TRUE(WaitForPortInUse(registrar, daemon_->heartbeat_port()));
  EXPECT_EQ(Only().health, thrift::Health::UP);
  EXPECT_EQ(registrar.reregistrations(), 0);
  ASSERT_TRUE(registrar.Deregister().ok());
  EXPECT_TRUE(daemon_->store()->Lookup("calc").instances.empty());
}

TEST_F(HeartbeatPortTest, RegistrarFallsBackToTheMainPortWhenTheHeartbeatPortIsUnreachable) {
  const int closed = testing::DeadPort();
  StartDaemon(Clock::Real(), /*heartbeat_port=*/0, /*advertised=*/closed);
  {
    auto main = Open(daemon_->port());
    ASSERT_NE(main, nullptr);
    thrift::Lease lease;
    main->client().register_instance(lease, kToken, Calc(9002));
    ASSERT_EQ(lease.heartbeat_port, closed);
    main->client().deregister(kToken, lease.id);
  }
  FulcrumRegistrarOptions options = RegistrarOptions();
  options.heartbeat_port_retry = seconds(60);
  FulcrumRegistrar registrar(options);
  ServiceInstance instance;
  instance.service = "calc";
  instance.host = "127.0.0.1";
  instance.port = 9001;
  RegistrationOptions callbacks;
  callbacks.load = [] { return LoadReport{.in_flight = 5}; };
  ASSERT_TRUE(registrar.Register(instance, callbacks).ok());
  // Heard only through the main port: the advertised one refuses connections.
  ASSERT_TRUE(WaitForReportedLoad(5));
  EXPECT_EQ(Only().health, thrift::Health::UP);
  EXPECT_EQ(registrar.heartbeat_port_in_use(), 0);
  EXPECT_TRUE(registrar.registered());
  ASSERT_TRUE(registrar.Deregister().ok());
  EXPECT_TRUE(daemon_->store()->Lookup("calc").instances.empty())
      << "deregister over the main port did not arrive";
}

// A restarted registry listens on a new heartbeat port: the old one refuses, the registrar
// registers again on the main port and moves to the port its new lease names.
TEST_F(HeartbeatPortTest, RegistrarFollowsARestartedRegistryToItsNewHeartbeatPort) {
  StartDaemon(Clock::Real());
  FulcrumRegistrar registrar(RegistrarOptions());
  ServiceInstance instance;
  instance.service = "calc";
  instance.host = "127.0.0.1";
  instance.port = 9001;
  std::atomic<int64_t> in_flight{1};
  RegistrationOptions callbacks;
  callbacks.load = [&] { return LoadReport{.in_flight = in_flight.load()}; };
  ASSERT_TRUE(registrar.Register(instance, callbacks).ok());
  ASSERT_TRUE(WaitForReportedLoad(1));
  const int old_hb_port = daemon_->heartbeat_port();
  EXPECT_TRUE(WaitForPortInUse(registrar, old_hb_port));

  const int main_port = daemon_->port();
  daemon_->Stop();
  daemon_.reset();
  DaemonOptions options;
  options.port = main_port;
  options.token_file = dir_.path() + "/token";
  options.heartbeat_interval = milliseconds(50);
  options.heartbeat_timeout = milliseconds(300);
  options.heartbeat_port = 0;
  daemon_ = std::make_unique<RegistryDaemon>(options);
  ASSERT_TRUE(daemon_->Start().ok());
  ASSERT_NE(daemon_->heartbeat_port(), old_hb_port);

  in_flight = 2;
  ASSERT_TRUE(WaitForReportedLoad(2));
  // Reported loads may still have come over the main port: wait for the move.
  EXPECT_TRUE(WaitForPortInUse(registrar, daemon_->heartbeat_port()));
  EXPECT_GE(registrar.reregistrations(), 1);
  EXPECT_EQ(Only().health, thrift::Health::UP);
  ASSERT_TRUE(registrar.Deregister().ok());
  EXPECT_TRUE(daemon_->store()->Lookup("calc").instances.empty());
}

TEST_F(HeartbeatPortTest, OffKeepsEverythingOnTheMainPort) {
  StartDaemon(Clock::Real(), /*heartbeat_port=*/-1);
  EXPECT_EQ(daemon_->heartbeat_port(), 0);
  auto main = Open(daemon_->port());
  ASSERT_NE(main, nullptr);
  thrift::Lease lease;
  main->client().register_instance(lease, kToken, Calc(9002));
  EXPECT_EQ(lease.heartbeat_port, 0);
  main->client().deregister(kToken, lease.id);

  FulcrumRegistrar registrar(RegistrarOptions());
  ServiceInstance instance;
  instance.service = "calc";
  instance.host = "127.0.0.1";
  instance.port = 9001;
  RegistrationOptions callbacks;
  callbacks.load = [] { return LoadReport{.in_flight = 4}; };
  ASSERT_TRUE(registrar.Register(instance, callbacks).ok());
  ASSERT_TRUE(WaitForReportedLoad(4));
  EXPECT_EQ(registrar.heartbeat_port_in_use(), 0);
  EXPECT_EQ(registrar.reregistrations(), 0);
  ASSERT_TRUE(registrar.Deregister().ok());
  EXPECT_TRUE(daemon_->store()->Lookup("calc").instances.empty());
}

// With TLS there is no heartbeat port (Thrift 0.17's TLS socket is not safe on the
// nonblocking server): leases name none, and everything stays on the TLS main port.
TEST_F(HeartbeatPortTest, TlsTurnsTheHeartbeatPortOff) {
  // OpenSSL writes with write(2): like fulcrum-registry's main(), ignore SIGPIPE in-process.
  std::signal(SIGPIPE, SIG_IGN);
  const std::string key = dir_.path() + "/key.pem";
  const std::string cert = dir_.path() + "/cert.pem";
  registry_test::CommandResult gen = registry_test::RunCommand(
      {"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out",
       cert, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"},
      seconds(60));
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  DaemonOptions options;
  options.token_file = dir_.path() + "/token";
  options.heartbeat_port = 0;
  options.tls_cert_file = cert;
  options.tls_key_file = key;
  daemon_ = std::make_unique<RegistryDaemon>(options);
  ASSERT_TRUE(daemon_->Start().ok());
  EXPECT_EQ(daemon_->heartbeat_port(), 0);
  ConnectionOptions c;
  c.port = daemon_->port();
  c.tls_ca_file = cert;
  auto conn = RegistryConnection::Open(c);
  ASSERT_TRUE(conn.ok()) << conn.status();
  thrift::Lease lease;
  conn.value()->client().register_instance(lease, kToken, Calc(9001));
  EXPECT_EQ(lease.heartbeat_port, 0);
}

// The real binary: bad input on the heartbeat port closes that connection with a log line
// naming the peer, and others are served meanwhile.
TEST(HeartbeatPortProcessTest, BadInputClosesThatConnectionAndOthersAreServed) {
  TempDir dir;
  WriteFile(dir.path() + "/token", kToken);
  const std::string log_file = dir.path() + "/registry.log";
  ChildProcess registry = ChildProcess::Spawn(
      {FULCRUM_REGISTRY_BIN, "--port=0", "--heartbeat_port=0", "--data_dir=" + dir.path() + "/data",
       "--token_file=" + dir.path() + "/token", "--max_frame_bytes=65536"},
      log_file);
  const std::string line = registry.WaitForLine("LISTENING", seconds(20));
  ASSERT_FALSE(line.empty()) << ReadFile(log_file);
  const int port = std::stoi(line.substr(line.find(' ') + 1));
  auto main = Open(port);
  ASSERT_NE(main, nullptr);
  thrift::Lease lease;
  main->client().register_instance(lease, kToken, Calc(9001));
  const int hb_port = lease.heartbeat_port;
  ASSERT_GT(hb_port, 0);
  auto hb = Open(hb_port);
  ASSERT_NE(hb, nullptr);

  // Stalled mid-frame, held open throughout: it must not hold up the others.
  const int slow = RawConnect(hb_port);
  ASSERT_GE(slow, 0);
  ASSERT_EQ(::write(slow, "\x00\x00\x00\x40\x80", 5), 5);

  ExpectJunkConnectionsClosed(hb_port);

  thrift::Directives d;
  hb->client().heartbeat(d, kToken, lease.id, {});
  EXPECT_FALSE(d.reregister);
  auto fresh = Open(hb_port);
  ASSERT_NE(fresh, nullptr);
  fresh->client().heartbeat(d, kToken, lease.id, {});
  EXPECT_FALSE(d.reregister);
  thrift::ServiceSnapshot snap;
  main->client().lookup(snap, "calc");
  ASSERT_EQ(snap.instances.size(), 1u);
  EXPECT_EQ(snap.instances[0].health, thrift::Health::UP);
  EXPECT_FALSE(registry.Wait(milliseconds(0)).has_value()) << "the registry exited";
  ::close(slow);

  const std::string log = ReadFile(log_file);
  EXPECT_NE(log.find("closing heartbeat-port connection from 127.0.0.1:"), std::string::npos)
      << log;
  EXPECT_NE(log.find("frame size too large"), std::string::npos) << log;
  registry.Signal(SIGTERM);
  EXPECT_TRUE(registry.Wait(seconds(20)).has_value());
}

// -1 turns it off, and so does leaving the flag out (the default).
TEST(HeartbeatPortProcessTest, FlagMinusOneAndTheDefaultKeepEverythingOnTheMainPort) {
  for (const std::string flag : {"--heartbeat_port=-1", "--heartbeat_io_threads=1"}) {
    SCOPED_TRACE(flag);
    TempDir dir;
    const std::string log_file = dir.path() + "/registry.log";
    ChildProcess registry = ChildProcess::Spawn(
        {FULCRUM_REGISTRY_BIN, "--port=0", flag, "--data_dir=" + dir.path() + "/data"}, log_file);
    const std::string line = registry.WaitForLine("LISTENING", seconds(20));
    ASSERT_FALSE(line.empty()) << ReadFile(log_file);
    auto main = Open(std::stoi(line.substr(line.find(' ') + 1)));
    ASSERT_NE(main, nullptr);
    thrift::Lease lease;
    main->client().register_instance(lease, "", Calc(9001));
    EXPECT_EQ(lease.heartbeat_port, 0);
    thrift::Directives d;
    main->client().heartbeat(d, "", lease.id, {});
    EXPECT_FALSE(d.reregister);
    registry.Signal(SIGTERM);
    EXPECT_TRUE(registry.Wait(seconds(20)).has_value());
    EXPECT_NE(ReadFile(log_file).find("heartbeat port off"), std::string::npos);
  }
}

}  // namespace
}  // namespace fulcrum::registry
