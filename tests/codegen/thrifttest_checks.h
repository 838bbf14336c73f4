// ExerciseThriftTest: calls every ThriftTest function on `client` and checks each answer
// against ThriftTestHandler's reference behaviour. Works with the stock ThriftTestClient and
// with the generated ThriftTestBalancedClient alike, because their methods have the same
// parameters and results. Not thread-safe (uses one client).
#pragma once

#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <thrift/Thrift.h>

#include "ThriftTest.h"

namespace fulcrum::testing {

template <class Client>
void ExerciseThriftTest(Client& client) {
  using namespace thrift::test;  // NOLINT: the test's vocabulary

  client.testVoid();

  std::string s;
  client.testString(s, "Test");
  EXPECT_EQ(s, "Test");
  client.testString(s, "");
  EXPECT_EQ(s, "");
  std::string utf8 = "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xe2\x82\xac";
  client.testString(s, utf8);
  EXPECT_EQ(s, utf8);

  EXPECT_TRUE(client.testBool(true));
  EXPECT_FALSE(client.testBool(false));
  EXPECT_EQ(client.testByte(1), 1);
  EXPECT_EQ(client.testByte(-128), -128);
  EXPECT_EQ(client.testByte(127), 127);
  EXPECT_EQ(client.testI32(-1), -1);
  EXPECT_EQ(client.testI32(std::numeric_limits<int32_t>::min()),
            std::numeric_limits<int32_t>::min());
  EXPECT_EQ(client.testI64(-34359738368LL), -34359738368LL);
  EXPECT_EQ(client.testI64(std::numeric_limits<int64_t>::max()),
            std::numeric_limits<int64_t>::max());
  EXPECT_EQ(client.testDouble(-5.2098523), -5.2098523);
  EXPECT_EQ(client.testDouble(-0.000341012439638598279), -0.000341012439638598279);
  EXPECT_TRUE(std::isinf(client.testDouble(std::numeric_limits<double>::infinity())));

  std::string binary;
  for (int i = 0; i < 256; ++i) binary.push_back(static_cast<char>(i));
  client.testBinary(s, binary);
  EXPECT_EQ(s, binary);

  Xtruct x;
  x.string_thing = "Zero";
  x.byte_thing = 1;
  x.i32_thing = -3;
  x.i64_thing = -5;
  Xtruct xr;
  client.testStruct(xr, x);
  EXPECT_EQ(xr, x);

  Xtruct2 nest;
  nest.byte_thing = 1;
  nest.struct_thing = x;
  nest.i32_thing = 5;
  Xtruct2 nr;
  client.testNest(nr, nest);
  EXPECT_EQ(nr, nest);

  std::map<int32_t, int32_t> m{{0, -10}, {1, -9}, {4, -6}}, mr;
  client.testMap(mr, m);
  EXPECT_EQ(mr, m);
  std::map<std::string, std::string> sm{{"a", "2"}, {"b", "blah"}, {"some", "thing"}}, smr;
  client.testStringMap(smr, sm);
  EXPECT_EQ(smr, sm);
  std::set<int32_t> set{-2, -1, 0, 1, 2}, setr;
  client.testSet(setr, set);
  EXPECT_EQ(setr, set);
  std::vector<int32_t> list{-2, -1, 0, 1, 2}, listr;
  client.testList(listr, list);
  EXPECT_EQ(listr, list);

  EXPECT_EQ(client.testEnum(Numberz::ONE), Numberz::ONE);
  EXPECT_EQ(client.testEnum(Numberz::EIGHT), Numberz::EIGHT);
  EXPECT_EQ(client.testTypedef(309858235082523LL), 309858235082523LL);

  std::map<int32_t, std::map<int32_t, int32_t>> mm;
  client.testMapMap(mm, 1);
  std::map<int32_t, std::map<int32_t, int32_t>> expected_mm{
      {-4, {{-4, -4}, {-3, -3}, {-2, -2}, {-1, -1}}}, {4, {{1, 1}, {2, 2}, {3, 3}, {4, 4}}}};
  EXPECT_EQ(mm, expected_mm);

  Insanity insane;
  insane.userMap[Numberz::FIVE] = 5;
  insane.userMap[Numberz::EIGHT] = 8;
  Xtruct truck;
  truck.string_thing = "Goodbye4";
  truck.byte_thing = 4;
  truck.i32_thing = 4;
  truck.i64_thing = 4;
  insane.xtructs.push_back(truck);
  std::map<UserId, std::map<Numberz::type, Insanity>> whoa;
  client.testInsanity(whoa, insane);
  ASSERT_EQ(whoa.size(), 2u);
  ASSERT_EQ(whoa[1].size(), 2u);
  EXPECT_EQ(whoa[1][Numberz::TWO], insane);
  EXPECT_EQ(whoa[1][Numberz::THREE], insane);
  ASSERT_EQ(whoa[2].size(), 1u);
  EXPECT_EQ(whoa[2][Numberz::SIX], Insanity());

  Xtruct multi;
  client.testMulti(multi, 9, 11, 12, {{1, "a"}}, Numberz::TWO, 7);
  EXPECT_EQ(multi.string_thing, "Hello2");
  EXPECT_EQ(multi.byte_thing, 9);
  EXPECT_EQ(multi.i32_thing, 11);
  EXPECT_EQ(multi.i64_thing, 12);

  try {
    client.testException("Xception");
    ADD_FAILURE() << "testException(Xception) did not throw";
  } catch (const Xception& e) {
    EXPECT_EQ(e.errorCode, 1001);
    EXPECT_EQ(e.message, "Xception");
  }
  // An undeclared exception reaches the client as some TException (never silently).
  EXPECT_THROW(client.testException("TException"), apache::thrift::TException);
  EXPECT_NO_THROW(client.testException("success"));

  Xtruct mr2;
  try {
    client.testMultiException(mr2, "Xception", "test 1");
    ADD_FAILURE() << "testMultiException(Xception) did not throw";
  } catch (const Xception& e) {
    EXPECT_EQ(e.errorCode, 1001);
    EXPECT_EQ(e.message, "This is an Xception");
  }
  try {
    client.testMultiException(mr2, "Xception2", "test 2");
    ADD_FAILURE() << "testMultiException(Xception2) did not throw";
  } catch (const Xception2& e) {
    EXPECT_EQ(e.errorCode, 2002);
    EXPECT_EQ(e.struct_thing.string_thing, "This is an Xception2");
  }
  client.testMultiException(mr2, "success", "test 3");
  EXPECT_EQ(mr2.string_thing, "test 3");

  client.testOneway(0);
  // The connection still works after a oneway call, which has no reply to read.
  client.testString(s, "after oneway");
  EXPECT_EQ(s, "after oneway");
}

}  // namespace fulcrum::testing
