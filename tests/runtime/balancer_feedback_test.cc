// least_response_time, p2c_least_loaded and peak_ewma: fake-clock event simulations. Calls
// arrive at a fixed rate; each endpoint answers after its own latency (with seeded jitter);
// completions are events in a priority queue, and EndpointStats is updated exactly as the
// channel does it (OnStart at the pick, OnFinish at the completion time).
#include <functional>
#include <queue>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "fulcrum/balancer.h"
#include "fulcrum/random.h"
#include "testing/fake_clock.h"

namespace fulcrum {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

class Simulation {
 public:
  Simulation(const std::string& balancer, size_t endpoints, uint64_t seed)
      : rng_(seed), jitter_(seed + 1) {
    BalancerContext ctx;
    ctx.clock = &clock_;
    ctx.random = &rng_;
    balancer_ = CreateBalancer(balancer, ctx).value();
    for (size_t i = 0; i < endpoints; ++i) AddEndpoint();
  }

  // A new endpoint, with no samples yet; the balancer is updated as the channel would.
  size_t AddEndpoint() {
    list_.push_back(
        MakeBackend(Endpoint{"10.0.1.1", static_cast<uint16_t>(4000 + list_.size()), 1, "", {}}));
    latency_.push_back(milliseconds(1));
    picker_ = balancer_->Update(list_);
    return list_.size() - 1;
  }

  void SetLatency(size_t endpoint, Duration latency) { latency_[endpoint] = latency; }

  // Starts `calls` calls, one every `interval`, finishing earlier calls as time passes.
  // Returns how many calls each endpoint got.
  std::vector<int> Run(int calls, Duration interval) {
    std::vector<int> counts(list_.size(), 0);
    for (int c = 0; c < calls; ++c) {
      FinishUntil(clock_.Now());
      ++counts[Start()];
      clock_.Advance(interval);
    }
    return counts;
  }

  // Picks and starts one call; it completes after the endpoint's latency +-20%.
  size_t Start() {
    const Backend* b = picker_->Pick({}).backend;
    size_t i = 0;
    while (list_[i].get() != b) ++i;
    b->stats->OnStart();
    const Duration latency = Duration(static_cast<int64_t>(
        static_cast<double>(latency_[i].count()) * (0.8 + 0.4 * jitter_.NextDouble())));
    pending_.push({clock_.Now() + latency, i, latency});
    return i;
  }

  void FinishUntil(TimePoint t) {
    while (!pending_.empty() && std::get<0>(pending_.top()) <= t) {
      const auto [at, i, latency] = pending_.top();
      pending_.pop();
      list_[i]->stats->OnFinish(at, latency, true);
    }
  }

  void FinishAll() {
    while (!pending_.empty()) {
      clock_.Set(std::get<0>(pending_.top()));
      FinishUntil(clock_.Now());
    }
  }

  const BackendList& list() const { return list_; }
  testing::FakeClock& clock() { return clock_; }

