// random and weighted_random, and p2c_least_loaded's thread affinity: seeded statistical tests.
// With a fixed seed the result is deterministic; the tolerances are still chosen a few standard
// deviations wide so a change of seed or generator does not turn them into coin flips.
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "fulcrum/balancer.h"
#include "fulcrum/random.h"

namespace fulcrum {
namespace {

constexpr int kPicks = 100'000;

BackendList MakeBackends(const std::vector<uint32_t>& weights) {
  BackendList out;
  for (size_t i = 0; i < weights.size(); ++i) {
    out.push_back(
        MakeBackend(Endpoint{"10.0.0.2", static_cast<uint16_t>(2000 + i), weights[i], "", {}}));
  }
  return out;
}

std::vector<int> Counts(const std::string& balancer, const BackendList& list, uint64_t seed,
                        const PickArgs& args = {}) {
  SeededRandom rng(seed);
  BalancerContext ctx;
  ctx.random = &rng;
  auto picker = CreateBalancer(balancer, ctx).value()->Update(list);
  std::vector<int> counts(list.size(), 0);
  for (int i = 0; i < kPicks; ++i) {
    const Backend* b = picker->Pick(args).backend;
    for (size_t k = 0; k < list.size(); ++k) {
      if (list[k].get() == b) ++counts[k];
    }
  }
  return counts;
}

// Each share within 3% (relative) of `expected`. For the smallest share here (10%) that is
// 3 standard deviations at 100k picks.
void ExpectShares(const std::vector<int>& counts, const std::vector<double>& expected) {
  ASSERT_EQ(counts.size(), expected.size());
  for (size_t i = 0; i < counts.size(); ++i) {
    const double share = counts[i] / static_cast<double>(kPicks);
    EXPECT_NEAR(share, expected[i], 0.03 * expected[i]) << "endpoint " << i;
  }
}

TEST(RandomBalancerTest, UniformOverEndpointsWhateverTheWeights) {
  ExpectShares(Counts("random", MakeBackends({1, 2, 3, 4}), 1), {0.25, 0.25, 0.25, 0.25});
}

TEST(RandomBalancerTest, DifferentSeedsGiveDifferentSequences) {
  EXPECT_NE(Counts("random", MakeBackends({1, 1, 1}), 1),
            Counts("random", MakeBackends({1, 1, 1}), 2));
}

TEST(RandomBalancerTest, ExcludedShareIsSpreadUniformlyOverTheRest) {
  const BackendList list = MakeBackends({1, 1, 1, 1, 1});
  const EndpointId excluded[] = {IdOf(*list[2])};
  PickArgs args;
  args.excluded = excluded;
  ExpectShares(Counts("random", list, 3, args), {0.25, 0.25, 0.0, 0.25, 0.25});
}

TEST(WeightedRandomBalancerTest, SharesFollowWeights) {
  ExpectShares(Counts("weighted_random", MakeBackends({1, 2, 3, 4}), 4), {0.1, 0.2, 0.3, 0.4});
}

TEST(WeightedRandomBalancerTest, ZeroWeightGetsNothing) {
  ExpectShares(Counts("weighted_random", MakeBackends({0, 5, 0, 15}), 5), {0.0, 0.25, 0.0, 0.75});
}

TEST(WeightedRandomBalancerTest, SkewedWeights) {
  // Expected 99.9 picks for the light endpoint, standard deviation 10: 50..150 is 5 sigma.
  const std::vector<int> counts = Counts("weighted_random", MakeBackends({1, 1000}), 6);
  EXPECT_GT(counts[0], 50);
  EXPECT_LT(counts[0], 150);
}

TEST(WeightedRandomBalancerTest, ManyEndpointsWithUnevenWeights) {
  std::vector<uint32_t> weights;
  std::vector<double> expected;
  double total = 0;
  for (uint32_t i = 0; i < 10; ++i) {
    weights.push_back(10 + 5 * i);
    total += weights.back();
  }
  for (uint32_t w : weights) expected.push_back(w / total);
  // Smallest share 3.1%: a 3% relative tolerance would be 1.7 sigma, so allow 10% (5.6 sigma).
  const std::vector<int> counts = Counts("weighted_random", MakeBackends(weights), 7);
  for (size_t i = 0; i < counts.size(); ++i) {
    EXPECT_NEAR(counts[i] / static_cast<double>(kPicks), expected[i], 0.1 * expected[i]) << i;
  }
}

TEST(WeightedRandomBalancerTest, ExcludedShareGoesToTheRest) {
  const BackendList list = MakeBackends({1, 2, 3, 4});
  const EndpointId excluded[] = {IdOf(*list[3])};
  PickArgs args;
  args.excluded = excluded;
  ExpectShares(Counts("weighted_random", list, 8, args), {1.0 / 6, 2.0 / 6, 3.0 / 6, 0.0});
}

// p2c_least_loaded keeps a thread on its last endpoint while it is no busier than a random other
// one, for at most 64 picks in a row (runtime/src/balancers/p2c_least_loaded.cc).
size_t IndexOf(const BackendList& list, const Backend* b) {
  for (size_t k = 0; k < list.size(); ++k) {
    if (list[k].get() == b) return k;
  }
  return list.size();
}

// Four equal endpoints and a p2c picker drawing from a seeded generator, picked from this thread.
struct P2CPicks {
  explicit P2CPicks(uint64_t seed) : rng(seed) {
    BalancerContext ctx;
    ctx.random = &rng;
    picker = CreateBalancer("p2c_least_loaded", ctx).value()->Update(list);
  }
  size_t Pick() const { return IndexOf(list, picker->Pick({}).backend); }

