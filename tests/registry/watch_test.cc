#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "server/store.h"
#include "testing/fake_clock.h"

namespace fulcrum::registry {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

thrift::Instance MakeInstance(const std::string& service, int port) {
  thrift::Instance i;
  i.service_name = service;
  i.host = "127.0.0.1";
  i.port = port;
  return i;
}

class WatchTest : public ::testing::Test {
 protected:
  testing::FakeClock clock_;
  Store store_{clock_, StoreOptions{}};
};

TEST_F(WatchTest, ReturnsAtOnceWhenTheCallerIsBehind) {
  ASSERT_TRUE(store_.Register(MakeInstance("calc", 9001)).ok());
  // A long max wait that the test would hit (and time out on) if the watch parked.
  thrift::WatchResult r = store_.Watch("calc", /*known_version=*/-1, seconds(60));
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(r.snapshot.instances.size(), 1u);
  EXPECT_EQ(r.snapshot.version, store_.Lookup("calc").version);
}

TEST_F(WatchTest, UnknownServiceHasVersionZero) {
  thrift::WatchResult r = store_.Watch("nothing", -1, seconds(60));
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(r.snapshot.version, 0);
  EXPECT_TRUE(r.snapshot.instances.empty());
}

TEST_F(WatchTest, ReturnsUnchangedAtMaxWait) {
  ASSERT_TRUE(store_.Register(MakeInstance("calc", 9001)).ok());
  const int64_t v = store_.Lookup("calc").version;
  thrift::WatchResult r = store_.Watch("calc", v, milliseconds(20));
  EXPECT_FALSE(r.changed);
  EXPECT_EQ(r.snapshot.version, v);
  EXPECT_TRUE(r.snapshot.instances.empty());  // the caller has the list already
  EXPECT_EQ(store_.watchers(), 0);
}

TEST_F(WatchTest, WakesAsSoonAsTheServiceChanges) {
  ASSERT_TRUE(store_.Register(MakeInstance("calc", 9001)).ok());
  const int64_t v = store_.Lookup("calc").version;
  thrift::WatchResult r;
  std::thread watcher([&] { r = store_.Watch("calc", v, seconds(60)); });
  while (store_.watchers() == 0) std::this_thread::yield();
  ASSERT_TRUE(store_.Register(MakeInstance("calc", 9002)).ok());
  watcher.join();  // with a 60 s max wait, returning at all means the change woke it
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(r.snapshot.instances.size(), 2u);
}

TEST_F(WatchTest, FailureDetectionWakesWatchers) {
  ASSERT_TRUE(store_.Register(MakeInstance("calc", 9001)).ok());
  const int64_t v = store_.Lookup("calc").version;
  thrift::WatchResult r;
  std::thread watcher([&] { r = store_.Watch("calc", v, seconds(60)); });
  while (store_.watchers() == 0) std::this_thread::yield();
  clock_.Advance(milliseconds(1501));
  EXPECT_EQ(store_.Sweep(), 1);
  watcher.join();
  ASSERT_TRUE(r.changed);
  EXPECT_EQ(r.snapshot.instances.at(0).health, thrift::Health::DOWN);
}

TEST_F(WatchTest, ShutdownReleasesParkedWatchers) {
  std::thread watcher([&] { store_.Watch("calc", 0, seconds(60)); });
  while (store_.watchers() == 0) std::this_thread::yield();
  store_.Shutdown();
  watcher.join();
  EXPECT_EQ(store_.watchers(), 0);
}

// 1,000 parked watchers over 10 services: a change wakes exactly its own service's watchers
// and leaves the others parked.
TEST_F(WatchTest, AThousandWatchersWakeOnlyForTheirService) {
  constexpr int kServices = 10;
  constexpr int kPerService = 100;
  std::vector<int64_t> versions;
  for (int s = 0; s < kServices; ++s) {
    ASSERT_TRUE(store_.Register(MakeInstance("svc" + std::to_string(s), 9000)).ok());
    versions.push_back(store_.Lookup("svc" + std::to_string(s)).version);
  }
  std::atomic<int> woken_changed{0};
  std::atomic<int> woken_unchanged{0};
  std::vector<std::thread> threads;
  for (int s = 0; s < kServices; ++s) {
    for (int i = 0; i < kPerService; ++i) {
      threads.emplace_back([&, s] {
        thrift::WatchResult r = store_.Watch("svc" + std::to_string(s), versions[s], seconds(60));
        (r.changed ? woken_changed : woken_unchanged).fetch_add(1);
      });
    }
  }
  while (store_.watchers() < kServices * kPerService) std::this_thread::yield();
  ASSERT_TRUE(store_.Register(MakeInstance("svc3", 9001)).ok());
  while (woken_changed.load() < kPerService) std::this_thread::yield();
  EXPECT_EQ(store_.watchers(), (kServices - 1) * kPerService);
  store_.Shutdown();
  for (auto& t : threads) t.join();
  EXPECT_EQ(woken_changed.load(), kPerService);
  EXPECT_EQ(woken_unchanged.load(), (kServices - 1) * kPerService);
}

}  // namespace
}  // namespace fulcrum::registry
