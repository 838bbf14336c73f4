#include "fulcrum/snapshot.h"

#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace fulcrum {
namespace {

TEST(SnapshotTest, ManySnapshotsInOneProcessStayOffTheLock) {
  // A service calling several downstream services holds several channels, each with its own
  // snapshots, and reads them in turn on every thread.
  for (const int n : {1, 4, 16, 64, 256}) {
    std::vector<std::unique_ptr<Snapshot<int>>> snapshots;
    for (int i = 0; i < n; ++i) {
      snapshots.push_back(std::make_unique<Snapshot<int>>(std::make_shared<const int>(i)));
    }
    for (int round = 0; round < 20; ++round) {
      for (int i = 0; i < n; ++i) ASSERT_EQ(*snapshots[i]->Read(), i);
    }
    for (int i = 0; i < n; ++i) {
      EXPECT_EQ(snapshots[i]->slow_reads(), 1u)
          << "only the first read locks; " << n << " snapshots";
    }
  }
}

TEST(SnapshotTest, AReadAfterAPublishSeesTheNewValueOnEveryThread) {
  Snapshot<int> snapshot(std::make_shared<const int>(1));
  std::vector<std::thread> threads;
  std::atomic<int> seen_one{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] { seen_one += *snapshot.Read() == 1 ? 1 : 0; });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(seen_one.load(), 4);
  EXPECT_EQ(*snapshot.Read(), 1);
  snapshot.Publish(std::make_shared<const int>(2));
  EXPECT_EQ(*snapshot.Read(), 2);
  threads.clear();
  std::atomic<int> seen_two{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] { seen_two += *snapshot.Read() == 2 ? 1 : 0; });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(seen_two.load(), 4);
}

TEST(SnapshotTest, DestroyingASnapshotReleasesWhatThreadsCached) {
  // A destroyed channel's pickers (and through them its connection pools) must not live on in
  // the caches of the threads that called it.
  auto value = std::make_shared<const int>(7);
  std::weak_ptr<const int> watch = value;
  auto snapshot = std::make_unique<Snapshot<int>>(std::move(value));
  EXPECT_EQ(*snapshot->Read(), 7);
  std::thread other([&] { EXPECT_EQ(*snapshot->Read(), 7); });
  other.join();
  snapshot.reset();
  EXPECT_TRUE(watch.expired());
}

TEST(SnapshotTest, AnOldValueIsReleasedOnceEveryThreadHasReadAgain) {
  Snapshot<int> snapshot(std::make_shared<const int>(1));
  std::weak_ptr<const int> first = snapshot.Read();
  snapshot.Publish(std::make_shared<const int>(2));
  EXPECT_FALSE(first.expired()) << "this thread's slot still holds it";
  EXPECT_EQ(*snapshot.Read(), 2);
  EXPECT_TRUE(first.expired());
}

}  // namespace
}  // namespace fulcrum
