#include "fulcrum/retry.h"

#include <gtest/gtest.h>

#include "testing/fake_clock.h"

namespace fulcrum {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(RetryBudgetTest, CapsRetriesAtTheRatioOfCalls) {
  testing::FakeClock clock;
  RetryBudget budget({.ratio = 0.2, .min_per_second = 0}, clock);
  int allowed = 0;
  for (int i = 0; i < 1000; ++i) {
    budget.OnCall();
    // Every call fails and asks for a retry: an outage.
    if (budget.TryWithdraw()) ++allowed;
  }
  EXPECT_EQ(allowed, 200);  // 20% of 1000 calls, exactly: deposits are integral
}

TEST(RetryBudgetTest, MinPerSecondRefillsWithTimeButDoesNotAccumulate) {
  testing::FakeClock clock;
  RetryBudget budget({.ratio = 0.0, .min_per_second = 10}, clock);
  int allowed = 0;
  while (budget.TryWithdraw()) ++allowed;
  EXPECT_EQ(allowed, 10);  // the initial second's worth
  clock.Advance(milliseconds(500));
  allowed = 0;
  while (budget.TryWithdraw()) ++allowed;
  EXPECT_EQ(allowed, 5);
  clock.Advance(seconds(100));  // a long quiet stretch banks at most one second's worth
  allowed = 0;
  while (budget.TryWithdraw()) ++allowed;
  EXPECT_EQ(allowed, 10);
}

TEST(RetryBudgetTest, MinPerSecondHoldsAfterDaysWithoutARetry) {
  // A healthy client never withdraws, so the time since the last refill grows without bound;
  // the floor must still be there when the first failure comes, days later.
  for (const int per_second : {10, 1000}) {
    testing::FakeClock clock;
    RetryBudget budget({.ratio = 0.0, .min_per_second = per_second}, clock);
    int allowed = 0;
    while (budget.TryWithdraw()) ++allowed;
    ASSERT_EQ(allowed, per_second);
    for (const auto quiet : {std::chrono::hours(24 * 11), std::chrono::hours(24 * 400)}) {
      clock.Advance(quiet);
      allowed = 0;
      while (budget.TryWithdraw()) ++allowed;
      EXPECT_EQ(allowed, per_second) << per_second << "/s after " << quiet.count() << " h";
    }
  }
}

TEST(RetryBudgetTest, BankedRetriesAreBounded) {
  testing::FakeClock clock;
  RetryBudget budget({.ratio = 0.5, .min_per_second = 0}, clock);
  for (int i = 0; i < 100000; ++i) budget.OnCall();
  int allowed = 0;
  while (budget.TryWithdraw()) ++allowed;
  EXPECT_EQ(allowed, 100);  // a long healthy stretch does not buy an unbounded retry storm
}

TEST(BackoffTest, FullJitterWithinExponentialCap) {
  SeededRandom rng(42);
  BackoffOptions opts{.initial = milliseconds(2), .max = milliseconds(50), .multiplier = 2.0};
  for (int retry = 1; retry <= 10; ++retry) {
    const Duration cap = std::min<Duration>(milliseconds(50), milliseconds(2) * (1 << (retry - 1)));
    Duration max_seen{0};
    for (int i = 0; i < 1000; ++i) {
      const Duration d = Backoff(opts, retry, rng);
      ASSERT_GE(d.count(), 0);
      ASSERT_LE(d, cap);
      max_seen = std::max(max_seen, d);
    }
    EXPECT_GT(max_seen, cap * 9 / 10) << "retry " << retry;  // jitter spans the range
  }
}

}  // namespace
}  // namespace fulcrum