 private:
  testing::FakeClock clock_;
  SeededRandom rng_;
  SeededRandom jitter_;
  std::unique_ptr<Balancer> balancer_;
  BackendList list_;
  std::vector<Duration> latency_;
  std::shared_ptr<const Picker> picker_;
  using Event = std::tuple<TimePoint, size_t, Duration>;  // finish time, endpoint, latency
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> pending_;
};

double Share(const std::vector<int>& counts, size_t i) {
  int total = 0;
  for (int c : counts) total += c;
  return counts[i] / static_cast<double>(total);
}

class FeedbackBalancerTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FeedbackBalancerTest, TenTimesSlowerEndpointGetsUnderTenPercent) {
  // Five endpoints, one at 10 ms and four at 1 ms; 10k calls/s, so a few calls are in flight
  // on each endpoint. An even split would give the slow one 20%.
  for (Duration interval : {microseconds(100), microseconds(500)}) {
    Simulation sim(GetParam(), 5, 11);
    sim.SetLatency(0, milliseconds(10));
    const std::vector<int> counts = sim.Run(20'000, interval);
    EXPECT_LT(Share(counts, 0), 0.10) << "interval " << interval.count() << " ns";
    // The fast ones share the rest evenly: none is herded (fair share is ~22-25%).
    for (size_t i = 1; i < 5; ++i) {
      EXPECT_GT(Share(counts, i), 0.18) << i;
      EXPECT_LT(Share(counts, i), 0.32) << i;
    }
    sim.FinishAll();
    for (const BackendPtr& b : sim.list()) EXPECT_EQ(b->stats->in_flight(), 0);
  }
}

TEST_P(FeedbackBalancerTest, EqualEndpointsShareEvenly) {
  Simulation sim(GetParam(), 4, 12);
  const std::vector<int> counts = sim.Run(20'000, microseconds(100));
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_NEAR(Share(counts, i), 0.25, 0.05) << i;
  }
}

TEST_P(FeedbackBalancerTest, NewEndpointIsTriedAndThenUsed) {
  Simulation sim(GetParam(), 4, 13);
  sim.Run(5'000, microseconds(100));
  const size_t fresh = sim.AddEndpoint();
  const std::vector<int> counts = sim.Run(10'000, microseconds(100));
  // Not starved: once it has answered it takes a fair share (20%) like the others.
  EXPECT_GT(Share(counts, fresh), 0.12);
  EXPECT_LT(Share(counts, fresh), 0.30);
}

// The same simulation with a balancer that ignores feedback: the slow endpoint gets its 20%,
// so the bound above measures the balancers, not the simulation.
TEST(FeedbackSimulationTest, RoundRobinGivesTheSlowEndpointItsEvenShare) {
  Simulation sim("round_robin", 5, 11);
  sim.SetLatency(0, milliseconds(10));
  EXPECT_NEAR(Share(sim.Run(20'000, microseconds(100)), 0), 0.20, 0.001);
}

INSTANTIATE_TEST_SUITE_P(Feedback, FeedbackBalancerTest,
                         ::testing::Values("least_response_time", "p2c_least_loaded", "peak_ewma"));

// The latency-aware ones send a new endpoint one probe while it has no sample, not a burst.
class LatencyBalancerTest : public ::testing::TestWithParam<std::string> {};

TEST_P(LatencyBalancerTest, UnprobedEndpointGetsOneCallUntilItAnswers) {
  Simulation sim(GetParam(), 4, 14);
  sim.Run(2'000, microseconds(100));
  sim.FinishAll();
  const size_t fresh = sim.AddEndpoint();
  int to_fresh = 0;
  for (int c = 0; c < 200; ++c) to_fresh += sim.Start() == fresh;  // no call finishes
  EXPECT_EQ(to_fresh, 1);
}

TEST_P(LatencyBalancerTest, EndpointThatTurnsSlowIsAvoided) {
  Simulation sim(GetParam(), 4, 15);
  sim.Run(5'000, microseconds(100));
  sim.SetLatency(0, milliseconds(20));
  sim.Run(5'000, microseconds(100));  // the balancer learns
  const std::vector<int> counts = sim.Run(5'000, microseconds(100));
  EXPECT_LT(Share(counts, 0), 0.05);
}

TEST_P(LatencyBalancerTest, RecoveredEndpointWinsItsTrafficBack) {
  Simulation sim(GetParam(), 5, 17);
  sim.SetLatency(0, milliseconds(10));
  EXPECT_LT(Share(sim.Run(10'000, microseconds(100)), 0), 0.10);
  sim.SetLatency(0, milliseconds(1));
  sim.Run(30'000, microseconds(100));  // 3 s of probes and the odd win re-measure it
  const std::vector<int> counts = sim.Run(10'000, microseconds(100));
  EXPECT_GT(Share(counts, 0), 0.12) << ::testing::PrintToString(counts);
}

INSTANTIATE_TEST_SUITE_P(Latency, LatencyBalancerTest,
                         ::testing::Values("least_response_time", "peak_ewma"));

TEST(PeakEwmaTest, OneSlowCallIsAvoidedAtOnce) {
  Simulation sim("peak_ewma", 4, 16);
  sim.Run(5'000, microseconds(100));
  sim.FinishAll();
  // One 100 ms answer from endpoint 0: the peak EWMA jumps to it, the plain EWMA would not.
  sim.list()[0]->stats->OnStart();
  sim.list()[0]->stats->OnFinish(sim.clock().Now(), milliseconds(100), true);
  const std::vector<int> counts = sim.Run(200, microseconds(100));
  EXPECT_LT(Share(counts, 0), 0.05);
}

TEST(EndpointStatsTest, AnOutrunCallIsALowerBoundThatNeverPullsTheEwmaDown) {
  // A call abandoned after 1 ms because a hedge answered first took at least 1 ms.
  testing::FakeClock clock;
  EndpointStats stats;
  stats.OnStart();
  stats.OnOutrun(clock.Now(), milliseconds(1));  // no figure yet: the bound is the figure
  EXPECT_EQ(stats.ewma_ns(), 1e6);
  stats.OnStart();
  clock.Advance(milliseconds(10));
  stats.OnFinish(clock.Now(), milliseconds(5), /*success=*/true);
  const double ewma = stats.ewma_ns();
  EXPECT_GT(ewma, 1e6);
  stats.OnStart();
  clock.Advance(milliseconds(10));
  stats.OnOutrun(clock.Now(), milliseconds(2));  // below what is known: says nothing new
  EXPECT_EQ(stats.ewma_ns(), ewma);
  stats.OnStart();
  clock.Advance(milliseconds(10));
  stats.OnOutrun(clock.Now(), milliseconds(20));  // above it: the endpoint is slower than shown
  EXPECT_GT(stats.ewma_ns(), ewma);
  EXPECT_EQ(stats.in_flight(), 0);
  EXPECT_EQ(stats.calls(), 4u);
  EXPECT_EQ(stats.failures(), 0u);
}

}  // namespace
}  // namespace fulcrum
