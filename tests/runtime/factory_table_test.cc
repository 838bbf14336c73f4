// FactoryTable (runtime/src/factory_table.h): the one shape of the balancer, resolver and
// registrar tables.
#include "factory_table.h"

#include <gtest/gtest.h>

#include <functional>

#include "fulcrum/balancer.h"
#include "fulcrum/registrar.h"
#include "fulcrum/resolver.h"

namespace fulcrum {
namespace {

using Table = internal::FactoryTable<std::function<int()>>;

TEST(FactoryTableTest, AddsFindsAndListsInOrder) {
  Table t;
  ASSERT_TRUE(t.Add(
                   "b", [] { return 2; }, "thing")
                  .ok());
  ASSERT_TRUE(t.Add(
                   "a", [] { return 1; }, "thing")
                  .ok());
  ASSERT_TRUE(t.Find("a").has_value());
  EXPECT_EQ((*t.Find("a"))(), 1);
  EXPECT_EQ((*t.Find("b"))(), 2);
  EXPECT_FALSE(t.Find("c").has_value());
  EXPECT_EQ(t.Names(), (std::vector<std::string>{"a", "b"}));
}

TEST(FactoryTableTest, RefusesEmptyNamesMissingFactoriesAndDuplicates) {
  Table t;
  EXPECT_EQ(t.Add(
                 "", [] { return 0; }, "thing")
                .message(),
            "thing needs a name");
  EXPECT_EQ(t.Add("x", nullptr, "thing").message(), "thing 'x' registered without a factory");
  ASSERT_TRUE(t.Add(
                   "x", [] { return 1; }, "thing")
                  .ok());
  Status again = t.Add(
      "x", [] { return 2; }, "thing");
  EXPECT_EQ(again.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(again.message(), "thing 'x' is already registered");
  EXPECT_EQ((*t.Find("x"))(), 1) << "the first registration stays";
}

// The three public tables answer alike.
TEST(FactoryTableTest, BalancersResolversAndRegistrarsShareTheRules) {
  EXPECT_EQ(RegisterBalancer("round_robin",
                             [](const BalancerContext&) { return std::unique_ptr<Balancer>(); })
                .message(),
            "balancer 'round_robin' is already registered");
  EXPECT_EQ(RegisterResolverScheme("static",
                                   [](std::string_view) {
                                     return StatusOr<std::unique_ptr<Resolver>>(
                                         Status::Error(StatusCode::kInternal, "unused"));
                                   })
                .message(),
            "resolver scheme 'static' is already registered");
  ASSERT_TRUE(RegisterRegistrarScheme("factory-table-test", [](std::string_view) {
                return StatusOr<std::unique_ptr<Registrar>>(
                    Status::Error(StatusCode::kInternal, "unused"));
              }).ok());
  EXPECT_EQ(RegisterRegistrarScheme("factory-table-test",
                                    [](std::string_view) {
                                      return StatusOr<std::unique_ptr<Registrar>>(
                                          Status::Error(StatusCode::kInternal, "unused"));
                                    })
                .message(),
            "registrar scheme 'factory-table-test' is already registered");
  EXPECT_EQ(RegisterBalancer("", nullptr).message(), "balancer needs a name");
}

}  // namespace
}  // namespace fulcrum
