// Bounded waiting for events that happen on other threads, in other processes or in the
// kernel: a oneway call reaching its handler, a socket closing, a replica catching up.
//
//   EXPECT_TRUE(fulcrum::testing::Eventually([&] { return handler.notifications() == 10; }));
#pragma once

#include <chrono>
#include <thread>

namespace fulcrum::testing {

// Polls `condition` every millisecond until it holds (true) or `timeout` passes (false; the
// condition is checked once more at the end, so a slow machine cannot turn a late success into
// a failure).
template <class F>
bool Eventually(F condition, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return condition();
}

}  // namespace fulcrum::testing
