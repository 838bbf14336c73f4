// The master election's rule and wire formats (etcd_election.h, etcd_codec.h), without an etcd.
#include "etcd_election.h"

#include <gtest/gtest.h>

#include "etcd_codec.h"
#include "etcd_resolver.h"

namespace fulcrum::etcd {
namespace {

KeyValue Candidate(const std::string& address, int64_t position, int32_t priority = 0) {
  return {.key = CandidatesPrefix("/f", "kv", "g1") + address,
          .value = EncodeCandidate({.position = position, .priority = priority, .incarnation = 7})};
}

KeyValue Commit(int64_t position) {
  return {.key = CandidatesPrefix("/f", "kv", "g1") + kCommitKeyName,
          .value = EncodeCandidate({.position = position})};
}

KeyValue Leader(const std::string& address, uint64_t incarnation, int64_t create_revision) {
  return {.key = LeaderKey("/f", "kv", "g1"),
          .value = EncodeLeader({.address = address, .incarnation = incarnation}),
          .create_revision = create_revision,
          .lease = 99};
}

TEST(ElectionKeysTest, LayoutAndRoundTrips) {
  EXPECT_EQ(LeaderKey("/f", "kv", "g1"), "/f/services/kv/~leader/g1");
  EXPECT_EQ(LeaderKeyGroup("/f/services/kv/~leader/g1"), "g1");
  EXPECT_EQ(LeaderKeyGroup("/f/services/kv/127.0.0.1:9"), "");
  EXPECT_EQ(LeaderKeyGroup("/f/services/kv/~leader/g1/x"), "");
  EXPECT_EQ(CandidatesPrefix("/f", "kv", "g1"), "/f/groups/kv/g1/");
  auto leader = DecodeLeader(EncodeLeader({.address = "h:1", .incarnation = 1ull << 63}));
  ASSERT_TRUE(leader.ok()) << leader.status();
  EXPECT_EQ(leader->address, "h:1");
  EXPECT_EQ(leader->incarnation, 1ull << 63);
  auto c = DecodeCandidate(EncodeCandidate({.position = -5, .priority = -2, .incarnation = 3}));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->position, -5);
  EXPECT_EQ(c->priority, -2);
  EXPECT_EQ(c->incarnation, 3u);
  EXPECT_FALSE(DecodeLeader(R"({"address":"nocolon"})").ok());
  EXPECT_FALSE(DecodeLeader("[]").ok());
  EXPECT_FALSE(DecodeCandidate(R"({"priority":1})").ok());
  EXPECT_FALSE(DecodeCandidate(R"({"position":1,"priority":4294967296})").ok());
}

TEST(ElectionTest, OnlyTheMostUpToDateLiveCandidateCampaigns) {
  GroupState g = ReadGroupState(
      {Candidate("a:1", 10), Candidate("b:1", 12), Candidate("c:1", 11), Commit(9)}, {});
  EXPECT_FALSE(g.leader.has_value());
  EXPECT_EQ(g.commit, 9);
  EXPECT_EQ(g.candidates.size(), 3u);
  EXPECT_TRUE(ShouldCampaign(g, "b:1"));
  EXPECT_FALSE(ShouldCampaign(g, "a:1"));
  EXPECT_FALSE(ShouldCampaign(g, "c:1"));
  EXPECT_FALSE(ShouldCampaign(g, "d:1"));  // not listed: its lease (and key) is gone
}

TEST(ElectionTest, TiesGoToPriorityThenTheLowerAddress) {
  GroupState g = ReadGroupState(
      {Candidate("a:1", 10, 0), Candidate("b:1", 10, 5), Candidate("c:1", 10, 5)}, {});
  EXPECT_TRUE(ShouldCampaign(g, "b:1"));
  EXPECT_FALSE(ShouldCampaign(g, "c:1"));
  EXPECT_FALSE(ShouldCampaign(g, "a:1"));
}

TEST(ElectionTest, NobodyBelowTheCommitPositionCampaigns) {
  // Promoting either would lose writes the last master acknowledged.
  GroupState g = ReadGroupState({Candidate("a:1", 10), Candidate("b:1", 11), Commit(12)}, {});
  EXPECT_FALSE(ShouldCampaign(g, "a:1"));
  EXPECT_FALSE(ShouldCampaign(g, "b:1"));
}

TEST(ElectionTest, TheTermKeysRevisionIsKeptForTheCampaignsComparison) {
  KeyValue term = Commit(0);
  term.key = CandidatesPrefix("/f", "kv", "g1") + kTermKeyName;
  term.value = EncodeCandidate({.position = 40});
  term.mod_revision = 41;
  GroupState g = ReadGroupState({Candidate("a:1", 10), term}, {});
  EXPECT_EQ(g.term_revision, 41);
  EXPECT_EQ(g.candidates.size(), 1u);  // the term key is no candidate
  EXPECT_TRUE(ShouldCampaign(g, "a:1"));
}

KeyValue Switchover(const std::string& target) {
  return {.key = CandidatesPrefix("/f", "kv", "g1") + kSwitchoverKeyName,
          .value = EncodeLeader({.address = target})};
}

TEST(ElectionTest, APlannedSwitchoverStopsTheMastersWritesAndHandsOverOnceTheTargetCaughtUp) {
  // The master (b) is asked to hand over to a.
  GroupState g = ReadGroupState({Candidate("a:1", 10), Candidate("b:1", 12), Switchover("a:1")},
                                {Leader("b:1", 2, 30)});
  EXPECT_EQ(g.switchover_target, "a:1");
  EXPECT_TRUE(SwitchoverAsked(g, "b:1"));
  EXPECT_FALSE(SwitchoverAsked(g, "a:1"));  // the target is not asked to stop anything
  EXPECT_FALSE(MayResign(g, "b:1", 12));    // a has not caught up with b's final position
  g.candidates["a:1"].position = 12;
  EXPECT_TRUE(MayResign(g, "b:1", 12));
  // A target that is not a live candidate asks nothing (the master keeps writing).
  GroupState gone =
      ReadGroupState({Candidate("b:1", 12), Switchover("z:9")}, {Leader("b:1", 2, 30)});
  EXPECT_FALSE(SwitchoverAsked(gone, "b:1"));
}

TEST(ElectionTest, DuringASwitchoverOnlyItsTargetCampaignsAndOnlyIfNobodyIsAhead) {
  // b resigned at 12; a has 12 too, and c (priority and address ahead otherwise) must wait.
  GroupState g = ReadGroupState(
      {Candidate("a:1", 12), Candidate("b:1", 12), Candidate("0:1", 12, 9), Switchover("a:1")}, {});
  EXPECT_TRUE(ShouldCampaign(g, "a:1"));
  EXPECT_FALSE(ShouldCampaign(g, "b:1"));
  EXPECT_FALSE(ShouldCampaign(g, "0:1"));
  // Someone is further ahead than the target (the master died mid-switchover): nobody runs
  // until the switchover's key expires and the usual rule applies.
  g.candidates["b:1"].position = 13;
  EXPECT_FALSE(ShouldCampaign(g, "a:1"));
  EXPECT_FALSE(ShouldCampaign(g, "b:1"));
}

TEST(ElectionTest, NobodyCampaignsWhileThereIsALeader) {
  GroupState g = ReadGroupState({Candidate("a:1", 10)}, {Leader("b:1", 4, 1234)});
  ASSERT_TRUE(g.leader.has_value());
  EXPECT_EQ(g.leader->address, "b:1");
  EXPECT_EQ(g.epoch, 1234);
  EXPECT_EQ(g.leader_lease, 99);
  EXPECT_FALSE(ShouldCampaign(g, "a:1"));
}

TEST(ElectionTest, GarbageValuesAreSkipped) {
  KeyValue bad_candidate = Candidate("x:1", 100);
  bad_candidate.value = "not json";
  KeyValue bad_leader = Leader("b:1", 1, 5);
  bad_leader.value = "{}";
  GroupState g = ReadGroupState({Candidate("a:1", 1), bad_candidate}, {bad_leader});
  EXPECT_FALSE(g.leader.has_value());
  EXPECT_EQ(g.candidates.count("x:1"), 0u);
  EXPECT_TRUE(ShouldCampaign(g, "a:1"));
}

TEST(ElectionTest, TxnAnswerYieldsItsRanges) {
  const std::string answer =
      R"({"header":{"revision":"77"},"succeeded":true,"responses":[
    {"response_put":{"header":{"revision":"77"}}},
    {"response_range":{"header":{"revision":"77"},"kvs":[{"key":")" +
      Base64Encode("/f/groups/kv/g1/a:1") + R"(","value":")" + Base64Encode(R"({"position":3})") +
      R"(","create_revision":"70","mod_revision":"76","lease":"12"}],"count":"1"}},
    {"response_range":{"header":{"revision":"77"}}}]})";
  auto r = ParseTxnResponse(answer);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->succeeded);
  EXPECT_EQ(r->revision, 77);
  ASSERT_EQ(r->ranges.size(), 2u);
  ASSERT_EQ(r->ranges[0].size(), 1u);
  EXPECT_EQ(r->ranges[0][0].create_revision, 70);
  EXPECT_EQ(r->ranges[0][0].lease, 12);
  EXPECT_TRUE(r->ranges[1].empty());
  auto failed = ParseTxnResponse(R"({"header":{"revision":"8"}})");
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_FALSE(failed->succeeded);
  EXPECT_FALSE(ParseTxnResponse(R"({"header":{"revision":"8"},"responses":{}})").ok());
  EXPECT_FALSE(ParseTxnResponse("garbage").ok());
}

