#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "fulcrum/balancer.h"

namespace fulcrum {
namespace {

TEST(BalancerTableTest, BuiltinsAreRegisteredAndSorted) {
  const std::vector<std::string> names = BalancerNames();
  for (const char* builtin :
       {"random", "weighted_random", "round_robin", "weighted_round_robin", "least_response_time",
        "p2c_least_loaded", "peak_ewma", "consistent_hash"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), builtin), names.end()) << builtin;
    EXPECT_TRUE(CreateBalancer(builtin).ok()) << builtin;
  }
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
}

TEST(BalancerTableTest, UnknownNameIsNotFoundAndListsTheRegisteredOnes) {
  auto created = CreateBalancer("round_robbin");
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.status().code(), StatusCode::kNotFound);
  EXPECT_NE(created.status().message().find("round_robbin"), std::string::npos);
  for (const std::string& name : BalancerNames()) {
    EXPECT_NE(created.status().message().find(name), std::string::npos) << name;
  }
}

TEST(BalancerTableTest, EmptyOrTakenNamesAreRejected) {
  auto factory = [](const BalancerContext& ctx) { return CreateBalancer("random", ctx).value(); };
  EXPECT_EQ(RegisterBalancer("", factory).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(RegisterBalancer("round_robin", factory).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(RegisterBalancer("table_test_null", nullptr).code(), StatusCode::kInvalidArgument);
}

// Always picks the last backend: simple enough to recognise.
class LastPicker final : public Picker {
 public:
  explicit LastPicker(BackendList list) : list_(std::move(list)) {}
  PickResult Pick(const PickArgs&) const override {
    return {list_.empty() ? nullptr : list_.back().get()};
  }

 private:
  BackendList list_;
};

class LastBalancer final : public Balancer {
 public:
  std::shared_ptr<const Picker> Update(const BackendList& backends) override {
    return std::make_shared<LastPicker>(backends);
  }
};

// Registrations are process-wide and permanent: a name per run keeps --gtest_repeat working.
std::string FreshName(const std::string& base) {
  static int runs = 0;
  return base + "_" + std::to_string(runs++);
}

TEST(BalancerTableTest, UserBalancerIsCreatableByName) {
  const std::string name = FreshName("table_test_last");
  ASSERT_TRUE(RegisterBalancer(name, [](const BalancerContext&) {
                return std::make_unique<LastBalancer>();
              }).ok());
  EXPECT_EQ(RegisterBalancer(
                name, [](const BalancerContext&) { return std::make_unique<LastBalancer>(); })
                .code(),
            StatusCode::kInvalidArgument);

  const std::vector<std::string> names = BalancerNames();
  EXPECT_NE(std::find(names.begin(), names.end(), name), names.end());
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));

  auto created = CreateBalancer(name);
  ASSERT_TRUE(created.ok()) << created.status();
  const BackendList list = {MakeBackend({"10.0.0.1", 1, 1, "", {}}),
                            MakeBackend({"10.0.0.2", 2, 1, "", {}})};
  EXPECT_EQ(created.value()->Update(list)->Pick({}).backend, list[1].get());
}

TEST(BalancerTableTest, FactoryReturningNullIsAnError) {
  const std::string name = FreshName("table_test_null_factory");
  ASSERT_TRUE(RegisterBalancer(name, [](const BalancerContext&) {
                return std::unique_ptr<Balancer>();
              }).ok());
  EXPECT_EQ(CreateBalancer(name).status().code(), StatusCode::kInternal);
}

TEST(BalancerTableTest, MakeBackendFillsAddressAndFreshStats) {
  BackendPtr b = MakeBackend({"::1", 9090, 3, "z1", {}});
  EXPECT_EQ(b->address, "[::1]:9090");
  EXPECT_EQ(b->endpoint.weight, 3u);
  ASSERT_NE(b->stats, nullptr);
  EXPECT_EQ(b->stats->in_flight(), 0);
  EXPECT_FALSE(b->stats->has_latency());
  EXPECT_EQ(b->pool, nullptr);
  EXPECT_NE(MakeBackend({"::1", 9090, 3, "z1", {}})->stats, b->stats);
}

TEST(BalancerTableTest, EmptyPickerPicksNothing) {
  PickArgs args;
  args.has_hash = true;
  EXPECT_EQ(EmptyPicker()->Pick(args).backend, nullptr);
  EXPECT_EQ(EmptyPicker()->Pick({}).tracker, nullptr);
}

}  // namespace
}  // namespace fulcrum
