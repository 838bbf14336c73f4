// EchoHandler: the test implementation of tests/idl/echo.thrift's Echo service.
//
//   auto handler = std::make_shared<fulcrum::testing::EchoHandler>("server-a");
//   auto processor = std::make_shared<fulcrum::test::EchoProcessor>(handler);
//   ...
//   EXPECT_EQ(handler->increments(), 3);   // executions seen by this server
//
// Thread-safe: the server calls it from many threads; the counters are atomics.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "Echo.h"

namespace fulcrum::testing {

class EchoHandler : public fulcrum::test::EchoIf {
 public:
  // Largest blob() a test may ask for; more is a bad request, not a reason to exhaust memory.
  static constexpr int32_t kMaxBlobSize = 256 << 20;

  // `echo_delay`: every echo() sleeps this long first (a slow node for balancing tests).
  explicit EchoHandler(std::string id = "echo",
                       std::chrono::microseconds echo_delay = std::chrono::microseconds(0))
      : id_(std::move(id)), echo_delay_(echo_delay) {}

  void echo(std::string& out, const std::string& message) override;
  // Sleeps for `millis` (clamped to [0, 60 s]), then returns the server id.
  void slow(std::string& out, int32_t millis) override;
  // Throws EchoError carrying `message`.
  void fail(const std::string& message) override;
  void whoami(std::string& out) override;
  // Adds `delta` to the counter and returns the new total.
  int64_t increment(int64_t delta) override;
  // `size` bytes; a negative or too large size throws std::invalid_argument, which the
  // client receives as a TApplicationException.
  void blob(std::string& out, int32_t size) override;
  int64_t upload(const std::string& data) override;
  void notify(const std::string& message) override;

  const std::string& id() const { return id_; }
  int64_t counter() const { return counter_.load(); }
  int64_t increments() const { return increments_.load(); }  // calls to increment()
  int64_t notifications() const { return notifications_.load(); }
  int64_t calls() const { return calls_.load(); }  // every method
  int64_t slow_in_progress() const { return slow_in_progress_.load(); }

 private:
  const std::string id_;
  const std::chrono::microseconds echo_delay_;
  std::atomic<int64_t> counter_{0};
  std::atomic<int64_t> increments_{0};
  std::atomic<int64_t> notifications_{0};
  std::atomic<int64_t> calls_{0};
  std::atomic<int64_t> slow_in_progress_{0};
};

}  // namespace fulcrum::testing