TEST(ElectionTest, TheResolverNamesTheMasterByAddressAndIncarnation) {
  InstanceTable table;
  ServiceInstance a{.service = "kv", .host = "h", .port = 1, .group = "g1"};
  ServiceInstance b{.service = "kv", .host = "h", .port = 2, .group = "g1"};
  ServiceInstance plain{.service = "kv", .host = "h", .port = 3};
  ASSERT_TRUE(table.Put("/f/services/kv/h:1", EncodeInstance(a, 11)));
  ASSERT_TRUE(table.Put("/f/services/kv/h:2", EncodeInstance(b, 22)));
  ASSERT_TRUE(table.Put("/f/services/kv/h:3", EncodeInstance(plain, 33)));
  // No leader yet: slaves at epoch 0.
  EndpointSet set = table.Snapshot(1);
  ASSERT_EQ(set.endpoints.size(), 3u);
  EXPECT_EQ(set.endpoints[0].role, InstanceRole::kSlave);
  EXPECT_EQ(set.endpoints[0].group, "g1");
  EXPECT_EQ(set.endpoints[2].role, InstanceRole::kNone);
  ASSERT_TRUE(table.Put("/f/services/kv/~leader/g1", EncodeLeader({"h:2", 22}), 500));
  set = table.Snapshot(2);
  EXPECT_EQ(set.endpoints.size(), 3u);  // the leader key is not an instance
  EXPECT_EQ(set.endpoints[0].role, InstanceRole::kSlave);
  EXPECT_EQ(set.endpoints[1].role, InstanceRole::kMaster);
  EXPECT_EQ(set.endpoints[0].epoch, 500);
  EXPECT_EQ(set.endpoints[1].epoch, 500);
  // A new process at the master's address (another incarnation) is not the master.
  ASSERT_TRUE(table.Put("/f/services/kv/h:2", EncodeInstance(b, 23)));
  EXPECT_EQ(table.Snapshot(3).endpoints[1].role, InstanceRole::kSlave);
  table.Delete("/f/services/kv/~leader/g1");
  EXPECT_EQ(table.Snapshot(4).endpoints[1].epoch, 0);
  EXPECT_FALSE(table.Put("/f/services/kv/~leader/g1", "garbage", 600));
}

}  // namespace
}  // namespace fulcrum::etcd
