// The fault-injection proxy itself, in front of an in-process echo server, through a channel.
#include "support/fault_proxy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/echo_calls.h"
#include "support/eventually.h"
#include "support/test_server.h"

namespace fulcrum::testing {
namespace {

using std::chrono::milliseconds;

class FaultProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = TestServer::Start({.id = "behind"});
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(s).value();
    proxy_ = std::make_unique<FaultProxy>(server_->port());
    ASSERT_TRUE(proxy_->Start().ok());
    ChannelOptions opts;
    opts.service_name = "echo";
    opts.max_attempts = 1;
    opts.outlier.consecutive_failures = 0;
    channel_ =
        Channel::Create("static://127.0.0.1:" + std::to_string(proxy_->port()), opts).value();
  }

  std::string Call(Duration timeout = milliseconds(300)) {
    CallOptions o;
    o.timeout = timeout;
    return Whoami(*channel_, o);
  }

  std::unique_ptr<TestServer> server_;
  std::unique_ptr<FaultProxy> proxy_;
  std::shared_ptr<Channel> channel_;
};

TEST_F(FaultProxyTest, PassesCallsThrough) {
  for (int i = 0; i < 20; ++i) EXPECT_EQ(Call(), "behind");
  EXPECT_EQ(proxy_->accepted(), 1) << "one pooled connection";
  EXPECT_EQ(proxy_->open_connections(), 1);
}

TEST_F(FaultProxyTest, LatencyDelaysEveryCallByAtLeastTwiceTheSetting) {
  proxy_->SetLatency(milliseconds(20));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(Call(), "behind");
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(40)) << "request and reply";
}

TEST_F(FaultProxyTest, ABlackholeStallsCallsUntilHealed) {
  EXPECT_EQ(Call(), "behind");
  proxy_->SetMode(FaultProxy::Mode::kBlackhole);
  try {
    Call(milliseconds(150));
    FAIL() << "a partitioned call must not be answered";
  } catch (const CallError& e) {
    EXPECT_EQ(e.code(), StatusCode::kDeadlineExceeded) << e.what();
  }
  proxy_->SetMode(FaultProxy::Mode::kPass);
  EXPECT_EQ(Call(), "behind");  // a new connection: the cut one was closed by the watchdog
}

TEST_F(FaultProxyTest, ResetAllBreaksOpenConnectionsAndRefuseRejectsNewOnes) {
  EXPECT_EQ(Call(), "behind");
  proxy_->SetMode(FaultProxy::Mode::kRefuse);
  proxy_->ResetAll();
  EXPECT_THROW(Call(), CallError);
  EXPECT_TRUE(Eventually([&] { return proxy_->open_connections() == 0; }));
  proxy_->SetMode(FaultProxy::Mode::kPass);
  EXPECT_EQ(Call(), "behind");
}

TEST_F(FaultProxyTest, TrickleMakesACallOutliveItsDeadline) {
  proxy_->SetMode(FaultProxy::Mode::kTrickle);
  try {
    Call(milliseconds(200));  // a whoami reply is ~30 bytes: ~0.6 s at one byte per 20 ms
    FAIL() << "a trickled reply cannot arrive in time";
  } catch (const CallError& e) {
    EXPECT_EQ(e.code(), StatusCode::kDeadlineExceeded) << e.what();
  }
}

}  // namespace
}  // namespace fulcrum::testing
