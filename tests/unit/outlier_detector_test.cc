#include "fulcrum/outlier_detector.h"

#include <gtest/gtest.h>

#include "testing/fake_clock.h"

namespace fulcrum {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

BackendList MakeBackends(int n) {
  BackendList out;
  for (int i = 0; i < n; ++i) {
    auto b = std::make_shared<Backend>();
    b->endpoint = Endpoint{"127.0.0.1", static_cast<uint16_t>(1000 + i)};
    b->address = b->endpoint.Address();
    b->stats = std::make_shared<EndpointStats>();
    out.push_back(b);
  }
  return out;
}

void Fail(testing::FakeClock& clock, const Backend& b, int times) {
  for (int i = 0; i < times; ++i) {
    b.stats->OnStart();
    b.stats->OnFinish(clock.Now(), milliseconds(1), false);
  }
}

TEST(OutlierDetectorTest, EjectsAfterConsecutiveFailuresAndReadmitsWithGrowingBackoff) {
  testing::FakeClock clock;
  OutlierDetector d(
      {.consecutive_failures = 3, .base_ejection = seconds(1), .max_ejection = seconds(3)}, clock);
  BackendList all = MakeBackends(4);
  Fail(clock, *all[0], 2);
  EXPECT_FALSE(d.MaybeEject(*all[0], all));
  Fail(clock, *all[0], 1);
  EXPECT_TRUE(d.MaybeEject(*all[0], all));
  EXPECT_FALSE(d.MaybeEject(*all[0], all));  // already ejected

  TimePoint next;
  bool panic = true;
  BackendList usable = d.Filter(all, &next, &panic);
  EXPECT_FALSE(panic);
  ASSERT_EQ(usable.size(), 3u);
  EXPECT_EQ(next, clock.Now() + seconds(1));

  clock.Advance(seconds(1));
  usable = d.Filter(all, &next, &panic);
  EXPECT_EQ(usable.size(), 4u);
  EXPECT_EQ(next, TimePoint::max());
  EXPECT_EQ(all[0]->stats->consecutive_failures(), 0u);  // a clean slate on return

  // A relapse is ejected for twice as long, capped at max_ejection.
  Fail(clock, *all[0], 3);
  ASSERT_TRUE(d.MaybeEject(*all[0], all));
  d.Filter(all, &next, &panic);
  EXPECT_EQ(next, clock.Now() + seconds(2));
  clock.Advance(seconds(2));
  d.Filter(all, &next, &panic);
  Fail(clock, *all[0], 3);
  ASSERT_TRUE(d.MaybeEject(*all[0], all));
  d.Filter(all, &next, &panic);
  EXPECT_EQ(next, clock.Now() + seconds(3));
}

TEST(OutlierDetectorTest, AnEjectionIsForgivenAfterALongStretchWithoutRebuilds) {
  // A quiet channel: after the re-admission nothing rebuilds the picker for an hour. The next
  // blip is a new episode (the base length), not the relapse of an hour ago.
  testing::FakeClock clock;
  OutlierDetector d(
      {.consecutive_failures = 3, .base_ejection = seconds(1), .max_ejection = seconds(30)}, clock);
  BackendList all = MakeBackends(4);
  TimePoint next;
  bool panic = false;
  for (int episode = 0; episode < 3; ++episode) {
    Fail(clock, *all[0], 3);
    ASSERT_TRUE(d.MaybeEject(*all[0], all));
    d.Filter(all, &next, &panic);
    EXPECT_EQ(next, clock.Now() + seconds(1)) << "episode " << episode;
    clock.Advance(seconds(1));
    d.Filter(all, &next, &panic);  // the re-admission; no rebuild after it
    ASSERT_EQ(next, TimePoint::max());
    clock.Advance(std::chrono::hours(1));
  }
  // Within max_ejection of the last re-admission it is still a relapse.
  Fail(clock, *all[0], 3);
  ASSERT_TRUE(d.MaybeEject(*all[0], all));
  clock.Advance(seconds(1));
  d.Filter(all, &next, &panic);
  clock.Advance(seconds(29));
  Fail(clock, *all[0], 3);
  ASSERT_TRUE(d.MaybeEject(*all[0], all));
  d.Filter(all, &next, &panic);
  EXPECT_EQ(next, clock.Now() + seconds(2));
}

TEST(OutlierDetectorTest, ASuccessResetsTheStreak) {
  testing::FakeClock clock;
  OutlierDetector d({.consecutive_failures = 3}, clock);
  BackendList all = MakeBackends(2);
  Fail(clock, *all[0], 2);
  all[0]->stats->OnStart();
  all[0]->stats->OnFinish(clock.Now(), milliseconds(1), true);
  Fail(clock, *all[0], 2);
  EXPECT_FALSE(d.MaybeEject(*all[0], all));
}

TEST(OutlierDetectorTest, NeverEjectsMoreThanTheCap) {
  testing::FakeClock clock;
  OutlierDetector d({.consecutive_failures = 1, .max_ejected_share = 0.5}, clock);
  BackendList all = MakeBackends(5);
  int ejected = 0;
  for (const BackendPtr& b : all) {
    Fail(clock, *b, 1);
    ejected += d.MaybeEject(*b, all) ? 1 : 0;
  }
  EXPECT_EQ(ejected, 2);  // floor(0.5 * 5)
  BackendList one = MakeBackends(1);
  Fail(clock, *one[0], 10);
  EXPECT_FALSE(d.MaybeEject(*one[0], one));  // a lone endpoint is never ejected
}

TEST(OutlierDetectorTest, PanicModeUsesEveryEndpointWhenTooFewAreHealthy) {
  testing::FakeClock clock;
  OutlierDetector d({.consecutive_failures = 1, .max_ejected_share = 1.0, .panic_threshold = 0.5},
                    clock);
  BackendList all = MakeBackends(4);
  TimePoint next;
  bool panic = false;
  Fail(clock, *all[0], 1);
  ASSERT_TRUE(d.MaybeEject(*all[0], all));
  Fail(clock, *all[1], 1);
  ASSERT_TRUE(d.MaybeEject(*all[1], all));
  EXPECT_EQ(d.Filter(all, &next, &panic).size(), 2u);  // half healthy: not yet panic
  EXPECT_FALSE(panic);
  Fail(clock, *all[2], 1);
  ASSERT_TRUE(d.MaybeEject(*all[2], all));
  EXPECT_EQ(d.Filter(all, &next, &panic).size(), 4u);
  EXPECT_TRUE(panic);
}

TEST(OutlierDetectorTest, DisabledWithZeroThreshold) {
  testing::FakeClock clock;
  OutlierDetector d({.consecutive_failures = 0}, clock);
  BackendList all = MakeBackends(3);
  Fail(clock, *all[0], 100);
  EXPECT_FALSE(d.MaybeEject(*all[0], all));
}

}  // namespace
}  // namespace fulcrum
