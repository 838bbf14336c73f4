// Every registered balancer through the shared edge cases: no endpoints, one endpoint, weights,
// excluded backends, an update while a pick is in flight, with and without a hash key.
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "fulcrum/balancer.h"
#include "fulcrum/hash.h"
#include "fulcrum/random.h"

namespace fulcrum {
namespace {

BackendList MakeBackends(const std::vector<uint32_t>& weights, uint16_t first_port = 9000) {
  BackendList out;
  for (size_t i = 0; i < weights.size(); ++i) {
    out.push_back(MakeBackend(
        Endpoint{"127.0.0.1", static_cast<uint16_t>(first_port + i), weights[i], "", {}}));
  }
  return out;
}

// Picks with a key when `hashed`, varying the key so hashing balancers spread too.
PickArgs Args(bool hashed, uint64_t i, std::span<const EndpointId> excluded = {}) {
  PickArgs args;
  args.has_hash = hashed;
  args.hash = Hash64(i);
  args.excluded = excluded;
  return args;
}

struct Case {
  std::string balancer;
  bool hashed;
};

std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  return info.param.balancer + (info.param.hashed ? "_hashed" : "_unhashed");
}

std::vector<Case> AllCases() {
  std::vector<Case> cases;
  for (const std::string& name : BalancerNames()) {
    cases.push_back({name, false});
    cases.push_back({name, true});
  }
  return cases;
}

class EveryBalancerTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    BalancerContext ctx;
    ctx.random = &rng_;
    auto created = CreateBalancer(GetParam().balancer, ctx);
    ASSERT_TRUE(created.ok()) << created.status();
    balancer_ = std::move(created).value();
  }

  // How often each backend of `list` is picked in `picks` calls.
  std::vector<int> Counts(const Picker& picker, const BackendList& list, int picks,
                          std::span<const EndpointId> excluded = {}) {
    std::vector<int> counts(list.size(), 0);
    for (int i = 0; i < picks; ++i) {
      const Backend* b = picker.Pick(Args(GetParam().hashed, i, excluded)).backend;
      EXPECT_NE(b, nullptr);
      for (size_t k = 0; k < list.size(); ++k) {
        if (list[k].get() == b) ++counts[k];
      }
    }
    return counts;
  }

  SeededRandom rng_{42};
  std::unique_ptr<Balancer> balancer_;
};

TEST_P(EveryBalancerTest, NoEndpointsPicksNothing) {
  auto picker = balancer_->Update({});
  ASSERT_NE(picker, nullptr);
  EXPECT_EQ(picker->Pick(Args(GetParam().hashed, 1)).backend, nullptr);
}

TEST_P(EveryBalancerTest, NullBackendsAreIgnored) {
  BackendList list = MakeBackends({1});
  list.insert(list.begin(), nullptr);
  list.push_back(nullptr);
  auto picker = balancer_->Update(list);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(picker->Pick(Args(GetParam().hashed, i)).backend, list[1].get());
  }
  EXPECT_EQ(balancer_->Update({nullptr})->Pick(Args(GetParam().hashed, 1)).backend, nullptr);
}

TEST_P(EveryBalancerTest, OneEndpointGetsEveryPick) {
  const BackendList list = MakeBackends({3});
  auto picker = balancer_->Update(list);
  EXPECT_EQ(Counts(*picker, list, 100), std::vector<int>{100});
}

TEST_P(EveryBalancerTest, AllWeightsZeroStillPicksEveryEndpoint) {
  const BackendList list = MakeBackends({0, 0, 0, 0});
  auto picker = balancer_->Update(list);
  for (int count : Counts(*picker, list, 2000)) EXPECT_GT(count, 0);
}

TEST_P(EveryBalancerTest, ZeroWeightAmongNonZeroGetsNothing) {
  const BackendList list = MakeBackends({1, 0, 2, 0});
  auto picker = balancer_->Update(list);
  const std::vector<int> counts = Counts(*picker, list, 2000);
  EXPECT_GT(counts[0], 0);
  EXPECT_EQ(counts[1], 0);
  EXPECT_GT(counts[2], 0);
  EXPECT_EQ(counts[3], 0);
}

