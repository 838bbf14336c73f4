// fulcrum::ServerRegistration with a recording Registrar: what it registers, the load it
// reports, and the drain order (deregister, wait for quiet, stop the server).
#include "fulcrum/server_registration.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mutex>
#include <vector>

#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TSocket.h>

#include "support/test_server.h"
#include "testing/fake_clock.h"

namespace fulcrum {
namespace {

class RecordingRegistrar final : public Registrar {
 public:
  explicit RecordingRegistrar(std::vector<std::string>* events) : events_(events) {}
  Status Register(const ServiceInstance& instance, RegistrationOptions options) override {
    instance_ = instance;
    options_ = std::move(options);
    events_->push_back("register");
    return refuse_ ? Status::Error(StatusCode::kInvalidArgument, "refused") : Status::Ok();
  }
  Status Deregister() override {
    events_->push_back("deregister");
    return Status::Ok();
  }
  bool registered() const override { return true; }

  ServiceInstance instance_;
  RegistrationOptions options_;
  bool refuse_ = false;

 private:
  std::vector<std::string>* events_;
};

TEST(ServerRegistrationTest, RegistersTheServersPortAndReportsLoad) {
  auto server = testing::TestServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  std::vector<std::string> events;
  auto registrar = std::make_unique<RecordingRegistrar>(&events);
  RecordingRegistrar* r = registrar.get();
  testing::FakeClock clock;
  ServiceInstance instance;
  instance.service = "echo";
  instance.host = "127.0.0.1";
  auto reg = ServerRegistration::Start(&(*server)->server(), std::move(registrar), instance,
                                       DrainOptions{}, clock);
  ASSERT_TRUE(reg.ok()) << reg.status();
  EXPECT_EQ(r->instance_.port, (*server)->port());
  EXPECT_EQ(r->instance_.service, "echo");
  ASSERT_TRUE(r->options_.load);

  clock.Advance(std::chrono::seconds(2));
  const LoadReport idle = r->options_.load();
  EXPECT_EQ(idle.in_flight, 0);
  EXPECT_EQ(idle.calls_per_second, 0);

  // Ten calls over the next (fake) two seconds: 5 calls/s.
  {
    auto socket =
        std::make_shared<apache::thrift::transport::TSocket>("127.0.0.1", (*server)->port());
    auto transport = std::make_shared<apache::thrift::transport::TFramedTransport>(socket);
    fulcrum::test::EchoClient client(
        std::make_shared<apache::thrift::protocol::TBinaryProtocol>(transport));
    transport->open();
    for (int i = 0; i < 10; ++i) {
      std::string out;
      client.echo(out, "x");
    }
    transport->close();
  }
  clock.Advance(std::chrono::seconds(2));
  // (in_flight may still count the last call: the server decrements after the reply leaves.)
  const LoadReport busy = r->options_.load();
  EXPECT_DOUBLE_EQ(busy.calls_per_second, 5.0);

  // An administrator's drain is remembered from the directives.
  ASSERT_TRUE(r->options_.on_directives);
  RegistrarDirectives d;
  d.drained = true;
  r->options_.on_directives(d);
  EXPECT_TRUE((*reg)->drained_by_admin());
}

TEST(ServerRegistrationTest, DrainDeregistersBeforeStoppingTheServer) {
  auto server = testing::TestServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  std::vector<std::string> events;
  auto registrar = std::make_unique<RecordingRegistrar>(&events);
  ServiceInstance instance;
  instance.service = "echo";
  instance.host = "127.0.0.1";
  DrainOptions drain;
  drain.quiet_period = std::chrono::milliseconds(50);
  auto reg = ServerRegistration::Start(&(*server)->server(), std::move(registrar), instance, drain);
  ASSERT_TRUE(reg.ok()) << reg.status();
  EXPECT_TRUE((*reg)->Drain().ok());
  EXPECT_EQ(events, (std::vector<std::string>{"register", "deregister"}));
  // The server is stopped: its port no longer accepts connections.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons((*server)->port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_NE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ::close(fd);
}

TEST(ServerRegistrationTest, RefusedRegistrationIsAnError) {
  auto server = testing::TestServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  std::vector<std::string> events;
  auto registrar = std::make_unique<RecordingRegistrar>(&events);
  registrar->refuse_ = true;
  ServiceInstance instance;
  instance.service = "echo";
  auto reg = ServerRegistration::Start(&(*server)->server(), std::move(registrar), instance);
  EXPECT_EQ(reg.status().code(), StatusCode::kInvalidArgument);
}

TEST(ServerRegistrationTest, UnknownSchemeIsAnError) {
  auto server = testing::TestServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  auto reg = ServerRegistration::Start(&(*server)->server(), "zookeeper://x:1", {});
  EXPECT_EQ(reg.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(reg.status().message().find("unknown registrar scheme 'zookeeper'"), std::string::npos)
      << reg.status();
}

}  // namespace
}  // namespace fulcrum
