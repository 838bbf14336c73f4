// The kvstore's log and state machine on their own.
#include "replication_log.h"

#include <gtest/gtest.h>

#include "kv_state.h"

namespace kvstore {
namespace {

Entry Put(int64_t position, int64_t epoch, std::string key, std::string value = "v") {
  return Entry{position, epoch, OpType::kPut, std::move(key), std::move(value)};
}

TEST(ReplicationLogTest, AppendsOnlyTheNextPositionWithAnEpochThatDoesNotGoBack) {
  ReplicationLog log;
  EXPECT_EQ(log.EpochAt(0), 0);
  EXPECT_FALSE(log.Append(Put(2, 1, "a")));  // a gap
  EXPECT_TRUE(log.Append(Put(1, 2, "a")));
  EXPECT_FALSE(log.Append(Put(2, 1, "b")));  // an older epoch
  EXPECT_TRUE(log.Append(Put(2, 2, "b")));
  EXPECT_TRUE(log.Append(Put(3, 5, "c")));
  EXPECT_EQ(log.end(), 3);
  EXPECT_EQ(log.last_epoch(), 5);
  EXPECT_EQ(log.EpochAt(1), 2);
  EXPECT_EQ(log.EpochAt(3), 5);
  EXPECT_EQ(log.EpochAt(4), std::nullopt);
  EXPECT_EQ(log.EpochAt(-1), std::nullopt);
}

TEST(ReplicationLogTest, ReadIsBoundedAndCompactionKeepsTheBase) {
  ReplicationLog log;
  for (int64_t p = 1; p <= 5; ++p) ASSERT_TRUE(log.Append(Put(p, p < 4 ? 1 : 2, "k")));
  EXPECT_EQ(log.Read(2, 2).size(), 2u);
  EXPECT_EQ(log.Read(2, 2)[0].position, 2);
  EXPECT_EQ(log.Read(5, 10).size(), 1u);
  EXPECT_TRUE(log.Read(6, 10).empty());
  log.Compact(2);
  EXPECT_EQ(log.base_position(), 3);
  EXPECT_EQ(log.base_epoch(), 1);
  EXPECT_EQ(log.EpochAt(3), 1);             // the base can still be checked
  EXPECT_EQ(log.EpochAt(2), std::nullopt);  // compacted away
  EXPECT_TRUE(log.Read(3, 10).empty());     // at or before the base: not readable
  EXPECT_EQ(log.Read(4, 10).size(), 2u);
  log.Reset(10, 3);
  EXPECT_EQ(log.end(), 10);
  EXPECT_EQ(log.last_epoch(), 3);
  EXPECT_FALSE(log.Append(Put(11, 2, "k")));
  EXPECT_TRUE(log.Append(Put(11, 3, "k")));
}

TEST(KvStateTest, AppliesInOrderAndForgetsOnlyTombstonesNotRewritten) {
  KvState state;
  state.Apply(Put(1, 1, "a", "1"));
  state.Apply(Put(2, 1, "b", "2"));
  state.Apply(Entry{3, 1, OpType::kRemove, "a", ""});
  state.Apply(Entry{4, 1, OpType::kRemove, "b", ""});
  state.Apply(Put(5, 1, "b", "again"));
  EXPECT_EQ(state.live_keys(), 1u);
  ASSERT_NE(state.Find("a"), nullptr);
  EXPECT_FALSE(state.Find("a")->present);
  EXPECT_EQ(state.Find("a")->position, 3);
  state.ForgetTombstonesUpTo(5);
  EXPECT_EQ(state.Find("a"), nullptr);
  ASSERT_NE(state.Find("b"), nullptr);  // written again after its removal
  EXPECT_EQ(state.Find("b")->value, "again");
  EXPECT_EQ(state.Snapshot(), (KvPairs{{"b", "again"}}));
  EXPECT_EQ(SortedSnapshot({{"y", "2"}, {"b", "1"}, {"x", "3"}}),
            (std::map<std::string, std::string>{{"b", "1"}, {"x", "3"}, {"y", "2"}}));
  state.Load({{"x", "1"}, {"y", "2"}}, 42);
  EXPECT_EQ(state.live_keys(), 2u);
  EXPECT_EQ(state.Find("b"), nullptr);
  EXPECT_EQ(state.Find("x")->position, 42);
}

}  // namespace
}  // namespace kvstore
