// Master-slave routing in the channel against real in-process servers whose write gate
// (RoleState) refuses writes with NotMaster, as generated master-slave servers do.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <map>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fulcrum/channel.h"
#include "fulcrum/role.h"
#include "support/echo_calls.h"
#include "support/master_slave_helpers.h"
#include "support/test_server.h"

namespace fulcrum {
namespace {

using std::chrono::milliseconds;
using testing::DeadPort;
using ::testing::HasSubstr;
using testing::MasterReply;
using testing::SlaveReply;
using testing::TestServer;

// The channel's endpoints come from the test, through UpdateEndpoints.
class NullResolver final : public Resolver {
 public:
  Status Start(ResolverListener*) override { return Status::Ok(); }
  void Stop() override {}
};

class MasterSlaveChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* id : {"a", "b", "c"}) {
      auto role = std::make_shared<RoleState>();
      auto s = TestServer::Start({.id = id, .role = role});
      ASSERT_TRUE(s.ok()) << s.status();
      roles_[id] = role;
      servers_[id] = std::move(s).value();
    }
  }

  std::string Address(const std::string& id) { return servers_[id]->endpoint().Address(); }

  // What the resolver would say about `id`.
  Endpoint Tagged(const std::string& id, InstanceRole role, int64_t epoch,
                  const std::string& group = "g1") {
    Endpoint e = servers_[id]->endpoint();
    e.group = group;
    e.role = role;
    e.epoch = epoch;
    return e;
  }

  std::shared_ptr<Channel> MakeChannel(ChannelOptions opts = {}) {
    opts.service_name = "echo";
    opts.master_slave = true;
    auto ch = Channel::Create(std::make_unique<NullResolver>(), opts);
    EXPECT_TRUE(ch.ok()) << ch.status();
    return ch.ok() ? *ch : nullptr;
  }

  // Every server's view: `master` is the master of `epoch`, the others its slaves.
  void SetRoles(const std::string& master, int64_t epoch) {
    for (auto& [id, role] : roles_) {
      role->Apply(id == master ? MasterReply(epoch, Address(id))
                               : SlaveReply(epoch, Address(master)));
    }
  }

  int64_t Increments(const std::string& id) { return servers_[id]->handler().increments(); }

  std::map<std::string, std::shared_ptr<RoleState>> roles_;
  std::map<std::string, std::unique_ptr<TestServer>> servers_;
};

TEST_F(MasterSlaveChannelTest, WritesGoOnlyToTheMasterOfTheNewestEpoch) {
  SetRoles("a", 2);
  auto ch = MakeChannel({.balancer = "round_robin"});
  // b was master of epoch 1; the set still lists it so (an old entry), next to the new one.
  ch->UpdateEndpoints(
      {{Tagged("a", InstanceRole::kMaster, 2), Tagged("b", InstanceRole::kMaster, 1),
        Tagged("c", InstanceRole::kSlave, 2)}});
  for (int i = 0; i < 30; ++i) testing::Increment(*ch, 1);
  EXPECT_EQ(Increments("a"), 30);
  EXPECT_EQ(Increments("b"), 0);
  EXPECT_EQ(Increments("c"), 0);
  EXPECT_EQ(ch->redirects(), 0u);
  EXPECT_EQ(ch->master_waits(), 0u);
}

TEST_F(MasterSlaveChannelTest, EachGroupsNewestMasterTakesWrites) {
  // Two groups, each with its own epoch: both masters are eligible, the stale one is not.
  roles_["a"]->Apply(MasterReply(3, Address("a")));
  roles_["b"]->Apply(MasterReply(7, Address("b")));
  roles_["c"]->Apply(SlaveReply(7, Address("b")));
  auto ch = MakeChannel({.balancer = "round_robin"});
  ch->UpdateEndpoints(
      {{Tagged("a", InstanceRole::kMaster, 3, "g1"), Tagged("b", InstanceRole::kMaster, 7, "g2"),
        Tagged("c", InstanceRole::kMaster, 6, "g2")}});
  for (int i = 0; i < 20; ++i) testing::Increment(*ch, 1);
  EXPECT_EQ(Increments("a"), 10);
  EXPECT_EQ(Increments("b"), 10);
  EXPECT_EQ(Increments("c"), 0);
}

