// Future and Promise: values, errors, continuations, cancellation; no server involved.
#include "fulcrum/future.h"

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "fulcrum/channel.h"

namespace fulcrum {
namespace {

TEST(FutureTest, GetWaitsForTheValueSetOnAnotherThread) {
  Promise<std::string> p;
  Future<std::string> f = p.future();
  EXPECT_FALSE(f.ready());
  std::thread t([&] { p.SetValue("done"); });
  EXPECT_EQ(f.get(), "done");
  t.join();
  EXPECT_FALSE(p.SetValue("again"));  // the first completion wins
}

TEST(FutureTest, TheValueIsTakenOnce) {
  Promise<std::string> p;
  Future<std::string> f = p.future();
  Future<size_t> size = f.then([](std::string s) { return s.size(); });
  p.SetValue("four");
  EXPECT_EQ(size.get(), 4u);
  EXPECT_THROW(f.get(), std::logic_error);  // the continuation took it
}

TEST(FutureTest, GetRethrowsTheError) {
  Promise<int> p;
  p.SetError(std::make_exception_ptr(std::runtime_error("boom")));
  Future<int> f = p.future();
  EXPECT_TRUE(f.ready());
  EXPECT_THROW(f.get(), std::runtime_error);
}

TEST(FutureTest, ThenChainsValuesAndPassesErrorsThrough) {
  Promise<int> p;
  std::atomic<int> calls{0};
  Future<std::string> s = p.future()
                              .then([&](int v) {
                                ++calls;
                                return v * 2;
                              })
                              .then([&](int v) {
                                ++calls;
                                return std::to_string(v);
                              });
  p.SetValue(21);
  EXPECT_EQ(s.get(), "42");
  EXPECT_EQ(calls.load(), 2);

  Promise<int> failing;
  Future<void> skipped = failing.future().then([&](int) { ++calls; });
  failing.SetError(std::make_exception_ptr(std::runtime_error("no")));
  EXPECT_THROW(skipped.get(), std::runtime_error);
  EXPECT_EQ(calls.load(), 2);
}

TEST(FutureTest, ThenOnAReadyFutureRunsAtOnce) {
  Promise<void> p;
  p.SetValue();
  bool ran = false;
  Future<int> f = p.future().then([&] {
    ran = true;
    return 7;
  });
  EXPECT_TRUE(ran);
  EXPECT_EQ(f.get(), 7);
}

TEST(FutureTest, CancelFailsTheFutureAndTellsTheWorkOnce) {
  Promise<int> p;
  int cancels = 0;
  p.OnCancel([&] { ++cancels; });
  Future<int> f = p.future();
  f.Cancel();
  f.Cancel();
  EXPECT_EQ(cancels, 1);
  try {
    f.get();
    FAIL() << "expected a CallError";
  } catch (const CallError& e) {
    EXPECT_EQ(e.code(), StatusCode::kCancelled);
  }
  EXPECT_FALSE(p.SetValue(1));  // the late result is dropped
}

TEST(FutureTest, CancelAfterCompletionChangesNothing) {
  Promise<int> p;
  int cancels = 0;
  p.OnCancel([&] { ++cancels; });
  p.SetValue(3);
  Future<int> f = p.future();
  f.Cancel();
  EXPECT_EQ(cancels, 0);
  EXPECT_EQ(f.get(), 3);
}

TEST(FutureTest, WaitForTimesOutOnAFutureNeverCompleted) {
  Promise<int> p;
  EXPECT_FALSE(p.future().wait_for(std::chrono::milliseconds(10)));
}

TEST(FutureTest, WhenAllJoinsEveryValueInOrder) {
  std::vector<Promise<int>> promises(3);
  std::vector<Future<int>> futures;
  for (auto& p : promises) futures.push_back(p.future());
  Future<std::vector<int>> all = WhenAll(std::move(futures));
  promises[2].SetValue(3);
  promises[0].SetValue(1);
  EXPECT_FALSE(all.ready());
  promises[1].SetValue(2);
  EXPECT_EQ(all.get(), (std::vector<int>{1, 2, 3}));
  EXPECT_TRUE(WhenAll(std::vector<Future<int>>{}).get().empty());
}

TEST(FutureTest, WhenAllFailsWithTheFirstFailureOnceAllAreReady) {
  std::vector<Promise<int>> promises(3);
  std::vector<Future<int>> futures;
  for (auto& p : promises) futures.push_back(p.future());
  Future<std::vector<int>> all = WhenAll(std::move(futures));
  promises[1].SetError(std::make_exception_ptr(std::runtime_error("shard 1")));
  promises[2].SetError(std::make_exception_ptr(std::logic_error("shard 2")));
  EXPECT_FALSE(all.ready());  // shard 0 still running
  promises[0].SetValue(0);
  EXPECT_THROW(all.get(), std::runtime_error);
}

TEST(FutureTest, CancellingWhenAllCancelsWhatIsStillRunning) {
  std::vector<Promise<int>> promises(2);
  int cancels = 0;
  for (auto& p : promises) p.OnCancel([&] { ++cancels; });
  promises[0].SetValue(1);
  std::vector<Future<int>> futures;
  for (auto& p : promises) futures.push_back(p.future());
  Future<std::vector<int>> all = WhenAll(std::move(futures));
  all.Cancel();
  EXPECT_EQ(cancels, 1);  // the one still running
  EXPECT_THROW(all.get(), CallError);
}

}  // namespace
}  // namespace fulcrum
