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
    out.push_back(MakeBackend(Endpoint{"127.0.0.1", static_cast<uint16_t>(1000 + i)}));
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

// `n` successful calls on `b` taking `latency` each.
void Serve(testing::FakeClock& clock, const Backend& b, int n, Duration latency) {
  for (int i = 0; i < n; ++i) {
    b.stats->OnStart();
    b.stats->OnFinish(clock.Now(), latency, true);
  }
}

OutlierOptions LatencyOptions() {
  return {.consecutive_failures = 5,
          .base_ejection = seconds(1),
          .max_ejection = seconds(30),
          .max_ejected_share = 0.5,
          .latency_factor = 3.0,
          .latency_min_gap = std::chrono::microseconds(500),
          .latency_min_samples = 10,
          .latency_interval = milliseconds(100),
          .latency_checks = 1};
}

TEST(OutlierDetectorTest, EjectsAnEndpointMuchSlowerThanItsPeers) {
  testing::FakeClock clock;
  OutlierDetector d(LatencyOptions(), clock);
  BackendList all = MakeBackends(3);
  Serve(clock, *all[0], 10, std::chrono::microseconds(100));
  Serve(clock, *all[1], 10, std::chrono::microseconds(150));
  Serve(clock, *all[2], 10, milliseconds(2));
  EXPECT_EQ(d.EjectSlow(all), 1u);
  EXPECT_TRUE(d.IsEjected(*all[2]));
  EXPECT_FALSE(d.IsEjected(*all[0]));
  EXPECT_EQ(d.EjectSlow(all), 0u);  // the two left are alike
  TimePoint next;
  bool panic = true;
  EXPECT_EQ(d.Filter(all, &next, &panic).size(), 2u);
  EXPECT_FALSE(panic);
  EXPECT_EQ(next, clock.Now() + seconds(1));
}

TEST(OutlierDetectorTest, LatencyEjectionNeedsSamplesAFactorAndAGap) {
  testing::FakeClock clock;
  OutlierDetector d(LatencyOptions(), clock);
  {
    BackendList all = MakeBackends(3);  // too few samples on the slow one
    Serve(clock, *all[0], 10, std::chrono::microseconds(100));
    Serve(clock, *all[1], 10, std::chrono::microseconds(100));
    Serve(clock, *all[2], 9, milliseconds(2));
    EXPECT_EQ(d.EjectSlow(all), 0u);
    Serve(clock, *all[2], 1, milliseconds(2));
    EXPECT_EQ(d.EjectSlow(all), 1u);
  }
  {
    BackendList all = MakeBackends(3);  // 5x slower, but only 400 us: under the gap
    Serve(clock, *all[0], 10, std::chrono::microseconds(100));
    Serve(clock, *all[1], 10, std::chrono::microseconds(100));
    Serve(clock, *all[2], 10, std::chrono::microseconds(500));
    EXPECT_EQ(d.EjectSlow(all), 0u);
  }
  {
    BackendList all = MakeBackends(3);  // 1 ms slower, but only 2x
    Serve(clock, *all[0], 10, milliseconds(1));
    Serve(clock, *all[1], 10, milliseconds(1));
    Serve(clock, *all[2], 10, milliseconds(2));
    EXPECT_EQ(d.EjectSlow(all), 0u);
  }
  {
    BackendList all = MakeBackends(3);  // disabled
    OutlierOptions off = LatencyOptions();
    off.latency_factor = 0;
    OutlierDetector disabled(off, clock);
    Serve(clock, *all[0], 10, std::chrono::microseconds(100));
    Serve(clock, *all[1], 10, std::chrono::microseconds(100));
    Serve(clock, *all[2], 10, milliseconds(20));
    EXPECT_EQ(disabled.EjectSlow(all), 0u);
  }
}

TEST(OutlierDetectorTest, LatencyEjectionKeepsTheCap) {
  testing::FakeClock clock;
  OutlierOptions options = LatencyOptions();
  options.max_ejected_share = 0.25;
  OutlierDetector d(options, clock);
  BackendList all = MakeBackends(4);
  Serve(clock, *all[0], 10, std::chrono::microseconds(100));
  Serve(clock, *all[1], 10, std::chrono::microseconds(100));
  Serve(clock, *all[2], 10, milliseconds(3));
  Serve(clock, *all[3], 10, milliseconds(2));
  EXPECT_EQ(d.EjectSlow(all), 1u);  // floor(0.25 * 4): the slowest only
  EXPECT_TRUE(d.IsEjected(*all[2]));
  EXPECT_FALSE(d.IsEjected(*all[3]));
  // Failures and latency share the cap.
  Fail(clock, *all[3], 5);
  EXPECT_FALSE(d.MaybeEject(*all[3], all));
}

TEST(OutlierDetectorTest, AnEndpointBackFromALatencyEjectionProvesItselfAgain) {
  testing::FakeClock clock;
  OutlierDetector d(LatencyOptions(), clock);
  BackendList all = MakeBackends(3);
  Serve(clock, *all[0], 10, std::chrono::microseconds(100));
  Serve(clock, *all[1], 10, std::chrono::microseconds(100));
  Serve(clock, *all[2], 10, milliseconds(2));
  ASSERT_EQ(d.EjectSlow(all), 1u);
  TimePoint next;
  bool panic = false;
  d.Filter(all, &next, &panic);
  clock.Advance(seconds(1));
  EXPECT_EQ(d.Filter(all, &next, &panic).size(), 3u);
  // Re-admitted: its old EWMA is forgotten, and slow start ramps from now.
  EXPECT_FALSE(all[2]->stats->has_latency());
  EXPECT_EQ(all[2]->stats->latency_samples(), 0u);
  EXPECT_EQ(all[2]->stats->serving_since_ns.load(), ToNanos(clock.Now()));
  EXPECT_EQ(d.EjectSlow(all), 0u);  // not judged before it has enough samples
  // Still slow: ejected again, for twice as long.
  Serve(clock, *all[2], 10, milliseconds(2));
  ASSERT_EQ(d.EjectSlow(all), 1u);
  d.Filter(all, &next, &panic);
  EXPECT_EQ(next, clock.Now() + seconds(2));
  clock.Advance(seconds(2));
  d.Filter(all, &next, &panic);
  // Recovered: judged on what it does now, it stays.
  Serve(clock, *all[2], 10, std::chrono::microseconds(120));
  EXPECT_EQ(d.EjectSlow(all), 0u);
  EXPECT_FALSE(d.IsEjected(*all[2]));
}

TEST(OutlierDetectorTest, LatencyEjectionWaitsForChecksInARow) {
  testing::FakeClock clock;
  OutlierOptions options = LatencyOptions();
  options.latency_checks = 2;
  OutlierDetector d(options, clock);
  BackendList all = MakeBackends(3);
  Serve(clock, *all[0], 10, std::chrono::microseconds(100));
  Serve(clock, *all[1], 10, std::chrono::microseconds(100));
  Serve(clock, *all[2], 10, milliseconds(2));
  EXPECT_EQ(d.EjectSlow(all), 0u);  // one check: a blip, perhaps
  all[2]->stats->RestartLatency();  // it was: fast again at the next check
  Serve(clock, *all[2], 10, std::chrono::microseconds(100));
  EXPECT_EQ(d.EjectSlow(all), 0u);
  all[2]->stats->RestartLatency();
  Serve(clock, *all[2], 10, milliseconds(2));
  EXPECT_EQ(d.EjectSlow(all), 0u);  // the count started again
  EXPECT_EQ(d.EjectSlow(all), 1u);  // two in a row
  EXPECT_TRUE(d.IsEjected(*all[2]));
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