TEST_F(MasterSlaveChannelTest, RetriesAfterAFailureStayOnTheMasters) {
  SetRoles("a", 1);
  // Two groups: g1's master a, and g2's master on a port nobody listens on.
  Endpoint dead{"127.0.0.1", DeadPort()};
  dead.group = "g2";
  dead.role = InstanceRole::kMaster;
  dead.epoch = 1;
  auto ch = MakeChannel({.balancer = "round_robin"});
  ch->UpdateEndpoints(
      {{Tagged("a", InstanceRole::kMaster, 1), dead, Tagged("b", InstanceRole::kSlave, 1),
        Tagged("c", InstanceRole::kSlave, 1)}});
  // Refused connects are retried (nothing was sent), on the other master, never on a slave.
  for (int i = 0; i < 6; ++i) testing::Increment(*ch, 1);
  EXPECT_EQ(Increments("a"), 6);
  EXPECT_EQ(servers_["b"]->server().calls(), 0u);
  EXPECT_EQ(servers_["c"]->server().calls(), 0u);
}

TEST_F(MasterSlaveChannelTest, ReadsGoToSlavesOnlyWithReadFromSlaves) {
  SetRoles("a", 1);
  EndpointSet set{{Tagged("a", InstanceRole::kMaster, 1), Tagged("b", InstanceRole::kSlave, 1),
                   Tagged("c", InstanceRole::kSlave, 1)}};
  static constexpr MethodTraits kRead{.name = "whoami", .idempotent = true, .read = true};
  auto who = [](Channel& ch) {
    return ch.Call<testing::EchoClient>(kRead, {}, [](testing::EchoClient& c) {
      std::string out;
      c.whoami(out);
      return out;
    });
  };

  auto masters_only = MakeChannel({.balancer = "round_robin"});
  masters_only->UpdateEndpoints(set);
  std::map<std::string, int> hits;
  for (int i = 0; i < 9; ++i) ++hits[who(*masters_only)];
  EXPECT_EQ(hits, (std::map<std::string, int>{{"a", 9}}));

  auto spread = MakeChannel({.balancer = "round_robin", .read_from_slaves = true});
  spread->UpdateEndpoints(set);
  hits.clear();
  for (int i = 0; i < 9; ++i) ++hits[who(*spread)];
  EXPECT_EQ(hits, (std::map<std::string, int>{{"a", 3}, {"b", 3}, {"c", 3}}));
  // Writes still go to the master only.
  for (int i = 0; i < 6; ++i) testing::Increment(*spread, 1);
  EXPECT_EQ(Increments("a"), 6);
}