  SeededRandom rng;
  const BackendList list = MakeBackends({1, 1, 1, 1});
  std::shared_ptr<const Picker> picker;
};

TEST(P2CAffinityTest, AThreadStaysOnItsEndpointWhileItIsNoBusier) {
  P2CPicks p(7);
  const size_t home = p.Pick();
  ASSERT_LT(home, p.list.size());
  for (int i = 0; i < 64; ++i) EXPECT_EQ(p.Pick(), home) << "pick " << i;
  // Busier than any other: the next pick moves, and the thread stays where it moved.
  p.list[home]->stats->OnStart();
  const size_t moved = p.Pick();
  EXPECT_NE(moved, home);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(p.Pick(), moved);
  p.list[home]->stats->OnAbandon();
}

TEST(P2CAffinityTest, AThreadLeavesAnEndpointWhoseLastCallFailed) {
  P2CPicks p(8);
  const size_t home = p.Pick();
  ASSERT_LT(home, p.list.size());
  p.list[home]->stats->OnStart();
  p.list[home]->stats->OnFinish(Clock::Real().Now(), std::chrono::milliseconds(1), false);
  // Nothing in flight anywhere, so every pair ties. Kept as home, the failed endpoint would get
  // the next 64 picks; given up, it gets a pick only when a fresh pair draws it first, and the
  // thread leaves it again on the next pick (about 1% of the picks here).
  int back_home = 0;
  for (int i = 0; i < 400; ++i) back_home += p.Pick() == home;
  EXPECT_LT(back_home, 40);
}

TEST(P2CAffinityTest, OneThreadStillSpreadsItsCallsOverEveryEndpoint) {
  // One call at a time, nothing ever in flight at a pick: every pick is a tie, and the 64-pick
  // limit is what spreads the calls. ~1,500 homes of 65 picks: each share within 3% absolute
  // is about 3 standard deviations.
  const std::vector<int> counts = Counts("p2c_least_loaded", MakeBackends({1, 1, 1, 1}), 3);
  for (size_t i = 0; i < counts.size(); ++i) {
    EXPECT_NEAR(counts[i] / static_cast<double>(kPicks), 0.25, 0.03) << "endpoint " << i;
  }
}

}  // namespace
}  // namespace fulcrum
