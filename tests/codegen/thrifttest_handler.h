// ThriftTestHandler: ThriftTest's reference behaviour (as Apache Thrift's own test server
// answers), for the codegen end-to-end tests and codegen_thrifttest_server.
//
//   auto handler = std::make_shared<fulcrum::testing::ThriftTestHandler>();
//   auto server = thrift::test::fulcrum_gen::ThriftTestServer::Serve(handler, {}).value();
//   handler->WaitForOneways(1, std::chrono::seconds(10));
//
// Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>

#include "ThriftTest.h"

namespace fulcrum::testing {

class ThriftTestHandler : public thrift::test::ThriftTestIf {
 public:
  void testVoid() override {}
  void testString(std::string& _return, const std::string& thing) override { _return = thing; }
  bool testBool(const bool thing) override { return thing; }
  int8_t testByte(const int8_t thing) override { return thing; }
  int32_t testI32(const int32_t thing) override { return thing; }
  int64_t testI64(const int64_t thing) override { return thing; }
  double testDouble(const double thing) override { return thing; }
  void testBinary(std::string& _return, const std::string& thing) override { _return = thing; }
  void testStruct(thrift::test::Xtruct& _return, const thrift::test::Xtruct& thing) override {
    _return = thing;
  }
  void testNest(thrift::test::Xtruct2& _return, const thrift::test::Xtruct2& thing) override {
    _return = thing;
  }
  void testMap(std::map<int32_t, int32_t>& _return,
               const std::map<int32_t, int32_t>& thing) override {
    _return = thing;
  }
  void testStringMap(std::map<std::string, std::string>& _return,
                     const std::map<std::string, std::string>& thing) override {
    _return = thing;
  }
  void testSet(std::set<int32_t>& _return, const std::set<int32_t>& thing) override {
    _return = thing;
  }
  void testList(std::vector<int32_t>& _return, const std::vector<int32_t>& thing) override {
    _return = thing;
  }
  thrift::test::Numberz::type testEnum(const thrift::test::Numberz::type thing) override {
    return thing;
  }
  thrift::test::UserId testTypedef(const thrift::test::UserId thing) override { return thing; }

  void testMapMap(std::map<int32_t, std::map<int32_t, int32_t>>& _return,
                  const int32_t hello) override {
    for (int32_t i = 1; i <= 4; ++i) {
      _return[4][i] = i;
      _return[-4][-i] = -i;
    }
  }

  void testInsanity(
      std::map<thrift::test::UserId, std::map<thrift::test::Numberz::type, thrift::test::Insanity>>&
          _return,
      const thrift::test::Insanity& argument) override {
    _return[1][thrift::test::Numberz::TWO] = argument;
    _return[1][thrift::test::Numberz::THREE] = argument;
    _return[2][thrift::test::Numberz::SIX] = thrift::test::Insanity();
  }

  void testMulti(thrift::test::Xtruct& _return, const int8_t arg0, const int32_t arg1,
                 const int64_t arg2, const std::map<int16_t, std::string>& arg3,
                 const thrift::test::Numberz::type arg4, const thrift::test::UserId arg5) override {
    _return.string_thing = "Hello2";
    _return.byte_thing = arg0;
    _return.i32_thing = arg1;
    _return.i64_thing = arg2;
  }

  void testException(const std::string& arg) override {
    if (arg == "Xception") {
      thrift::test::Xception e;
      e.errorCode = 1001;
      e.message = arg;
      throw e;
    }
    if (arg == "TException") throw apache::thrift::TException("This is a TException");
  }

  void testMultiException(thrift::test::Xtruct& _return, const std::string& arg0,
                          const std::string& arg1) override {
    if (arg0 == "Xception") {
      thrift::test::Xception e;
      e.errorCode = 1001;
      e.message = "This is an Xception";
      throw e;
    }
    if (arg0 == "Xception2") {
      thrift::test::Xception2 e;
      e.errorCode = 2002;
      e.struct_thing.string_thing = "This is an Xception2";
      throw e;
    }
    _return.string_thing = arg1;
  }

  void testOneway(const int32_t seconds_to_sleep) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++oneways_;
    last_oneway_ = seconds_to_sleep;
    cv_.notify_all();
  }

  // Waits (bounded) until `count` oneway calls have arrived; returns how many did.
  int WaitForOneways(int count, std::chrono::milliseconds limit) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, limit, [&] { return oneways_ >= count; });
    return oneways_;
  }
  int32_t last_oneway() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_oneway_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int oneways_ = 0;
  int32_t last_oneway_ = -1;
};

}  // namespace fulcrum::testing