TEST_F(MasterSlaveChannelTest, ReadFromSlavesWithoutMasterSlaveIsRejected) {
  auto ch = Channel::Create(std::make_unique<NullResolver>(), {.read_from_slaves = true});
  ASSERT_FALSE(ch.ok());
  EXPECT_EQ(ch.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(ch.status().message(), HasSubstr("master_slave"));
}

TEST_F(MasterSlaveChannelTest, FollowsARedirectToANewerMaster) {
  // The registry promoted a (epoch 2); the client's watch still says b (epoch 1).
  SetRoles("a", 2);
  auto ch = MakeChannel();
  ch->UpdateEndpoints({{Tagged("a", InstanceRole::kSlave, 1), Tagged("b", InstanceRole::kMaster, 1),
                        Tagged("c", InstanceRole::kSlave, 1)}});
  // increment is not idempotent, and one attempt is allowed: the refusal is neither an
  // attempt nor a failure, because the call never ran at b.
  EXPECT_EQ(testing::Increment(*ch, 5, {.max_attempts = 1}), 5);
  EXPECT_EQ(Increments("a"), 1);
  EXPECT_EQ(Increments("b"), 0);
  EXPECT_EQ(ch->redirects(), 1u);
  EXPECT_EQ(ch->budget_exhausted(), 0u);
  for (const EndpointReport& r : ch->Endpoints()) {
    EXPECT_EQ(r.failures, 0u) << r.address << ": a refusal is not an endpoint failure";
    EXPECT_FALSE(r.ejected);
  }
}

TEST_F(MasterSlaveChannelTest, RefusedNonIdempotentWriteIsRetriedEvenWithNoBudget) {
  SetRoles("a", 2);
  // A budget that allows no retry at all.
  auto ch = MakeChannel({.retry_budget = {.ratio = 0, .min_per_second = 0}});
  ch->UpdateEndpoints(
      {{Tagged("a", InstanceRole::kSlave, 1), Tagged("b", InstanceRole::kMaster, 1)}});
  for (int i = 0; i < 5; ++i) testing::Increment(*ch, 1);
  EXPECT_EQ(Increments("a"), 5);
  EXPECT_EQ(Increments("b"), 0);
  EXPECT_EQ(ch->redirects(), 5u);
}

TEST_F(MasterSlaveChannelTest, StaleRedirectIsNotFollowed) {
  // The watch already says a is master of epoch 3; a has not heard yet and still names b, the
  // master of epoch 2. Following that would write to a deposed master.
  roles_["a"]->Apply(SlaveReply(2, Address("b")));
  roles_["b"]->Apply(MasterReply(2, Address("b")));
  auto ch = MakeChannel();
  ch->UpdateEndpoints(
      {{Tagged("a", InstanceRole::kMaster, 3), Tagged("b", InstanceRole::kSlave, 3)}});
  try {
    testing::Increment(*ch, 1, {.timeout = milliseconds(60)});
    FAIL() << "a refuses until it learns it is master";
  } catch (const CallError& e) {
    EXPECT_EQ(e.code(), StatusCode::kDeadlineExceeded) << e.what();
    EXPECT_THAT(e.what(), HasSubstr("echo.increment"));
    EXPECT_THAT(e.what(), HasSubstr("waiting for a master"));
    EXPECT_THAT(e.what(), HasSubstr(Address("a") + " (UNAVAILABLE: fulcrum: not master; master=" +
                                    Address("b") + "; epoch=2)"));
  }
  EXPECT_EQ(Increments("b"), 0);
  EXPECT_EQ(ch->redirects(), 0u);
  EXPECT_GT(ch->master_waits(), 0u);

  // Once a hears (its next heartbeat reply), the same call goes through.
  roles_["a"]->Apply(MasterReply(3, Address("a")));
  EXPECT_EQ(testing::Increment(*ch, 1), 1);
  EXPECT_EQ(Increments("a"), 1);
  EXPECT_EQ(Increments("b"), 0);
}

TEST_F(MasterSlaveChannelTest, AsynchronousWritesFollowRedirectsAndWaitForAMaster) {
  // The same routing for Channel::CallAsync: a refused write follows the redirect (on the retry
  // lane), and writes made while no master is known wait for one.
  SetRoles("a", 2);
  auto ch = MakeChannel();
  ch->UpdateEndpoints({{Tagged("a", InstanceRole::kSlave, 1), Tagged("b", InstanceRole::kMaster, 1),
                        Tagged("c", InstanceRole::kSlave, 1)}});
  std::vector<Future<int64_t>> writes;
  for (int i = 0; i < 10; ++i)
    writes.push_back(testing::IncrementAsync(*ch, 1, {.max_attempts = 1}));
  for (auto& w : writes) EXPECT_GE(w.get(), 1);
  EXPECT_EQ(Increments("a"), 10);
  EXPECT_EQ(Increments("b"), 0);
  EXPECT_EQ(ch->redirects(), 10u);

  // A failover: nobody is master in the client's view, then c is.
  SetRoles("c", 3);
  ch->UpdateEndpoints(
      {{Tagged("a", InstanceRole::kSlave, 3), Tagged("b", InstanceRole::kSlave, 3)}});
  Future<int64_t> waiting = testing::IncrementAsync(*ch, 7, {.timeout = std::chrono::seconds(20)});
  for (int i = 0; i < 2000 && ch->master_waits() == 0; ++i)
    std::this_thread::sleep_for(milliseconds(1));
  ASSERT_GT(ch->master_waits(), 0u);
  EXPECT_FALSE(waiting.ready());
  ch->UpdateEndpoints({{Tagged("a", InstanceRole::kSlave, 3), Tagged("b", InstanceRole::kSlave, 3),
                        Tagged("c", InstanceRole::kMaster, 3)}});
  EXPECT_EQ(waiting.get(), 7);
  EXPECT_EQ(Increments("c"), 1);
}

TEST_F(MasterSlaveChannelTest, NoMasterWaitsForOneWithinTheDeadline) {
  SetRoles("c", 4);
  auto ch = MakeChannel();
  // A failover in progress: nobody is master in the client's view.
  ch->UpdateEndpoints(
      {{Tagged("a", InstanceRole::kSlave, 3), Tagged("b", InstanceRole::kSlave, 3)}});
  auto call = std::async(std::launch::async, [&] {
    return testing::Increment(*ch, 7, {.timeout = std::chrono::seconds(20)});
  });
  // Publish the new master only once the call is known to be waiting.
  for (int i = 0; i < 2000 && ch->master_waits() == 0; ++i)
    std::this_thread::sleep_for(milliseconds(1));
  ASSERT_GT(ch->master_waits(), 0u);
  ch->UpdateEndpoints({{Tagged("a", InstanceRole::kSlave, 4), Tagged("b", InstanceRole::kSlave, 4),
                        Tagged("c", InstanceRole::kMaster, 4)}});
  EXPECT_EQ(call.get(), 7);
  EXPECT_EQ(Increments("c"), 1);
}

TEST_F(MasterSlaveChannelTest, AnUnreachableMasterMakesWritesWaitForTheNextOne) {
  SetRoles("c", 2);
  // The master of epoch 1 was SIGKILLed: the client still lists it until the registry
  // promotes someone. A write (not idempotent: its connect is refused, so nothing was sent)
  // must neither fail after a few attempts nor land on a slave.
  Endpoint dead{"127.0.0.1", DeadPort()};
  dead.group = "g1";
  dead.role = InstanceRole::kMaster;
  dead.epoch = 1;
  auto ch = MakeChannel();
  ch->UpdateEndpoints(
      {{dead, Tagged("b", InstanceRole::kSlave, 1), Tagged("c", InstanceRole::kSlave, 1)}});
  auto call = std::async(std::launch::async, [&] {
    return testing::Increment(*ch, 5, {.timeout = std::chrono::seconds(20)});
  });
  for (int i = 0; i < 2000 && ch->master_waits() < 3; ++i)
    std::this_thread::sleep_for(milliseconds(1));
  ASSERT_GE(ch->master_waits(), 3u);  // it kept waiting, well past max_attempts (3)
  ch->UpdateEndpoints(
      {{Tagged("b", InstanceRole::kSlave, 2), Tagged("c", InstanceRole::kMaster, 2)}});
  EXPECT_EQ(call.get(), 5);
  EXPECT_EQ(Increments("c"), 1);
  EXPECT_EQ(Increments("b"), 0);
}

TEST_F(MasterSlaveChannelTest, AnUnreachableMasterFailsAtTheDeadlineNamingIt) {
  Endpoint dead{"127.0.0.1", DeadPort()};
  dead.group = "g1";
  dead.role = InstanceRole::kMaster;
  dead.epoch = 1;
  auto ch = MakeChannel();
  ch->UpdateEndpoints({{dead, Tagged("b", InstanceRole::kSlave, 1)}});
  try {
    testing::Increment(*ch, 1, {.timeout = milliseconds(50)});
    FAIL() << "the only master is unreachable";
  } catch (const CallError& e) {
    EXPECT_EQ(e.code(), StatusCode::kDeadlineExceeded);
    EXPECT_THAT(e.what(), HasSubstr("reachable master"));
    EXPECT_THAT(e.what(), HasSubstr(dead.Address()));
  }
  EXPECT_EQ(Increments("b"), 0);
}

TEST_F(MasterSlaveChannelTest, NoMasterFailsAtTheDeadlineWithAClearError) {
  auto ch = MakeChannel();
  ch->UpdateEndpoints(
      {{Tagged("a", InstanceRole::kSlave, 3), Tagged("b", InstanceRole::kSlave, 3)}});
  try {
    testing::Increment(*ch, 1, {.timeout = milliseconds(30)});
    FAIL() << "there is no master";
  } catch (const CallError& e) {
    EXPECT_EQ(e.code(), StatusCode::kUnavailable);
    EXPECT_THAT(e.what(), HasSubstr("echo.increment"));
    EXPECT_THAT(e.what(), HasSubstr("no master known"));
    EXPECT_THAT(e.what(), HasSubstr("no endpoint was tried"));
  }
  EXPECT_EQ(Increments("a") + Increments("b"), 0);
}

TEST_F(MasterSlaveChannelTest, ShutdownWakesACallWaitingForAMaster) {
  auto ch = MakeChannel();
  auto call = std::async(std::launch::async, [&] {
    try {
      testing::Increment(*ch, 1, {.timeout = std::chrono::seconds(30)});
      return std::string("succeeded");
    } catch (const CallError& e) {
      return std::string(e.what());
    }
  });
  for (int i = 0; i < 2000 && ch->master_waits() == 0; ++i)
    std::this_thread::sleep_for(milliseconds(1));
  ch->Shutdown();
  ASSERT_EQ(call.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_THAT(call.get(), HasSubstr("channel shut down while waiting for a master"));
}

TEST_F(MasterSlaveChannelTest, RedirectLoopsAreBounded) {
  // a and b each believe the other is master of the epoch the client knows.
  roles_["a"]->Apply(SlaveReply(1, Address("b")));
  roles_["b"]->Apply(SlaveReply(1, Address("a")));
  auto ch = MakeChannel();
  ch->UpdateEndpoints(
      {{Tagged("a", InstanceRole::kMaster, 1), Tagged("b", InstanceRole::kSlave, 1)}});
  try {
    testing::Increment(*ch, 1, {.timeout = std::chrono::seconds(20)});
    FAIL() << "nobody accepts the write";
  } catch (const CallError& e) {
    EXPECT_EQ(e.code(), StatusCode::kUnavailable);
    EXPECT_THAT(e.what(), HasSubstr("too many NotMaster redirects"));
  }
  EXPECT_EQ(ch->redirects(), 16u);
  EXPECT_EQ(Increments("a") + Increments("b"), 0);
}

TEST_F(MasterSlaveChannelTest, ARedirectOlderThanOneAlreadyFollowedWaitsForTheNewMaster) {
  // A switchover from a to b (epoch 2), caught between heartbeats: a has heard and names b,
  // b has not yet heard and still names a (epoch 1), and the client's watch still says a.
  // Bouncing between the two would use up the redirects in a millisecond and fail the call;
  // b's answer is older than what a said, so the call waits for b instead.
  roles_["a"]->Apply(SlaveReply(2, Address("b")));
  roles_["b"]->Apply(SlaveReply(1, Address("a")));
  auto ch = MakeChannel();
  ch->UpdateEndpoints(
      {{Tagged("a", InstanceRole::kMaster, 1), Tagged("b", InstanceRole::kSlave, 1)}});
  auto call = std::async(std::launch::async, [&] {
    return testing::Increment(*ch, 3, {.timeout = std::chrono::seconds(20)});
  });
  for (int i = 0; i < 2000 && ch->master_waits() < 3; ++i)
    std::this_thread::sleep_for(milliseconds(1));
  ASSERT_GE(ch->master_waits(), 3u);
  EXPECT_EQ(ch->redirects(), 1u) << "followed a to b once, not back to a";
  roles_["b"]->Apply(MasterReply(2, Address("b")));  // b's next heartbeat reply
  EXPECT_EQ(call.get(), 3);
  EXPECT_EQ(Increments("b"), 1);
  EXPECT_EQ(Increments("a"), 0);
  EXPECT_EQ(ch->redirects(), 1u);
}

TEST_F(MasterSlaveChannelTest, MasterThatStoppedWritesMakesTheCallWait) {
  // A draining master refuses and names itself: wait for the next master, do not loop on it.
  SetRoles("a", 1);
  roles_["a"]->StopWrites();
  auto ch = MakeChannel();
  ch->UpdateEndpoints(
      {{Tagged("a", InstanceRole::kMaster, 1), Tagged("b", InstanceRole::kSlave, 1)}});
  EXPECT_THROW(testing::Increment(*ch, 1, {.timeout = milliseconds(40)}), CallError);
  EXPECT_EQ(ch->redirects(), 0u);
  EXPECT_EQ(Increments("a"), 0);
  // b is promoted (epoch 2) and the watch says so: the next call goes there.
  roles_["b"]->Apply(MasterReply(2, Address("b")));
  ch->UpdateEndpoints(
      {{Tagged("a", InstanceRole::kSlave, 2), Tagged("b", InstanceRole::kMaster, 2)}});
  EXPECT_EQ(testing::Increment(*ch, 1), 1);
  EXPECT_EQ(Increments("b"), 1);
}

TEST_F(MasterSlaveChannelTest, RefusedOnewayWriteIsDroppedAndTheConnectionStaysUsable) {
  SetRoles("a", 1);
  auto ch = MakeChannel({.pool = {.max_connections = 1}});
  // Only the slave is known as master: the oneway lands there, is refused without an answer.
  ch->UpdateEndpoints({{Tagged("b", InstanceRole::kMaster, 1)}});
  testing::Notify(*ch, "dropped");
  // The same pooled connection answers the next call correctly (the refusal read the whole
  // request and wrote nothing).
  static constexpr MethodTraits kRead{.name = "whoami", .idempotent = true, .read = true};
  std::string who = ch->Call<testing::EchoClient>(kRead, {}, [](testing::EchoClient& c) {
    std::string out;
    c.whoami(out);
    return out;
  });
  EXPECT_EQ(who, "b");
  EXPECT_EQ(servers_["b"]->handler().notifications(), 0);
}

}  // namespace
}  // namespace fulcrum
