#include "support/echo_handler.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <thread>

namespace fulcrum::testing {

void EchoHandler::echo(std::string& out, const std::string& message) {
  if (echo_delay_.count() > 0) std::this_thread::sleep_for(echo_delay_);
  ++calls_;
  out = message;
}

void EchoHandler::slow(std::string& out, int32_t millis) {
  ++calls_;
  ++slow_in_progress_;
  std::this_thread::sleep_for(std::chrono::milliseconds(std::clamp(millis, 0, 60'000)));
  --slow_in_progress_;
  out = id_;
}

void EchoHandler::fail(const std::string& message) {
  ++calls_;
  fulcrum::test::EchoError error;
  error.__set_message(message);
  throw error;
}

void EchoHandler::whoami(std::string& out) {
  ++calls_;
  out = id_;
}

int64_t EchoHandler::increment(int64_t delta) {
  ++calls_;
  ++increments_;
  return counter_ += delta;
}

void EchoHandler::blob(std::string& out, int32_t size) {
  ++calls_;
  if (size < 0 || size > kMaxBlobSize) {
    throw std::invalid_argument("blob size " + std::to_string(size) + " is outside [0, " +
                                std::to_string(kMaxBlobSize) + "]");
  }
  out.assign(static_cast<size_t>(size), 'b');
}

int64_t EchoHandler::upload(const std::string& data) {
  ++calls_;
  return static_cast<int64_t>(data.size());
}

void EchoHandler::notify(const std::string&) {
  ++calls_;
  ++notifications_;
}

}  // namespace fulcrum::testing
