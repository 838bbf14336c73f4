// round_robin and weighted_round_robin: exact sequences. A picker starts at a random offset,
// so each test finds the offset from the first pick and then checks every pick after it.
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "fulcrum/balancer.h"
#include "fulcrum/random.h"

namespace fulcrum {
namespace {

BackendList MakeBackends(const std::vector<uint32_t>& weights) {
  BackendList out;
  for (size_t i = 0; i < weights.size(); ++i) {
    out.push_back(
        MakeBackend(Endpoint{"10.0.0.1", static_cast<uint16_t>(1000 + i), weights[i], "", {}}));
  }
  return out;
}

size_t IndexOf(const BackendList& list, const Backend* b) {
  for (size_t i = 0; i < list.size(); ++i) {
    if (list[i].get() == b) return i;
  }
  ADD_FAILURE() << "picked a backend that is not in the list";
  return list.size();
}

std::vector<size_t> Picks(const Picker& picker, const BackendList& list, size_t n,
                          const PickArgs& args = {}) {
  std::vector<size_t> out;
  for (size_t i = 0; i < n; ++i) out.push_back(IndexOf(list, picker.Pick(args).backend));
  return out;
}

// The offset k at which `picks` continues `cycle` (picks[i] == cycle[(k + i) % size]), or
// cycle.size() when there is none.
size_t PhaseOf(const std::vector<size_t>& picks, const std::vector<size_t>& cycle) {
  for (size_t k = 0; k < cycle.size(); ++k) {
    bool match = true;
    for (size_t i = 0; i < picks.size() && match; ++i) {
      match = picks[i] == cycle[(k + i) % cycle.size()];
    }
    if (match) return k;
  }
  return cycle.size();
}

// nginx's smooth weighted round robin, run step by step: the reference for the table.
std::vector<size_t> NginxSequence(const std::vector<uint32_t>& weights, size_t steps) {
  std::vector<int64_t> current(weights.size(), 0);
  int64_t total = 0;
  for (uint32_t w : weights) total += w;
  std::vector<size_t> out;
  for (size_t s = 0; s < steps; ++s) {
    size_t best = weights.size();
    for (size_t i = 0; i < weights.size(); ++i) {
      if (weights[i] == 0) continue;
      current[i] += weights[i];
      if (best == weights.size() || current[i] > current[best]) best = i;
    }
    current[best] -= total;
    out.push_back(best);
  }
  return out;
}

class RoundRobinTest : public ::testing::Test {
 protected:
  std::unique_ptr<Balancer> Create(const std::string& name) {
    BalancerContext ctx;
    ctx.random = &rng_;
    return CreateBalancer(name, ctx).value();
  }
  SeededRandom rng_{7};
};

TEST_F(RoundRobinTest, VisitsEachEndpointInTurn) {
  const BackendList list = MakeBackends({1, 1, 1, 1});
  auto picker = Create("round_robin")->Update(list);
  const std::vector<size_t> picks = Picks(*picker, list, 12);
  for (size_t i = 0; i < picks.size(); ++i) EXPECT_EQ(picks[i], (picks[0] + i) % 4) << i;
}

TEST_F(RoundRobinTest, IgnoresWeightsButSkipsZeroWeight) {
  const BackendList list = MakeBackends({5, 0, 1});
  auto picker = Create("round_robin")->Update(list);
  const std::vector<size_t> picks = Picks(*picker, list, 6);
  EXPECT_LT(PhaseOf(picks, {0, 2}), 2u) << ::testing::PrintToString(picks);
}

TEST_F(RoundRobinTest, PickersStartAtDifferentOffsets) {
  const BackendList list = MakeBackends(std::vector<uint32_t>(1000, 1));
  auto balancer = Create("round_robin");
  std::set<size_t> starts;
  for (int i = 0; i < 10; ++i)
    starts.insert(IndexOf(list, balancer->Update(list)->Pick({}).backend));
  // Ten draws out of 1000: a repeat has probability ~4.5%, two repeats ~0.1%.
  EXPECT_GE(starts.size(), 9u);
}

TEST_F(RoundRobinTest, ExcludedIsSkippedForTheNextInTurn) {
  const BackendList list = MakeBackends({1, 1, 1, 1});
  auto picker = Create("round_robin")->Update(list);
  const size_t first = IndexOf(list, picker->Pick({}).backend);
  const EndpointId excluded[] = {IdOf(*list[(first + 1) % 4])};
  PickArgs args;
  args.excluded = excluded;
  EXPECT_EQ(IndexOf(list, picker->Pick(args).backend), (first + 2) % 4);
  EXPECT_EQ(IndexOf(list, picker->Pick({}).backend), (first + 3) % 4);
}

TEST_F(RoundRobinTest, WeightedFiveOneOneIsExactlyTheNginxCycle) {
  const BackendList list = MakeBackends({5, 1, 1});
  auto picker = Create("weighted_round_robin")->Update(list);
  const std::vector<size_t> cycle = {0, 0, 1, 0, 2, 0, 0};  // a a b a c a a
  const std::vector<size_t> picks = Picks(*picker, list, 3 * cycle.size());
  EXPECT_LT(PhaseOf(picks, cycle), cycle.size()) << ::testing::PrintToString(picks);
}

TEST_F(RoundRobinTest, WeightedMatchesNginxStepByStep) {
  // 50 endpoints with weights 0..9: a table of 200-odd slots, compared over three periods.
  SeededRandom weights_rng(99);
  std::vector<uint32_t> weights;
  for (int i = 0; i < 50; ++i) weights.push_back(static_cast<uint32_t>(weights_rng.Uniform(10)));
  const BackendList list = MakeBackends(weights);
  uint32_t sum = 0;
  for (uint32_t w : weights) sum += w;
  auto picker = Create("weighted_round_robin")->Update(list);
  const std::vector<size_t> picks = Picks(*picker, list, 3 * sum);
  EXPECT_LT(PhaseOf(picks, NginxSequence(weights, sum)), sum);
}

TEST_F(RoundRobinTest, WeightedReducesByGcd) {
  const BackendList list = MakeBackends({500, 100, 100});
  auto picker = Create("weighted_round_robin")->Update(list);
  const std::vector<size_t> picks = Picks(*picker, list, 21);
  EXPECT_LT(PhaseOf(picks, {0, 0, 1, 0, 2, 0, 0}), 7u) << ::testing::PrintToString(picks);
}

TEST_F(RoundRobinTest, WeightedHugeWeightsAreScaledWithinTolerance) {
  // Reduced weights sum to 10^6 + 3, far above the 16384-slot table: they are scaled. Shares
  // stay within 0.1% of the weights over whole periods, and the tiny endpoint keeps a slot.
  const std::vector<uint32_t> weights = {600'000, 300'000, 100'000, 3};
  const BackendList list = MakeBackends(weights);
  auto picker = Create("weighted_round_robin")->Update(list);
  const int kPicks = 16384 * 4;
  std::vector<int> counts(weights.size(), 0);
  for (size_t i : Picks(*picker, list, kPicks)) ++counts[i];
  const double total = 1'000'003;
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_NEAR(counts[i] / static_cast<double>(kPicks), weights[i] / total, 0.001) << i;
  }
  EXPECT_GT(counts[3], 0);
}

TEST_F(RoundRobinTest, WeightedExcludedTakesTheNextSlotOfTheSequence) {
  const BackendList list = MakeBackends({5, 1, 1});
  auto picker = Create("weighted_round_robin")->Update(list);
  const EndpointId excluded[] = {IdOf(*list[0])};
  PickArgs args;
  args.excluded = excluded;
  // Every pick skips 'a'; over one period of the remaining slots b and c alternate.
  std::vector<size_t> picks = Picks(*picker, list, 10, args);
  for (size_t i = 1; i < picks.size(); ++i) {
    EXPECT_NE(picks[i], 0u);
    EXPECT_NE(picks[i], picks[i - 1]) << ::testing::PrintToString(picks);
  }
}

}  // namespace
}  // namespace fulcrum
