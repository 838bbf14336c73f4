#include "fulcrum/slow_start.h"

#include <gtest/gtest.h>

#include "fulcrum/random.h"
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

class SlowStartTest : public ::testing::Test {
 protected:
  SlowStartTest() : rng_(7), ctx_{.clock = &clock_, .random = &rng_} {}

  std::shared_ptr<const Picker> Build(const BackendList& all, TimePoint* ramp_end) {
    return WithSlowStart(CreateBalancer("random", ctx_).value()->Update(all), all, options_, ctx_,
                         ramp_end);
  }
  // The share of `n` picks that land on `b`.
  double ShareOf(const Picker& picker, const BackendPtr& b, int n = 20000) {
    int hits = 0;
    for (int i = 0; i < n; ++i) hits += picker.Pick(PickArgs{}).backend == b.get() ? 1 : 0;
    return static_cast<double>(hits) / n;
  }

  testing::FakeClock clock_;
  SeededRandom rng_;
  BalancerContext ctx_;
  SlowStartOptions options_{.window = seconds(10), .min_weight = 0.1, .aggression = 1.0};
};

TEST_F(SlowStartTest, FactorGrowsLinearlyFromTheFloorToOne) {
  EXPECT_DOUBLE_EQ(SlowStartFactor(options_, seconds(0)), 0.1);
  EXPECT_DOUBLE_EQ(SlowStartFactor(options_, milliseconds(500)), 0.1);
  EXPECT_DOUBLE_EQ(SlowStartFactor(options_, seconds(5)), 0.5);
  EXPECT_DOUBLE_EQ(SlowStartFactor(options_, seconds(10)), 1.0);
  EXPECT_DOUBLE_EQ(SlowStartFactor(options_, seconds(99)), 1.0);
  SlowStartOptions steep = options_;
  steep.aggression = 2.0;  // square root: faster early
  EXPECT_DOUBLE_EQ(SlowStartFactor(steep, milliseconds(2500)), 0.5);
  SlowStartOptions off = options_;
  off.window = Duration::zero();
  EXPECT_DOUBLE_EQ(SlowStartFactor(off, seconds(0)), 1.0);
}

TEST_F(SlowStartTest, ANewEndpointRampsUpOverTheWindow) {
  BackendList all = MakeBackends(2);
  all[1]->stats->serving_since_ns.store(ToNanos(clock_.Now()));
  TimePoint ramp_end;
  auto picker = Build(all, &ramp_end);
  EXPECT_EQ(ramp_end, clock_.Now() + seconds(10));
  // Random picks it half the time; it keeps 10% of those at first, 60% at 6 s.
  EXPECT_NEAR(ShareOf(*picker, all[1]), 0.05, 0.01);
  clock_.Advance(seconds(6));
  EXPECT_NEAR(ShareOf(*picker, all[1]), 0.30, 0.02);
  clock_.Advance(seconds(4));
  EXPECT_NEAR(ShareOf(*picker, all[1]), 0.50, 0.02);
  // Rebuilt at the end of the window: the balancer's own picker, nothing in between.
  auto child = CreateBalancer("random", ctx_).value()->Update(all);
  auto rebuilt = WithSlowStart(child, all, options_, ctx_, &ramp_end);
  EXPECT_EQ(rebuilt, child);
  EXPECT_EQ(ramp_end, TimePoint::max());
}

TEST_F(SlowStartTest, NothingRampsWhenEveryEndpointDoesOrWhenDisabled) {
  BackendList all = MakeBackends(3);
  for (const BackendPtr& b : all) b->stats->serving_since_ns.store(ToNanos(clock_.Now()));
  auto child = CreateBalancer("random", ctx_).value()->Update(all);
  TimePoint ramp_end;
  EXPECT_EQ(WithSlowStart(child, all, options_, ctx_, &ramp_end), child);
  all[0]->stats->serving_since_ns.store(0);  // one that serves from the start
  SlowStartOptions off = options_;
  off.window = Duration::zero();
  EXPECT_EQ(WithSlowStart(child, all, off, ctx_, &ramp_end), child);
  EXPECT_EQ(ramp_end, TimePoint::max());
  EXPECT_NE(WithSlowStart(child, all, options_, ctx_, &ramp_end), child);
}

TEST_F(SlowStartTest, ARetryStillAvoidsTriedEndpointsAndFallsBackToTheRampingOne) {
  BackendList all = MakeBackends(3);
  all[2]->stats->serving_since_ns.store(ToNanos(clock_.Now()));
  TimePoint ramp_end;
  auto picker = Build(all, &ramp_end);
  // Tried 0: the ramping endpoint's rejected picks go to 1, never back to 0.
  const EndpointId tried[] = {IdOf(*all[0])};
  PickArgs args;
  args.excluded = tried;
  int to_ramping = 0;
  for (int i = 0; i < 2000; ++i) {
    const Backend* b = picker->Pick(args).backend;
    ASSERT_NE(b, all[0].get());
    to_ramping += b == all[2].get() ? 1 : 0;
  }
  EXPECT_LT(to_ramping, 200);  // ~5%
  // Everything else tried: the ramping endpoint rather than nothing.
  const EndpointId both[] = {IdOf(*all[0]), IdOf(*all[1])};
  args.excluded = both;
  for (int i = 0; i < 100; ++i) EXPECT_EQ(picker->Pick(args).backend, all[2].get());
}

}  // namespace
}  // namespace fulcrum