TEST_P(EveryBalancerTest, ZeroWeightIsUsedWhenEverythingElseIsExcluded) {
  const BackendList list = MakeBackends({1, 0, 2});
  auto picker = balancer_->Update(list);
  const EndpointId excluded[] = {IdOf(*list[0]), IdOf(*list[2])};
  EXPECT_EQ(Counts(*picker, list, 100, excluded), (std::vector<int>{0, 100, 0}));
}

TEST_P(EveryBalancerTest, ExcludedBackendsAreAvoided) {
  const BackendList list = MakeBackends({1, 1, 1, 1, 1});
  auto picker = balancer_->Update(list);
  const EndpointId excluded[] = {IdOf(*list[1]), IdOf(*list[3])};
  const std::vector<int> counts = Counts(*picker, list, 2000, excluded);
  EXPECT_EQ(counts[1], 0);
  EXPECT_EQ(counts[3], 0);
  EXPECT_EQ(counts[0] + counts[2] + counts[4], 2000);
}

TEST_P(EveryBalancerTest, AllButOneExcludedPicksTheLastOne) {
  const BackendList list = MakeBackends({1, 1, 1, 1});
  auto picker = balancer_->Update(list);
  const EndpointId excluded[] = {IdOf(*list[0]), IdOf(*list[1]), IdOf(*list[3])};
  EXPECT_EQ(Counts(*picker, list, 200, excluded), (std::vector<int>{0, 0, 200, 0}));
}

TEST_P(EveryBalancerTest, EverythingExcludedStillPicksOne) {
  const BackendList list = MakeBackends({1, 1, 1});
  auto picker = balancer_->Update(list);
  const EndpointId excluded[] = {IdOf(*list[0]), IdOf(*list[1]), IdOf(*list[2])};
  const std::vector<int> counts = Counts(*picker, list, 100, excluded);
  EXPECT_EQ(counts[0] + counts[1] + counts[2], 100);
}

TEST_P(EveryBalancerTest, UpdateWhileAPickIsInFlightKeepsTheOldBackendValid) {
  BackendList list = MakeBackends({1, 1, 1});
  std::shared_ptr<const Picker> old_picker = balancer_->Update(list);
  PickResult in_flight = old_picker->Pick(Args(GetParam().hashed, 7));
  ASSERT_NE(in_flight.backend, nullptr);
  const std::string address = in_flight.backend->address;
  std::weak_ptr<const Backend> watch;
  for (const BackendPtr& b : list) {
    if (b.get() == in_flight.backend) watch = b;
  }

  // The channel drops every other reference to the picked backend and moves on.
  list = MakeBackends({1, 1}, 9100);
  std::shared_ptr<const Picker> new_picker = balancer_->Update(list);
  for (int i = 0; i < 50; ++i) {
    const Backend* b = new_picker->Pick(Args(GetParam().hashed, i)).backend;
    EXPECT_TRUE(b == list[0].get() || b == list[1].get());
  }

  // The call in flight still holds the old picker, so its backend is intact and usable.
  ASSERT_FALSE(watch.expired());
  EXPECT_EQ(in_flight.backend->address, address);
  in_flight.backend->stats->OnStart();
  in_flight.backend->stats->OnFinish(FromNanos(2'000'000'000), std::chrono::milliseconds(1), true);
  EXPECT_NE(old_picker->Pick(Args(GetParam().hashed, 8)).backend, nullptr);

  old_picker.reset();
  EXPECT_TRUE(watch.expired()) << "the old picker should be the last owner of its backends";
}

INSTANTIATE_TEST_SUITE_P(Builtins, EveryBalancerTest, ::testing::ValuesIn(AllCases()), CaseName);

}  // namespace
}  // namespace fulcrum
